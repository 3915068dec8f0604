"""Command line of the course tooling.

    python -m lecturekit.course execute NOTEBOOK [NOTEBOOK ...]   run in place, store outputs
    python -m lecturekit.course build-exercises [--src solutions --dst exercises] [--check]
                                                     solutions/ -> exercises/ (or check drift/leaks)
    python -m lecturekit.course grade SUBMISSIONS [--out grades.csv --timeout 120 --jobs 1]
                                                     grade submitted notebooks into a CSV
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
        grade(args.submissions, out=args.out, timeout=args.timeout, jobs=args.jobs, exercises=ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
