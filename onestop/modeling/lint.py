"""``onestop lint``: check BPMN models and say what is wrong, one line per finding.

Each finding reads ``FILE:ELEMENT_ID: severity: message``. Lint never stops at the first
problem of a file and never raises: whatever a modeler wrote — bpmn.io, Camunda Modeler 7
or 8, other tools' BPMN 2.0 — comes back as findings.

**Lint and the engine agree.** Lint runs the loader's own checks (the functions
:func:`~onestop.bpmn.loader.load_models` runs, reporting every problem instead of the
first) and then the very load the engine runs on the same files: ``load_library(folder)``
for a folder with a ``catalog.json`` (or with ``--catalog``), which is what
``Engine(library=folder)`` loads, and ``load_models(files)`` for files (and folders
without a catalogue), with the files that define the processes they call. If that load
fails, its error is a finding too (unless a finding already names it). So a set of files
that lints without errors loads in the engine, and whatever the engine refuses is an
error. Each finding has a ``kind``: ``"load"`` (the engine refuses the model),
``"rule"`` (a one-stop rule the engine does not enforce: a late path, allotments within
the legal time, and a warning's advice) or ``"run"`` (the dry run failed). An error of
kind ``"load"`` is reported exactly when the engine refuses the files.

**Processes without ``isExecutable``.** The engine runs them: SpiffWorkflow reads a
missing attribute as ``true``, as BPMN tools do. Lint does the same — it checks and
dry-runs such a process like any executable one — and warns that the attribute is
missing. A process marked ``isExecutable="false"`` is not run: its problems (other than
those of its document as a whole, which the engine refuses wherever they are) only warn,
unless an executable process calls it.

What is checked, per file:

1. the XML is well formed and safe (no DTD, no entities) and is BPMN 2.0;
2. the document: ids are present where the engine needs them, unique and not reserved;
   every reference resolves; every element is one the engine runs; ``isExecutable`` is
   ``true`` or ``false``; diagram coordinates are numbers; links and Camunda's JUEL
   ``${...}`` / FEEL ``=...`` expressions bridge to the engine. These are errors in any
   process. Choreographies and conversations are ignored (warnings);
3. each process the engine builds (the executable ones and those they call): one-stop
   properties read, service tasks name a connector, scripts are restricted Python,
   call activities name a process of the files given (for a single file, also the other
   files in its folder), timers are not cycles and parse, conditions and loop
   expressions pass the restricted evaluator, no compensation, multi-instance loops say
   how many instances run, exclusive and inclusive gateways' flows have conditions.
   Errors; in a process that is not executable, warnings. Link catch events no link
   reaches, signals and escalations nothing catches and start events that lead nowhere
   are warnings;
4. the one-stop rules (:data:`ONE_STOP_RULES`), for each executable process: every user
   task has a role, a late path (the apology) exists, allotments fit the legal time.
   They are errors for processes the catalogue uses and warnings for any other process;
   the engine refuses a catalogue process's user task without a role, and lint says so
   with kind ``"load"``;
5. the load: what the engine loads (see above);
6. each executable process of a file without errors is dry-run in the engine up to its
   first wait state, with the variables the engine gives a new dossier; a failure there
   is a finding (kind ``"run"``) on the element that failed.

New one-stop rules go in :data:`ONE_STOP_RULES`: a function of a :class:`RuleContext`
that yields findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from lxml import etree

from ..bpmn.extensions import (
    BPMN_NS,
    StepInfo,
    is_cutoff,
    raw_properties,
    step_info,
)
from ..bpmn.loader import (
    FlowIndex,
    ProcessModel,
    bridge_problems,
    built_processes,
    deep_recursion,
    document_problems,
    flow_nodes,
    is_executable,
    lane_index,
    lane_of,
    link_name,
    load_models,
    process_problems,
)
from ..bpmn.runtime import Instance, script_engine
from ..bpmn.xml import parse_file
from ..calendar import Calendars, load_calendars
from ..catalog import Catalog, Procedure, load_catalog
from ..duration import Unit
from ..errors import ModelError, OnestopError
from ..library import CALENDARS_FILE, CATALOG_FILE, load_library
from ..model import Channel
from ..rules import late_path
from ..rules.deadlines import allotment_span
from ..rules.intake import Intake
from ..steps import SLA_PARTS
from ..timevalue import uses_sla

ERROR, WARNING = "error", "warning"
#: Kinds of finding: the engine refuses the model; a rule the engine does not enforce
#: (and warnings' advice); the dry run failed.
LOAD, RULE, RUN = "load", "rule", "run"
_TASKS = ("userTask", "manualTask")
_NOT_EXECUTABLE = " (in a process that is not executable)"
_PROCESS = f"{{{BPMN_NS}}}process"
#: What modelers draw beside processes that the engine ignores, by element name.
_IGNORED = {"choreography": "choreography", "globalChoreographyTask": "choreography task",
            "globalConversation": "conversation", "conversation": "conversation",
            "subConversation": "sub-conversation", "callConversation": "call conversation"}


def _dossier_variables() -> dict[str, Any]:
    """The variables the engine gives every new dossier (:mod:`onestop.rules.intake`),
    with the values of a free paper dossier that hands in nothing: a dry run starts with
    them, so gateways on ``len(to_digitize) > 0`` or ``fee_due > 0`` evaluate."""
    return Intake("0.000000", Channel.IN_PERSON, (), (), (), (), 0).variables()


@dataclass(frozen=True)
class Finding:
    """One problem lint found; ``kind`` says whether the engine refuses it (``"load"``),
    it breaks a rule the engine does not enforce (``"rule"``) or the dry run failed
    (``"run"``)."""

    file: str
    element: str | None
    severity: str
    message: str
    kind: str = RULE

    def __str__(self) -> str:
        return f"{self.file}:{self.element or '-'}: {self.severity}: {self.message}"


def lint(paths: Sequence[str | Path], catalog: str | Path | None = None) -> list[Finding]:
    """Lint the BPMN files in ``paths`` (files or folders); the findings, by file."""
    findings: list[Finding] = []
    for unit in _units(paths, catalog, findings):
        try:
            findings.extend(unit.lint())
        except Exception as exc:  # noqa: BLE001 - lint reports, it does not crash
            findings.append(Finding(str(unit.label), None, ERROR,
                                    f"internal error while linting: {type(exc).__name__}: "
                                    f"{exc}", LOAD))
    return findings


def _units(paths: Sequence[str | Path], catalog: str | Path | None,
           findings: list[Finding]) -> list["_Unit"]:
    """What the engine would load together: each folder; the files given, together."""
    units: list[_Unit] = []
    loose: list[Path] = []
    explicit = Path(catalog) if catalog is not None else None
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.bpmn") if p.is_file())
            library = explicit is not None or (path / CATALOG_FILE).is_file()
            units.append(_Unit(path, files, files, path if library else None, explicit))
        elif path.is_file():
            loose.append(path)
        else:
            findings.append(Finding(str(path), None, ERROR, "no such file or folder", LOAD))
    if loose:
        context = list(loose)
        if len(paths) == 1 and len(loose) == 1:
            context.extend(p for p in sorted(loose[0].parent.glob("*.bpmn"))
                           if p.is_file() and p != loose[0])
        units.append(_Unit(loose[0], loose, context, None, explicit))
    return units


@dataclass
class _Unit:
    """Files the engine loads together: a folder (a process library when it has a
    catalogue, loaded with ``load_library``) or the files given (``load_models``)."""

    label: Path
    files: list[Path]
    #: The files call activities may name: the unit's, and for one file its folder's.
    context: list[Path]
    library: Path | None
    catalog: Path | None
    roots: dict[Path, etree._Element | ModelError] = field(default_factory=dict)
    defined: dict[str, Path] = field(default_factory=dict)
    elements: dict[str, etree._Element] = field(default_factory=dict)
    called: set[str] = field(default_factory=set)
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    catalogs: dict[Path, Catalog | None] = field(default_factory=dict)
    calendars: dict[Path, Calendars] = field(default_factory=dict)

    def lint(self) -> list[Finding]:
        for file in self.context:
            self.roots[file] = _parse(file)
        self._index()
        built = set(built_processes(self.elements))
        for file in self.files:
            self.findings.setdefault(str(file), [])
        for file in self.files:
            try:
                found = _lint_file(file, self, built)
            except Exception as exc:  # noqa: BLE001 - lint reports, it does not crash
                found = [Finding(str(file), None, ERROR, f"internal error while linting: "
                                                         f"{type(exc).__name__}: {exc}", LOAD)]
            self.findings[str(file)].extend(found)
        models = self._load()
        for file in self.files:
            self.findings[str(file)].extend(self._dry_run(file, models))
        return [f for found in self.findings.values() for f in found]

    def _index(self) -> None:
        """Which file defines each process id (files that do not parse define nothing),
        which processes some call activity calls, and each process's element."""
        for file, root in self.roots.items():
            if isinstance(root, ModelError):
                continue
            for process in root.iterfind(_PROCESS):
                if process.get("id", "") not in self.defined:
                    self.defined[process.get("id", "")] = file
                    self.elements[process.get("id", "")] = process
            self.called.update(c.get("calledElement", "")
                               for c in root.iter(f"{{{BPMN_NS}}}callActivity"))

    def catalog_for(self, file: Path) -> Catalog | None:
        """The catalogue whose processes get the one-stop rules as errors: the one given,
        else the library's, else (for files) the one beside the file."""
        if self.catalog is not None:
            path = self.catalog
        elif self.library is not None:
            path = self.library / CATALOG_FILE
        else:
            path = file.parent / CATALOG_FILE
        if path not in self.catalogs:
            self.catalogs[path] = None
            kind = LOAD if self.library is not None else RULE
            if path.is_file():
                try:
                    self.catalogs[path] = load_catalog(path)
                except OnestopError as exc:
                    self._add(Finding(str(path), None, ERROR, str(exc), kind))
            elif self.catalog is not None:
                self._add(Finding(str(path), None, ERROR, "catalogue file not found", kind))
        return self.catalogs[path]

    def calendars_for(self, file: Path) -> Calendars:
        """The agencies' calendars the engine would count in: the library's
        calendars.json (beside its catalogue), else the national calendar."""
        folder = self.library if self.library is not None else \
            (self.catalog.parent if self.catalog is not None else file.parent)
        path = folder / CALENDARS_FILE
        if path not in self.calendars:
            self.calendars[path] = Calendars()
            if path.is_file():
                try:
                    self.calendars[path] = load_calendars(path)
                except OnestopError as exc:
                    self._add(Finding(str(path), None, ERROR, str(exc),
                                      LOAD if self.library is not None else RULE))
        return self.calendars[path]

    def _add(self, finding: Finding) -> None:
        self.findings.setdefault(finding.file, []).append(finding)

    def needed(self, files: Iterable[Path]) -> list[Path]:
        """``files`` and, transitively, the files defining the processes they call."""
        found = list(dict.fromkeys(files))
        for file in found:  # grows while iterating
            root = self.roots.get(file)
            if root is None or isinstance(root, ModelError):
                continue
            for call in root.iter(f"{{{BPMN_NS}}}callActivity"):
                callee = self.defined.get(call.get("calledElement", ""))
                if callee is not None and callee not in found:
                    found.append(callee)
        return found

    def _load(self) -> Mapping[str, ProcessModel] | None:
        """Run the engine's load on the unit; its failure becomes a finding."""
        try:
            if self.library is not None:
                return load_library(self.library, catalog=self.catalog).models
            return load_models(self.needed(self.files))
        except OnestopError as exc:
            self._refused(exc)
        except Exception as exc:  # noqa: BLE001 - a loader bug: reported, not raised
            self._add(Finding(str(self.label), None, ERROR,
                              f"internal error while loading: {type(exc).__name__}: {exc}",
                              LOAD))
        return None

    def _refused(self, exc: OnestopError) -> None:
        """Report what the engine refused, unless a finding already names it."""
        failure = _from_error(exc, str(self.label))
        same = [f for f in self.findings.get(failure.file, [])
                if f.severity == ERROR and f.kind == LOAD and f.element == failure.element]
        if not same:
            self._add(failure)

    def _dry_run(self, file: Path, models: Mapping[str, ProcessModel] | None
                 ) -> list[Finding]:
        """Start each executable process of ``file`` (a file without errors) with the
        variables of a new dossier, up to its first wait state."""
        root = self.roots.get(file)
        if isinstance(root, ModelError) or root is None \
                or any(f.severity == ERROR for f in self.findings[str(file)]):
            return []
        executable = sorted(p.get("id", "") for p in root.iterfind(_PROCESS)
                            if is_executable(p))
        if not executable:
            return []
        if models is None or not all(p in models for p in executable):
            try:  # another file of the unit failed to load: load this one alone
                models = load_models(self.needed([file]))
            except OnestopError as exc:
                self._refused(exc)
                return []
        engine = script_engine({n: _dry_connector for m in models.values()
                                for n in m.connectors()})
        findings: list[Finding] = []
        for process_id in executable:
            model = models.get(process_id)
            if model is None:
                continue
            try:
                with deep_recursion(len(model.spec.task_specs)):
                    Instance.start(model, _dossier_variables(), engine)
            except OnestopError as exc:
                findings.append(Finding(str(file), getattr(exc, "element", None) or process_id,
                                        ERROR, f"dry run: {getattr(exc, 'reason', None) or exc}",
                                        RUN))
            except RecursionError:
                findings.append(Finding(str(file), process_id, ERROR,
                                        "dry run: the process never reaches a wait state: it "
                                        "runs steps without end (a loop with no user task, "
                                        "timer or message on it?)", RUN))
            except Exception as exc:  # noqa: BLE001 - an engine bug: reported, not raised
                findings.append(Finding(str(file), process_id, ERROR,
                                        f"dry run: internal error: {type(exc).__name__}: "
                                        f"{exc}", RUN))
        return findings


