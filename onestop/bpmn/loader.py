"""Load BPMN files into executable process models, refusing anything unclear or unsafe.

Loading checks, in order: safe XML; known elements only; every id reference resolves;
SpiffWorkflow can build the process; every condition and script passes the restricted
evaluator's check. Each failure is a :class:`~onestop.errors.ModelError` naming the file,
the element id and the line.

A loaded :class:`ProcessModel` carries a canonical serialized form (``body``) and its
SHA-256 (``spec_hash``): the store keeps each distinct model once, and dossiers refer to
it by hash, so a dossier keeps the model version it started with.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from ..errors import ModelError
from . import sandbox
from .conditions import ConditionSyntaxError, dialect, translate
from .connectors import ConnectorTask, ConnectorTaskParser, adopt_automatic
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


class _Parser(SpiffBpmnParser):  # type: ignore[misc]
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
    """Load the executable processes of ``files``; call activities resolve across them."""
    parser = _Parser()
    steps: dict[str, dict[str, StepInfo]] = {}
    origins: dict[str, str] = {}
    documents: dict[str, etree._Element] = {}
    for path in files:
        name = str(path)
        root = parse_file(path)
        _check_document(root, name)
        bridge_model(root, name)
        documents[name] = root
        try:
            parser.add_bpmn_xml(root, filename=name)
        except ValidationException as exc:
            raise _from_spiff(exc, name, root) from None
        except SpiffWorkflowException as exc:
            raise ModelError(str(exc), file=name) from None
        for process in root.iterfind(f"{{{BPMN_NS}}}process"):
            origins[process.get("id", "")] = name
            steps[process.get("id", "")] = _steps_of(process, name)

    models: dict[str, ProcessModel] = {}
    for process_id in parser.get_process_ids():
        name = origins.get(process_id, "?")
        root = documents.get(name)
        try:
            spec = parser.get_spec(process_id)
            subprocesses = parser.get_subprocess_specs(process_id)
        except ValidationException as exc:
            source = exc.file_name or name
            raise _from_spiff(exc, source, documents.get(source)) from None
        except SpiffWorkflowException as exc:
            raise ModelError(str(exc), file=name) from None
        for callee, callee_spec in subprocesses.items():
            if callee_spec is None:
                raise ModelError(f"calls process {callee!r}, which none of the loaded files "
                                 f"defines", file=name, element=_caller(root, callee))
        used = {process_id, *subprocesses}
        model_steps = {pid: steps.get(pid, {}) for pid in used}
        roles = {sid: s.role for per in model_steps.values() for sid, s in per.items()}
        for each in (spec, *subprocesses.values()):
            adopt_automatic(each, roles)
        _check_expressions(spec, name, root, model_steps.get(process_id, {}))
        for callee_spec in subprocesses.values():
            callee_file = origins.get(callee_spec.name, name)
            _check_expressions(callee_spec, callee_file, documents.get(callee_file),
                               model_steps.get(callee_spec.name, {}))
        models[process_id] = _build(process_id, spec.description or process_id, name, spec,
                                    dict(subprocesses), model_steps)
    return models


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
                        zlib.compress(canonical, 9), spec, subprocesses, steps)


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
        if dialect(text) == "python":
            continue
        try:
            condition.text = translate(text)
        except ConditionSyntaxError as exc:
            timer = condition.tag != f"{{{BPMN_NS}}}conditionExpression"
            yield ModelError(_timer_message(exc) if timer else str(exc), file=name,
                             element=owner_id, line=condition.sourceline)
    yield from _bridge_links(root, name)
    documentation = {e.get("id") for e in root.iter(*_DOCUMENTATION_DATA)}
    for association in list(root.iter(f"{{{BPMN_NS}}}dataInputAssociation",
                                      f"{{{BPMN_NS}}}dataOutputAssociation")):
        refs = {(r.text or "").strip() for r in association
                if isinstance(r.tag, str) and etree.QName(r).localname in ("sourceRef",
                                                                          "targetRef")}
        if refs & documentation:
            association.getparent().remove(association)
    for element in list(root.iter(*_DOCUMENTATION_DATA)):
        element.getparent().remove(element)


_CONDITION_LANGUAGES = ("python", "feel", "juel", "http://www.omg.org/spec/feel/20140401")
#: Data elements that only document a model; bridging leaves them out of what runs.
_DOCUMENTATION_DATA = tuple(f"{{{BPMN_NS}}}{local}" for local in (
    "dataStoreReference", "dataStore", "dataObjectReference", "dataObject"))


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
            etree.SubElement(scope, f"{{{BPMN_NS}}}sequenceFlow",
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
    """Every structural problem of a BPMN document (not just the first), in document
    order: wrong root, reserved or duplicate ids, unsupported elements, dangling
    references, conditions that cannot be translated."""
    if root.tag != f"{{{BPMN_NS}}}definitions":
        yield ModelError(f"root element is {etree.QName(root).localname!r}, not BPMN 2.0 "
                         f"'definitions' (namespace {BPMN_NS})", file=name,
                         line=root.sourceline)
        return
    ids: dict[str, etree._Element] = {}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        element_id = element.get("id")
        if element_id is None:
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
    for process in root.iter(f"{{{BPMN_NS}}}process", f"{{{BPMN_NS}}}subProcess",
                             f"{{{BPMN_NS}}}transaction"):
        for child in process:
            if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{BPMN_NS}}}"):
                continue
            local = etree.QName(child).localname
            if local in _NOT_YET:
                yield ModelError(f"{local}: {_NOT_YET[local]}", file=name,
                                 element=child.get("id"), line=child.sourceline)
            elif local not in SUPPORTED_FLOW_NODES and local not in STRUCTURAL:
                yield ModelError(f"unknown or unsupported BPMN element {local!r}", file=name,
                                 element=child.get("id"), line=child.sourceline)
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for attribute in _ID_ATTRIBUTES:
            value = element.get(attribute)
            if value is not None and _resolve(value, ids) is None:
                yield ModelError(
                    f"{etree.QName(element).localname} {attribute} {value!r} does not name "
                    f"any element in this file", file=name,
                    element=element.get("id") or value, line=element.sourceline)
        local = etree.QName(element).localname
        if element.tag.startswith(f"{{{BPMN_NS}}}") and local in _ID_TEXT_ELEMENTS \
                and len(element) == 0:
            value = (element.text or "").strip()
            if value and _resolve(value, ids) is None:
                owner = element.getparent()
                owner_id = owner.get("id") if owner is not None else None
                yield ModelError(
                    f"{local} {value!r} does not name any element in this file"
                    + (f" (in {etree.QName(owner).localname} {owner_id!r})" if owner_id else ""),
                    file=name, element=owner_id or value, line=element.sourceline)


def _resolve(value: str, ids: Mapping[str, etree._Element]) -> etree._Element | None:
    if value in ids:
        return ids[value]
    if ":" in value:  # some tools write QName references such as tns:Message_1
        return ids.get(value.split(":", 1)[1])
    return None


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
    for element in process.iter():
        if isinstance(element.tag, str) and element.tag.startswith(f"{{{BPMN_NS}}}") \
                and etree.QName(element).localname in SUPPORTED_FLOW_NODES \
                and element.get("id"):
            yield element


def _steps_of(process: etree._Element, name: str) -> dict[str, StepInfo]:
    lanes = lane_index(process)
    steps = {}
    for element in flow_nodes(process):
        info = step_info(element, lane_of(element, lanes, process), name)
        steps[info.id] = info
    return steps


def _check_expressions(spec: BpmnProcessSpec, name: str, root: etree._Element | None,
                       steps: Mapping[str, StepInfo]) -> None:
    cycle = adopt_timers(spec)
    if cycle is not None:
        raise ModelError("cycle timers (timeCycle) are not supported; use a duration or a "
                         "date timer", file=name, element=cycle, line=_line(root, cycle))
    for task_spec in spec.task_specs.values():
        timer = timer_expression(task_spec)
        if timer is not None:
            element = getattr(task_spec, "bpmn_id", None) or task_spec.name
            step = steps.get(element)
            check_timer(timer, step.clock if step else None, name, element,
                         _line(root, element))
        for source, mode in _expressions(task_spec):
            try:
                sandbox.check(source, mode)
            except ModelError as exc:
                element = getattr(task_spec, "bpmn_id", None) or task_spec.name
                raise type(exc)(exc.reason, file=name, element=element,
                                line=_line(root, element)) from None


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
    if value is None:
        try:
            sandbox.check(expression, "eval")
        except ModelError as exc:
            raise type(exc)(f"timer: {exc.reason}", file=name, element=element,
                            line=line) from None
    elif isinstance(value, IsoDuration) and (clock or "working") == "working":
        try:
            value.in_working_time()
        except ValueError as exc:
            raise ModelError(f"timer: {exc}", file=name, element=element,
                             line=line) from None


def _line(root: etree._Element | None, element_id: str | None) -> int | None:
    if root is None or not element_id:
        return None
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("id") == element_id:
            return element.sourceline
    return None


def _caller(root: etree._Element | None, callee: str) -> str | None:
    if root is None:
        return None
    for element in root.iter(f"{{{BPMN_NS}}}callActivity"):
        if element.get("calledElement") == callee:
            return element.get("id")
    return None


def _from_spiff(exc: ValidationException, name: str, root: etree._Element | None) -> ModelError:
    element = getattr(exc, "id", None) or None
    message = str(exc.args[0]) if exc.args else str(exc)
    return ModelError(message, file=exc.file_name or name, element=element,
                      line=_line(root, element))


__all__ = ["ProcessModel", "load_models", "model_from_body", "NSMAP"]
