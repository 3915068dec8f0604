"""Generate the student notebooks (exercises/) from the solution notebooks (solutions/).

``python -m lecturekit.course build-exercises [--src solutions --dst exercises] [--check]``

Conventions in a solution notebook (solutions/NN_*.ipynb)
---------------------------------------------------------
* **Exercise heading.** Each exercise starts with a markdown heading
  ``### Exercise NN.M: Title`` (heading level 2 to 4; ``NN`` = the notebook number, ``M`` = the
  exercise number in it), e.g. ``### Exercise 04.1: Temporal shift``. The text after the heading
  in the same cell is the task; its first sentence is the default hint.
* **Solution blocks.** Solution code sits between the nbgrader marker lines
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (exactly these, on their own lines). A block
  belongs to the exercise whose heading is the nearest one above it. Everything outside the
  blocks (signature, docstring, comments) is kept, so a block usually is a function's body::

      def temporal_shift(x, fold_div=8):
          \"\"\"Shift C // fold_div channels forward and C // fold_div backward in time.\"\"\"
          # HINT: start from out = torch.zeros_like(x) and copy three channel groups.
          ### BEGIN SOLUTION
          ...
          ### END SOLUTION

* **Hints.** A ``# HINT: ...`` comment line above a block (outside it; it stays visible) gives
  the text of the stub's error message; without one, the first sentence of the exercise's task.
  A ``# HINT:`` line inside a block is an error (it would be deleted with the solution).
* **Markdown answers.** The same markers in a markdown cell hide a written answer.
* **Dependent cells.** A cell that cannot run before the exercise is solved (its check cell, a
  plot of the student's result) is found automatically: it uses a name that a stub cell
  defines, directly or through another dependent cell. Authors can also tag a cell
  ``exercise-dependent`` for cases the analysis cannot see.

What the generator does
-----------------------
Each block becomes ``# YOUR CODE HERE`` + ``raise NotImplementedError("Exercise NN.M: <hint>")``
at the block's indentation; outputs and execution counts are cleared; stub cells and dependent
cells get the tag ``raises-exception`` (nbval then expects them to raise, and Jupyter's "Run all"
goes on past them); a Colab badge pointing at ``solutions/`` is pointed at ``exercises/``; the
notebook metadata lists its exercise ids (``metadata.lecturekit.exercises``, used by the grader).
The output depends only on the input, so a re-run is byte-identical; ``--check`` compares
instead of writing and also scans for leaked solution lines.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .notebook import KERNELSPEC

BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"
DEPENDENT_TAG = "exercise-dependent"
RAISES_TAG = "raises-exception"
STUB_COMMENT = "# YOUR CODE HERE"
MARKDOWN_STUB = "_YOUR ANSWER HERE_"

HEADING_RE = re.compile(r"^ {0,3}#{2,4}\s+Exercise\s+(?P<id>\d{2}\.\d+)\s*:\s*(?P<title>.*?\S)\s*#*\s*$", re.M)
_HEADING_LOOSE = re.compile(r"^ {0,3}#{1,6}\s+Exercise\b", re.M | re.I)
HINT_RE = re.compile(r"^\s*#\s*HINT\s*:\s*(?P<text>.*?)\s*$")
_MARKERISH = re.compile(r"^\s*(#+|<!--|//)?\s*(BEGIN|END)[ _]SOLUTION\b", re.I)
_COLAB_RE = re.compile(r"(colab\.research\.google\.com/github/[^\s)\"'<>]+?/blob/[^\s/)\"'<>]+/)solutions/")


class ExerciseBuildError(ValueError):
    """A solution notebook breaks the conventions (unbalanced markers, no exercise heading, ...)."""


@dataclass
class BuildReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)    # only in check mode
    exercises: dict[str, list[str]] = field(default_factory=dict)  # notebook -> exercise ids

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- parsing helpers
def _blocks(lines: list[str], where: str) -> list[tuple[int, int]]:
    """(begin, end) line indices of the solution blocks; strict about the marker spelling."""
    blocks, begin = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == BEGIN_MARKER:
            if begin is not None:
                raise ExerciseBuildError(f"{where}: line {i + 1}: {BEGIN_MARKER} inside an open block")
            begin = i
        elif text == END_MARKER:
            if begin is None:
                raise ExerciseBuildError(f"{where}: line {i + 1}: {END_MARKER} without {BEGIN_MARKER}")
            blocks.append((begin, i))
            begin = None
        elif _MARKERISH.match(line):
            raise ExerciseBuildError(
                f"{where}: line {i + 1}: {line.strip()!r} looks like a solution marker but is not "
                f"exactly {BEGIN_MARKER!r} / {END_MARKER!r}; the solution would leak")
        elif begin is not None and HINT_RE.match(line):
            raise ExerciseBuildError(f"{where}: line {i + 1}: a '# HINT:' line inside a solution block "
                                     "would be removed with it; put it above the block")
    if begin is not None:
        raise ExerciseBuildError(f"{where}: line {begin + 1}: {BEGIN_MARKER} without {END_MARKER}")
    return blocks


def _first_sentence(markdown: str) -> str:
    text = " ".join(markdown.split("\n\n", 1)[0].split())
    text = re.sub(r"[*_]{1,2}([^*_]+)[*_]{1,2}", r"\1", text)
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    text = match.group(1) if match else text
    return text if len(text) <= 200 else text[:197] + "..."


def _python_source(src: str) -> str:
    """IPython syntax (magics, ``!cmd``) turned into plain Python, for the AST."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(src)
    except Exception:
        return "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))


