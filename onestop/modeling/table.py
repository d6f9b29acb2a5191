"""Internal-procedure tables (quy trình nội bộ) as provinces publish them, and the BPMN
models made from them.

A table is a UTF-8 CSV with the columns ``step,name_vi,role,agency,allotment,kind`` and,
right after the header, one comment line ``# procedure=CODE;name=...;legal_time=...;
level=...`` (optionally ``cutoff=HH:MM``). Steps with the same number run in parallel.

:func:`model_from_table` turns a table into an executable model with two pools:

* the **main process** in the desk's pool: the reception outcomes (accept with receipt
  and appointment, supplement request, refusal), the desk's own steps before resolution
  (receive, digitize, transfer), a call to the resolution process with a non-interrupting
  ``apology_due`` timer on it (the agency responsible for the delay proposes a new
  appointment, the desk issues the apology letter), and the return steps;
* the **resolution process**: one lane per agency, the steps in order, parallel steps
  between a parallel split and join.

Every step of the table becomes one task carrying ``onestop:kind`` (its ``kind``), its
role and allotment; its agency is its lane's name. :func:`table_from_model` reads those
back, so a model made from a table reproduces the table.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import time
from pathlib import Path

from lxml import etree

from ..bpmn.extensions import BPMN_NS, ONESTOP_NS
from ..bpmn.loader import lane_index
from ..bpmn.xml import parse_file
from ..catalog import LEVELS
from ..duration import Duration, Unit
from ..errors import CatalogError, ModelError
from .diagram import Diagram, Pool
from .patterns import apology_path, reception_alternatives

COLUMNS = ("step", "name_vi", "role", "agency", "allotment", "kind")
ROLES = ("receiving_officer", "specialist", "department_head", "leader", "consulted_agency",
         "postal", "system")
KINDS = ("receive", "digitize", "transfer", "examine", "verify", "consult", "approve",
         "sign", "return")
#: Keys of the comment line, in the order they are written back.
META_KEYS = ("procedure", "name", "legal_time", "cutoff", "level")
#: Kinds the desk does before the dossier goes to the resolving agency.
_DESK_BEFORE = ("receive", "digitize", "transfer")
_CODE = re.compile(r"^\d\.\d{6}(\.[0-9A-Za-z.]+)?$")
_SYSTEM = "system"


@dataclass(frozen=True)
class TableStep:
    """One row of an internal-procedure table."""

    step: int
    name: str
    role: str
    agency: str
    allotment: str
    kind: str


@dataclass(frozen=True)
class ProcedureTable:
    """An internal-procedure table: its comment-line fields and its steps."""

    meta: tuple[tuple[str, str], ...]
    steps: tuple[TableStep, ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        """A comment-line field (``procedure``, ``name``, ``legal_time``, ...)."""
        return dict(self.meta).get(key, default)

    @property
    def code(self) -> str:
        """The procedure code the table is for."""
        return dict(self.meta)["procedure"]

    @property
    def name(self) -> str:
        """The procedure's name."""
        return dict(self.meta)["name"]

    @property
    def legal_time(self) -> Duration:
        """The procedure's legal time."""
        return Duration.parse(dict(self.meta)["legal_time"])

    def groups(self) -> list[list[TableStep]]:
        """The steps grouped by number, in order (a group of several runs in parallel)."""
        found: dict[int, list[TableStep]] = {}
        for step in self.steps:
            found.setdefault(step.step, []).append(step)
        return [found[number] for number in sorted(found)]


# -- reading and writing tables ------------------------------------------------------
def read_table(path: str | Path) -> ProcedureTable:
    """Read and check a table; errors name the file, the line and the column."""
    name = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise CatalogError("file not found", file=name) from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                           file=name) from None
    return parse_table(text, name)


