"""Load BPMN files into executable process models, refusing anything unclear or unsafe.

Loading checks, in order: safe XML; the document (known elements only, every element the
engine needs has an id, every id reference resolves, the diagram's coordinates are
numbers); the bridge to the engine (JUEL and FEEL expressions, links); each process the
engine builds (the executable ones and the processes they call: its steps' one-stop
properties, connectors, scripts, timers, conditions and constructs the engine cannot run,
see :func:`process_problems`); then SpiffWorkflow builds the specs and every condition and
script it will evaluate passes the restricted evaluator's check. Each failure is a
:class:`~onestop.errors.ModelError` naming the file, the element id and the line, and
nothing else escapes: whatever goes wrong on the way (a value SpiffWorkflow cannot read,
an expression nested too deeply to parse) is reported the same way.

``onestop lint`` calls these same checks (and :func:`load_models` itself), so what it
calls an error is what the engine refuses.

A process is executable unless it says ``isExecutable="false"`` (SpiffWorkflow's reading,
and BPMN tools' default); a process that is not executable and that no executable process
calls is only checked as part of its document.

A loaded :class:`ProcessModel` carries a canonical serialized form (``body``) and its
SHA-256 (``spec_hash``): the store keeps each distinct model once, and dossiers refer to
it by hash, so a dossier keeps the model version it started with.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Container, Iterable, Iterator, Mapping

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from ..errors import ModelError, OnestopError
from . import sandbox
from .conditions import ConditionSyntaxError, dialect, translate
from .connectors import ConnectorTask, ConnectorTaskParser, adopt_automatic, connector_of
from .extensions import BPMN_NS, NSMAP, StepInfo, step_info
from .serialization import spec_registry
from .timers import IsoDuration, adopt_timers, literal, timer_expression
from .xml import parse_file

#: Flow nodes the engine runs.
SUPPORTED_FLOW_NODES = frozenset({
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
    "boundaryEvent", "userTask", "manualTask", "task", "scriptTask", "sendTask",
    "receiveTask", "serviceTask", "callActivity", "subProcess", "transaction", "exclusiveGateway",
    "parallelGateway", "inclusiveGateway", "eventBasedGateway",
})
#: Other elements allowed inside a process: structure, data and annotations.
STRUCTURAL = frozenset({
    "sequenceFlow", "laneSet", "lane", "flowNodeRef", "childLaneSet", "documentation",
    "extensionElements", "textAnnotation", "association", "dataObject",
    "dataObjectReference", "dataStoreReference", "ioSpecification", "property", "group",
    "incoming", "outgoing", "text", "category", "categoryValue",
})
_NOT_YET = {
    "businessRuleTask": "business rule (DMN) tasks are not supported",
    "complexGateway": "complex gateways are not supported; use exclusive, inclusive or "
                      "parallel gateways",
    "adHocSubProcess": "ad-hoc sub-processes are not supported",
}
_ID_ATTRIBUTES = ("sourceRef", "targetRef", "attachedToRef", "processRef", "bpmnElement",
                  "messageRef", "signalRef", "errorRef", "escalationRef", "dataObjectRef",
                  "dataStoreRef", "default")
_ID_TEXT_ELEMENTS = ("flowNodeRef", "incoming", "outgoing", "sourceRef", "targetRef")
#: Names SpiffWorkflow gives its own internal tasks; a model element with one of these ids
#: would silently replace them.
_RESERVED_IDS = frozenset({"Start", "End", "Root"})
_RESERVED_SUFFIXES = (".EndJoin", ".BoundaryEventSplit", ".BoundaryEventJoin")


class _Parser(SpiffBpmnParser):
    """SpiffWorkflow's parser, with service tasks that call onestop connectors."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ConnectorTaskParser, ConnectorTask),
    }


@dataclass(frozen=True)
class ProcessModel:
    """An executable process, its call-activity dependencies and its one-stop steps."""

    process_id: str
    name: str
    file: str
    spec_hash: str
    body: bytes
    spec: BpmnProcessSpec
    subprocess_specs: Mapping[str, BpmnProcessSpec]
    steps: Mapping[str, Mapping[str, StepInfo]]

    def step(self, process_id: str, element_id: str) -> StepInfo | None:
        """The step info of ``element_id`` in ``process_id`` (this model or a callee)."""
        found = self.steps.get(process_id, {}).get(element_id)
        if found is None:
            # An embedded sub-process runs under its own id; its nodes are the process's.
            for per_process in self.steps.values():
                found = per_process.get(element_id)
                if found is not None:
                    break
        return found

    def connectors(self) -> dict[str, str]:
        """The connectors the model's service tasks call, each with an element calling it."""
        found: dict[str, str] = {}
        for spec in (self.spec, *self.subprocess_specs.values()):
            for task_spec in spec.task_specs.values():
                if isinstance(task_spec, ConnectorTask):
                    found.setdefault(task_spec.operation_name, task_spec.bpmn_id)
        return found

    def user_steps(self) -> list[StepInfo]:
        """Every user or manual task of the process and its callees."""
        return [s for per in self.steps.values() for s in per.values()
                if s.kind in ("userTask", "manualTask")]


def load_models(files: Iterable[str | Path]) -> dict[str, ProcessModel]:
    """Load the executable processes of ``files``; call activities resolve across them.

    Raises :class:`~onestop.errors.ModelError` (naming file, element and line where
    known) for anything the engine cannot run, and nothing else."""
    documents: dict[str, _Document] = {}
    processes: dict[str, tuple[_Document, etree._Element]] = {}
    for path in files:
        name = str(path)
        document = documents[name] = _Document(name, parse_file(path))
        with _reported(documents, name):
            _check_document(document.root, name)
            bridge_model(document.root, name)
            for process in document.root.iterfind(_PROCESS):
                processes.setdefault(process.get("id", ""), (document, process))
    elements = {pid: process for pid, (_, process) in processes.items()}
    steps: dict[str, dict[str, StepInfo]] = {}
    for process_id in built_processes(elements):
        document, process = processes[process_id]
        with _reported(documents, document.name, process_id):
            for problem in process_problems(process, document.name, defined=elements,
                                            steps=steps.setdefault(process_id, {})):
                raise problem
    with deep_recursion(sum(d.size for d in documents.values())):
        return _build_models(documents, processes, steps)


