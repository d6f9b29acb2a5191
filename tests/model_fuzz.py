"""Deterministic mutations of BPMN models, for the fuzz tests of loading and lint.

Each mutation takes a parsed model and a seeded :class:`random.Random` and damages the
model the way a hand edit, a careless tool or a hostile upload would: it drops, garbles,
duplicates, moves or renames attributes and elements, removes ids, breaks references,
writes values of the wrong type, or nests expressions and elements deeply. The same
seed always gives the same mutated files.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Callable, Iterator

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DC = "http://www.omg.org/spec/DD/20100524/DC"
ONESTOP = "urn:onestop:bpmn:1"
ROOT = Path(__file__).resolve().parent.parent
#: The models mutated: the shipped library and the third-party corpus (those that parse).
SOURCES = sorted((ROOT / "processes").glob("*.bpmn")) + sorted(
    p for p in (ROOT / "tests" / "data" / "thirdparty").glob("*.bpmn")
    if p.name not in ("broken-xml.bpmn", "empty.bpmn", "xxe-entity.bpmn",
                      "xxe-entity-attribute.bpmn", "not-bpmn.bpmn"))

#: Values of the wrong type or shape, for attributes and texts.
ODD_VALUES = ("", " ", "abc", "-1", "0", "1e309", "nan", "-inf", "true", "false", "yes",
              "${x}", "=x", "=", "P2X", "PT0S", "P99999999999D", "R3/PT10M", "Start",
              "End", "a b", "tns:missing", "99999999999999999999", "x" * 3000, "Đ",
              "{", "0x1F", "None", "__import__('os')", "1/0", "[]", "%", "200%",
              "2026-13-45T99:99:99Z", "cutoff", "leader,deputy", ";;", "a:b|", "10")
#: References that are worth breaking.
REFERENCES = ("sourceRef", "targetRef", "attachedToRef", "default", "calledElement",
              "bpmnElement", "processRef", "messageRef", "signalRef", "errorRef",
              "escalationRef", "dataObjectRef", "dataStoreRef")
#: Expressions nested far deeper than any model needs.
DEEP_EXPRESSIONS = ("not " * 3000 + "x", "(" * 1000 + "x" + ")" * 1000, "-" * 3000 + "1",
                    "x" + "[0]" * 3000, "x" + " + x" * 5000, "[" * 500 + "]" * 500,
                    "a" + ".get" * 2000, "f(" * 300 + ")" * 300)
#: BPMN element names an element may be renamed to.
TAGS = ("userTask", "scriptTask", "serviceTask", "callActivity", "subProcess",
        "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
        "startEvent", "endEvent", "boundaryEvent", "intermediateCatchEvent",
        "intermediateThrowEvent", "sequenceFlow", "lane", "process", "task",
        "timerEventDefinition", "conditionExpression", "messageEventDefinition",
        "linkEventDefinition", "complexGateway", "association", "dataObject",
        "multiInstanceLoopCharacteristics", "standardLoopCharacteristics", "transaction")


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _with_attributes(root: etree._Element) -> list[etree._Element]:
    return [e for e in _elements(root) if e.attrib]


def drop_attribute(root: etree._Element, rng: random.Random) -> str:
    element = rng.choice(_with_attributes(root))
    key = rng.choice(sorted(element.attrib))
    del element.attrib[key]
    return f"drop @{key}"


def garble_attribute(root: etree._Element, rng: random.Random) -> str:
    element = rng.choice(_with_attributes(root))
    key = rng.choice(sorted(element.attrib))
    element.set(key, rng.choice(ODD_VALUES))
    return f"garble @{key}"


def remove_id(root: etree._Element, rng: random.Random) -> str:
    element = rng.choice([e for e in _elements(root) if e.get("id") is not None])
    del element.attrib["id"]
    return f"remove id of {etree.QName(element).localname}"


def break_reference(root: etree._Element, rng: random.Random) -> str:
    candidates = [(e, k) for e in _elements(root) for k in REFERENCES if k in e.attrib]
    ids = [e.get("id") for e in _elements(root) if e.get("id")]
    if not candidates:
        return garble_attribute(root, rng)
    element, key = rng.choice(candidates)
    element.set(key, rng.choice(["Missing_1", "", *ids]))
    return f"break @{key}"


def wrong_type(root: etree._Element, rng: random.Random) -> str:
    """Put an odd value where a number, a boolean or a one-stop property belongs."""
    key = rng.choice([f"{{{ONESTOP}}}status", f"{{{ONESTOP}}}allotment",
                      f"{{{ONESTOP}}}role", f"{{{ONESTOP}}}sla", f"{{{ONESTOP}}}clock",
                      f"{{{ONESTOP}}}form", f"{{{ONESTOP}}}connector", "isExecutable",
                      "cancelActivity", "isInterrupting", "triggeredByEvent",
                      "isForCompensation", "isSequential", "loopMaximum",
                      "scriptFormat", "calledElement"])
    element = rng.choice(_with_attributes(root))
    element.set(key, rng.choice(ODD_VALUES))
    return f"wrong type @{etree.QName(key).localname}"


def bad_bounds(root: etree._Element, rng: random.Random) -> str:
    bounds = list(root.iter(f"{{{DC}}}Bounds"))
    if not bounds:
        return wrong_type(root, rng)
    element = rng.choice(bounds)
    key = rng.choice(["x", "y", "width", "height"])
    if rng.random() < 0.3:
        element.attrib.pop(key, None)
    else:
        element.set(key, rng.choice(["abc", "", "nan", "1e309", "1,5", "--1"]))
    return f"bounds @{key}"


def drop_element(root: etree._Element, rng: random.Random) -> str:
    element = rng.choice([e for e in _elements(root) if e is not root])
    element.getparent().remove(element)
    return f"drop <{etree.QName(element).localname}>"


def duplicate_element(root: etree._Element, rng: random.Random) -> str:
    element = rng.choice([e for e in _elements(root) if e is not root])
    element.addnext(copy.deepcopy(element))
    return f"duplicate <{etree.QName(element).localname}>"


def move_element(root: etree._Element, rng: random.Random) -> str:
    elements = [e for e in _elements(root) if e is not root]
    element = rng.choice(elements)
    target = rng.choice(_elements(root))
    if element in target.iterancestors() or target is element:
        target = root
    target.append(element)
    return f"move <{etree.QName(element).localname}> into <{etree.QName(target).localname}>"


def rename_element(root: etree._Element, rng: random.Random) -> str:
    element = rng.choice([e for e in _elements(root) if e is not root])
    element.tag = f"{{{BPMN}}}{rng.choice(TAGS)}"
    return f"rename <{etree.QName(element).localname}>"


def garble_text(root: etree._Element, rng: random.Random) -> str:
    leaves = [e for e in _elements(root) if len(e) == 0 and (e.text or "").strip()]
    if not leaves:
        return garble_attribute(root, rng)
    element = rng.choice(leaves)
    element.text = rng.choice(ODD_VALUES)
    return f"garble text of <{etree.QName(element).localname}>"


def nest_expression(root: etree._Element, rng: random.Random) -> str:
    """A condition, script or timer nested thousands deep."""
    holders = list(root.iter(f"{{{BPMN}}}conditionExpression", f"{{{BPMN}}}script",
                             f"{{{BPMN}}}timeDuration", f"{{{BPMN}}}timeDate"))
    if holders:
        element = rng.choice(holders)
    else:
        flows = list(root.iter(f"{{{BPMN}}}sequenceFlow"))
        if not flows:
            return drop_element(root, rng)
        element = etree.SubElement(rng.choice(flows), f"{{{BPMN}}}conditionExpression")
    element.text = rng.choice(DEEP_EXPRESSIONS)
    return f"nest <{etree.QName(element).localname}>"


def nest_elements(root: etree._Element, rng: random.Random) -> str:
    """An element wrapped in many levels of sub-processes (or lanes, or extensions)."""
    element = rng.choice([e for e in _elements(root) if e is not root])
    wrapper = rng.choice(["subProcess", "laneSet", "extensionElements", "documentation"])
    depth = rng.choice([20, 60, 200])
    parent = element.getparent()
    index = parent.index(element)
    outer = inner = etree.Element(f"{{{BPMN}}}{wrapper}", id=f"Nest_{wrapper}_0")
    for level in range(1, depth):
        inner = etree.SubElement(inner, f"{{{BPMN}}}{wrapper}", id=f"Nest_{wrapper}_{level}")
    inner.append(element)
    parent.insert(index, outer)
    return f"nest <{etree.QName(element).localname}> in {depth} <{wrapper}>"


def swap_references(root: etree._Element, rng: random.Random) -> str:
    flows = list(root.iter(f"{{{BPMN}}}sequenceFlow"))
    if not flows:
        return break_reference(root, rng)
    flow = rng.choice(flows)
    source, target = flow.get("sourceRef"), flow.get("targetRef")
    if source is not None and target is not None:
        flow.set("sourceRef", target)
        flow.set("targetRef", source)
    return "swap a flow's ends"


MUTATIONS: tuple[Callable[[etree._Element, random.Random], str], ...] = (
    drop_attribute, garble_attribute, remove_id, break_reference, wrong_type, bad_bounds,
    drop_element, duplicate_element, move_element, rename_element, garble_text,
    nest_expression, nest_elements, swap_references)


def mutants(seed: int, count: int, sources: list[Path] | None = None
            ) -> Iterator[tuple[str, Path, str, bytes]]:
    """``count`` mutated models: (label, source file, what was done, XML bytes). One to
    three mutations each; the same seed gives the same models."""
    rng = random.Random(seed)
    files = sources or SOURCES
    parsed = {path: path.read_bytes() for path in files}
    for number in range(count):
        source = rng.choice(files)
        root = etree.fromstring(parsed[source])
        done = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            done.append(rng.choice(MUTATIONS)(root, rng))
        data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        yield f"{number:04d}-{source.stem}", source, "; ".join(done), data
