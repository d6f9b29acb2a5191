"""Loading models and catalogues: bad input is refused with file, element and field."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from onestop import CatalogError, ModelError, load_catalog, load_library
from onestop.bpmn.loader import load_models
from onestop.duration import Duration, Unit
from onestop.modeling.lint import ERROR, LOAD, lint

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


# -- loading never raises anything but a ModelError -------------------------------------

THIRDPARTY = DATA / "thirdparty"


def _variant(tmp_path: Path, source: Path, *edits: tuple[str, str]) -> Path:
    """A copy of ``source`` with each (old, new) replaced once."""
    text = source.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / source.name
    path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path) -> ModelError:
    with pytest.raises(ModelError) as refused:
        load_models([path])
    assert str(path) in str(refused.value)
    return refused.value


@pytest.mark.parametrize("old, new", [
    ('<dc:Bounds x="240"', '<dc:Bounds x="abc"'),
    ('<dc:Bounds x="240" y="80"', '<dc:Bounds x="240" y=""'),
    ('width="100" height="80" />', 'width="100" height="1,5" />'),
])
def test_diagram_bounds_that_are_not_numbers_name_the_shape(tmp_path, old, new):
    path = _variant(tmp_path, THIRDPARTY / "bpmnio-simple-flow.bpmn", (old, new))
    error = _refused(path)
    assert error.element and error.line and "not a number" in error.reason
    findings = [f for f in lint([path]) if f.severity == ERROR]
    assert [(f.element, f.kind) for f in findings] == [(error.element, LOAD)]


def test_diagram_bounds_without_coordinates_are_fine(tmp_path):
    # SpiffWorkflow reads a missing x or y as 0: nothing to refuse.
    path = _variant(tmp_path, THIRDPARTY / "bpmnio-simple-flow.bpmn",
                    ('<dc:Bounds x="240" y="80"', '<dc:Bounds'))
    assert load_models([path])


def test_an_expression_nested_thousands_deep_is_a_model_error(tmp_path):
    deep = "not " * 3000 + "approved"
    path = _variant(tmp_path, THIRDPARTY / "bpmnio-simple-flow.bpmn",
                    (">approved == True<", f">{deep}<"))
    error = _refused(path)
    # The engine evaluates a flow's condition at the gateway the flow leaves.
    assert error.element == "Gateway_0d1m6pq" and error.line
    assert "flow 'Flow_1rj0x2a'" in error.reason and "nested" in error.reason
    assert [(f.element, f.kind) for f in lint([path]) if f.severity == ERROR] == [
        ("Gateway_0d1m6pq", LOAD)]


@pytest.mark.parametrize("failure", [RecursionError("maximum recursion depth exceeded"),
                                     MemoryError(), ValueError("odd"), TypeError("odd")])
def test_whatever_escapes_a_check_is_a_model_error(tmp_path, monkeypatch, failure):
    """A safety net under the restricted evaluator: whatever its check raises (an
    expression nested past Python's limits, say) is a ModelError on the element."""
    from onestop.bpmn import loader

    def broken(source, mode="eval"):
        raise failure

    monkeypatch.setattr(loader.sandbox, "check", broken)
    loader._checked.cache_clear()
    path = _variant(tmp_path, THIRDPARTY / "bpmnio-simple-flow.bpmn",
                    (">approved == True<", ">approved == 1<"))
    try:
        error = _refused(path)
        assert error.element == "Gateway_0d1m6pq" and "Flow_1rj0x2a" in error.reason
        # Every condition fails such a check: lint names both flows.
        findings = [f for f in lint([path]) if f.severity == ERROR]
        assert [(f.element, f.kind) for f in findings] == [("Gateway_0d1m6pq", LOAD)] * 2
        assert "Flow_0f8gd1e" in findings[1].message
    finally:
        loader._checked.cache_clear()


def test_a_process_without_an_id_is_a_model_error(tmp_path):
    path = _variant(tmp_path, DATA / "script_task.bpmn", ('<bpmn:process id="scripted" ',
                                                           '<bpmn:process '))
    error = _refused(path)
    assert "process" in error.reason and "no id" in error.reason and error.line == 3
    assert any(f.severity == ERROR and "no id" in f.message for f in lint([path]))


@pytest.mark.parametrize("old, new, words", [
    ('id="Flow_1b5ghq7" ', "", "sequenceFlow (in process 'Process_0x7kq2m') has no id"),
    ('isExecutable="true"', 'isExecutable="yes"', "isExecutable 'yes' must be"),
    ('<bpmn:startEvent id="StartEvent_1"', '<bpmn:startEvent id=" "', "has an empty id"),
])
def test_what_the_engine_cannot_tell_apart_is_refused(tmp_path, old, new, words):
    path = _variant(tmp_path, THIRDPARTY / "bpmnio-simple-flow.bpmn", (old, new))
    assert words in _refused(path).reason


def test_a_long_chain_loads_under_the_default_recursion_limit(tmp_path):
    """SpiffWorkflow parses a process by recursing from node to node: a chain of 550
    steps needs more than Python's default limit; the loader raises it for the time of
    the load, then puts it back."""
    tasks = "".join(f'<bpmn:userTask id="T{i}" onestop:role="specialist"/>'
                    f'<bpmn:sequenceFlow id="F{i}" sourceRef="T{i}" targetRef="T{i + 1}"/>'
                    for i in range(550))
    path = tmp_path / "chain.bpmn"
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:onestop="urn:onestop:bpmn:1" id="D" targetNamespace="urn:x">
  <bpmn:process id="chain" isExecutable="true"><bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="F" sourceRef="S" targetRef="T0"/>{tasks}
    <bpmn:endEvent id="T550"/></bpmn:process></bpmn:definitions>""", encoding="utf-8")
    limit = sys.getrecursionlimit()
    assert len(load_models([path])["chain"].user_steps()) == 550
    assert sys.getrecursionlimit() == limit
    assert [f for f in lint([path]) if f.severity == ERROR] == []


def test_deeply_nested_sub_processes_load(tmp_path):
    inner = '<bpmn:task id="Work"/>'
    for level in range(120):
        inner = (f'<bpmn:subProcess id="Sub{level}"><bpmn:startEvent id="S{level}"/>'
                 f'<bpmn:sequenceFlow id="Fa{level}" sourceRef="S{level}" '
                 f'targetRef="{"Work" if level == 0 else f"Sub{level - 1}"}"/>{inner}'
                 f'<bpmn:sequenceFlow id="Fb{level}" sourceRef="'
                 f'{"Work" if level == 0 else f"Sub{level - 1}"}" targetRef="E{level}"/>'
                 f'<bpmn:endEvent id="E{level}"/></bpmn:subProcess>')
    path = tmp_path / "nested.bpmn"
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D"
    targetNamespace="urn:x"><bpmn:process id="nested" isExecutable="true">
  <bpmn:startEvent id="Begin"/><bpmn:sequenceFlow id="F1" sourceRef="Begin" targetRef="Sub119"/>
  {inner}<bpmn:sequenceFlow id="F2" sourceRef="Sub119" targetRef="Finish"/>
  <bpmn:endEvent id="Finish"/></bpmn:process></bpmn:definitions>""", encoding="utf-8")
    assert "nested" in load_models([path])
    assert [str(f) for f in lint([path]) if f.severity == ERROR] == []