def parse_table(text: str, source: str | None = None) -> ProcedureTable:
    """Check and parse the text of a table."""
    lines = text.splitlines()
    if not lines:
        raise CatalogError("the table is empty", file=source)
    header = next(csv.reader([lines[0]]))
    if tuple(h.strip() for h in header) != COLUMNS:
        raise CatalogError(f"the header must be {','.join(COLUMNS)}; got {lines[0]!r}",
                           file=source, entry="line 1")
    if len(lines) < 2 or not lines[1].startswith("#"):
        raise CatalogError("line 2 must be the comment line '# procedure=CODE;name=...;"
                           "legal_time=...;level=...'", file=source, entry="line 2")
    meta = _parse_meta(lines[1], source)
    steps: list[TableStep] = []
    rows = csv.reader(lines[2:])
    for offset, row in enumerate(rows):
        number = offset + 3
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        entry = f"line {number}"
        if len(row) != len(COLUMNS):
            raise CatalogError(f"has {len(row)} columns, expected {len(COLUMNS)}",
                               file=source, entry=entry)
        values = dict(zip(COLUMNS, (v.strip() for v in row), strict=True))
        try:
            step = int(values["step"])
        except ValueError:
            raise CatalogError(f"must be a whole number; got {values['step']!r}",
                               file=source, entry=entry, field="step") from None
        entry = f"line {number} (step {step})"
        previous = steps[-1].step if steps else 0
        if step not in (previous, previous + 1) or step < 1:
            raise CatalogError(f"steps are numbered 1, 2, 3 ... (a repeated number runs in "
                               f"parallel); got {step} after {previous}", file=source,
                               entry=entry, field="step")
        if not values["name_vi"]:
            raise CatalogError("is empty", file=source, entry=entry, field="name_vi")
        if values["role"] not in ROLES:
            raise CatalogError(f"must be one of {', '.join(ROLES)}; got {values['role']!r}",
                               file=source, entry=entry, field="role")
        if not values["agency"]:
            raise CatalogError("is empty", file=source, entry=entry, field="agency")
        try:
            allotment = Duration.parse(values["allotment"])
        except ValueError as exc:
            raise CatalogError(str(exc), file=source, entry=entry, field="allotment") from None
        if allotment.unit is Unit.SAME_DAY:
            raise CatalogError("a step's allotment is a number and a unit (wd, wh or d)",
                               file=source, entry=entry, field="allotment")
        if values["kind"] not in KINDS:
            raise CatalogError(f"must be one of {', '.join(KINDS)}; got {values['kind']!r}",
                               file=source, entry=entry, field="kind")
        steps.append(TableStep(step, values["name_vi"], values["role"], values["agency"],
                               values["allotment"], values["kind"]))
    table = ProcedureTable(meta, tuple(steps))
    _check_shape(table, source)
    return table


def _parse_meta(line: str, source: str | None) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for part in line.lstrip("#").strip().split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in META_KEYS:
            raise CatalogError(f"comment line: {part.strip()!r} is not one of "
                               f"{', '.join(k + '=...' for k in META_KEYS)}", file=source,
                               entry="line 2", field=key or part.strip())
        pairs.append((key, value.strip()))
    meta = dict(pairs)
    for key in ("procedure", "name", "legal_time", "level"):
        if not meta.get(key):
            raise CatalogError("is required on the comment line", file=source,
                               entry="line 2", field=key)
    if not _CODE.match(meta["procedure"]):
        raise CatalogError(f"must be a national procedure code such as '1.001193'; got "
                           f"{meta['procedure']!r}", file=source, entry="line 2",
                           field="procedure")
    try:
        Duration.parse(meta["legal_time"])
    except ValueError as exc:
        raise CatalogError(str(exc), file=source, entry="line 2", field="legal_time") from None
    if meta["level"] not in LEVELS:
        raise CatalogError(f"must be one of {', '.join(LEVELS)}; got {meta['level']!r}",
                           file=source, entry="line 2", field="level")
    if "cutoff" in meta:
        try:
            time.fromisoformat(meta["cutoff"])
        except ValueError:
            raise CatalogError(f"must be a time such as 15:00; got {meta['cutoff']!r}",
                               file=source, entry="line 2", field="cutoff") from None
    return tuple(pairs)


