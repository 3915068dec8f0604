"""Time the instructor's grader on a generated class: ``python scripts/grade_bench.py FOLDER``.

Writes N submissions (default 200) into ``FOLDER/submitted/section{A,B,C}/sNNN/``, built from the
course's own notebooks 07 and 08 (the two that train nothing, so a submission takes seconds):

* correct: the solution notebook as it is;
* untouched: the exercise notebook (every stub still raises NotImplementedError);
* half done: the exercise notebook with the first exercise solved and the others left as stubs;
* wrong: the solution notebook with one exercise's solution replaced by ``return None`` (a
  forgotten return) or by an answer off by a factor (``return 2 * (...)`` of the right value);
  where the solution holds a nested function, dropping its returns leaves an IndentationError
  (graded "missing", with the error's line): a realistic slip as well;
* endless: two submissions whose first exercise loops forever (its check cell never ends, the
  worker is stopped at ``--timeout``).

The mix is fixed by the submission number (no randomness), so two runs grade the same class.
Then (unless ``--no-grade``) it grades the folder with ``--jobs`` workers and prints the wall time,
the grader's peak memory (its own resident set) and the largest worker's, and the count of each
status. It keeps ``--jobs`` CPU cores busy for minutes: on a shared machine run it at low
priority, e.g. ``nice python scripts/grade_bench.py grade_bench --jobs 2``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import resource
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("07_recurrent_gradient_flow", "08_video_prediction")
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
KINDS = ("correct", "untouched", "half done", "wrong: no return", "correct", "wrong: off by a factor")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def _solution_bodies(solution: dict) -> dict[int, tuple[str, list[str]]]:
    """Cell index -> (indent, solution lines without the markers) for every exercise cell."""
    found = {}
    for index, cell in enumerate(solution["cells"]):
        lines = _source(cell).split("\n")
        starts = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
        if cell["cell_type"] == "code" and starts:
            start = starts[0]
            stop = next(i for i in range(start, len(lines)) if lines[i].strip() == END)
            indent = re.match(r"\s*", lines[start]).group(0)
            found[index] = (indent, lines[start + 1:stop])
    return found


def _fill_stub(cell: dict, indent: str, body: list[str]) -> None:
    """Replace the stub's two lines (``# YOUR CODE HERE`` and the raise) by ``body``."""
    lines = _source(cell).split("\n")
    at = next(i for i, line in enumerate(lines) if line.strip() == "# YOUR CODE HERE")
    if not lines[at + 1].strip().startswith("raise NotImplementedError"):
        raise ValueError(f"unexpected stub: {lines[at + 1]!r}")
    lines[at:at + 2] = body
    _set_source(cell, "\n".join(lines))


def _with_body(cell: dict, body: list[str]) -> None:
    """Replace the solution block (markers included) of a solution cell by ``body``."""
    lines = _source(cell).split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip() == BEGIN)
    stop = next(i for i in range(start, len(lines)) if lines[i].strip() == END)
    lines[start:stop + 1] = body
    _set_source(cell, "\n".join(lines))


def _wrong_body(indent: str, body: list[str], how: str) -> list[str]:
    if how == "no return":
        return [line for line in body if not line.strip().startswith("return ")] + [f"{indent}return None"]
    last = max(i for i, line in enumerate(body) if line.strip().startswith("return "))
    value = body[last].strip()[len("return "):]
    return body[:last] + [f"{indent}return 2 * ({value})"] + body[last + 1:]


def make_class(folder: Path, n: int) -> dict[str, int]:
    """Write the n submissions; return how many of each kind."""
    subs = folder / "submitted"
    if subs.exists():
        shutil.rmtree(subs)
    endless = {n // 3, (2 * n) // 3 + 1}
    kinds: Counter = Counter()
    for i in range(n):
        name = NOTEBOOKS[i % len(NOTEBOOKS)]
        solution = json.loads((ROOT / "solutions" / f"{name}.ipynb").read_text(encoding="utf-8"))
        exercise = json.loads((ROOT / "exercises" / f"{name}.ipynb").read_text(encoding="utf-8"))
        bodies = _solution_bodies(solution)
        first = min(bodies)
        kind = "endless" if i in endless else KINDS[(i // len(NOTEBOOKS)) % len(KINDS)]
        if kind == "correct":
            nb = solution
        elif kind == "untouched":
            nb = exercise
        elif kind in ("half done", "endless"):
            nb = copy.deepcopy(exercise)
            indent, body = bodies[first]
            _fill_stub(nb["cells"][first], indent, [f"{indent}while True:", f"{indent}    pass"]
                       if kind == "endless" else body)
        else:
            nb = copy.deepcopy(solution)
            index = sorted(bodies)[(i // 7) % len(bodies)]
            indent, body = bodies[index]
            _with_body(nb["cells"][index], _wrong_body(indent, body, kind.split(": ")[1]))
        target = subs / f"section{'ABC'[i % 3]}" / f"s{i:03d}" / f"{name}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        kinds[kind] += 1
    return dict(kinds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a scratch folder (its 'submitted' subfolder is replaced)")
    parser.add_argument("--n", type=int, default=200, help="number of submissions (default 200)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60, help="seconds per worker (default 60)")
    parser.add_argument("--no-grade", action="store_true", help="only write the submissions")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    kinds = make_class(args.folder, args.n)
    print(f"wrote {args.n} submissions to {args.folder / 'submitted'}: {kinds}", flush=True)
    if args.no_grade:
        return 0
    from lecturekit.course.grading import grade

    start = time.perf_counter()
    rows = grade(args.folder / "submitted", out=args.folder / "grades.csv", jobs=args.jobs,
                 timeout=args.timeout, verbose=False)
    wall = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    statuses = Counter(r.status for r in rows)
    print(f"graded {args.n} submissions ({len(rows)} rows) at --jobs {args.jobs} in {wall:.0f} s "
          f"({wall / args.n:.2f} s per submission)")
    print(f"grader peak memory (resident): {own.ru_maxrss / 1024:.0f} MiB; largest worker process: "
          f"{children.ru_maxrss / 1024:.0f} MiB; CPU of all workers: "
          f"{children.ru_utime + children.ru_stime:.0f} s")
    print("statuses:", dict(sorted(statuses.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
