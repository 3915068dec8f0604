"""Which frames of a segment a clip is made of: uniform, dense, TSN and anticipation sampling.

All functions return ``torch.long`` frame indices in the segment's own index space (EK-100 frame
folders are 1-based, arrays 0-based: the functions do not care, they stay inside
``[start, stop]``). They accept Python ints (returning ``(T,)``) or 1-D tensors of N segments
(returning ``(N, T)``, vectorised, no Python loop over segments). Randomness only through an
explicit ``torch.Generator``.

Vocabulary (MMAction2's naming): a clip is ``frames`` indices; a *dense* clip takes consecutive
frames ``stride`` apart; *TSN* (Wang et al., "Temporal Segment Networks", ECCV 2016,
https://arxiv.org/abs/1608.00859) cuts the segment into ``S`` equal parts and takes one frame per
part: a random one when training, the centre one when testing. *Uniform* sampling is TSN's test
rule.
"""

from __future__ import annotations

import torch
from torch import Tensor

IntOrTensor = int | Tensor


def _as_long(x: IntOrTensor, name: str) -> tuple[Tensor, bool]:
    if isinstance(x, Tensor):
        if x.dim() > 1 or x.is_floating_point():
            raise ValueError(f"{name}: expected an int or a 1-D integer tensor, got {x.dtype} {tuple(x.shape)}")
        return x.long().reshape(-1), x.dim() == 0
    return torch.tensor([int(x)], dtype=torch.long), True


def _segments(start: IntOrTensor, stop: IntOrTensor) -> tuple[Tensor, Tensor, bool]:
    s, s_scalar = _as_long(start, "start")
    e, e_scalar = _as_long(stop, "stop")
    s, e = torch.broadcast_tensors(s, e)
    if (e < s).any():
        bad = int(torch.nonzero(e < s)[0, 0])
        raise ValueError(f"stop must be >= start (inclusive range), got start={int(s[bad])}, stop={int(e[bad])}")
    return s, e, s_scalar and e_scalar


def _check_frames(frames: int, name: str = "frames") -> None:
    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"{name} must be a positive int, got {frames!r}")