def _check_shape(table: ProcedureTable, source: str | None) -> None:
    if not table.steps:
        raise CatalogError("the table has no steps", file=source)
    first = table.steps[0]
    if first.kind != "receive" or first.role != "receiving_officer":
        raise CatalogError("step 1 must be the desk's 'receive' step by the "
                           "receiving_officer", file=source, entry="line 3 (step 1)",
                           field="kind")
    if table.steps[-1].kind != "return":
        raise CatalogError("the last step must be a 'return' step", file=source,
                           entry=f"step {table.steps[-1].step}", field="kind")
    for group in table.groups():
        if len(group) > 1 and any(s.role == _SYSTEM for s in group):
            raise CatalogError("an automatic (system) step cannot run in parallel",
                               file=source, entry=f"step {group[0].step}", field="role")
    _, middle, _ = _phases(table)
    if not middle:
        raise CatalogError("the table has no resolution step between the desk's receive/"
                           "digitize/transfer steps and the return", file=source)


def write_table(table: ProcedureTable) -> str:
    """The CSV text of a table, as provinces publish it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    out.write("# " + ";".join(f"{k}={v}" for k, v in table.meta) + "\n")
    for step in table.steps:
        writer.writerow([step.step, step.name, step.role, step.agency, step.allotment,
                         step.kind])
    return out.getvalue()


# -- table to model ------------------------------------------------------------------
def slot_name(agency: str) -> str:
    """A lane's agency slot made from an agency's name: ``"Công an xã"`` → ``cong_an_xa``."""
    plain = unicodedata.normalize("NFD", agency.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in plain if unicodedata.category(c) != "Mn").lower()
    slug = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")
    return slug or "agency"


def _phases(table: ProcedureTable) -> tuple[list[list[TableStep]], list[list[TableStep]],
                                            list[list[TableStep]]]:
    groups = table.groups()
    desk = table.steps[0].agency
    start = 0
    while start < len(groups) and len(groups[start]) == 1 \
            and groups[start][0].kind in _DESK_BEFORE and groups[start][0].agency == desk:
        start += 1
    end = len(groups)
    while end > start and len(groups[end - 1]) == 1 and groups[end - 1][0].kind == "return":
        end -= 1
    return groups[:start], groups[start:end], groups[end:]


def agency_slots(table: ProcedureTable) -> dict[str, str]:
    """Each agency of the table and the slot its lane uses: the receiving desk is
    ``desk``, the agency of the first resolution step ``resolver``, the others a name
    made from the agency (map those to catalogue agencies in the procedure's
    ``agencies``)."""
    _, middle, _ = _phases(table)
    slots = {table.steps[0].agency: "desk"}
    resolver = next((s.agency for g in middle for s in g if s.kind != "consult"),
                    middle[0][0].agency)
    slots.setdefault(resolver, "resolver")
    taken = set(slots.values())
    for step in table.steps:
        if step.agency not in slots:
            base = slot_name(step.agency)
            candidate, n = base, 2
            while candidate in taken:
                candidate, n = f"{base}_{n}", n + 1
            slots[step.agency] = candidate
            taken.add(candidate)
    return slots


def process_id_for(code: str) -> str:
    """The process id a table's model gets: ``procedure_2.000575``."""
    return f"procedure_{code}"


