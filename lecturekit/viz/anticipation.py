"""Pictures and a widget for action anticipation (notebook 10).

* :func:`protocol_timeline`: the EPIC-KITCHENS-100 anticipation protocol on one video: the action
  segments, the observation window of ``tau_o`` seconds that ends ``tau_a`` seconds before the
  action, the frames actually sampled from it, and what happens when the window starts before
  the video (a *too-early* segment).
* :func:`tau_a_frames`: a widget: slide ``tau_a`` and see which frames of the video the model may
  see (the sampled ones framed in blue) and which it may not (greyed out).
* :func:`rulstm_diagram`: RU-LSTM's rolling LSTM and the unrolling LSTM started from it at every
  step, drawn over time.
* :func:`causal_attention_figure`: AVT's causal attention mask next to (optionally) the attention
  weights a trained head actually uses.

Frame rule: :func:`lecturekit.data.samplers.anticipation_indices` (the one the datasets use), so
the picture shows exactly the frames the models read. The widget follows
:mod:`lecturekit.viz.widgets`: core ipywidgets only, a ``VBox`` subclass with ``state``,
``controls`` and ``update(value)``, so it can be driven without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .style import course_style, figure_png, new_figure

__all__ = ["TauAFrames", "causal_attention_figure", "protocol_timeline", "rulstm_diagram", "sampled_frames",
           "tau_a_frames"]


def sampled_frames(start_frame: int, fps: float, *, tau_a: float = 1.0, tau_o: float = 2.0,
                   frames: int = 8) -> tuple[np.ndarray, bool, bool]:
    """0-based indices of the ``frames`` frames observed before an action starting at 0-based frame
    ``start_frame``: ``(indices (frames,), too_early, unobserved)``; -1 marks a black frame (nothing
    may be seen). The rule of :func:`lecturekit.data.samplers.anticipation_indices`."""
    import torch

    from ..data.samplers import anticipation_indices

    idx, unobserved, clamped = anticipation_indices(torch.tensor([int(start_frame) + 1]), float(fps), frames,
                                                    tau_a, tau_o, first_frame=1)
    return idx[0].numpy() - 1, bool(clamped[0] or unobserved[0]), bool(unobserved[0])


def _hex(color: str) -> str:
    """A colour resolved now (inside the course style): text colours are otherwise resolved at draw time."""
    from matplotlib.colors import to_hex

    return to_hex(color)


def _segments(starts, stops, labels):
    starts, stops, labels = (np.asarray(a) for a in (starts, stops, labels))
    if not (starts.shape == stops.shape == labels.shape) or starts.ndim != 1:
        raise ValueError(f"starts, stops, labels: expected three 1-D arrays of one length, got shapes "
                         f"{starts.shape}, {stops.shape}, {labels.shape}")
    return starts.astype(int), stops.astype(int), labels.astype(int)


def _draw_protocol(ax, starts, stops, labels, index, fps, tau_a, tau_o, frames, name, lo, hi):
    """One timeline row on ``ax`` (seconds); returns (indices, too_early)."""
    s = starts[index] / fps
    idx, too_early, _ = sampled_frames(starts[index], fps, tau_a=tau_a, tau_o=tau_o, frames=frames)
    for i, (a, b, c) in enumerate(zip(starts, stops, labels)):
        a, b = a / fps, (b + 1) / fps
        if b < lo or a > hi:
            continue
        ax.barh(0.75, b - a, left=a, height=0.3, color="C1" if i == index else "0.85", edgecolor="k", lw=0.5)
        ax.text((max(a, lo) + min(b, hi)) / 2, 0.75, name(c), ha="center", va="center", fontsize=6.5, clip_on=True)
    w0 = s - tau_a - tau_o
    ax.barh(0.32, tau_o, left=w0, height=0.26, color="C0", alpha=0.25, edgecolor="C0")
    if w0 < 0:
        ax.barh(0.32, -w0, left=w0, height=0.26, color="none", edgecolor="C3", hatch="////", lw=0.8)
        ax.text(w0 / 2, 0.08, "before the video:\nfirst frame repeated", ha="center", va="center",
                fontsize=6, color=_hex("C3"))
    if tau_a > 0:
        ax.barh(0.32, tau_a, left=s - tau_a, height=0.26, color="0.6", alpha=0.35, hatch="xx", edgecolor="0.4", lw=0.5)
        ax.text(s - tau_a / 2, 0.32, f"τ_a = {tau_a:g} s\nnot seen", ha="center", va="center", fontsize=6)
    real = idx[idx >= 0]
    ax.plot((real + 0.5) / fps, np.full(len(real), 0.32), "v", color="C0", ms=5)
    ax.axvline(s - tau_a, color="C0", lw=0.8, ls="--")
    ax.axvline(s, color="C1", lw=0.8, ls="--")
    ax.axvline(0.0, color="k", lw=1.0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.grid(False)
    return idx, too_early


def protocol_timeline(starts, stops, labels, index: int | Sequence[int], *, fps: float, tau_a: float = 1.0,
                      tau_o: float = 2.0, frames: int = 8, class_names: Sequence[str] | None = None,
                      window: tuple[float, float] | None = None, title: str | None = None):
    """The anticipation protocol drawn on one video (times in seconds, frames 0-based).

    ``starts``, ``stops``, ``labels``: the action segments of one video (frames, stop inclusive);
    ``index``: the action(s) to anticipate, one row each. Each row shows the segments (the
    target orange), the observation window ``[t_s - tau_a - tau_o, t_s - tau_a)`` (blue), the
    ``tau_a`` seconds in which nothing may be seen (hatched grey), the ``frames`` sampled frames
    (triangles) and, for a *too-early* target, the part of the window before the video (red).
    """
    starts, stops, labels = _segments(starts, stops, labels)
    rows = [int(index)] if np.ndim(index) == 0 else [int(i) for i in index]
    if not rows or any(not 0 <= i < len(starts) for i in rows):
        raise ValueError(f"index: expected action indices in [0, {len(starts)}), got {index}")
    if tau_a < 0 or tau_o <= 0 or fps <= 0:
        raise ValueError(f"expected tau_a >= 0, tau_o > 0, fps > 0; got tau_a={tau_a}, tau_o={tau_o}, fps={fps}")
    name = (lambda c: class_names[c]) if class_names is not None else (lambda c: f"class {c}")
    with course_style():
        fig = new_figure(figsize=(9.0, 1.5 * len(rows) + 0.4))
        axes = np.atleast_1d(fig.subplots(len(rows), 1))
        for ax, i in zip(axes, rows):
            s = starts[i] / fps
            lo, hi = window if window is not None else (s - tau_a - tau_o - 1.0, (stops[i] + 1) / fps + 1.5)
            idx, too_early = _draw_protocol(ax, starts, stops, labels, i, fps, tau_a, tau_o, frames, name, lo, hi)
            real = idx[idx >= 0]
            what = (f"too early: the window starts {-(s - tau_a - tau_o):.2f} s before the video"
                    if too_early else "the whole window lies inside the video")
            ax.set_title(f"anticipate '{name(labels[i])}' (starts at {s:.2f} s): frames {sorted(set(real.tolist()))} "
                         f"observed; {what}", fontsize=7.5, loc="left")
        axes[-1].set_xlabel("time (s)")
        if title:
            fig.suptitle(title, fontsize=9)
        return fig


def _thumbs(video, lo: int, hi: int, seen: set[int], allowed_until: int, step: int = 1) -> np.ndarray:
    """Frames lo..hi (every ``step``) side by side; sampled frames framed blue, the frames the
    model may not see (index >= allowed_until) greyed out."""
    tiles = []
    for f in range(lo, hi + 1, step):
        if 0 <= f < len(video):
            tile = video[f].astype(np.float32)
        else:
            tile = np.full(video.shape[1:], 255.0, np.float32)            # outside the video: white
        if f >= allowed_until:
            tile = tile * 0.25 + 190
        tile = np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=255)
        if f in seen:
            tile[:2], tile[-2:], tile[:, :2], tile[:, -2:] = (31, 119, 180), (31, 119, 180), (31, 119, 180), (31, 119, 180)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1).astype(np.uint8)


try:  # the class exists only where ipywidgets does (the function imports it again and says so)
    import ipywidgets as _ipw

    class TauAFrames(_ipw.VBox):
        """The widget returned by :func:`tau_a_frames`."""
except ImportError:  # pragma: no cover - ipywidgets is a dependency of the course
    TauAFrames = None  # type: ignore[assignment,misc]


def tau_a_frames(video, starts, stops, labels, index: int, *, fps: float, tau_o: float = 2.0, frames: int = 8,
                 tau_a: float = 1.0, tau_a_max: float = 3.0, step: float = 0.25,
                 class_names: Sequence[str] | None = None):
    """Slide the anticipation time ``tau_a`` and see which frames the model may see.

    ``video``: uint8 ``(T, H, W, 3)`` of the long video; ``starts``, ``stops``, ``labels``: its
    action segments (0-based frames); ``index``: the action to anticipate. The picture shows the
    protocol timeline and, below it, the frames from ``tau_a_max + tau_o`` seconds before the
    action to its end (every other frame when the sampled ones all have one parity): the frames the model reads are framed in blue, the frames it may not see
    (from the cut ``t_s - tau_a`` on) are greyed out.

    ``state``: ``tau_a``, ``indices`` (the sampled 0-based frames, -1 = black), ``cut`` (the first
    frame the model may not see), ``too_early``, ``distinct`` (how many different frames it reads).
    """
    import ipywidgets as w

    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video: expected uint8 (T, H, W, 3), got shape {video.shape}")
    starts, stops, labels = _segments(starts, stops, labels)
    if not 0 <= int(index) < len(starts):
        raise ValueError(f"index: expected 0 <= index < {len(starts)}, got {index}")
    if not 0 <= tau_a <= tau_a_max or step <= 0:
        raise ValueError(f"expected 0 <= tau_a <= tau_a_max and step > 0, got tau_a={tau_a}, "
                         f"tau_a_max={tau_a_max}, step={step}")
    name = (lambda c: class_names[c]) if class_names is not None else (lambda c: f"class {c}")
    s_frame = int(starts[index])
    lo_f = int(np.floor(s_frame - (tau_a_max + tau_o) * fps))
    hi_f = int(stops[index])
    # show every other frame when the sampled frames keep one parity for every slider value
    # (sampling step and slider step both an even number of frames), else every frame
    every = 2 if all(abs(v * fps / 2 - round(v * fps / 2)) < 1e-9 for v in (tau_o / frames, step)) else 1
    if every == 2 and (s_frame - 1 - lo_f) % 2:
        lo_f -= 1
    lo, hi = lo_f / fps - 0.25, (hi_f + 1) / fps + 0.75

    slider = w.FloatSlider(value=float(tau_a), min=0.0, max=float(tau_a_max), step=float(step), description="tau_a (s)",
                           continuous_update=False, readout_format=".2f")
    readout = w.Label()
    image = w.Image(format="png")
    box = TauAFrames([w.HBox([slider, readout]), image])
    box.state, box.controls, box.slider, box.image = {}, {"tau_a": slider}, slider, image

    def render(t_a: float, idx: np.ndarray, cut: int) -> bytes:
        with course_style():
            fig = new_figure(figsize=(9.0, 3.3))
            gs = fig.add_gridspec(2, 1, height_ratios=[1.0, 1.0])
            ax = fig.add_subplot(gs[0])
            _draw_protocol(ax, starts, stops, labels, index, fps, t_a, tau_o, frames, name, lo, hi)
            ax.set_title(f"anticipate '{name(labels[index])}' τ_a = {t_a:g} s ahead", fontsize=8, loc="left")
            ax = fig.add_subplot(gs[1])
            ax.imshow(_thumbs(video, lo_f, hi_f, set(idx[idx >= 0].tolist()), cut, step=every))
            ticks = list(range(lo_f, hi_f + 1, 2 * every))
            size = video.shape[2] + 4
            ax.set_xticks([((f - lo_f) // every + 0.5) * size for f in ticks])
            ax.set_xticklabels([f"{f / fps:.1f}" for f in ticks], fontsize=6)
            ax.set_yticks([])
            ax.grid(False)
            shown = "every frame" if every == 1 else "every other frame"
            ax.set_xlabel(f"time (s), {shown}; framed blue: read by the model; greyed out: may not be seen", fontsize=7)
            return figure_png(fig)

    def update(t_a: float) -> dict:
        t_a = round(float(t_a), 6)
        if not 0 <= t_a <= tau_a_max:
            raise ValueError(f"tau_a: expected 0 <= tau_a <= {tau_a_max}, got {t_a}")
        idx, too_early, unobserved = sampled_frames(s_frame, fps, tau_a=t_a, tau_o=tau_o, frames=frames)
        cut = int(np.ceil(round(s_frame - t_a * fps, 6)))                     # first frame not allowed
        image.value = render(t_a, idx, cut)
        distinct = len(set(idx[idx >= 0].tolist()))
        readout.value = (f"reads {distinct} distinct frames, the last at {idx.max() / fps:.2f} s; the action starts "
                         f"at {s_frame / fps:.2f} s" + (" (too early: window starts before the video)" if too_early else ""))
        box.state.clear()
        box.state.update(tau_a=t_a, indices=idx.tolist(), cut=cut, too_early=too_early, unobserved=unobserved,
                         distinct=distinct)
        return box.state

    box.update = update
    slider.observe(lambda change: update(change["new"]), names="value")
    update(tau_a)
    return box




def rulstm_diagram(steps: int = 4):
    """RU-LSTM over ``steps`` time steps: the rolling LSTM (bottom row) reads f_1..f_T; at every
    step t the unrolling LSTM starts from the rolling state (h_t, c_t) and reads f_t again
    T - t + 2 times (1-based t, the official code's count) before the classifier gives ŷ_t."""
    if steps < 2:
        raise ValueError(f"steps: expected >= 2, got {steps}")
    from matplotlib.colors import to_hex

    with course_style():
        c0, c1, c3 = (to_hex(c) for c in ("C0", "C1", "C3"))   # resolved now: text colours are drawn later
        fig = new_figure(figsize=(9.0, 3.6))
        ax = fig.add_subplot()
        ax.set_axis_off()
        dx, dy, w_, h_ = 2.2, 0.62, 0.9, 0.42
        top = steps + 1
        for t in range(1, steps + 1):
            x = t * dx
            ax.add_patch(_box(x, 0, w_, h_, c0))
            ax.text(x, 0, "R", ha="center", va="center", fontsize=8, color="w")
            ax.annotate(f"f{t}", (x, -h_ / 2), (x, -0.75), ha="center", va="top", fontsize=8,
                        arrowprops=dict(arrowstyle="->", lw=0.7))
            if t > 1:
                ax.annotate("", (x - w_ / 2, 0), (x - dx + w_ / 2, 0), arrowprops=dict(arrowstyle="->", lw=0.9, color=c0))
            n = steps - t + 2
            ux = x + 0.75
            for j in range(n):
                y = (j + 1) * dy
                ax.add_patch(_box(ux, y, 0.55, 0.34, c1))
                ax.text(ux, y, "U", ha="center", va="center", fontsize=7, color="w")
                ax.text(ux + 0.38, y, f"f{t}", ha="left", va="center", fontsize=6, color="0.35")
                if j == 0:
                    ax.annotate("", (ux - 0.2, y - 0.17), (x + w_ / 2 - 0.1, h_ / 2),
                                arrowprops=dict(arrowstyle="->", lw=0.8, color=c0))
                else:
                    ax.annotate("", (ux, y - 0.17), (ux, y - dy + 0.17), arrowprops=dict(arrowstyle="->", lw=0.7))
            y = n * dy
            ax.annotate(f"ŷ{t}", (ux, y + 0.17), (ux, top * dy + 0.55), ha="center", fontsize=8, color=c3,
                        arrowprops=dict(arrowstyle="<-", lw=0.7, color=c3))
        ax.text(0.6, 0, "rolling\nLSTM", ha="right", va="center", fontsize=8, color=c0)
        ax.text(0.6, 2 * dy, "unrolling\nLSTM", ha="right", va="center", fontsize=8, color=c1)
        ax.set_xlim(-0.6, steps * dx + 1.6)
        ax.set_ylim(-1.25, top * dy + 0.95)
        ax.set_title(f"RU-LSTM over T = {steps} steps: the unrolling at step t starts from the rolling state and "
                     f"reads f_t again T − t + 2 times", fontsize=8)
        return fig


def _box(x, y, w, h, color):
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=color, ec="k", lw=0.5)


