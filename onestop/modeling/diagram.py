"""Build BPMN documents in code and lay them out so they open readably in a modeler.

A :class:`Diagram` holds pools (one executable process each), their lanes, flow nodes
and sequence flows. :meth:`Diagram.to_xml` writes BPMN 2.0 with a full BPMNDI diagram:

* each pool is a horizontal band; its lanes are stacked in the order they were added;
* a node's column is its longest distance from the pool's start over forward flows
  (flows that close a loop are found by a depth-first walk and drawn back underneath);
* nodes sharing a lane and a column are stacked in sub-rows, so nothing overlaps;
* boundary events sit on the bottom edge of their activity, and what follows them is
  placed in the columns after it;
* flows are orthogonal: out of the right side, a bend in the free corridor between
  columns, into the left side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from lxml import etree

from ..bpmn.extensions import BPMN_NS, ONESTOP_NS

BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_NSMAP = {"bpmn": BPMN_NS, "bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS,
          "onestop": ONESTOP_NS, "xsi": XSI_NS}

_SIZES = {"event": (36, 36), "gateway": (50, 50), "activity": (100, 80)}
_COLUMN = 150          # width of a layout column
_ROW = 120             # height of a sub-row in a lane
_POOL_LABEL = 30       # the pool's name strip on the left
_LANE_LABEL = 30       # each lane's name strip
_LEFT = 160            # x of the pools' left edge
_TOP = 80              # y of the first pool
_POOL_GAP = 60


def _shape_kind(kind: str) -> str:
    if kind.endswith("Event"):
        return "event"
    if kind.endswith("Gateway"):
        return "gateway"
    return "activity"


@dataclass
class Lane:
    """A swimlane: an actor (role and/or agency slot)."""

    id: str
    name: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Node:
    """A flow node. ``attrs`` are onestop attributes (role, agency, allotment, ...);
    ``timer`` is ``("timeDate" | "timeDuration", expression)`` for timer events,
    ``message`` the message name a message event catches."""

    id: str
    kind: str
    name: str = ""
    lane: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    attached_to: str | None = None
    cancel_activity: bool = True
    timer: tuple[str, str] | None = None
    message: str | None = None
    called: str | None = None
    default: str | None = None


@dataclass
class Flow:
    """A sequence flow, with an optional condition (a restricted Python expression)."""

    id: str
    source: str
    target: str
    name: str = ""
    condition: str | None = None


@dataclass
class Pool:
    """A participant and the executable process it shows."""

    process_id: str
    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    documentation: str = ""
    executable: bool = True
    lanes: list[Lane] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)

    def lane(self, lane_id: str, name: str, **attrs: str) -> Lane:
        """Add a lane."""
        lane = Lane(lane_id, name, dict(attrs))
        self.lanes.append(lane)
        return lane

    def node(self, node_id: str, element: str, name: str = "", lane: str | None = None,
             **attrs: str) -> Node:
        """Add a flow node (``element`` is the BPMN element name, e.g. ``userTask``);
        ``attrs`` become onestop attributes."""
        node = Node(node_id, element, name, lane,
                    {k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(node)
        return node

    def get(self, node_id: str) -> Node:
        """The node with this id (KeyError if the pool has none)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def flow(self, source: str, target: str, name: str = "", condition: str | None = None,
             flow_id: str | None = None) -> Flow:
        """Add a sequence flow between two nodes."""
        flow = Flow(flow_id or f"Flow_{source}_{target}", source, target, name, condition)
        self.flows.append(flow)
        return flow


@dataclass
class Diagram:
    """A BPMN document under construction."""

    id: str
    pools: list[Pool] = field(default_factory=list)

    def pool(self, process_id: str, name: str, **attrs: str) -> Pool:
        """Add a pool with its process."""
        pool = Pool(process_id, name, dict(attrs))
        self.pools.append(pool)
        return pool

    def to_xml(self) -> bytes:
        """The BPMN document with its diagram, UTF-8."""
        return _write(self)