def _parse(file: Path) -> etree._Element | ModelError:
    try:
        return parse_file(file)
    except ModelError as exc:
        return exc


def _lint_file(file: Path, unit: _Unit, built: set[str]) -> list[Finding]:
    name = str(file)
    root = unit.roots[file]
    if isinstance(root, ModelError):
        return [_from_error(root, name)]
    findings = [_from_error(p, name) for p in document_problems(root, name)]
    if root.tag != f"{{{BPMN_NS}}}definitions":
        return findings
    findings.extend(_ignored(root, name))
    # Lint checks what runs: the model as bridged for the engine.
    untranslated = set()
    for problem in bridge_problems(root, name):
        untranslated.add(problem.element)
        findings.append(_from_error(problem, name))
    processes = _Processes(root, unit.elements)
    catalog = unit.catalog_for(file)
    used = _used_processes(catalog, processes)
    for process in root.iterfind(_PROCESS):
        pid = process.get("id", "")
        runs = pid in built
        steps: dict[str, StepInfo] = {}
        flows = FlowIndex(process)
        findings.extend(_where(_from_error(p, name), runs)
                        for p in process_problems(process, name, defined=unit.elements,
                                                  skip=untranslated, steps=steps, flows=flows))
        if is_executable(process):
            if process.get("isExecutable") is None:
                findings.append(_no_executable_flag(process, name))
            context = RuleContext(
                process=process, file=name, processes=processes,
                steps=steps, procedures=used.get(pid, []),
                calendars=unit.calendars_for(file),
                severity=ERROR if pid in used else WARNING, called=pid in unit.called,
                enforced=unit.library is not None and pid in used, catalog=catalog)
            for rule in ONE_STOP_RULES:
                findings.extend(rule(context))
        else:
            findings.append(_not_executable(process, name))
        for check in _DRAWING_CHECKS:
            findings.extend(check(process, root, name, flows))
    return findings


