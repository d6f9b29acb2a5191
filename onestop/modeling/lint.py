"""``onestop lint``: check BPMN models and say what is wrong, one line per finding.

Each finding reads ``FILE:ELEMENT_ID: severity: message``. Lint never stops at the first
problem of a file and never raises: whatever a modeler wrote — bpmn.io, Camunda Modeler 7
or 8, other tools' BPMN 2.0 — comes back as findings.

What is checked, per file:

1. the XML is well formed and safe (no DTD, no entities) and is BPMN 2.0;
2. ids are unique and not reserved, every reference resolves, every element is one the
   engine runs (elements of non-executable processes only warn: they never run);
3. conditions (plain, or Camunda's JUEL ``${...}`` / FEEL ``=...`` when unambiguous),
   scripts and timers parse and pass the restricted evaluator; service tasks name a
   connector; call activities name a process of the files given (for a single file,
   also the other files in its folder);
4. the one-stop rules: every user task has a role, allotments parse and fit the legal
   time, a late path (the apology) exists. They are errors for processes the catalogue
   uses and warnings for any other process;
5. each executable process is loaded and dry-run in the engine up to its first wait
   state; a failure there is a finding on the element that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from lxml import etree

from ..bpmn import sandbox
from ..bpmn.connectors import connector_of
from ..bpmn.extensions import BPMN_NS, ONESTOP_NS, allotment_share, is_cutoff, step_info
from ..bpmn.loader import (
    bridge_problems,
    check_timer,
    document_problems,
    flow_nodes,
    lane_index,
    lane_of,
    load_models,
)
from ..bpmn.runtime import Instance, script_engine
from ..catalog import Catalog, load_catalog
from ..duration import Duration, Unit
from ..errors import ModelError, OnestopError
from ..bpmn.xml import parse_file

ERROR, WARNING = "error", "warning"
_HOURS_PER_DAY = Decimal(8)
_TASKS = ("userTask", "manualTask")
_ACTIVITIES = ("task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask",
               "receiveTask", "callActivity", "subProcess", "transaction")


@dataclass(frozen=True)
class Finding:
    """One problem lint found."""

    file: str
    element: str | None
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.element or '-'}: {self.severity}: {self.message}"


def lint(paths: Sequence[str | Path], catalog: str | Path | None = None) -> list[Finding]:
    """Lint the BPMN files in ``paths`` (files or folders); the findings, by file."""
    findings: list[Finding] = []
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.bpmn") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            findings.append(Finding(str(path), None, ERROR, "no such file or folder"))
    context = list(files)
    if len(paths) == 1 and len(files) == 1:
        context.extend(p for p in sorted(files[0].parent.glob("*.bpmn"))
                       if p.is_file() and p != files[0])
    catalogs: dict[Path, Catalog | None] = {}
    defined, called = _process_index(context)
    for file in files:
        used = _catalog_for(file, catalog, catalogs, findings)
        try:
            findings.extend(_lint_file(file, defined, called, used))
        except Exception as exc:  # noqa: BLE001 - lint reports, it does not crash
            findings.append(Finding(str(file), None, ERROR,
                                    f"internal error while linting: {type(exc).__name__}: "
                                    f"{exc}"))
    return findings


def _catalog_for(file: Path, explicit: str | Path | None, cache: dict[Path, Catalog | None],
                 findings: list[Finding]) -> Catalog | None:
    path = Path(explicit) if explicit is not None else file.parent / "catalog.json"
    if path not in cache:
        cache[path] = None
        if path.is_file():
            try:
                cache[path] = load_catalog(path)
            except OnestopError as exc:
                findings.append(Finding(str(path), None, ERROR, str(exc)))
        elif explicit is not None:
            findings.append(Finding(str(path), None, ERROR, "catalogue file not found"))
    return cache[path]


def _process_index(files: Iterable[Path]) -> tuple[dict[str, Path], set[str]]:
    """Which file defines each process id (files that do not parse define nothing), and
    which processes some call activity calls."""
    found: dict[str, Path] = {}
    called: set[str] = set()
    for file in files:
        try:
            root = parse_file(file)
        except OnestopError:
            continue
        for process in root.iterfind(f"{{{BPMN_NS}}}process"):
            found.setdefault(process.get("id", ""), file)
        called.update(c.get("calledElement", "") for c in root.iter(f"{{{BPMN_NS}}}callActivity"))
    return found, called


def _lint_file(file: Path, defined: dict[str, Path], called: set[str],
               catalog: Catalog | None) -> list[Finding]:
    name = str(file)
    try:
        root = parse_file(file)
    except ModelError as exc:
        return [_from_error(exc, name)]
    findings: list[Finding] = []
    executable = _executable_processes(root)

    def severity_at(element_id: str | None) -> str:
        process = _process_of(root, element_id)
        if process is not None and process.get("id") not in executable:
            return WARNING
        return ERROR

    for problem in document_problems(root, name):
        finding = _from_error(problem, name)
        severity = severity_at(problem.element)
        suffix = " (in a process that is not executable)" if severity == WARNING else ""
        findings.append(Finding(name, finding.element, severity, finding.message + suffix))
    if root.tag != f"{{{BPMN_NS}}}definitions":
        return findings
    # Lint checks what runs: the model as bridged for the engine.
    untranslated = set()
    for problem in bridge_problems(root, name):
        untranslated.add(problem.element)
        findings.append(_from_error(problem, name, severity_at(problem.element)))
    used = _used_processes(catalog)
    for process in root.iterfind(f"{{{BPMN_NS}}}process"):
        # What a used process calls is used too, with the caller's legal time.
        for callee in _callees(process, root):
            if process.get("id") in used:
                used.setdefault(callee.get("id", ""), [])
    for process in root.iterfind(f"{{{BPMN_NS}}}process"):
        if process.get("id") in executable:
            findings.extend(_lint_process(process, root, name, defined, called, used,
                                          untranslated))
    if not any(f.severity == ERROR for f in findings):
        findings.extend(_load_and_dry_run(file, root, name, defined, executable))
    return findings


def _lint_process(process: etree._Element, root: etree._Element, name: str,
                  defined: dict[str, Path], called: set[str],
                  used: dict[str, list[Duration]],
                  untranslated: set[str | None]) -> list[Finding]:
    pid = process.get("id", "")
    rules = ERROR if pid in used else WARNING
    findings: list[Finding] = []
    lanes = lane_index(process)
    infos = {}
    for element in flow_nodes(process):
        local = etree.QName(element).localname
        element_id = element.get("id")
        try:
            info = step_info(element, lane_of(element, lanes, process), name)
            infos[element_id] = info
        except ModelError as exc:
            findings.append(_from_error(exc, name))
            continue
        if local in _TASKS and info.role is None:
            findings.append(Finding(name, element_id, rules,
                                    "user task has no role: set onestop:role, a role "
                                    "property or candidate group, or put it in a lane "
                                    "named by a role"))
        if local == "serviceTask":
            try:
                if connector_of(element) is None:
                    findings.append(Finding(name, element_id, ERROR,
                                            "service task names no connector (onestop:"
                                            "connector, camunda:topic or zeebe:taskDefinition "
                                            "type)"))
            except ValueError as exc:
                findings.append(Finding(name, element_id, ERROR, f"service task {exc}"))
        if local == "scriptTask":
            findings.extend(_script(element, name))
        if local == "callActivity":
            called = element.get("calledElement")
            if not called:
                findings.append(Finding(name, element_id, ERROR,
                                        "call activity names no process (calledElement)"))
            elif called not in defined:
                findings.append(Finding(name, element_id, ERROR,
                                        f"calls process {called!r}, which none of the files "
                                        f"given (or, for one file, its folder) defines"))
        findings.extend(_timers(element, info.clock, name))
    for condition in process.iter(f"{{{BPMN_NS}}}conditionExpression"):
        owner = condition.getparent()
        if owner is not None and owner.get("id") in untranslated:
            continue
        try:
            sandbox.check(condition.text or "", "eval")
        except ModelError as exc:
            findings.append(Finding(name, owner.get("id") if owner is not None else None,
                                    ERROR, f"condition: {exc.reason}"))
    findings.extend(_one_stop_rules(process, root, name, infos, used.get(pid, []), rules,
                                    pid in called))
    return findings


def _script(element: etree._Element, name: str) -> list[Finding]:
    language = (element.get("scriptFormat") or "python").strip().lower()
    if language not in ("python", "python3", "text/x-python"):
        return [Finding(name, element.get("id"), ERROR,
                        f"script in {language!r} cannot run here; scripts are restricted "
                        f"Python")]
    script = element.find(f"{{{BPMN_NS}}}script")
    try:
        sandbox.check(script.text or "" if script is not None else "", "exec")
    except ModelError as exc:
        return [Finding(name, element.get("id"), ERROR, f"script: {exc.reason}")]
    return []


def _timers(element: etree._Element, clock: str | None, name: str) -> list[Finding]:
    findings = []
    for definition in element.iterfind(f"{{{BPMN_NS}}}timerEventDefinition"):
        if definition.find(f"{{{BPMN_NS}}}timeCycle") is not None:
            findings.append(Finding(name, element.get("id"), ERROR,
                                    "cycle timers (timeCycle) are not supported; use a "
                                    "duration or a date timer"))
            continue
        value = definition.find(f"{{{BPMN_NS}}}timeDuration")
        if value is None:
            value = definition.find(f"{{{BPMN_NS}}}timeDate")
        try:
            check_timer(value.text or "" if value is not None else "", clock, name,
                        element.get("id", ""), element.sourceline)
        except ModelError as exc:
            findings.append(_from_error(exc, name))
    return findings


def _one_stop_rules(process: etree._Element, root: etree._Element, name: str,
                    infos: dict, legal_times: list[Duration], rules: str,
                    is_called: bool) -> list[Finding]:
    findings: list[Finding] = []
    pid = process.get("id")
    callees = _callees(process, root)
    everything = [process, *callees]
    late = any(
        (e.get(f"{{{ONESTOP_NS}}}sla") or "") in ("propose", "apology")
        or any("apology_due" in (t.text or "") for t in e.iter(f"{{{BPMN_NS}}}timeDate",
                                                                 f"{{{BPMN_NS}}}timeDuration"))
        for p in everything for e in p.iter() if isinstance(e.tag, str))
    has_user_tasks = any(p.find(f".//{{{BPMN_NS}}}userTask") is not None for p in everything)
    # A called process is covered by its caller's late path.
    if has_user_tasks and not late and not is_called:
        findings.append(Finding(name, pid, rules,
                                "no late path: add a non-interrupting timer 'apology_due' on "
                                "the resolution, leading to a step with onestop:sla="
                                "\"propose\" and one with onestop:sla=\"apology\""))
    for legal in dict.fromkeys(legal_times):
        if legal.unit is Unit.CALENDAR_DAYS:
            continue  # calendar time cannot be compared with working-time allotments
        legal_hours = _hours(legal)
        spent = _longest(process, root, infos, legal_hours)
        if spent > legal_hours:
            findings.append(Finding(name, pid, rules,
                                    f"allotments along the longest path add up to "
                                    f"{_show(spent)} working hours, more than the legal time "
                                    f"{legal} ({_show(legal_hours)} working hours)"))
    return findings


def _longest(process: etree._Element, root: etree._Element, infos: dict,
             legal_hours: Decimal, depth: int = 0) -> Decimal:
    """The most working hours allotted along a path from start to end, over normal flows
    (not those out of boundary events, which run beside the path); a share counts as that
    share of ``legal_hours``. A step under the transfer cut-off rule (allotment
    ``cutoff``) counts as one working day."""
    nodes = {e.get("id"): e for e in process if isinstance(e.tag, str) and e.get("id")}
    targets: dict[str, list[str]] = {}
    for flow in process.iterfind(f"{{{BPMN_NS}}}sequenceFlow"):
        source = nodes.get(flow.get("sourceRef"))
        if source is None or etree.QName(source).localname == "boundaryEvent":
            continue
        targets.setdefault(flow.get("sourceRef", ""), []).append(flow.get("targetRef", ""))
    memo: dict[str, Decimal] = {}
    visiting: set[str] = set()

    def weight(node_id: str) -> Decimal:
        element = nodes[node_id]
        local = etree.QName(element).localname
        if local in ("subProcess", "transaction") and depth < 5:
            return _longest(element, root, infos, legal_hours, depth + 1)
        if local == "callActivity" and depth < 5:
            callee = _process_by_id(root, element.get("calledElement"))
            if callee is not None:
                return _longest(callee, root, infos, legal_hours, depth + 1)
        info = infos.get(node_id)
        if info is None or not info.allotment or info.sla:
            return Decimal(0)
        if is_cutoff(info.allotment):
            # Same day, or the next morning's run: at most one working day.
            return _HOURS_PER_DAY
        if "%" in info.allotment:
            return Decimal(str(allotment_share(info.allotment))) * legal_hours
        return _hours(Duration.parse(info.allotment))

    def best(node_id: str) -> Decimal:
        if node_id in memo:
            return memo[node_id]
        if node_id in visiting or node_id not in nodes:
            return Decimal(0)  # a loop back: counted once
        visiting.add(node_id)
        tail = max((best(t) for t in targets.get(node_id, [])), default=Decimal(0))
        visiting.discard(node_id)
        memo[node_id] = weight(node_id) + tail
        return memo[node_id]

    starts = [i for i, e in nodes.items() if etree.QName(e).localname == "startEvent"]
    return max((best(s) for s in starts), default=Decimal(0))


def _hours(duration: Duration) -> Decimal:
    if duration.unit is Unit.WORKING_HOURS:
        return duration.value
    if duration.unit is Unit.SAME_DAY:
        return _HOURS_PER_DAY
    return duration.value * _HOURS_PER_DAY


def _show(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _load_and_dry_run(file: Path, root: etree._Element, name: str, defined: dict[str, Path],
                      executable: set[str]) -> list[Finding]:
    needed = {file}
    for call in root.iter(f"{{{BPMN_NS}}}callActivity"):
        callee = defined.get(call.get("calledElement", ""))
        if callee is not None:
            needed.add(callee)
    try:
        models = load_models(sorted(needed))
    except OnestopError as exc:
        return [_from_error(exc, name)]
    findings: list[Finding] = []
    engine = script_engine({n: _dry_connector for m in models.values()
                            for n in m.connectors()})
    for process_id in sorted(executable):
        model = models.get(process_id)
        if model is None:
            continue
        try:
            Instance.start(model, {"procedure": "0.000000", "channel": 1, "components": [],
                                   "missing_components": []}, engine)
        except OnestopError as exc:
            findings.append(Finding(name, getattr(exc, "element", None) or process_id, ERROR,
                                    f"dry run: {getattr(exc, 'reason', None) or exc}"))
    return findings


def _dry_connector(data: dict) -> None:
    """Connectors answer nothing in a dry run."""
    return None


def _from_error(exc: OnestopError, name: str, severity: str = ERROR) -> Finding:
    message = getattr(exc, "reason", None) or str(exc)
    line = getattr(exc, "line", None)
    if line:
        message = f"{message} (line {line})"
    file = getattr(exc, "file", None) or name
    return Finding(file, getattr(exc, "element", None), severity, message)


def _executable_processes(root: etree._Element) -> set[str]:
    found = set()
    for process in root.iterfind(f"{{{BPMN_NS}}}process"):
        if (process.get("isExecutable") or "true").strip().lower() == "true":
            found.add(process.get("id", ""))
    return found


def _process_of(root: etree._Element, element_id: str | None) -> etree._Element | None:
    if not element_id:
        return None
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("id") == element_id:
            while element is not None and element.tag != f"{{{BPMN_NS}}}process":
                element = element.getparent()
            return element
    return None


def _process_by_id(root: etree._Element, process_id: str | None) -> etree._Element | None:
    for process in root.iterfind(f"{{{BPMN_NS}}}process"):
        if process.get("id") == process_id:
            return process
    return None


def _callees(process: etree._Element, root: etree._Element) -> list[etree._Element]:
    found = []
    for call in process.iter(f"{{{BPMN_NS}}}callActivity"):
        callee = _process_by_id(root, call.get("calledElement"))
        if callee is not None and callee is not process:
            found.append(callee)
    return found


def _used_processes(catalog: Catalog | None) -> dict[str, list[Duration]]:
    used: dict[str, list[Duration]] = {}
    if catalog is not None:
        for procedure in catalog.procedures.values():
            used.setdefault(procedure.process, []).append(procedure.legal_time)
    return used


def format_findings(findings: Iterable[Finding]) -> Iterator[str]:
    """The lines lint prints."""
    for finding in findings:
        yield str(finding)