# -- layout --------------------------------------------------------------------------
@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def _columns(pool: Pool) -> dict[str, int]:
    """Longest-path layering over forward flows; flows out of a boundary event count
    from its activity."""
    anchor = {n.id: (n.attached_to or n.id) for n in pool.nodes}
    order = [n.id for n in pool.nodes if n.attached_to is None]
    successors: dict[str, list[str]] = {n: [] for n in order}
    incoming: dict[str, int] = {n: 0 for n in order}
    for flow in pool.flows:
        source, target = anchor.get(flow.source), anchor.get(flow.target)
        if source in successors and target in incoming and source != target:
            successors[source].append(target)
    # Flows closing a loop (back edges of a depth-first walk from the starts) are drawn
    # back and do not push columns.
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}
    starts = [n.id for n in pool.nodes if n.kind == "startEvent" and n.attached_to is None]
    for root in starts + order:
        if root in state:
            continue
        stack = [(root, iter(successors[root]))]
        state[root] = 1
        while stack:
            current, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[current] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((current, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(successors[child])))
    forward = {n: [t for t in successors[n] if (n, t) not in back] for n in order}
    for targets in forward.values():
        for target in targets:
            incoming[target] += 1
    column = {n: 0 for n in order}
    ready = [n for n in order if incoming[n] == 0]
    while ready:
        current = ready.pop(0)
        for target in forward[current]:
            column[target] = max(column[target], column[current] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return column


def _main_path(pool: Pool) -> set[str]:
    """The nodes a dossier passes when all goes well: every branch of a parallel split,
    the first flow out of a deciding gateway, nothing out of boundary events."""
    outgoing: dict[str, list[str]] = {}
    for flow in pool.flows:
        outgoing.setdefault(flow.source, []).append(flow.target)
    kinds = {n.id: n.kind for n in pool.nodes}
    todo = [n.id for n in pool.nodes if n.kind == "startEvent" and n.attached_to is None][:1]
    path: set[str] = set()
    while todo:
        current = todo.pop()
        if current in path:
            continue
        path.add(current)
        targets = outgoing.get(current, [])
        if kinds.get(current) in ("exclusiveGateway", "inclusiveGateway", "eventBasedGateway"):
            targets = targets[:1]
        todo.extend(targets)
    return path


def _layout(diagram: Diagram) -> tuple[dict[str, _Box], dict[str, _Box], dict[str, _Box],
                                       set[tuple[str, str]]]:
    shapes: dict[str, _Box] = {}
    lanes: dict[str, _Box] = {}
    pools: dict[str, _Box] = {}
    top = _TOP
    width = 0
    placed: list[tuple[Pool, dict[str, int], dict[str, tuple[str, int]], dict[str, int]]] = []
    for pool in diagram.pools:
        column = _columns(pool)
        lane_ids = [lane.id for lane in pool.lanes] or ["_"]
        cells: dict[tuple[str, int], int] = {}
        row_of: dict[str, tuple[str, int]] = {}
        # The main path (first flows out of the start) keeps the top row of its lanes;
        # other outcomes and what follows boundary events go below it.
        main = _main_path(pool)
        main_lanes = {(n.lane if n.lane in lane_ids else lane_ids[0])
                      for n in pool.nodes if n.id in main}
        for node in sorted((n for n in pool.nodes if n.attached_to is None),
                           key=lambda n: (column[n.id], n.id not in main)):
            lane = node.lane if node.lane in lane_ids else lane_ids[0]
            sub = cells.get((lane, column[node.id]), 0)
            if node.id not in main and lane in main_lanes:
                sub = max(sub, 1)
            cells[(lane, column[node.id])] = sub + 1
            row_of[node.id] = (lane, sub)
        rows = {lane: max([s for (ln, _c), s in cells.items() if ln == lane] or [1])
                for lane in lane_ids}
        placed.append((pool, column, row_of, rows))
        width = max(width, (max(column.values(), default=0) + 1) * _COLUMN)
    for pool, column, row_of, rows in placed:
        lane_top = top
        lane_y: dict[str, float] = {}
        for lane_id in rows:
            lane_y[lane_id] = lane_top
            lane_top += rows[lane_id] * _ROW
        content_x = _LEFT + _POOL_LABEL + _LANE_LABEL
        pool_w = _POOL_LABEL + _LANE_LABEL + width + 40
        pools[pool.process_id] = _Box(_LEFT, top, pool_w, lane_top - top)
        for each in pool.lanes:
            lanes[each.id] = _Box(_LEFT + _POOL_LABEL, lane_y[each.id], pool_w - _POOL_LABEL,
                                  rows[each.id] * _ROW)
        for node in pool.nodes:
            if node.attached_to is not None:
                continue
            w, h = _SIZES[_shape_kind(node.kind)]
            lane_id, sub = row_of[node.id]
            cx = content_x + 20 + column[node.id] * _COLUMN + _COLUMN / 2
            cy = lane_y[lane_id] + sub * _ROW + _ROW / 2
            shapes[node.id] = _Box(cx - w / 2, cy - h / 2, w, h)
        on_host: dict[str, int] = {}
        for node in pool.nodes:
            if node.attached_to is not None and node.attached_to in shapes:
                host = shapes[node.attached_to]
                # Several boundary events share the bottom edge, right to left.
                index = on_host[node.attached_to] = on_host.get(node.attached_to, -1) + 1
                shapes[node.id] = _Box(host.x + host.w - 40 - index * 42, host.y + host.h - 18,
                                       36, 36)
        top = lane_top + _POOL_GAP
    back = set()
    for pool, column, _rows, _r in placed:
        anchor = {n.id: (n.attached_to or n.id) for n in pool.nodes}
        for flow in pool.flows:
            if column.get(anchor.get(flow.target, ""), 0) <= \
                    column.get(anchor.get(flow.source, ""), 0):
                back.add((flow.source, flow.target))
    return shapes, lanes, pools, back


def _waypoints(source: _Box, target: _Box, boundary: bool,
               backward: bool) -> list[tuple[float, float]]:
    if backward:
        below = max(source.y + source.h, target.y + target.h) + 22
        return [(source.cx, source.y + source.h), (source.cx, below), (target.cx, below),
                (target.cx, target.y + target.h)]
    if boundary:
        start = (source.cx, source.y + source.h)
        if abs(target.cy - start[1]) < 1 or target.cy > start[1]:
            return [start, (start[0], target.cy), (target.x, target.cy)]
        corridor = target.x - 20
        return [start, (start[0], start[1] + 20), (corridor, start[1] + 20),
                (corridor, target.cy), (target.x, target.cy)]
    start = (source.x + source.w, source.cy)
    end = (target.x, target.cy)
    if abs(start[1] - end[1]) < 1:
        if end[0] - start[0] > _COLUMN:
            # Skipping over the columns between: go over the top of the row.
            above = min(source.y, target.y) - 25
            return [(source.cx, source.y), (source.cx, above), (target.cx, above),
                    (target.cx, target.y)]
        return [start, end]
    corridor = start[0] + min(25.0, (end[0] - start[0]) / 2)
    return [start, (corridor, start[1]), (corridor, end[1]), end]


# -- writing -------------------------------------------------------------------------
def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _write(diagram: Diagram) -> bytes:
    shapes, lane_boxes, pool_boxes, back = _layout(diagram)
    root = etree.Element(_q(BPMN_NS, "definitions"), nsmap=_NSMAP)
    root.set("id", f"Definitions_{diagram.id}")
    root.set("targetNamespace", "urn:onestop:processes")
    root.set("exporter", "onestop")
    root.set("exporterVersion", "0.1")
    collaboration = etree.SubElement(root, _q(BPMN_NS, "collaboration"))
    collaboration.set("id", f"Collaboration_{diagram.id}")
    for pool in diagram.pools:
        participant = etree.SubElement(collaboration, _q(BPMN_NS, "participant"))
        participant.set("id", f"Participant_{pool.process_id}")
        participant.set("name", pool.name)
        participant.set("processRef", pool.process_id)
    messages = sorted({n.message for pool in diagram.pools for n in pool.nodes if n.message})
    for name in messages:
        message = etree.SubElement(root, _q(BPMN_NS, "message"))
        message.set("id", f"Message_{name}")
        message.set("name", name)
    for pool in diagram.pools:
        _write_process(root, pool)
    plane_owner = etree.SubElement(root, _q(BPMNDI_NS, "BPMNDiagram"))
    plane_owner.set("id", f"Diagram_{diagram.id}")
    plane = etree.SubElement(plane_owner, _q(BPMNDI_NS, "BPMNPlane"))
    plane.set("id", f"Plane_{diagram.id}")
    plane.set("bpmnElement", f"Collaboration_{diagram.id}")
    for pool in diagram.pools:
        _shape(plane, f"Participant_{pool.process_id}", pool_boxes[pool.process_id],
               horizontal=True)
        for lane in pool.lanes:
            _shape(plane, lane.id, lane_boxes[lane.id], horizontal=True)
        for node in pool.nodes:
            box = shapes[node.id]
            shape = _shape(plane, node.id, box)
            if _shape_kind(node.kind) != "activity" and node.name:
                label = etree.SubElement(shape, _q(BPMNDI_NS, "BPMNLabel"))
                _bounds(label, _Box(box.cx - 50, box.y + box.h + 4, 100, 27))
        attached = {n.id for n in pool.nodes if n.attached_to is not None}
        for flow in pool.flows:
            edge = etree.SubElement(plane, _q(BPMNDI_NS, "BPMNEdge"))
            edge.set("id", f"{flow.id}_di")
            edge.set("bpmnElement", flow.id)
            points = _waypoints(shapes[flow.source], shapes[flow.target],
                                flow.source in attached, (flow.source, flow.target) in back)
            for x, y in points:
                point = etree.SubElement(edge, _q(DI_NS, "waypoint"))
                point.set("x", _num(x))
                point.set("y", _num(y))
            if flow.name:
                label = etree.SubElement(edge, _q(BPMNDI_NS, "BPMNLabel"))
                x, y = points[1] if len(points) > 2 else points[0]
                _bounds(label, _Box(x + 4, y - 20, 80, 14))
    text: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                 pretty_print=True)
    return text


