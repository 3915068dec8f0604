"""Pictures and a widget for Action-Guided Attention (notebook 12).

* :func:`cue_windows`: anticipation windows as rows of frames, the frames that show the wall
  poster (the visual cue of ``ToyKitchens(cues=C)``) framed in orange: the shortcut that pixel
  attention can learn in the training kitchens.
* :func:`aga_window`: one window read by a trained AGA: its frames, the attention weights of
  every step over the steps in memory (mean over heads), the last step's weights per head, and
  the gate values g_t of every channel (near 1: the state comes from the history, near 0: from
  the current frame).
* :func:`dependency_vs_grammar`: the dependency matrix read from a trained AGA next to the
  world's true transition probabilities in the same orientation (row a = current / next
  action, column b = past action), and one against the other.
* :func:`counterfactual_explorer`: a widget: pick a test window and a target action and see
  the counterfactual past a search finds (which past predictions had to change, drawn over the
  window's frames with :func:`lecturekit.viz.video.counterfactual_storyboard`).

Everything is drawn from plain arrays; the widget gets the search as a callable
(``search(window, target)`` returning a :class:`lecturekit.analysis.aga.Counterfactual`), so
this module needs nothing from ``analysis``. The widget follows :mod:`lecturekit.viz.widgets`:
core ipywidgets only, a ``VBox`` subclass with ``state``, ``controls`` and ``update(...)``, so it
can be driven without a browser.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import numpy as np

from .style import _as_numpy, course_style, figure_png, new_figure, to_numpy_video
from .video import _grid, counterfactual_storyboard

__all__ = ["CounterfactualExplorer", "aga_window", "counterfactual_explorer", "cue_windows", "dependency_vs_grammar"]

CUE_EDGE = "tab:orange"


def _frame_border(ax, colour: str, width: float = 2.0) -> None:
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(True)
        ax.spines[side].set_color(colour)
        ax.spines[side].set_linewidth(width)


def cue_windows(clips, visible, *, row_titles: Sequence[str] | None = None, title: str | None = None,
                panel_size: float = 1.05):
    """Rows of anticipation windows; the frames that show the cue are framed in orange.

    Args:
        clips: R windows, each (C, T, H, W) uint8 or float in [0, 1] (a list, or an (R, C, T, H, W) array).
        visible: (R, T) bool, True where the frame shows the cue (e.g.
            :func:`lecturekit.analysis.aga.cue_visible`).
        row_titles: one label per row (shown left of the row).
        title, panel_size: the figure's title and the size of one frame (inches).
    """
    videos = [to_numpy_video(c, name=f"clips[{i}]") for i, c in enumerate(clips)]
    vis = np.asarray(_as_numpy(visible)).astype(bool)
    if not videos:
        raise ValueError("clips: expected at least one window, got none")
    t = videos[0].shape[0]
    if any(v.shape[0] != t for v in videos) or vis.shape != (len(videos), t):
        raise ValueError(f"clips, visible: expected R windows of T frames and visible (R, T) = ({len(videos)}, {t}), "
                         f"got frames {[v.shape[0] for v in videos]} and visible {vis.shape}")
    if row_titles is not None and len(row_titles) != len(videos):
        raise ValueError(f"row_titles: expected {len(videos)} titles (one per row), got {len(row_titles)}")
    with course_style():
        fig = new_figure(figsize=(panel_size * t + 1.6, (panel_size + 0.25) * len(videos) + (0.35 if title else 0.1)))
        axes, _, _ = _grid(fig, len(videos) * t, t)
        for r, video in enumerate(videos):
            for j in range(t):
                ax = axes[r * t + j]
                ax.imshow(video[j])
                if vis[r, j]:
                    _frame_border(ax, CUE_EDGE)
                if r == 0:
                    ax.set_title(f"t={j}", fontsize=7)
            if row_titles is not None:
                axes[r * t].set_ylabel(row_titles[r], fontsize=7, rotation=0, ha="right", va="center")
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


def aga_window(frames, attention, gates, *, title: str | None = None, step_labels: Sequence[str] | None = None):
    """What a trained AGA did on one window of T steps.

    Args:
        frames: the window (C, T, H, W), uint8 or float in [0, 1].
        attention: (heads, T, T) weights of :attr:`lecturekit.models.aga.AGAOutput.attention` for
            this window: row t holds step t's weights over the steps in its memory (0 elsewhere).
        gates: (T, H) gate values g_t (NaN at t = 0, which reads no memory).
        title: figure title; step_labels: one label per frame (default "t=0" .. "t=T-1", the
            0-based steps of :class:`lecturekit.analysis.aga.Counterfactual`).

    Returns:
        A Figure: the frames on top; below, the attention of every step (mean over heads), the
        last step's attention per head and the gate of every channel at every step. Attention
        weights are drawn times the number of slots the step reads, so that 1 means "as much as
        uniform attention" at every step (step 1 reads one slot, step 7 seven).
    """
    video = to_numpy_video(frames)
    t = video.shape[0]
    att = np.asarray(_as_numpy(attention), dtype=float)
    g = np.asarray(_as_numpy(gates), dtype=float)
    if att.ndim != 3 or att.shape[1:] != (t, t):
        raise ValueError(f"attention: expected (heads, T, T) with T = {t}, got {att.shape}")
    if g.ndim != 2 or g.shape[0] != t:
        raise ValueError(f"gates: expected (T, H) with T = {t}, got {g.shape}")
    if step_labels is not None and len(step_labels) != t:
        raise ValueError(f"step_labels: expected {t} labels, got {len(step_labels)}")
    labels = list(step_labels) if step_labels is not None else [f"t={j}" for j in range(t)]
    heads = att.shape[0]
    slots = np.arange(t)[:, None].clip(min=1).astype(float)          # step t reads S' = t slots (t >= 1)
    read = np.tril(np.ones((t, t), dtype=bool), k=-1)                  # step t reads steps < t only
    ratio = np.where(read, att.mean(0) * slots, np.nan)              # weight x S': 1 = uniform over the memory
    last = att[:, t - 1, : t - 1] * (t - 1)                          # (heads, T - 1), the same scale
    with course_style():
        fig = new_figure(figsize=(max(8.5, 1.05 * t), 5.4))
        outer = fig.add_gridspec(2, 1, height_ratios=[1.0, 2.0])
        top = outer[0].subgridspec(1, t)
        for j in range(t):
            ax = fig.add_subplot(top[0, j])
            ax.imshow(video[j])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(labels[j], fontsize=7)
        bottom = outer[1].subgridspec(1, 3, width_ratios=[1.0, 1.0, 1.15])
        ax = fig.add_subplot(bottom[0, 0])
        im = ax.imshow(ratio, cmap="RdBu_r", vmin=0.0, vmax=2.0)
        ax.set_xticks(range(t))
        ax.set_xticklabels([str(j) for j in range(t)], fontsize=6)
        ax.set_yticks(range(t))
        ax.set_yticklabels([str(j) for j in range(t)], fontsize=6)
        ax.grid(False)
        ax.set(xlabel="step read (memory slot)", ylabel="step t (query)")
        ax.set_title("attention x slots read, mean of heads\n(1 = uniform over the memory)", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax = fig.add_subplot(bottom[0, 1])
        im = ax.imshow(last, cmap="RdBu_r", vmin=0.0, vmax=2.0, aspect="auto")
        ax.set_xticks(range(t - 1))
        ax.set_xticklabels([str(j) for j in range(t - 1)], fontsize=6)
        ax.set_yticks(range(heads))
        ax.set_yticklabels([f"head {h + 1}" for h in range(heads)], fontsize=6)
        ax.grid(False)
        ax.set(xlabel="step read (memory slot)")
        ax.set_title(f"last step (t={t - 1}), per head\n(weight x {t - 1} slots)", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax = fig.add_subplot(bottom[0, 2])
        im = ax.imshow(g.T, cmap="coolwarm", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.set_xticks(range(t))
        ax.set_xticklabels([str(j) for j in range(t)], fontsize=6)
        ax.set_yticks([])
        ax.grid(False)
        ax.set(xlabel="step t", ylabel=f"gate channel (H = {g.shape[1]})")
        ax.set_title(f"gate g_t per channel (mean {np.nanmean(g):.2f})\n1 = history, 0 = current frame", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


def dependency_vs_grammar(dependency, grammar, *, title: str | None = None, xlabel: str = "past action b",
                          ylabel: str = "current / next action a"):
    """The dependency matrix of a trained AGA beside the world's grammar, and one against the other.

    Args:
        dependency: M (A, A), M[a, b] = the attention of current action a on past action b
            (:func:`lecturekit.analysis.dependency.dependency_matrix`; rows sum to 1).
        grammar: (A, A) in the same orientation: G[a, b] = P(next = a | previous = b), i.e. the
            TRANSPOSE of ``ToyKitchens.transition_matrix()`` (whose row b is P(next | previous b)).

    Returns:
        A Figure with three panels: M, G (each with its own colour scale) and a scatter of
        M[a, b] against G[a, b] over all pairs.
    """
    m = np.asarray(_as_numpy(dependency), dtype=float)
    p = np.asarray(_as_numpy(grammar), dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or p.shape != m.shape:
        raise ValueError(f"dependency, grammar: expected two square matrices of one shape (A, A), got {m.shape} "
                         f"and {p.shape}")
    with course_style():
        fig = new_figure(figsize=(11.0, 3.6))
        axes = fig.subplots(1, 3, width_ratios=[1.0, 1.0, 0.95])
        for ax, mat, name, cmap in ((axes[0], m, "AGA's dependency matrix M[a, b]", "magma"),
                                    (axes[1], p, "grammar P(next = a | previous = b)", "viridis")):
            im = ax.imshow(mat, cmap=cmap, interpolation="nearest")
            ax.set(xlabel=xlabel, ylabel=ylabel)
            ax.set_title(name, fontsize=8)
            ax.grid(False)
            fig.colorbar(im, ax=ax, shrink=0.8)
        ax = axes[2]
        ax.scatter(p.ravel(), m.ravel(), s=4, alpha=0.35, color="C0", edgecolors="none")
        ax.axhline(1.0 / m.shape[1], color="0.4", lw=0.8, ls="--", label=f"uniform 1/{m.shape[1]}")
        ax.set(xlabel="grammar P(next = a | previous = b)", ylabel="dependency M[a, b]")
        ax.set_title("every pair (a, b)", fontsize=8)
        ax.legend(fontsize=7)
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


# =========================================================================== the widget
try:  # the class exists only where ipywidgets does (the function imports it again and says so)
    import ipywidgets as _ipw

    class CounterfactualExplorer(_ipw.VBox):
        """The widget returned by :func:`counterfactual_explorer`."""
except ImportError:  # pragma: no cover - ipywidgets is a dependency of the course
    CounterfactualExplorer = None  # type: ignore[assignment,misc]

TRUE_NEXT = -1   # the dropdown's entry "the true next action" (resolved per window)


def counterfactual_explorer(clips, search: Callable, *, labels=None, class_names: Sequence[str] | None = None,
                            window: int = 0, target: int | None = None, fps: float | None = None):
    """Pick a window and a target action; see the past that would have led the model there.

    Args:
        clips: the windows' frames (N, C, T, H, W), uint8 or float in [0, 1].
        search: ``search(window, target)`` -> a :class:`lecturekit.analysis.aga.Counterfactual`
            (any object with ``slot_steps``, ``before_topk``, ``after_topk``, ``prediction_before``,
            ``prediction_after``, ``target``, ``target_prob_before``, ``target_prob_after``,
            ``iterations``), e.g. ``lambda i, a: counterfactual_past(model, features[i], a)``.
            Called once per (window, target) shown, then cached.
        labels: (N,) the true upcoming action of each window; adds the target "the true next
            action" (the default).
        class_names: the action names (the dropdown lists them).
        window: the window shown first; target: the target shown first (an action id; default
            the true next action, or action 0 without ``labels``).
        fps: frames per second, for time stamps in the picture.

    ``state``: ``window``, ``target`` (the resolved action id), ``true_action`` (or None),
    ``prediction_before``, ``prediction_after``, ``reached``, ``target_prob_before``,
    ``target_prob_after``, ``changed_slots`` (time steps whose top action changed), ``iterations``.
    ``update(window=None, target=None)`` sets either and returns the state.
    """
    import ipywidgets as w

    arr = _as_numpy(clips)
    if arr.ndim != 5 or arr.shape[1] not in (1, 3):
        raise ValueError(f"clips: expected (N, C, T, H, W) frames, got shape {tuple(arr.shape)}")
    n, t = arr.shape[0], arr.shape[2]
    if t < 2:
        raise ValueError(f"clips: expected windows of T >= 2 frames, got T = {t}")
    truth = None
    if labels is not None:
        truth = np.asarray(_as_numpy(labels)).astype(int).reshape(-1)
        if truth.shape != (n,):
            raise ValueError(f"labels: expected {n} action ids (one per window), got {truth.shape[0]}")
    if class_names is None:
        k = int(truth.max()) + 1 if truth is not None else 1
        class_names = [str(i) for i in range(k)]
    names = list(class_names)
    if truth is not None and (truth.min() < 0 or truth.max() >= len(names)):
        raise ValueError(f"labels: expected action ids in [0, {len(names)}), got {truth.min()}..{truth.max()}")
    if not 0 <= int(window) < n:
        raise ValueError(f"window: expected 0 <= window < {n}, got {window}")
    options = ([("the true next action", TRUE_NEXT)] if truth is not None else []) + [(a, i) for i, a in enumerate(names)]
    if target is None:
        target = TRUE_NEXT if truth is not None else 0
    valid = {v for _, v in options}
    if int(target) not in valid:
        raise ValueError(f"target: expected an action id in [0, {len(names)})"
                         + (" or -1 (the true next action)" if truth is not None else "") + f", got {target}")

    slider = w.IntSlider(value=int(window), min=0, max=n - 1, step=1, description="window", continuous_update=False)
    dropdown = w.Dropdown(options=options, value=int(target), description="target")
    image = w.Image(format="png")
    info = w.HTML()
    box = CounterfactualExplorer([w.HBox([slider, dropdown]), info, image])
    box.state, box.controls = {}, {"window": slider, "target": dropdown}
    box.slider, box.dropdown, box.image, box.info = slider, dropdown, image, info
    cache: dict[tuple[int, int], object] = {}
    current = {"window": int(window), "target": int(target)}

    def resolve(i: int, choice: int) -> int:
        return int(truth[i]) if choice == TRUE_NEXT else int(choice)

    def update(window: int | None = None, target: int | None = None) -> dict:
        i = current["window"] if window is None else int(window)
        choice = current["target"] if target is None else int(target)
        if not 0 <= i < n:
            raise ValueError(f"window: expected 0 <= window < {n}, got {i}")
        if choice not in valid:
            raise ValueError(f"target: expected one of the dropdown's action ids, got {choice}")
        current.update(window=i, target=choice)
        goal = resolve(i, choice)
        if (i, goal) not in cache:
            cache[(i, goal)] = search(i, goal)
        cf = cache[(i, goal)]
        before = np.asarray(_as_numpy(cf.before_topk)).astype(int)
        after = np.asarray(_as_numpy(cf.after_topk)).astype(int)
        b0 = before[:, 0] if before.ndim == 2 else before
        a0 = after[:, 0] if after.ndim == 2 else after
        changed = [int(s) for s, x, y in zip(cf.slot_steps, b0, a0) if x != y]
        reached = int(cf.prediction_after) == goal
        fig = counterfactual_storyboard(arr[i], cf.slot_steps, before, after, prediction_before=int(cf.prediction_before),
                                        prediction_after=int(cf.prediction_after), target=goal, class_names=names,
                                        fps=fps, ncols=t)
        image.value = figure_png(fig)
        true_txt = f"; true next action: <b>{html.escape(names[truth[i]])}</b>" if truth is not None else ""
        info.value = (f"window {i}{true_txt}<br>prediction {html.escape(names[int(cf.prediction_before)])} "
                      f"&rarr; {html.escape(names[int(cf.prediction_after)])}; target <b>{html.escape(names[goal])}</b> "
                      f"{'reached' if reached else 'not reached'} (its probability {cf.target_prob_before:.2f} "
                      f"&rarr; {cf.target_prob_after:.2f}, {cf.iterations} steps); past predictions changed at "
                      f"{', '.join(f't={s}' for s in changed) if changed else 'no step'}")
        box.state.clear()
        box.state.update(window=i, target=goal, true_action=None if truth is None else int(truth[i]),
                         prediction_before=int(cf.prediction_before), prediction_after=int(cf.prediction_after),
                         reached=reached, target_prob_before=float(cf.target_prob_before),
                         target_prob_after=float(cf.target_prob_after), changed_slots=changed,
                         iterations=int(cf.iterations))
        return box.state

    box.update = update
    slider.observe(lambda change: update(window=change["new"]), names="value")
    dropdown.observe(lambda change: update(target=change["new"]), names="value")
    update()
    return box
