"""Workflow state without the model inside it, in a compact encoding.

SpiffWorkflow's stock serializer writes the whole process spec into every workflow's
JSON, and each task as a dict that names its parent and children by UUID. Here a
dossier's state holds only its task tree and data: the spec is stored once (by content
hash) and handed back on restore, and tasks are rows that name each other by number.
The encoding is about a third smaller and twice as fast to produce, and the
dossier's state is what every engine command writes.

A task row is ``[id, parent, children, state, spec_name, triggered, changed,
internal_data, data]`` where ``parent`` and ``children`` name tasks as ``id`` does (the
task's number, or its UUID's hex for a task not numbered; ``-1``: no parent),
``changed`` orders the tasks' last state changes, and ``data`` is the full data for the
root, ``1`` for a task whose data is still empty (not reached yet), and ``[updates,
deletions]`` relative to the parent otherwise, as SpiffWorkflow itself stores it.
Sub-process workflows (call activities, embedded sub-processes) are encoded the same way,
keyed by the id of the task that runs them.

A workflow's counters (:class:`Stamps`) stand in for SpiffWorkflow's randomness and wall
clock while it runs (:func:`ticking`): task ids are the workflow's own random prefix and a
number (so a row stores the number; the prefix is stored once, under ``ids``), and state
changes are stamped with the workflow's counter instead of the time of day (joins order
the tasks they wait for by it). So a state depends on the inputs and the engine's clock
alone, and most of what made it incompressible is gone. Format 3 (onestop 0.1) kept
random ids and wall-clock stamps; it is read, its stamps replaced by their order.
"""

from __future__ import annotations

import json
import secrets
import threading
import time as _wall_clock
import zlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol
from uuid import UUID, uuid4

import SpiffWorkflow.task as _spiff_task

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from .connectors import CONNECTOR_CONFIG
from .timers import TIMER_CONFIG

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry


class _Specs(Protocol):
    """What a state is restored against: a model's process spec and its callees'."""

    @property
    def spec(self) -> Any: ...

    @property
    def subprocess_specs(self) -> Mapping[str, Any]: ...

#: The format of the states :func:`dump_state` writes, and those :func:`load_state` reads.
STATE_FORMAT = 4
READABLE_FORMATS = (3, 4)

_ACTIVE = threading.local()
#: Task ids are a workflow's prefix (the high 96 bits, a version-4 UUID's) and a number.
_NUMBER_BITS = 32
_NUMBERS = (1 << _NUMBER_BITS) - 1
#: A stamp this large came from the wall clock (SpiffWorkflow run outside ticking).
_WALL_CLOCK = 1_000_000_000


class Stamps:
    """A workflow's counters: the last state-change stamp given, its task-id prefix and
    how many task ids it has issued."""

    __slots__ = ("tick", "prefix", "issued", "refs")

    def __init__(self, tick: int = 0, prefix: int | None = None, issued: int = 0) -> None:
        self.tick = tick
        self.prefix = prefix if prefix is not None else \
            UUID(int=secrets.randbits(128) & ~_NUMBERS, version=4).int
        self.issued = issued
        #: Each task's reference in a stored state (JSON text), by its id's integer.
        self.refs: dict[int, str] = {}

    def ref(self, task_id: UUID) -> str:
        """How a stored state names a task: its number, or its UUID (JSON text)."""
        number = self.number(task_id)
        found = self.refs[task_id.int] = str(number) if number is not None \
            else f'"{task_id.hex}"'
        return found

    def next_id(self) -> UUID:
        """A new task id: the prefix and the next number."""
        self.issued += 1
        if self.issued > _NUMBERS:
            raise ValueError("a workflow has issued more task ids than it can number")
        return UUID(int=self.prefix | self.issued)

    def number(self, task_id: UUID) -> int | None:
        """The number of one of this workflow's task ids (None for any other id)."""
        value = task_id.int
        return value & _NUMBERS if value & ~_NUMBERS == self.prefix else None

    def task_id(self, number: int) -> UUID:
        """The task id of a number this workflow issued."""
        return UUID(int=self.prefix | number)


class _StateClock:
    """SpiffWorkflow's ``time`` module as its tasks see it: while :func:`ticking`, each
    reading is the next stamp of the running workflow; otherwise the wall clock (for
    SpiffWorkflow used outside an engine command)."""

    @staticmethod
    def time() -> float:
        stamps: Stamps | None = getattr(_ACTIVE, "stamps", None)
        if stamps is None:
            return _wall_clock.time()
        stamps.tick += 1
        return stamps.tick


