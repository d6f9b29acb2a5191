"""``onestop lint``: check BPMN models and say what is wrong, one line per finding.

Each finding reads ``FILE:ELEMENT_ID: severity: message``. Lint never stops at the first
problem of a file and never raises: whatever a modeler wrote — bpmn.io, Camunda Modeler 7
or 8, other tools' BPMN 2.0 — comes back as findings.

What is checked, per file:

1. the XML is well formed and safe (no DTD, no entities) and is BPMN 2.0;
2. ids are unique and not reserved, every reference resolves, every element is one the
   engine runs; compensation, vendor-only multi-instance loops, gateways whose flows
   lack conditions are errors; link catch events no link reaches, signals and
   escalations nothing catches, start events that lead nowhere, choreographies and
   conversations are warnings. A process that is not executable (``isExecutable`` not
   ``"true"``) is said to be so, and its problems only warn: it never runs;
3. conditions (plain, or Camunda's JUEL ``${...}`` / FEEL ``=...`` when unambiguous),
   scripts and timers parse and pass the restricted evaluator; service tasks name a
   connector; call activities name a process of the files given (for a single file,
   also the other files in its folder);
4. the one-stop rules: every user task has a role, allotments parse and fit the legal
   time, a late path (the apology) exists. They are errors for processes the catalogue
   uses and warnings for any other process;
5. each executable process is loaded and dry-run in the engine up to its first wait
   state, with the variables the engine gives a new dossier; a failure there is a
   finding on the element that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

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
    link_name,
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
_NOT_EXECUTABLE = " (in a process that is not executable)"
#: What modelers draw beside processes that the engine ignores, by element name.
_IGNORED = {"choreography": "choreography", "globalChoreographyTask": "choreography task",
            "globalConversation": "conversation", "conversation": "conversation",
            "subConversation": "sub-conversation", "callConversation": "call conversation"}
#: How a compensation element would behave, by element name (other: an activity).
_COMPENSATION = {"boundaryEvent": "this compensation boundary event never fires",
                 "startEvent": "this compensation start event never fires",
                 "intermediateThrowEvent": "throwing compensation here does nothing",
                 "endEvent": "throwing compensation here does nothing"}


def _dossier_variables() -> dict[str, Any]:
    """The variables the engine gives every new dossier (see ``Engine.receive``), with
    the values of a free paper dossier that hands in nothing: a dry run starts with
    them, so gateways on ``len(to_digitize) > 0`` or ``fee_due > 0`` evaluate."""
    return {"procedure": "0.000000", "channel": 1, "components": [],
            "missing_components": [], "to_digitize": [], "reused": [], "fee_due": 0}


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
    defined, called, elements = _process_index(context)
    for file in files:
        used = _catalog_for(file, catalog, catalogs, findings)
        try:
            findings.extend(_lint_file(file, defined, called, used, elements))
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


def _process_index(files: Iterable[Path]
                   ) -> tuple[dict[str, Path], set[str], dict[str, etree._Element]]:
    """Which file defines each process id (files that do not parse define nothing), which
    processes some call activity calls, and each process's element as read."""
    found: dict[str, Path] = {}
    called: set[str] = set()
    elements: dict[str, etree._Element] = {}
    for file in files:
        try:
            root = parse_file(file)
        except OnestopError:
            continue
        for process in root.iterfind(f"{{{BPMN_NS}}}process"):
            if process.get("id", "") not in found:
                found[process.get("id", "")] = file
                elements[process.get("id", "")] = process
        called.update(c.get("calledElement", "") for c in root.iter(f"{{{BPMN_NS}}}callActivity"))
    return found, called, elements


