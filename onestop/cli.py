"""The ``onestop`` command."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from datetime import datetime
from decimal import Decimal

from .errors import InvalidInput, OnestopError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="onestop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a handful of dossiers end to end on SQLite")
    demo.add_argument("--db", default="onestop-demo.db",
                      help="SQLite file to (re)create (default: onestop-demo.db)")
    demo.add_argument("--library", default=None,
                      help="process library folder (default: the shipped one)")
    calendar = commands.add_parser("calendar", help="working-time arithmetic")
    calendar_commands = calendar.add_subparsers(dest="calendar_command", required=True)
    due = calendar_commands.add_parser("due", help="print the due instant (ISO 8601)")
    due.add_argument("--start", required=True, help="e.g. 2025-04-25T16:00+07:00")
    amount = due.add_mutually_exclusive_group(required=True)
    amount.add_argument("--working-days", type=Decimal)
    amount.add_argument("--working-hours", type=Decimal)
    amount.add_argument("--calendar-days", type=int)
    due.add_argument("--agency", default=None, help="use this agency's calendar overrides")
    due.add_argument("--calendars", default=None,
                     help="per-agency override file (default: the library's calendars.json)")
    elapsed = calendar_commands.add_parser("elapsed", help="working time between two instants")
    elapsed.add_argument("--start", required=True)
    elapsed.add_argument("--end", required=True)
    elapsed.add_argument("--agency", default=None)
    elapsed.add_argument("--calendars", default=None)
    lint = commands.add_parser(
        "lint", help="check BPMN models: one line per finding, FILE:ELEMENT: severity: message")
    lint.add_argument("paths", nargs="+", help="BPMN files or folders")
    lint.add_argument("--catalog", default=None,
                      help="catalogue whose processes get the one-stop rules as errors "
                           "(default: catalog.json next to each file)")
    importer = commands.add_parser(
        "import-procedure", help="turn an internal-procedure table (CSV) into a BPMN model")
    importer.add_argument("table", help="the table, in the shape provinces publish")
    importer.add_argument("-o", "--output", required=True, help="the .bpmn file to write")
    importer.add_argument("--process-id", default=None,
                          help="id of the main process (default: procedure_CODE)")
    exporter = commands.add_parser(
        "export-procedure", help="write the internal-procedure table a model encodes")
    exporter.add_argument("model", help="a .bpmn file made by import-procedure or drawn alike")
    exporter.add_argument("-o", "--output", default=None, help="CSV file (default: stdout)")
    args = parser.parse_args(argv)
    if args.command == "lint":
        return _lint(args)
    try:
        if args.command == "demo":
            from .demo import run_demo
            run_demo(args.db, sys.stdout, library=args.library)
        elif args.command == "calendar":
            print(_calendar(args))
        elif args.command == "import-procedure":
            _import(args)
        elif args.command == "export-procedure":
            _export(args)
    except OnestopError as exc:
        print(f"onestop: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _lint(args: argparse.Namespace) -> int:
    from .modeling.lint import ERROR, lint

    findings = lint(args.paths, catalog=args.catalog)
    for finding in findings:
        print(finding)
    errors = sum(1 for f in findings if f.severity == ERROR)
    print(f"{errors} error(s), {len(findings) - errors} warning(s)", file=sys.stderr)
    return 1 if errors else 0


def _import(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .modeling.table import agency_slots, model_from_table, read_table

    table = read_table(args.table)
    data = model_from_table(table, args.process_id)
    Path(args.output).write_bytes(data)
    print(f"wrote {args.output}: {table.code} {table.name}, {len(table.steps)} steps")
    extra = {a: s for a, s in agency_slots(table).items() if s not in ("desk", "resolver")}
    for agency, slot in agency_slots(table).items():
        print(f"  lane {agency!r}: agency slot {slot!r}")
    if extra:
        print("map the other slots to catalogue agencies in the procedure's \"agencies\", "
              "e.g. " + ", ".join(f'"{s}": "AGENCY-CODE"' for s in extra.values()))


def _export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .modeling.table import table_from_model, write_table

    text = write_table(table_from_model(args.model))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _calendar(args: argparse.Namespace) -> str:
    from .calendar import load_calendars
    from .duration import Duration, Unit
    from .library import default_library_path

    path = args.calendars
    if path is None and (default_library_path() / "calendars.json").is_file():
        path = default_library_path() / "calendars.json"
    calendar = load_calendars(path).for_agency(args.agency)
    start = _instant(args.start, "--start")
    if args.calendar_command == "due":
        if args.working_days is not None:
            duration = Duration(args.working_days, Unit.WORKING_DAYS)
        elif args.working_hours is not None:
            duration = Duration(args.working_hours, Unit.WORKING_HOURS)
        else:
            duration = Duration(Decimal(args.calendar_days), Unit.CALENDAR_DAYS)
        return calendar.add(start, duration).isoformat()
    spent = calendar.elapsed(start, _instant(args.end, "--end"))
    return (f"{spent.days} working days {spent.hours:g} hours "
            f"({spent.total_hours:g} working hours)")


def _instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option} {text!r} is not an ISO 8601 instant such as "
                           f"2025-04-25T16:00+07:00") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{option} {text!r} has no time zone; add one, e.g. +07:00")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
