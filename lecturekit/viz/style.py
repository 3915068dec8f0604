"""One look for every figure of the course, and the small helpers all plots share.

* :data:`COURSE_RC` is the matplotlib rc dict (a dpi readable on a laptop screen that keeps stored
  notebook outputs small, readable fonts, no top/right spines); :func:`course_style` applies it
  as a context manager, :func:`use_course_style` for the whole session (every notebook's set-up
  cell calls it, so figures drawn with plain matplotlib in a cell look like the library's).
* :func:`new_figure` makes a figure that is *not* registered with pyplot. Every plotting function
  of :mod:`lecturekit.viz` returns such a figure, so in a notebook it shows exactly once: when it
  is the cell's last expression or is passed to ``display``. (A pyplot-managed figure returned as
  the last expression shows twice with the inline backend, and pyplot keeps every figure alive.)
* :func:`to_numpy_video` converts a clip ``(C, T, H, W)`` (uint8 or float in [0, 1], torch or
  numpy) into ``(T, H, W, 3)`` uint8 frames for drawing, rejecting anything else clearly.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator

import matplotlib
import numpy as np

# Importing pyplot lets the notebook backend (matplotlib-inline) register its PNG formatter for
# Figure objects; we never create figures through pyplot itself.
import matplotlib.pyplot as _plt  # noqa: F401  (side effect: backend and display formatter)
from matplotlib.figure import Figure



def _ensure_notebook_png() -> None:
    """In a notebook kernel, make sure Figure objects display as PNG.

    matplotlib-inline registers its PNG formatter only once pyplot has loaded the backend
    (e.g. after ``plt.subplots()``), and never under ``MPLBACKEND=Agg``; our figures bypass
    pyplot, so without this a returned Figure would show as text only. Nothing happens outside
    IPython or when a formatter is already registered.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    png = shell.display_formatter.formatters.get("image/png")
    if png is None:
        return
    try:
        png.lookup_by_type(Figure)
        return
    except KeyError:
        pass
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(shell, {"png"})


_ensure_notebook_png()

DPI = 100

COURSE_RC: dict = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.figsize": (6.4, 3.6),
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "image.interpolation": "nearest",
    "axes.prop_cycle": matplotlib.cycler(
        color=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    ),
}

# A qualitative palette for many classes (timelines, bars); repeats after 20 colours.
_CLASS_CMAP = "tab20"


@contextlib.contextmanager
def course_style() -> Iterator[None]:
    """Apply the course rc settings inside a ``with`` block (every viz function uses it)."""
    with matplotlib.rc_context(COURSE_RC):
        yield


def use_course_style() -> None:
    """Apply the course rc settings for the rest of the session (call once, in the set-up cell).

    The library's plots use the style anyway; this makes the figures a notebook draws itself with
    ``new_figure`` and ``ax.plot`` match them.
    """
    matplotlib.rcParams.update(COURSE_RC)


def new_figure(figsize: tuple[float, float] | None = None, dpi: int = DPI) -> Figure:
    """A figure outside pyplot's registry (shows once in a notebook; no global state)."""
    with course_style():
        return Figure(figsize=figsize or COURSE_RC["figure.figsize"], dpi=dpi, layout="constrained")


def class_color(index: int):
    """The colour of class ``index`` (the same everywhere: timelines, bars, legends)."""
    cmap = matplotlib.colormaps[_CLASS_CMAP]
    return cmap(int(index) % cmap.N)


def figure_png(fig: Figure, dpi: int | None = None) -> bytes:
    """The figure rendered as PNG bytes (used by live curves and widgets)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi)
    return buf.getvalue()


def _as_numpy(x) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu")
            if x.dtype in (torch.bfloat16, torch.float16):
                x = x.float()
            return x.numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return np.asarray(x)


def to_numpy_video(clip, name: str = "clip", normalize: bool = False) -> np.ndarray:
    """``(C, T, H, W)`` clip (C = 1 or 3; uint8, or float in [0, 1]) -> ``(T, H, W, 3)`` uint8.

    A batch of one ``(1, C, T, H, W)`` is accepted. Floats outside [0, 1] raise unless
    ``normalize=True`` (min-max scaling of the whole clip, e.g. for normalised network inputs).
    """
    arr = _as_numpy(clip)
    if arr.ndim == 5 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 4:
        raise ValueError(f"{name}: expected a (C, T, H, W) clip, got shape {tuple(arr.shape)}")
    if arr.shape[0] not in (1, 3):
        hint = ""
        if arr.shape[-1] in (1, 3) or arr.shape[1] in (1, 3):
            hint = " (channels must come first: (C, T, H, W); use x.permute(...) to reorder)"
        raise ValueError(f"{name}: expected C = 1 or 3 channels first, got shape {tuple(arr.shape)}{hint}")
    if arr.dtype == np.uint8:
        out = arr
    elif np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        if normalize:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        elif arr.size and (arr.min() < -1e-3 or arr.max() > 1 + 1e-3):
            raise ValueError(
                f"{name}: float clips must lie in [0, 1], got values in [{arr.min():.3g}, {arr.max():.3g}]; "
                "pass normalize=True to min-max scale it"
            )
        out = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"{name}: expected uint8 or float values, got dtype {arr.dtype}")
    out = np.transpose(out, (1, 2, 3, 0))  # (T, H, W, C)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out)


def time_label(t: int, fps: float | None) -> str:
    """Frame index ``t`` as a label: ``"t=5"`` or, with ``fps``, ``"0.62 s"``."""
    return f"{t / fps:.2f} s" if fps else f"t={t}"
