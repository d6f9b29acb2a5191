"""``onestop lint``: one line per finding, never a traceback, exit 1 only on errors."""

from __future__ import annotations

import json
import re
import shutil
from functools import cache
from pathlib import Path

import pytest

from onestop.bpmn.loader import load_models
from onestop.bpmn.runtime import Instance
from onestop.cli import main
from onestop.engine import RESERVED_FIELDS
from onestop.errors import ModelError
from onestop.library import load_library
from onestop.modeling.lint import (
    ERROR,
    LOAD,
    RULE,
    RUN,
    WARNING,
    Finding,
    _dossier_variables,
    lint,
)

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
THIRDPARTY = DATA / "thirdparty"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<element>[^:]+): (?P<severity>error|warning): .+$")


def _by_file(findings: list[Finding]) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in findings:
        found.setdefault(Path(finding.file).name, []).append(finding)
    return found


@cache
def _thirdparty() -> dict[str, list[Finding]]:
    """The findings on the third-party corpus, by file name (linted once)."""
    return _by_file(lint([THIRDPARTY]))


def _model(tmp_path: Path, name: str, process: str, executable: str = "true") -> Path:
    """A BPMN file holding one process with the given content."""
    path = tmp_path / f"{name}.bpmn"
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:onestop="urn:onestop:bpmn:1" id="D_{name}" targetNamespace="urn:x">
  <bpmn:process id="{name}" isExecutable="{executable}">{process}</bpmn:process>
