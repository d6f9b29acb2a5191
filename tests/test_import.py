"""From a published internal-procedure table to a model that runs, and back."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from onestop import DossierStatus, Duration, Engine, EventKind, Officer
from onestop.cli import main
from onestop.errors import CatalogError
from onestop.modeling import (
    agency_slots,
    model_from_table,
    parse_table,
    read_table,
    table_from_model,
    write_table,
)

from .conftest import assert_well_drawn

TABLES = Path(__file__).parent.parent / "processes" / "tables"
TABLE_FILES = sorted(TABLES.glob("*.csv"))
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


def test_the_five_published_tables_ship_with_the_library() -> None:
    codes = {read_table(f).code for f in TABLE_FILES}
    assert codes == {"2.000815", "1.009994", "2.000575", "1.001193", "2.000488"}


@pytest.mark.parametrize("table_file", TABLE_FILES, ids=lambda p: p.stem)
def test_import_then_export_reproduces_the_table(table_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.bpmn"
    assert main(["import-procedure", str(table_file), "-o", str(out)]) == 0
    back = tmp_path / "back.csv"
    assert main(["export-procedure", str(out), "-o", str(back)]) == 0
    # Byte for byte, Vietnamese names, quoting and the comment line included.
    assert back.read_bytes() == table_file.read_bytes()
    assert table_from_model(out) == read_table(table_file)


@pytest.mark.parametrize("table_file", TABLE_FILES, ids=lambda p: p.stem)
def test_generated_diagram_is_complete_and_nothing_overlaps(table_file: Path,
                                                           tmp_path: Path) -> None:
    assert_well_drawn(model_from_table(read_table(table_file)))


def _library_for(table_file: Path, folder: Path) -> tuple[Path, dict[str, str]]:
    """A library folder with the imported model and a catalogue naming its agencies."""
    table = read_table(table_file)
    folder.mkdir()
    (folder / "model.bpmn").write_bytes(model_from_table(table))
    slots = agency_slots(table)
    codes = {agency: f"AG{i}" for i, agency in enumerate(slots, start=1)}
    catalog = {
        "schema": "onestop-catalog/1",
        "agencies": [{"code": codes[a], "name": a, "level": table.get("level")}
                     for a in slots],
        "procedures": [{
            "code": table.code, "name": table.name, "field": "Thử nghiệm",
            "level": table.get("level"),
            "agency": codes[next(a for a, s in slots.items() if s == "resolver")],
            "process": f"procedure_{table.code}", "legal_time": table.get("legal_time"),
            "agencies": {s: codes[a] for a, s in slots.items()
                         if s not in ("desk", "resolver")},
            "components": [{"code": "don", "name": "Đơn đề nghị"}],
        }],
    }
    (folder / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False),
                                         encoding="utf-8")
    return folder, codes


@pytest.mark.parametrize("table_file", TABLE_FILES, ids=lambda p: p.stem)
def test_imported_model_runs_every_step_in_table_order(table_file: Path, tmp_path: Path,
                                                       make_engine, sqlite_url: str) -> None:
    table = read_table(table_file)
    folder, codes = _library_for(table_file, tmp_path / "lib")
    engine: Engine = make_engine(sqlite_url, library=folder)
    staff = {}
    for step in table.steps:
        key = (codes[step.agency], step.role)
        if key not in staff and step.role != "system":
            staff[key] = engine.add_officer(Officer(f"o{len(staff)}", f"Cán bộ {len(staff)}",
                                                    {key[0]: [key[1]]}))
    desk = codes[table.steps[0].agency]
    clerk = staff[(desk, "receiving_officer")].id
    dossier = engine.receive(table.code, applicant={"name": "Nguyễn Thị Hoa"},
                             components=["don"], officer=clerk)
    done = []
    for _ in range(40):
        current = engine.dossier(dossier.code)
        if not current.open_tasks:
            break
        task = current.open_tasks[0]
        officer = staff[(task.agency, task.role)]
        engine.complete(task.id, officer.id,
                        {"outcome": "accept"} if task.step == "Step_1" else {})
        done.append(task.step)
    final = engine.dossier(dossier.code)
    assert final.finished and final.status is DossierStatus.RESULT_RETURNED
    # The officers' steps came in the table's order; parallel steps in any order.
    expected = [{f"Step_{g[0].step}" if len(g) == 1 else f"Step_{g[0].step}_{i}"
                 for i in range(1, len(g) + 1)}
                for g in table.groups() if g[0].role != "system"]
    seen = []
    for group in expected:
        seen.append(set(done[len(sum(map(list, seen), [])):][:len(group)]))
    assert seen == expected
    # Each step's deadline is its allotment from when it became ready.
    allotments = {f"Step_{g[0].step}" if len(g) == 1 else f"Step_{g[0].step}_{i}": s.allotment
                  for g in table.groups() for i, s in enumerate(g, start=1)}
    ready = [e for e in engine.history(dossier.code)
             if e.kind is EventKind.TASK_READY and e.step in allotments]
    assert {e.step for e in ready} == {s for s in allotments if s in done}
    for event in ready:
        calendar = engine.library.calendars.for_agency(event.agency)
        due = calendar.add(event.at, Duration.parse(allotments[event.step]))
        assert datetime.fromisoformat(event.detail["due"]) == due, event.step


def test_parallel_consultations_wait_for_every_agency(tmp_path: Path, make_engine,
                                                       sqlite_url: str) -> None:
    table_file = TABLES / "ly-lich-tu-phap.csv"
    folder, codes = _library_for(table_file, tmp_path / "lib")
    engine: Engine = make_engine(sqlite_url, library=folder)
    roles = {(codes[s.agency], s.role) for s in read_table(table_file).steps
             if s.role != "system"}
    for i, (agency, role) in enumerate(sorted(roles)):
        engine.add_officer(Officer(f"o{i}", f"Cán bộ {i}", {agency: [role]}))
    by_role = {key: f"o{i}" for i, key in enumerate(sorted(roles))}
    dossier = engine.receive("2.000488", applicant={"name": "Trần Văn Nam"},
                             components=["don"], officer=by_role[(codes[
                                 "Trung tâm Phục vụ hành chính công tỉnh"],
                                 "receiving_officer")])
    for _ in range(10):
        current = engine.dossier(dossier.code)
        if len(current.open_tasks) > 1:
            break
        task = current.open_tasks[0]
        engine.complete(task.id, by_role[(task.agency, task.role)],
                        {"outcome": "accept"} if task.step == "Step_1" else {})
    waiting = engine.dossier(dossier.code).open_tasks
    assert {t.step for t in waiting} == {"Step_5_1", "Step_5_2"}
    assert {t.agency for t in waiting} == {codes["Công an tỉnh"],
                                           codes["Cục Thi hành án dân sự tỉnh"]}
    police = next(t for t in waiting if t.step == "Step_5_1")
    engine.complete(police.id, by_role[(police.agency, police.role)], {})
    # The draft waits for the enforcement office too.
    assert [t.step for t in engine.dossier(dossier.code).open_tasks] == ["Step_5_2"]


def test_import_lints_clean_with_its_catalogue(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = _library_for(TABLES / "giay-phep-xay-dung.csv", tmp_path / "lib")
    assert main(["lint", str(folder)]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("text, entry, field", [
    ("step,name,role,agency,allotment,kind\n", "line 1", None),
    ("step,name_vi,role,agency,allotment,kind\n1,a,receiving_officer,D,1wd,receive\n",
     "line 2", None),
    ("step,name_vi,role,agency,allotment,kind\n# procedure=2.000575;name=X;legal_time=3;"
     "level=commune\n", "line 2", "legal_time"),
    ("step,name_vi,role,agency,allotment,kind\n# procedure=2.000575;name=X;legal_time=3wd;"
     "level=commune\n1,Nhận,receiving_officer,D,4wh,receive\n3,Xử lý,specialist,P,1wd,"
     "examine\n", "line 4 (step 3)", "step"),
    ("step,name_vi,role,agency,allotment,kind\n# procedure=2.000575;name=X;legal_time=3wd;"
     "level=commune\n1,Nhận,receiving_officer,D,4wh,receive\n2,Xử lý,chuyen_vien,P,1wd,"
     "examine\n", "line 4 (step 2)", "role"),
    ("step,name_vi,role,agency,allotment,kind\n# procedure=2.000575;name=X;legal_time=3wd;"
     "level=commune\n1,Nhận,receiving_officer,D,4 giờ,receive\n", "line 3 (step 1)",
     "allotment"),
    ("step,name_vi,role,agency,allotment,kind\n# procedure=2.000575;name=X;legal_time=3wd;"
     "level=commune\n1,Nhận,receiving_officer,D,4wh,receive\n2,Xử lý,specialist,P,1wd,"
     "review\n", "line 4 (step 2)", "kind"),
    ("step,name_vi,role,agency,allotment,kind\n# procedure=2.575;name=X;legal_time=3wd;"
     "level=commune\n", "line 2", "procedure"),
])
def test_bad_tables_name_line_and_column(text: str, entry: str, field: str | None) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_table(text, "bad.csv")
    assert caught.value.file == "bad.csv"
    assert caught.value.entry == entry
    assert caught.value.field == field


def test_a_table_must_have_a_resolution_step() -> None:
    text = ("step,name_vi,role,agency,allotment,kind\n# procedure=2.000575;name=X;"
            "legal_time=1wd;level=commune\n1,Nhận,receiving_officer,D,4wh,receive\n"
            "2,Trả,receiving_officer,D,4wh,return\n")
    with pytest.raises(CatalogError, match="no resolution step"):
        parse_table(text, "t.csv")


def test_import_cli_reports_bad_table_without_traceback(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("step,name_vi,role,agency,allotment,kind\n# procedure=1.000894;"
                   "name=Đăng ký kết hôn;legal_time=5wd;level=commune\n"
                   "1,Tiếp nhận,receiving_officer,Bộ phận Một cửa,nửa ngày,receive\n",
                   encoding="utf-8")
    assert main(["import-procedure", str(bad), "-o", str(tmp_path / "x.bpmn")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "line 3 (step 1)" in err and "allotment" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.bpmn").exists()


def test_slots_for_agencies_beyond_desk_and_resolver() -> None:
    slots = agency_slots(read_table(TABLES / "lien-thong-khai-sinh.csv"))
    assert slots["Bộ phận Một cửa xã"] == "desk"
    assert slots["Công chức Tư pháp - Hộ tịch xã"] == "resolver"
    assert slots["Công an xã"] == "cong_an_xa"
    assert slots["Bảo hiểm xã hội"] == "bao_hiem_xa_hoi"


def test_write_table_round_trips_vietnamese(tmp_path: Path) -> None:
    table = read_table(TABLES / "ho-kinh-doanh.csv")
    copy = tmp_path / "copy.csv"
    copy.write_text(write_table(table), encoding="utf-8")
    assert read_table(copy) == table
    shutil.copy(TABLES / "ho-kinh-doanh.csv", tmp_path / "orig.csv")
    assert copy.read_bytes() == (tmp_path / "orig.csv").read_bytes()
