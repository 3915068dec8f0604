"""Plots of results: timelines, anticipation windows, early-recognition curves, confusion
matrices, attention over time and dependency matrices, gradient norms, parameters vs FLOPs.

Every function returns a matplotlib Figure outside pyplot (shown once in a notebook when it is
the cell's last expression) drawn in the course style (:func:`lecturekit.viz.course_style`).
Inputs may be torch tensors or numpy arrays.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ..metrics.classification import confusion_counts
from .style import _as_numpy, class_color, course_style, new_figure

__all__ = [
    "action_timeline",
    "anticipation_plot",
    "attention_over_time",
    "confusion_matrix",
    "gradient_norm_plot",
    "observed_fraction_curves",
    "params_flops_plot",
    "plot_dependency_matrix",
    "segments_from_labels",
]


@contextlib.contextmanager
def _quiet():
    """seaborn calls APIs that newer matplotlib marks as pending deprecation: keep stderr clean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


# =========================================================================== timelines
def segments_from_labels(labels, background: int = -1) -> list[tuple[int, int, int]]:
    """Per-frame labels ``(T,)`` -> segments ``[(start, stop, label), ...]`` (stop exclusive);
    frames equal to ``background`` belong to no segment."""
    arr = _as_numpy(labels).astype(np.int64)
    if arr.ndim != 1:
        raise ValueError(f"labels: expected per-frame labels (T,), got shape {arr.shape}")
    segs = []
    start = 0
    for t in range(1, len(arr) + 1):
        if t == len(arr) or arr[t] != arr[start]:
            if arr[start] != background:
                segs.append((start, t, int(arr[start])))
            start = t
    return segs


def _as_segments(x, name: str) -> list[tuple[float, float, int]]:
    if x is None:
        return []
    if hasattr(x, "shape") or (isinstance(x, Sequence) and x and not isinstance(x[0], (tuple, list))):
        return segments_from_labels(x)
    segs = []
    for s in x:
        if len(s) != 3:
            raise ValueError(f"{name}: segments are (start, stop, label) triples, got {s!r}")
        a, b, c = s
        if b <= a:
            raise ValueError(f"{name}: segment {s!r} ends before it starts")
        segs.append((float(a), float(b), int(c)))
    return segs


def _label_name(c: int, class_names) -> str:
    if class_names is None:
        return str(c)
    return str(class_names[c])


def action_timeline(
    truth,
    prediction=None,
    *,
    class_names: Sequence[str] | None = None,
    fps: float | None = None,
    title: str | None = None,
    width: float = 8.0,
):
    """Ground-truth segments and (optionally) predicted segments as coloured bars, one row each.

    ``truth`` / ``prediction``: per-frame labels ``(T,)`` (-1 = background) or a list of
    ``(start, stop, label)`` segments in frames. With ``fps`` the axis is in seconds. One axes
    per row (1 without prediction, 2 with).
    """
    rows = [("ground truth", _as_segments(truth, "truth"))]
    if prediction is not None:
        rows.append(("prediction", _as_segments(prediction, "prediction")))
    scale = 1.0 / fps if fps else 1.0
    end = max((b for _, segs in rows for _, b, _ in segs), default=1.0) * scale
    with course_style():
        fig = new_figure(figsize=(width, 0.9 * len(rows) + 0.6))
        axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (name, segs) in zip(axes, rows):
            for a, b, c in segs:
                ax.broken_barh([(a * scale, (b - a) * scale)], (0, 1), facecolors=class_color(c), edgecolor="white")
                if (b - a) * scale > 0.04 * end:
                    ax.text((a + b) / 2 * scale, 0.5, _label_name(c, class_names), ha="center", va="center", fontsize=7, clip_on=True)
            ax.set_ylim(0, 1)
            ax.set_yticks([])
            ax.set_ylabel(name, rotation=0, ha="right", va="center")
            ax.grid(False)
            ax.set_xlim(0, end)
        axes[-1].set_xlabel("time (s)" if fps else "frame")
        if title:
            fig.suptitle(title)
    return fig