def _new_task_id() -> UUID:
    """SpiffWorkflow's ``uuid4`` as its tasks see it: the running workflow's next id."""
    stamps = getattr(_ACTIVE, "stamps", None)
    return stamps.next_id() if stamps is not None else uuid4()


_spiff_task.time = _StateClock()
_spiff_task.uuid4 = _new_task_id


class ticking:
    """Within the block, SpiffWorkflow takes its task ids and state-change stamps from
    ``stamps`` (kept by the caller per workflow). Used as ``with ticking(stamps):``."""

    __slots__ = ("_stamps", "_outer")

    def __init__(self, stamps: Stamps) -> None:
        self._stamps = stamps
        self._outer: Stamps | None = None

    def __enter__(self) -> None:
        self._outer = getattr(_ACTIVE, "stamps", None)
        _ACTIVE.stamps = self._stamps

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.stamps = self._outer


def _all_tasks(workflow: BpmnWorkflow) -> Iterator[Task]:
    yield from workflow.tasks.values()
    for sub in workflow.subprocesses.values():
        yield from sub.tasks.values()


def _ranks(workflow: BpmnWorkflow) -> dict[float, int]:
    """The order of the workflow's state-change stamps: 1 for the earliest."""
    stamps = sorted({task.last_state_change for task in _all_tasks(workflow)})
    return {stamp: n for n, stamp in enumerate(stamps, 1)}


def renumber(workflow: BpmnWorkflow) -> int:
    """Replace the workflow's stamps by their order; returns the last number (where its
    :class:`Stamps` go on from)."""
    ranks = _ranks(workflow)
    for task in _all_tasks(workflow):
        task.last_state_change = ranks[task.last_state_change]
    return len(ranks)


@lru_cache(maxsize=1)
def spec_registry() -> "DefaultRegistry":
    """The converter registry for specs and data (SpiffWorkflow's, plus our timers and
    connector tasks)."""
    return BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, **TIMER_CONFIG, **CONNECTOR_CONFIG})


@lru_cache(maxsize=1)
def _workflow_converter() -> BpmnWorkflowConverter:
    converter = BpmnWorkflowConverter(BpmnWorkflow, spec_registry())
    plain = [cls for cls in converter.registry.typenames
             if issubclass(cls, (dict, list, tuple, str, int, float))]
    if plain:   # _data_json would write these as plain values, not converted
        raise RuntimeError(f"a converter is registered for a JSON type: {plain}")
    return converter


#: Task states after which SpiffWorkflow no longer changes a task.
_SETTLED = TaskState.COMPLETED | TaskState.CANCELLED | TaskState.ERROR


def state_dictionary(spec: Any, subprocess_specs: Any) -> bytes:
    """A preset compression dictionary for one model's states: the task names its rows
    repeat and the skeleton every state shares. The store keeps it with the model when
    the model is first stored and hands that copy back (zlib checks it on every load), so
    a later change here never makes a stored state unreadable."""
    names = sorted({*spec.task_specs, *(n for sub in subprocess_specs.values()
                                        for n in sub.task_specs)})
    skeleton = ('"format":' + str(STATE_FORMAT) + ',"events":[],"subprocesses":{},"ids":["'
                '"root":0,"last":,"data":{},"success":true,"completed":false,'
                '"correlations":{},"tasks":[[')
    return ("".join(f'"{name}",' for name in names) + skeleton).encode("utf-8")


def dump_state(workflow: BpmnWorkflow, stamps: Stamps,
               cache: dict[int, tuple[Any, str]] | None = None,
               dictionary: bytes | None = None) -> bytes:
    """The workflow's state (no spec), as compressed JSON.

    ``stamps`` are the workflow's counters. ``cache`` (kept by the caller between dumps
    of the same workflow) holds the encoded rows of settled tasks, so each command
    encodes only the tasks that can still change. ``dictionary``
    (:func:`state_dictionary` of the model) makes it about a sixth smaller.
    """
    registry = _workflow_converter().registry
    subprocesses = ",".join(
        f'"{_task_key(task_id, stamps)}":{_encode_workflow(sub, registry, cache, stamps)}'
        for task_id, sub in workflow.subprocesses.items())
    events = _JSON(registry.convert(workflow.bpmn_events)) if workflow.bpmn_events else "[]"
    top = _encode_workflow(workflow, registry, cache, stamps)
    ids = f'["{stamps.prefix >> _NUMBER_BITS:024x}",{stamps.issued}]'
    text = (f'{{"format":{STATE_FORMAT},"events":{events},"subprocesses":{{{subprocesses}}},'
            f'"ids":{ids},{top[1:]}')
    if dictionary is None:
        return zlib.compress(text.encode("utf-8"), 6)
    # A small hash table (memLevel 4): states are a few kilobytes, and a large one costs
    # more to set up than it saves.
    packer = zlib.compressobj(6, zlib.DEFLATED, 15, 4, zlib.Z_DEFAULT_STRATEGY, dictionary)
    return packer.compress(text.encode("utf-8")) + packer.flush()


