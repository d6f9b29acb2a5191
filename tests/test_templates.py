"""The Camunda Modeler element templates in ``processes/templates/`` agree with the loader.

A template tells Camunda Modeler which XML to write for a step. These tests write that XML
the way the Modeler does (``camunda:property`` and ``zeebe:property`` elements, attributes,
``zeebe:assignmentDefinition``, ``zeebe:taskDefinition``) and read it back through
``onestop.bpmn.extensions.step_info``: what a designer picks in the properties panel is what
onestop runs, every dropdown choice loads, and every value a pattern refuses is refused by
the loader too (and the other way round).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator
from xml.sax.saxutils import quoteattr

import pytest

from onestop import DossierStatus, ModelError
from onestop.bpmn.extensions import CLOCKS, PROPERTY_NAMES, SLA_PARTS, StepInfo, step_info
from onestop.bpmn.loader import load_models
from onestop.bpmn.xml import parse_xml

TEMPLATES = Path(__file__).resolve().parent.parent / "processes" / "templates"
FLAVOURS = ("camunda7", "camunda8")
SCHEMAS = {
    "camunda7": "https://unpkg.com/@camunda/element-templates-json-schema/resources/schema.json",
    "camunda8": "https://unpkg.com/@camunda/zeebe-element-templates-json-schema/resources/"
                "schema.json",
}
NAMESPACES = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "zeebe": "http://camunda.org/schema/zeebe/1.0",
}
#: Binding types each Modeler's templates may use here, and the input types each allows
#: (Camunda 7 renders camunda:property only as String, Hidden or Dropdown).
BINDINGS = {
    "camunda7": {"property": {"String", "Text", "Hidden", "Dropdown"},
                 "camunda:property": {"String", "Hidden", "Dropdown"}},
    "camunda8": {"zeebe:property": {"String", "Text", "Hidden", "Dropdown"},
                 "zeebe:assignmentDefinition": {"String", "Hidden", "Dropdown"},
                 "zeebe:taskDefinition": {"String", "Hidden", "Dropdown"}},
}
#: Bindings step_info does not read: Camunda's own name for a connector (an external task's
#: topic, a job type). They are not asserted against step_info; they must carry the same
#: constraints as the connector name they repeat, and where the loader reads them for
#: service tasks (onestop.bpmn.connectors) they must name the same connector.
NOT_READ = {("property", "camunda:type"), ("property", "camunda:topic"),
            ("zeebe:taskDefinition", "type")}
#: What a designer types into a required field that has no default.
SAMPLES = {"allotment": "1.5wd", "connector": "payment.confirm",
           "camunda:topic": "payment.confirm", "type": "payment.confirm"}
#: Values to try against every pattern: the pattern must accept exactly those the loader
#: accepts.
CANDIDATES = {
    "allotment": [
        "1.5wd", "4wh", "2d", "30d", "0.5wd", " 3wd ", "3 wd", "0wd", "same_day",
        " same_day ", "cutoff", " cutoff ", "Cutoff",
        "20%", "100%", "100.0%", "0.5%", "5 %", "099%", "0100%", "", " ", "wd",
        "1.wd", ".5wd", "-1wd", "1.5WD", "2 days", "P2D", "15", "0%", "0.0%", "101%",
        "100.5%", "1000%", "%", "20%%", "1.5wd%", "Same_day", "same day",
    ],
    "connector": [
        "payment.confirm", "portal.publish_result", "postal.dispatch", "a", "A-1_b.c",
        " payment.confirm ", "", " ", "1abc", "_x", ".x", "pay ment", "payment/confirm",
        "thanh_toán", "payment.confirm;",
    ],
    "form": [
        "", " ", "note", "note?", "outcome:accept|supplement|refuse; note?",
        "verdict:approve|supplement; missing?; note?", "delay_reason; new_appointment",
        "letter_no?", "a;", ";a", " a ; b ", "a;;b", "x?:yes|no", "choice: a b | c ",
        "outcome:đồng ý|từ chối", "a:b:c", "1abc", "a b", "a:|b", "a:b|", "a:", "a: ",
        "a:b| |c", "a??", "name :x", "-x", "tên", "a?b", "a;b c",
    ],
}


# -- reading the templates ---------------------------------------------------------------

@lru_cache(maxsize=None)
def _load(flavour: str) -> tuple[dict[str, Any], ...]:
    path = TEMPLATES / flavour / "onestop.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, list) and data, f"{path} must hold a non-empty JSON array"
    return tuple(data)


def _all() -> Iterator[tuple[str, dict[str, Any]]]:
    for flavour in FLAVOURS:
        for template in _load(flavour):
            yield flavour, template


ALL = [pytest.param(f, t, id=f"{f}-{t['id']}") for f, t in _all()]


def _target(prop: dict[str, Any]) -> tuple[str, str]:
    binding = prop["binding"]
    return binding["type"], binding.get("name") or binding.get("property") or ""


def _onestop_name(prop: dict[str, Any]) -> str | None:
    """The one-stop property a template property sets, or None when onestop does not
    read that binding."""
    kind, name = _target(prop)
    if kind in ("camunda:property", "zeebe:property"):
        return name.removeprefix("onestop:").removeprefix("onestop.")
    if (kind, name) in {("property", "camunda:candidateGroups"),
                        ("zeebe:assignmentDefinition", "candidateGroups")}:
        return "role"
    assert (kind, name) in NOT_READ, f"binding {kind} {name} is neither read nor known"
    return None


def _pattern(prop: dict[str, Any]) -> str | None:
    pattern = prop.get("constraints", {}).get("pattern")
    if pattern is None:
        return None
    return pattern if isinstance(pattern, str) else pattern["value"]


def _applied(flavour: str, template: dict[str, Any],
             overrides: dict[int, str] | None = None) -> list[tuple[dict[str, Any], str | None]]:
    """The values the Modeler writes when the template is applied: the default, else the
    first choice, else empty; an empty optional property (Camunda 8) is not written. A
    required field without default gets what a designer would type (SAMPLES)."""
    values: list[tuple[dict[str, Any], str | None]] = []
    for index, prop in enumerate(template["properties"]):
        if overrides and index in overrides:
            value: str | None = overrides[index]
        elif "value" in prop:
            value = prop["value"]
        elif prop["type"] == "Dropdown":
            value = prop["choices"][0]["value"]
        elif prop.get("constraints", {}).get("notEmpty"):
            value = SAMPLES[_target(prop)[1]]
        else:
            value = ""
        if value == "" and prop.get("optional"):
            value = None
        values.append((prop, value))
    return values


# -- writing XML as Camunda Modeler does ---------------------------------------------------

def _attrs_and_extensions(flavour: str, template: dict[str, Any],
                          values: list[tuple[dict[str, Any], str | None]]) -> tuple[str, str]:
    prefix = "camunda" if flavour == "camunda7" else "zeebe"
    attrs = [f'{prefix}:modelerTemplate={quoteattr(template["id"])}',
             f'{prefix}:modelerTemplateVersion="{template["version"]}"']
    properties, extensions = [], []
    for prop, value in values:
        if value is None:
            continue
        kind, name = _target(prop)
        if kind == "property":
            attrs.append(f"{name}={quoteattr(value)}")
        elif kind in ("camunda:property", "zeebe:property"):
            properties.append(f"<{prefix}:property name={quoteattr(name)} "
                              f"value={quoteattr(value)} />")
        elif kind == "zeebe:taskDefinition":
            extensions.append(f"<zeebe:taskDefinition {name}={quoteattr(value)} />")
        elif kind == "zeebe:assignmentDefinition":
            extensions.append(f"<zeebe:assignmentDefinition {name}={quoteattr(value)} />")
        else:  # pragma: no cover - the structure test allows no other binding
            raise AssertionError(f"no writer for binding {kind}")
    if properties:
        extensions.append(f"<{prefix}:properties>{''.join(properties)}</{prefix}:properties>")
    inner = f"<bpmn:extensionElements>{''.join(extensions)}</bpmn:extensionElements>" \
        if extensions else ""
    return " ".join(attrs), inner


def _tag(template: dict[str, Any]) -> str:
    local = template["appliesTo"][0].split(":", 1)[1]
    return local[0].lower() + local[1:]


def _definitions(body: str) -> bytes:
    xmlns = " ".join(f'xmlns:{p}="{uri}"' for p, uri in NAMESPACES.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions {xmlns} '
            f'id="Definitions_t" targetNamespace="urn:onestop:test">{body}'
            f'</bpmn:definitions>').encode("utf-8")


def _read_back(flavour: str, template: dict[str, Any],
               values: list[tuple[dict[str, Any], str | None]]) -> StepInfo:
    """Write one element (a lane: a lane with one task in it) and read its step info."""
    attrs, inner = _attrs_and_extensions(flavour, template, values)
    tag = _tag(template)
    if tag == "lane":
        body = (f'<bpmn:process id="p" isExecutable="true"><bpmn:laneSet id="LaneSet_1">'
                f'<bpmn:lane id="Lane_1" name="Phòng Kinh tế" {attrs}>{inner}'
                f'<bpmn:flowNodeRef>Task_1</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>'
                f'<bpmn:userTask id="Task_1" name="Thẩm định" /></bpmn:process>')
    else:
        timer = ('<bpmn:timerEventDefinition id="TimerDefinition_1"><bpmn:timeDuration>P2D'
                 '</bpmn:timeDuration></bpmn:timerEventDefinition>') if "Catch" in tag \
            or tag == "boundaryEvent" else ""
        body = (f'<bpmn:process id="p" isExecutable="true"><bpmn:{tag} id="Element_1" '
                f'name="Bước" {attrs}>{inner}{timer}</bpmn:{tag}></bpmn:process>')
    root = parse_xml(_definitions(body), "t.bpmn")
    ns = {"bpmn": NAMESPACES["bpmn"]}
    if tag == "lane":
        task = root.find(".//bpmn:userTask", ns)
        return step_info(task, root.find(".//bpmn:lane", ns), "t.bpmn")
    return step_info(root.find(f".//bpmn:{tag}", ns), None, "t.bpmn")


def _expected(name: str, value: str) -> Any:
    """What onestop should make of ``value`` for property ``name`` (a simple reading,
    written independently of the loader)."""
    if name == "status":
        return int(value)
    if name == "allotment":
        return value
    if name == "form":
        fields = []
        for part in value.split(";"):
            part = part.strip()
            if part:
                head, _, choices = part.partition(":")
                fields.append((head.rstrip("?"), not head.endswith("?"),
                               tuple(c.strip() for c in choices.split("|")) if choices else ()))
        return fields
    return value.strip() or None


def _actual(info: StepInfo, name: str) -> Any:
    if name == "form":
        return [(f.name, f.required, tuple(f.choices)) for f in info.form]
    return getattr(info, name)


def _accepts(flavour: str, template: dict[str, Any], index: int, value: str) -> bool:
    try:
        _read_back(flavour, template, _applied(flavour, template, {index: value}))
    except ModelError:
        return False
    return True


# -- the files ----------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", FLAVOURS)
def test_template_files_have_the_required_keys(flavour):
    for template in _load(flavour):
        where = f"{flavour} {template.get('id')}"
        assert template["$schema"] == SCHEMAS[flavour], where
        assert isinstance(template["name"], str) and re.search(r"\(.+\)$", template["name"])
        assert isinstance(template["id"], str) and template["id"].startswith("onestop.")
        assert isinstance(template["version"], int) and template["version"] >= 1, where
        assert isinstance(template.get("description"), str), where
        assert template["appliesTo"] and all(re.fullmatch(r"bpmn:[A-Z][A-Za-z]+", t)
                                             for t in template["appliesTo"]), where
        groups = [g["id"] for g in template.get("groups", [])]
        assert len(groups) == len(set(groups)), where
        assert all(re.search(r"\(.+\)$", g["label"]) for g in template.get("groups", []))
        assert template["properties"], where
        targets = [_target(p) for p in template["properties"]]
        assert len(targets) == len(set(targets)), f"{where}: a binding is used twice"
        read = [_onestop_name(p) for p in template["properties"]]
        read = [n for n in read if n is not None]
        assert len(read) == len(set(read)), f"{where}: a one-stop property is set twice"
        for prop in template["properties"]:
            kind, _name = _target(prop)
            assert kind in BINDINGS[flavour], f"{where}: binding {kind}"
            assert prop["type"] in BINDINGS[flavour][kind], f"{where}: {kind} {prop['type']}"
            if prop["type"] == "Hidden":
                assert isinstance(prop["value"], str), where
                continue
            assert re.search(r"\(.+\)$", prop["label"]), f"{where}: {prop['label']}"
            assert prop.get("group") in groups, f"{where}: {prop['label']}"
            if prop["type"] == "Dropdown":
                values = [c["value"] for c in prop["choices"]]
                assert all(isinstance(c["name"], str) and isinstance(c["value"], str)
                           for c in prop["choices"]), where
                assert len(values) == len(set(values)) and prop["value"] in values, where
            pattern = prop.get("constraints", {}).get("pattern")
            if pattern is not None:
                assert set(pattern) == {"value", "message"}, where
                assert pattern["value"].startswith("^") and pattern["value"].endswith("$")
                re.compile(pattern["value"])
            if prop.get("optional"):
                assert kind == "zeebe:property" and flavour == "camunda8", where
                assert not prop.get("constraints", {}).get("notEmpty"), where


def test_template_ids_are_unique_and_the_same_in_both_files():
    ids = {f: [t["id"] for t in _load(f)] for f in FLAVOURS}
    for flavour, found in ids.items():
        assert len(found) == len(set(found)), f"{flavour}: duplicate template id"
    assert ids["camunda7"] == ids["camunda8"]


def test_camunda8_uses_the_current_task_definition_binding():
    for template in _load("camunda8"):
        for prop in template["properties"]:
            assert prop["binding"]["type"] != "zeebe:taskDefinition:type"  # deprecated form
            if prop["binding"]["type"] == "zeebe:taskDefinition":
                assert prop["binding"]["property"] == "type"


def test_camunda7_service_task_is_an_external_task():
    template = next(t for t in _load("camunda7") if t["id"] == "onestop.serviceTask")
    by_target = {_target(p): p for p in template["properties"]}
    assert by_target[("property", "camunda:type")] == {
        "type": "Hidden", "value": "external",
        "binding": {"type": "property", "name": "camunda:type"}}
    assert ("property", "camunda:topic") in by_target


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_templates_cover_every_property_the_loader_reads(flavour):
    read = {_onestop_name(p) for t in _load(flavour) for p in t["properties"]} - {None}
    assert read == set(PROPERTY_NAMES)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_fixed_choices_are_exactly_what_the_loader_accepts(flavour):
    hidden_sla, clocks, statuses = set(), set(), []
    for template in _load(flavour):
        for prop in template["properties"]:
            name = _onestop_name(prop)
            if name == "sla":
                assert prop["type"] == "Hidden"
                hidden_sla.add(prop["value"])
            elif name == "clock":
                clocks = {c["value"] for c in prop["choices"]}
            elif name == "status":
                statuses = prop["choices"]
    assert hidden_sla == set(SLA_PARTS)
    assert clocks == set(CLOCKS)
    assert [c["value"] for c in statuses] == [str(n) for n in range(1, 11)]
    for choice in statuses:
        status = DossierStatus(int(choice["value"]))
        assert choice["name"].startswith(f"{int(status)} – {status.label_vi} (")


# -- what the Modeler writes is what onestop reads ----------------------------------------

@pytest.mark.parametrize("flavour, template", ALL)
def test_applied_template_reads_back_as_intended(flavour, template):
    values = _applied(flavour, template)
    info = _read_back(flavour, template, values)
    checked = set()
    for prop, value in values:
        name = _onestop_name(prop)
        if name is None:
            continue  # camunda:topic, camunda:type, zeebe:taskDefinition: see NOT_READ
        want = _expected(name, value) if value is not None else _expected(name, "")
        assert _actual(info, name) == want, f"{name}={value!r}"
        checked.add(name)
    for name in set(PROPERTY_NAMES) - checked:
        assert _actual(info, name) in (None, []), f"{name} set without the template"


@pytest.mark.parametrize("flavour, template", ALL)
def test_every_dropdown_choice_loads(flavour, template):
    for index, prop in enumerate(template["properties"]):
        if prop["type"] != "Dropdown":
            continue
        name = _onestop_name(prop)
        for choice in prop["choices"]:
            info = _read_back(flavour, template,
                              _applied(flavour, template, {index: choice["value"]}))
            assert _actual(info, name) == _expected(name, choice["value"]), choice


@pytest.mark.parametrize("flavour, template", ALL)
def test_patterns_accept_exactly_what_the_loader_accepts(flavour, template):
    connector_pattern = next((_pattern(p) for p in template["properties"]
                              if _onestop_name(p) == "connector"), None)
    for index, prop in enumerate(template["properties"]):
        pattern = _pattern(prop)
        if pattern is None:
            continue
        name = _onestop_name(prop)
        if name is None:
            # Camunda's copy of the connector name: same rule as the connector itself.
            assert pattern == connector_pattern
            continue
        for value in CANDIDATES[name]:
            allowed = re.search(pattern, value) is not None
            if not value.strip():
                # Left blank: the loader reads "not set" whatever the template asks.
                assert _accepts(flavour, template, index, value), name
                continue
            assert allowed == _accepts(flavour, template, index, value), \
                f"{name} {value!r}: pattern says {allowed}"


@pytest.mark.parametrize("flavour, template", ALL)
def test_values_outside_the_dropdowns_are_refused_by_the_loader(flavour, template):
    outside = {"status": ["0", "11", "four"], "clock": ["wall", "Working"],
               "role": ["Specialist", "specialist,leader", "chuyên_viên"]}
    for index, prop in enumerate(template["properties"]):
        name = _onestop_name(prop)
        if prop["type"] != "Dropdown" or name not in outside:
            continue
        for value in outside[name]:
            # (a lane's role is checked on the task in the lane)
            assert not _accepts(flavour, template, index, value), f"{name} {value!r}"


def test_form_duplicates_are_beyond_the_pattern():
    """A pattern cannot see a field named twice; the loader refuses it at load."""
    template = next(t for t in _load("camunda7") if t["id"] == "onestop.userTask")
    index = next(i for i, p in enumerate(template["properties"])
                 if _onestop_name(p) == "form")
    assert re.search(_pattern(template["properties"][index]), "note; note?")
    assert not _accepts("camunda7", template, index, "note; note?")


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to run JavaScript")
def test_patterns_mean_the_same_in_javascript():
    """Camunda Modeler checks patterns with JavaScript's RegExp(pattern).test(value)."""
    cases = []
    for _flavour, template in _all():
        for prop in template["properties"]:
            name, pattern = _onestop_name(prop), _pattern(prop)
            if pattern is not None and name is not None:
                cases += [[pattern, value] for value in CANDIDATES[name]]
    script = ("let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{"
              "console.log(JSON.stringify(JSON.parse(s).map(([p,v])=>new RegExp(p).test(v))))})")
    run = subprocess.run(["node", "-e", script], input=json.dumps(cases), text=True,
                         capture_output=True, timeout=60, check=True)
    javascript = json.loads(run.stdout)
    python = [re.search(p, v) is not None for p, v in cases]
    assert javascript == python