@dataclass(frozen=True)
class RuleContext:
    """What a one-stop rule sees of an executable process."""

    process: etree._Element
    file: str
    #: The processes of the file and of the files linted with it (for call activities).
    processes: "_Processes"
    #: The one-stop properties of the process's flow nodes, by id (those that read).
    steps: Mapping[str, StepInfo]
    #: The catalogue procedures that use the process (none for one only called).
    procedures: list[Procedure]
    #: The working calendars of the agencies (the library's calendars.json, if any).
    calendars: Calendars
    #: ERROR when the catalogue uses the process (or a process that calls it), else WARNING.
    severity: str
    #: Whether some call activity calls the process.
    called: bool
    #: Whether the engine's load enforces the catalogue's checks on the process (a
    #: library folder, and a process the catalogue uses).
    enforced: bool
    catalog: Catalog | None


#: A one-stop rule: the findings it has on one executable process.
Rule = Callable[[RuleContext], Iterable[Finding]]


def _roles(context: RuleContext) -> Iterator[Finding]:
    """Every user or manual task has a role, but a step proposing a new appointment
    (``onestop:sla="propose"``), which the regime's apology role performs. The engine
    refuses a catalogue process's task without one (``check_library``)."""
    for element_id, info in context.steps.items():
        if info.kind in _TASKS and info.role is None and info.sla != "propose":
            yield Finding(context.file, element_id, context.severity,
                          "user task has no role: set onestop:role, a role property or "
                          "candidate group, or put it in a lane named by a role",
                          LOAD if context.enforced else RULE)