def _task_key(task_id: UUID, stamps: Stamps) -> str:
    """How a state names a task: its number, or its UUID for an id not numbered."""
    number = stamps.number(task_id)
    return str(number) if number is not None else str(task_id)


#: JSON as states store it (one encoder: ``json.dumps`` with options builds one per call).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _data_json(registry: Any, value: Any) -> str:
    """Task or workflow data as JSON text. Plain JSON values — what process data almost
    always is — go straight to the C encoder; anything else (dates, UUIDs, ...) first
    through SpiffWorkflow's converters, which leave plain values as they are (no class
    they convert is a dict, list, str or number: checked below), so both give the same
    text."""
    try:
        return _JSON(value)
    except (TypeError, ValueError):
        return _JSON(registry.convert(value))


#: Task spec names as JSON text (a state repeats them in every row).
_NAME_JSON: dict[str, str] = {}


def _name_json(name: str) -> str:
    found = _NAME_JSON.get(name)
    if found is None:
        found = _NAME_JSON[name] = _JSON(name)
    return found


def _encode_workflow(workflow: Any, registry: Any,
                     cache: dict[int, tuple[Any, str]] | None, stamps: Stamps) -> str:
    """One workflow (the top one or a sub-process) as a JSON object text: its attributes
    and its tasks as rows that name each other by number (or by UUID, for a task whose id
    is not one of the workflow's numbers), so a row does not change when others come
    and go.

    ``cache`` keeps the part of a settled task's row that cannot change any more (its
    place in the tree, state, name and stamps). Its data is written afresh every time: a
    parent's data may change after a child settled (a multi-instance activity merging its
    instances' results) and nested values are shared between tasks (a script changing
    ``info["a"]["n"]`` changes it for the tasks before it too)."""
    tasks = workflow.tasks
    refs = stamps.refs
    fragments: list[str] = []
    append = fragments.append
    for task_id, task in tasks.items():
        value = task_id.int
        state, own, internal = task._state, task.data, task.internal_data
        parent_id = task._parent
        head = None
        settled = None
        if cache is not None and state & _SETTLED and not internal:
            settled = (state, task.last_state_change, task.triggered, len(task._children))
            hit = cache.get(value)
            if hit is not None and hit[0] == settled:
                head = hit[1]
        if head is None:
            ref = refs.get(value) or stamps.ref(task_id)
            if parent_id is None or parent_id not in tasks:
                parent = "-1"
            else:
                parent = refs.get(parent_id.int) or stamps.ref(parent_id)
            children = ",".join([refs.get(c.int) or stamps.ref(c) for c in task._children])
            head = (f"[{ref},{parent},[{children}],{state},"
                    f"{_name_json(task.task_spec.name)},{1 if task.triggered else 0},"
                    f"{int(task.last_state_change)},"
                    f"{_data_json(registry, internal) if internal else 0},")
            if settled is not None and cache is not None:
                cache[value] = (settled, head)
        # The row's data: the full data at the root; 1 for none yet (SpiffWorkflow fills
        # it on arrival); [0,0] for the parent's unchanged; else the changes to it.
        if parent_id is None or parent_id not in tasks:
            data = _data_json(registry, registry.clean(own)) if own else "{}"
        elif not own:
            data = "1"
        else:
            inherited = tasks[parent_id].data
            if own == inherited:
                data = "[0,0]"
            else:
                updates = DeepMerge.get_updated_keys(inherited, own)
                deletions = DeepMerge.get_deleted_keys(inherited, own)
                data = (f"[{_data_json(registry, updates) if updates else 0},"
                        f"{_JSON(deletions or 0)}]")
        append(f"{head}{data}]")
    last = workflow.last_task
    root_ref = refs.get(workflow.task_tree.id.int) or stamps.ref(workflow.task_tree.id)
    last_ref = (refs.get(last.id.int) or stamps.ref(last.id)) if last is not None else -1
    data = _data_json(registry, registry.clean(workflow.data)) if workflow.data else "{}"
    return (f'{{"root":{root_ref},"last":{last_ref},"data":{data},'
            f'"success":{_JSON(workflow.success)},"completed":{_JSON(workflow.completed)},'
            f'"correlations":{_JSON(workflow.correlations)},"tasks":[{",".join(fragments)}]}}')