def _build_models(documents: Mapping[str, "_Document"],
                  processes: Mapping[str, tuple["_Document", etree._Element]],
                  steps: dict[str, dict[str, StepInfo]]) -> dict[str, ProcessModel]:
    """SpiffWorkflow's part of :func:`load_models`: build, check and serialize the specs
    of checked documents (``steps``: the steps of the processes checked, by id)."""
    parser = _Parser()
    for each in documents.values():
        with _reported(documents, each.name):
            parser.add_bpmn_xml(each.root, filename=each.name)

    def steps_of(process_id: str) -> dict[str, StepInfo]:
        if process_id not in steps:
            found = processes.get(process_id)
            steps[process_id] = _steps_of(found[1], found[0].name) if found else {}
        return steps[process_id]

    models: dict[str, ProcessModel] = {}
    for process_id in parser.get_process_ids():
        document = processes[process_id][0] if process_id in processes else None
        name = document.name if document is not None else "?"
        with _reported(documents, name, process_id):
            spec = parser.get_spec(process_id)
            subprocesses = parser.get_subprocess_specs(process_id)
        for callee, callee_spec in subprocesses.items():
            if callee_spec is None:
                raise ModelError(f"calls process {callee!r}, which none of the files loaded "
                                 f"with it defines", file=name,
                                 element=_caller(document.root if document else None, callee))
        for built in (spec, *subprocesses.values()):
            depth = longest_path(built)
            if depth > MAX_DEPTH:
                found = processes.get(built.name)
                raise ModelError(
                    f"process {built.name!r} runs up to {depth} steps in a row (its tasks, "
                    f"events and gateways, with the engine's own); the engine follows at "
                    f"most {MAX_DEPTH} in one process: move part of it into a called "
                    f"process", file=found[0].name if found else name, element=built.name)
        with _reported(documents, name, process_id):
            used = {process_id, *subprocesses}
            model_steps = {pid: steps_of(pid) for pid in used}
            _unique_tasks(process_id, sorted(used), model_steps, processes, name)
            roles = {sid: s.role for per in model_steps.values() for sid, s in per.items()}
            for built in (spec, *subprocesses.values()):
                adopt_automatic(built, roles)
            _check_expressions(spec, name, document, model_steps[process_id])
            for callee_spec in subprocesses.values():
                found = processes.get(callee_spec.name)
                origin = found[0] if found is not None else document
                _check_expressions(callee_spec, origin.name if origin else name, origin,
                                   model_steps.get(callee_spec.name, {}))
            models[process_id] = _build(process_id, spec.description or process_id, name,
                                        spec, dict(subprocesses), model_steps)
    return models


def _unique_tasks(process_id: str, used: Iterable[str],
                  steps: Mapping[str, Mapping[str, StepInfo]],
                  processes: Mapping[str, tuple["_Document", etree._Element]],
                  name: str) -> None:
    """Refuse a user or manual task id that the process and a process it calls both use:
    an officer's task is known by its step id (its form, its role), which must say which
    one."""
    seen: dict[str, str] = {}
    for pid in used:
        for sid, info in steps.get(pid, {}).items():
            if info.kind not in ("userTask", "manualTask"):
                continue
            other = seen.setdefault(sid, pid)
            if other != pid:
                found = processes.get(pid)
                raise ModelError(f"user task id {sid!r} is used both in process {other!r} "
                                 f"and in process {pid!r}, which run together when "
                                 f"{process_id!r} runs; give one of them another id",
                                 file=found[0].name if found else name, element=sid)


#: The longest chain of steps one process may have: SpiffWorkflow looks for a workflow's
#: ready and unfinished tasks no deeper than 1,000 levels of its task tree (each step is
#: a level; a loop adds its steps again each time round), and past that it silently stops
#: advancing or takes the process for finished.
MAX_DEPTH = 600


