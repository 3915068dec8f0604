"""The floors of the library, read from the source: no module imports from a floor above its own,
and the modules import each other without a cycle.

Floors (a module may import from its own floor, without a cycle, and from the floors below)::

    5  course
    4  analysis, viz
    3  losses, metrics, train, checkpoint, features, recipes
    2  models
    1  layers
    0  data, resources
   -1  env            (imports nothing of the library; every floor may use it)

The package root (``lecturekit/__init__.py``) and ``lecturekit/__main__.py`` stand outside: they may
import anything, nothing may import them. Every ``import`` statement counts, at the top of a file
or inside a function (a lazy import is still a dependency), relative or absolute.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lecturekit"

FLOORS = {"env": -1, "data": 0, "resources": 0, "layers": 1, "models": 2,
          "losses": 3, "metrics": 3, "train": 3, "checkpoint": 3, "features": 3, "recipes": 3,
          "analysis": 4, "viz": 4, "course": 5}
OUTSIDE = {"lecturekit", "lecturekit.__main__"}      # the root: imports anything, imported by nothing


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_of(package: Path) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


@functools.lru_cache(maxsize=None)
def imports_of(package: Path) -> list[tuple[str, str, int]]:
    """Every import of the package's modules that reaches the package: (importer, imported module,
    line). ``from X import a`` goes to ``X.a`` when that is a module of the package, else to ``X``."""
    mods = modules_of(package)
    root = package.name
    edges = []
    for name, path in mods.items():
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    source = ".".join(parts + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in mods else source for a in node.names]
            else:
                continue
            for target in targets:
                if target == root or target.startswith(root + "."):
                    while target not in mods and "." in target:      # import a.b.c where c is an attribute
                        target = target.rpartition(".")[0]
                    edges.append((name, target, node.lineno))
    return edges


def floor_of(name: str) -> int | None:
    """The floor of a module (None: outside the floors, i.e. the root and its __main__)."""
    if name in OUTSIDE:
        return None
    return FLOORS.get(name.split(".")[1])


def upward_imports(package: Path) -> list[str]:
    problems = []
    mods = modules_of(package)
    for src, dst, line in imports_of(package):
        where = f"{mods[src].relative_to(package.parent)}:{line}: {src} imports {dst}"
        if dst in OUTSIDE and src != dst:
            problems.append(f"{where} (the package root imports the library, not the other way)")
        elif src in OUTSIDE or floor_of(src) is None or floor_of(dst) is None:
            continue                        # the root; or a module without a floor (its own test)
        elif floor_of(src) == -1:
            problems.append(f"{where} (env imports nothing of the library)")
        elif floor_of(dst) > floor_of(src):
            problems.append(f"{where} (floor {floor_of(src)} -> floor {floor_of(dst)})")
    return problems


def cycles(package: Path) -> list[list[str]]:
    """The import cycles: every strongly connected group of modules, as one cycle through it."""
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst, _ in imports_of(package):
        if src != dst:
            graph[src].add(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:                      # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(modules_of(package)):
        if v not in index:
            visit(v)
    return [_one_cycle(graph, set(g)) for g in groups]


def _one_cycle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected group (breadth first)."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return sorted(group)


# --------------------------------------------------------------------------- the library
def test_every_module_has_a_floor():
    missing = [m for m in modules_of(PACKAGE) if m not in OUTSIDE and floor_of(m) is None]
    assert not missing, f"modules without a floor (add their folder to FLOORS): {missing}"


def test_no_import_goes_up_a_floor():
    problems = upward_imports(PACKAGE)
    assert not problems, "imports against the floors:\n" + "\n".join(problems)


def test_the_modules_import_each_other_without_a_cycle():
    found = cycles(PACKAGE)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_reader_sees_lazy_and_relative_imports():
    """A few edges the library is known to have, of each kind the reader must see."""
    edges = {(s, d) for s, d, _ in imports_of(PACKAGE)}
    assert ("lecturekit.course.checks.nb01", "lecturekit.course.checking") in edges           # relative, top
    assert ("lecturekit.features", "lecturekit.env") in edges
    assert ("lecturekit.analysis.dependency", "lecturekit.models.aga") in edges              # two dots
    lazy = [(s, d) for s, d, _ in imports_of(PACKAGE) if s == "lecturekit.analysis.aga" and d.startswith(
        "lecturekit.analysis.anticipation")]
    assert lazy, "the import inside a function of analysis/aga.py was not seen"


# --------------------------------------------------------------------------- the analyser itself
def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "lecturekit" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "lecturekit"


def test_the_analyser_finds_an_upward_import_a_lazy_cycle_and_an_env_import(tmp_path):
    package = _write(tmp_path, {
        "__init__.py": "from .env import device\n",
        "env.py": "def device():\n    from .data import cache\n",
        "data/__init__.py": "",
        "data/cache.py": "from ..models import build\n",
        "models/__init__.py": "from .build import build\n",
        "models/build.py": "import lecturekit.layers.conv\n",
        "layers/__init__.py": "",
        "layers/conv.py": "def f():\n    from ..layers import pool\n",
        "layers/pool.py": "def g():\n    from . import conv\n",
        "course/__init__.py": "import lecturekit\n",
    })
    problems = "\n".join(upward_imports(package))
    assert "lecturekit.data.cache imports lecturekit.models.build (floor 0 -> floor 2)" in problems
    assert "env imports nothing of the library" in problems
    assert "lecturekit.course imports lecturekit (the package root" in problems
    assert "lecturekit.models.build imports lecturekit.layers.conv" not in problems
    assert cycles(package) == [["lecturekit.layers.conv", "lecturekit.layers.pool", "lecturekit.layers.conv"]]


def test_a_module_without_a_floor_is_named(tmp_path):
    package = _write(tmp_path, {"__init__.py": "", "attic.py": ""})
    assert [m for m in modules_of(package) if m not in OUTSIDE and floor_of(m) is None] == ["lecturekit.attic"]


if __name__ == "__main__":                  # a quick report while refactoring
    print("\n".join(upward_imports(PACKAGE)) or "no upward import")
    print("\n".join(" -> ".join(c) for c in cycles(PACKAGE)) or "no cycle")
    pytest.main([__file__, "-q"])