def _lint_file(file: Path, defined: dict[str, Path], called: set[str],
               catalog: Catalog | None, elements: dict[str, etree._Element]
               ) -> list[Finding]:
    name = str(file)
    try:
        root = parse_file(file)
    except ModelError as exc:
        return [_from_error(exc, name)]
    executable = _executable_processes(root)

    def runs(element_id: str | None) -> bool:
        process = _process_of(root, element_id)
        return process is None or process.get("id") in executable

    findings = [_where(_from_error(p, name), runs(p.element))
                for p in document_problems(root, name)]
    if root.tag != f"{{{BPMN_NS}}}definitions":
        return findings
    findings.extend(_ignored(root, name))
    # Lint checks what runs: the model as bridged for the engine.
    untranslated = set()
    for problem in bridge_problems(root, name):
        untranslated.add(problem.element)
        findings.append(_where(_from_error(problem, name), runs(problem.element)))
    processes = _Processes(root, defined, elements)
    used = _used_processes(catalog, processes)
    for process in root.iterfind(f"{{{BPMN_NS}}}process"):
        if process.get("id") in executable:
            findings.extend(_lint_process(process, processes, name, called, used,
                                          untranslated))
        else:
            findings.append(_not_executable(process, name))
        findings.extend(_where(f, process.get("id") in executable)
                        for f in _structure(process, root, name))
    if not any(f.severity == ERROR for f in findings):
        findings.extend(_load_and_dry_run(file, root, name, defined, executable))
    return findings


