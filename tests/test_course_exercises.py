"""exercises/ is generated from solutions/: no drift, no leaked solution line, stubs that keep the
signature and raise with the exercise's id and hint, dependent cells expected to raise,
byte-identical re-runs, and loud errors for notebooks that break the conventions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lecturekit.course.__main__ import main
from lecturekit.course.exercises import (RAISES_TAG, ExerciseBuildError, _python_source, build_exercises,
                                         find_leaks, make_exercise_notebook)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "course"
PAIRS = [(ROOT / "solutions", ROOT / "exercises"), (FIXTURE / "solutions", FIXTURE / "exercises")]
PAIR_IDS = ["repository", "fixture"]


def _notebooks(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.ipynb"))} if folder.is_dir() else {}


def _src(cell) -> str:
    return "".join(cell.source) if isinstance(cell.source, list) else cell.source


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _write(folder: Path, name: str, cells) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(name).stem}-{i}"
    path = folder / name
    nbformat.write(nb, path)
    return path


def _exercise_set(folder: Path, ex_id: str, name: str) -> Path:
    return _write(folder, name, [
        new_markdown_cell(f"## Exercise {ex_id}: Double it\n\nReturn twice the input. Nothing more."),
        new_code_cell("def double(x):\n    \"\"\"2 x.\"\"\"\n    ### BEGIN SOLUTION\n    y = x + x  # secret\n"
                      "    return y\n    ### END SOLUTION"),
        new_code_cell("assert double(2) == 4"),
    ])


# --------------------------------------------------------------------------- drift and leaks
@pytest.mark.parametrize("src,dst", PAIRS, ids=PAIR_IDS)
def test_committed_exercises_match_their_solutions(src, dst, tmp_path):
    """Regenerating solutions/ into a temporary folder reproduces exercises/ byte for byte
    (zero notebooks on both sides is fine too)."""
    build_exercises(src, tmp_path / "out", verbose=False) if src.is_dir() else None
    fresh, committed = _notebooks(tmp_path / "out"), _notebooks(dst)
    assert sorted(fresh) == sorted(committed), "run: python -m lecturekit.course build-exercises"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"exercises out of date: {stale}; run python -m lecturekit.course build-exercises"


@pytest.mark.parametrize("src,dst", PAIRS, ids=PAIR_IDS)
def test_no_solution_line_leaks_into_exercises(src, dst):
    for path in sorted(src.glob("*.ipynb")) if src.is_dir() else []:
        solution = nbformat.read(path, as_version=4)
        exercise = nbformat.read(dst / path.name, as_version=4)
        assert find_leaks(solution, exercise) == []
        text = "\n".join(_src(c) for c in exercise.cells)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


def test_leak_scan_finds_a_planted_line():
    solution = nbformat.read(FIXTURE / "solutions" / "90_example.ipynb", as_version=4)
    exercise = nbformat.read(FIXTURE / "exercises" / "90_example.ipynb", as_version=4)
    exercise.cells[-1].source += "\nout[:, fold:2 * fold, 1:] = x[:, fold:2 * fold, :-1]  # second group: frame t-1"
    leaks = find_leaks(solution, exercise)
    assert len(leaks) == 1 and "second group" in leaks[0]


def test_many_notebooks_idempotent_check_mode_and_orphans(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "exercises"
    for i in range(4):
        _exercise_set(src, f"0{i}.1", f"0{i}_set.ipynb")
    first = build_exercises(src, dst, verbose=False)
    assert len(first.written) == 4 and first.exercises["02_set.ipynb"] == ["02.1"]
    snapshot = _notebooks(dst)
    second = build_exercises(src, dst, verbose=False)
    assert second.written == [] and len(second.unchanged) == 4 and _notebooks(dst) == snapshot
    assert build_exercises(src, dst, check=True, verbose=False).ok
    assert main(["build-exercises", "--src", str(src), "--dst", str(dst), "--check"]) == 0

    _exercise_set(src, "07.1", "00_set.ipynb")                # a changed solution
    (src / "03_set.ipynb").unlink()                           # a removed solution -> orphan
    problems = build_exercises(src, dst, check=True, verbose=False).problems
    assert any("00_set.ipynb: out of date" in p for p in problems)
    assert any("03_set.ipynb: has no solution notebook" in p for p in problems)
    assert main(["build-exercises", "--src", str(src), "--dst", str(dst), "--check"]) == 1
    report = build_exercises(src, dst, verbose=False)
    assert report.removed == [str(dst / "03_set.ipynb")] and report.written == [str(dst / "00_set.ipynb")]
    (dst / "01_set.ipynb").unlink()
    assert any("01_set.ipynb: missing" in p for p in build_exercises(src, dst, check=True, verbose=False).problems)


def test_zero_solution_notebooks(tmp_path):
    (tmp_path / "solutions").mkdir()
    report = build_exercises(tmp_path / "solutions", tmp_path / "exercises", check=True, verbose=False)
    assert report.ok and report.exercises == {}


# --------------------------------------------------------------------------- what a stub looks like
def test_fixture_exercise_notebook_is_a_proper_student_version():
    solution = nbformat.read(FIXTURE / "solutions" / "90_example.ipynb", as_version=4)
    exercise = nbformat.read(FIXTURE / "exercises" / "90_example.ipynb", as_version=4)
    assert any(c.get("outputs") for c in solution.cells if c.cell_type == "code")
    code = [c for c in exercise.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert exercise.metadata.lecturekit.exercises == ["01.1", "04.1"]
    assert "blob/main/exercises/90_example.ipynb" in _src(exercise.cells[0])
    assert "solutions/" not in _src(exercise.cells[0])

    topk = next(c for c in code if "def topk_accuracy" in _src(c))
    lines = _src(topk).split("\n")
    assert lines[0] == "def topk_accuracy(scores, labels, k):"
    assert lines[1].startswith('    """Fraction of rows')                  # docstring kept
    assert lines[2].startswith("    # HINT: count the classes ranked above")   # hint kept visible
    assert lines[3:] == ["    # YOUR CODE HERE",
                         '    raise NotImplementedError("Exercise 01.1: count the classes ranked above each label: '
                         'a higher score, or the same score and a larger id.")']
    shift = next(c for c in code if "def temporal_shift" in _src(c))
    assert _src(shift).endswith('raise NotImplementedError("Exercise 04.1: Implement the temporal shift of TSM '
                                'on a video `x` of shape `(B, C, T, H, W)`.")')   # hint from the markdown

    tagged = {_src(c).split("\n")[0]: RAISES_TAG in _tags(c) for c in code}
    assert tagged["result = check_topk_accuracy(topk_accuracy, assert_pass=True)"]
    assert tagged["check_temporal_shift(temporal_shift, assert_pass=True);"]
    assert tagged["toy_scores = torch.tensor([[0.1, 0.9], [0.8, 0.2]])"]      # uses topk_accuracy
    assert tagged["print(temporal_shift(video, fold_div=4)[0, :, :, 0, 0])"]
    assert not tagged["video = torch.arange(6.0).view(1, 1, 6, 1, 1).repeat(1, 8, 1, 1, 1)"]
    assert not tagged["import torch"] and not any(RAISES_TAG in _tags(c) for c in code[:2])