def anticipation_plot(
    action_start: float,
    *,
    tau_a: float = 1.0,
    tau_o: float = 2.0,
    action_end: float | None = None,
    action_label: int | None = None,
    class_names: Sequence[str] | None = None,
    past: Sequence[tuple[float, float, int]] = (),
    times=None,
    scores=None,
    k: int = 5,
    title: str | None = None,
):
    """The anticipation protocol in one picture (all times in seconds).

    Top axes: the observed window ``[start - tau_a - tau_o, start - tau_a]``, the anticipation
    gap ``tau_a`` in which nothing is seen, the future action ``[start, end]`` to predict, and
    optional past segments ``(start, stop, label)``.
    Bottom axes (when ``scores`` are given): the model's class probabilities over time.
    ``times (M,)`` are observation end times and ``scores (M, K)`` the scores (logits are
    softmaxed) made at them; the ``k`` classes with the highest peak are drawn, the true class
    (``action_label``) thick. The current observation end is marked by a dashed line.
    """
    if tau_a < 0 or tau_o <= 0:
        raise ValueError(f"need tau_a >= 0 and tau_o > 0, got tau_a={tau_a}, tau_o={tau_o}")
    obs_end = action_start - tau_a
    obs_start = obs_end - tau_o
    action_end = action_start + 1.0 if action_end is None else action_end
    if action_end <= action_start:
        raise ValueError(f"action_end ({action_end}) must come after action_start ({action_start})")
    has_scores = scores is not None
    if has_scores:
        s = _as_numpy(scores).astype(np.float64)
        t = _as_numpy(times).astype(np.float64) if times is not None else None
        if s.ndim != 2 or t is None or t.shape != (s.shape[0],):
            raise ValueError(
                f"scores must be (M, K) with times (M,), got scores {s.shape} and times {None if t is None else t.shape}"
            )
        if not (np.all(s >= 0) and np.allclose(s.sum(1), 1.0, atol=1e-3)):
            s = np.exp(s - s.max(1, keepdims=True))
            s /= s.sum(1, keepdims=True)
    left = min([obs_start] + [a for a, _, _ in past] + ([float(t.min())] if has_scores else []))
    right = action_end
    with course_style():
        fig = new_figure(figsize=(7.0, 3.6 if has_scores else 1.8))
        axes = fig.subplots(2 if has_scores else 1, 1, sharex=True, squeeze=False,
                            height_ratios=[1, 2] if has_scores else None)[:, 0]
        ax = axes[0]
        for a, b, c in past:
            ax.broken_barh([(a, b - a)], (0.05, 0.35), facecolors=class_color(c), alpha=0.6)
            ax.text((a + b) / 2, 0.22, _label_name(c, class_names), ha="center", va="center", fontsize=7, clip_on=True)
        ax.axvspan(obs_start, obs_end, ymin=0.5, ymax=0.95, facecolor="0.55", alpha=0.35, label="observed")
        ax.axvspan(obs_end, action_start, ymin=0.5, ymax=0.95, facecolor="none", hatch="//", edgecolor="0.5", label="tau_a gap")
        ax.broken_barh([(action_start, action_end - action_start)], (0.5, 0.45),
                       facecolors=class_color(action_label if action_label is not None else 0), label="future action")
        name = _label_name(action_label, class_names) if action_label is not None else "action"
        ax.text((action_start + action_end) / 2, 0.72, name, ha="center", va="center", fontsize=8)
        ax.annotate("", xy=(action_start, 0.45), xytext=(obs_end, 0.45), arrowprops={"arrowstyle": "<->", "lw": 1})
        ax.text((obs_end + action_start) / 2, 0.38, f"tau_a = {tau_a:g} s", ha="center", va="top", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.grid(False)
        ax.set_xlim(left - 0.1, right + 0.1)
        ax.legend(loc="lower left", ncol=3, fontsize=7, bbox_to_anchor=(0, 1.0), borderaxespad=0.2)
        if has_scores:
            ax2 = axes[1]
            kk = min(k, s.shape[1])
            top = np.argsort(-s.max(0), kind="stable")[:kk]
            classes = list(top)
            if action_label is not None and action_label not in classes:
                classes.append(action_label)
            for c in classes:
                true = action_label is not None and c == action_label
                ax2.plot(t, s[:, c], color=class_color(c), lw=2.5 if true else 1.0,
                         label=_label_name(c, class_names) + (" (true)" if true else ""))
            ax2.axvline(obs_end, color="k", ls="--", lw=1)
            ax2.set_ylim(0, 1)
            ax2.set_ylabel("probability")
            ax2.set_xlabel("observation end (s)")
            ax2.legend(fontsize=7, loc="upper left")
        else:
            ax.set_xlabel("time (s)")
        if title:
            fig.suptitle(title)
    return fig


# =========================================================================== curves
def observed_fraction_curves(
    curves: Mapping,
    *,
    chance: float | None = None,
    ylabel: str = "accuracy",
    title: str | None = None,
):
    """Accuracy (or any metric) against the observed fraction of the action, one line per entry.

    ``curves``: ``{name: (fractions, values)}`` or ``{name: {fraction: value}}``; fractions in
    (0, 1]. ``chance`` draws a horizontal reference. One axes.
    """
    if not curves:
        raise ValueError("curves: give at least one {name: (fractions, values)}")
    with course_style():
        fig = new_figure(figsize=(4.6, 3.2))
        ax = fig.subplots()
        for name, data in curves.items():
            if isinstance(data, Mapping):
                xs, ys = zip(*sorted(data.items()))
            else:
                xs, ys = data
            xs, ys = np.asarray(_as_numpy(xs), float), np.asarray(_as_numpy(ys), float)
            if xs.shape != ys.shape or xs.ndim != 1:
                raise ValueError(f"curve {name!r}: fractions and values must be 1-D of equal length, got {xs.shape} and {ys.shape}")
            if np.any(xs <= 0) or np.any(xs > 1):
                raise ValueError(f"curve {name!r}: observed fractions must lie in (0, 1], got {xs.min()}..{xs.max()}")
            ax.plot(xs, ys, marker="o", ms=3, label=str(name))
        if chance is not None:
            ax.axhline(chance, color="0.5", ls=":", label="chance")
        ax.set_xlabel("observed fraction of the action")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 1.02)
        ax.legend()
        if title:
            ax.set_title(title)
    return fig


