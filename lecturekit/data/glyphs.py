"""Moving glyphs: a Moving-MNIST-style video-prediction dataset that needs no download.

Moving MNIST: N. Srivastava, E. Mansimov, R. Salakhutdinov, "Unsupervised Learning of Video
Representations using LSTMs", ICML 2015. https://arxiv.org/abs/1502.04681 . The standard test
set is 20 frames of 64 x 64 with two 28 x 28 MNIST digits, split 10 observed / 10 to predict.

What is kept from the original generator (the authors' bouncing-MNIST data handler), per glyph:

1. ``L = size - box`` (64 - 28 = 36): the range of the sprite's top-left corner in pixels.
2. Start at ``(x, y) ~ U[0, 1)^2`` with a unit direction ``(vx, vy)``; speed
   ``step_length`` (0.1, i.e. 3.6 px/frame) in units of ``L``.
3. Every frame **first moves** (``x += vx * step``), **then reflects**: ``x <= 0`` -> ``x = 0,
   vx = -vx``; ``x >= 1`` -> ``x = 1, vx = -vx``; the same for y. The start is never rendered.
4. Pixels by truncation: ``top = int(L * y)``, ``left = int(L * x)``.
5. Glyphs are composited with the element-wise **maximum** (overlap is not a sum).

What differs (so numbers are comparable in spirit with published Moving-MNIST results, not
bit-identical): the digits come from a 5 x 7 bitmap font written for this file, rasterised
anti-aliased into the 28 x 28 box with per-sample augmentation (glyph height 14-22 px, stroke
thickening, slant, intensity), instead of MNIST handwriting.

Determinism: all random numbers of sample ``i`` are row ``i`` of one ``(N, K)`` draw of
``numpy.random.default_rng(seed)`` (so a sample does not depend on ``num_samples``); the unit
direction is drawn by rejection sampling in the square (no ``sin``/``cos``, whose last bit may
differ between platforms' libm); the font is rasterised in integer arithmetic. Same seed, same
bytes, on any machine. Rendering is vectorised numpy (no Python loop over samples or pixels).
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

# A 5 x 7 bitmap font for the digits 0-9 ('#' = ink), drawn for this package.
_FONT_ROWS = {
    0: (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    1: ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    2: (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    3: (".###.", "#...#", "....#", "..##.", "....#", "#...#", ".###."),
    4: ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    5: ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    6: ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    7: ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    8: (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    9: (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
}
FONT = np.array([[[c == "#" for c in row] for row in _FONT_ROWS[d]] for d in range(10)], dtype=bool)  # (10, 7, 5)

_SUB = 4  # subsamples per pixel side for anti-aliasing
_N_CANDIDATES = 16  # rejection-sampling candidates for the direction
_AUG_HEIGHTS = 5  # glyph height levels: 0.5 .. 0.8 of the box
_AUG_THICK = 3  # stroke dilation levels: 0, 1/2, 1 pixel
_AUG_SLANT = 3  # slant levels: -1/4, 0, +1/4 (columns per row)
_PER_GLYPH = 1 + 2 + 2 * _N_CANDIDATES + 4  # digit, x0, y0, direction candidates, 4 augmentations


@lru_cache(maxsize=8)
def glyph_table(box: int = 28) -> np.ndarray:
    """All augmented sprites: uint8 ``(10 digits, heights, thickness, slant, box, box)``.

    Integer rasterisation: each output pixel has 4 x 4 subsamples, each subsample takes the font
    cell it falls in (``cell = ((2 r + 1) * 7) // (2 * h * 4)``), strokes are dilated by a square
    of ``k`` subsamples, the slant shifts row ``r`` by ``(r - centre) * s // 4`` subsamples, and
    the sprite value is ``255 * (ink subsamples) // 16``.
    """
    S = _SUB
    B = box * S
    out = np.zeros((10, _AUG_HEIGHTS, _AUG_THICK, _AUG_SLANT, box, box), dtype=np.uint8)
    for hl in range(_AUG_HEIGHTS):
        h = max(7, (box * (50 + 30 * hl // (_AUG_HEIGHTS - 1))) // 100)  # 0.5 .. 0.8 of the box
        w = max(5, (h * 5 + 3) // 7)
        r = np.arange(h * S)
        c = np.arange(w * S)
        fr = ((2 * r + 1) * 7) // (2 * h * S)  # font row of each sub-row
        fc = ((2 * c + 1) * 5) // (2 * w * S)  # font column of each sub-column
        top, left = (B - h * S) // 2, (B - w * S) // 2
        for d in range(10):
            hi = np.zeros((B, B), dtype=bool)
            hi[top : top + h * S, left : left + w * S] = FONT[d][fr[:, None], fc[None, :]]
            for tl in range(_AUG_THICK):
                k = tl * S // 4  # dilation per side in subsamples: strokes 0, 1/2, 1 px thicker
                th = hi.copy()
                for s in range(1, k + 1):  # square structuring element, separable: rows ...
                    th[s:, :] |= hi[:-s, :]
                    th[:-s, :] |= hi[s:, :]
                th2 = th.copy()
                for s in range(1, k + 1):  # ... then columns
                    th2[:, s:] |= th[:, :-s]
                    th2[:, :-s] |= th[:, s:]
                for sl in range(_AUG_SLANT):
                    slope = sl - (_AUG_SLANT // 2)  # -1, 0, +1 quarter-columns per row
                    sh = np.zeros_like(th2)
                    rows = np.arange(B)
                    shift = ((B // 2 - rows) * slope) // 4  # positive: right at the top (italic)
                    cols = np.arange(B)[None, :] - shift[:, None]
                    valid = (cols >= 0) & (cols < B)
                    sh[valid] = th2[np.broadcast_to(rows[:, None], (B, B))[valid], cols[valid]]
                    ink = sh.reshape(box, S, box, S).sum(axis=(1, 3))
                    out[d, hl, tl, sl] = (ink * 255) // (S * S)
    return out


class MovingGlyphs(torch.utils.data.Dataset):
    """Moving-MNIST-style clips: 1-2 digit glyphs bouncing in a square with constant speed.

    Args:
        seed: everything follows from it (byte-identical on any machine).
        size: canvas side (64).
        frames: clip length T (20).
        glyphs: number of glyphs, an int or a ``(low, high)`` range drawn per sample ((1, 2)).
        num_samples: dataset length.
        observed: frames given to a model (default ``frames // 2``: 10 of 20); the other
            ``frames - observed`` are the future to predict.
        box: sprite box side (default ``round(size * 28 / 64)``: 28 on a 64 canvas).
        step_length: speed in units of the free range ``size - box`` per frame (0.1 = 3.6 px).
        augment: per-sample glyph height, stroke thickness, slant and intensity (off: one
            middle style, full intensity).
        dtype: ``torch.float32`` (pixels in [0, 1]) or ``torch.uint8``.

    Items: ``(video (1, T, H, W), labels)`` with ``digits`` (long ``(G,)``, -1 for an absent
    glyph), ``num_glyphs``, ``positions`` (long ``(G, T, 2)``: top, left pixel; -1 absent) and
    ``index``. :meth:`tensors` renders the whole set ``(N, 1, T, H, W)``; :meth:`split` cuts a clip
    into observed / future frames.
    """

    def __init__(
        self,
        seed: int = 0,
        size: int = 64,
        frames: int = 20,
        glyphs: int | tuple[int, int] = (1, 2),
        num_samples: int = 1000,
        *,
        observed: int | None = None,
        box: int | None = None,
        step_length: float = 0.1,
        augment: bool = True,
        dtype: torch.dtype = torch.float32,
    ):
        lo, hi = (glyphs, glyphs) if isinstance(glyphs, int) else (int(glyphs[0]), int(glyphs[1]))
        if not 1 <= lo <= hi:
            raise ValueError(f"glyphs must be >= 1 (an int or a (low, high) range), got {glyphs!r}")
        box = int(round(size * 28 / 64)) if box is None else int(box)
        if not 7 <= box < size:
            raise ValueError(f"need 7 <= box < size, got box={box}, size={size}")
        observed = frames // 2 if observed is None else int(observed)
        if not 0 < observed < frames:
            raise ValueError(f"need 0 < observed < frames, got observed={observed}, frames={frames}")
        if dtype not in (torch.float32, torch.uint8):
            raise ValueError(f"dtype must be torch.float32 or torch.uint8, got {dtype}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.seed, self.size, self.frames, self.num_samples = seed, size, frames, num_samples
        self.glyph_range = (lo, hi)
        self.max_glyphs = hi
        self.observed, self.future = observed, frames - observed
        self.box, self.step_length, self.augment, self.dtype = box, float(step_length), augment, dtype

        u = np.random.default_rng(seed).random((num_samples, 1 + hi * _PER_GLYPH))  # (N, K) in [0, 1)
        self._count = lo + np.minimum((u[:, 0] * (hi - lo + 1)).astype(np.int64), hi - lo)  # (N,)
        g = u[:, 1:].reshape(num_samples, hi, _PER_GLYPH)  # (N, G, per-glyph draws)
        self._digit = np.minimum((g[..., 0] * 10).astype(np.int64), 9)
        self._x0, self._y0 = g[..., 1], g[..., 2]
        cand = g[..., 3 : 3 + 2 * _N_CANDIDATES].reshape(num_samples, hi, _N_CANDIDATES, 2) * 2.0 - 1.0
        r2 = (cand**2).sum(-1)
        ok = (r2 > 1e-4) & (r2 <= 1.0)  # inside the unit disc, away from 0: direction uniform
        first = np.where(ok.any(-1), ok.argmax(-1), 0)
        pick = np.take_along_axis(cand, first[..., None, None], axis=2)[..., 0, :]  # (N, G, 2)
        norm = np.sqrt(np.take_along_axis(r2, first[..., None], axis=2)[..., 0])
        norm = np.where(ok.any(-1), norm, 1.0)
        pick = np.where(ok.any(-1)[..., None], pick, np.array([1.0, 0.0]))  # p < 1e-10: fixed direction
        self._vx, self._vy = pick[..., 0] / norm, pick[..., 1] / norm
        a = g[..., 3 + 2 * _N_CANDIDATES :]
        if augment:
            self._height = np.minimum((a[..., 0] * _AUG_HEIGHTS).astype(np.int64), _AUG_HEIGHTS - 1)
            self._thick = np.minimum((a[..., 1] * _AUG_THICK).astype(np.int64), _AUG_THICK - 1)
            self._slant = np.minimum((a[..., 2] * _AUG_SLANT).astype(np.int64), _AUG_SLANT - 1)
            self._intensity = 160 + np.minimum((a[..., 3] * 96).astype(np.int64), 95)  # 160..255
        else:
            shape = self._digit.shape
            self._height = np.full(shape, _AUG_HEIGHTS // 2 + 1)
            self._thick = np.full(shape, 1)
            self._slant = np.full(shape, _AUG_SLANT // 2)
            self._intensity = np.full(shape, 255)
        self._present = np.arange(hi)[None, :] < self._count[:, None]  # (N, G)

    # --- trajectories ---------------------------------------------------------------------------

    def _trajectories(self, sel: np.ndarray) -> np.ndarray:
        """Top-left pixels ``(n, G, T, 2)`` (top, left) of the selected samples: move, then reflect."""
        x, y = self._x0[sel].copy(), self._y0[sel].copy()
        vx, vy = self._vx[sel].copy(), self._vy[sel].copy()
        L = self.size - self.box
        out = np.empty(x.shape + (self.frames, 2), dtype=np.int64)
        step = self.step_length
        for t in range(self.frames):
            x += vx * step
            y += vy * step
            for p, v in ((x, vx), (y, vy)):
                low, high = p <= 0.0, p >= 1.0
                p[low] = 0.0
                p[high] = 1.0
                v[low | high] *= -1.0
            out[..., t, 0] = (L * y).astype(np.int64)  # truncation, as the original
            out[..., t, 1] = (L * x).astype(np.int64)
        return out

    def trajectories(self, index=None) -> Tensor:
        """Top-left pixel positions, long ``(N, G, T, 2)`` (or ``(G, T, 2)`` for one index); -1 absent."""
        sel = np.arange(self.num_samples) if index is None else np.atleast_1d(np.asarray(index))
        pos = self._trajectories(sel)
        pos[~self._present[sel]] = -1
        t = torch.from_numpy(pos)
        return t[0] if index is not None and np.ndim(index) == 0 else t

    def sample_params(self, i: int) -> dict:
        """The random draws of sample ``i`` (start, direction, digits, styles): for tests and plots."""
        n = self._count[i]
        return {
            "num_glyphs": int(n),
            "digits": self._digit[i, :n].tolist(),
            "x0": self._x0[i, :n].tolist(),
            "y0": self._y0[i, :n].tolist(),
            "vx": self._vx[i, :n].tolist(),
            "vy": self._vy[i, :n].tolist(),
            "range": self.size - self.box,
            "step_length": self.step_length,
        }

    # --- rendering --------------------------------------------------------------------------------

    def _render(self, sel: np.ndarray) -> np.ndarray:
        """uint8 ``(n, T, H, W)`` for the selected sample indices (vectorised)."""
        n, T, S, D = len(sel), self.frames, self.size, self.box
        canvas = np.zeros((n, T, S, S), dtype=np.uint8)
        pos = self._trajectories(sel)  # (n, G, T, 2)
        table = glyph_table(D)
        # every D x D window of every frame, as a writeable view (no copy): windows[n, t, top, left]
        # is the patch a glyph at (top, left) covers; one window per (sample, frame) is written at a
        # time, so the overlapping views never write the same pixel twice in one assignment
        st = canvas.strides
        windows = np.lib.stride_tricks.as_strided(
            canvas, shape=(n, T, S - D + 1, S - D + 1, D, D), strides=st + st[2:], writeable=True
        )
        ni, ti = np.arange(n)[:, None], np.arange(T)[None, :]
        for g in range(self.max_glyphs):
            sprite = table[
                self._digit[sel, g], self._height[sel, g], self._thick[sel, g], self._slant[sel, g]
            ].astype(np.uint16)  # (n, D, D)
            scale = np.where(self._present[sel, g], self._intensity[sel, g], 0).astype(np.uint16)
            sprite = ((sprite * scale[:, None, None]) // 255).astype(np.uint8)
            top, left = pos[:, g, :, 0], pos[:, g, :, 1]  # (n, T) each
            patch = windows[ni, ti, top, left]  # (n, T, D, D), a copy
            windows[ni, ti, top, left] = np.maximum(patch, sprite[:, None])  # max compositing
        return canvas

    def _to_tensor(self, arr: np.ndarray) -> Tensor:
        t = torch.from_numpy(arr).unsqueeze(-4)  # (..., 1, T, H, W)
        return t.float().div_(255.0) if self.dtype == torch.float32 else t

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i: int):
        if not -self.num_samples <= i < self.num_samples:
            raise IndexError(f"index {i} out of range for {self.num_samples} samples")
        i = i % self.num_samples
        sel = np.array([i])
        video = self._to_tensor(self._render(sel)[0])  # (1, T, H, W)
        digits = np.where(self._present[i], self._digit[i], -1)
        labels = {
            "digits": torch.from_numpy(digits),
            "num_glyphs": int(self._count[i]),
            "positions": self.trajectories(i),
            "index": i,
        }
        return video, labels

    def tensors(self, chunk: int = 512) -> Tensor:
        """The whole set, ``(N, 1, T, H, W)`` in ``dtype`` (rendered in chunks of ``chunk``)."""
        parts = [self._render(np.arange(s, min(s + chunk, self.num_samples))) for s in range(0, self.num_samples, chunk)]
        return self._to_tensor(np.concatenate(parts))

    def split(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """``(observed, future)``: the first ``observed`` and the remaining frames (T is dim -3)."""
        return split_observed(video, self.observed)

    # --- display ----------------------------------------------------------------------------------

    def storyboard(self, n: int = 3, dpi: int = 60):
        """A matplotlib Figure: ``n`` samples as rows of frames, a line between observed and future."""
        from matplotlib.figure import Figure

        n = min(n, self.num_samples)
        clips = self._render(np.arange(n))  # (n, T, H, W)
        T = self.frames
        fig = Figure(figsize=(T * 0.6, n * 0.66 + 0.3), dpi=dpi)
        axes = fig.subplots(n, T, squeeze=False)
        for r in range(n):
            for t in range(T):
                ax = axes[r, t]
                ax.imshow(clips[r, t], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                for side in ax.spines.values():
                    side.set_color("tab:orange" if t >= self.observed else "0.6")
                if r == 0:
                    ax.set_title(f"{'o' if t < self.observed else 'f'}{t}", fontsize=6)
        fig.suptitle(f"MovingGlyphs(seed={self.seed}): observed (grey) -> future (orange)", fontsize=8)
        return fig

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        fig = self.storyboard()
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def __repr__(self) -> str:
        return (
            f"MovingGlyphs(seed={self.seed}, size={self.size}, frames={self.frames}, glyphs={self.glyph_range}, "
            f"num_samples={self.num_samples}, observed={self.observed}, future={self.future})"
        )


def split_observed(video: Tensor, observed: int = 10) -> tuple[Tensor, Tensor]:
    """Cut ``(..., T, H, W)`` into the first ``observed`` frames and the rest (time is dim -3)."""
    if video.dim() < 3 or not 0 < observed < video.shape[-3]:
        raise ValueError(f"need a (..., T, H, W) video with T > observed={observed}, got shape {tuple(video.shape)}")
    return video[..., :observed, :, :], video[..., observed:, :, :]
