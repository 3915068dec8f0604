"""Checks of notebook 08 (video prediction): 08.1 the eidetic recall update of E3D-LSTM, 08.2 SSIM of one frame."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...metrics.image import mean_ssim
from ...models.e3d_lstm import recall_update
from ..checking import Case, Check, Mistake


# =========================================================================== 08.1 eidetic recall
def _tokens(x):                        # (B, C, τ', H, W) -> (B, τ'HW, C)
    return x.flatten(2).transpose(1, 2)


def _history_tokens(h):                # (B, n, C, τ', H, W) -> (B, nτ'HW, C)
    return h.permute(0, 1, 3, 4, 5, 2).reshape(h.shape[0], -1, h.shape[2])


def _wrong_recall(r, c_prev, history, weight, bias, *, softmax_dim=-1, scale=False, raw_reshape=False,
                  last_only=False, norm="layer", residual=True, tokens="channel"):
    """Test-free helper for the known mistakes of 08.1 (each keyword switches one mistake on)."""
    b, c, t, h, w = r.shape
    if last_only:
        history = history[:, -1:]
    if tokens == "channel":
        q = _tokens(r)
        kv = history.reshape(b, -1, c) if raw_reshape else _history_tokens(history)
    else:                              # whole feature maps as tokens: one token per channel
        q = r.reshape(b, c, -1)
        kv = history.reshape(b, -1, t * h * w)
    logits = q @ kv.transpose(1, 2)
    if scale:
        logits = logits / c ** 0.5
    out = torch.softmax(logits, dim=softmax_dim) @ kv
    recall = out.transpose(1, 2).reshape(b, c, t, h, w) if tokens == "channel" else out.reshape(b, c, t, h, w)
    z = c_prev + recall if residual else recall
    if norm == "layer":
        return F.group_norm(z, 1, weight, bias, 1e-5)
    if norm == "channel_only":          # statistics over C at every position
        zz = z.movedim(1, -1)
        return F.layer_norm(zz, (c,), weight, bias, 1e-5).movedim(-1, 1)
    if norm == "instance":             # statistics per channel (over τ', H, W)
        return F.group_norm(z, c, weight, bias, 1e-5)
    return z                           # no norm


def _recall_cases(g: torch.Generator) -> list[Case]:
    def state(b, c, t, h, w, dtype=torch.float32):
        return torch.randn(b, c, t, h, w, generator=g, dtype=torch.float64).to(dtype)

    def affine(c, dtype=torch.float32):
        return (1 + 0.3 * torch.randn(c, generator=g, dtype=torch.float64)).to(dtype), \
            (0.2 * torch.randn(c, generator=g, dtype=torch.float64)).to(dtype)

    def case(b, c, t, h, w, n, dtype=torch.float32, gate_scale=1.0):
        r = torch.sigmoid(gate_scale * state(b, c, t, h, w, torch.float64)).to(dtype)
        hist = torch.randn(b, n, c, t, h, w, generator=g, dtype=torch.float64).to(dtype)
        return (r, state(b, c, t, h, w, dtype), hist, *affine(c, dtype))

    one = case(1, 3, 1, 1, 1, 1)
    wide = case(2, 4, 2, 3, 3, 3, gate_scale=3.0)
    return [
        Case("one memory of one location (B=1, C=3, τ'=1, H=W=1, n=1)", one,
             hint="with a single stored token the softmax weight is 1: recall = that memory; then "
                  "LayerNorm(C_{t-1} + recall) over the C values"),
        Case("γ = 1, β = 0, two memories (1, 4, 2, 2, 2), n = 2",
             (*case(1, 4, 2, 2, 2, 2)[:3], torch.ones(4), torch.zeros(4)),
             hint="tokens are the C-dim channel vectors at every (time, y, x); keys = values = the tokens "
                  "of all n stored states"),
        Case("random states (2, 4, 2, 3, 3), n = 3 memories, confident gates", wide,
             hint="softmax over the n·τ'·H·W memory tokens (the last axis of R Cᵀ), no 1/√C scaling"),
        Case("non-square maps (2, 5, 2, 2, 4), n = 4", case(2, 5, 2, 2, 4, 4)),
        Case("float64 states (1, 3, 2, 2, 2), n = 2", case(1, 3, 2, 2, 2, 2, dtype=torch.float64),
             hint="create new tensors from the inputs so dtype and device follow them"),
        Case("a non-contiguous history (a transposed view), n = 2",
             (*wide[:2], wide[2][:, :2].transpose(4, 5).contiguous().transpose(4, 5), *wide[3:])),
    ]


RECALL_UPDATE = Check(
    exercise="08.1", name="recall_update", title="The recall gate: eidetic memory",
    reference=recall_update,                      # lecturekit.models.e3d_lstm, run by EideticLSTMCell
    cases=_recall_cases, arg_names=("r", "c_prev", "history", "weight", "bias"), axes="B C T H W",
    atol=1e-5, rtol=1e-4,
    mistakes=(
        Mistake(lambda *a: _wrong_recall(*a, softmax_dim=-2),
                "the softmax runs over the wrong axis: each query token's weights over the MEMORY tokens must "
                "sum to 1 (the last axis of R Cᵀ)"),
        Mistake(lambda *a: _wrong_recall(*a, scale=True),
                "you divided the logits by √C; E3D-LSTM's recall uses softmax(R Cᵀ) without scaling"),
        Mistake(lambda *a: _wrong_recall(*a, raw_reshape=True),
                "the memory tokens were built with a reshape that mixes channels and positions; move the "
                "channel axis last (permute) before flattening, so each token is one location's C channels"),
        Mistake(lambda *a: _wrong_recall(*a, last_only=True),
                "you attended only the latest memory; the recall looks at all n stored cell states"),
        Mistake(lambda *a: _wrong_recall(*a, norm="channel_only"),
                "the layer norm took statistics over the channels at each location; here (as in the "
                "E3D-LSTM code) they run over all of (C, τ', H, W) of a sample, with γ, β per channel"),
        Mistake(lambda *a: _wrong_recall(*a, norm="instance"),
                "the layer norm took statistics per channel; they run over all of (C, τ', H, W) of a sample"),
        Mistake(lambda *a: _wrong_recall(*a, norm="none"),
                "the layer norm is missing: return LayerNorm(C_{t-1} + recall)"),
        Mistake(lambda *a: _wrong_recall(*a, residual=False),
                "C_{t-1} is missing: the recall is ADDED to the previous cell state before the norm"),
        Mistake(lambda *a: _wrong_recall(*a, tokens="map"),
                "your tokens are whole feature maps (one per channel); E3D-LSTM's tokens are the C-dim "
                "vectors at every (time, y, x) location"),
    ),
    hint="tokens: R -> (B, τ'HW, C), history -> (B, nτ'HW, C); recall = softmax(R Cᵀ, over the memory "
         "tokens) C, back to (B, C, τ', H, W); then group statistics over (C, τ', H, W), γ and β per channel",
)


# =========================================================================== 08.2 SSIM of one frame
def _gauss(size=11, sigma=1.5):
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _wrong_ssim(x, y, *, window="gauss", padding=0, data_range=1.0, constants=True, pooled=False):
    """Test-free helper for the known mistakes of 08.2."""
    x, y = x.double()[None, None], y.double()[None, None]
    if pooled:                                   # one SSIM from global statistics, no window
        mx, my = x.mean(), y.mean()
        vx, vy = ((x - mx) ** 2).mean(), ((y - my) ** 2).mean()
        cxy = ((x - mx) * (y - my)).mean()
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        return ((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).float()
    g = _gauss() if window == "gauss" else torch.full((11,), 1 / 11, dtype=torch.float64)
    k = (g[:, None] * g[None, :])[None, None]

    def blur(z):
        return F.conv2d(z, k, padding=padding)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = ((0.01 * data_range) ** 2, (0.03 * data_range) ** 2) if constants else (0.0, 0.0)
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.mean().float()


def _ssim_cases(g: torch.Generator) -> list[Case]:
    def rand(h, w, dtype=torch.float32):
        return torch.rand(h, w, generator=g, dtype=torch.float64).to(dtype)

    glyph = torch.zeros(24, 24)
    glyph[6:16, 8:10] = 1.0
    glyph[6:8, 8:14] = 1.0
    glyph[10:12, 8:13] = 0.8
    blurred = F.avg_pool2d(glyph[None, None], 3, 1, 1)[0, 0]
    noisy = (rand(16, 16) * 0.6 + 0.2)
    same = rand(16, 16)
    return [
        Case("a frame with itself: SSIM = 1", (same, same.clone()), hint="identical frames give exactly 1"),
        Case("a glyph and the same glyph shifted by 2 px (24×24)", (glyph, torch.roll(glyph, 2, dims=1)),
             hint="local statistics under an 11×11 Gaussian window (σ = 1.5), averaged over the positions "
                  "where the window fits inside the frame"),
        Case("a glyph and its blurred copy (24×24)", (glyph, blurred)),
        Case("two random frames (16×16)", (rand(16, 16), rand(16, 16))),
        Case("non-square frames (12×20)", (rand(12, 20), rand(12, 20)),
             hint="the window fits at (12 - 10) × (20 - 10) positions"),
        Case("the smallest frame: 11×11, one window position", (rand(11, 11), rand(11, 11))),
        Case("constant frames 0.5 and 0.25 (the constants C1, C2 matter)",
             (torch.full((14, 14), 0.5), torch.full((14, 14), 0.25)),
             hint="C1 = (0.01 L)², C2 = (0.03 L)² with L = 1 keep the ratio finite when σ = 0"),
        Case("float64 frames", (noisy.double(), (noisy + 0.1 * rand(16, 16)).clamp(0, 1).double())),
    ]


SSIM_FRAME = Check(
    exercise="08.2", name="ssim_frame", title="SSIM of one frame",
    reference=mean_ssim,                          # lecturekit.metrics.image, run by ssim_per_frame
    cases=_ssim_cases, arg_names=("x", "y"),
    atol=1e-5, rtol=1e-4, check_dtype=False,
    mistakes=(
        Mistake(lambda x, y: _wrong_ssim(x, y, window="box"),
                "you used a uniform 11×11 window; SSIM weights the local statistics with a Gaussian (σ = 1.5)"),
        Mistake(lambda x, y: _wrong_ssim(x, y, padding=5),
                "you padded the frame (zeros around it) so the map has H×W values; average only over the "
                "positions where the window fits entirely inside the frame ('valid')"),
        Mistake(lambda x, y: _wrong_ssim(x, y, data_range=255.0),
                "the constants use L = 255; frames here are in [0, 1], so L = 1: C1 = 0.01², C2 = 0.03²"),
        Mistake(lambda x, y: _wrong_ssim(x, y, pooled=True),
                "you computed one SSIM from the statistics of the whole frame; SSIM is a map of LOCAL "
                "statistics (under the window), averaged"),
    ),
    hint="μ = G * x, σ² = G * x² − μ², σ_xy = G * (x y) − μ_x μ_y with the 11×11 Gaussian G (σ = 1.5), "
         "'valid' positions only; SSIM map = (2μ_xμ_y + C1)(2σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)); "
         "return its mean",
)