def _late_path(context: RuleContext) -> Iterator[Finding]:
    """A process with user tasks has a late path (unless a caller's late path covers it),
    and its late path can comply with the law: the warning timer does not interrupt the
    resolution and falls due early enough (``apology_warning``, not ``apology_due``, the
    latest lawful instant itself), and the prompt it leads to can be answered ``no``
    (``will_be_late``), so only dossiers that will be late get a letter."""
    everything = [context.process, *context.processes.callees(context.process)]
    timers = (f"{{{BPMN_NS}}}timeDate", f"{{{BPMN_NS}}}timeDuration")
    # Steps marked in any form the loader reads (attribute, properties), and timers on
    # the service-level instants, as the engine recognises them.
    late = any(
        any(s.sla in SLA_PARTS for s in
            (context.steps if p is context.process else context.processes.infos(p)).values())
        or any(uses_sla(t.text or "") for t in p.iter(*timers))
        for p in everything)
    has_user_tasks = any(p.find(f".//{{{BPMN_NS}}}userTask") is not None for p in everything)
    # A called process is covered by its caller's late path.
    if has_user_tasks and not late and not context.called:
        yield Finding(context.file, context.process.get("id"), context.severity,
                      "no late path: add a non-interrupting timer 'apology_warning' on the "
                      "resolution, leading to a step with onestop:sla=\"propose\" (asking "
                      "will_be_late:yes|no) and one with onestop:sla=\"apology\"")
    successors: dict[str, list[str]] = {}
    for flow in context.process.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        successors.setdefault(flow.get("sourceRef") or "", []).append(flow.get("targetRef") or "")
    for event in context.process.iter(f"{{{BPMN_NS}}}boundaryEvent"):
        text = " ".join((t.text or "") for t in event.iter(*timers))
        if not text.strip():
            continue
        first, _letter = late_path.path_after(event.get("id") or "",
                                              lambda node: successors.get(node, []),
                                              context.steps.get)
        if first is None:
            continue
        where = event.get("id")
        if (event.get("cancelActivity") or "true").strip() != "false":
            yield Finding(context.file, where, context.severity,
                          "the late path's timer interrupts the activity it is attached to: "
                          "make it non-interrupting (cancelActivity=\"false\"), the "
                          "resolution goes on while the agency explains the delay")
        if "apology_due" in text and "apology_warning" not in text:
            yield Finding(context.file, where, WARNING,
                          "the warning falls due at apology_due, the latest lawful instant "
                          "for the apology letter itself, so the explanation and the letter "
                          "cannot both be done by then: write apology_warning")
        if not any(f.name == late_path.WILL_BE_LATE for f in first.form):
            yield Finding(context.file, first.id, WARNING,
                          "the prompt cannot be answered 'no' (no will_be_late field): every "
                          "dossier still in resolution at the warning would get a new "
                          "appointment; add will_be_late:yes|no to its form")
    for element_id, info in context.steps.items():
        if info.sla == "propose" and info.kind in _TASKS:
            element = context.process.find(f".//*[@id='{element_id}']")
            own = raw_properties(element) if element is not None else {}
            if "role" in own:
                yield Finding(context.file, element_id, WARNING,
                              f"role {own['role']!r} is not used: the explanation of a delay "
                              f"is given by the regime's apology_role (the head of the "
                              f"responsible agency; 'leader' by default)")


