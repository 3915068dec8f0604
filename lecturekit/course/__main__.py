"""Command line of the course tooling.

    python -m lecturekit.course execute NOTEBOOK [NOTEBOOK ...]   run in place, store outputs
    python -m lecturekit.course build-exercises [--src solutions --dst exercises] [--check]
                                                     solutions/ -> exercises/ (or check drift/leaks)
    python -m lecturekit.course grade SUBMISSIONS [--out grades.csv --timeout 120 --jobs 1]
                                                     grade submitted notebooks into a CSV
    python -m lecturekit.course robustness NOTEBOOK [...] [--seeds 5 --threads 1 2 --jobs 1]
                                                     measure every claim over seeds and threads
    python -m lecturekit.course update-links [--check]   point every Colab badge, install cell and
                                                     [project.urls] at notebook.REPO_URL / BRANCH
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lecturekit.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p_exec = sub.add_parser("execute", help="execute notebooks in place and store their outputs")
    p_exec.add_argument("notebooks", nargs="+")
    p_exec.add_argument("--timeout", type=int, default=900, help="seconds per cell")

    p_build = sub.add_parser("build-exercises", help="generate exercises/ from solutions/")
    p_build.add_argument("--src", default="solutions", help="folder of solution notebooks")
    p_build.add_argument("--dst", default="exercises", help="folder of the generated exercise notebooks")
    p_build.add_argument("--check", action="store_true",
                         help="write nothing; exit 1 when dst is out of date or a solution line leaked")

    p_grade = sub.add_parser("grade", help="grade a folder of submitted notebooks")
    p_grade.add_argument("submissions", help="folder with <student>.ipynb files or <student>/ folders")
    p_grade.add_argument("--out", default="grades.csv", help="CSV to write (student, exercise, passed, message)")
    p_grade.add_argument("--timeout", type=float, default=120, help="seconds per submission (then killed)")
    p_grade.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    p_grade.add_argument("--exercises", default=None,
                         help="comma-separated exercise ids to grade (default: those found in each notebook)")
    p_grade.add_argument("--memory", type=float, default=4.0,
                         help="GiB of memory (address space) per worker; 0: no limit (default 4)")
    p_grade.add_argument("--resume", action="store_true",
                         help="keep the students already in --out (or its .partial.jsonl) and grade the others")

    p_rob = sub.add_parser("robustness", help="measure every claim of notebooks over seeds and thread counts")
    p_rob.add_argument("notebooks", nargs="+")
    p_rob.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1 (default 5)")
    p_rob.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts")
    p_rob.add_argument("--jobs", type=int, default=1, help="settings executed in parallel")
    p_rob.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    p_rob.add_argument("--out", default="data/results/claims_robustness.json",
                       help="JSON table to merge the distributions into ('' to write nothing)")
    p_rob.add_argument("--cache", default=None,
                       help="folder keeping finished settings (keyed by the notebook's code): resume after an interruption")

    p_links = sub.add_parser("update-links", help="point badges, install cells and project URLs at REPO_URL")
    p_links.add_argument("--root", default=".", help="repository root (default: the current folder)")
    p_links.add_argument("--check", action="store_true", help="write nothing; exit 1 when a link differs")

    args = parser.parse_args(argv)
    if args.command == "execute":
        from .execute import execute_many

        execute_many(args.notebooks, timeout=args.timeout)
    elif args.command == "build-exercises":
        from .exercises import ExerciseBuildError, build_exercises

        try:
            report = build_exercises(args.src, args.dst, check=args.check)
        except (ExerciseBuildError, FileNotFoundError) as err:
            print(f"build-exercises: {err}", file=sys.stderr)
            return 2
        return 0 if report.ok else 1
    elif args.command == "grade":
        from .grading import grade

        ids = [s.strip() for s in args.exercises.split(",") if s.strip()] if args.exercises else None
        try:
            grade(args.submissions, out=args.out, timeout=args.timeout, jobs=args.jobs, exercises=ids,
                  memory=int(args.memory * (1 << 30)), resume=args.resume)
        except KeyboardInterrupt:      # the grader has stopped its workers and written what it graded
            return 130
    elif args.command == "update-links":
        from .notebook import BRANCH, REPO_URL, update_links

        changed = update_links(args.root, check=args.check)
        for path in changed:
            print(f"{'differs' if args.check else 'updated'}: {path}")
        print(f"{len(changed)} file(s) {'differ from' if args.check else 'now point at'} {REPO_URL} @ {BRANCH}")
        return 1 if (args.check and changed) else 0
    elif args.command == "robustness":
        from .robustness import RobustnessError, measure

        failed = False
        for nb in args.notebooks:
            try:
                report = measure(nb, seeds=args.seeds, threads=args.threads, jobs=args.jobs,
                                 timeout=args.timeout, out=args.out or None, cache=args.cache)
            except (RobustnessError, FileNotFoundError) as err:
                print(f"robustness: {nb}: {err}", file=sys.stderr)
                return 2
            failed |= any(r["error"] for r in report["runs"])
            failed |= not all(c["keeps_margin"] for c in report["claims"].values())
            failed |= bool(report["unstable_check_outputs"])
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
