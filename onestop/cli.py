"""The ``onestop`` command: the demo, lint, procedure tables, working-time arithmetic and
the database's schema.

Every command reports bad input (missing or unreadable files, folders given as files,
text that is not UTF-8, wrong arguments) as one ``onestop: error: ...`` line on stderr
and exit status 2; ``lint`` exits 1 when it found errors in the models.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import InvalidInput, OnestopError

DESCRIPTION = """\
Vietnam's one-stop-shop (một cửa, một cửa liên thông) dossier processing as BPMN
workflows. This command runs the demo, checks BPMN models, turns a province's
internal-procedure table into an executable model and back, and counts working time."""

EPILOG = """\
examples:
  onestop demo
      run five dossiers end to end on a fresh SQLite file (onestop-demo.db)
  onestop lint processes/
      check every .bpmn file under a folder: one line per finding
  onestop import-procedure processes/tables/ho-kinh-doanh.csv -o out/ho-kinh-doanh.bpmn
      turn a published internal-procedure table into a model (folders are created)
  onestop export-procedure out/ho-kinh-doanh.bpmn -o table.csv
      write the table a model encodes
  onestop db upgrade onestop.db
      bring a database written by an earlier onestop to the newest schema
  onestop calendar due --start 2025-04-25T16:00+07:00 --working-days 5
      the due instant, five working days later (holidays and office hours counted)
  onestop calendar elapsed --start 2025-04-25T16:00+07:00 --end 2025-05-06T09:00+07:00
      the working time between two instants

