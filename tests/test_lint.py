"""``onestop lint``: one line per finding, never a traceback, exit 1 only on errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from onestop.cli import main
from onestop.modeling.lint import ERROR, WARNING, Finding, lint

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
THIRDPARTY = DATA / "thirdparty"
LINE = re.compile(r"^(?P<file>[^:]+):(?P<element>[^:]+): (?P<severity>error|warning): .+$")


def _by_file(findings: list[Finding]) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for finding in findings:
        found.setdefault(Path(finding.file).name, []).append(finding)
    return found


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
])
def test_findings_name_the_element(name: str, element: str | None, severity: str,
                                   words: str) -> None:
    findings = _by_file(lint([THIRDPARTY]))[name]
    assert any(f.element == element and f.severity == severity and words in f.message
               for f in findings), [str(f) for f in findings]


@pytest.mark.parametrize("name", [
    "bpmnio-minimal.bpmn", "bpmnio-simple-flow.bpmn", "no-diagram.bpmn",
    "inclusive-parallel.bpmn", "vietnamese-names.bpmn", "message-signal-events.bpmn",
    "signavio-export.bpmn", "multi-pool-collaboration.bpmn",
])
def test_generic_models_from_other_tools_lint_without_errors(name: str) -> None:
    findings = _by_file(lint([THIRDPARTY])).get(name, [])
    assert [str(f) for f in findings if f.severity == ERROR] == []


def test_bridged_expressions_pass(tmp_path: Path) -> None:
    # JUEL conditions and timer expressions are translated, so they lint clean.
    findings = _by_file(lint([THIRDPARTY]))
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