def causal_attention_figure(mask, weights=None, *, title: str | None = None):
    """AVT's causal mask ``(T, T)`` (True = query t may attend to key s, i.e. s <= t) and,
    optionally, attention weights ``(T, T)`` of a trained head (rows sum to 1)."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"mask: expected a square (T, T) array, got shape {m.shape}")
    panels = [("mask: query t may attend to key s ≤ t", m.astype(float), "Greys")]
    if weights is not None:
        a = np.asarray(weights, dtype=float)
        if a.shape != m.shape:
            raise ValueError(f"weights: expected shape {m.shape} like the mask, got {a.shape}")
        panels.append(("attention weights (mean over heads and windows)", a, "viridis"))
    T = m.shape[0]
    with course_style():
        fig = new_figure(figsize=(4.2 * len(panels), 3.4))
        for i, (name, data, cmap) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            im = ax.imshow(np.where(m, data, np.nan) if i else data, cmap=cmap, vmin=0, vmax=1 if not i else None)
            ax.set_xticks(range(T))
            ax.set_xticklabels([str(s + 1) for s in range(T)], fontsize=7)
            ax.set_yticks(range(T))
            ax.set_yticklabels([str(t + 1) for t in range(T)], fontsize=7)
            ax.set(xlabel="key: observed frame s", ylabel="query: position t", title=name)
            ax.title.set_fontsize(8)
            ax.grid(False)
            if i:
                fig.colorbar(im, ax=ax, shrink=0.8)
        if title:
            fig.suptitle(title, fontsize=9)
        return fig