'onestop COMMAND --help' lists a command's options. Exit status: 0 done, 1 lint found
errors, 2 bad input (reported as one 'onestop: error: ...' line).
See README.md and docs/getting-started.md."""

_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_START_EXAMPLE = "2025-04-25T16:00+07:00"
#: Set to get the Python traceback of an unexpected failure instead of one line.
DEBUG_VARIABLE = "ONESTOP_DEBUG"


class CliError(Exception):
    """Bad input found by the command itself (not by the library)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``onestop`` command."""
    parser = argparse.ArgumentParser(
        prog="onestop", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"onestop {__version__}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run a handful of dossiers end to end on SQLite",
                               description="Run five scripted dossiers end to end on a "
                                           "fresh SQLite file and print their story.")
    demo.add_argument("--db", default="onestop-demo.db", metavar="FILE",
                      help="SQLite file to (re)create; an existing file that is not a "
                           "SQLite database is left alone (default: onestop-demo.db)")
    demo.add_argument("--library", default=None, metavar="FOLDER",
                      help="process library folder (default: the shipped one)")

    calendar = commands.add_parser(
        "calendar", help="working-time arithmetic (due instants, elapsed working time)",
        description="Working-time arithmetic on Vietnam's working days (public holidays, "
                    "Tết, make-up Saturdays) and an agency's office hours.")
    calendar_commands = calendar.add_subparsers(dest="calendar_command", required=True,
                                                metavar="due|elapsed")
    due = calendar_commands.add_parser(
        "due", help="print the due instant (ISO 8601)",
        description="Print the instant a time limit ends, counted from --start.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example: onestop calendar due --start {_START_EXAMPLE} --working-days 5")
    due.add_argument("--start", required=True, metavar="INSTANT",
                     help=f"when the time limit starts: ISO 8601 with a time zone, e.g. "
                          f"{_START_EXAMPLE} (required)")
    amount = due.add_mutually_exclusive_group(required=True)
    amount.add_argument("--working-days", type=_amount, metavar="N",
                        help="add N working days (decimals allowed, e.g. 5 or 1.5); a "
                             "working day is a day of office hours (8 hours on the national "
                             "calendar)")
    amount.add_argument("--working-hours", type=_amount, metavar="N",
                        help="add N working hours (decimals allowed, e.g. 4 or 2.5)")
    amount.add_argument("--calendar-days", type=_whole, metavar="N",
                        help="add N calendar days (a whole number, e.g. 30); a due day "
                             "off moves to the next working day")
    _calendar_options(due)
    elapsed = calendar_commands.add_parser(
        "elapsed", help="working time between two instants",
        description="Print the working time between two instants (negative when --end is "
                    "earlier).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example: onestop calendar elapsed --start {_START_EXAMPLE} "
               f"--end 2025-05-06T09:00+07:00")
    elapsed.add_argument("--start", required=True, metavar="INSTANT",
                         help=f"ISO 8601 with a time zone, e.g. {_START_EXAMPLE} (required)")
    elapsed.add_argument("--end", required=True, metavar="INSTANT",
                         help="ISO 8601 with a time zone, e.g. 2025-05-06T09:00+07:00 "
                              "(required)")
    _calendar_options(elapsed)

    lint = commands.add_parser(
        "lint", help="check BPMN models: one line per finding, FILE:ELEMENT: severity: message",
        description="Check BPMN models: one line per finding (FILE:ELEMENT: severity: "
                    "message), then a summary on stderr. Exit 1 when there are errors.")
    lint.add_argument("paths", nargs="+", metavar="PATH",
                      help="BPMN files, or folders searched for *.bpmn files")
    lint.add_argument("--catalog", default=None, metavar="FILE",
                      help="catalogue whose processes get the one-stop rules as errors "
                           "(default: catalog.json next to each file)")

    importer = commands.add_parser(
        "import-procedure", help="turn an internal-procedure table (CSV) into a BPMN model",
        description="Turn an internal-procedure table (CSV, UTF-8) into a laid-out, "
                    "executable BPMN model.")
    importer.add_argument("table", metavar="TABLE.csv",
                          help="the table, in the shape provinces publish "
                               "(see processes/tables/)")
    importer.add_argument("-o", "--output", required=True, metavar="OUT.bpmn",
                          help="the .bpmn file to write; missing folders are created")
    importer.add_argument("--process-id", default=None, type=_process_id, metavar="ID",
                          help="id of the main process, an XML name such as "
                               "procedure_2_000575 (default: procedure_CODE)")
    database = commands.add_parser(
        "db", help="the store's schema: its revision, and upgrading it",
        description="Show or upgrade the schema revision of a onestop database. An engine "
                    "upgrades its database itself when it opens it; this does it ahead of "
                    "time (e.g. before starting several workers).")
    database_commands = database.add_subparsers(dest="db_command", required=True,
                                                metavar="SUBCOMMAND")
    for name, text in (("current", "print the schema revision the database is at"),
                       ("upgrade", "bring the database to the newest revision (creating "
                                   "the tables in an empty one)")):
        sub = database_commands.add_parser(name, help=text, description=text[0].upper()
                                           + text[1:] + ".")
        sub.add_argument("database", metavar="DATABASE",
                         help="a SQLite file or a SQLAlchemy URL, e.g. "
                              "postgresql+psycopg://USER:PASSWORD@HOST/onestop")
    exporter = commands.add_parser(
        "export-procedure", help="write the internal-procedure table a model encodes",
        description="Write the internal-procedure table (CSV) a model encodes.")
    exporter.add_argument("model", metavar="MODEL.bpmn",
                          help="a .bpmn file made by import-procedure or drawn alike")
    exporter.add_argument("-o", "--output", default=None, metavar="OUT.csv",
                          help="CSV file to write; missing folders are created "
                               "(default: stdout)")
    return parser


def _calendar_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agency", default=None, metavar="CODE",
                        help="count on this agency's calendar, e.g. TINH-TTPVHCC; it must "
                             "be an agency of the library's catalogue or of the calendars "
                             "file (default: the national calendar, Monday to Friday "
                             "07:30-11:30 and 13:00-17:00)")
    parser.add_argument("--calendars", default=None, metavar="FILE",
                        help="per-agency override file (JSON: {\"agencies\": {CODE: "
                             "{\"sessions\", \"days_off\", \"working_days\"}}}) "
                             "(default: calendars.json of the library, if any)")
    parser.add_argument("--library", default=None, metavar="FOLDER",
                        help="process library whose catalog.json lists the agencies and "
                             "whose calendars.json has their overrides (default: the "
                             "shipped library)")


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number such as 5 or 1.5") \
            from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of zero or more")
    return value


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number such as 30") \
            from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of zero or more")
    return value


def _process_id(text: str) -> str:
    if not _XML_NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an XML name: a letter or '_', then letters, digits, "
            f"'_', '-' or '.'")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``onestop`` command; the exit status (argparse exits itself on bad usage)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "lint":
            return _lint(args)
        if args.command == "demo":
            _demo(args)
        elif args.command == "calendar":
            print(_calendar(args))
        elif args.command == "import-procedure":
            _import(args)
        elif args.command == "export-procedure":
            _export(args)
        elif args.command == "db":
            print(_database(args))
    except (OnestopError, CliError) as exc:
        return _error(str(exc))
    except BrokenPipeError:
        # The reader went away (`onestop export-procedure M.bpmn | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        return _error(_os_message(exc))
    except UnicodeError as exc:
        return _error(f"not UTF-8 text: {exc}")
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        if os.environ.get(DEBUG_VARIABLE):
            raise
        return _error(f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_VARIABLE}=1 "
                      f"to see the traceback)")
    return 0


def _error(message: str) -> int:
    print(f"onestop: error: {message}", file=sys.stderr)
    return 2


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    if exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}"
    return f"{exc.filename}: {reason}"


def _database(args: argparse.Namespace) -> str:
    from .store import schema_revision, upgrade_schema

    from .store.migrate import REVISIONS

    shown = _shown_database(args.database)
    if args.db_command == "current":
        found, newest = schema_revision(args.database)
        if found is None:
            return f"{shown}: no onestop tables (the newest revision is {newest})"
        if found == newest:
            state = "the newest"
        elif found in REVISIONS:
            state = f"upgrade to {newest} with 'onestop db upgrade'"
        else:
            state = f"written by a newer onestop: this one knows revisions up to {newest}"
        return f"{shown}: revision {found} ({state})"
    before, after = upgrade_schema(args.database)
    if before is None:
        return f"{shown}: created the tables at revision {after}"
    if before == after:
        return f"{shown}: already at revision {after}, the newest"
    return f"{shown}: upgraded from revision {before} to {after}"


def _shown_database(database: str) -> str:
    """A database as the command prints it: a URL without its password."""
    if "://" not in database:
        return database
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(database).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return database.split("://", 1)[0] + "://..."


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    _check_demo_database(Path(args.db))
    run_demo(args.db, sys.stdout, library=args.library)


def _check_demo_database(path: Path) -> None:
    """The demo deletes and recreates its file: refuse anything that is not a SQLite
    database (or an empty file), so a mistyped --db never costs a document."""
    if path.is_dir():
        raise CliError(f"--db {path}: is a folder; give a file name such as "
                       f"{path / 'onestop-demo.db'}")
    if not path.exists():
        return
    try:
        with path.open("rb") as file:
            header = file.read(16)
    except OSError as exc:
        raise CliError(f"--db {_os_message(exc)}") from None
    if header and header != b"SQLite format 3\x00":
        raise CliError(f"--db {path}: exists and is not a SQLite database; the demo "
                       f"deletes and recreates its file, so give another name")


def _lint(args: argparse.Namespace) -> int:
    from .modeling.lint import ERROR, lint

    files, missing = _lint_files(args.paths)
    if not files and not missing:
        shown = ", ".join(str(p) for p in args.paths)
        raise CliError(f"no .bpmn files found in {shown}")
    findings = lint(args.paths, catalog=args.catalog)
    for finding in findings:
        print(finding)
    errors = sum(1 for f in findings if f.severity == ERROR)
    print(f"checked {len(files)} file(s): {errors} error(s), "
          f"{len(findings) - errors} warning(s)", file=sys.stderr)
    return 1 if errors else 0


def _lint_files(paths: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """The files ``lint`` checks for ``paths`` (collected as it does: a folder gives its
    *.bpmn files, recursively; a file is taken as given) and the paths that do not exist."""
    files: list[Path] = []
    missing: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.bpmn") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(path)
    return files, missing


def _write_output(output: str, data: bytes) -> None:
    """Write ``data`` to ``output``, creating its missing folders; a path that cannot be
    written is a :class:`CliError` naming it."""
    path = Path(output)
    if path.is_dir():
        raise CliError(f"-o {path}: is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"-o {path}: cannot create folder {path.parent}: "
                       f"{exc.strerror or exc}") from None
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise CliError(f"-o {path}: cannot write: {exc.strerror or exc}") from None


def _import(args: argparse.Namespace) -> None:
    from .modeling.table import agency_slots, model_from_table, read_table

    table = read_table(args.table)
    data = model_from_table(table, args.process_id)
    _write_output(args.output, data)
    print(f"wrote {args.output}: {table.code} {table.name}, {len(table.steps)} steps")
    extra = {a: s for a, s in agency_slots(table).items() if s not in ("desk", "resolver")}
    for agency, slot in agency_slots(table).items():
        print(f"  lane {agency!r}: agency slot {slot!r}")
    if extra:
        print("map the other slots to catalogue agencies in the procedure's \"agencies\", "
              "e.g. " + ", ".join(f'"{s}": "AGENCY-CODE"' for s in extra.values()))


def _export(args: argparse.Namespace) -> None:
    from .modeling.table import table_from_model, write_table

    text = write_table(table_from_model(args.model))
    if args.output:
        _write_output(args.output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)


def _calendar(args: argparse.Namespace) -> str:
    from .calendar import WorkingTime, load_calendars
    from .catalog import load_catalog
    from .datafile import read_data_file
    from .duration import Duration, Unit
    from .library import CALENDARS_FILE, CATALOG_FILE, default_library_path

    library = Path(args.library) if args.library is not None else default_library_path()
    if args.library is not None and not library.is_dir():
        raise CliError(f"--library {library}: no such folder")
    path = args.calendars
    if path is None and (library / CALENDARS_FILE).is_file():
        path = library / CALENDARS_FILE
    calendars = load_calendars(path)
    if args.agency is not None:
        known = set(load_catalog(library / CATALOG_FILE).agencies)
        if path is not None:  # already checked by load_calendars: an "agencies" object
            known |= set(read_data_file(path).get("agencies", {}))
        if args.agency not in known:
            raise CliError(f"unknown agency {args.agency!r} (known: "
                           f"{', '.join(sorted(known)) or 'none'})")
    calendar = calendars.for_agency(args.agency)
    start = _instant(args.start, "--start")
    try:
        if args.calendar_command == "due":
            if args.working_days is not None:
                duration = Duration(args.working_days, Unit.WORKING_DAYS)
            elif args.working_hours is not None:
                duration = Duration(args.working_hours, Unit.WORKING_HOURS)
            else:
                duration = Duration(Decimal(args.calendar_days), Unit.CALENDAR_DAYS)
            return calendar.add(start, duration).isoformat()
        spent = calendar.elapsed(start, _instant(args.end, "--end"))
    except ArithmeticError:  # OverflowError, decimal.Overflow: far past the calendar
        raise InvalidInput(f"the result falls outside the calendar's years "
                           f"{calendar.first.year}–{calendar.last.year}") from None
    sign = "-" if spent.microseconds < 0 else ""
    size = WorkingTime(abs(spent.microseconds), spent.day_length)
    return (f"{sign}{size.days} working days {size.hours:g} hours "
            f"({sign}{size.total_hours:g} working hours)")


def _instant(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option} {text!r} is not an ISO 8601 instant such as "
                           f"{_START_EXAMPLE}") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{option} {text!r} has no time zone; add one, e.g. +07:00")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