def model_from_table(table: ProcedureTable, process_id: str | None = None) -> bytes:
    """An executable BPMN model (with its diagram) for the table."""
    pid = process_id or process_id_for(table.code)
    rid = f"{pid}_resolution"
    slots = agency_slots(table)
    before, middle, after = _phases(table)
    desk = table.steps[0].agency
    resolver = next(a for a, s in slots.items() if s == "resolver")
    diagram = Diagram(pid)
    main_attrs = {"procedure": table.code, "legalTime": table.get("legal_time") or "",
                  "level": table.get("level") or ""}
    if table.get("cutoff"):
        main_attrs["cutoff"] = table.get("cutoff") or ""
    main = diagram.pool(pid, table.name, **main_attrs)
    main.documentation = (f"Made from the internal-procedure table of {table.code}: the "
                          f"reception outcomes, the desk's steps, the resolution process "
                          f"({rid}) with the apology path, and the return of the result.")
    main.lane("Lane_Desk", desk, agency="desk")
    main.lane("Lane_Resolver", resolver, agency="resolver")
    main.node("StartEvent_Submitted", "startEvent", "Hồ sơ được nộp", "Lane_Desk")
    receive = before[0][0]
    main.node("Step_1", "userTask", receive.name, "Lane_Desk", role=receive.role,
              kind=receive.kind, allotment=receive.allotment,
              form="outcome:accept|supplement|refuse; note?")
    main.flow("StartEvent_Submitted", "Step_1")
    main.node("Gateway_CheckOutcome", "exclusiveGateway", "Hồ sơ đầy đủ, hợp lệ?", "Lane_Desk")
    main.flow("Step_1", "Gateway_CheckOutcome")
    main.node("Event_Accepted", "intermediateThrowEvent", "Đã tiếp nhận, hẹn trả kết quả",
              "Lane_Desk", status="2")
    previous = "Event_Accepted"
    for index, (step,) in enumerate(before[1:], start=2):
        node_id = f"Step_{index}"
        _step_node(main, node_id, step, "Lane_Desk")
        main.flow(previous, node_id)
        previous = node_id
    main.node("Event_InProgress", "intermediateThrowEvent", "Đang xử lý", "Lane_Resolver",
              status="4")
    main.flow(previous, "Event_InProgress")
    main.node("Call_Resolve", "callActivity", "Giải quyết hồ sơ", "Lane_Resolver").called = rid
    main.flow("Event_InProgress", "Call_Resolve")
    main.node("Event_Resolved", "intermediateThrowEvent", "Đã có kết quả", "Lane_Desk",
              status="9")
    main.flow("Call_Resolve", "Event_Resolved")
    previous = "Event_Resolved"
    number = len(before) + len(middle) + 1
    for index, (step,) in enumerate(after, start=number):
        node_id = f"Step_{index}"
        _step_node(main, node_id, step, "Lane_Desk")
        main.flow(previous, node_id)
        previous = node_id
    main.node("EndEvent_Returned", "endEvent", "Đã trả kết quả", "Lane_Desk", status="10")
    main.flow(previous, "EndEvent_Returned")
    # Off the main path: the other reception outcomes and the apology path.
    main.flow("Gateway_CheckOutcome", "Event_Accepted", "Đầy đủ", 'outcome == "accept"')
    reception_alternatives(main, "Lane_Desk", "Gateway_CheckOutcome", "Step_1")
    apology_path(main, "Call_Resolve", "Lane_Desk", "Lane_Resolver")

    resolution = diagram.pool(rid, f"Giải quyết: {table.name}")
    lanes: dict[str, str] = {}
    for group in middle:
        for step in group:
            if step.agency not in lanes:
                lanes[step.agency] = f"Lane_{rid.replace('.', '_')}_{len(lanes) + 1}"
                resolution.lane(lanes[step.agency], step.agency, agency=slots[step.agency])
    first_lane = lanes[middle[0][0].agency]
    resolution.node("StartEvent_Resolution", "startEvent", "", first_lane)
    previous, previous_lane = "StartEvent_Resolution", first_lane
    number = len(before) + 1
    for group in middle:
        if len(group) == 1:
            node_id = f"Step_{number}"
            _step_node(resolution, node_id, group[0], lanes[group[0].agency])
            resolution.flow(previous, node_id)
            previous, previous_lane = node_id, lanes[group[0].agency]
        else:
            split, join = f"Gateway_Split_{number}", f"Gateway_Join_{number}"
            lane = previous_lane
            resolution.node(split, "parallelGateway", "", lane)
            resolution.flow(previous, split)
            for branch, step in enumerate(group, start=1):
                node_id = f"Step_{number}_{branch}"
                _step_node(resolution, node_id, step, lanes[step.agency])
                resolution.flow(split, node_id)
            resolution.node(join, "parallelGateway", "", lane)
            for branch in range(1, len(group) + 1):
                resolution.flow(f"Step_{number}_{branch}", join)
            previous = join
        number += 1
    resolution.node("EndEvent_Resolution", "endEvent", "", previous_lane)
    resolution.flow(previous, "EndEvent_Resolution")
    return diagram.to_xml()


def _step_node(pool: Pool, node_id: str, step: TableStep, lane: str) -> None:
    if step.role == _SYSTEM:
        # Done by the system at once (an electronic transfer): no one's inbox.
        pool.node(node_id, "task", step.name, lane, role=step.role, kind=step.kind,
                  allotment=step.allotment)
    else:
        pool.node(node_id, "userTask", step.name, lane, role=step.role, kind=step.kind,
                  allotment=step.allotment)


