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
    assert re.findall(r"^  \S+\s+(\d+)  (.+?)\s{2,}(\S.*)$", finals, flags=re.M) == [
        ("10", "Đã trả kết quả", "Trước hạn"), ("10", "Đã trả kết quả", "Đúng hạn"),
        ("10", "Đã trả kết quả", "Trước hạn"), ("3", "Không được tiếp nhận", "Không tính hạn"),
        ("4", "Đang xử lý", "Sắp đến hạn")]
    # The unsigned dossier: the apology timer fired one working day before its appointment.
    late = out.split("Dossier AN-BINH-MC-250707-0005")[1].split("Dossier")[0]
    assert "Nêu lý do chậm, đề xuất ngày hẹn mới (timer due" not in late
    assert re.search(r"1 ngày làm việc trước hạn \(timer due \d\d:\d\d 09/07/2025\)", late)
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