def _lint_process(process: etree._Element, processes: "_Processes", name: str,
                  called: set[str], used: dict[str, list[Duration]],
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
            callee = element.get("calledElement")
            if not callee:
                findings.append(Finding(name, element_id, ERROR,
                                        "call activity names no process (calledElement)"))
            elif callee not in processes.defined:
                findings.append(Finding(name, element_id, ERROR,
                                        f"calls process {callee!r}, which none of the files "
                                        f"given (or, for one file, its folder) defines"))
        if element_id not in untranslated:  # already reported as a bridge problem
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
    findings.extend(_one_stop_rules(process, processes, name, infos,
                                    used.get(pid, []), rules, pid in called))
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


def _one_stop_rules(process: etree._Element, processes: "_Processes", name: str,
                    infos: dict, legal_times: list[Duration], rules: str,
                    is_called: bool) -> list[Finding]:
    findings: list[Finding] = []
    pid = process.get("id")
    everything = [process, *processes.callees(process)]
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
        spent = _longest(process, processes, infos, legal_hours)
        if spent > legal_hours:
            findings.append(Finding(name, pid, rules,
                                    f"allotments along the longest path add up to "
                                    f"{_show(spent)} working hours, more than the legal time "
                                    f"{legal} ({_show(legal_hours)} working hours)"))
    return findings


def _longest(process: etree._Element, processes: "_Processes", infos: dict,
             legal_hours: Decimal, depth: int = 0) -> Decimal:
    """The most working hours allotted along a path from start to end, over normal flows
    (not those out of boundary events, which run beside the path); a share counts as that
    share of ``legal_hours``. A step under the transfer cut-off rule (allotment
    ``cutoff``) counts as one working day. A call activity counts as the longest path of
    the process it calls, in this file or another one linted with it."""
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
            return _longest(element, processes, infos, legal_hours, depth + 1)
        if local == "callActivity" and depth < 5:
            callee = processes.find(element.get("calledElement"))
            if callee is not None:
                return _longest(callee, processes, processes.infos(callee), legal_hours,
                                depth + 1)
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
    if not executable:
        return []
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
            Instance.start(model, _dossier_variables(), engine)
        except OnestopError as exc:
            findings.append(Finding(name, getattr(exc, "element", None) or process_id, ERROR,
                                    f"dry run: {getattr(exc, 'reason', None) or exc}"))
    return findings


def _dry_connector(data: dict) -> None:
    """Connectors answer nothing in a dry run."""
    return None


def _from_error(exc: OnestopError, name: str) -> Finding:
    """The error finding for ``exc``, on the file and element it names."""
    message = getattr(exc, "reason", None) or str(exc)
    line = getattr(exc, "line", None)
    if line:
        message = f"{message} (line {line})"
    file = getattr(exc, "file", None) or name
    return Finding(file, getattr(exc, "element", None), ERROR, message)


def _executable_processes(root: etree._Element) -> set[str]:
    """The processes marked ``isExecutable="true"``; a process without the attribute
    counts as not executable (tools that do not run models leave it out)."""
    found = set()
    for process in root.iterfind(f"{{{BPMN_NS}}}process"):
        if (process.get("isExecutable") or "").strip().lower() == "true":
            found.add(process.get("id", ""))
    return found


def _where(finding: Finding, runs: bool) -> Finding:
    """``finding`` as it stands where it is: in a process that is not executable, an
    error only warns, and says why."""
    if runs or finding.severity != ERROR:
        return finding
    return Finding(finding.file, finding.element, WARNING, finding.message + _NOT_EXECUTABLE)


def _not_executable(process: etree._Element, name: str) -> Finding:
    """Say that ``process`` is not executable, and what lint does with it then."""
    if process.get("isExecutable") is None:
        return Finding(name, process.get("id"), WARNING,
                       "process has no isExecutable attribute, so lint treats it as not "
                       "executable and only checks its structure; set isExecutable=\"true\" "
                       "(or \"false\") to say which it is")
    return Finding(name, process.get("id"), WARNING,
                   "process is not executable (isExecutable=\"false\"): lint only checks its "
                   "structure and does not dry-run it; set isExecutable=\"true\" to run it")


def _ignored(root: etree._Element, name: str) -> Iterator[Finding]:
    """Choreographies and conversations, beside the processes or in a collaboration."""
    collaborations = root.iterfind(f"{{{BPMN_NS}}}collaboration")
    for element in (*root, *(e for c in collaborations for e in c)):
        if not isinstance(element.tag, str) or not element.tag.startswith(f"{{{BPMN_NS}}}"):
            continue
        label = _IGNORED.get(etree.QName(element).localname)
        if label is not None:
            named = f" {element.get('name')!r}" if element.get("name") else ""
            yield Finding(name, element.get("id"), WARNING,
                          f"{label}{named} is ignored: onestop runs processes, not "
                          f"choreographies or conversations")


def _structure(process: etree._Element, root: etree._Element,
               name: str) -> Iterator[Finding]:
    """What is wrong with how ``process`` is drawn, executable or not (see :func:`_where`
    for the severity in a process that is not)."""
    yield from _compensation(process, name)
    yield from _multi_instance(process, name)
    yield from _gateways_without_conditions(process, name)
    yield from _unreached_link_catches(process, name)
    yield from _uncaught_throws(process, root, name)
    yield from _dead_starts(process, name)


def _compensation(process: etree._Element, name: str) -> Iterator[Finding]:
    """Compensation events and activities: the engine never compensates."""
    for element in process.iter():
        if not isinstance(element.tag, str):
            continue
        if element.find(f"{{{BPMN_NS}}}compensateEventDefinition") is not None:
            effect = _COMPENSATION.get(etree.QName(element).localname,
                                       "this compensation event does nothing")
        elif (element.get("isForCompensation") or "").strip().lower() == "true":
            effect = "this compensation activity (isForCompensation) never runs"
        else:
            continue
        yield Finding(name, element.get("id"), ERROR,
                      f"compensation is not supported: {effect}; draw the undo step (such "
                      f"as a refund) on the normal flow instead")


def _multi_instance(process: etree._Element, name: str) -> Iterator[Finding]:
    """Multi-instance activities must say how many instances run, in BPMN terms."""
    for loop in process.iter(f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics"):
        owner = loop.getparent()
        cardinality = loop.find(f"{{{BPMN_NS}}}loopCardinality") is not None
        collection = loop.find(f"{{{BPMN_NS}}}loopDataInputRef") is not None
        if cardinality and collection:
            yield Finding(name, owner.get("id"), ERROR,
                          "multi-instance has both loopCardinality and loopDataInputRef; "
                          "keep one")
        elif not cardinality and not collection:
            vendor = _vendor_settings(loop)
            unknown = (f"{' and '.join(vendor)} {'is' if len(vendor) == 1 else 'are'} not "
                       f"understood here, and " if vendor else "")
            yield Finding(name, owner.get("id"), ERROR,
                          f"multi-instance: {unknown}the loop has neither loopCardinality nor "
                          f"loopDataInputRef; set loopCardinality to the number of instances "
                          f"(e.g. len(leaders)), or loopDataInputRef to the list variable to "
                          f"run once per item (e.g. leaders)")


def _vendor_settings(element: etree._Element) -> list[str]:
    """The attributes and extension elements of ``element`` outside BPMN, as written
    (``camunda:collection``, ``zeebe:loopCharacteristics``)."""
    prefixes = {uri: prefix for prefix, uri in element.nsmap.items() if prefix}
    names = [key for key in element.attrib if key.startswith("{")]
    names += [e.tag for e in element.iterfind(f"{{{BPMN_NS}}}extensionElements/*")
              if isinstance(e.tag, str)]
    found = []
    for qualified in names:
        uri = etree.QName(qualified).namespace
        if uri != BPMN_NS:
            found.append(f"{prefixes.get(uri, uri)}:{etree.QName(qualified).localname}")
    return found


def _gateways_without_conditions(process: etree._Element, name: str) -> Iterator[Finding]:
    """Exclusive and inclusive gateways must know which way to go: every outgoing flow
    but the default needs a condition (one flow alone needs none)."""
    for gateway in process.iter(f"{{{BPMN_NS}}}exclusiveGateway",
                                f"{{{BPMN_NS}}}inclusiveGateway"):
        outgoing = _flows(gateway, "sourceRef")
        blind = [f for f in outgoing if f.get("id") != gateway.get("default")
                 and f.find(f"{{{BPMN_NS}}}conditionExpression") is None]
        if len(outgoing) > 1 and blind:
            kind = etree.QName(gateway).localname.removesuffix("Gateway")
            shown = ", ".join(f"{f.get('name')!r} ({f.get('id')})" if f.get("name")
                              else str(f.get("id")) for f in blind)
            these = (f"flows {shown} have no condition and are" if len(blind) > 1
                     else f"flow {shown} has no condition and is")
            yield Finding(name, gateway.get("id"), ERROR,
                          f"{kind} gateway: outgoing {these} not the default flow; give each "
                          f"flow a condition, or make one of them the gateway's default flow")


def _unreached_link_catches(process: etree._Element, name: str) -> Iterator[Finding]:
    """Link catch events that no link throw event reaches (bridging joined the others
    with a sequence flow)."""
    for event in process.iter(f"{{{BPMN_NS}}}intermediateCatchEvent"):
        link = link_name(event)
        if link is not None and not _flows(event, "targetRef"):
            yield Finding(name, event.get("id"), WARNING,
                          f"link catch event {link!r} has no link throw event of the same "
                          f"name in its process, so the steps after it never run")


def _uncaught_throws(process: etree._Element, root: etree._Element,
                     name: str) -> Iterator[Finding]:
    """Signals and escalations thrown in ``process`` that no event of the file catches."""
    for kind, attribute, catch_all in (("signal", "signalRef", False),
                                       ("escalation", "escalationRef", True)):
        definition = f"{{{BPMN_NS}}}{kind}EventDefinition"
        caught = {d.get(attribute) for d in root.iter(definition)
                  if etree.QName(d.getparent()).localname in ("startEvent", "boundaryEvent",
                                                               "intermediateCatchEvent")}
        if catch_all and None in caught:
            continue  # a catcher without a reference catches them all
        for thrown in process.iter(definition):
            event = thrown.getparent()
            if etree.QName(event).localname in ("intermediateThrowEvent", "endEvent") \
                    and thrown.get(attribute) not in caught:
                label = _named(root, thrown.get(attribute))
                yield Finding(name, event.get("id"), WARNING,
                              f"{kind}{label} is thrown here, but no event in this file "
                              f"catches it")


def _dead_starts(process: etree._Element, name: str) -> Iterator[Finding]:
    """Start events no sequence flow leaves (the process would end at once)."""
    for start in process.iter(f"{{{BPMN_NS}}}startEvent"):
        if not _flows(start, "sourceRef"):
            yield Finding(name, start.get("id"), WARNING,
                          "start event leads nowhere: no sequence flow leaves it")


def _flows(node: etree._Element, end: str) -> list[etree._Element]:
    """The sequence flows beside ``node`` whose ``end`` (sourceRef or targetRef) is it."""
    parent = node.getparent()
    if parent is None:
        return []
    return [f for f in parent.iterfind(f"{{{BPMN_NS}}}sequenceFlow")
            if f.get(end) == node.get("id")]


def _named(root: etree._Element, element_id: str | None) -> str:
    """The name of the root-level element ``element_id`` (a signal, an escalation), or
    its id, quoted after a space; empty when there is no id."""
    if not element_id:
        return ""
    for element in root:
        if isinstance(element.tag, str) and element.get("id") == element_id:
            return f" {element.get('name') or element_id!r}"
    return f" {element_id!r}"


def _process_of(root: etree._Element, element_id: str | None) -> etree._Element | None:
    if not element_id:
        return None
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("id") == element_id:
            while element is not None and element.tag != f"{{{BPMN_NS}}}process":
                element = element.getparent()
            return element
    return None


class _Processes:
    """Processes a call activity may name: those of the file being linted (as bridged),
    then those of the other files linted with it (as the index read them)."""

    def __init__(self, root: etree._Element, defined: dict[str, Path],
                 elements: dict[str, etree._Element]) -> None:
        self.root, self.defined, self.elements = root, defined, elements
        self._infos: dict[int, dict] = {}

    def find(self, process_id: str | None) -> etree._Element | None:
        found = _process_by_id(self.root, process_id)
        return found if found is not None else self.elements.get(process_id or "")

    def callees(self, process: etree._Element) -> list[etree._Element]:
        found = []
        for call in process.iter(f"{{{BPMN_NS}}}callActivity"):
            callee = self.find(call.get("calledElement"))
            if callee is not None and callee is not process:
                found.append(callee)
        return found

    def infos(self, process: etree._Element) -> dict:
        """The steps of a called process (those that do not read are left out: the
        callee's own lint reports them)."""
        key = id(process)
        if key not in self._infos:
            lanes, infos = lane_index(process), {}
            for element in flow_nodes(process):
                try:
                    infos[element.get("id")] = step_info(element,
                                                         lane_of(element, lanes, process), "")
                except ModelError:
                    continue
            self._infos[key] = infos
        return self._infos[key]


def _process_by_id(root: etree._Element, process_id: str | None) -> etree._Element | None:
    for process in root.iterfind(f"{{{BPMN_NS}}}process"):
        if process.get("id") == process_id:
            return process
    return None


def _used_processes(catalog: Catalog | None,
                    processes: "_Processes") -> dict[str, list[Duration]]:
    """The processes the catalogue uses, with the legal times of the procedures using
    them, and what they call, in any file linted (with no legal time of their own: their
    allotments count in the caller's budget)."""
    used: dict[str, list[Duration]] = {}
    if catalog is not None:
        for procedure in catalog.procedures.values():
            used.setdefault(procedure.process, []).append(procedure.legal_time)
    todo = list(used)
    while todo:
        process = processes.find(todo.pop())
        for callee in processes.callees(process) if process is not None else ():
            if callee.get("id", "") not in used:
                used[callee.get("id", "")] = []
                todo.append(callee.get("id", ""))
    return used


def format_findings(findings: Iterable[Finding]) -> Iterator[str]:
    """The lines lint prints."""
    for finding in findings:
        yield str(finding)
