"""Tables of models for notebooks: name, parameters, FLOPs and any further columns.

:func:`param_table` turns rows of dicts into a :class:`ParamTable`, which prints as aligned text
(stable, so a cell tagged ``nbval-check-output`` guards the numbers), shows as HTML in a notebook
and draws itself as a matplotlib Figure.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

from .style import course_style, new_figure

__all__ = ["ParamTable", "param_table"]


def _human(n, unit: str = "") -> str:
    if n is None or (isinstance(n, float) and np.isnan(n)):
        return "-"
    n = float(n)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip() if n == int(n) else f"{n:.3g} {unit}".rstrip()


class ParamTable:
    """A readable table of models: name, parameters, FLOPs (and any further columns).

    Displays as an HTML table in notebooks and as aligned text in ``print`` / ``repr`` (stable
    text, so a cell tagged ``nbval-check-output`` guards the numbers). ``rows`` keeps the raw
    dicts; ``.figure()`` draws the same table as a matplotlib Figure.
    """

    def __init__(self, rows: Sequence[Mapping], columns: Sequence[str] | None = None, exact: bool = False):
        rows = [dict(r) for r in rows]
        if not rows:
            raise ValueError("param_table: no rows")
        for r in rows:
            if "name" not in r:
                raise ValueError(f"param_table: every row needs a 'name', got {r!r}")
        if columns is None:
            columns = ["name"]
            for r in rows:
                columns += [k for k in r if k not in columns]
        self.rows = rows
        self.columns = list(columns)
        self.exact = exact

    def _cell(self, key: str, value) -> str:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            if self.exact and float(value) == int(value):
                return f"{int(value):,}"
            if key in ("params", "flops", "macs") or key.endswith(("params", "flops", "macs")):
                return _human(value)
            return f"{value:.4g}" if isinstance(value, (float, np.floating)) else f"{value:,}"
        return "-" if value is None else str(value)

    def cells(self) -> list[list[str]]:
        return [[self._cell(c, r.get(c)) for c in self.columns] for r in self.rows]

    def __str__(self) -> str:
        body = self.cells()
        widths = [max(len(c), *(len(row[j]) for row in body)) for j, c in enumerate(self.columns)]

        def fmt(row):
            return "  ".join(v.ljust(w) if j == 0 else v.rjust(w) for j, (v, w) in enumerate(zip(row, widths)))

        lines = [fmt(self.columns), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body]
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f'<td style="text-align:{"left" if j == 0 else "right"}">{html.escape(v)}</td>'
                             for j, v in enumerate(row)) + "</tr>"
            for row in self.cells()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def figure(self, title: str | None = None):
        """The table drawn as a Figure (one axes, no ticks)."""
        with course_style():
            fig = new_figure(figsize=(1.4 * len(self.columns) + 0.5, 0.3 * len(self.rows) + 0.6))
            ax = fig.subplots()
            ax.axis("off")
            tab = ax.table(cellText=self.cells(), colLabels=self.columns, loc="center", cellLoc="right")
            tab.auto_set_font_size(False)
            tab.set_fontsize(8)
            if title:
                ax.set_title(title)
        return fig


def param_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None, *, exact: bool = False) -> ParamTable:
    """Rows of dicts (``name``, ``params``, ``flops``, ...) -> a :class:`ParamTable`.

    Counts print with units (``1.23 M``, ``38.50 G``) unless ``exact=True`` (digits with
    thousands separators, for checking against published numbers)."""
    return ParamTable(rows, columns, exact=exact)
