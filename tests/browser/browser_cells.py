"""Which cells of a notebook a widget needs: a small static analysis of the code cells.

A student who wants to play with the widget of a long training notebook runs the cells it
depends on, not the whole notebook. :func:`cells_needed` finds them: every name the widget's
cell reads is traced back to the last earlier cell that binds it (assignment, import, def,
class, for/with target) or changes it in place (``x[i] = ...``, ``x.attr = ...``), and so on
recursively. IPython magics (``%pip``) are ignored. Method calls that change an object
(``model.eval()``) are not seen; the cells a widget needs here do not rely on them.
"""

from __future__ import annotations

import ast
import builtins
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _source(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def _python(source: str) -> str:
    """The cell's source with IPython magics and shell escapes replaced by ``pass``."""
    lines = []
    for line in source.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def _base(node):
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
           ast.GeneratorExp)


def _local_names(scope) -> set[str]:
    """Names a function, lambda or comprehension binds for itself (arguments, targets)."""
    names = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = scope.args
        names |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
        names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        body = scope.body if isinstance(scope.body, list) else [scope.body]
    else:
        body = [g.target for g in scope.generators]
    for part in body:
        for node in ast.walk(part):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(al.asname or al.name).split(".")[0] for al in node.names}
    if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        for g in scope.generators:
            names |= {n.id for n in ast.walk(g.target) if isinstance(n, ast.Name)}
    return names


def bound_and_read(source: str) -> tuple[set[str], set[str]]:
    """(names the cell binds or changes in place at its top level, names it needs from earlier
    cells: read before the cell binds them itself, or changed in place)."""
    tree = ast.parse(_python(source))
    first_bound: dict[str, tuple[int, int]] = {}
    bound, needs, late_reads = set(), set(), []

    def pos(node):
        return (node.lineno, node.col_offset)

    def end(node):
        return (node.end_lineno, node.end_col_offset)

    def bind(name, at):
        bound.add(name)
        first_bound[name] = min(first_bound.get(name, at), at)

    def visit(node, local: frozenset, top: bool, at=None):
        """``at``: where a name stored under this node counts as bound (after the value it gets)."""
        if isinstance(node, _SCOPES):
            if top and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                bind(node.name, pos(node))
            inner = local | _local_names(node)
            for child in ast.iter_child_nodes(node):
                visit(child, inner, False)
            return
        if isinstance(node, ast.ClassDef) and top:
            bind(node.name, pos(node))
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)) and node.value is not None:
            visit(node.value, local, top)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                if isinstance(node, ast.AugAssign):
                    visit(ast.Name(id=target.id, ctx=ast.Load(), lineno=target.lineno, col_offset=target.col_offset)
                          if isinstance(target, ast.Name) else target, local, top)
                visit(target, local, top, at=end(node.value))
            return
        if isinstance(node, (ast.For, ast.AsyncFor)):
            visit(node.iter, local, top)
            visit(node.target, local, top, at=end(node.iter))
            for child in node.body + node.orelse:
                visit(child, local, top)
            return
        if isinstance(node, ast.withitem):
            visit(node.context_expr, local, top)
            if node.optional_vars is not None:
                visit(node.optional_vars, local, top, at=end(node.context_expr))
            return
        if isinstance(node, ast.Name) and node.id not in local:
            if isinstance(node.ctx, ast.Load):
                if not top:
                    late_reads.append(node.id)
                elif node.id not in first_bound or pos(node) < first_bound[node.id]:
                    needs.add(node.id)
            elif top:
                bind(node.id, at or pos(node))
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, ast.Store):
            name = _base(node)
            if name and name not in local:   # x[i] = v changes x: whoever reads x needs this cell
                bound.add(name)
                if name not in first_bound:
                    needs.add(name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and top:
            for alias in node.names:
                bind((alias.asname or alias.name).split(".")[0], pos(node))
        for child in ast.iter_child_nodes(node):
            visit(child, local, top, at)

    visit(tree, frozenset(), True)
    needs |= {n for n in late_reads if n not in bound}   # read inside a function or comprehension
    return bound, needs - set(dir(builtins))


def load(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def widget_cells(nb: dict) -> list[int]:
    """Indices (among all cells) of the code cells whose stored output is a widget."""
    return [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
            and any(WIDGET_MIME in o.get("data", {}) for o in c.get("outputs", []))]


def cells_needed(nb: dict, target: int) -> list[int]:
    """Indices of the code cells to run, in order, so that cell ``target`` runs as in the notebook
    (the first code cell, the set-up, is always included)."""
    code = {i: bound_and_read(_source(c)) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"}
    if target not in code:
        raise ValueError(f"cell {target} is not a code cell")
    needed, todo = {target, min(code)}, [target]
    while todo:
        user = todo.pop()
        for name in code[user][1]:
            definers = [i for i in code if i < user and name in code[i][0]]
            if definers and definers[-1] not in needed:
                needed.add(definers[-1])
                todo.append(definers[-1])
    return sorted(needed)
