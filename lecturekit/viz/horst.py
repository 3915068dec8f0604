"""Pictures for HORST (notebook 11): what STATT reads from its queue, and what it costs.

* :func:`statt_window`: one window of frames; for the last step, the spatial map S_s of every
  queue slot laid over the frame that slot came from, and below, the temporal weights T of every
  step as a (step x "steps back") matrix.
* :func:`cost_curves`: cost of two attention variants against the queue length S, on log-log
  axes, one panel per measured quantity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .style import _as_numpy, course_style, new_figure, to_numpy_video

__all__ = ["cost_curves", "statt_window"]


def statt_window(frames, s_maps: Sequence, t_weights: Sequence, *, title: str | None = None,
                 frame_labels: Sequence[str] | None = None):
    """STATT's two factors on one window of T steps.

    ``frames``: (3, T, H, W) uint8 or float in [0, 1]; ``s_maps[t]``: (S_t, h, w) spatial maps read at
    step t (oldest slot first), ``t_weights[t]``: (S_t,) temporal weights at step t. Slot j of the
    last step holds the state of step T - S_T + j (the queue keeps the last S_T steps), so its map
    is drawn over that frame; the first step reads one all-zero slot and is shown hatched.
    """
    video = to_numpy_video(frames)                                    # (T, H, W, 3)
    T = video.shape[0]
    if len(s_maps) != T or len(t_weights) != T:
        raise ValueError(f"s_maps, t_weights: expected {T} steps each, got {len(s_maps)} and {len(t_weights)}")
    last_s = np.asarray(_as_numpy(s_maps[-1]), float)
    last_t = np.asarray(_as_numpy(t_weights[-1]), float)
    if last_s.ndim != 3 or last_s.shape[0] != last_t.shape[0]:
        raise ValueError(f"s_maps[-1]: expected (S, h, w) with S = {last_t.shape[0]}, got {last_s.shape}")
    order = max(np.asarray(_as_numpy(w)).shape[0] for w in t_weights)
    mat = np.full((T, order), np.nan)
    for t, w in enumerate(t_weights):
        w = np.asarray(_as_numpy(w), float).reshape(-1)
        if t > 0:                                                      # slot j of step t = step t - S_t + j
            mat[t, : len(w)] = w[::-1]                                 # column b = b + 1 steps back
    n_slots = last_s.shape[0]
    first = T - 1 - n_slots
    with course_style():
        fig = new_figure(figsize=(max(7.5, 1.25 * T), 4.0))
        fig.set_layout_engine("none")                                 # the grid below is placed by hand
        grid = fig.add_gridspec(2, T, height_ratios=[1.0, 1.1], hspace=0.45, left=0.06, right=0.98,
                                top=0.84, bottom=0.12)
        from PIL import Image

        for t in range(T):
            ax = fig.add_subplot(grid[0, t])
            ax.imshow(video[t])
            ax.set_xticks([])
            ax.set_yticks([])
            label = frame_labels[t] if frame_labels is not None else f"step {t + 1}"
            j = t - first
            if 0 <= j < n_slots:
                h, w = video.shape[1:3]
                up = np.asarray(Image.fromarray(last_s[j].astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
                ax.imshow(up, cmap="magma", alpha=0.55, vmin=0.0, vmax=1.0)   # dark: gated away, bright: read
                label += f"\nS map, T={last_t[j]:.2f}"
            elif t == T - 1:
                label += "\n(query)"
            ax.set_title(label, fontsize=7)
        ax = fig.add_subplot(grid[1, 1: max(3, T // 2 + 2)])
        im = ax.imshow(mat.T, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(T))
        ax.set_xticklabels([str(t + 1) for t in range(T)], fontsize=7)
        ax.set_yticks(range(order))
        ax.set_yticklabels([str(b + 1) for b in range(order)], fontsize=7)
        ax.grid(False)
        ax.set_xlabel("step t (query)")
        ax.set_ylabel("slot: steps back")
        ax.set_title("temporal weights T (softmax over the slots; step 1 reads a zero slot)", fontsize=8)
        fig.colorbar(im, cax=ax.inset_axes([1.03, 0.0, 0.04, 1.0]))
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


def cost_curves(orders: Sequence[int], panels: Mapping[str, Mapping[str, Sequence[float]]], *,
                title: str | None = None):
    """One log-log panel per quantity: ``panels[quantity][variant]`` = values over ``orders`` (S)."""
    s = np.asarray(orders, float)
    with course_style():
        fig = new_figure(figsize=(3.3 * len(panels), 3.0))
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (quantity, series) in zip(axes, panels.items()):
            for i, (name, values) in enumerate(series.items()):
                v = np.asarray(values, float)
                if v.shape != s.shape:
                    raise ValueError(f"{quantity}/{name}: expected {len(s)} values, got {v.shape}")
                ax.loglog(s, v, marker="o", ms=3, color=f"C{i}", label=name)
            ax.loglog(s, v[-1] * (s / s[-1]) ** 1, ls=":", color="grey", lw=0.8, label="slope 1")
            ax.loglog(s, v[-1] * (s / s[-1]) ** 2, ls="--", color="grey", lw=0.8, label="slope 2")
            ax.set_xticks(s)
            ax.set_xticklabels([str(int(x)) for x in s], fontsize=7)
            ax.set(xlabel="queue length S", title=quantity)
        axes[0].legend(fontsize=7)
        if title:
            fig.suptitle(title, fontsize=9)
    return fig
