"""Pictures of clips: storyboards, CAM / spatial-attention overlays, and an inline player.

Clips are ``(C, T, H, W)`` (the dataset-item layout; a batch of one ``(1, C, T, H, W)`` is also
accepted), uint8 or float in [0, 1]. Every function returning a figure returns a matplotlib
Figure outside pyplot (it shows once in a notebook, when it is the cell's last expression).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io

import numpy as np

from .style import _as_numpy, course_style, new_figure, time_label, to_numpy_video

__all__ = ["attention_over_space", "cam_overlay", "counterfactual_storyboard", "frame_indices", "storyboard", "video_player"]


def frame_indices(num_frames: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` evenly spaced frame indices of ``0 .. num_frames - 1`` (ends included)."""
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got T={num_frames}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if num_frames <= max_frames:
        return np.arange(num_frames)
    return np.unique(np.round(np.linspace(0, num_frames - 1, max_frames)).astype(int))


def _grid(fig, n: int, ncols: int):
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    axes = []
    for i in range(n):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
        axes.append(ax)
    return axes, nrows, ncols


def storyboard(
    clip,
    *,
    fps: float | None = None,
    max_frames: int = 16,
    ncols: int = 8,
    title: str | None = None,
    frame_titles=None,
    normalize: bool = False,
    panel_size: float = 1.1,
):
    """A grid of the clip's frames, each titled with its time stamp.

    ``clip``: ``(C, T, H, W)``; at most ``max_frames`` evenly spaced frames are shown (one axes
    each). Time stamps are frame indices (``t=5``) or seconds when ``fps`` is given;
    ``frame_titles`` (one string per shown frame) replaces them.
    """
    frames = to_numpy_video(clip, normalize=normalize)
    idx = frame_indices(frames.shape[0], max_frames)
    if frame_titles is not None and len(frame_titles) != len(idx):
        raise ValueError(f"frame_titles: expected {len(idx)} titles (one per shown frame), got {len(frame_titles)}")
    n = len(idx)
    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    aspect = frames.shape[1] / frames.shape[2]                     # H / W: wide frames, short rows
    with course_style():
        # each row is as tall as its frames (plus a line for the frame titles): no blank bands
        fig = new_figure(figsize=(panel_size * cols, (panel_size * aspect + 0.25) * rows + (0.3 if title else 0.1)))
        axes, _, _ = _grid(fig, n, cols)
        for j, (ax, t) in enumerate(zip(axes, idx)):
            ax.imshow(frames[t])
            ax.set_title(frame_titles[j] if frame_titles is not None else time_label(int(t), fps), fontsize=7)
        if title:
            fig.suptitle(title)
    return fig