def _write_process(root: etree._Element, pool: Pool) -> None:
    process = etree.SubElement(root, _q(BPMN_NS, "process"))
    process.set("id", pool.process_id)
    process.set("name", pool.name)
    process.set("isExecutable", "true" if pool.executable else "false")
    for key, value in pool.attrs.items():
        process.set(_q(ONESTOP_NS, key), value)
    if pool.documentation:
        etree.SubElement(process, _q(BPMN_NS, "documentation")).text = pool.documentation
    if pool.lanes:
        _write_lanes(process, pool)
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for flow in pool.flows:
        outgoing.setdefault(flow.source, []).append(flow.id)
        incoming.setdefault(flow.target, []).append(flow.id)
    for node in pool.nodes:
        _write_node(process, node, incoming.get(node.id, []), outgoing.get(node.id, []))
    for flow in pool.flows:
        element = etree.SubElement(process, _q(BPMN_NS, "sequenceFlow"))
        element.set("id", flow.id)
        if flow.name:
            element.set("name", flow.name)
        element.set("sourceRef", flow.source)
        element.set("targetRef", flow.target)
        if flow.condition:
            condition = etree.SubElement(element, _q(BPMN_NS, "conditionExpression"))
            condition.set(_q(XSI_NS, "type"), "bpmn:tFormalExpression")
            condition.text = flow.condition


