"""Image metrics of video prediction, per predicted frame: MSE, PSNR and SSIM.

SSIM: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image Quality Assessment: From
Error Visibility to Structural Similarity", IEEE TIP 13(4), 2004.

    SSIM(x, y) = (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2))

with local statistics weighted by a Gaussian window (11×11, σ = 1.5), C1 = (K1·L)²,
C2 = (K2·L)², K1 = 0.01, K2 = 0.03 and L the data range (1 for frames in [0, 1]). The map is
averaged over the positions where the window fits entirely inside the image ("valid", as in
Wang's reference ``ssim.m``; skimage's ``structural_similarity`` pads by reflection and then
crops the same border, so both average over the same positions), then over channels.
Variances are the Gaussian-weighted population moments (skimage's
``use_sample_covariance=False``, the setting that matches Wang et al.).

Conventions of the video-prediction papers (PredRNN, NeurIPS 2017,
https://papers.nips.cc/paper/6689-predrnn; E3D-LSTM, ICLR 2019,
https://openreview.net/forum?id=B1lKS2AqtX):
    - frames are compared in [0, 1]; predictions are clipped to [0, 1] first (``clip=True``);
    - ``mse_per_frame(..., reduction="mean")`` is the per-pixel mean; ``reduction="sum"`` is the
      PredRNN / E3D-LSTM "MSE per frame" (sum over the pixels of a frame: 41.3 on 64×64 is a
      per-pixel MSE of about 0.0101).

Shapes: every function takes videos (B, C, T, H, W) and returns one value per frame (B, T).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..layers.shapes import check_video

K1, K2 = 0.01, 0.03


def _pair(pred: Tensor, target: Tensor, clip: bool) -> tuple[Tensor, Tensor]:
    check_video(target, name="target")
    check_video(pred, name="prediction")
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    pred, target = pred.float(), target.float()
    if clip:
        pred = pred.clamp(0.0, 1.0)
    return pred, target


def mse_per_frame(pred: Tensor, target: Tensor, *, reduction: str = "mean", clip: bool = True) -> Tensor:
    """Squared error of every frame: (B, C, T, H, W) ×2 -> (B, T).

    ``reduction="mean"`` averages over (C, H, W); ``"sum"`` sums them (the Moving MNIST
    "per-frame MSE" of PredRNN / E3D-LSTM).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
    pred, target = _pair(pred, target, clip)
    err = (pred - target).pow(2)                                    # (B, C, T, H, W)
    return err.mean(dim=(1, 3, 4)) if reduction == "mean" else err.sum(dim=(1, 3, 4))


def psnr_per_frame(pred: Tensor, target: Tensor, *, data_range: float = 1.0, clip: bool = True) -> Tensor:
    """PSNR = 10 log10(L² / MSE) of every frame, in dB: (B, C, T, H, W) ×2 -> (B, T).

    Identical frames give +inf.
    """
    mse = mse_per_frame(pred, target, reduction="mean", clip=clip)
    return 10.0 * torch.log10(data_range ** 2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """The normalised 1-D Gaussian of SSIM: (size,), sums to 1."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def mean_ssim(x: Tensor, y: Tensor, *, data_range: float = 1.0, window_size: int = 11,
              sigma: float = 1.5) -> Tensor:
    """Mean SSIM of two images or two stacks of images: (..., H, W) ×2 -> (...).

    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image Quality Assessment: From Error
    Visibility to Structural Similarity", IEEE TIP 13(4), 2004: Eq. (13),

        SSIM = (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)),

    with the Gaussian-weighted local statistics of Eqs. (14)-(16), μ = G * x, σ² = G * x² − μ²,
    σ_xy = G * (x y) − μ_x μ_y (G: the ``window_size``² Gaussian window, σ = ``sigma``),
    C1 = (0.01 L)², C2 = (0.03 L)², L = ``data_range``; the map is averaged (the MSSIM of
    Eq. 17) over the "valid" positions, where the window fits inside the image. Computed in float64, returned in the
    inputs' floating dtype (float32 for integer images). :func:`ssim_per_frame` runs it on
    every channel of every frame; exercise 08.2 checks students against it on one frame (H, W).

    Raises ``ValueError`` when an image is smaller than the window.

    Example:
        >>> x = torch.rand(16, 16)
        >>> float(mean_ssim(x, x))
        1.0
    """
    if x.shape != y.shape or x.dim() < 2:
        raise ValueError(f"SSIM: expected two images (..., H, W) of one shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    *lead, h, w = x.shape
    if h < window_size or w < window_size:
        raise ValueError(f"SSIM: frames of {h}×{w} are smaller than the {window_size}×{window_size} window")
    out_dtype = torch.promote_types(x.dtype, torch.float32)
    x = x.reshape(-1, 1, h, w).double()                               # every image a batch entry
    y = y.reshape(-1, 1, h, w).double()
    g = gaussian_window(window_size, sigma).to(x.device)
    gh, gw = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(z: Tensor) -> Tensor:                                   # separable "valid" filter
        return F.conv2d(F.conv2d(z, gh), gw)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3)).view(lead).to(out_dtype)


def ssim_per_frame(pred: Tensor, target: Tensor, *, data_range: float = 1.0, window_size: int = 11,
                   sigma: float = 1.5, clip: bool = True) -> Tensor:
    """Mean SSIM of every frame (Wang et al. 2004): (B, C, T, H, W) ×2 -> (B, T).

    :func:`mean_ssim` of every channel of every frame, averaged over the channels.
    Raises ``ValueError`` when a frame is smaller than the window.

    Example:
        >>> x = torch.rand(1, 1, 2, 16, 16)
        >>> ssim_per_frame(x, x).allclose(torch.ones(1, 2))
        True
    """
    pred, target = _pair(pred, target, clip)
    x = pred.transpose(1, 2).double()                                # (B, T, C, H, W)
    y = target.transpose(1, 2).double()
    s = mean_ssim(x, y, data_range=data_range, window_size=window_size, sigma=sigma)   # (B, T, C) float64
    return s.mean(dim=2).to(torch.float32)                           # (B, T)


def frame_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Dataset-level summary: per-pixel MSE, the Moving MNIST per-frame sum MSE, PSNR, SSIM.

    Each is averaged over frames and sequences (PSNR over frames with finite values).
    """
    psnr = psnr_per_frame(pred, target)
    finite = psnr[torch.isfinite(psnr)]
    out = {
        "mse": mse_per_frame(pred, target).mean().item(),
        "mse_sum_per_frame": mse_per_frame(pred, target, reduction="sum").mean().item(),
        "psnr": finite.mean().item() if finite.numel() else math.inf,
    }
    if min(target.shape[-2:]) >= 11:
        out["ssim"] = ssim_per_frame(pred, target).mean().item()
    return out


__all__ = ["mse_per_frame", "psnr_per_frame", "mean_ssim", "ssim_per_frame", "gaussian_window", "frame_metrics"]