def test_a_broken_process_that_is_not_executable_but_called_is_refused(tmp_path):
    path = tmp_path / "calls.bpmn"
    path.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D1"
    targetNamespace="urn:x">
  <bpmn:process id="main" isExecutable="true">
    <bpmn:startEvent id="S1"/><bpmn:sequenceFlow id="F1" sourceRef="S1" targetRef="C1"/>
    <bpmn:callActivity id="C1" calledElement="sub"/>
    <bpmn:sequenceFlow id="F2" sourceRef="C1" targetRef="E1"/><bpmn:endEvent id="E1"/>
  </bpmn:process>
  <bpmn:process id="sub" isExecutable="false">
    <bpmn:startEvent id="S3"/><bpmn:sequenceFlow id="F7" sourceRef="S3" targetRef="E3"/>
    <bpmn:endEvent id="E3"/>
  </bpmn:process>
</bpmn:definitions>""", encoding="utf-8")
    error = _refused(path)
    assert error.element == "C1" and "not executable" in error.reason
    assert [(f.element, f.kind) for f in lint([path]) if f.severity == ERROR] == [("C1", LOAD)]


def test_a_path_that_cannot_be_read_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot read"):
        load_models([tmp_path / "nul\x00.bpmn"])
    with pytest.raises(ModelError, match="cannot read"):
        load_models([tmp_path])


def test_a_user_task_id_shared_with_a_called_process_is_refused(tmp_path):
    """An officer's task is known by its step id (its form, its role): a process and the
    process it calls may not both use one for a user task."""
    head = ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
            'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
            'xmlns:onestop="urn:onestop:bpmn:1" id="D{n}" targetNamespace="urn:x">')
    (tmp_path / "main.bpmn").write_text(head.format(n=1) + """
      <bpmn:process id="main" isExecutable="true"><bpmn:startEvent id="S"/>
        <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Task_Review"/>
        <bpmn:userTask id="Task_Review" onestop:role="receiving_officer" onestop:form="a"/>
        <bpmn:sequenceFlow id="F2" sourceRef="Task_Review" targetRef="C"/>
        <bpmn:callActivity id="C" calledElement="sub"/>
        <bpmn:sequenceFlow id="F3" sourceRef="C" targetRef="E"/><bpmn:endEvent id="E"/>
      </bpmn:process></bpmn:definitions>""", encoding="utf-8")
    (tmp_path / "sub.bpmn").write_text(head.format(n=2) + """
      <bpmn:process id="sub" isExecutable="true"><bpmn:startEvent id="S2"/>
        <bpmn:sequenceFlow id="G1" sourceRef="S2" targetRef="Task_Review"/>
        <bpmn:userTask id="Task_Review" onestop:role="receiving_officer" onestop:form="b"/>
        <bpmn:sequenceFlow id="G2" sourceRef="Task_Review" targetRef="E2"/>
        <bpmn:endEvent id="E2"/>
      </bpmn:process></bpmn:definitions>""", encoding="utf-8")
    files = [tmp_path / "main.bpmn", tmp_path / "sub.bpmn"]
    with pytest.raises(ModelError, match="'Task_Review' is used both in process 'main' and "
                                         "in process 'sub'"):
        load_models(files)
    assert any("is used both in process" in f.message and f.severity == ERROR
               for f in lint(files))