def _budget(context: RuleContext) -> Iterator[Finding]:
    """The allotments along the longest path fit the legal time of each procedure using
    the process: each step's allotment is the working time the engine gives it
    (:func:`~onestop.rules.deadlines.allotment_span`) in its agency's calendar for that
    procedure, the legal time the working time of the desk's calendar."""
    seen = set()
    for proc in context.procedures:
        legal = proc.legal_time
        if legal.unit is Unit.CALENDAR_DAYS:
            continue  # calendar time cannot be compared with working-time allotments
        key = (legal, tuple(sorted(proc.agencies.items())), proc.agency, proc.desks[:1])
        if key in seen:
            continue
        seen.add(key)
        desk = context.calendars.for_agency(proc.desks[0] if proc.desks else None)
        budget = allotment_span(desk, "100%", legal)
        spent = _longest(context.process, context.processes, context.steps,
                         _Spans(proc, context.calendars))
        if spent > budget:
            yield Finding(context.file, context.process.get("id"), context.severity,
                          f"allotments along the longest path add up to {_hours_of(spent)} "
                          f"working hours, more than the legal time {legal} "
                          f"({_hours_of(budget)} working hours"
                          + (f", procedure {proc.code}" if len(context.procedures) > 1
                             else "") + ")")


#: The one-stop rules lint applies to each executable process, in order.
ONE_STOP_RULES: tuple[Rule, ...] = (_roles, _late_path, _budget)