def longest_path(spec: BpmnProcessSpec) -> int:
    """The most task specs along one path of ``spec`` from its start, loops counted once
    (a depth-first walk that leaves out the flows closing a loop)."""
    start = getattr(spec, "start", None)
    if start is None:
        return 0
    best: dict[str, int] = {}
    state = {start.name: 1}
    stack = [(start, iter(start.outputs))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            state[node.name] = 2
            best[node.name] = 1 + max((best[c.name] for c in node.outputs
                                       if state.get(c.name) == 2 and c.name in best),
                                      default=0)
        elif child.name not in state:
            state[child.name] = 1
            stack.append((child, iter(child.outputs)))
    return best.get(start.name, 0)


class _Document:
    """A parsed model file, with the line of each id (indexed on first use)."""

    def __init__(self, name: str, root: etree._Element) -> None:
        self.name, self.root = name, root
        self._lines: dict[str, int] | None = None

    @property
    def size(self) -> int:
        """How many elements the document has (what SpiffWorkflow may recurse over)."""
        return int(self.root.xpath("count(//*)"))

    @property
    def lines(self) -> dict[str, int]:
        if self._lines is None:
            self._lines = id_lines(self.root)
        return self._lines

    def line(self, element_id: str | None) -> int | None:
        return self.lines.get(element_id) if element_id else None


def id_lines(root: etree._Element) -> dict[str, int]:
    """The line of each id of a document (its first use), in one pass."""
    lines: dict[str, int] = {}
    for element in root.iter():
        element_id = element.get("id") if isinstance(element.tag, str) else None
        if element_id is not None and element_id not in lines:
            lines[element_id] = element.sourceline or 0
    return lines


@contextmanager
def _reported(documents: Mapping[str, _Document], name: str,
              element: str | None = None) -> Iterator[None]:
    """Turn whatever goes wrong in the block into a :class:`ModelError` on ``name``
    (and ``element``, when known)."""
    try:
        yield
    except ModelError:
        raise
    except OnestopError as exc:  # another kind of refusal, said as the loader says it
        document = documents.get(name)
        raise ModelError(getattr(exc, "reason", None) or str(exc), file=name, element=element,
                         line=document.line(element) if document else None) from None
    except ValidationException as exc:
        raise _from_spiff(exc, name, documents) from None
    except SpiffWorkflowException as exc:
        document = documents.get(name)
        raise ModelError(str(exc), file=name, element=element,
                         line=document.line(element) if document else None) from None
    except Exception as exc:  # noqa: BLE001 - a model never crashes the loader
        document = documents.get(name)
        raise unexpected(exc, name, element,
                         document.line(element) if document else None) from None


_TOO_DEEP = ("nested or chained too deeply to load (Python's recursion limit was reached); "
             "split it into called processes or shorter expressions")


def unexpected(exc: BaseException, file: str | None, element: str | None = None,
               line: int | None = None) -> ModelError:
    """The :class:`ModelError` for an exception a check did not expect, naming where."""
    if isinstance(exc, RecursionError):
        reason = _TOO_DEEP
    elif isinstance(exc, MemoryError):
        reason = "too large to load (out of memory)"
    else:
        reason = f"cannot be read: {type(exc).__name__}: {exc}"
    return ModelError(reason, file=file, element=element, line=line)


#: Python frames SpiffWorkflow's parser may stack per element of a document: it parses a
#: process by recursing from each node to the next along the flows.
_FRAMES_PER_ELEMENT = 4
_RECURSION_CEILING = 1_000_000
_recursion_lock = threading.Lock()
_recursion_users = 0
_recursion_saved = 0


@contextmanager
def deep_recursion(elements: int) -> Iterator[None]:
    """Let SpiffWorkflow recurse along the paths of documents of ``elements`` elements.

    SpiffWorkflow parses a process (and prepares a run) by recursing from each node to
    the next, so a chain of a few hundred steps exceeds Python's default recursion
    limit. Inside the block the limit is raised to what the documents may need (then
    restored); its calls are pure-Python recursion, which does not grow the C stack."""
    global _recursion_users, _recursion_saved
    wanted = min(_RECURSION_CEILING, 1_000 + _FRAMES_PER_ELEMENT * max(elements, 0))
    with _recursion_lock:
        if _recursion_users == 0:
            _recursion_saved = sys.getrecursionlimit()
        _recursion_users += 1
        if wanted > sys.getrecursionlimit():
            sys.setrecursionlimit(wanted)
    try:
        yield
    finally:
        with _recursion_lock:
            _recursion_users -= 1
            if _recursion_users == 0:
                sys.setrecursionlimit(_recursion_saved)


def model_from_body(body: bytes) -> ProcessModel:
    """Rebuild a model from the bytes the store keeps."""
    try:
        document = json.loads(zlib.decompress(body))
    except (zlib.error, ValueError) as exc:
        raise ModelError(f"stored model is unreadable: {exc}") from None
    registry = spec_registry()
    spec = registry.restore(document["spec"])
    subprocesses = {k: registry.restore(v) for k, v in document["subprocess_specs"].items()}
    steps = {pid: {sid: StepInfo.from_dict(s) for sid, s in per.items()}
             for pid, per in document["steps"].items()}
    return ProcessModel(document["process_id"], document["name"], document["file"],
                        hashlib.sha256(zlib.decompress(body)).hexdigest(), body, spec,
                        subprocesses, steps)


def _build(process_id: str, name: str, file: str, spec: BpmnProcessSpec,
           subprocesses: dict[str, BpmnProcessSpec],
           steps: dict[str, dict[str, StepInfo]]) -> ProcessModel:
    registry = spec_registry()
    # The path a file was loaded from is not part of what the model means.
    for each in (spec, *subprocesses.values()):
        each.file = os.path.basename(each.file or "")
    document: dict[str, Any] = {
        "process_id": process_id,
        "name": name,
        "file": os.path.basename(file),
        "spec": registry.convert(spec),
        "subprocess_specs": {k: registry.convert(v) for k, v in sorted(subprocesses.items())},
        "steps": {pid: {sid: s.to_dict() for sid, s in sorted(per.items())}
                  for pid, per in sorted(steps.items())},
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode("utf-8")
    return ProcessModel(process_id, name, file, hashlib.sha256(canonical).hexdigest(),
                        zlib.compress(canonical, 6), spec, subprocesses, steps)


def _check_document(root: etree._Element, name: str) -> None:
    for problem in document_problems(root, name):
        raise problem


def bridge_model(root: etree._Element, name: str) -> None:
    """Adapt, in place, what modelers write and the engine can run unambiguously;
    refuse what it cannot (a :class:`ModelError` naming the element). See
    :func:`bridge_problems`."""
    for problem in bridge_problems(root, name):
        raise problem


def bridge_problems(root: etree._Element, name: str) -> Iterator[ModelError]:
    """Bridge a parsed model to the engine, in place, yielding what cannot be bridged:

    * flow conditions and timer expressions in Camunda's JUEL (``${...}``) or FEEL
      (``=...``) become the restricted Python the engine evaluates;
    * a link throw event goes on at the link catch event of the same name in its
      process (or sub-process), as if a sequence flow joined them;
    * data stores and data objects (a registry, a form drawn beside a task) are
      documentation here: they and their data associations are left out of what runs.
    """
    for condition in root.iter(f"{{{BPMN_NS}}}conditionExpression", f"{{{BPMN_NS}}}timeDate",
                               f"{{{BPMN_NS}}}timeDuration"):
        owner = condition.getparent()
        if owner is not None and etree.QName(owner).localname == "timerEventDefinition":
            owner = owner.getparent()
        owner_id = owner.get("id") if owner is not None else None
        language = (condition.get("language") or "").strip().lower()
        text = condition.text or ""
        if language and language not in _CONDITION_LANGUAGES:
            yield ModelError(f"expression in script language {language!r} cannot run here; "
                             f"write an expression such as outcome == \"accept\"",
                             file=name, element=owner_id, line=condition.sourceline)
            continue
        try:
            if dialect(text) == "python":
                continue
            condition.text = translate(text)
        except ConditionSyntaxError as exc:
            timer = condition.tag != f"{{{BPMN_NS}}}conditionExpression"
            yield ModelError(_timer_message(exc) if timer else str(exc), file=name,
                             element=owner_id, line=condition.sourceline)
        except Exception as exc:  # noqa: BLE001 - an expression never crashes the loader
            yield unexpected(exc, name, owner_id, condition.sourceline)
    yield from _bridge_links(root, name)
    documentation = {e.get("id") for e in root.iter(*_DOCUMENTATION_DATA)}
    for association in list(root.iter(f"{{{BPMN_NS}}}dataInputAssociation",
                                      f"{{{BPMN_NS}}}dataOutputAssociation")):
        refs = {(r.text or "").strip() for r in association
                if isinstance(r.tag, str) and etree.QName(r).localname in ("sourceRef",
                                                                          "targetRef")}
        parent = association.getparent()
        if refs & documentation and parent is not None:
            parent.remove(association)
    for element in list(root.iter(*_DOCUMENTATION_DATA)):
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)


_CONDITION_LANGUAGES = ("python", "feel", "juel", "http://www.omg.org/spec/feel/20140401")
#: Data elements that only document a model; bridging leaves them out of what runs.
_DOCUMENTATION_DATA = tuple(f"{{{BPMN_NS}}}{local}" for local in (
    "dataStoreReference", "dataStore", "dataObjectReference", "dataObject"))
_PROCESS = f"{{{BPMN_NS}}}process"
_SCOPES = tuple(f"{{{BPMN_NS}}}{local}" for local in (
    "process", "subProcess", "transaction", "adHocSubProcess"))
_SEQUENCE_FLOW = f"{{{BPMN_NS}}}sequenceFlow"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
#: Elements the engine (SpiffWorkflow) identifies by their id: each needs one.
_NEEDS_ID_TAGS = frozenset(f"{{{BPMN_NS}}}{local}" for local in SUPPORTED_FLOW_NODES | {
    "process", "sequenceFlow", "message", "signal", "error", "escalation",
    "correlationProperty", "dataStore"})
_ID_ATTRIBUTE_SET = frozenset(_ID_ATTRIBUTES)
_ID_TEXT_TAGS = frozenset(f"{{{BPMN_NS}}}{local}" for local in _ID_TEXT_ELEMENTS)
_FLOW_NODE_TAGS = frozenset(f"{{{BPMN_NS}}}{local}" for local in SUPPORTED_FLOW_NODES)


def _timer_message(exc: ConditionSyntaxError) -> str:
    """What is wrong with a timer written in JUEL or FEEL that cannot be translated."""
    return (f'timer: {exc.dialect.upper()} expression "{exc.expression}" cannot be '
            f"translated: {exc.reason}; write an ISO 8601 duration such as P3D or a date "
            f"such as 2026-01-01T00:00:00Z")


def _bridge_links(root: etree._Element, name: str) -> Iterator[ModelError]:
    """Join each link throw event to the link catch event of the same name in its
    process or sub-process with a sequence flow (SpiffWorkflow has no link events);
    yield the links that lead nowhere or to more than one place."""
    for scope in root.iter(f"{{{BPMN_NS}}}process", f"{{{BPMN_NS}}}subProcess",
                           f"{{{BPMN_NS}}}transaction"):
        catches: dict[str, etree._Element] = {}
        for event in scope.iterfind(f"{{{BPMN_NS}}}intermediateCatchEvent"):
            link = link_name(event)
            if link is not None and link in catches:
                yield ModelError(f"two link catch events are named {link!r} (this one and "
                                 f"{catches[link].get('id')!r}); a link name must lead to "
                                 f"one place", file=name, element=event.get("id"),
                                 line=event.sourceline)
            elif link is not None:
                catches[link] = event
        for event in scope.iterfind(f"{{{BPMN_NS}}}intermediateThrowEvent"):
            link = link_name(event)
            if link is None:
                continue
            catch = catches.get(link)
            if catch is None:
                yield ModelError(f"link throw event {link!r} has no link catch event of the "
                                 f"same name in its process: the path stops here",
                                 file=name, element=event.get("id"), line=event.sourceline)
                continue
            etree.SubElement(scope, _SEQUENCE_FLOW,
                             id=f"{event.get('id')}_link_{catch.get('id')}",
                             sourceRef=event.get("id", ""), targetRef=catch.get("id", ""))


def link_name(event: etree._Element) -> str | None:
    """The link name of a link event (its definition's name, else the event's), or
    ``None`` for any other event."""
    definition = event.find(f"{{{BPMN_NS}}}linkEventDefinition")
    if definition is None:
        return None
    return (definition.get("name") or event.get("name") or "").strip()


def document_problems(root: etree._Element, name: str) -> Iterator[ModelError]:
    """Every problem of a BPMN document as a whole (not just the first), in document
    order: wrong root, missing, reserved or duplicate ids, an ``isExecutable`` that is
    neither true nor false, unsupported elements, dangling references, diagram
    coordinates that are not numbers. The engine refuses a document with any of them,
    whichever process they are in."""
    try:
        yield from _document_problems(root, name)
    except Exception as exc:  # noqa: BLE001 - a model never crashes the loader
        yield unexpected(exc, name)


def _document_problems(root: etree._Element, name: str) -> Iterator[ModelError]:
    if root.tag != f"{{{BPMN_NS}}}definitions":
        yield ModelError(f"root element is {etree.QName(root).localname!r}, not BPMN 2.0 "
                         f"'definitions' (namespace {BPMN_NS})", file=name,
                         line=root.sourceline)
        return
    ids: dict[str, etree._Element] = {}
    references: list[tuple[etree._Element, str, str, bool]] = []
    yield from _id_problems(root, name, ids, references)
    for process in root.iter(_PROCESS):
        flag = process.get("isExecutable")
        if flag is not None and flag not in ("true", "false"):
            yield ModelError(f"isExecutable {flag!r} must be \"true\" or \"false\"",
                             file=name, element=process.get("id"), line=process.sourceline)
    yield from _element_problems(root, name)
    yield from _reference_problems(references, ids, name)
    yield from _diagram_problems(root, name)


def _id_problems(root: etree._Element, name: str, ids: dict[str, etree._Element],
                 references: list[tuple[etree._Element, str, str, bool]],
                 ) -> Iterator[ModelError]:
    """One pass over the document: missing, reserved and repeated ids; fills ``ids`` and
    the ``references`` to resolve once every id is known."""
    prefix = f"{{{BPMN_NS}}}"
    for element in root.iter():
        tag = element.tag
        if not isinstance(tag, str):
            continue
        element_id = None
        for key, value in element.items():
            if key == "id":
                element_id = value
            elif key in _ID_ATTRIBUTE_SET:
                references.append((element, key, value, False))
        if tag in _ID_TEXT_TAGS and len(element) == 0:
            value = (element.text or "").strip()
            if value:
                references.append((element, tag[len(prefix):], value, True))
        if element_id is None or not element_id.strip():
            if tag in _NEEDS_ID_TAGS:
                yield _missing_id(element, tag[len(prefix):], element_id, name)
            continue
        if element_id in _RESERVED_IDS or element_id.endswith(_RESERVED_SUFFIXES):
            yield ModelError(f"id {element_id!r} is reserved by the engine; rename the "
                             f"element (e.g. '{element_id}Event_1')", file=name,
                             element=element_id, line=element.sourceline)
        if element_id in ids:
            yield ModelError(f"id {element_id!r} is used twice (also on line "
                             f"{ids[element_id].sourceline})", file=name,
                             element=element_id, line=element.sourceline)
        else:
            ids[element_id] = element


def _missing_id(element: etree._Element, local: str, element_id: str | None,
                name: str) -> ModelError:
    owner = element.getparent()
    owner_id = owner.get("id") if owner is not None else None
    within = (f" (in {etree.QName(owner).localname} {owner_id!r})"
              if owner is not None and owner_id else "")
    return ModelError(f"{local}{within} has {'an empty' if element_id else 'no'} id; the "
                      f"engine needs one to tell the elements apart",
                      file=name, element=owner_id, line=element.sourceline)


def _element_problems(root: etree._Element, name: str) -> Iterator[ModelError]:
    """Flow elements the engine does not run (yet), in processes and sub-processes."""
    prefix = f"{{{BPMN_NS}}}"
    for process in root.iter(*_SCOPES[:3]):
        for child in process:
            tag = child.tag
            if not isinstance(tag, str) or not tag.startswith(prefix):
                continue
            local = tag[len(prefix):]
            if local in _NOT_YET:
                yield ModelError(f"{local}: {_NOT_YET[local]}", file=name,
                                 element=child.get("id"), line=child.sourceline)
            elif local not in SUPPORTED_FLOW_NODES and local not in STRUCTURAL:
                yield ModelError(f"unknown or unsupported BPMN element {local!r}", file=name,
                                 element=child.get("id"), line=child.sourceline)


def _reference_problems(references: list[tuple[etree._Element, str, str, bool]],
                        ids: dict[str, etree._Element], name: str) -> Iterator[ModelError]:
    """References (attributes, or element text) that name no element of the file."""
    for element, attribute, value, text in references:
        if _resolve(value, ids) is not None:
            continue
        if not text:
            yield ModelError(
                f"{etree.QName(element).localname} {attribute} {value!r} does not name "
                f"any element in this file", file=name,
                element=element.get("id") or value, line=element.sourceline)
        else:
            local, owner = attribute, element.getparent()
            owner_id = owner.get("id") if owner is not None else None
            yield ModelError(
                f"{local} {value!r} does not name any element in this file"
                + (f" (in {etree.QName(owner).localname} {owner_id!r})" if owner_id else ""),
                file=name, element=owner_id or value, line=element.sourceline)


def _diagram_problems(root: etree._Element, name: str) -> Iterator[ModelError]:
    """Diagram bounds whose coordinates are not numbers (SpiffWorkflow reads them to
    order a gateway's outgoing flows)."""
    for bounds in root.iter(f"{{{DC_NS}}}Bounds"):
        for attribute in ("x", "y", "width", "height"):
            value = bounds.get(attribute)
            if value is None:
                continue
            try:
                float(value)
            except ValueError:
                shape = next((a for a in bounds.iterancestors()
                              if a.get("bpmnElement") is not None), None)
                drawn = shape.get("bpmnElement") if shape is not None else None
                yield ModelError(f"diagram: the bounds of {drawn or 'a shape'!r} have "
                                 f"{attribute}={value!r}, which is not a number",
                                 file=name, element=drawn, line=bounds.sourceline)


def _resolve(value: str, ids: Mapping[str, etree._Element]) -> etree._Element | None:
    if value in ids:
        return ids[value]
    if ":" in value:  # some tools write QName references such as tns:Message_1
        return ids.get(value.split(":", 1)[1])
    return None


def is_executable(process: etree._Element) -> bool:
    """Whether the engine runs ``process``: unless it says ``isExecutable="false"``
    (SpiffWorkflow's reading of the attribute, and the default of BPMN tools)."""
    return bool(process.get("isExecutable", "true") == "true")


def built_processes(processes: Mapping[str, etree._Element]) -> list[str]:
    """The processes (of ``processes``, by id) the engine builds: the executable ones
    and, transitively, the processes their call activities call; in the given order."""
    built = {pid for pid, process in processes.items() if pid and is_executable(process)}
    todo = list(built)
    while todo:
        for call in processes[todo.pop()].iter(f"{{{BPMN_NS}}}callActivity"):
            callee = call.get("calledElement")
            if callee and callee in processes and callee not in built:
                built.add(callee)
                todo.append(callee)
    return [pid for pid in processes if pid in built]


def lane_index(process: etree._Element) -> dict[str, etree._Element]:
    """Each flow node id of ``process`` and the lane that lists it."""
    lanes: dict[str, etree._Element] = {}
    # Lanes nest; iterating in document order lets the innermost lane win.
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.iterfind(f"{{{BPMN_NS}}}flowNodeRef"):
            if ref.text:
                lanes[ref.text.strip()] = lane
    return lanes


def lane_of(element: etree._Element, lanes: Mapping[str, etree._Element],
            process: etree._Element) -> etree._Element | None:
    """The lane of a flow node. Inside an embedded sub-process, a node without a lane
    takes the sub-process's lane (modelers draw lanes on the outer process only)."""
    lane = lanes.get(element.get("id", ""))
    parent = element.getparent()
    while lane is None and parent is not None and parent is not process:
        lane = lanes.get(parent.get("id") or "")
        parent = parent.getparent()
    return lane


def flow_nodes(process: etree._Element) -> Iterator[etree._Element]:
    """The flow nodes the engine runs in ``process`` (nested ones included)."""
    for element in process.iter(*_FLOW_NODE_TAGS):
        if element.get("id"):
            yield element


class FlowIndex:
    """The sequence flows of a process and its sub-processes, by the node they leave and
    the node they reach (in the node's own process or sub-process), indexed once."""

    def __init__(self, process: etree._Element) -> None:
        self._flows: dict[tuple[str, etree._Element, str], list[etree._Element]] = {}
        self._scopes: list[etree._Element] = []  # keeps the keys' proxies alive
        for scope in process.iter(*_SCOPES):
            self._scopes.append(scope)
            for flow in scope.iterfind(_SEQUENCE_FLOW):
                for end in ("sourceRef", "targetRef"):
                    self._flows.setdefault((end, scope, flow.get(end) or ""), []).append(flow)

    def flows(self, node: etree._Element, end: str) -> list[etree._Element]:
        """The sequence flows beside ``node`` whose ``end`` (``"sourceRef"`` or
        ``"targetRef"``) is it."""
        parent = node.getparent()
        if parent is None or not node.get("id"):
            return []
        return self._flows.get((end, parent, node.get("id") or ""), [])


def process_problems(process: etree._Element, name: str,
                     defined: Mapping[str, etree._Element] | None = None,
                     skip: Container[str | None] = (),
                     steps: dict[str, StepInfo] | None = None,
                     flows: FlowIndex | None = None) -> Iterator[ModelError]:
    """Every problem of a process the engine builds (not just the first), in document
    order: one-stop properties that do not read (role, allotment, status, form, ...);
    service tasks without a connector; scripts that are not restricted Python; call
    activities that name no process (or, given the processes ``defined`` by id, one none
    defines, or one that is not executable); timers that are cycles, empty or malformed;
    conditions and loop expressions the restricted evaluator refuses; compensation;
    multi-instance loops that do not say how many instances run; exclusive and inclusive
    gateways with a flow that has no condition and is not the default. Elements whose
    ids are in ``skip`` do not get their expressions checked (their bridging failed
    already). ``steps``, when given, receives the one-stop properties of each flow node
    that reads, by id; ``flows`` is the process's flow index, if the caller has one."""
    flows = flows if flows is not None else FlowIndex(process)
    lanes = lane_index(process)
    for element in flow_nodes(process):
        try:
            yield from _node_problems(element, lane_of(element, lanes, process), name,
                                      defined, skip, steps)
        except Exception as exc:  # noqa: BLE001 - a model never crashes the loader
            yield unexpected(exc, name, element.get("id"), element.sourceline)
    for check in (_expression_problems(process, name, skip), _compensation(process, name),
                  _multi_instance(process, name),
                  _gateways_without_conditions(process, name, flows)):
        try:
            yield from check
        except Exception as exc:  # noqa: BLE001 - a model never crashes the loader
            yield unexpected(exc, name, process.get("id"), process.sourceline)


def _node_problems(element: etree._Element, lane: etree._Element | None, name: str,
                   defined: Mapping[str, etree._Element] | None,
                   skip: Container[str | None],
                   steps: dict[str, StepInfo] | None) -> Iterator[ModelError]:
    local = element.tag[len(BPMN_NS) + 2:]
    element_id = element.get("id")
    try:
        info = step_info(element, lane, name)
    except ModelError as exc:
        yield exc
        return
    if steps is not None:
        steps[info.id] = info
    if local == "serviceTask":
        try:
            if connector_of(element) is None:
                yield ModelError("service task names no connector (onestop:connector, "
                                 "camunda:topic or zeebe:taskDefinition type)", file=name,
                                 element=element_id, line=element.sourceline)
        except ValueError as exc:
            yield ModelError(f"service task {exc}", file=name, element=element_id,
                             line=element.sourceline)
    elif local == "scriptTask":
        yield from _script_problems(element, name)
    elif local == "callActivity":
        callee = element.get("calledElement")
        if not callee:
            yield ModelError("call activity names no process (calledElement)", file=name,
                             element=element_id, line=element.sourceline)
        elif defined is not None and callee not in defined:
            yield ModelError(f"calls process {callee!r}, which none of the files loaded "
                             f"with it defines", file=name, element=element_id,
                             line=element.sourceline)
        elif defined is not None and not is_executable(defined[callee]):
            yield ModelError(f"calls process {callee!r}, which is not executable "
                             f"(isExecutable=\"false\"); the engine cannot run it",
                             file=name, element=element_id, line=element.sourceline)
    if element_id not in skip:
        yield from _timer_problems(element, info.clock, name)


def _script_problems(element: etree._Element, name: str) -> Iterator[ModelError]:
    language = (element.get("scriptFormat") or "python").strip().lower()
    if language not in ("python", "python3", "text/x-python"):
        yield ModelError(f"script in {language!r} cannot run here; scripts are restricted "
                         f"Python", file=name, element=element.get("id"),
                         line=element.sourceline)
        return
    script = element.find(f"{{{BPMN_NS}}}script")
    try:
        check_expression(script.text or "" if script is not None else "", "exec")
    except ModelError as exc:
        yield type(exc)(f"script: {exc.reason}", file=name, element=element.get("id"),
                        line=element.sourceline)


def _timer_problems(element: etree._Element, clock: str | None,
                    name: str) -> Iterator[ModelError]:
    for definition in element.iterfind(f"{{{BPMN_NS}}}timerEventDefinition"):
        if definition.find(f"{{{BPMN_NS}}}timeCycle") is not None:
            yield ModelError("cycle timers (timeCycle) are not supported; use a duration or "
                             "a date timer", file=name, element=element.get("id"),
                             line=element.sourceline)
            continue
        value = definition.find(f"{{{BPMN_NS}}}timeDuration")
        if value is None:
            value = definition.find(f"{{{BPMN_NS}}}timeDate")
        try:
            check_timer(value.text or "" if value is not None else "", clock, name,
                        element.get("id", ""), element.sourceline)
        except ModelError as exc:
            yield exc


#: Expressions besides flow conditions, by where they are written.
_LOOP_EXPRESSIONS = tuple(f"{{{BPMN_NS}}}{local}" for local in (
    "loopCardinality", "completionCondition", "loopCondition"))


def _expression_problems(process: etree._Element, name: str,
                         skip: Container[str | None]) -> Iterator[ModelError]:
    """Flow conditions and loop expressions the restricted evaluator refuses. A bad
    condition on a flow out of a gateway is the gateway's (the engine evaluates it
    there), on the flow named in the message."""
    gateways = {g.get("id") for g in process.iter(f"{{{BPMN_NS}}}exclusiveGateway",
                                                  f"{{{BPMN_NS}}}inclusiveGateway")}
    for expression in process.iter(f"{{{BPMN_NS}}}conditionExpression", *_LOOP_EXPRESSIONS):
        owner = expression.getparent()
        if owner is not None and etree.QName(owner).localname.endswith(
                "LoopCharacteristics"):
            owner = owner.getparent()
        owner_id = owner.get("id") if owner is not None else None
        if owner_id in skip:
            continue
        local = etree.QName(expression).localname
        what, element = ("condition" if local == "conditionExpression" else local), owner_id
        if owner is not None and owner.tag == _SEQUENCE_FLOW \
                and owner.get("sourceRef") in gateways:
            what, element = f"condition on flow {owner_id!r}", owner.get("sourceRef")
        try:
            check_expression(expression.text or "", "eval")
        except ModelError as exc:
            yield type(exc)(f"{what}: {exc.reason}", file=name, element=element,
                            line=expression.sourceline)


#: How a compensation element would behave, by element name (other: an activity).
_COMPENSATION = {"boundaryEvent": "this compensation boundary event never fires",
                 "startEvent": "this compensation start event never fires",
                 "intermediateThrowEvent": "throwing compensation here does nothing",
                 "endEvent": "throwing compensation here does nothing"}


def _compensation(process: etree._Element, name: str) -> Iterator[ModelError]:
    """Compensation events and activities: the engine never compensates."""
    for element in process.xpath(".//*[bpmn:compensateEventDefinition or @isForCompensation]",
                                 namespaces=NSMAP):
        if element.find(f"{{{BPMN_NS}}}compensateEventDefinition") is not None:
            effect = _COMPENSATION.get(etree.QName(element).localname,
                                       "this compensation event does nothing")
        elif (element.get("isForCompensation") or "").strip().lower() == "true":
            effect = "this compensation activity (isForCompensation) never runs"
        else:
            continue
        yield ModelError(f"compensation is not supported: {effect}; draw the undo step (such "
                         f"as a refund) on the normal flow instead", file=name,
                         element=element.get("id"), line=element.sourceline)


def _multi_instance(process: etree._Element, name: str) -> Iterator[ModelError]:
    """Multi-instance activities must say how many instances run, in BPMN terms."""
    for loop in process.iter(f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics"):
        owner = loop.getparent()
        owner_id = owner.get("id") if owner is not None else None
        cardinality = loop.find(f"{{{BPMN_NS}}}loopCardinality") is not None
        collection = loop.find(f"{{{BPMN_NS}}}loopDataInputRef") is not None
        if cardinality and collection:
            yield ModelError("multi-instance has both loopCardinality and loopDataInputRef; "
                             "keep one", file=name, element=owner_id, line=loop.sourceline)
        elif not cardinality and not collection:
            vendor = _vendor_settings(loop)
            unknown = (f"{' and '.join(vendor)} {'is' if len(vendor) == 1 else 'are'} not "
                       f"understood here, and " if vendor else "")
            yield ModelError(f"multi-instance: {unknown}the loop has neither loopCardinality "
                             f"nor loopDataInputRef; set loopCardinality to the number of "
                             f"instances (e.g. len(leaders)), or loopDataInputRef to the list "
                             f"variable to run once per item (e.g. leaders)", file=name,
                             element=owner_id, line=loop.sourceline)


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


def _gateways_without_conditions(process: etree._Element, name: str,
                                 flows: FlowIndex) -> Iterator[ModelError]:
    """Exclusive and inclusive gateways must know which way to go: every outgoing flow
    but the default needs a condition (one flow alone needs none)."""
    for gateway in process.iter(f"{{{BPMN_NS}}}exclusiveGateway",
                                f"{{{BPMN_NS}}}inclusiveGateway"):
        outgoing = flows.flows(gateway, "sourceRef")
        blind = [f for f in outgoing if f.get("id") != gateway.get("default")
                 and f.find(f"{{{BPMN_NS}}}conditionExpression") is None]
        if len(outgoing) > 1 and blind:
            kind = etree.QName(gateway).localname.removesuffix("Gateway")
            shown = ", ".join(f"{f.get('name')!r} ({f.get('id')})" if f.get("name")
                              else str(f.get("id")) for f in blind)
            these = (f"flows {shown} have no condition and are" if len(blind) > 1
                     else f"flow {shown} has no condition and is")
            yield ModelError(f"{kind} gateway: outgoing {these} not the default flow; give "
                             f"each flow a condition, or make one of them the gateway's "
                             f"default flow", file=name, element=gateway.get("id"),
                             line=gateway.sourceline)


def _steps_of(process: etree._Element, name: str) -> dict[str, StepInfo]:
    lanes = lane_index(process)
    steps = {}
    for element in flow_nodes(process):
        info = step_info(element, lane_of(element, lanes, process), name)
        steps[info.id] = info
    return steps


def check_expression(source: str, mode: str = "eval") -> None:
    """Check a condition (``"eval"``) or script (``"exec"``) with the restricted
    evaluator; whatever goes wrong (an expression nested too deeply to parse, say) is a
    :class:`ModelError`."""
    verdict = _checked(source, mode) if len(source) <= 2_000 else _check(source, mode)
    if verdict is not None:
        kind, reason = verdict
        raise kind(reason)


def _check(source: str, mode: str) -> tuple[type[ModelError], str] | None:
    """What the restricted evaluator says of ``source``: None (fine), or the error."""
    try:
        _sandbox_check(source, mode)
    except ModelError as exc:
        return type(exc), exc.reason
    return None


#: Models repeat their conditions (``outcome == "accept"``): each text is checked once.
_checked = lru_cache(maxsize=4_096)(_check)


def _sandbox_check(source: str, mode: str) -> None:
    what = "condition" if mode == "eval" else "script"
    try:
        sandbox.check(source, mode)
    except ModelError:
        raise
    except RecursionError:
        raise ModelError(f"the {what} is nested too deeply to check ({len(source)} "
                         f"characters); write it as several simpler steps") from None
    except MemoryError:
        raise ModelError(f"the {what} is too large to check ({len(source)} "
                         f"characters)") from None
    except Exception as exc:  # noqa: BLE001 - an expression never crashes the loader
        raise ModelError(f"the {what} cannot be checked: {type(exc).__name__}: "
                         f"{exc}") from None


def _check_expressions(spec: BpmnProcessSpec, name: str, document: _Document | None,
                       steps: Mapping[str, StepInfo]) -> None:
    def line(element_id: str | None) -> int | None:
        return document.line(element_id) if document is not None else None

    cycle = adopt_timers(spec)
    if cycle is not None:
        raise ModelError("cycle timers (timeCycle) are not supported; use a duration or a "
                         "date timer", file=name, element=cycle, line=line(cycle))
    for task_spec in spec.task_specs.values():
        element = getattr(task_spec, "bpmn_id", None) or task_spec.name
        timer = timer_expression(task_spec)
        if timer is not None:
            step = steps.get(element)
            check_timer(timer, step.clock if step else None, name, element, line(element))
        for source, mode in _expressions(task_spec):
            try:
                check_expression(source, mode)
            except ModelError as exc:
                raise type(exc)(exc.reason, file=name, element=element,
                                line=line(element)) from None


def _expressions(task_spec: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for attribute in ("script", "prescript", "postscript"):
        value = getattr(task_spec, attribute, None)
        if isinstance(value, str) and value.strip():
            found.append((value, "exec"))
    for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
        # Gateways wrap each flow's condition in an operator holding the expression text.
        text = condition if isinstance(condition, str) else \
            next(iter(getattr(condition, "args", None) or []), None)
        if isinstance(text, str) and text.strip():
            found.append((text, "eval"))
    for attribute in ("condition", "cardinality"):
        value = getattr(task_spec, attribute, None)
        if isinstance(value, str) and value.strip():
            found.append((value, "eval"))
    definition = getattr(task_spec, "event_definition", None)
    if timer_expression(task_spec) is not None:
        return found  # timers are checked by _check_timer
    for attribute in ("expression", "condition"):
        value = getattr(definition, attribute, None)
        if isinstance(value, str) and value.strip():
            found.append((value, "eval"))
    return found


def check_timer(expression: str, clock: str | None, name: str, element: str,
                line: int | None) -> None:
    """Refuse a timer that is empty, malformed, unsafe, or counts months or years in
    working time (a :class:`ModelError` naming the element)."""
    if not expression.strip():
        raise ModelError("timer has no duration or date", file=name, element=element,
                         line=line)
    try:
        value = literal(expression)
    except ValueError as exc:
        raise ModelError(f"timer: {exc}", file=name, element=element, line=line) from None
    except Exception as exc:  # noqa: BLE001 - a timer never crashes the loader
        raise ModelError(f"timer: cannot be read: {type(exc).__name__}: {exc}", file=name,
                         element=element, line=line) from None
    if value is None:
        try:
            check_expression(expression, "eval")
        except ModelError as exc:
            raise type(exc)(f"timer: {exc.reason}", file=name, element=element,
                            line=line) from None
    elif isinstance(value, IsoDuration) and (clock or "working") == "working":
        try:
            value.in_working_time()
        except ValueError as exc:
            raise ModelError(f"timer: {exc}", file=name, element=element,
                             line=line) from None


def _caller(root: etree._Element | None, callee: str) -> str | None:
    if root is None:
        return None
    for element in root.iter(f"{{{BPMN_NS}}}callActivity"):
        if element.get("calledElement") == callee:
            found: str | None = element.get("id")
            return found
    return None


def _from_spiff(exc: ValidationException, name: str,
                documents: Mapping[str, _Document]) -> ModelError:
    source = getattr(exc, "file_name", None) or name
    document = documents.get(source)
    element = getattr(exc, "id", None) or None
    message = str(exc.args[0]) if exc.args else str(exc)
    if message.startswith("RecursionError("):
        message = _TOO_DEEP
    line = getattr(exc, "line_number", None)
    if not isinstance(line, int) or not line:
        line = document.line(element) if document is not None else None
    return ModelError(message, file=source, element=element, line=line)


__all__ = ["ProcessModel", "load_models", "model_from_body", "NSMAP"]