def _bound_names(node: ast.AST) -> set[str]:
    """Names a top-level statement binds (not looking inside nested function/class bodies)."""
    names: set[str] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
            if n is not node:
                continue
            todo.extend(n.decorator_list)
            continue
        if isinstance(n, ast.Lambda):
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for alias in n.names:
                names.add((alias.asname or alias.name).split(".")[0])
        todo.extend(ast.iter_child_nodes(n))
    return names


def _loaded_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _statements(src: str) -> list[ast.stmt] | None:
    try:
        return ast.parse(_python_source(src)).body
    except SyntaxError:
        return None


# --------------------------------------------------------------------------- one notebook
def _cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def make_exercise_notebook(solution_nb, name: str = "notebook"):
    """The student version of one solution notebook (a new NotebookNode; the input is untouched).

    Returns ``(exercise_nb, exercise_ids)``.
    """
    nb = copy.deepcopy(solution_nb)
    current: tuple[str, str, str] | None = None          # (id, title, task text)
    ids: list[str] = []
    tainted: set[str] = set()
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        src = _cell_source(cell)
        lines = src.split("\n")
        blocks = _blocks(lines, where)
        if cell.cell_type == "markdown":
            found = list(HEADING_RE.finditer(src))
            for loose in _HEADING_LOOSE.finditer(src):
                line = src[loose.start():].split("\n", 1)[0]
                if not HEADING_RE.match(line):
                    raise ExerciseBuildError(f"{where}: exercise heading {line!r} does not follow "
                                             "'### Exercise NN.M: Title'")
            for match in found:
                task = src[match.end():].strip()
                current = (match["id"], match["title"], task)
                ids.append(match["id"])
            for begin, end in reversed(blocks):
                if current is None:
                    raise ExerciseBuildError(f"{where}: a solution block before any exercise heading")
                lines[begin:end + 1] = [MARKDOWN_STUB]
            src = "\n".join(lines)
            cell.source = _COLAB_RE.sub(r"\1exercises/", src)
            continue
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        stub = bool(blocks)
        if stub:
            if current is None:
                raise ExerciseBuildError(f"{where}: a solution block before any exercise heading "
                                         "('### Exercise NN.M: Title')")
            ex_id, title, task = current
            hint_start = 0
            new_lines = list(lines)
            for begin, end in reversed(blocks):
                hint_start = max([e + 1 for b, e in blocks if e < begin], default=0)
                hints = [HINT_RE.match(ln)["text"] for ln in lines[hint_start:begin] if HINT_RE.match(ln)]
                hint = " ".join(h for h in hints if h) or _first_sentence(task) or f"implement {title}"
                indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
                message = json.dumps(f"Exercise {ex_id}: {hint}", ensure_ascii=False)
                new_lines[begin:end + 1] = [f"{indent}{STUB_COMMENT}",
                                            f"{indent}raise NotImplementedError({message})"]
            cell.source = "\n".join(new_lines)
            statements = _statements(cell.source)
            if statements is None:
                raise ExerciseBuildError(f"{where}: the generated stub cell is not valid Python; "
                                         "does a block cut through a statement?")
            # Names bound from the first block on are unusable until the exercise is solved: those
            # of the stub version (e.g. the function) and those the solution's block would bind.
            first_line = blocks[0][0] + 1  # 1-based line of the first block (same in both versions)
            for version in (statements, _statements(src) or []):
                hit = False
                for stmt in version:
                    hit = hit or stmt.end_lineno >= first_line
                    if hit:
                        tainted |= _bound_names(stmt)
        else:
            statements = _statements(src)
            uses = False
            if statements is None:  # not parseable: fall back to words
                uses = bool(set(re.findall(r"[A-Za-z_]\w*", src)) & tainted)
            else:
                for stmt in statements:
                    uses = uses or bool(_loaded_names(stmt) & tainted) or DEPENDENT_TAG in tags
                    if uses:
                        tainted |= _bound_names(stmt)
                # magics hide their code in strings: look at their words
                magic = src if src.lstrip().startswith("%%") else "\n".join(
                    ln for ln in lines if ln.lstrip().startswith(("%", "!")))
                uses = uses or bool(set(re.findall(r"[A-Za-z_]\w*", magic)) & tainted)
            stub = uses or DEPENDENT_TAG in tags
        if stub and RAISES_TAG not in tags:
            tags.append(RAISES_TAG)
        if tags:
            cell.metadata["tags"] = tags
        cell.outputs = []
        cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)  # what JupyterLab writes: opening it marks nothing modified
    nb.metadata["lecturekit"] = {"exercises": ids}
    return nb, ids