def test_dependent_cells_are_found_through_names_magics_and_tags():
    nb = new_notebook(cells=[
        new_markdown_cell("### Exercise 05.1: Identity\n\nReturn the input unchanged."),
        new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION"),
        new_code_cell("y = f(1)"),
        new_code_cell("z = y + 1"),                                     # through y
        new_code_cell("w = 3\nprint(w)"),
        new_code_cell("%time w2 = f(w)"),                               # IPython syntax
        new_code_cell("print('a plot of the result')", metadata={"tags": ["exercise-dependent"]}),
        new_markdown_cell("#### Exercise 05.2: The answer\n\nSet `answer`."),
        new_code_cell("a = 1\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\nb = 2"),
        new_code_cell("print(a)"),
        new_code_cell("print(b)"),                                      # never bound: the stub raised first
        new_code_cell("def g():\n    return answer"),
    ])
    exercise, ids = make_exercise_notebook(nb)
    assert ids == ["05.1", "05.2"]
    raises = [RAISES_TAG in _tags(c) for c in exercise.cells]
    assert raises == [False, True, True, True, False, True, True, False, True, False, True, True]
    assert _tags(exercise.cells[6]) == ["exercise-dependent", RAISES_TAG]
    assert _src(exercise.cells[8]) == ('a = 1\n# YOUR CODE HERE\n'
                                       'raise NotImplementedError("Exercise 05.2: Set `answer`.")\nb = 2')


