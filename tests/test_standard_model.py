"""processes/standard.bpmn opens in a modeler as drawn: every element has its shape."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from onestop import load_library

MODEL = Path(__file__).resolve().parent.parent / "processes" / "standard.bpmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC",
      "di": "http://www.omg.org/spec/DD/20100524/DI"}
FLOW_NODES = ("startEvent", "endEvent", "userTask", "exclusiveGateway",
              "intermediateThrowEvent", "intermediateCatchEvent", "subProcess",
              "boundaryEvent")


def _doc():
    return etree.parse(str(MODEL))


def test_every_flow_node_lane_and_flow_is_drawn():
    doc = _doc()
    drawn = {e.get("bpmnElement") for e in doc.iterfind(".//bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in doc.iterfind(".//bpmndi:BPMNEdge", NS)}
    nodes = [e.get("id") for tag in FLOW_NODES for e in doc.iterfind(f".//bpmn:{tag}", NS)]
    lanes = [e.get("id") for e in doc.iterfind(".//bpmn:lane", NS)]
    assert len(nodes) == 29 and lanes == ["Lane_Desk", "Lane_Resolver"]
    assert set(nodes) | set(lanes) | {"Participant_standard"} <= drawn
    flows = [e.get("id") for e in doc.iterfind(".//bpmn:sequenceFlow", NS)]
    assert set(flows) == set(edges)
    for edge in edges.values():
        assert len(edge.findall("di:waypoint", NS)) >= 2


def test_shapes_sit_inside_their_lane_and_edges_touch_their_ends():
    doc = _doc()
    bounds = {}
    for shape in doc.iterfind(".//bpmndi:BPMNShape", NS):
        b = shape.find("dc:Bounds", NS)
        bounds[shape.get("bpmnElement")] = tuple(float(b.get(k))
                                                 for k in ("x", "y", "width", "height"))
    for lane in doc.iterfind(".//bpmn:lane", NS):
        lx, ly, lw, lh = bounds[lane.get("id")]
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            x, y, w, h = bounds[ref.text]
            assert lx <= x and x + w <= lx + lw and ly <= y and y + h <= ly + lh, ref.text

    def touches(point, box):
        px, py = point
        x, y, w, h = box
        return x - 1 <= px <= x + w + 1 and y - 1 <= py <= y + h + 1

    for flow in doc.iterfind(".//bpmn:sequenceFlow", NS):
        edge = doc.find(f".//bpmndi:BPMNEdge[@bpmnElement='{flow.get('id')}']", NS)
        points = [(float(p.get("x")), float(p.get("y"))) for p in edge.findall("di:waypoint", NS)]
        assert touches(points[0], bounds[flow.get("sourceRef")]), flow.get("id")
        assert touches(points[-1], bounds[flow.get("targetRef")]), flow.get("id")


def test_lanes_are_the_desk_and_the_resolving_agency():
    model = load_library().models["standard"]
    by_agency = {}
    for step in model.user_steps():
        by_agency.setdefault(step.agency, set()).add(step.role)
    # The apology's explanation goes to whichever agency caused the delay; its head
    # gives it (the regime's apology role), so the model names no role for it.
    assert by_agency == {"desk": {"receiving_officer"}, "resolver": {"specialist", "leader"},
                         "responsible": {None}}
    assert {s.id for s in model.user_steps() if s.agency == "responsible"} == \
        {"Task_ExplainDelay", "Task_ExplainLate"}