</bpmn:definitions>""", encoding="utf-8")
    return path


def test_the_shipped_library_lints_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(ROOT / "processes")]) == 0
    assert capsys.readouterr().out == ""


def test_third_party_folder_gives_findings_and_no_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", str(THIRDPARTY)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err and "internal error" not in out
    lines = out.splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines
    # Every file was looked at: the broken ones say why.
    files = {Path(LINE.match(line)["file"]).name for line in lines}
    for name in ("empty.bpmn", "broken-xml.bpmn", "not-bpmn.bpmn", "xxe-entity.bpmn",
                 "unsupported-elements.bpmn", "dangling-reference.bpmn"):
        assert name in files


@pytest.mark.parametrize("name, element, severity, words", [
    ("empty.bpmn", None, ERROR, "malformed XML"),
    ("broken-xml.bpmn", None, ERROR, "malformed XML"),
    ("not-bpmn.bpmn", None, ERROR, "not BPMN 2.0"),
    ("xxe-entity.bpmn", None, ERROR, "DOCTYPE"),
    ("unsupported-elements.bpmn", "Gateway_0cx5mlp", ERROR, "complex gateways"),
    ("unsupported-elements.bpmn", "Activity_0adh2oq", ERROR, "ad-hoc"),
    ("dangling-reference.bpmn", "Flow_1dng4vx", ERROR, "'Activity_1gone3k'"),
    ("camunda7-external-service.bpmn", "Activity_0ntf3rg", ERROR, "Java delegate"),
    ("camunda7-external-service.bpmn", "Activity_0s3gr7y", ERROR, "groovy"),
    ("camunda7-external-service.bpmn", "Activity_1dmn4kq", ERROR, "DMN"),
    ("camunda8-feel-complex.bpmn", "Flow_1any9sx", ERROR, "some ... satisfies"),
    ("camunda8-feel-complex.bpmn", "Flow_0due3lv", ERROR, "function calls"),
    ("timers-variety.bpmn", "StartEvent_1", ERROR, "cycle timers"),
    ("timers-variety.bpmn", "Event_0bad9pz", ERROR, "'P2X'"),
    ("call-activity-missing.bpmn", "Activity_0call7x", ERROR, "'doesNotExist'"),
    ("bpmnio-simple-flow.bpmn", "Activity_1k9vz3e", WARNING, "no role"),
    # Compensation never runs; choreographies and conversations are ignored.
    ("unsupported-elements.bpmn", "Event_0cmp3bd", ERROR, "compensation is not supported"),
    ("unsupported-elements.bpmn", "Event_0thr4cm", ERROR, "compensation is not supported"),
    ("unsupported-elements.bpmn", "Activity_0rfd7nw", ERROR, "compensation is not supported"),
    ("unsupported-elements.bpmn", "Choreography_0x1bq4t", WARNING, "choreography 'Fee"),
    ("unsupported-elements.bpmn", "Conversation_0fee2qc", WARNING, "conversation 'Fee"),
    # A link no throw reaches; a multi-instance loop only a vendor understands.
    ("link-and-loops.bpmn", "Event_0orph3l", WARNING, "'ToArchive' has no link throw"),
    ("link-and-loops.bpmn", "Activity_0sgn5rv", ERROR,
     "camunda:collection and camunda:elementVariable are not understood"),
    ("link-and-loops.bpmn", "Activity_0sgn5rv", ERROR, "set loopCardinality"),
    # Processes that are not executable say so; their problems only warn.
    ("bpmnio-minimal.bpmn", "Process_1", WARNING, "not executable"),
    ("bpmnio-minimal.bpmn", "StartEvent_1", WARNING, "leads nowhere"),
    ("signavio-export.bpmn", "sid-9D4E2F61-7B83-4C0A-A5E1-2F8C6B3D9A07", WARNING,
     "not executable"),
    ("signavio-export.bpmn", "sid-2C9A5E7B-4F1D-4A63-B8C0-E6D3F1A9B524", WARNING,
     "'yes' (sid-7E3B1D9F-5A2C-4E08-A6F4-9C1B3D5E7A20), 'no'"),
    ("bizagi-style.bpmn", "Id_9d1f3b5a-7c9e-4d02-a4b6-8f0a2c4e6b53", WARNING,
     "no isExecutable attribute"),
    # Throws nothing in the file catches.
    ("message-signal-events.bpmn", "Event_0sth2ld", WARNING, "signal 'DecisionAnnounced'"),
    ("message-signal-events.bpmn", "Event_0esc4nd", WARNING, "escalation 'Late'"),
])
def test_findings_name_the_element(name: str, element: str | None, severity: str,
                                   words: str) -> None:
    findings = _thirdparty()[name]
    assert any(f.element == element and f.severity == severity and words in f.message
               for f in findings), [str(f) for f in findings]


@pytest.mark.parametrize("name", [
    "bpmnio-minimal.bpmn", "bpmnio-simple-flow.bpmn", "no-diagram.bpmn",
    "inclusive-parallel.bpmn", "vietnamese-names.bpmn", "message-signal-events.bpmn",
    "signavio-export.bpmn", "multi-pool-collaboration.bpmn",
])
def test_generic_models_from_other_tools_lint_without_errors(name: str) -> None:
    findings = _thirdparty().get(name, [])
    assert [str(f) for f in findings if f.severity == ERROR] == []


def test_bridged_expressions_pass(tmp_path: Path) -> None:
    # JUEL conditions and timer expressions are translated, so they lint clean.
    findings = _thirdparty()
    assert not [f for f in findings["timers-variety.bpmn"] if f.element == "Event_1due4xw"]
    assert not [f for f in findings.get("camunda8-zeebe.bpmn", []) if "FEEL" in f.message]


def test_single_file_resolves_calls_in_its_folder(capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    assert main(["lint", str(THIRDPARTY / "call-activity-caller.bpmn")]) == 0
    assert "error" not in capsys.readouterr().out


def test_called_process_alone_is_missing(tmp_path: Path) -> None:
    shutil.copy(THIRDPARTY / "call-activity-caller.bpmn", tmp_path)
    findings = lint([tmp_path / "call-activity-caller.bpmn"])
    assert any(f.severity == ERROR and "none of the files" in f.message for f in findings)


def _household(tmp_path: Path, catalogue: bool) -> Path:
    folder = tmp_path / ("with" if catalogue else "without")
    folder.mkdir()
    shutil.copy(DATA / "modeler" / "camunda7-household.bpmn", folder)
    if catalogue:
        shutil.copy(DATA / "modeler" / "catalog.json", folder)
    return folder


def test_one_stop_rules_are_errors_for_catalogue_models_warnings_otherwise(
        tmp_path: Path) -> None:
    used = lint([_household(tmp_path, True)])
    alone = lint([_household(tmp_path, False)])
    late = [f for f in used if "no late path" in f.message]
    assert [f.severity for f in late] == [ERROR] and late[0].element == "household_c7"
    assert [f.severity for f in alone if "no late path" in f.message] == [WARNING]
    assert not [f for f in alone if f.severity == ERROR]


def test_allotments_that_exceed_the_legal_time_are_errors(tmp_path: Path) -> None:
    folder = _household(tmp_path, True)
    catalog = folder / "catalog.json"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace('"3wd"', '"1wd"'),
                       encoding="utf-8")
    findings = [f for f in lint([folder]) if "legal time" in f.message]
    assert len(findings) == 1 and findings[0].severity == ERROR
    assert "16 working hours" in findings[0].message and "1wd" in findings[0].message


def test_user_task_without_role_in_a_catalogue_model_is_an_error(tmp_path: Path) -> None:
    folder = _household(tmp_path, True)
    model = folder / "camunda7-household.bpmn"
    model.write_text(model.read_text(encoding="utf-8").replace(
        ' camunda:candidateGroups="specialist"', ""), encoding="utf-8")
    findings = [f for f in lint([folder]) if "no role" in f.message]
    assert [(f.element, f.severity) for f in findings] == [("Activity_Examine", ERROR)]


def test_dry_run_reports_the_failing_element(tmp_path: Path) -> None:
    model = tmp_path / "early-gateway.bpmn"
    model.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D1"
    targetNamespace="urn:x">
  <bpmn:process id="early" isExecutable="true">
    <bpmn:startEvent id="Start_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="Gateway_Fee"><bpmn:incoming>F1</bpmn:incoming>
      <bpmn:outgoing>F2</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Gateway_Fee"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Gateway_Fee" targetRef="End_1">
      <bpmn:conditionExpression>fee_paid == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:endEvent id="End_1"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>""", encoding="utf-8")
    findings = lint([model])
    dry = [f for f in findings if f.message.startswith("dry run")]
    assert len(dry) == 1 and dry[0].severity == ERROR
    assert dry[0].element == "Gateway_Fee" and "fee_paid" in dry[0].message


