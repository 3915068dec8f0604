"""Training curves: :func:`plot_history` and the live-curves callback of ``train.fit``.

How the live figure updates (a deliberate choice): the first drawing is shown with
``display(image, display_id=True)`` and every later one replaces it through that display handle
(``handle.update``). The notebook keeps ONE output that changes in place, which is what nbval
and stored notebooks need; the ``clear_output(wait=True)`` + redisplay loop of many courses
leaves a stream of outputs (and unhandled ``clear_output`` messages) that fail nbval.

In headless mode (:func:`lecturekit.env.headless`: CI, nbval, the execute command) nothing is
shown during training and exactly one figure is displayed at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..env import headless
from ..train import Callback, FitState, History
from .style import course_style, figure_png, new_figure

__all__ = ["LiveCurves", "plot_history"]


def plot_history(history: History, *, metrics: Sequence[str] | None = None, title: str | None = None, fig=None):
    """Training curves of a :class:`lecturekit.train.History` in the course style: the train
    and validation loss on the first axes, then one axes per validation metric.

    Returns the matplotlib Figure: a new one unless ``fig`` is given, in which case it is
    cleared and redrawn (what the live curves do on every update).
    """
    if not isinstance(history, History):
        raise TypeError(f"plot_history expects a lecturekit.train.History, got {type(history).__name__}")
    metrics = list(history.metric_names() if metrics is None else metrics)
    n = 1 + len(metrics)
    with course_style():
        if fig is None:
            fig = new_figure(figsize=(3.2 * n + 0.4, 2.8))
        else:
            fig.clear()
            fig.set_size_inches(3.2 * n + 0.4, 2.8)
        axes = fig.subplots(1, n, squeeze=False)[0]
        x_key = "epoch" if history.by_epoch() else "step"
        xs = history[x_key] if history.records else []
        ax = axes[0]
        if history.step_loss and not history.by_epoch():
            # every optimizer step, faint, under the evaluation points
            ax.plot(range(1, len(history.step_loss) + 1), history.step_loss, color="0.75", lw=0.8,
                    label="train (step)")
        if history.records:
            ax.plot(xs, history["train_loss"], marker="o", ms=3, label="train")
            if "val_loss" in history:
                ax.plot(xs, history["val_loss"], marker="o", ms=3, label="val")
        ax.set_xlabel(x_key)
        ax.set_ylabel("loss")
        ax.set_title("loss")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        for ax, name in zip(axes[1:], metrics):
            if history.records and f"val_{name}" in history:
                ax.plot(xs, history[f"val_{name}"], marker="o", ms=3, color="C1", label="val")
            ax.set_xlabel(x_key)
            ax.set_title(name)
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        if title:
            fig.suptitle(title)
    return fig


def _kernel_display():
    """IPython's ``display`` when running inside a Jupyter kernel, else None."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return None
    ip = get_ipython()
    if ip is None or not hasattr(ip, "kernel"):
        return None
    from IPython.display import display

    return display


class LiveCurves(Callback):
    """A ``fit`` callback that draws the training curves while the model trains.

    ``fit(model, ..., callbacks=[LiveCurves()])``. In a live notebook the figure is redrawn
    every ``every`` records in one output (a display handle, updated in place). Headless, or
    outside a notebook, nothing is drawn during training; at the end one final figure is
    displayed (in a notebook) and kept as ``.figure`` either way. ``live`` forces the mode.
    ``.updates`` counts the live redraws (0 when headless).
    """

    def __init__(self, *, metrics: Sequence[str] | None = None, every: int = 1, title: str | None = None,
                 live: bool | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.metrics = metrics
        self.every = every
        self.title = title
        self.live = live
        self.figure = None
        self.handle = None
        self.updates = 0
        self._display = None

    def _image(self):
        from IPython.display import Image

        return Image(data=figure_png(self.figure), format="png")

    def _draw(self, history: History) -> None:
        self.figure = plot_history(history, metrics=self.metrics, title=self.title, fig=self.figure)

    def on_fit_start(self, state: FitState) -> None:
        self._display = _kernel_display()
        live = (not headless()) if self.live is None else self.live
        self._live = live and self._display is not None
        self.figure = None
        self.handle = None
        self.updates = 0
        if self._live:
            self._draw(state.history)
            self.handle = self._display(self._image(), display_id=True)

    def on_eval_end(self, state: FitState) -> None:
        if self._live and len(state.history) % self.every == 0:
            self._draw(state.history)
            self.handle.update(self._image())
            self.updates += 1

    def on_fit_end(self, state: FitState) -> None:
        self._draw(state.history)
        if self._live:
            self.handle.update(self._image())
        elif self._display is not None:
            self._display(self._image())

    def __repr__(self) -> str:
        return f"LiveCurves(every={self.every}, live={self.live})"

