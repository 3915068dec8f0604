"""Interactive widgets where moving through time teaches something (core ipywidgets only, so
they work in JupyterLab, Jupyter Notebook and Colab without a custom widget manager).

* :func:`clip_scrubber`: step through a clip frame by frame and read the model's prediction at
  each step (what the model believes after seeing frames ``0..t``).
* :func:`early_recognition_explorer`: slide the observed fraction of an action and watch early
  recognition change.
* :func:`anticipation_explorer`: slide the anticipation time ``tau_a`` and watch the observed
  window move away from the action it must predict.

Each function returns the widget (a ``VBox`` subclass). Its ``state`` dict holds what is shown
now, its ``controls`` the sliders, and ``update(value)`` is the callback the slider calls, so
notebooks and tests can drive it without a browser: ``w.slider.value = 3`` updates ``w.state``.
Pictures are matplotlib figures rendered to PNG inside an ``Image`` widget (no ipympl). The
widget classes subclass ``VBox`` only on the Python side, so the browser sees core models.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import ipywidgets
import numpy as np

from .plots import anticipation_plot
from .style import _as_numpy, course_style, figure_png, new_figure, to_numpy_video

__all__ = ["AnticipationExplorer", "ClipScrubber", "EarlyRecognitionExplorer", "anticipation_explorer",
           "clip_scrubber", "early_recognition_explorer", "topk_table"]


def _widgets():
    return ipywidgets


def _probs(scores) -> np.ndarray:
    s = np.asarray(_as_numpy(scores), dtype=np.float64).ravel()
    if not (np.all(s >= 0) and abs(s.sum() - 1.0) < 1e-3):
        s = np.exp(s - s.max())
        s = s / s.sum()
    return s


def topk_table(scores, k: int = 3, class_names: Sequence[str] | None = None) -> list[tuple[int, str, float]]:
    """The ``k`` most probable classes of one score vector ``(K,)`` (logits are softmaxed):
    ``[(class id, name, probability), ...]``, best first (ties: lower id first)."""
    p = _probs(scores)
    order = np.argsort(-p, kind="stable")[: min(k, p.size)]
    return [(int(c), str(class_names[c]) if class_names is not None else str(int(c)), float(p[c])) for c in order]


def _topk_html(rows, true_label: int | None) -> str:
    out = ['<table style="font-size: 12px">']
    for c, name, p in rows:
        mark = " &#10003;" if true_label is not None and c == true_label else ""
        bar = f'<div style="background:#1f77b4;height:10px;width:{int(round(120 * p))}px"></div>'
        out.append(f"<tr><td>{html.escape(name)}{mark}</td><td>{bar}</td><td>{p:.2f}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _frame_png(frame: np.ndarray, scale: int) -> bytes:
    import io

    from PIL import Image

    img = Image.fromarray(frame)
    if scale != 1:
        img = img.resize((frame.shape[1] * scale, frame.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _check_class(label, class_names, num_classes: int | None, name: str = "label"):
    if label is None:
        return None
    label = int(label)
    k = num_classes if num_classes is not None else (len(class_names) if class_names is not None else None)
    if k is not None and not 0 <= label < k:
        raise ValueError(f"{name}={label} is not a class id in [0, {k})")
    return label


# =========================================================================== clip scrubber
class ClipScrubber(ipywidgets.VBox):
    """The widget returned by :func:`clip_scrubber` (a VBox with ``state``, ``controls``, ``update``)."""


def clip_scrubber(
    clip,
    predictions=None,
    *,
    class_names: Sequence[str] | None = None,
    label: int | None = None,
    fps: float | None = None,
    k: int = 3,
    scale: int = 6,
):
    """Scrub a clip ``(C, T, H, W)`` frame by frame, with the model's prediction at each step.

    ``predictions``: ``(T, K)`` scores, row ``t`` being the model's output after frames
    ``0..t`` (e.g. a recurrent model's per-step logits), or a callable ``t -> (K,) scores``
    (called once per frame, cached). ``label``: the true class (ticked in the table).

    ``state``: ``frame``, ``time`` (s, with ``fps``), ``topk`` ``[(id, name, p), ...]``,
    ``prediction`` (top-1 id), ``correct``.
    """
    w = _widgets()
    frames = to_numpy_video(clip)
    T = frames.shape[0]
    table = None
    fn: Callable | None = None
    if predictions is not None:
        if callable(predictions):
            fn = predictions
        else:
            table = np.asarray(_as_numpy(predictions), dtype=np.float64)
            if table.ndim != 2 or table.shape[0] != T:
                raise ValueError(f"predictions: expected (T={T}, K) scores, got shape {table.shape}")
    label = _check_class(label, class_names, None if table is None else table.shape[1])

    slider = w.IntSlider(value=0, min=0, max=T - 1, step=1, description="frame", continuous_update=True)
    play = w.Play(value=0, min=0, max=T - 1, step=1, interval=int(1000 / (fps or 8)), description="play")
    w.jslink((play, "value"), (slider, "value"))
    image = w.Image(format="png", width=frames.shape[2] * scale, height=frames.shape[1] * scale)
    info = w.HTML()
    box = ClipScrubber([w.HBox([play, slider]), w.HBox([image, info])])
    box.state = {}
    box.controls = {"frame": slider, "play": play}
    box.slider = slider
    box.image = image
    box.info = info
    cache: dict[int, np.ndarray] = {}

    def scores_at(t: int):
        if table is not None:
            return table[t]
        if fn is not None:
            if t not in cache:
                cache[t] = np.asarray(_as_numpy(fn(t)), dtype=np.float64).ravel()
            return cache[t]
        return None

    def update(t: int) -> dict:
        t = int(t)
        if not 0 <= t < T:
            raise ValueError(f"frame {t} outside [0, {T})")
        image.value = _frame_png(frames[t], scale)
        state = {"frame": t, "time": t / fps if fps else None}
        s = scores_at(t)
        head = f"<b>frame {t}</b>" + (f" ({t / fps:.2f} s)" if fps else "") + f" of {T}"
        if s is not None:
            rows = topk_table(s, k, class_names)
            state.update(topk=rows, prediction=rows[0][0], correct=None if label is None else rows[0][0] == label)
            truth = f"<br>true: {html.escape(class_names[label] if class_names is not None else str(label))}" if label is not None else ""
            info.value = head + truth + "<br>model after frames 0.." + str(t) + ":" + _topk_html(rows, label)
        else:
            info.value = head
        box.state.clear()
        box.state.update(state)
        return box.state

    box.update = update
    slider.observe(lambda change: update(change["new"]), names="value")
    update(0)
    return box


# =========================================================================== early recognition
class EarlyRecognitionExplorer(ipywidgets.VBox):
    """The widget returned by :func:`early_recognition_explorer`."""


def early_recognition_explorer(
    clip,
    predict,
    *,
    fractions: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    label: int | None = None,
    k: int = 3,
    fps: float | None = None,
):
    """Slide the observed fraction of an action and watch the prediction change.

    ``predict``: a callable ``fraction -> (K,) scores`` (e.g. run a model on the first
    ``ceil(fraction * T)`` frames; called once per slider position, cached), or an array
    ``(F, K)`` of scores for the given ``fractions (F,)``. The picture shows the frames with
    the unobserved part greyed out, and the top-k probabilities.

    ``state``: ``fraction``, ``observed_frames``, ``topk``, ``prediction``, ``correct``,
    ``true_prob`` (probability of ``label``).
    """
    w = _widgets()
    frames = to_numpy_video(clip)
    T = frames.shape[0]
    if fractions is None:
        fractions = [round(0.1 * i, 1) for i in range(1, 11)]
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0 < f <= 1 for f in fractions) or sorted(fractions) != fractions:
        raise ValueError(f"fractions must be increasing values in (0, 1], got {fractions}")
    table = None
    if not callable(predict):
        table = np.asarray(_as_numpy(predict), dtype=np.float64)
        if table.ndim != 2 or table.shape[0] != len(fractions):
            raise ValueError(f"predict: expected a callable or (F={len(fractions)}, K) scores, got shape {table.shape}")
    label = _check_class(label, class_names, None if table is None else table.shape[1])
    cache: dict[float, np.ndarray] = {}

    slider = w.SelectionSlider(options=[(f"{f:.0%}", f) for f in fractions], value=fractions[-1],
                               description="observed", continuous_update=False)
    image = w.Image(format="png")
    box = EarlyRecognitionExplorer([slider, image])
    box.state = {}
    box.controls = {"fraction": slider}
    box.slider = slider
    box.image = image
    shown = np.linspace(0, T - 1, min(T, 8)).round().astype(int)

    def scores_at(f: float) -> np.ndarray:
        if table is not None:
            return table[fractions.index(f)]
        if f not in cache:
            cache[f] = np.asarray(_as_numpy(predict(f)), dtype=np.float64).ravel()
        return cache[f]

    def render(f: float, n_obs: int, rows) -> bytes:
        with course_style():
            fig = new_figure(figsize=(7.0, 2.4))
            gs = fig.add_gridspec(1, 2, width_ratios=[3, 1.3])
            ax = fig.add_subplot(gs[0])
            strip = frames[shown].astype(np.float32)
            strip[shown >= n_obs] = strip[shown >= n_obs] * 0.25 + 190
            ax.imshow(np.concatenate(list(strip.astype(np.uint8)), axis=1))
            ax.set_xticks([(i + 0.5) * frames.shape[2] for i in range(len(shown))])
            ax.set_xticklabels([f"{t / fps:.1f}s" if fps else str(t) for t in shown], fontsize=7)
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(f"observed {f:.0%} ({n_obs} of {T} frames)")
            ax2 = fig.add_subplot(gs[1])
            names = [r[1] for r in rows][::-1]
            probs = [r[2] for r in rows][::-1]
            colors = ["C2" if label is not None and r[0] == label else "C0" for r in rows][::-1]
            ax2.barh(range(len(rows)), probs, color=colors)
            ax2.set_yticks(range(len(rows)))
            ax2.set_yticklabels(names, fontsize=7)
            ax2.set_xlim(0, 1)
            ax2.set_title(f"top-{len(rows)}")
            return figure_png(fig)

    def update(f: float) -> dict:
        f = float(f)
        if f not in fractions:
            raise ValueError(f"fraction {f} is not one of the slider's values {fractions}")
        n_obs = max(1, int(np.ceil(f * T - 1e-9)))
        s = scores_at(f)
        rows = topk_table(s, k, class_names)
        p = _probs(s)
        image.value = render(f, n_obs, rows)
        box.state.clear()
        box.state.update(
            fraction=f, observed_frames=n_obs, topk=rows, prediction=rows[0][0],
            correct=None if label is None else rows[0][0] == label,
            true_prob=None if label is None else float(p[label]),
        )
        return box.state

    box.update = update
    slider.observe(lambda change: update(change["new"]), names="value")
    update(fractions[-1])
    return box


# =========================================================================== anticipation
class AnticipationExplorer(ipywidgets.VBox):
    """The widget returned by :func:`anticipation_explorer`."""


def anticipation_explorer(
    action_start: float,
    *,
    tau_o: float = 2.0,
    tau_a_values: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
    tau_a: float = 1.0,
    action_end: float | None = None,
    action_label: int | None = None,
    class_names: Sequence[str] | None = None,
    past: Sequence[tuple[float, float, int]] = (),
    predict: Callable | None = None,
    k: int = 3,
):
    """Slide the anticipation time ``tau_a`` and watch the observed window move.

    The observed window is ``[start - tau_a - tau_o, start - tau_a]`` (seconds). ``predict``
    (optional): a callable ``(obs_start, obs_end) -> (K,) scores`` for the window, called once
    per slider value (cached); then the top-k prediction is listed and checked against
    ``action_label``.

    ``state``: ``tau_a``, ``observed`` ``(start, end)``, ``gap`` (s), and with ``predict``:
    ``topk``, ``prediction``, ``correct``.
    """
    w = _widgets()
    values = [float(v) for v in tau_a_values]
    if not values or any(v < 0 for v in values) or float(tau_a) not in values:
        raise ValueError(f"tau_a={tau_a} must be one of tau_a_values={values} (all >= 0)")
    label = _check_class(action_label, class_names, None, "action_label")
    cache: dict[float, np.ndarray] = {}

    slider = w.SelectionSlider(options=[(f"{v:g} s", v) for v in values], value=float(tau_a),
                               description="tau_a", continuous_update=False)
    image = w.Image(format="png")
    info = w.HTML()
    box = AnticipationExplorer([slider, w.HBox([image, info])])
    box.state = {}
    box.controls = {"tau_a": slider}
    box.slider = slider
    box.image = image
    box.info = info

    def update(ta: float) -> dict:
        ta = float(ta)
        if ta not in values:
            raise ValueError(f"tau_a {ta} is not one of the slider's values {values}")
        obs = (action_start - ta - tau_o, action_start - ta)
        fig = anticipation_plot(action_start, tau_a=ta, tau_o=tau_o, action_end=action_end, action_label=label,
                                class_names=class_names, past=past)
        image.value = figure_png(fig)
        state = {"tau_a": ta, "observed": obs, "gap": ta}
        text = f"observed {obs[0]:.2f} s .. {obs[1]:.2f} s<br>gap before the action: {ta:g} s"
        if predict is not None:
            if ta not in cache:
                cache[ta] = np.asarray(_as_numpy(predict(*obs)), dtype=np.float64).ravel()
            rows = topk_table(cache[ta], k, class_names)
            state.update(topk=rows, prediction=rows[0][0], correct=None if label is None else rows[0][0] == label)
            text += _topk_html(rows, label)
        info.value = text
        box.state.clear()
        box.state.update(state)
        return box.state

    box.update = update
    slider.observe(lambda change: update(change["new"]), names="value")
    update(float(tau_a))
    return box
