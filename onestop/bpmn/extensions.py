"""One-stop properties of flow nodes and lanes, read the way modelers write them.

A step's role, agency slot, time allotment, the dossier status it sets, its form
fields, its service-level part (``sla``) and, for a timer, the clock it counts on
(``clock``) may be given as

* attributes in the onestop namespace: ``onestop:role="specialist"``;
* extension properties of Camunda 7 (``camunda:properties``), Camunda 8
  (``zeebe:properties``) or SpiffWorkflow (``spiffworkflow:properties``), named
  ``role`` or ``onestop:role``;
* for the role only, Camunda's candidate groups (``camunda:candidateGroups`` or
  ``zeebe:assignmentDefinition candidateGroups``).

Onestop attributes win over extension properties. A step without its own role or agency
takes its lane's. On an event that waits for a message (and a receive task) the role
says who may deliver the message: one or more roles, comma-separated, and ``portal``
for the portal channel; an event that names nobody takes the message from the portal
only (lane roles do not apply). A step marked ``sla="propose"`` is done by the regime's
``apology_role`` (the head of the responsible agency), whatever role it names. An empty
value (what a modeler writes for a template field left blank) counts as not set. Service
tasks name their ``connector`` (see :mod:`onestop.bpmn.connectors`).
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

from lxml import etree

from ..allotment import CUTOFF, allotment_share, is_cutoff
from ..duration import Duration
from ..errors import ModelError
from ..model import FormField
from ..steps import CLOCKS, PORTAL_SENDER, SLA_PARTS, StepInfo, message_senders

__all__ = ["CLOCKS", "PORTAL_SENDER", "SLA_PARTS", "StepInfo", "message_senders",
           "raw_properties", "step_info", "catches_message", "parse_form", "PROPERTY_NAMES",
           "ONESTOP_NS", "BPMN_NS", "CAMUNDA_NS", "ZEEBE_NS", "NSMAP", "CUTOFF",
           "allotment_share", "is_cutoff"]

ONESTOP_NS = "urn:onestop:bpmn:1"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
NSMAP = {"bpmn": BPMN_NS}
PROPERTY_NAMES = ("role", "agency", "allotment", "status", "form", "sla", "clock", "connector")

_CONNECTOR = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(\?)?(?::(.+))?$")


def raw_properties(element: etree._Element) -> dict[str, str]:
    """The one-stop properties written on ``element`` (not inherited from its lane)."""
    props: dict[str, str] = {}
    for prop in element.xpath(
            "./bpmn:extensionElements/*[local-name()='properties']/*[local-name()='property']",
            namespaces=NSMAP):
        name, value = prop.get("name"), prop.get("value")
        # Modelers write a template's unfilled fields as empty values: not set.
        if name is None or value is None or not value.strip():
            continue
        for prefix in ("onestop:", "onestop."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        if name in PROPERTY_NAMES:
            props[name] = value
    groups = element.get(f"{{{CAMUNDA_NS}}}candidateGroups")
    if groups is None:
        for assignment in element.xpath(
                "./bpmn:extensionElements/*[local-name()='assignmentDefinition']",
                namespaces=NSMAP):
            groups = assignment.get("candidateGroups")
    if groups and "role" not in props:
        props["role"] = groups
    for name in PROPERTY_NAMES:
        value = element.get(f"{{{ONESTOP_NS}}}{name}")
        if value is not None and value.strip():
            props[name] = value
    return props


def step_info(element: etree._Element, lane: etree._Element | None, filename: str) -> StepInfo:
    """Read and validate the one-stop properties of a flow node."""
    element_id = element.get("id", "")
    own = raw_properties(element)
    lane_props = raw_properties(lane) if lane is not None else {}

    def fail(message: str) -> ModelError:
        return ModelError(message, file=filename, element=element_id, line=element.sourceline)

    role = _senders(own, fail) if catches_message(element) \
        else _role(own, lane_props, lane, fail)
    agency = (own.get("agency") or lane_props.get("agency") or "").strip() or None
    sla = (own.get("sla") or "").strip() or None
    if sla is not None and sla not in SLA_PARTS:
        raise fail(f"sla {sla!r} must be one of: {', '.join(SLA_PARTS)}")
    clock = (own.get("clock") or "").strip() or None
    if clock is not None and clock not in CLOCKS:
        raise fail(f"clock {clock!r} must be 'working' (working time) or 'calendar'")
    connector = (own.get("connector") or "").strip() or None
    if connector is not None and not _CONNECTOR.match(connector):
        raise fail(f"connector {connector!r} must be a name of letters, digits, '.', '-' "
                   f"or '_' such as 'payment.confirm'")
    return StepInfo(
        id=element_id,
        name=(element.get("name") or element_id).strip(),
        kind=etree.QName(element).localname,
        role=role,
        agency=agency,
        allotment=_allotment(own.get("allotment"), fail),
        status=_status(own, fail),
        form=parse_form(own.get("form", ""), fail),
        sla=sla,
        clock=clock,
        connector=connector,
    )


def _senders(own: Mapping[str, str], fail: Callable[[str], ModelError]) -> str | None:
    """Who may deliver the message a catching step waits for: the roles the event itself
    names, any of them (lane roles are for the lane's tasks); none named: the portal."""
    names = [n for n in re.split(r"[\s,]+", own.get("role") or "") if n]
    for each in names:
        if each != PORTAL_SENDER and not _ROLE.match(each):
            raise fail(f"role {each!r} must be a lower-case name such as "
                       f"'receiving_officer', or '{PORTAL_SENDER}'")
    return ",".join(dict.fromkeys(names)) or None


def _role(own: Mapping[str, str], lane_props: Mapping[str, str], lane: etree._Element | None,
          fail: Callable[[str], ModelError]) -> str | None:
    """A task's role: its own, else its lane's property, else a lane named by a role."""
    role = own.get("role") or lane_props.get("role")
    if role is None and lane is not None and _ROLE.match(lane.get("name") or ""):
        role = lane.get("name")
    if role is None:
        return None
    role = role.strip()
    if not _ROLE.match(role):
        raise fail(f"role {role!r} must be one lower-case name such as "
                   f"'specialist' (one role per step)")
    return role


def _allotment(allotment: str | None, fail: Callable[[str], ModelError]) -> str | None:
    """An allotment as written (``1.5wd``, ``20%``), or ``cutoff`` for the cut-off rule."""
    if allotment is None:
        return None
    if is_cutoff(allotment):
        return CUTOFF
    try:
        allotment_share(allotment) if "%" in allotment else Duration.parse(allotment)
    except ValueError as exc:
        raise fail(f"allotment: {exc} (or a share of the legal time such as '20%', or "
                   f"'{CUTOFF}' for a transfer under the cut-off rule)") from None
    return allotment


def _status(own: Mapping[str, str], fail: Callable[[str], ModelError]) -> int | None:
    """The national status code a step sets (1-10), if it sets one."""
    if "status" not in own:
        return None
    try:
        status = int(own["status"])
    except ValueError:
        status = -1
    if not 1 <= status <= 10:
        raise fail(f"status {own['status']!r} must be a national status code 1-10")
    return status


def catches_message(element: etree._Element) -> bool:
    """Whether a flow node waits for a message (a receive task, or a catch, boundary or
    start event with a message definition)."""
    local = etree.QName(element).localname
    if local == "receiveTask":
        return True
    return local in ("boundaryEvent", "intermediateCatchEvent", "startEvent") and \
        element.find(f"{{{BPMN_NS}}}messageEventDefinition") is not None


def parse_form(text: str, fail: Callable[[str], ModelError]) -> tuple[FormField, ...]:
    """Parse ``"outcome:accept|refuse; note?"`` into form fields."""
    fields = []
    seen = set()
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        match = _FIELD.match(part)
        if match is None:
            raise fail(f"form field {part!r} must look like 'name', 'name?' (optional) or "
                       f"'name:choice|choice'")
        name, optional, choices = match.groups()
        if name in seen:
            raise fail(f"form field {name!r} is listed twice")
        seen.add(name)
        options = tuple(c.strip() for c in choices.split("|")) if choices else ()
        if any(not c for c in options):
            raise fail(f"form field {name!r} has an empty choice")
        fields.append(FormField(name, optional is None, options))
    return tuple(fields)