def _read(path: Path):
    import nbformat

    raw = json.loads(path.read_text(encoding="utf-8"))
    nb = nbformat.from_dict(raw)
    if nb.get("nbformat") != 4:
        nb = nbformat.convert(nb, 4)
    if nb.get("nbformat_minor", 0) >= 5:  # deterministic ids where a tool left some out
        for i, cell in enumerate(nb.cells):
            if not cell.get("id"):
                cell["id"] = hashlib.sha1(f"{path.name}:{i}".encode()).hexdigest()[:8]
    return nb


def _render(nb) -> str:
    import nbformat

    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


# --------------------------------------------------------------------------- leak scan
def _split_lines(nb) -> tuple[set[str], set[str]]:
    """(lines inside solution blocks, lines outside them), stripped, of a solution notebook."""
    inside, outside = set(), set()
    for cell in nb.cells:
        lines = _cell_source(cell).split("\n")
        spans = _blocks(lines, "leak scan")
        in_block = set()
        for b, e in spans:
            in_block.update(range(b + 1, e))
        for i, line in enumerate(lines):
            text = line.strip()
            if text:
                (inside if i in in_block else outside).add(text)
    return inside - outside, outside


def find_leaks(solution_nb, exercise_nb) -> list[str]:
    """Lines that exist only inside solution blocks of ``solution_nb`` and yet appear in
    ``exercise_nb`` (in a cell's source or output), plus any marker line left there."""
    secret, _ = _split_lines(solution_nb)
    leaks = []
    for index, cell in enumerate(exercise_nb.cells):
        texts = [_cell_source(cell)]
        for out in cell.get("outputs", []):
            texts.append(json.dumps(out))
        for text in texts:
            for line in text.split("\n"):
                s = line.strip()
                if s in secret or s in (BEGIN_MARKER, END_MARKER):
                    leaks.append(f"cell {index}: {s}")
    return leaks


# --------------------------------------------------------------------------- many notebooks
def build_exercises(src: str | Path = "solutions", dst: str | Path = "exercises", *,
                    check: bool = False, verbose: bool = True) -> BuildReport:
    """Generate ``dst/<name>.ipynb`` for every ``src/<name>.ipynb``.

    With ``check=True`` nothing is written: the report's ``problems`` list every notebook that
    is missing, stale or orphaned in ``dst``, and every leaked solution line.
    Exercise notebooks without a solution are removed (they are generated files).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"build-exercises: no folder {src}")
    report = BuildReport()
    owner: dict[str, str] = {}
    sources = sorted(p for p in src.glob("*.ipynb") if not p.name.startswith("."))
    for path in sources:
        solution = _read(path)
        exercise, ids = make_exercise_notebook(solution, name=str(path))
        for ex_id in ids:
            if ex_id in owner:
                raise ExerciseBuildError(f"exercise {ex_id} appears in both {owner[ex_id]} and {path.name}")
            owner[ex_id] = path.name
        report.exercises[path.name] = ids
        text = _render(exercise)
        target = dst / path.name
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if check:
            if current is None:
                report.problems.append(f"{target}: missing (run build-exercises)")
            elif current != text:
                report.problems.append(f"{target}: out of date with {path} (run build-exercises)")
            if current is not None:
                import nbformat

                for leak in find_leaks(solution, nbformat.reads(current, as_version=4)):
                    report.problems.append(f"{target}: solution line leaked in {leak}")
        elif current == text:
            report.unchanged.append(str(target))
        else:
            dst.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            report.written.append(str(target))
    wanted = {p.name for p in sources}
    for orphan in sorted(dst.glob("*.ipynb")) if dst.is_dir() else []:
        if orphan.name not in wanted:
            if check:
                report.problems.append(f"{orphan}: has no solution notebook in {src}")
            else:
                orphan.unlink()
                report.removed.append(str(orphan))
    if verbose:
        for key in ("written", "unchanged", "removed", "problems"):
            for item in getattr(report, key):
                print(f"{key:>9}: {item}")
        n = sum(len(v) for v in report.exercises.values())
        print(f"{len(sources)} solution notebook(s), {n} exercise(s)" + ("" if report.ok else "; PROBLEMS above"))
    return report


__all__ = ["BEGIN_MARKER", "END_MARKER", "DEPENDENT_TAG", "RAISES_TAG", "BuildReport", "ExerciseBuildError",
           "build_exercises", "find_leaks", "make_exercise_notebook"]
