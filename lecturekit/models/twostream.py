"""Two-stream ConvNets: an appearance stream and a motion stream, fused late.

Paper: K. Simonyan, A. Zisserman, "Two-Stream Convolutional Networks for Action Recognition in
Videos", NeurIPS 2014. https://arxiv.org/abs/1406.2199

Implements
    lucas_kanade_flow  a CPU/GPU-cheap optical-flow stand-in in plain torch: iterative
                       Lucas-Kanade (B. Lucas, T. Kanade, IJCAI 1981) with warping
    flow_stack         the temporal stream's input (Sec. 3.1): L consecutive flow fields
                       stacked as 2L channels [u_1, v_1, u_2, v_2, ...], with the paper's mean
                       flow subtraction (each field minus its mean vector: crude camera-motion
                       compensation)
    TwoStream          spatial stream on RGB frames + temporal stream on the motion stack; late
                       fusion by averaging the two streams' softmax scores (Sec. 6)

Flow convention: (u, v) in pixels with I_{t+1}(x + u, y + v) ≈ I_t(x, y); u > 0 is motion to
the right (growing column index), v > 0 is motion down (growing row index).

Lucas-Kanade, per pixel, over a w×w window Ω (the brightness-constancy least squares):

    [ΣIx²   ΣIxIy] [du]      [ΣIxIt]
    [ΣIxIy  ΣIy² ] [dv] = −  [ΣIyIt]       It = I_{t+1}(x + u) − I_t(x)

solved in closed form, repeated a few times after warping I_{t+1} by the current (u, v).
Valid for smooth displacements of a few pixels; no pyramid, no robust penalty.

Returning logits with softmax-average fusion: the fused output is
``log( (softmax(a) + softmax(b)) / 2 )``, a log-probability; ``softmax`` of it is exactly the
average of the two streams' softmaxes, so it plugs into cross-entropy like any logits.

Simplified
    - Streams: small ResNets (CPU) or ResNet-50 (``paper`` preset), not CNN-M-2048, so no
      published count is asserted.
    - Flow: Lucas-Kanade instead of Brox et al. (2004); or ``motion="diff"``: stacked RGB
      differences (TSN's cheap motion cue, ``lecturekit.layers.motion.difference_stack``; not flow).
    - The spatial stream scores every frame of the clip and averages (the paper trains on one
      random frame and averages 25 at test time); the temporal stream takes the centred window
      of L+1 frames. Streams are trained jointly through the fused output (the paper trains
      them separately; ``forward_streams`` returns both logits for separate losses).
    - No SVM fusion, no trajectory stacking, no bidirectional flow, no multi-task training.
Shapes (letters defined in lecturekit/layers/shapes.py)
    video (B, 3, T, H, W), T >= L+1 -> spatial (B*T, 3, H, W), motion (B, 2L or 3L, H, W)
    -> features (B, D_s + D_m) -> logits (B, K)
"""

from __future__ import annotations

from collections.abc import Sequence

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.motion import difference_stack
from ..layers.resnet2d import ResNet2d
from ..layers.shapes import check_shape, check_video, fold_time

LUMA = (0.299, 0.587, 0.114)


def _gray(video: Tensor) -> Tensor:
    """(B, 3, T, H, W) -> (B, T, H, W) luma; a 1-channel video passes through."""
    if video.shape[1] == 1:
        return video[:, 0]
    w = video.new_tensor(LUMA).view(1, 3, 1, 1, 1)
    return (video * w).sum(dim=1)


def _warp(img: Tensor, flow: Tensor) -> Tensor:
    """Sample img (N, 1, H, W) at x + flow (N, 2, H, W) (bilinear, border padding)."""
    n, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=img.device, dtype=img.dtype),
                            torch.arange(w, device=img.device, dtype=img.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) * (2 / max(w - 1, 1)) - 1                      # (N, H, W)
    gy = (ys + flow[:, 1]) * (2 / max(h - 1, 1)) - 1
    return F.grid_sample(img, torch.stack([gx, gy], dim=-1), mode="bilinear",
                         padding_mode="border", align_corners=True)


def _gradients(img: Tensor) -> tuple[Tensor, Tensor]:
    """Central differences of (N, 1, H, W), replicate padding: (Ix, Iy)."""
    p = F.pad(img, (1, 1, 1, 1), mode="replicate")
    ix = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    iy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    return ix, iy