def early_recognition_figure(result: Mapping, *, split: str = "test", losses: Sequence[str] | None = None):
    """MS-LSTM's Fig. 5 and Fig. 6 side by side from the per-seed curves of
    :func:`lecturekit.analysis.early_recognition.run_early_recognition`: left, accuracy after
    each observed fraction per training loss (mean over seeds, band = min..max over seeds);
    right, the same with temporal average pooling of the predictions (solid) over the raw
    per-step prediction (dotted)."""
    try:
        fractions = np.asarray(result["fractions"], float)
        curves = result["curves"]
    except (KeyError, TypeError) as e:
        raise ValueError("result: expected the dict of run_early_recognition with 'fractions' and 'curves'") from e
    names = list(losses) if losses is not None else list(curves)
    missing = [n for n in names if n not in curves or split not in curves[n]]
    if missing:
        raise ValueError(f"losses {missing} have no {split!r} curves; have {sorted(curves)}")
    with course_style():
        fig = new_figure(figsize=(9.2, 3.3))
        axes = fig.subplots(1, 2, sharey=True)
        for i, name in enumerate(names):
            color = f"C{i}"
            raw = np.asarray(curves[name][split]["raw"], float)
            pooled = np.asarray(curves[name][split]["pooled"], float)
            if raw.shape[-1] != fractions.shape[0]:
                raise ValueError(f"{name}: {raw.shape[-1]} steps per curve but {fractions.shape[0]} fractions")
            axes[0].plot(fractions, raw.mean(0), marker="o", ms=2.5, color=color, label=name)
            axes[0].fill_between(fractions, raw.min(0), raw.max(0), color=color, alpha=0.15, lw=0)
            axes[1].plot(fractions, pooled.mean(0), color=color, label=f"{name}, pooled")
            axes[1].plot(fractions, raw.mean(0), color=color, ls=":", lw=1)
        axes[0].set_title("Fig. 5: the loss (raw per-step prediction)")
        axes[1].set_title("Fig. 6: average pooling (solid) vs raw (dotted)")
        for ax in axes:
            ax.set_xlabel("observed fraction of the action")
            ax.set_xlim(0, 1.02)
        axes[0].set_ylabel(f"{split} top-1 accuracy")
        axes[0].legend(fontsize=7)
    return fig