def test_markdown_answers_are_hidden():
    nb = new_notebook(cells=[
        new_markdown_cell("### Exercise 06.1: Why?\n\nExplain."),
        new_markdown_cell("Answer:\n### BEGIN SOLUTION\nBecause the order does not matter.\n### END SOLUTION"),
    ])
    exercise, _ = make_exercise_notebook(nb)
    assert _src(exercise.cells[1]) == "Answer:\n_YOUR ANSWER HERE_"
    assert find_leaks(nb, exercise) == []


def test_every_generated_code_cell_compiles():
    for _, dst in PAIRS:
        for path in sorted(dst.glob("*.ipynb")):
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.cell_type == "code":
                    compile(_python_source(_src(cell)), f"{path.name}", "exec")


# --------------------------------------------------------------------------- loud errors
BAD = {
    "misspelt marker": "def f():\n    ## BEGIN SOLUTION\n    return 1\n    ## END SOLUTION",
    "nbgrader-like but one #": "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION",
    "no END": "def f():\n    ### BEGIN SOLUTION\n    return 1",
    "END first": "def f():\n    ### END SOLUTION\n    return 1",
    "nested": "### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
    "HINT inside": "def f():\n    ### BEGIN SOLUTION\n    # HINT: add\n    return 1\n    ### END SOLUTION",
    "cuts a statement": "x = (\n### BEGIN SOLUTION\n1\n### END SOLUTION\n)",
}


@pytest.mark.parametrize("source", list(BAD.values()), ids=list(BAD))
def test_broken_markers_are_errors(source):
    nb = new_notebook(cells=[new_markdown_cell("### Exercise 07.1: Broken"), new_code_cell(source)])
    with pytest.raises(ExerciseBuildError, match="cell 1"):
        make_exercise_notebook(nb)


def test_headings_and_ownership_are_enforced(tmp_path):
    with pytest.raises(ExerciseBuildError, match="before any exercise heading"):
        make_exercise_notebook(new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")]))
    with pytest.raises(ExerciseBuildError, match="does not follow"):
        make_exercise_notebook(new_notebook(cells=[new_markdown_cell("### Exercise 7.1: One digit")]))
    _exercise_set(tmp_path / "s", "08.1", "a.ipynb")
    _exercise_set(tmp_path / "s", "08.1", "b.ipynb")
    with pytest.raises(ExerciseBuildError, match="08.1 appears in both a.ipynb and b.ipynb"):
        build_exercises(tmp_path / "s", tmp_path / "e", verbose=False)
    assert main(["build-exercises", "--src", str(tmp_path / "s"), "--dst", str(tmp_path / "e")]) == 2


def test_generation_leaves_the_solution_untouched_and_keeps_cell_ids(tmp_path):
    src = tmp_path / "solutions"
    shutil.copytree(FIXTURE / "solutions", src)
    before = (src / "90_example.ipynb").read_bytes()
    build_exercises(src, tmp_path / "exercises", verbose=False)
    assert (src / "90_example.ipynb").read_bytes() == before
    ids_s = [c["id"] for c in json.loads(before)["cells"]]
    ids_e = [c["id"] for c in json.loads((tmp_path / "exercises" / "90_example.ipynb").read_text())["cells"]]
    assert ids_s == ids_e
