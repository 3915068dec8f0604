"""Command line of the course tooling.

    python -m lecturekit.course execute NOTEBOOK [NOTEBOOK ...]   run in place, store outputs
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

    args = parser.parse_args(argv)
    if args.command == "execute":
        from .execute import execute_many

        execute_many(args.notebooks, timeout=args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