def gradient_norm_plot(
    distances,
    norms: Mapping,
    *,
    log: bool = True,
    title: str | None = "gradient norm vs distance",
    xlabel: str = "distance in time steps (T - t)",
):
    """||dL/dh_t|| against the distance ``T - t`` to the loss, one line per model (RNN lesson).

    ``distances (N,)``; ``norms``: ``{name: (N,) values}``. Log y-axis by default, so vanishing
    (straight line down) and exploding (up) gradients are both visible. One axes.
    """
    d = np.asarray(_as_numpy(distances), float)
    with course_style():
        fig = new_figure(figsize=(4.6, 3.2))
        ax = fig.subplots()
        for name, v in norms.items():
            v = np.asarray(_as_numpy(v), float)
            if v.shape != d.shape:
                raise ValueError(f"norms[{name!r}]: expected shape {d.shape} like distances, got {v.shape}")
            ax.plot(d, v, marker="o", ms=2.5, label=str(name))
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("gradient norm")
        ax.legend()
        if title:
            ax.set_title(title)
    return fig


# =========================================================================== matrices
def confusion_matrix(
    labels,
    predictions,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    groups: Sequence | None = None,
    normalize: bool = True,
    annot: bool | None = None,
    title: str | None = None,
    cbar: bool = True,
):
    """Confusion matrix heatmap (seaborn): rows true class, columns predicted.

    ``predictions``: class ids ``(N,)`` or scores ``(N, K)``. ``normalize`` divides each row by
    its count (recall per class on the diagonal). ``groups``: one group name per class (e.g. the
    verb of each action class); classes are ordered by group, group boundaries are drawn and
    the group names written above their columns, so confusions within a verb stand out.
    Axes: the heatmap and its colour bar (``cbar=False``: one axes).
    """
    import seaborn as sns

    cm = confusion_counts(labels, predictions, num_classes).astype(float)
    k = cm.shape[0]
    names = [str(c) for c in range(k)] if class_names is None else [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"class_names: expected {k} names, got {len(names)}")
    order = np.arange(k)
    bounds: list[tuple[int, int, str]] = []
    if groups is not None:
        if len(groups) != k:
            raise ValueError(f"groups: expected one group per class ({k}), got {len(groups)}")
        first = {}
        for g in groups:
            first.setdefault(g, len(first))
        order = np.array(sorted(range(k), key=lambda c: (first[groups[c]], c)))
        start = 0
        for i in range(1, k + 1):
            if i == k or groups[order[i]] != groups[order[start]]:
                bounds.append((start, i, str(groups[order[start]])))
                start = i
    cm = cm[np.ix_(order, order)]
    if normalize:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    names = [names[c] for c in order]
    annot = (k <= 12) if annot is None else annot
    size = min(9.0, 2.0 + 0.28 * k)
    with course_style():
        fig = new_figure(figsize=(size + (1.0 if cbar else 0.0), size))
        ax = fig.subplots()
        with _quiet():
            sns.heatmap(cm, ax=ax, cmap="Blues", vmin=0, vmax=1 if normalize else None, square=True, cbar=cbar,
                        annot=annot, fmt=".2f" if normalize else ".0f", annot_kws={"fontsize": 6},
                        xticklabels=names, yticklabels=names, linewidths=0)
        for a, b, g in bounds[1:]:
            ax.axhline(a, color="k", lw=0.8)
            ax.axvline(a, color="k", lw=0.8)
        for a, b, g in bounds:  # group names above their block of columns
            ax.text((a + b) / 2, -0.15, g, ha="center", va="bottom", fontsize=7, fontweight="bold",
                    rotation=0 if (b - a) >= 0.12 * k else 90, clip_on=False)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.tick_params(labelsize=6 if k > 20 else 8)
        ax.tick_params(axis="y", labelrotation=0)
        if title:
            ax.set_title(title, pad=14 if bounds else 6)
    return fig