# -- model to table ------------------------------------------------------------------
def table_from_model(path: str | Path) -> ProcedureTable:
    """Read the internal-procedure table back from a model made by
    :func:`model_from_table` (or drawn the same way): every node carrying
    ``onestop:kind`` is a step; its agency is its lane's name."""
    name = str(path)
    root = parse_file(path)
    processes = {p.get("id"): p for p in root.iter(f"{{{BPMN_NS}}}process")}
    main = next((p for p in processes.values() if p.get(f"{{{ONESTOP_NS}}}procedure")), None)
    if main is None:
        raise ModelError("no process carries onestop:procedure (the procedure code); it "
                         "was not made from a table", file=name)
    meta = [("procedure", main.get(f"{{{ONESTOP_NS}}}procedure", "")),
            ("name", main.get("name", "")),
            ("legal_time", main.get(f"{{{ONESTOP_NS}}}legalTime", ""))]
    if main.get(f"{{{ONESTOP_NS}}}cutoff"):
        meta.append(("cutoff", main.get(f"{{{ONESTOP_NS}}}cutoff", "")))
    meta.append(("level", main.get(f"{{{ONESTOP_NS}}}level", "")))
    groups: list[list[etree._Element]] = []
    _walk(main, processes, groups, name, set())
    steps = []
    for number, group in enumerate(groups, start=1):
        for node in group:
            steps.append(TableStep(number, node.get("name", ""),
                                   node.get(f"{{{ONESTOP_NS}}}role", ""),
                                   _lane_name(node), node.get(f"{{{ONESTOP_NS}}}allotment", ""),
                                   node.get(f"{{{ONESTOP_NS}}}kind", "")))
    return ProcedureTable(tuple(meta), tuple(steps))


def _lane_name(node: etree._Element) -> str:
    lane = lane_index(node.getparent()).get(node.get("id", ""))
    return lane.get("name", "") if lane is not None else ""


def _walk(process: etree._Element, processes: dict[str | None, etree._Element],
          groups: list[list[etree._Element]], name: str, seen: set[str]) -> None:
    """Append the steps of ``process`` in flow order; parallel branches form one group."""
    nodes = {e.get("id"): e for e in process if isinstance(e.tag, str) and e.get("id")}
    targets: dict[str, list[str]] = {}
    for flow in process.iterfind(f"{{{BPMN_NS}}}sequenceFlow"):
        targets.setdefault(flow.get("sourceRef", ""), []).append(flow.get("targetRef", ""))
    starts = [i for i, e in nodes.items() if etree.QName(e).localname == "startEvent"]
    if len(starts) != 1:
        raise ModelError(f"process {process.get('id')!r} must have one start event to be "
                         f"read as a table", file=name, element=process.get("id"))
    current: str | None = starts[0]
    while current is not None and current not in seen:
        seen.add(current)
        element = nodes[current]
        local = etree.QName(element).localname
        if element.get(f"{{{ONESTOP_NS}}}kind"):
            groups.append([element])
        if local == "callActivity" and element.get("calledElement") in processes:
            _walk(processes[element.get("calledElement")], processes, groups, name, seen)
        outgoing = targets.get(current, [])
        if local == "parallelGateway" and len(outgoing) > 1:
            branch_steps, joins = [], set()
            for branch in outgoing:
                node = nodes[branch]
                if not node.get(f"{{{ONESTOP_NS}}}kind"):
                    raise ModelError("a parallel branch must be one step to be read as a "
                                     "table", file=name, element=branch)
                branch_steps.append(node)
                seen.add(branch)
                joins.update(targets.get(branch, []))
            if len(joins) != 1:
                raise ModelError("parallel branches must meet at one joining gateway",
                                 file=name, element=current)
            groups.append(branch_steps)
            current = joins.pop()
            seen.add(current)
            outgoing = targets.get(current, [])
        # Follow the path a dossier takes when all goes well: the accepted outcome
        # (the first flow whose target leads on), skipping loops back.
        current = _next(outgoing, nodes, seen)


def _next(outgoing: list[str], nodes: dict[str | None, etree._Element],
          seen: set[str]) -> str | None:
    for target in outgoing:
        if target not in seen and target in nodes:
            return target
    return None