def counterfactual_storyboard(
    clip,
    slot_steps,
    before,
    after,
    *,
    prediction_before: int,
    prediction_after: int,
    target: int,
    class_names=None,
    fps: float | None = None,
    ncols: int = 8,
    title: str | None = None,
    panel_size: float = 1.3,
):
    """The frames of a window with the past evidence a counterfactual search changed.

    Plain arrays in (from e.g. :class:`lecturekit.analysis.aga.Counterfactual`: ``slot_steps``,
    ``before_topk``, ``after_topk``, ``prediction_before`` ...). Every memory slot's frame is
    titled with the slot's original top action and, below it, the counterfactual one; the
    frames whose top action changed are framed in red (the evidence that was altered). The last
    frame is the steered step, titled with the prediction before and after.

    Args:
        clip: the window's frames (C, T, H, W), uint8 or float in [0, 1].
        slot_steps: (S',) the frame index of every memory slot (in ``0 .. T - 2``).
        before: (S',) or (S', k) the slots' original top action(s) (column 0 is shown).
        after: same shape as ``before``, the slots' counterfactual top action(s).
        prediction_before, prediction_after, target: action ids at the steered (last) step.
        class_names: names of the action ids (default: the ids).
        fps, ncols, title, panel_size: as in :func:`storyboard`.

    Returns:
        A matplotlib Figure with one axes per frame of the window.
    """
    frames = to_numpy_video(clip)
    T = frames.shape[0]
    steps = np.asarray(_as_numpy(slot_steps)).astype(int).reshape(-1)
    b = np.asarray(_as_numpy(before)).astype(int)
    a = np.asarray(_as_numpy(after)).astype(int)
    if b.ndim == 1:
        b = b[:, None]
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim != 2 or a.shape != b.shape or b.shape[0] != steps.shape[0]:
        raise ValueError(f"before/after: expected ({steps.shape[0]},) or ({steps.shape[0]}, k) each (one row per slot), "
                         f"got {b.shape} and {a.shape}")
    if steps.size and (steps.min() < 0 or steps.max() >= T - 1):
        raise ValueError(f"slot_steps: expected frame indices in [0, {T - 1}) (the last frame is the steered step), "
                         f"got {steps.tolist()}")

    def name(i: int) -> str:
        return str(class_names[i]) if class_names is not None else str(i)

    titles, changed = [time_label(t, fps) for t in range(T)], np.zeros(T, dtype=bool)
    for t, bt, at in zip(steps, b[:, 0], a[:, 0]):
        titles[t] = f"{time_label(int(t), fps)}\n{name(int(bt))}\n-> {name(int(at))}"
        changed[t] = bt != at
    titles[T - 1] = f"{time_label(T - 1, fps)} (steered)\n{name(prediction_before)}\n-> {name(prediction_after)}"
    n, cols = T, max(1, min(ncols, T))
    rows = -(-n // cols)
    aspect = frames.shape[1] / frames.shape[2]
    with course_style():
        fig = new_figure(figsize=(panel_size * cols, (panel_size * aspect + 0.6) * rows + 0.4))
        axes, _, _ = _grid(fig, n, cols)
        for t, ax in enumerate(axes):
            ax.imshow(frames[t])
            ax.set_title(titles[t], fontsize=6)
            if changed[t] or t == T - 1:
                colour = "tab:red" if changed[t] else "tab:blue"
                for side in ("top", "right", "bottom", "left"):
                    ax.spines[side].set_visible(True)
                    ax.spines[side].set_color(colour)
                    ax.spines[side].set_linewidth(2.0)
        reached = "reached" if prediction_after == target else "not reached"
        fig.suptitle(title or f"counterfactual past: target {name(target)} ({reached}); red = changed evidence",
                     fontsize=8)
    return fig


def _upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, h, w) maps -> (T, H, W) by bilinear interpolation (torch, align_corners=False)."""
    import torch

    t = torch.as_tensor(maps, dtype=torch.float32)[:, None]
    if t.shape[-2:] == size:
        return t[:, 0].numpy()
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def _maps_for_clip(maps, T: int, name: str) -> np.ndarray:
    arr = _as_numpy(maps).astype(np.float32)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = np.broadcast_to(arr, (T, *arr.shape))
    if arr.ndim != 3 or arr.shape[0] != T:
        raise ValueError(f"{name}: expected maps of shape (T={T}, h, w) or (h, w), got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: maps contain NaN or inf")
    return np.ascontiguousarray(arr)


def _overlay(clip, maps, *, name, per_frame, cmap, alpha, max_frames, ncols, fps, title, normalize, colorbar_label):
    frames = to_numpy_video(clip, normalize=normalize)
    T, H, W, _ = frames.shape
    m = _upsample_maps(_maps_for_clip(maps, T, name), (H, W))
    if per_frame:
        lo = m.min(axis=(1, 2), keepdims=True)
        hi = m.max(axis=(1, 2), keepdims=True)
        bar_range, bar_label = (0.0, 1.0), f"{colorbar_label} (per frame: min 0, max 1)"
    else:
        lo, hi = m.min(), m.max()
        bar_range, bar_label = (float(lo), float(hi)), colorbar_label
    m = (m - lo) / np.maximum(hi - lo, 1e-12)
    idx = frame_indices(T, max_frames)
    n = len(idx)
    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    with course_style():
        fig = new_figure(figsize=(1.3 * cols, 1.3 * rows + (0.3 if title else 0.1)))
        axes, _, _ = _grid(fig, n, cols)
        for ax, t in zip(axes, idx):
            ax.imshow(frames[t])
            ax.imshow(m[t], cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear")
            ax.set_title(time_label(int(t), fps), fontsize=7)
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        # the colour scale in the map's own units (a picture of values needs its key)
        fig.colorbar(ScalarMappable(norm=Normalize(*bar_range), cmap=cmap), ax=axes, shrink=0.8,
                     label=bar_label, pad=0.02)
        if title:
            fig.suptitle(title)
    return fig


def cam_overlay(
    clip,
    cam,
    *,
    alpha: float = 0.5,
    max_frames: int = 8,
    ncols: int = 8,
    fps: float | None = None,
    title: str | None = "class activation map",
    normalize: bool = False,
    colorbar_label: str = "CAM",
):
    """Class activation maps laid over the frames they explain.

    ``cam``: ``(T, h, w)`` (one map per frame, e.g. a CAM from a frame-wise backbone) or
    ``(h, w)`` (one map for the whole clip); it is upsampled bilinearly to the frame size and
    scaled to [0, 1] over the whole clip (so frames can be compared). One axes per shown frame.
    """
    return _overlay(clip, cam, name="cam", per_frame=False, cmap="jet", alpha=alpha, max_frames=max_frames,
                    ncols=ncols, fps=fps, title=title, normalize=normalize, colorbar_label=colorbar_label)


def attention_over_space(
    clip,
    weights,
    *,
    alpha: float = 0.55,
    max_frames: int = 8,
    ncols: int = 8,
    fps: float | None = None,
    title: str | None = "spatial attention",
    normalize: bool = False,
):
    """Spatial attention weights ``(T, h, w)`` (or ``(h, w)``) over the frames, scaled per frame
    (each frame's weights sum to one, so only their layout within a frame is comparable)."""
    return _overlay(clip, weights, name="weights", per_frame=True, cmap="viridis", alpha=alpha,
                    max_frames=max_frames, ncols=ncols, fps=fps, title=title, normalize=normalize,
                    colorbar_label="attention")


def _png(frame: np.ndarray, scale: int) -> bytes:
    from PIL import Image

    img = Image.fromarray(frame)
    if scale != 1:
        img = img.resize((frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def video_player(
    clip,
    *,
    fps: float = 8.0,
    scale: int = 4,
    max_bytes: int = 1_500_000,
    labels=None,
    loop: bool = True,
    normalize: bool = False,
):
    """An inline player (HTML + a little JavaScript, frames as base64 PNG; no ffmpeg, works in
    JupyterLab and Colab). Returns an ``IPython.display.HTML`` object; ``.data`` is the markup.

    ``scale`` enlarges frames (nearest neighbour). If the encoded frames exceed ``max_bytes``,
    every k-th frame is kept (and the caption says so), so stored notebooks stay small.
    ``labels``: one caption per frame (for example the model's prediction at that time).
    Where scripts do not run (an untrusted notebook, GitHub's viewer), the first frame shows.
    """
    from IPython.display import HTML

    frames = to_numpy_video(clip, normalize=normalize)
    T = frames.shape[0]
    if labels is not None and len(labels) != T:
        raise ValueError(f"labels: expected one caption per frame ({T}), got {len(labels)}")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    pngs = [base64.b64encode(_png(f, scale)).decode("ascii") for f in frames]
    keep = list(range(T))
    step = 1
    while sum(len(pngs[i]) for i in keep) > max_bytes and len(keep) > 1:
        step += 1
        keep = list(range(0, T, step))
    if sum(len(pngs[i]) for i in keep) > max_bytes:
        raise ValueError(f"one frame alone exceeds max_bytes={max_bytes}; lower scale")
    uid = "lkplayer_" + hashlib.sha1("".join(pngs[i] for i in keep).encode()).hexdigest()[:12]
    srcs = ",".join(f'"data:image/png;base64,{pngs[i]}"' for i in keep)
    caps = [html.escape(str(labels[i])) if labels is not None else "" for i in keep]
    times = [f"{i / fps:.2f} s (frame {i})" for i in keep]
    caption = f"{len(keep)} of {T} frames (every {step}th) to stay under {max_bytes // 1000} kB" if step > 1 else f"{T} frames at {fps:g} fps"
    h, w = frames.shape[1] * scale, frames.shape[2] * scale
    interval = int(round(1000 * step / fps))
    markup = f"""
<div id="{uid}" style="font-family: sans-serif; font-size: 12px; display: inline-block">
  <img id="{uid}_img" src="data:image/png;base64,{pngs[keep[0]]}" width="{w}" height="{h}"
       style="image-rendering: pixelated; display: block"/>
  <div><button id="{uid}_btn">play</button>
  <input id="{uid}_rng" type="range" min="0" max="{len(keep) - 1}" value="0" style="width: {max(w - 60, 80)}px"/></div>
  <div id="{uid}_cap">{times[0]} {caps[0]}</div>
  <div style="color: #888">{caption}</div>
</div>
<script>
(function() {{
  var srcs = [{srcs}];
  var caps = {caps!r};
  var times = {times!r};
  var img = document.getElementById("{uid}_img"), rng = document.getElementById("{uid}_rng");
  var btn = document.getElementById("{uid}_btn"), cap = document.getElementById("{uid}_cap");
  var i = 0, timer = null;
  function show(j) {{ i = j; img.src = srcs[j]; rng.value = j; cap.textContent = times[j] + " " + caps[j]; }}
  function tick() {{ if (i + 1 < srcs.length) show(i + 1); else if ({str(loop).lower()}) show(0); else stop(); }}
  function stop() {{ clearInterval(timer); timer = null; btn.textContent = "play"; }}
  btn.onclick = function() {{ if (timer) stop(); else {{ timer = setInterval(tick, {interval}); btn.textContent = "pause"; }} }};
  rng.oninput = function() {{ stop(); show(parseInt(rng.value)); }};
}})();
</script>"""
    return HTML(markup)
