"""What a person sees: `onestop demo` and the quickstart example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from onestop.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_demo_prints_codes_handovers_and_final_statuses(tmp_path, capsys):
    database = tmp_path / "demo.db"
    assert main(["demo", "--db", str(database)]) == 0
    out = capsys.readouterr().out
    codes = re.findall(r"^Dossier (\S+)$", out, flags=re.M)
    assert codes == [f"AN-BINH-MC-250707-000{i}" for i in range(1, 6)]
    assert "received by Trương Văn Đức" not in out      # applicants do not receive
    assert "received by Võ Thị Mai at Bộ phận Một cửa UBND xã An Bình" in out
    assert re.search(r"\d{2}:\d{2}  Thẩm định hồ sơ, dự thảo kết quả — Lê Văn Bình → "
                     r"Phê duyệt, ký kết quả \(leader, Phòng Kinh tế xã An Bình\)", out)
    finals = out.split("Final statuses")[1]
    assert re.findall(r"^  \S+\s+(\d+)  (.+?)\s{2,}(\S.*?)\s{2,}(\S.*)$", finals,
                      flags=re.M) == [
        ("10", "Đã trả kết quả", "Trước hạn", "Không phải xin lỗi"),
        ("10", "Đã trả kết quả", "Đúng hạn", "Không phải xin lỗi"),
        ("10", "Đã trả kết quả", "Trước hạn", "Không phải xin lỗi"),
        ("3", "Không được tiếp nhận", "Không tính hạn", "Không phải xin lỗi"),
        ("4", "Đang xử lý", "Trong hạn", "Đã xin lỗi đúng hạn")]
    # The same-day dossier was warned while the leader signed; the signature withdrew it.
    same_day = out.split("Dossier AN-BINH-MC-250707-0002")[1].split("Dossier")[0]
    assert re.search(r"Cảnh báo hồ sơ có thể quá hạn \(timer, due 13:48 07/07/2025\)",
                     same_day)
    assert "withdrawn: Xác định hồ sơ có quá hạn không" in same_day
    # The unsigned dossier: warned on Tuesday afternoon, the head of the agency says it
    # will be late, the desk issues the letter on Wednesday morning (in time).
    late = out.split("Dossier AN-BINH-MC-250707-0005")[1].split("Dossier")[0]
    assert re.search(r"Cảnh báo hồ sơ có thể quá hạn \(timer, due \d\d:\d\d 08/07/2025\)",
                     late)
    assert "Phạm Quốc Cường (will be late: yes; reason: Lãnh đạo phòng đi công tác" in late
    assert "new appointment 17:00 14/07/2025 (apology: Lãnh đạo phòng đi công tác" in late
    # Running again starts from a fresh file: the same codes, not 0006...
    assert main(["demo", "--db", str(database)]) == 0
    assert "AN-BINH-MC-250707-0006" not in capsys.readouterr().out


def test_demo_reports_a_broken_library_as_an_error_line(tmp_path, capsys):
    (tmp_path / "lib").mkdir()
    assert main(["demo", "--db", str(tmp_path / "d.db"), "--library", str(tmp_path / "lib")]) == 2
    assert "onestop: error: no .bpmn files" in capsys.readouterr().err


def test_quickstart_runs_to_the_returned_result(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "received AN-BINH-MC-" in result.stdout
    assert result.stdout.count(" did ") == 6
    assert "now Đã trả kết quả" in result.stdout
    assert (tmp_path / "quickstart.db").exists()


# -- what a newcomer tripped on ------------------------------------------------------

TABLE = ROOT / "processes" / "tables" / "ho-kinh-doanh.csv"
START = "2025-04-25T16:00+07:00"


def run(args: list[str], capsys) -> tuple[int, str, str]:
    """``onestop ARGS``: exit status, stdout, stderr (argparse's own exits included)."""
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, *names: str) -> str:
    """``err`` is one ``onestop...: error: ...`` line naming ``names``; that line."""
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert re.match(r"^onestop( [\w-]+)*: error: ", line), err
    if not err.startswith("usage: "):   # argparse shows the usage above its error line
        assert len(err.strip().splitlines()) == 1, err
    for name in names:
        assert name in line, (name, line)
    return line


def model_file(tmp_path: Path) -> Path:
    model = tmp_path / "model.bpmn"
    assert main(["import-procedure", str(TABLE), "-o", str(model)]) == 0
    return model


def test_import_and_export_create_missing_output_folders(tmp_path, capsys):
    out = tmp_path / "missing" / "dir" / "x.bpmn"
    assert run(["import-procedure", str(TABLE), "-o", str(out)], capsys)[0] == 0
    assert out.read_bytes().startswith(b"<?xml")
    back = tmp_path / "other" / "deeper" / "x.csv"
    assert run(["export-procedure", str(out), "-o", str(back)], capsys)[0] == 0
    assert back.read_text(encoding="utf-8").startswith("step,")


