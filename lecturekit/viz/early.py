"""Pictures and a widget for early action recognition (notebook 09).

* :func:`task_timeline`: early recognition and anticipation drawn on one video timeline: what
  each task observes and what it must predict.
* :func:`early_models_scrubber`: slide the observed fraction of one action and watch the
  predictions of several models change side by side (the frames seen so far, each model's top-k
  and the probability each gives the true class over time).

The widget follows :mod:`lecturekit.viz.widgets`: core ipywidgets only, a ``VBox`` subclass with
``state`` (what is shown now), ``controls`` and ``update(value)``, so it can be driven without a
browser (``w.slider.value = 3`` updates ``w.state``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .style import _as_numpy, course_style, figure_png, new_figure, to_numpy_video

__all__ = ["EarlyModelsScrubber", "early_models_scrubber", "task_timeline"]


def task_timeline(
    starts: Sequence[float],
    stops: Sequence[float],
    labels: Sequence[int],
    index: int,
    *,
    fraction: float = 0.3,
    tau_a: float = 1.0,
    tau_o: float = 2.0,
    class_names: Sequence[str] | None = None,
    window: tuple[float, float] | None = None,
    title: str | None = None,
):
    """Early recognition vs anticipation on one timeline (times in seconds).

    ``starts``, ``stops``, ``labels``: the action segments of one video; ``index``: the action
    both tasks are about. Row 1: the segments. Row 2, early recognition: the first ``fraction``
    of that action is observed and its label is predicted. Row 3, anticipation: the window
    ``[start - tau_a - tau_o, start - tau_a]`` is observed, nothing during the ``tau_a`` seconds
    before the action, and the label of the action that has not started yet is predicted.
    ``window``: the time range shown (default: around the action). One axes per row.
    """
    starts, stops = np.asarray(starts, float), np.asarray(stops, float)
    labels = np.asarray(labels, int)
    if not (starts.shape == stops.shape == labels.shape) or starts.ndim != 1:
        raise ValueError(f"starts, stops, labels: expected three 1-D arrays of one length, got shapes "
                         f"{starts.shape}, {stops.shape}, {labels.shape}")
    if not 0 <= index < len(starts):
        raise ValueError(f"index: expected 0 <= index < {len(starts)}, got {index}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction: expected a value in (0, 1], got {fraction}")
    if tau_a < 0 or tau_o <= 0:
        raise ValueError(f"expected tau_a >= 0 and tau_o > 0, got tau_a={tau_a}, tau_o={tau_o}")
    s, e = starts[index], stops[index]
    name = (lambda c: class_names[c]) if class_names is not None else (lambda c: f"class {c}")
    lo, hi = window if window is not None else (s - tau_a - tau_o - 1.0, e + 2.5)
    seen = s + fraction * (e - s)
    with course_style():
        fig = new_figure(figsize=(9.0, 3.2))
        axes = fig.subplots(3, 1, sharex=True)
        for ax in axes:
            ax.set_ylim(0, 1)
            ax.set_yticks([])
            ax.grid(False)
        ax = axes[0]
        for i, (a, b, c) in enumerate(zip(starts, stops, labels)):
            if b < lo or a > hi:
                continue
            ax.barh(0.5, b - a, left=a, height=0.7, color="C1" if i == index else "0.8", edgecolor="k", lw=0.5)
            ax.text((max(a, lo) + min(b, hi)) / 2, 0.5, name(c), ha="center", va="center", fontsize=7, clip_on=True)
        ax.set_ylabel("video", rotation=0, ha="right", va="center")
        ax = axes[1]
        ax.barh(0.5, e - s, left=s, height=0.7, color="none", edgecolor="C1", lw=1.2, ls="--")
        ax.barh(0.5, seen - s, left=s, height=0.7, color="C0", alpha=0.8)
        ax.annotate(f"observed {fraction:.0%}: predict '{name(labels[index])}'", (seen, 0.5), (seen + 0.2, 0.5),
                    fontsize=7, va="center")
        ax.set_ylabel("early\nrecognition", rotation=0, ha="right", va="center")
        ax = axes[2]
        ax.barh(0.5, tau_o, left=s - tau_a - tau_o, height=0.7, color="C0", alpha=0.8)
        ax.barh(0.5, e - s, left=s, height=0.7, color="none", edgecolor="C1", lw=1.2, ls="--")
        if tau_a > 0:
            ax.annotate("", (s, 0.2), (s - tau_a, 0.2), arrowprops=dict(arrowstyle="<->", lw=0.8))
            ax.text(s - tau_a / 2, 0.05, f"τ_a = {tau_a:g} s", ha="center", fontsize=7)
        ax.text(s - tau_a - tau_o / 2, 0.5, f"observed τ_o = {tau_o:g} s", ha="center", va="center", fontsize=7,
                color="w")
        ax.annotate(f"predict '{name(labels[index])}' before it starts", (e, 0.5), (e + 0.2, 0.5), fontsize=7,
                    va="center")
        ax.set_ylabel("anticipation", rotation=0, ha="right", va="center")
        ax.set_xlim(lo, hi)
        ax.set_xlabel("time (s)")
        if title:
            axes[0].set_title(title)
        return fig


def _probabilities(scores, name: str) -> np.ndarray:
    """(T, K) scores -> probabilities per row (rows that already are distributions are kept)."""
    s = np.asarray(_as_numpy(scores), dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores[{name!r}]: expected (T, K) per-step scores, got shape {s.shape}")
    if np.all(s >= 0) and np.allclose(s.sum(1), 1.0, atol=1e-3):
        return s
    e = np.exp(s - s.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


try:  # the class exists only where ipywidgets does (the function imports it again and says so)
    import ipywidgets as _ipw

    class EarlyModelsScrubber(_ipw.VBox):
        """The widget returned by :func:`early_models_scrubber`."""
except ImportError:  # pragma: no cover - ipywidgets is a dependency of the course
    EarlyModelsScrubber = None  # type: ignore[assignment,misc]


def early_models_scrubber(
    clip,
    scores: Mapping[str, object],
    *,
    label: int | None = None,
    class_names: Sequence[str] | None = None,
    k: int = 3,
    step: int | None = None,
):
    """Slide the observed fraction of one action and watch every model's prediction.

    ``clip``: the action's frames, (C, T, H, W) or (T, H, W, C) (uint8 or floats in [0, 1]);
    ``scores``: ``{model name: (T, K) scores}`` where row t is what the model predicts after
    observing steps 1..t (logits are softmaxed, probabilities kept). The picture shows the
    frames (the unobserved ones greyed out), each model's top-``k`` classes at the current step,
    and the probability of ``label`` over the whole action with the current step marked.

    ``state``: ``step`` (1-based), ``fraction``, and per model (``models[name]``) its
    ``prediction``, ``correct`` (None without ``label``), ``true_prob`` and ``topk``.
    """
    import ipywidgets as w

    frames = to_numpy_video(clip)
    T = frames.shape[0]
    if not scores:
        raise ValueError("scores: give at least one {model name: (T, K) scores}")
    probs = {n: _probabilities(s, n) for n, s in scores.items()}
    bad = {n: p.shape for n, p in probs.items() if p.shape[0] != T}
    if bad:
        raise ValueError(f"scores: every model needs one row per frame of the clip (T={T}), got {bad}")
    num_k = {p.shape[1] for p in probs.values()}
    if len(num_k) != 1:
        raise ValueError(f"scores: every model must score the same K classes, got K in {sorted(num_k)}")
    K = num_k.pop()
    if class_names is not None and len(class_names) != K:
        raise ValueError(f"class_names: expected {K} names (one per class), got {len(class_names)}")
    if label is not None and not 0 <= int(label) < K:
        raise ValueError(f"label: expected a class id in [0, {K}), got {label}")
    step = T if step is None else int(step)
    if not 1 <= step <= T:
        raise ValueError(f"step: expected 1 <= step <= {T}, got {step}")
    name_of = (lambda c: str(class_names[c])) if class_names is not None else str
    shown = np.unique(np.linspace(0, T - 1, min(T, 10)).round().astype(int))

    slider = w.IntSlider(value=step, min=1, max=T, description="observed", continuous_update=False)
    readout = w.Label()
    image = w.Image(format="png")
    box = EarlyModelsScrubber([w.HBox([slider, readout]), image])
    box.state, box.controls, box.slider, box.image = {}, {"step": slider}, slider, image

    def render(t: int) -> bytes:
        with course_style():
            fig = new_figure(figsize=(9.0, 2.0 + 0.55 * len(probs)))
            gs = fig.add_gridspec(2, 2, height_ratios=[1.0, 0.4 + 0.3 * len(probs)], width_ratios=[1.5, 1.0])
            ax = fig.add_subplot(gs[0, :])
            strip = frames[shown].astype(np.float32)
            strip[shown >= t] = strip[shown >= t] * 0.25 + 190
            ax.imshow(np.concatenate(list(strip.astype(np.uint8)), axis=1))
            ax.set_xticks([(i + 0.5) * frames.shape[2] for i in range(len(shown))])
            ax.set_xticklabels([f"{(s + 1) / T:.0%}" for s in shown], fontsize=7)
            ax.set_yticks([])
            ax.grid(False)
            truth = f", true action '{name_of(label)}'" if label is not None else ""
            ax.set_title(f"observed {t} of {T} steps ({t / T:.0%}){truth}", fontsize=9)
            ax = fig.add_subplot(gs[1, 0])
            ax.axis("off")
            lines, width = [], max(len(n) for n in probs)
            for n, p in probs.items():
                order = np.argsort(-p[t - 1], kind="stable")[:k]
                mark = lambda c: " ✓" if label is not None and c == label else ""   # noqa: E731
                lines.append(f"{n:<{width}}  " + "  ".join(f"{name_of(c)}{mark(c)} {p[t - 1, c]:.2f}" for c in order))
            ax.text(0, 1, "\n".join(lines), family="monospace", fontsize=7, va="top")
            ax.set_title(f"top-{k} after {t / T:.0%}", fontsize=8, loc="left")
            ax = fig.add_subplot(gs[1, 1])
            if label is not None:
                x = np.arange(1, T + 1) / T
                for i, (n, p) in enumerate(probs.items()):
                    ax.plot(x, p[:, label], color=f"C{i}", lw=1.2, label=n)
                ax.axvline(t / T, color="k", ls="--", lw=0.8)
                ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="observed fraction", ylabel="p(true action)")
                ax.legend(fontsize=6, loc="upper left")
            else:
                ax.axis("off")
            return figure_png(fig)

    def update(t: int) -> dict:
        t = int(t)
        if not 1 <= t <= T:
            raise ValueError(f"step: expected 1 <= step <= {T}, got {t}")
        image.value = render(t)
        readout.value = f"{t / T:.0%} of the action"
        models = {}
        for n, p in probs.items():
            order = np.argsort(-p[t - 1], kind="stable")[:k]
            pred = int(order[0])
            models[n] = {"prediction": pred, "correct": None if label is None else pred == int(label),
                         "true_prob": None if label is None else float(p[t - 1, int(label)]),
                         "topk": [(int(c), name_of(int(c)), float(p[t - 1, c])) for c in order]}
        box.state.clear()
        box.state.update(step=t, fraction=t / T, models=models)
        return box.state

    box.update = update
    slider.observe(lambda change: update(change["new"]), names="value")
    update(step)
    return box