# -- a whole model drawn with the templates loads -----------------------------------------

def _model(flavour: str, with_service_task: bool = False) -> tuple[bytes, dict[str, Any]]:
    """A process using every template: the applied defaults, a lane for the desk."""
    templates = {t["id"]: t for t in _load(flavour)}

    def node(template_id: str, element_id: str, tag: str | None = None, extra: str = "",
             inner: str = "", overrides: dict[str, str] | None = None) -> str:
        template = templates[template_id]
        chosen = {i: overrides[_onestop_name(p)] for i, p in enumerate(template["properties"])
                  if overrides and _onestop_name(p) in overrides}
        attrs, ext = _attrs_and_extensions(flavour, template,
                                           _applied(flavour, template, chosen))
        tag = tag or _tag(template)
        return (f'<bpmn:{tag} id="{element_id}" name={quoteattr(element_id)} {attrs} '
                f'{extra}>{ext}{inner}</bpmn:{tag}>')

    chain = ["StartEvent_1", "Task_Timed", "Task_Untimed", "Event_Status", "Task_Propose",
             "Task_Apology", "Event_Wait"] + (["Task_Service"] if with_service_task else []) \
        + ["EndEvent_1"]
    flows = [f'<bpmn:sequenceFlow id="Flow_{a}" sourceRef="{a}" targetRef="{b}" />'
             for a, b in zip(chain[:-1], chain[1:], strict=True)]
    flows.append('<bpmn:sequenceFlow id="Flow_Boundary" sourceRef="Timer_Boundary" '
                 'targetRef="EndEvent_2" />')
    timer = ('<bpmn:timerEventDefinition id="{0}"><bpmn:timeDuration>{1}</bpmn:timeDuration>'
             '</bpmn:timerEventDefinition>')
    nodes = [
        '<bpmn:startEvent id="StartEvent_1" />',
        node("onestop.userTask", "Task_Timed"),
        node("onestop.userTask.untimed", "Task_Untimed"),
        node("onestop.statusEvent", "Event_Status", overrides={"status": "2"}),
        node("onestop.sla.propose", "Task_Propose"),
        node("onestop.sla.apology", "Task_Apology"),
        node("onestop.timer", "Event_Wait", tag="intermediateCatchEvent",
             inner=timer.format("TimerDefinition_Wait", "P1M"), overrides={"clock": "calendar"}),
        node("onestop.timer", "Timer_Boundary", tag="boundaryEvent",
             extra='attachedToRef="Task_Timed" cancelActivity="false"',
             inner=timer.format("TimerDefinition_Boundary", "PT4H")),
        node("onestop.statusEvent", "EndEvent_1", tag="endEvent", overrides={"status": "10"}),
        '<bpmn:endEvent id="EndEvent_2" />',
    ]
    if with_service_task:
        nodes.append(node("onestop.serviceTask", "Task_Service"))
    lane = node("onestop.lane", "Lane_Desk", inner="".join(
        f"<bpmn:flowNodeRef>{n}</bpmn:flowNodeRef>"
        for n in [*chain, "Timer_Boundary", "EndEvent_2"]), overrides={"agency": "desk"})
    body = (f'<bpmn:process id="templated" name="Templated" isExecutable="true">'
            f'<bpmn:laneSet id="LaneSet_1">{lane}</bpmn:laneSet>'
            f'{"".join(nodes)}{"".join(flows)}</bpmn:process>')
    return _definitions(body), templates


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_model_drawn_with_the_templates_loads(flavour, tmp_path):
    data, _templates = _model(flavour)
    path = tmp_path / f"{flavour}.bpmn"
    path.write_bytes(data)
    steps = load_models([path])["templated"].steps["templated"]
    assert (steps["Task_Timed"].role, steps["Task_Timed"].agency,
            steps["Task_Timed"].allotment) == ("specialist", "desk", "1.5wd")
    assert steps["Task_Untimed"].role == "receiving_officer"
    assert [f.name for f in steps["Task_Untimed"].form] == ["outcome", "note"]
    assert steps["Event_Status"].status == 2 and steps["EndEvent_1"].status == 10
    assert (steps["Task_Propose"].sla, steps["Task_Propose"].agency) == ("propose",
                                                                        "responsible")
    assert (steps["Task_Apology"].sla, steps["Task_Apology"].agency) == ("apology", "desk")
    assert steps["Event_Wait"].clock == "calendar"
    assert steps["Timer_Boundary"].clock == "working"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_service_task_drawn_with_the_template_loads(flavour, tmp_path):
    data, _templates = _model(flavour, with_service_task=True)
    path = tmp_path / f"{flavour}.bpmn"
    path.write_bytes(data)
    steps = load_models([path])["templated"].steps["templated"]
    assert steps["Task_Service"].connector == "payment.confirm"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_camundas_own_copy_of_the_connector_names_the_same_connector(flavour):
    """Without the connector property, the service task still names the connector through
    what Camunda users see (camunda:topic, zeebe:taskDefinition type), when the loader
    reads those."""
    connectors = pytest.importorskip("onestop.bpmn.connectors")
    connector_of = getattr(connectors, "connector_of", None)
    if connector_of is None:
        pytest.skip("the loader does not read camunda:topic / zeebe:taskDefinition")
    template = next(t for t in _load(flavour) if t["id"] == "onestop.serviceTask")
    values = [(p, v) for p, v in _applied(flavour, template) if _onestop_name(p) != "connector"]
    attrs, inner = _attrs_and_extensions(flavour, template, values)
    root = parse_xml(_definitions(
        f'<bpmn:process id="p" isExecutable="true"><bpmn:serviceTask id="Task_1" {attrs}>'
        f'{inner}</bpmn:serviceTask></bpmn:process>'), "t.bpmn")
    task = root.find(".//bpmn:serviceTask", {"bpmn": NAMESPACES["bpmn"]})
    assert connector_of(task) == "payment.confirm"
