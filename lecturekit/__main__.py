"""``python -m lecturekit doctor``: print the environment report."""

from __future__ import annotations

import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lecturekit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="print versions, the device and the data cache")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from .env import doctor

        doctor()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