def test_missing_path_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                   ) -> None:
    assert main(["lint", str(tmp_path / "nope.bpmn")]) == 1
    assert "no such file or folder" in capsys.readouterr().out


def test_an_untranslatable_timer_is_one_timer_finding() -> None:
    found = [f for f in _thirdparty()["camunda8-feel-complex.bpmn"]
             if f.element == "Event_1tmo5wq"]
    assert [(f.severity, f.message.split('"')[0]) for f in found] == [
        (ERROR, "timer: FEEL expression ")], [str(f) for f in found]
    assert "function calls are not supported" in found[0].message


def test_linked_events_are_not_findings() -> None:
    # The throw 'ToSigning' reaches its catch: neither is reported.
    findings = _thirdparty()["link-and-loops.bpmn"]
    assert not [f for f in findings if f.element in ("Event_0lth2kd", "Event_1lct7wq")]


_LINKED = """
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Throw_1"/>
    <bpmn:intermediateThrowEvent id="Throw_1">
      <bpmn:linkEventDefinition name="ToSigning"/></bpmn:intermediateThrowEvent>
    <bpmn:intermediateCatchEvent id="Catch_1">
      <bpmn:linkEventDefinition name="ToSigning"/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Catch_1" targetRef="Sign"/>
    <bpmn:userTask id="Sign" onestop:role="leader"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Sign" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>"""


def test_a_link_goes_on_at_its_catch_event(tmp_path: Path) -> None:
    model = load_models([_model(tmp_path, "linked", _LINKED)])["linked"]
    instance, _ = Instance.start(model, _dossier_variables())
    assert [t.step.id for t in instance.open_tasks()] == ["Sign"]


def test_a_link_throw_without_its_catch_is_an_error(tmp_path: Path) -> None:
    path = _model(tmp_path, "unlinked", _LINKED.replace('name="ToSigning"/></bpmn:inter'
                                                         'mediateCatchEvent',
                                                         'name="Elsewhere"/></bpmn:inter'
                                                         'mediateCatchEvent'))
    found = [(f.element, f.severity) for f in lint([path]) if "link" in f.message]
    assert found == [("Throw_1", ERROR), ("Catch_1", WARNING)]


def _bizagi(tmp_path: Path) -> Path:
    """The Bizagi model, marked executable."""
    path = tmp_path / "bizagi-style.bpmn"
    text = (THIRDPARTY / "bizagi-style.bpmn").read_text(encoding="utf-8")
    path.write_text(text.replace('name="District one-stop desk">',
                                 'name="District one-stop desk" isExecutable="true">', 1),
                    encoding="utf-8")
    return path


