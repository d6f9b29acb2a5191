"""Loading models and catalogues: bad input is refused with file, element and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from onestop import CatalogError, ModelError, load_catalog, load_library
from onestop.duration import Duration, Unit

from .conftest import DATA

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_library_loads_and_every_user_task_has_role_and_agency():
    library = load_library()
    model = library.models["standard"]
    steps = {s.id: s for s in model.user_steps()}
    assert steps["Task_Examine"].role == "specialist" and steps["Task_Examine"].agency == "resolver"
    assert steps["Task_Approve"].role == "leader"
    assert steps["Task_CheckDossier"].agency == "desk"
    assert set(library.catalog.procedures) >= {"2.000815", "1.009994", "2.000575",
                                               "1.001193", "2.000488"}


def test_typo_in_a_reference_is_refused_with_the_ids(tmp_path):
    shutil.copy(DATA / "typo_reference.bpmn", tmp_path)
    with pytest.raises(ModelError) as refused:
        load_library(tmp_path)
    message = str(refused.value)
    assert "Task_Examin" in message and "Flow_ToExamine" in message
    assert "typo_reference.bpmn" in message and refused.value.line == 7


def test_unsupported_element_is_named(tmp_path):
    shutil.copy(DATA / "unknown_element.bpmn", tmp_path)
    with pytest.raises(ModelError) as refused:
        load_library(tmp_path)
    assert refused.value.element == "Gateway_Complex" and "complex" in str(refused.value)


def test_malformed_xml_names_file_and_line(tmp_path):
    (tmp_path / "broken.bpmn").write_text(
        '<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">\n'
        '  <bpmn:process id="p">\n</bpmn:definitions>\n', encoding="utf-8")
    with pytest.raises(ModelError) as refused:
        load_library(tmp_path)
    assert "broken.bpmn:4" in str(refused.value) and "malformed XML" in str(refused.value)


def test_ids_the_engine_reserves_are_refused(tmp_path):
    model = (DATA / "script_task.bpmn").read_text(encoding="utf-8")
    (tmp_path / "m.bpmn").write_text(model.replace("StartEvent_1", "Start"), encoding="utf-8")
    with pytest.raises(ModelError, match="'Start' is reserved") as refused:
        load_library(tmp_path)
    assert refused.value.element == "Start"


def test_not_a_bpmn_document(tmp_path):
    (tmp_path / "note.bpmn").write_text("<html><body>hello</body></html>", encoding="utf-8")
    with pytest.raises(ModelError, match="not BPMN 2.0"):
        load_library(tmp_path)


def _library_with_catalog(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "lib"
    shutil.copytree(ROOT / "processes", folder)
    data = json.loads((folder / "catalog.json").read_text(encoding="utf-8"))
    edit(data)
    (folder / "catalog.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.mark.parametrize("edit, entry, field, words", [
    (lambda d: d["procedures"][1].update(legal_time="15 ngày"), "1.009994", "legal_time",
     "not a duration"),
    (lambda d: d["procedures"][0].update(agency="NOWHERE"), "2.000815", "agency",
     "not listed"),
    (lambda d: d["procedures"][2].update(process="ho_kinh_doanh"), "2.000575", "process",
     "not defined by any loaded BPMN file"),
    (lambda d: d["procedures"][0].update(code="2815"), "procedures[0]", "code",
     "national procedure code"),
    (lambda d: d["procedures"][3]["components"][0].update(must_digitize="yes"), "1.001193",
     "components[0].must_digitize", "true or false"),
    (lambda d: d["procedures"][4].update(legal_tme="10wd"), "2.000488", "legal_tme",
     "unknown key"),
    (lambda d: d["procedures"][4].pop("components"), "2.000488", "components", "required"),
    (lambda d: d["procedures"].append(dict(d["procedures"][0])), "2.000815", "code",
     "duplicate"),
])
def test_bad_catalogue_data_names_file_entry_and_field(tmp_path, edit, entry, field, words):
    folder = _library_with_catalog(tmp_path, edit)
    with pytest.raises(CatalogError) as refused:
        load_library(folder)
    error = refused.value
    assert error.file.endswith("catalog.json")
    assert entry in error.entry and error.field == field
    assert words in str(error)


def test_catalogue_that_is_not_json(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text('{"procedures": [', encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid JSON.*line 1"):
        load_catalog(path)


def test_user_task_without_role_in_a_catalogue_process_is_refused(tmp_path):
    folder = tmp_path / "lib"
    shutil.copytree(ROOT / "processes", folder)
    model = (folder / "standard.bpmn").read_text(encoding="utf-8")
    model = model.replace('name="Phê duyệt, ký kết quả" onestop:role="leader"',
                          'name="Phê duyệt, ký kết quả"')
    (folder / "standard.bpmn").write_text(model, encoding="utf-8")
    with pytest.raises(ModelError) as refused:
        load_library(folder)
    assert refused.value.element == "Task_Approve" and "no role" in str(refused.value)


def test_roles_from_camunda_candidate_groups_and_extension_properties(tmp_path):
    folder = tmp_path / "lib"
    shutil.copytree(ROOT / "processes", folder)
    model = (folder / "standard.bpmn").read_text(encoding="utf-8")
    model = model.replace('xmlns:onestop="urn:onestop:bpmn:1"',
                          'xmlns:onestop="urn:onestop:bpmn:1" '
                          'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"')
    model = model.replace('name="Phê duyệt, ký kết quả" onestop:role="leader" '
                          'onestop:allotment="20%">',
                          'name="Phê duyệt, ký kết quả" camunda:candidateGroups="department_head">')
    model = model.replace(
        'name="Thẩm định hồ sơ, dự thảo kết quả" onestop:role="specialist" onestop:status="4" '
        'onestop:allotment="60%"',
        'name="Thẩm định hồ sơ, dự thảo kết quả"')
    model = model.replace(
        '<bpmn:incoming>Flow_ResolveStart_Examine</bpmn:incoming>',
        '<bpmn:extensionElements><camunda:properties>'
        '<camunda:property name="onestop:role" value="expert" />'
        '<camunda:property name="allotment" value="1.5wd" /></camunda:properties>'
        '</bpmn:extensionElements><bpmn:incoming>Flow_ResolveStart_Examine</bpmn:incoming>')
    (folder / "standard.bpmn").write_text(model, encoding="utf-8")
    steps = {s.id: s for s in load_library(folder).models["standard"].user_steps()}
    assert steps["Task_Approve"].role == "department_head"
    assert steps["Task_Examine"].role == "expert" and steps["Task_Examine"].allotment == "1.5wd"


def test_durations_keep_their_unit():
    assert Duration.parse("1.5wd").unit is Unit.WORKING_DAYS
    assert str(Duration.parse("4wh")) == "4wh"
    assert Duration.parse("same_day").unit is Unit.SAME_DAY
    with pytest.raises(ValueError, match="15 days"):
        Duration.parse("15 days")