@torch.no_grad()
def lucas_kanade_flow(frame0: Tensor, frame1: Tensor, *, window: int = 5, iterations: int = 5,
                      eps: float = 1e-4) -> Tensor:
    """Dense optical flow from ``frame0`` to ``frame1`` by iterative Lucas-Kanade.

    Args:
        frame0, frame1: gray images (N, H, W).
        window: side of the square least-squares window (odd).
        iterations: warp-and-refine steps.
        eps: Tikhonov term added to the 2×2 system (flat regions get ~zero flow).

    Returns: flow (N, 2, H, W), channels (u, v) in pixels (see the module convention).

    Example:
        >>> x = torch.arange(32.)
        >>> img = torch.sin(2 * math.pi * x / 16)[None, :] + torch.cos(2 * math.pi * x / 32)[:, None]
        >>> flow = lucas_kanade_flow(img[None], torch.roll(img, 1, dims=1)[None])
        >>> round(flow[0, 0, 8:24, 8:24].mean().item(), 2), round(flow[0, 1, 8:24, 8:24].mean().item(), 2)
        (1.0, 0.0)
    """
    check_shape(frame0, "B H W", name="frame0")
    if frame1.shape != frame0.shape:
        raise ValueError(f"frame1 must match frame0 {tuple(frame0.shape)}, got {tuple(frame1.shape)}")
    i0, i1 = frame0.float()[:, None], frame1.float()[:, None]             # (N, 1, H, W)
    flow = i0.new_zeros(i0.shape[0], 2, *i0.shape[-2:])                   # (N, 2, H, W)

    def box(z: Tensor) -> Tensor:
        return F.avg_pool2d(z, window, stride=1, padding=window // 2, count_include_pad=False)

    for _ in range(iterations):
        warped = _warp(i1, flow)                                          # I_{t+1}(x + u)
        ix, iy = _gradients((i0 + warped) / 2)
        it = warped - i0
        sxx, sxy, syy = box(ix * ix), box(ix * iy), box(iy * iy)
        sxt, syt = box(ix * it), box(iy * it)
        det = sxx * syy - sxy * sxy + eps * (sxx + syy) + eps * eps       # det of (S + eps·I)
        du = (-(syy + eps) * sxt + sxy * syt) / det
        dv = (sxy * sxt - (sxx + eps) * syt) / det
        flow = flow + torch.cat([du, dv], dim=1)
    return flow


def flow_stack(video: Tensor, *, mean_subtraction: bool = True, **lk) -> Tensor:
    """Flow of every consecutive frame pair, stacked: (B, C, L+1, H, W) -> (B, 2L, H, W).

    Channel order [u_1, v_1, u_2, v_2, ...] (x before y, as in the paper's Eq. (1)). With
    ``mean_subtraction`` each field's mean vector is removed (Sec. 3.1).
    """
    b, _, t, h, w = check_video(video)
    with torch.autocast(device_type=video.device.type, enabled=False):
        g = _gray(video.float())                                          # (B, T, H, W)
        f = lucas_kanade_flow(g[:, :-1].reshape(-1, h, w), g[:, 1:].reshape(-1, h, w), **lk)
    f = f.view(b, t - 1, 2, h, w)                                         # (B, L, 2, H, W)
    if mean_subtraction:
        f = f - f.mean(dim=(-2, -1), keepdim=True)
    return f.reshape(b, 2 * (t - 1), h, w)                                # (B, 2L, H, W)


class TwoStream(nn.Module):
    """Spatial (RGB) + temporal (motion stack) ConvNets with late softmax-average fusion.

    Args:
        num_classes: K.
        motion: ``"flow"`` (Lucas-Kanade stand-in, 2L channels) or ``"diff"`` (3L channels).
        stack: L, motion fields per sample (10 in the paper); needs T >= L+1 frames.
        fusion: ``"softmax_avg"`` (the paper's averaging; output = log of the averaged
            probabilities) or ``"logit_avg"``.
        mean_flow_subtraction: subtract each flow field's mean (the paper does).
        flow_window, flow_iterations: Lucas-Kanade settings.
        widths, depths, block, stem: the two :class:`ResNet2d` streams (same architecture).

    The classifier of each stream is ``head_spatial`` / ``head_temporal``: the paper's two
    outputs, fused late (:meth:`forward_streams` returns both).

    Shape: video (B, 3, T, H, W) -> logits (B, K)

    Example:
        >>> TwoStream(num_classes=10)(torch.randn(2, 3, 8, 32, 32)).shape
        torch.Size([2, 10])
    """

    PRESETS = {
        "small": dict(num_classes=10, stack=7),
        # Sec. 3.1/6 (L = 10, UCF-101) with ResNet-50 streams instead of CNN-M-2048.
        "paper": dict(num_classes=101, stack=10, widths=(64, 128, 256, 512), depths=(3, 4, 6, 3),
                      block="bottleneck", stem="imagenet"),
    }

    def __init__(self, num_classes: int = 10, *, motion: str = "flow", stack: int = 7,
                 fusion: str = "softmax_avg", mean_flow_subtraction: bool = True,
                 flow_window: int = 5, flow_iterations: int = 3,
                 widths: Sequence[int] = (16, 32, 64), depths: Sequence[int] = (1, 1, 1),
                 block: str = "basic", stem: str = "small"):
        super().__init__()
        if motion not in ("flow", "diff"):
            raise ValueError(f"motion must be 'flow' or 'diff', got {motion!r}")
        if fusion not in ("softmax_avg", "logit_avg"):
            raise ValueError(f"fusion must be 'softmax_avg' or 'logit_avg', got {fusion!r}")
        self.motion, self.stack, self.fusion = motion, stack, fusion
        self.mean_flow_subtraction = mean_flow_subtraction
        self.lk = dict(window=flow_window, iterations=flow_iterations)
        motion_channels = (2 if motion == "flow" else 3) * stack
        net = dict(widths=widths, depths=depths, block=block, stem=stem)
        self.spatial = ResNet2d(3, **net)
        self.temporal = ResNet2d(motion_channels, **net)
        self.head_spatial = nn.Linear(self.spatial.out_features, num_classes)    # each stream's classifier:
        self.head_temporal = nn.Linear(self.temporal.out_features, num_classes)  # two outputs, fused late

    def motion_input(self, video: Tensor) -> Tensor:
        """The temporal stream's input from the centred L+1 frames: (B, 2L or 3L, H, W)."""
        _, _, t, _, _ = check_video(video, channels=3)
        if t < self.stack + 1:
            raise ValueError(f"TwoStream needs T >= stack+1 = {self.stack + 1} frames, got T={t}")
        start = (t - self.stack - 1) // 2
        clip = video[:, :, start:start + self.stack + 1]                     # (B, 3, L+1, H, W)
        if self.motion == "diff":
            return difference_stack(clip)
        return flow_stack(clip, mean_subtraction=self.mean_flow_subtraction, **self.lk).to(video.dtype)

    def forward_features(self, video: Tensor) -> Tensor:
        """Both streams' pooled features, concatenated: (B, D_s + D_m)."""
        b, _, t, _, _ = check_video(video, channels=3)
        s = self.spatial.forward_features(fold_time(video)).view(b, t, -1).mean(dim=1)  # (B, D_s)
        m = self.temporal.forward_features(self.motion_input(video))                    # (B, D_m)
        return torch.cat([s, m], dim=1)                                                  # (B, D_s+D_m)

    def forward_streams(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Each stream's logits from the concatenated features: ((B, K), (B, K))."""
        ds = self.head_spatial.in_features
        check_shape(features, "B D", name="features", D=ds + self.head_temporal.in_features)
        return self.head_spatial(features[:, :ds]), self.head_temporal(features[:, ds:])

    def forward_head(self, features: Tensor) -> Tensor:
        """Late fusion: (B, D_s + D_m) -> (B, K)."""
        a, b = self.forward_streams(features)
        if self.fusion == "logit_avg":
            return (a + b) / 2
        both = torch.stack([F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)])  # (2, B, K)
        return torch.logsumexp(both, dim=0) - math.log(2)                  # log of mean softmax

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(video))


__all__ = ["TwoStream", "difference_stack", "flow_stack", "lucas_kanade_flow"]