def test_data_objects_are_documentation(tmp_path: Path) -> None:
    # Bizagi draws a data input whose target is the task itself; it must not fail.
    models = load_models([THIRDPARTY / "bizagi-style.bpmn"])
    (model,) = models.values()
    instance, _ = Instance.start(model, _dossier_variables())
    assert instance.completed and not model.spec.data_objects
    assert [str(f) for f in lint([_bizagi(tmp_path)]) if f.severity == ERROR] == []


def test_the_dry_run_starts_with_the_dossier_variables(tmp_path: Path) -> None:
    assert RESERVED_FIELDS <= set(_dossier_variables())
    path = _model(tmp_path, "seeded", """
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Scan"/>
    <bpmn:exclusiveGateway id="Scan" default="F3"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Scan" targetRef="Digitize">
      <bpmn:conditionExpression>len(to_digitize) &gt; 0</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F3" sourceRef="Scan" targetRef="Fee"/>
    <bpmn:userTask id="Digitize" onestop:role="reception"/>
    <bpmn:sequenceFlow id="F4" sourceRef="Digitize" targetRef="Fee"/>
    <bpmn:exclusiveGateway id="Fee" default="F6"/>
    <bpmn:sequenceFlow id="F5" sourceRef="Fee" targetRef="Pay">
      <bpmn:conditionExpression>fee_due &gt; 0</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F6" sourceRef="Fee" targetRef="Examine"/>
    <bpmn:userTask id="Pay" onestop:role="cashier"/>
    <bpmn:sequenceFlow id="F7" sourceRef="Pay" targetRef="Examine"/>
    <bpmn:userTask id="Examine" onestop:sla="propose"/>
    <bpmn:sequenceFlow id="F8" sourceRef="Examine" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>""")
    assert [str(f) for f in lint([path])] == []


def test_a_process_without_is_executable_runs_as_in_the_engine(tmp_path: Path) -> None:
    """The engine runs a process without isExecutable (SpiffWorkflow reads it as true):
    lint checks and dry-runs it like an executable one, and says the attribute is
    missing."""
    path = _model(tmp_path, "sketch", _LINKED.replace("Throw_1", "Sign", 1))
    path.write_text(path.read_text(encoding="utf-8").replace(' isExecutable="true"', ""),
                    encoding="utf-8")
    assert "sketch" in load_models([path])
    found = lint([path])
    assert [(f.element, f.severity) for f in found] == [("sketch", WARNING), ("sketch", WARNING)]
    assert "no isExecutable attribute" in found[0].message
    assert "no late path" in found[1].message
    # It is dry-run: a gateway no flow leaves on a new dossier is an error.
    early = _model(tmp_path, "early", """
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Gateway_Fee"/>
    <bpmn:exclusiveGateway id="Gateway_Fee"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Gateway_Fee" targetRef="End_1">
      <bpmn:conditionExpression>fee_paid == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:endEvent id="End_1"/>""")
    early.write_text(early.read_text(encoding="utf-8").replace(' isExecutable="true"', ""),
                     encoding="utf-8")
    dry = [f for f in lint([early]) if f.severity == ERROR]
    assert [(f.element, f.kind) for f in dry] == [("Gateway_Fee", RUN)], dry


def test_a_process_marked_not_executable_only_warns(tmp_path: Path) -> None:
    path = _model(tmp_path, "sketch", _LINKED.replace('name="ToSigning"/></bpmn:inter'
                                                       'mediateCatchEvent',
                                                       'name="Elsewhere"/></bpmn:inter'
                                                       'mediateCatchEvent'),
                  executable="false")
    # A link that leads nowhere is a problem of the document: the engine refuses it
    # wherever it is. A task's bad role in a process that never runs only warns.
    found = [(f.element, f.severity) for f in lint([path])]
    assert ("Throw_1", ERROR) in found and ("sketch", WARNING) in found
    path = _model(tmp_path, "sketch", _LINKED.replace('onestop:role="leader"',
                                                       'onestop:role="Leader, Deputy"'),
                  executable="false")
    found = lint([path])
    assert [(f.element, f.severity) for f in found if f.element == "Sign"] == [
        ("Sign", WARNING)], [str(f) for f in found]
    assert load_models([path]) == {}