class _Spans:
    """The working time each step's allotment gives it, for one procedure: in the
    calendar of the agency that does it (its slot resolved as the engine resolves it)."""

    def __init__(self, proc: Procedure, calendars: Calendars) -> None:
        self.proc, self.calendars = proc, calendars

    def of(self, step: StepInfo) -> int:
        if not step.allotment or step.sla:
            return 0
        slot = step.agency or "resolver"
        agency = {"desk": self.proc.desks[0] if self.proc.desks else None,
                  "resolver": self.proc.agency, "responsible": self.proc.agency,
                  }.get(slot, self.proc.agencies.get(slot, slot))
        calendar = self.calendars.for_agency(agency)
        if is_cutoff(step.allotment):
            # Same day, or the next morning's run: at most one working day.
            return calendar.day_length
        return allotment_span(calendar, step.allotment, self.proc.legal_time)


def _longest(process: etree._Element, processes: "_Processes", infos: Mapping[str, StepInfo],
             spans: _Spans, depth: int = 0) -> int:
    """The most working time (microseconds) allotted along a path from start to end, over
    normal flows (not those out of boundary events, which run beside the path). A call
    activity counts as the longest path of the process it calls, in this file or another
    one linted with it. A loop counts once. (Iterative: a chain of thousands of steps is
    fine.)"""
    nodes = {e.get("id"): e for e in process if isinstance(e.tag, str) and e.get("id")}
    targets: dict[str, list[str]] = {}
    for flow in process.iterfind(f"{{{BPMN_NS}}}sequenceFlow"):
        source = nodes.get(flow.get("sourceRef"))
        if source is None or etree.QName(source).localname == "boundaryEvent":
            continue
        targets.setdefault(flow.get("sourceRef", ""), []).append(flow.get("targetRef", ""))

    def weight(node_id: str) -> int:
        element = nodes[node_id]
        local = etree.QName(element).localname
        if local in ("subProcess", "transaction") and depth < 5:
            return _longest(element, processes, infos, spans, depth + 1)
        if local == "callActivity" and depth < 5:
            callee = processes.find(element.get("calledElement"))
            if callee is not None:
                return _longest(callee, processes, processes.infos(callee), spans, depth + 1)
        info = infos.get(node_id)
        return spans.of(info) if info is not None else 0

    memo: dict[str, int] = {}
    visiting: set[str] = set()

    def best(start: str) -> int:
        # A depth-first walk with its own stack: (node, its targets, the best tail yet).
        if start in memo:
            return memo[start]
        if start not in nodes:
            return 0
        visiting.add(start)
        stack: list[tuple[str, Iterator[str], int]] = [
            (start, iter(targets.get(start, [])), 0)]
        while stack:
            node, pending, tail = stack[-1]
            for target in pending:
                if target in memo:
                    tail = max(tail, memo[target])
                elif target in nodes and target not in visiting:
                    stack[-1] = (node, pending, tail)
                    visiting.add(target)
                    stack.append((target, iter(targets.get(target, [])), 0))
                    break
                # else: a loop back (counted once), or a flow to nowhere
            else:
                stack.pop()
                visiting.discard(node)
                memo[node] = weight(node) + tail
                if stack:
                    parent, parent_pending, parent_tail = stack[-1]
                    stack[-1] = (parent, parent_pending, max(parent_tail, memo[node]))
        return memo[start]

    starts = [i for i, e in nodes.items() if etree.QName(e).localname == "startEvent"]
    return max((best(s) for s in starts), default=0)