def attention_over_time(
    weights,
    *,
    labels: Sequence[str] | None = None,
    query_labels: Sequence[str] | None = None,
    fps: float | None = None,
    title: str | None = "attention over time",
):
    """Temporal attention: ``(T,)`` weights as bars (one axes) or a ``(Q, T)`` query x key map
    as a heatmap with a colour bar (two axes). ``labels`` name the T positions."""
    w = np.asarray(_as_numpy(weights), float)
    if w.ndim not in (1, 2):
        raise ValueError(f"weights: expected (T,) or (Q, T), got shape {w.shape}")
    T = w.shape[-1]
    if labels is not None and len(labels) != T:
        raise ValueError(f"labels: expected {T} names, got {len(labels)}")
    ticks = list(labels) if labels is not None else [f"{t / fps:.1f}s" if fps else str(t) for t in range(T)]
    with course_style():
        if w.ndim == 1:
            fig = new_figure(figsize=(max(3.5, 0.3 * T + 1), 2.6))
            ax = fig.subplots()
            ax.bar(np.arange(T), w, color="C0")
            ax.set_xticks(np.arange(T))
            ax.set_xticklabels(ticks, rotation=90 if T > 12 else 0, fontsize=7)
            ax.set_ylabel("weight")
            ax.set_xlabel("time")
        else:
            import seaborn as sns

            Q = w.shape[0]
            if query_labels is not None and len(query_labels) != Q:
                raise ValueError(f"query_labels: expected {Q} names, got {len(query_labels)}")
            fig = new_figure(figsize=(max(3.5, 0.3 * T + 1.5), max(2.6, 0.3 * Q + 1)))
            ax = fig.subplots()
            with _quiet():
                sns.heatmap(w, ax=ax, cmap="viridis", xticklabels=ticks,
                            yticklabels=list(query_labels) if query_labels is not None else True)
            ax.set_xlabel("key (time)")
            ax.set_ylabel("query")
        if title:
            ax.set_title(title)
    return fig


def plot_dependency_matrix(
    matrix,
    *,
    row_names: Sequence[str] | None = None,
    col_names: Sequence[str] | None = None,
    title: str | None = "action dependencies",
    center: float | None = None,
    annot: bool | None = None,
    xlabel: str = "attended (past) action",
    ylabel: str = "query (future) action",
):
    """Draw a dependency matrix (e.g. AGA's action-to-action attention averaged over a data set,
    computed by :func:`lecturekit.analysis.dependency.dependency_matrix`): heatmap with names, diverging
    colours when ``center`` is given. Two axes (map, colour bar)."""
    import seaborn as sns

    m = np.asarray(_as_numpy(matrix), float)
    if m.ndim != 2:
        raise ValueError(f"matrix: expected 2-D, got shape {m.shape}")
    r, c = m.shape
    rows = list(row_names) if row_names is not None else [str(i) for i in range(r)]
    cols = list(col_names) if col_names is not None else (rows if r == c and row_names is not None else [str(j) for j in range(c)])
    if len(rows) != r or len(cols) != c:
        raise ValueError(f"names: expected {r} row and {c} column names, got {len(rows)} and {len(cols)}")
    annot = (r * c <= 100) if annot is None else annot
    with course_style():
        fig = new_figure(figsize=(min(9.0, 2.2 + 0.3 * c), min(9.0, 1.8 + 0.3 * r)))
        ax = fig.subplots()
        with _quiet():
            sns.heatmap(m, ax=ax, cmap="RdBu_r" if center is not None else "magma", center=center,
                        xticklabels=cols, yticklabels=rows, annot=annot, fmt=".2f", annot_kws={"fontsize": 6})
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
    return fig


# =========================================================================== parameters vs FLOPs
def params_flops_plot(rows: Sequence[Mapping], *, title: str | None = "parameters vs FLOPs", log: bool = True):
    """Each model as a point (parameters on x, FLOPs on y), labelled by name. One axes."""
    pts = [(r["name"], float(r["params"]), float(r["flops"])) for r in rows]
    if not pts:
        raise ValueError("params_flops_plot: no rows")
    with course_style():
        fig = new_figure(figsize=(4.8, 3.4))
        ax = fig.subplots()
        for i, (name, p, f) in enumerate(pts):
            ax.scatter([p], [f], color=class_color(i), zorder=3)
            ax.annotate(name, (p, f), textcoords="offset points", xytext=(4, 3), fontsize=7)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("FLOPs")
        if title:
            ax.set_title(title)
    return fig