def test_a_called_process_that_calls_another_needs_no_late_path(tmp_path: Path) -> None:
    path = tmp_path / "chain.bpmn"
    path.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:onestop="urn:onestop:bpmn:1" id="D1" targetNamespace="urn:x">
  <bpmn:process id="main" isExecutable="true">
    <bpmn:startEvent id="S1"/><bpmn:sequenceFlow id="F1" sourceRef="S1" targetRef="C1"/>
    <bpmn:callActivity id="C1" calledElement="middle"/>
    <bpmn:sequenceFlow id="F2" sourceRef="C1" targetRef="Late"/>
    <bpmn:userTask id="Late" onestop:role="reception" onestop:sla="apology"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Late" targetRef="E1"/><bpmn:endEvent id="E1"/>
  </bpmn:process>
  <bpmn:process id="middle" isExecutable="true">
    <bpmn:startEvent id="S2"/><bpmn:sequenceFlow id="F4" sourceRef="S2" targetRef="T2"/>
    <bpmn:userTask id="T2" onestop:role="specialist"/>
    <bpmn:sequenceFlow id="F5" sourceRef="T2" targetRef="C2"/>
    <bpmn:callActivity id="C2" calledElement="last"/>
    <bpmn:sequenceFlow id="F6" sourceRef="C2" targetRef="E2"/><bpmn:endEvent id="E2"/>
  </bpmn:process>
  <bpmn:process id="last" isExecutable="true">
    <bpmn:startEvent id="S3"/><bpmn:sequenceFlow id="F7" sourceRef="S3" targetRef="E3"/>
    <bpmn:endEvent id="E3"/>
  </bpmn:process>
</bpmn:definitions>""", encoding="utf-8")
    assert [str(f) for f in lint([path]) if "late path" in f.message] == []


def test_allotment_budget_counts_the_processes_called_from_other_files(tmp_path: Path) -> None:
    """interlevel's steps and those of province_resolution and resolution (two other
    processes, one in another file) fill 1.004227's 10 working days exactly; with 8 days
    the designer hears that the path is too long, naming the caller."""
    folder = tmp_path / "lib"
    shutil.copytree(ROOT / "processes", folder)
    assert lint([folder]) == []
    catalog = folder / "catalog.json"
    text = catalog.read_text(encoding="utf-8")
    at = text.index('"code": "1.004227"')
    start = text.index('"legal_time": "10wd"', at)
    catalog.write_text(text[:start] + '"legal_time": "8wd"' + text[start + 20:],
                       encoding="utf-8")
    findings = lint([folder])
    assert [(f.file, f.element, f.severity) for f in findings] == [
        (str(folder / "interlevel.bpmn"), "interlevel", ERROR)]
    assert "add up to 68 working hours, more than the legal time 8wd (64" in \
        findings[0].message


# -- lint and the engine agree ---------------------------------------------------------

def test_a_broken_process_without_is_executable_is_an_error(tmp_path: Path) -> None:
    """The engine runs a process without isExecutable, so a call to a process no file
    defines is refused: lint says so as an error (it used to skip such a process)."""
    path = _model(tmp_path, "sketch", """
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Call_1"/>
    <bpmn:callActivity id="Call_1" calledElement="nowhere"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Call_1" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>""")
    path.write_text(path.read_text(encoding="utf-8").replace(' isExecutable="true"', ""),
                    encoding="utf-8")
    with pytest.raises(ModelError):
        load_models([path])
    errors = [f for f in lint([path]) if f.severity == ERROR]
    assert [(f.element, f.kind) for f in errors] == [("Call_1", LOAD)]
    assert "'nowhere'" in errors[0].message


def test_what_only_the_engine_refuses_is_reported_from_its_load(tmp_path: Path) -> None:
    """SpiffWorkflow refuses a task with two outgoing flows; no static check of lint
    says so, the engine's own load (run by lint) does."""
    path = _model(tmp_path, "forked", """
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Task_1"/>
    <bpmn:userTask id="Task_1" onestop:role="specialist" onestop:sla="apology"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Task_1" targetRef="End_1"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Task_1" targetRef="End_2"/>
    <bpmn:endEvent id="End_1"/><bpmn:endEvent id="End_2"/>""")
    with pytest.raises(ModelError) as refused:
        load_models([path])
    findings = lint([path])
    assert [(f.element, f.severity, f.kind) for f in findings] == [
        (refused.value.element, ERROR, LOAD)]
    assert refused.value.reason in findings[0].message


