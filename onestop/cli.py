"""The ``onestop`` command."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .errors import OnestopError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onestop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a handful of dossiers end to end on SQLite")
    demo.add_argument("--db", default="onestop-demo.db",
                      help="SQLite file to (re)create (default: onestop-demo.db)")
    demo.add_argument("--library", default=None,
                      help="process library folder (default: the shipped one)")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run_demo
            run_demo(args.db, sys.stdout, library=args.library)
    except OnestopError as exc:
        print(f"onestop: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