def _hours_of(span: int) -> str:
    """Microseconds of working time as working hours (at most two decimals)."""
    return f"{(Decimal(span) / 3_600_000_000).quantize(Decimal('0.01')).normalize():f}"


def _dry_connector(data: dict[str, object]) -> None:
    """Connectors answer nothing in a dry run."""
    return None


def _from_error(exc: OnestopError, name: str, kind: str = LOAD) -> Finding:
    """The error finding for ``exc``, on the file and element it names."""
    message = getattr(exc, "reason", None) or str(exc)
    line = getattr(exc, "line", None)
    if line:
        message = f"{message} (line {line})"
    file = getattr(exc, "file", None) or name
    return Finding(file, getattr(exc, "element", None), ERROR, message, kind)


def _where(finding: Finding, runs: bool) -> Finding:
    """``finding`` as it stands where it is: in a process that the engine never runs,
    an error only warns, and says why."""
    if runs or finding.severity != ERROR:
        return finding
    return Finding(finding.file, finding.element, WARNING, finding.message + _NOT_EXECUTABLE,
                   RULE)


def _no_executable_flag(process: etree._Element, name: str) -> Finding:
    return Finding(name, process.get("id"), WARNING,
                   "process has no isExecutable attribute: the engine runs it (as BPMN "
                   "tools do), so lint checks and dry-runs it; set isExecutable=\"true\" to "
                   "say so, or \"false\" if it is only a sketch")


def _not_executable(process: etree._Element, name: str) -> Finding:
    """Say that ``process`` is not executable, and what lint does with it then."""
    return Finding(name, process.get("id"), WARNING,
                   "process is not executable (isExecutable=\"false\"): the engine does not "
                   "run it, so its problems only warn and it is not dry-run; set "
                   "isExecutable=\"true\" to run it")


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


def _unreached_link_catches(process: etree._Element, root: etree._Element, name: str,
                            flows: FlowIndex) -> Iterator[Finding]:
    """Link catch events that no link throw event reaches (bridging joined the others
    with a sequence flow)."""
    for event in process.iter(f"{{{BPMN_NS}}}intermediateCatchEvent"):
        link = link_name(event)
        if link is not None and not flows.flows(event, "targetRef"):
            yield Finding(name, event.get("id"), WARNING,
                          f"link catch event {link!r} has no link throw event of the same "
                          f"name in its process, so the steps after it never run")