def test_a_library_folder_is_linted_with_the_engines_own_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a folder with a catalogue lint calls load_library (what Engine(library=...)
    loads), for files load_models: the same functions, not a copy of them."""
    from onestop.modeling import lint as module

    calls: list[str] = []
    real_library, real_models = module.load_library, module.load_models
    monkeypatch.setattr(module, "load_library",
                        lambda *a, **k: calls.append("load_library") or real_library(*a, **k))
    monkeypatch.setattr(module, "load_models",
                        lambda *a, **k: calls.append("load_models") or real_models(*a, **k))
    folder = _household(tmp_path, True)
    lint([folder])
    assert calls == ["load_library"]
    calls.clear()
    lint([folder / "camunda7-household.bpmn"])
    assert calls == ["load_models"]


def test_what_the_library_check_refuses_is_an_error(tmp_path: Path) -> None:
    """The engine refuses a catalogue process whose step names an agency slot nobody
    fills; lint reports the engine's refusal on that step."""
    folder = _household(tmp_path, True)
    model = folder / "camunda7-household.bpmn"
    model.write_text(model.read_text(encoding="utf-8").replace(
        'camunda:candidateGroups="specialist"',
        'camunda:candidateGroups="specialist" onestop:agency="ward_police"').replace(
        "<bpmn:definitions ", '<bpmn:definitions xmlns:onestop="urn:onestop:bpmn:1" ', 1),
        encoding="utf-8")
    with pytest.raises(ModelError) as refused:
        load_library(folder)
    errors = [f for f in lint([folder]) if f.severity == ERROR]
    assert [(f.element, f.kind) for f in errors if f.kind == LOAD] == [
        ("Activity_Examine", LOAD)], [str(f) for f in errors]
    assert "ward_police" in str(refused.value)


def test_one_stop_rules_the_engine_does_not_enforce_are_rule_errors(tmp_path: Path) -> None:
    folder = _household(tmp_path, True)
    load_library(folder)  # the engine loads it ...
    late = [f for f in lint([folder]) if "no late path" in f.message]
    assert [(f.severity, f.kind) for f in late] == [(ERROR, RULE)]  # ... lint objects


def _late(timer: str, cancel: str, prompt: str) -> str:
    """A resolution with a late path: a boundary timer at ``timer`` leading to a prompt
    with the attributes ``prompt``, then the desk's letter."""
    return f"""
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Resolve"/>
    <bpmn:userTask id="Resolve" onestop:role="specialist"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Resolve" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>
    <bpmn:boundaryEvent id="Warn" attachedToRef="Resolve" cancelActivity="{cancel}">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeDate>{timer}</bpmn:timeDate>
      </bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Warn" targetRef="Ask"/>
    <bpmn:userTask id="Ask" onestop:agency="responsible" onestop:sla="propose" {prompt}/>
    <bpmn:sequenceFlow id="F4" sourceRef="Ask" targetRef="Letter"/>
    <bpmn:userTask id="Letter" onestop:role="receiving_officer" onestop:agency="desk"
                   onestop:sla="apology"/>
    <bpmn:sequenceFlow id="F5" sourceRef="Letter" targetRef="End_2"/>
    <bpmn:endEvent id="End_2"/>"""


def test_a_late_path_that_cannot_comply_is_reported(tmp_path: Path) -> None:
    good = _model(tmp_path, "good", _late(
        "apology_warning", "false",
        'onestop:form="will_be_late:yes|no; delay_reason?; new_appointment?"'))
    assert [str(f) for f in lint([good])] == []
    old = _model(tmp_path, "old", _late("apology_due", "true",
                                        'onestop:role="specialist" '
                                        'onestop:form="delay_reason; new_appointment"'))
    found = {(f.element, f.severity, f.message.split(":")[0].split(",")[0])
             for f in lint([old])}
    assert found == {
        ("Warn", WARNING, "the late path's timer interrupts the activity it is attached to"),
        ("Warn", WARNING, "the warning falls due at apology_due"),
        ("Ask", WARNING, "the prompt cannot be answered 'no' (no will_be_late field)"),
        ("Ask", WARNING, "role 'specialist' is not used"),
    }