def test_outputs_that_cannot_be_written_are_one_error_line(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    model = model_file(tmp_path)
    capsys.readouterr()
    for command, source in (("import-procedure", TABLE), ("export-procedure", model)):
        # A file where a folder should be.
        code, _, err = run([command, str(source), "-o", str(blocker / "x.out")], capsys)
        assert code == 2
        one_error_line(err, str(blocker / "x.out"), "cannot create folder")
        # A folder where the file should be.
        code, _, err = run([command, str(source), "-o", str(tmp_path)], capsys)
        assert code == 2
        one_error_line(err, str(tmp_path), "is a folder")
    assert blocker.read_text(encoding="utf-8") == "not a folder"

    # No permission (simulated: the tests may run as root, who may write anywhere).
    def refuse(self, data):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    code, _, err = run(["import-procedure", str(TABLE), "-o", str(tmp_path / "x.bpmn")],
                       capsys)
    assert code == 2
    one_error_line(err, str(tmp_path / "x.bpmn"), "Permission denied")


def _bad_inputs(tmp_path: Path) -> list[tuple[list[str], tuple[str, ...]]]:
    binary = tmp_path / "passwd.gz"
    binary.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    folder = tmp_path / "folder"
    folder.mkdir()
    missing = tmp_path / "missing.csv"
    table = str(TABLE)
    calendar = ["calendar", "due", "--start", START]
    return [
        (["import-procedure", str(binary), "-o", str(tmp_path / "x.bpmn")], (str(binary),)),
        (["import-procedure", str(folder), "-o", str(tmp_path / "x.bpmn")], (str(folder),)),
        (["import-procedure", str(missing), "-o", str(tmp_path / "x.bpmn")], (str(missing),)),
        (["import-procedure", table, "-o", str(tmp_path / "x.bpmn"), "--process-id", "a b"],
         ("--process-id",)),
        (["import-procedure", table], ("-o",)),
        (["export-procedure", str(binary)], (str(binary),)),
        (["export-procedure", str(folder)], (str(folder),)),
        (["export-procedure", str(missing)], (str(missing),)),
        (["export-procedure", table], (table,)),
        (["lint", str(folder)], (str(folder), "no .bpmn files")),
        (["lint"], ()),
        (calendar + ["--working-days", "2", "--calendars", str(binary)], (str(binary),)),
        (calendar + ["--working-days", "2", "--calendars", str(folder)], (str(folder),)),
        (calendar + ["--working-days", "2", "--calendars", str(missing)], (str(missing),)),
        (calendar + ["--working-days", "2", "--library", str(missing)], (str(missing),)),
        (calendar + ["--working-days", "2", "--library", str(folder), "--agency", "X"],
         ("catalog.json",)),
        (calendar + ["--working-days", "abc"], ("--working-days", "'abc'")),
        (calendar + ["--working-days", "NaN"], ("--working-days", "'NaN'")),
        (calendar + ["--working-days", "-1"], ("--working-days", "'-1'")),
        (calendar + ["--working-days", "1e999999"], ("outside the calendar",)),
        (calendar + ["--calendar-days", "2.5"], ("--calendar-days",)),
        (calendar + ["--calendar-days", "99999999"], ("outside the calendar",)),
        (calendar + ["--working-hours", "1", "--working-days", "1"], ("not allowed",)),
        (["calendar", "due", "--start", "tomorrow", "--working-days", "1"], ("--start",)),
        (["calendar", "elapsed", "--start", START, "--end", "2099-01-01T08:00+07:00"],
         ("outside the calendar",)),
        (["demo", "--db", str(folder)], (str(folder), "is a folder")),
        (["demo", "--db", str(binary)], (str(binary), "not a SQLite database")),
        (["demo", "--db", str(tmp_path / "d.db"), "--library", str(binary)], (str(binary),)),
        (["no-such-command"], ()),
        ([], ()),
    ]


def test_bad_input_is_one_error_line_and_exit_2_never_a_traceback(tmp_path, capsys):
    for args, names in _bad_inputs(tmp_path):
        code, _, err = run(args, capsys)
        assert code == 2, (args, err)
        one_error_line(err, *names)
    # The demo left the file it was not meant to recreate alone.
    assert (tmp_path / "passwd.gz").read_bytes().startswith(b"\x1f\x8b")


def test_unreadable_input_names_the_file(tmp_path, capsys, monkeypatch):
    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    code, _, err = run(["import-procedure", str(TABLE), "-o", str(tmp_path / "x.bpmn")],
                       capsys)
    assert code == 2
    assert one_error_line(err) == f"onestop: error: {TABLE}: Permission denied"


def test_an_unexpected_failure_is_one_line_too(tmp_path, capsys, monkeypatch):
    import onestop.modeling.table as table

    def broken(*args, **kwargs):
        raise RuntimeError("something no one expected")

    monkeypatch.setattr(table, "model_from_table", broken)
    monkeypatch.delenv("ONESTOP_DEBUG", raising=False)
    code, _, err = run(["import-procedure", str(TABLE), "-o", str(tmp_path / "x.bpmn")],
                       capsys)
    assert code == 2
    assert "RuntimeError: something no one expected" in one_error_line(err)


def test_the_installed_command_prints_no_traceback(tmp_path):
    """The same through the real entry point, in a process of its own."""
    binary = tmp_path / "passwd.gz"
    binary.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe\x80")
    for args in (["import-procedure", str(binary), "-o", str(tmp_path / "x" / "y.bpmn")],
                 ["import-procedure", str(tmp_path), "-o", str(tmp_path / "y.bpmn")],
                 ["calendar", "due", "--start", START, "--working-days", "x"]):
        result = subprocess.run([sys.executable, "-m", "onestop.cli", *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()[-1:]) == 1


def test_version(capsys):
    import onestop

    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out == f"onestop {onestop.__version__}\n"


def test_top_level_help_is_plain_text_with_examples(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert "``" not in out and ":class:" not in out
    assert "one-stop-shop" in out
    examples = out.split("examples:")[1]
    for command in ("demo", "lint", "import-procedure", "export-procedure", "calendar due",
                    "calendar elapsed"):
        assert f"onestop {command}" in examples, command


def test_every_calendar_option_has_help():
    import argparse

    from onestop.cli import build_parser

    def subparsers(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices
        return {}

    calendar = subparsers(build_parser())["calendar"]
    for name in ("due", "elapsed"):
        for action in subparsers(calendar)[name]._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
            if action.dest != "help":
                assert "e.g." in action.help or "default" in action.help, \
                    (name, action.dest, action.help)


def test_calendar_agencies_must_be_known(tmp_path, capsys):
    due = ["calendar", "due", "--start", START, "--working-hours", "4"]
    code, out, err = run(due + ["--agency", "NOPE"], capsys)
    assert code == 2 and out == ""
    line = one_error_line(err, "unknown agency 'NOPE'", "known:", "AN-BINH-MC",
                          "TINH-TTPVHCC")
    assert line.startswith("onestop: error: unknown agency 'NOPE' (known: ")
    code, out, err = run(["calendar", "elapsed", "--start", START, "--end", START,
                          "--agency", "NOPE"], capsys)
    assert code == 2
    one_error_line(err, "unknown agency 'NOPE'")
    # A catalogue agency without overrides counts on the national calendar.
    assert run(due + ["--agency", "AN-BINH-MC"], capsys)[:2] == (
        0, "2025-04-26T10:30:00+07:00\n")
    # An agency the calendars file has overrides for is known, catalogue or not.
    calendars = tmp_path / "calendars.json"
    calendars.write_text('{"agencies": {"LOCAL-DESK": {"sessions": [["07:00", "11:00"], '
                         '["13:00", "17:00"]]}}}', encoding="utf-8")
    assert run(due + ["--agency", "LOCAL-DESK", "--calendars", str(calendars)],
               capsys)[:2] == (0, "2025-04-26T10:00:00+07:00\n")
    # --library picks the catalogue (and its calendars.json).
    library = tmp_path / "lib"
    library.mkdir()
    (library / "catalog.json").write_text(
        (ROOT / "processes" / "catalog.json").read_text(encoding="utf-8")
        .replace('"PHU-HOA-MC"', '"PHU-HOA-MOT-CUA"'), encoding="utf-8")
    assert run(due + ["--agency", "PHU-HOA-MOT-CUA", "--library", str(library)],
               capsys)[0] == 0
    code, _, err = run(due + ["--agency", "PHU-HOA-MC", "--library", str(library)], capsys)
    assert code == 2
    one_error_line(err, "unknown agency 'PHU-HOA-MC'")


def test_elapsed_backwards_reads_as_negative_working_time(capsys):
    code, out, _ = run(["calendar", "elapsed", "--start", "2025-05-06T09:00+07:00",
                        "--end", "2025-04-25T16:00+07:00"], capsys)
    assert code == 0
    assert out.strip() == "-4 working days 2.5 hours (-34.5 working hours)"


def test_lint_says_how_many_files_it_checked(tmp_path, capsys):
    library = ROOT / "processes"
    count = len([p for p in library.rglob("*.bpmn") if p.is_file()])
    code, out, err = run(["lint", str(library)], capsys)
    assert code == 0 and out == ""
    assert err.strip().splitlines()[-1] == f"checked {count} file(s): 0 error(s), 0 warning(s)"
    code, _, err = run(["lint", str(library / "standard.bpmn"), str(library / "one_stop.bpmn")],
                       capsys)
    assert err.strip().splitlines()[-1].startswith("checked 2 file(s): ")


def test_lint_without_bpmn_files_is_an_error(tmp_path, capsys):
    empty, other = tmp_path / "empty", tmp_path / "only-csv"
    empty.mkdir()
    other.mkdir()
    (other / "table.csv").write_text("x", encoding="utf-8")
    code, out, err = run(["lint", str(empty), str(other)], capsys)
    assert code == 2 and out == ""
    one_error_line(err, "no .bpmn files", str(empty), str(other))


def test_demo_does_not_delete_a_file_that_is_not_its_database(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("ghi chú quan trọng", encoding="utf-8")
    code, _, err = run(["demo", "--db", str(notes)], capsys)
    assert code == 2
    one_error_line(err, str(notes))
    assert notes.read_text(encoding="utf-8") == "ghi chú quan trọng"