def _write_lanes(process: etree._Element, pool: Pool) -> None:
    lane_set = etree.SubElement(process, _q(BPMN_NS, "laneSet"))
    lane_set.set("id", f"LaneSet_{pool.process_id}")
    for lane in pool.lanes:
        element = etree.SubElement(lane_set, _q(BPMN_NS, "lane"))
        element.set("id", lane.id)
        element.set("name", lane.name)
        for key, value in lane.attrs.items():
            element.set(_q(ONESTOP_NS, key), value)
        for node in pool.nodes:
            if node.lane == lane.id:
                etree.SubElement(element, _q(BPMN_NS, "flowNodeRef")).text = node.id


def _write_node(process: etree._Element, node: Node, incoming: list[str],
                outgoing: list[str]) -> None:
    element = etree.SubElement(process, _q(BPMN_NS, node.kind))
    element.set("id", node.id)
    cancel = "false" if node.attached_to and not node.cancel_activity else None
    for attribute, value in (("name", node.name), ("attachedToRef", node.attached_to),
                             ("cancelActivity", cancel), ("calledElement", node.called),
                             ("default", node.default)):
        if value:
            element.set(attribute, value)
    for key, value in node.attrs.items():
        element.set(_q(ONESTOP_NS, key), value)
    for flow_id in incoming:
        etree.SubElement(element, _q(BPMN_NS, "incoming")).text = flow_id
    for flow_id in outgoing:
        etree.SubElement(element, _q(BPMN_NS, "outgoing")).text = flow_id
    if node.message is not None:
        definition = etree.SubElement(element, _q(BPMN_NS, "messageEventDefinition"))
        definition.set("id", f"MessageDefinition_{node.id}")
        definition.set("messageRef", f"Message_{node.message}")
    if node.timer is not None:
        definition = etree.SubElement(element, _q(BPMN_NS, "timerEventDefinition"))
        definition.set("id", f"TimerDefinition_{node.id}")
        value = etree.SubElement(definition, _q(BPMN_NS, node.timer[0]))
        value.set(_q(XSI_NS, "type"), "bpmn:tFormalExpression")
        value.text = node.timer[1]


def _shape(plane: etree._Element, element_id: str, box: _Box,
           horizontal: bool = False) -> etree._Element:
    shape = etree.SubElement(plane, _q(BPMNDI_NS, "BPMNShape"))
    shape.set("id", f"{element_id}_di")
    shape.set("bpmnElement", element_id)
    if horizontal:
        shape.set("isHorizontal", "true")
    _bounds(shape, box)
    return shape


def _bounds(parent: etree._Element, box: _Box) -> None:
    bounds = etree.SubElement(parent, _q(DC_NS, "Bounds"))
    for key, value in (("x", box.x), ("y", box.y), ("width", box.w), ("height", box.h)):
        bounds.set(key, _num(value))


def _num(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def overlaps(boxes: Iterable[tuple[float, float, float, float]]) -> list[tuple[int, int]]:
    """Pairs of boxes ``(x, y, w, h)`` that overlap (for checking a layout)."""
    items = list(boxes)
    found = []
    for i, (ax, ay, aw, ah) in enumerate(items):
        for j in range(i + 1, len(items)):
            bx, by, bw, bh = items[j]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                found.append((i, j))
    return found