def test_a_late_path_marked_with_modeler_properties_is_a_late_path(tmp_path: Path) -> None:
    """The loader reads onestop:sla from a modeler's properties panel as well as from the
    attribute; lint sees a late path either way (it once asked the attribute only, and
    told a designer whose path starts from a message that there was none)."""
    path = tmp_path / "props.bpmn"
    path.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:onestop="urn:onestop:bpmn:1" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    id="D_props" targetNamespace="urn:x">
  <bpmn:message id="M_Apology" name="apology_requested"/>
  <bpmn:process id="props" isExecutable="true">
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Resolve"/>
    <bpmn:userTask id="Resolve" onestop:role="specialist"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Resolve" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>
    <bpmn:boundaryEvent id="Asked" attachedToRef="Resolve" cancelActivity="false">
      <bpmn:messageEventDefinition id="MD" messageRef="M_Apology"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Asked" targetRef="Ask"/>
    <bpmn:userTask id="Ask" onestop:agency="responsible"
                   onestop:form="will_be_late:yes|no; delay_reason?; new_appointment?">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="onestop:sla" value="propose"/>
      </camunda:properties></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="F4" sourceRef="Ask" targetRef="Letter"/>
    <bpmn:userTask id="Letter" onestop:role="receiving_officer" onestop:agency="desk">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="sla" value="apology"/>
      </camunda:properties></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="F5" sourceRef="Letter" targetRef="End_2"/>
    <bpmn:endEvent id="End_2"/>
  </bpmn:process>
</bpmn:definitions>""", encoding="utf-8")
    model = load_models([path])["props"]
    assert model.step("props", "Ask").sla == "propose"          # what the engine reads
    assert [str(f) for f in lint([path])] == []


def test_allotments_count_in_each_agencys_working_day(tmp_path: Path) -> None:
    """A step's allotment in working days is the working time of its agency's calendar,
    as the engine counts its deadline: a resolving agency open ten hours a day gives
    '1wd' ten hours, and two such days no longer fit a two-day legal time."""
    folder = tmp_path / "lib"
    folder.mkdir()
    _model(folder, "long_days", """
    <bpmn:startEvent id="Start_1"/>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Check"/>
    <bpmn:userTask id="Check" onestop:role="receiving_officer" onestop:agency="desk"
                   onestop:allotment="0.5wd" onestop:status="2"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Check" targetRef="Resolve"/>
    <bpmn:userTask id="Resolve" onestop:role="specialist" onestop:allotment="1.5wd"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Resolve" targetRef="End_1"/>
    <bpmn:endEvent id="End_1"/>
    <bpmn:boundaryEvent id="Warn" attachedToRef="Resolve" cancelActivity="false">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeDate>apology_warning</bpmn:timeDate>
      </bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F4" sourceRef="Warn" targetRef="Ask"/>
    <bpmn:userTask id="Ask" onestop:agency="responsible" onestop:sla="propose"
                   onestop:form="will_be_late:yes|no; delay_reason?; new_appointment?"/>
    <bpmn:sequenceFlow id="F5" sourceRef="Ask" targetRef="Letter"/>
    <bpmn:userTask id="Letter" onestop:role="receiving_officer" onestop:agency="desk"
                   onestop:sla="apology"/>
    <bpmn:sequenceFlow id="F6" sourceRef="Letter" targetRef="End_2"/>
    <bpmn:endEvent id="End_2"/>""")
    (folder / "catalog.json").write_text(json.dumps({
        "schema": "onestop-catalog/1",
        "agencies": [{"code": "MC", "name": "Bộ phận một cửa", "level": "commune"},
                     {"code": "KT", "name": "Phòng Kinh tế", "level": "commune"}],
        "procedures": [{"code": "9.100001", "name": "Thủ tục thử", "field": "Thử",
                        "level": "commune", "agency": "KT", "process": "long_days",
                        "legal_time": "2wd", "desks": ["MC"], "components": []}]},
        ensure_ascii=False), encoding="utf-8")
    assert [str(f) for f in lint([folder])] == []               # 4 h + 12 h of 16 h
    (folder / "calendars.json").write_text(json.dumps({"agencies": {"KT": {"sessions": [
        ["07:00", "12:00"], ["13:00", "18:00"]]}}}), encoding="utf-8")
    (finding,) = lint([folder])
    assert finding.severity == ERROR and finding.element == "long_days"
    assert "add up to 19 working hours, more than the legal time 2wd (16 working hours)" \
        in finding.message