def load_state(blob: bytes, model: _Specs, script_engine: Any,
               dictionary: bytes | None = None) -> tuple[BpmnWorkflow, Stamps]:
    """Rebuild a workflow and its counters from :func:`dump_state` output and its
    model."""
    if len(blob) > 1 and blob[1] & 0x20:   # zlib header: compressed with a preset dictionary
        if dictionary is None:
            raise ValueError("the state was compressed with a dictionary; none was given")
        unpacker = zlib.decompressobj(15, dictionary)
        text = unpacker.decompress(blob) + unpacker.flush()
    else:
        text = zlib.decompress(blob)
    document = json.loads(text)
    if document.get("format") not in READABLE_FORMATS:
        raise ValueError(f"unknown workflow state format {document.get('format')!r}")
    if "ids" in document:
        prefix, issued = document["ids"]
        stamps = Stamps(0, int(prefix, 16) << _NUMBER_BITS, int(issued))
    else:
        stamps = Stamps()           # format 3: random ids, a prefix for the new ones
    registry = _workflow_converter().registry
    workflow = BpmnWorkflow(model.spec, dict(model.subprocess_specs),
                            script_engine=script_engine, deserializing=True)
    by_position = document["format"] == 3
    _decode_workflow(document, workflow, registry, stamps, by_position)
    workflow.bpmn_events = registry.restore(document["events"])
    _decode_subprocesses(document["subprocesses"], workflow, workflow, registry, stamps,
                         by_position)
    # Format 3 kept wall-clock stamps: only their order is kept.
    last = max((t.last_state_change for t in _all_tasks(workflow)), default=0)
    stamps.tick = renumber(workflow) if document["format"] == 3 or last > _WALL_CLOCK \
        else int(last)
    return workflow, stamps


def _decode_workflow(document: dict[str, Any], workflow: Any, registry: Any,
                     stamps: Stamps, by_position: bool) -> None:
    """Rebuild one workflow's tasks. Rows name each other by number or UUID (format 4),
    or by position (``by_position``: format 3)."""
    workflow.tasks = {}
    rows = document["tasks"]
    ids = [stamps.task_id(row[0]) if isinstance(row[0], int) else UUID(hex=row[0])
           for row in rows]
    if by_position:
        named: Any = ids
    else:
        named = {row[0]: ids[n] for n, row in enumerate(rows)}
    specs = workflow.spec.task_specs
    top = getattr(workflow, "top_workflow", workflow)
    for n, row in enumerate(rows):
        _id, parent, children, state, spec_name, triggered, changed, internal, data = row
        spec = specs.get(spec_name)
        if spec is None:
            raise ValueError(f"the state names task {spec_name!r}, which the model lacks")
        task = Task(workflow, spec, state=state, id=ids[n])
        task._parent = named[parent] if parent != -1 else None
        task._children = [named[child] for child in children]
        task.triggered = bool(triggered)
        task.last_state_change = changed
        task.internal_data = registry.restore(internal) if internal else {}
        if isinstance(task.task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            top.event_manager.add_task(task)
        if parent != -1 and data == 1:
            task.data = {}
        elif parent != -1:
            updates, deletions = data
            merged = DeepMerge.merge({}, workflow.tasks[task._parent].data)
            if updates:
                merged.update(registry.restore(updates))
            for key in deletions or ():
                merged.pop(key, None)
            task.data = merged
        else:
            task.data = registry.restore(data)
    workflow.task_tree = workflow.tasks[named[document["root"]]]
    workflow.last_task = workflow.tasks[named[document["last"]]] \
        if document["last"] != -1 else None
    workflow.data = registry.restore(document["data"])
    workflow.success = document["success"]
    workflow.completed = document["completed"]
    workflow.correlations = document["correlations"]


def _decode_subprocesses(documents: dict[str, Any], workflow: Any, top: BpmnWorkflow,
                         registry: Any, stamps: Stamps, by_position: bool) -> None:
    # Parents before children: a sub-process hangs off a task of an already built one.
    for task in list(workflow.tasks.values()):
        document = documents.pop(_task_key(task.id, stamps), None)
        if document is None or not isinstance(task.task_spec, SubWorkflowTask):
            continue
        spec = top.subprocess_specs.get(task.task_spec.spec)
        sub = BpmnSubWorkflow(spec, task.id, top, deserializing=True)
        _decode_workflow(document, sub, registry, stamps, by_position)
        top.subprocesses[task.id] = sub
        sub.completed_event.connect(task.task_spec._on_subworkflow_completed, task)
        _decode_subprocesses(documents, sub, top, registry, stamps, by_position)