def tsn_indices(
    start: IntOrTensor,
    stop: IntOrTensor,
    segments: int,
    *,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """TSN sampling of the inclusive range ``[start, stop]`` into ``segments`` parts.

    Part ``k`` covers ``[start + floor(k*n/S), start + floor((k+1)*n/S))`` with ``n = stop-start+1``.
    Test (``train=False``): its centre ``start + floor((k + 0.5) * n / S)``. Train: a uniformly
    random frame of it (``generator`` required, so runs are reproducible). When ``n < S`` parts
    are shorter than a frame and indices repeat (each part then holds the frame it falls in).
    """
    _check_frames(segments, "segments")
    s, e, scalar = _segments(start, stop)
    n = (e - s + 1)[:, None]  # (N, 1)
    k = torch.arange(segments, dtype=torch.long)[None, :]  # (1, S)
    if not train:
        # floor((2k+1) n / 2S) in integers: exact, no float rounding
        idx = s[:, None] + ((2 * k + 1) * n) // (2 * segments)
    else:
        if generator is None:
            raise ValueError("tsn_indices(train=True) needs an explicit torch.Generator")
        lo = (k * n) // segments
        hi = ((k + 1) * n) // segments  # exclusive; hi == lo when the part is shorter than a frame
        width = (hi - lo).clamp(min=1)
        u = torch.rand(n.shape[0], segments, generator=generator, dtype=torch.float64)
        off = (u * width).long().clamp(max=width - 1)
        idx = s[:, None] + torch.minimum(lo + off, n - 1)
    return idx[0] if scalar else idx


def uniform_indices(start: IntOrTensor, stop: IntOrTensor, frames: int) -> Tensor:
    """``frames`` evenly spaced indices of ``[start, stop]``: TSN's test rule (part centres)."""
    return tsn_indices(start, stop, frames, train=False)


def dense_indices(
    start: IntOrTensor,
    stop: IntOrTensor,
    frames: int,
    stride: int = 1,
    *,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A dense clip: ``frames`` indices ``stride`` apart inside ``[start, stop]``.

    The clip spans ``(frames-1)*stride + 1`` frames; it starts at a random position (train,
    ``generator`` required) or is centred (test). A segment shorter than the span gives a clip
    that starts at ``start`` and repeats the last frame (indices clamped to ``stop``).
    """
    _check_frames(frames)
    _check_frames(stride, "stride")
    s, e, scalar = _segments(start, stop)
    span = (frames - 1) * stride + 1
    slack = (e - s + 1 - span).clamp(min=0)  # (N,)
    if train:
        if generator is None:
            raise ValueError("dense_indices(train=True) needs an explicit torch.Generator")
        u = torch.rand(s.shape[0], generator=generator, dtype=torch.float64)
        first = s + (u * (slack + 1)).long().clamp(max=slack)
    else:
        first = s + slack // 2
    idx = first[:, None] + stride * torch.arange(frames, dtype=torch.long)[None, :]
    idx = torch.minimum(idx, e[:, None])
    return idx[0] if scalar else idx


def anticipation_indices(
    start_frame: IntOrTensor,
    fps: float | Tensor,
    frames: int,
    tau_a: float = 1.0,
    tau_o: float = 2.0,
    *,
    first_frame: int = 1,
) -> tuple[Tensor, Tensor, Tensor]:
    """Frames observed before an action, for anticipation ``tau_a`` seconds ahead.

    The action starts at frame ``start_frame`` (time ``t_s = start_frame / fps``); the cut is
    ``c = start_frame - tau_a * fps`` (time ``t_s - tau_a``). ``frames`` samples are taken at the
    times ``t_s - tau_a - j * alpha`` (``j = frames-1 .. 0``, ``alpha = tau_o / frames``), i.e. the
    observation window ``[t_s - tau_a - tau_o, t_s - tau_a)`` is covered by ``frames`` steps of
    ``alpha`` seconds ending at the cut (RULSTM's rule with ``alpha = 0.25 s``).

    Frame rule: the index for real position ``x`` is the largest integer strictly below ``x``
    (``ceil(x) - 1``). RULSTM takes ``floor(x)``, which equals the cut itself when ``x`` is an
    integer; taking the strictly smaller frame guarantees that **no index is >= the cut**, at the
    cost of up to one frame of extra gap. Positions are rounded to 1e-6 frame before the ceiling
    so that float noise (``12.000000001``) cannot move a frame across the cut.

    Indices below ``first_frame`` are clamped to ``first_frame`` (the earliest valid frame,
    ``clamped``). When even the last index is below ``first_frame`` -- the action starts less
    than ``tau_a`` after the video -- no frame may be observed: the sample is ``too_early`` and
    its indices are set to ``first_frame - 1`` (a sentinel the loaders turn into black frames);
    such samples must be kept and scored as misses, never dropped.

    Returns ``(indices (N, T) or (T,), too_early (N,) or (), clamped (N,) or ())``.
    """
    _check_frames(frames)
    if tau_a < 0 or tau_o <= 0:
        raise ValueError(f"need tau_a >= 0 and tau_o > 0 seconds, got tau_a={tau_a}, tau_o={tau_o}")
    s, scalar = _as_long(start_frame, "start_frame")
    fps_t = torch.as_tensor(fps, dtype=torch.float64).reshape(-1)
    if (fps_t <= 0).any():
        raise ValueError(f"fps must be positive, got {fps}")
    s, fps_t = torch.broadcast_tensors(s, fps_t)
    alpha = tau_o / frames
    back = tau_a + alpha * torch.arange(frames - 1, -1, -1, dtype=torch.float64)  # (T,) seconds before t_s
    pos = s[:, None].double() - back[None, :] * fps_t[:, None]  # (N, T) real frame positions
    pos = torch.round(pos * 1e6) / 1e6
    idx = torch.ceil(pos).long() - 1
    too_early = idx[:, -1] < first_frame
    clamped = (idx[:, 0] < first_frame) & ~too_early
    idx = idx.clamp(min=first_frame)
    idx[too_early] = first_frame - 1
    if scalar and fps_t.numel() == 1:
        return idx[0], too_early[0], clamped[0]
    return idx, too_early, clamped


class UniformSampler:
    """``sampler(start, stop) -> (T,)`` evenly spaced indices (deterministic)."""

    def __init__(self, frames: int = 8):
        _check_frames(frames)
        self.frames = frames

    def __call__(self, start: IntOrTensor, stop: IntOrTensor) -> Tensor:
        return uniform_indices(start, stop, self.frames)

    def __repr__(self) -> str:
        return f"UniformSampler(frames={self.frames})"


class SeededRandom:
    """A private ``torch.Generator`` seeded with ``seed``, re-seeded once inside each DataLoader
    worker (with ``seed + 1_000_003 * (worker id + 1)``): workers copy their dataset, and without
    this every worker would draw the same "random" offsets."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._worker: int | None = None

    def _rng(self) -> torch.Generator:
        info = torch.utils.data.get_worker_info()
        if info is not None and info.id != self._worker:
            self._worker = info.id
            self.generator.manual_seed(self.seed + 1_000_003 * (info.id + 1))
        return self.generator


class TSNSampler(SeededRandom):
    """``sampler(start, stop)``: TSN sampling, random offsets when ``train`` (seeded generator)."""

    def __init__(self, segments: int = 8, train: bool = True, seed: int = 0):
        _check_frames(segments, "segments")
        super().__init__(seed)
        self.frames = segments
        self.train = train

    def __call__(self, start: IntOrTensor, stop: IntOrTensor) -> Tensor:
        return tsn_indices(start, stop, self.frames, train=self.train, generator=self._rng())

    def __repr__(self) -> str:
        return f"TSNSampler(segments={self.frames}, train={self.train}, seed={self.seed})"


class DenseSampler(SeededRandom):
    """``sampler(start, stop)``: a dense clip, random start when ``train`` (seeded generator)."""

    def __init__(self, frames: int = 8, stride: int = 1, train: bool = True, seed: int = 0):
        _check_frames(frames)
        _check_frames(stride, "stride")
        super().__init__(seed)
        self.frames, self.stride, self.train = frames, stride, train

    def __call__(self, start: IntOrTensor, stop: IntOrTensor) -> Tensor:
        return dense_indices(start, stop, self.frames, self.stride, train=self.train, generator=self._rng())

    def __repr__(self) -> str:
        return f"DenseSampler(frames={self.frames}, stride={self.stride}, train={self.train}, seed={self.seed})"