def _uncaught_throws(process: etree._Element, root: etree._Element, name: str,
                     flows: FlowIndex) -> Iterator[Finding]:
    """Signals and escalations thrown in ``process`` that no event of the file catches."""
    for kind, attribute, catch_all in (("signal", "signalRef", False),
                                       ("escalation", "escalationRef", True)):
        definition = f"{{{BPMN_NS}}}{kind}EventDefinition"
        thrown_here = [d for d in process.iter(definition)
                       if d.getparent() is not None and etree.QName(d.getparent()).localname
                       in ("intermediateThrowEvent", "endEvent")]
        if not thrown_here:
            continue
        caught = {d.get(attribute) for d in root.iter(definition)
                  if d.getparent() is not None and etree.QName(d.getparent()).localname
                  in ("startEvent", "boundaryEvent", "intermediateCatchEvent")}
        if catch_all and None in caught:
            continue  # a catcher without a reference catches them all
        for thrown in thrown_here:
            if thrown.get(attribute) not in caught:
                event = thrown.getparent()
                label = _named(root, thrown.get(attribute))
                yield Finding(name, event.get("id"), WARNING,
                              f"{kind}{label} is thrown here, but no event in this file "
                              f"catches it")


def _dead_starts(process: etree._Element, root: etree._Element, name: str,
                 flows: FlowIndex) -> Iterator[Finding]:
    """Start events no sequence flow leaves (the process would end at once)."""
    for start in process.iter(f"{{{BPMN_NS}}}startEvent"):
        if not flows.flows(start, "sourceRef"):
            yield Finding(name, start.get("id"), WARNING,
                          "start event leads nowhere: no sequence flow leaves it")


#: How a process is drawn that deserves a warning (whether or not it is executable).
_DRAWING_CHECKS: tuple[Callable[[etree._Element, etree._Element, str, FlowIndex],
                                Iterable[Finding]], ...] = (
    _unreached_link_catches, _uncaught_throws, _dead_starts)


def _named(root: etree._Element, element_id: str | None) -> str:
    """The name of the root-level element ``element_id`` (a signal, an escalation), or
    its id, quoted after a space; empty when there is no id."""
    if not element_id:
        return ""
    for element in root:
        if isinstance(element.tag, str) and element.get("id") == element_id:
            return f" {element.get('name') or element_id!r}"
    return f" {element_id!r}"


class _Processes:
    """Processes a call activity may name: those of the file being linted (as bridged),
    then those of the other files linted with it."""

    def __init__(self, root: etree._Element, elements: Mapping[str, etree._Element]) -> None:
        self.root, self.elements = root, elements
        self._infos: dict[int, dict[str, StepInfo]] = {}
        self._own = {p.get("id"): p for p in root.iterfind(_PROCESS)}

    def find(self, process_id: str | None) -> etree._Element | None:
        found = self._own.get(process_id)
        return found if found is not None else self.elements.get(process_id or "")

    def callees(self, process: etree._Element) -> list[etree._Element]:
        found = []
        for call in process.iter(f"{{{BPMN_NS}}}callActivity"):
            callee = self.find(call.get("calledElement"))
            if callee is not None and callee is not process:
                found.append(callee)
        return found

    def infos(self, process: etree._Element, name: str = "") -> dict[str, StepInfo]:
        """The steps of a process (those that do not read are left out: the process's
        own checks report them)."""
        key = id(process)
        if key not in self._infos:
            lanes, infos = lane_index(process), {}
            for element in flow_nodes(process):
                try:
                    infos[element.get("id", "")] = step_info(
                        element, lane_of(element, lanes, process), name)
                except ModelError:
                    continue
            self._infos[key] = infos
        return self._infos[key]


def _used_processes(catalog: Catalog | None,
                    processes: "_Processes") -> dict[str, list[Procedure]]:
    """The processes the catalogue uses, with the procedures using them, and what they
    call, in any file linted (with no procedure of their own: their allotments count in
    the caller's budget)."""
    used: dict[str, list[Procedure]] = {}
    if catalog is not None:
        for procedure in sorted(catalog.procedures.values(), key=lambda p: p.code):
            used.setdefault(procedure.process, []).append(procedure)
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
