"""Workflow state without the model inside it, in a compact encoding.

SpiffWorkflow's stock serializer writes the whole process spec into every workflow's
JSON, and each task as a dict that names its parent and children by UUID. Here a
dossier's state holds only its task tree and data: the spec is stored once (by content
hash) and handed back on restore, and top-level tasks are rows that point at each other
by position. The encoding is about a third smaller and twice as fast to produce, and the
dossier's state is what every engine command writes.

A task row is ``[id_hex, parent, children, state, spec_name, triggered, changed,
internal_data, data]`` where ``parent`` and ``children`` are row positions (``-1``: no
parent), ``changed`` orders the tasks' last state changes (1 for the earliest; tasks
changed together share a number) and ``data`` is the full data for the root, ``1`` for a
task whose data is still empty (not reached yet), and ``[updates, deletions]`` relative
to the parent otherwise, as SpiffWorkflow itself stores it. Sub-process workflows (call
activities, embedded sub-processes) are encoded the same way, keyed by the id of the task
that runs them.

SpiffWorkflow stamps each state change with the wall clock (``last_state_change``) and
joins order the tasks they wait for by it. A stored state keeps only the order of those
stamps, and while :func:`ticking` SpiffWorkflow's clock is a counter, so a state depends
on the inputs and the engine's clock alone. Format 3 (onestop 0.1) kept the wall-clock
stamps; it is read and turned into the same order.
"""

from __future__ import annotations

import json
import threading
import time as _wall_clock
import zlib
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol
from uuid import UUID

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


class _StateClock:
    """SpiffWorkflow's ``time`` module as its tasks see it: while :func:`ticking`, each
    reading is the next number of the running workflow's counter; otherwise the wall
    clock (for SpiffWorkflow used outside an engine command)."""

    @staticmethod
    def time() -> float:
        counter = getattr(_ACTIVE, "counter", None)
        if counter is None:
            return _wall_clock.time()
        counter[0] += 1
        return float(counter[0])


_spiff_task.time = _StateClock()  # type: ignore[assignment]


@contextmanager
def ticking(counter: list[float]) -> Iterator[None]:
    """Within the block, SpiffWorkflow stamps state changes with ``counter[0] + 1``,
    ``+ 2``, ... (``counter`` is a one-item list the caller keeps per workflow)."""
    outer = getattr(_ACTIVE, "counter", None)
    _ACTIVE.counter = counter
    try:
        yield
    finally:
        _ACTIVE.counter = outer


def _all_tasks(workflow: BpmnWorkflow) -> Iterator[Task]:
    yield from workflow.tasks.values()
    for sub in workflow.subprocesses.values():
        yield from sub.tasks.values()


def _ranks(workflow: BpmnWorkflow) -> dict[float, int]:
    """The order of the workflow's state-change stamps: 1 for the earliest."""
    stamps = sorted({task.last_state_change for task in _all_tasks(workflow)})
    return {stamp: n for n, stamp in enumerate(stamps, 1)}


def renumber(workflow: BpmnWorkflow) -> float:
    """Replace the workflow's stamps by their order; returns the last number (where a
    counter for :func:`ticking` starts)."""
    ranks = _ranks(workflow)
    for task in _all_tasks(workflow):
        task.last_state_change = ranks[task.last_state_change]
    return float(len(ranks))


@lru_cache(maxsize=1)
def spec_registry() -> "DefaultRegistry":
    """The converter registry for specs and data (SpiffWorkflow's, plus our timers and
    connector tasks)."""
    return BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, **TIMER_CONFIG, **CONNECTOR_CONFIG})


@lru_cache(maxsize=1)
def _workflow_converter() -> BpmnWorkflowConverter:
    return BpmnWorkflowConverter(BpmnWorkflow, spec_registry())


#: Task states after which SpiffWorkflow no longer changes a task.
_SETTLED = TaskState.COMPLETED | TaskState.CANCELLED | TaskState.ERROR


def state_dictionary(spec: Any, subprocess_specs: Any) -> bytes:
    """A preset compression dictionary for one model's states: the task names its rows
    repeat and the skeleton every state shares. The store keeps it with the model when
    the model is first stored and hands that copy back (zlib checks it on every load), so
    a later change here never makes a stored state unreadable."""
    names = sorted({*spec.task_specs, *(n for sub in subprocess_specs.values()
                                        for n in sub.task_specs)})
    skeleton = ('"format":' + str(STATE_FORMAT) + ',"events":[],"subprocesses":{"root":0,'
                '"last":,"data":{},"success":true,"completed":false,"correlations":{},'
                '"tasks":[[')
    return ("".join(f'"{name}",' for name in names) + skeleton).encode("utf-8")


def dump_state(workflow: BpmnWorkflow, cache: dict[UUID, tuple[Any, str]] | None = None,
               dictionary: bytes | None = None) -> bytes:
    """The workflow's state (no spec), as compressed JSON.

    ``cache`` (kept by the caller between dumps of the same workflow) holds the encoded
    rows of settled tasks, so each command encodes only the tasks that can still change.
    ``dictionary`` (:func:`state_dictionary` of the model) makes it about a sixth smaller.
    """
    registry = _workflow_converter().registry
    ranks = _ranks(workflow)
    subprocesses = ",".join(f'"{task_id}":{_encode_workflow(sub, registry, cache, ranks)}'
                            for task_id, sub in workflow.subprocesses.items())
    events = json.dumps(registry.convert(workflow.bpmn_events), separators=(",", ":"),
                        ensure_ascii=False)
    top = _encode_workflow(workflow, registry, cache, ranks)
    text = (f'{{"format":{STATE_FORMAT},"events":{events},"subprocesses":{{{subprocesses}}},'
            f'{top[1:]}')
    if dictionary is None:
        return zlib.compress(text.encode("utf-8"), 6)
    packer = zlib.compressobj(6, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
    return packer.compress(text.encode("utf-8")) + packer.flush()


def _encode_workflow(workflow: Any, registry: Any,
                     cache: dict[UUID, tuple[Any, str]] | None, ranks: dict[float, int],
                     ) -> str:
    """One workflow (the top one or a sub-process) as a JSON object text: its attributes
    and its tasks as rows that point at each other by position."""
    # Keyed by the UUIDs' integers: hashing a UUID object is a Python-level call.
    position = {task_id.int: n for n, task_id in enumerate(workflow.tasks)}
    fragments: list[str] = []
    for at, task in enumerate(workflow.tasks.values()):
        parent = workflow.tasks.get(task._parent) if task._parent is not None else None
        parent_at = position[task._parent.int] if parent is not None else -1
        children = [position[child.int] for child in task._children]
        key = None
        if cache is not None and task.state & _SETTLED:
            key = (at, parent_at, children, task.state, ranks[task.last_state_change])
            hit = cache.get(task.id)
            if hit is not None and hit[0] == key:
                fragments.append(hit[1])
                continue
        if parent is None:
            data: Any = registry.convert(registry.clean(task.data))
        elif not task.data:
            data = 1  # a task not reached yet: SpiffWorkflow fills its data on arrival
        else:
            updates = DeepMerge.get_updated_keys(parent.data, task.data)
            deletions = DeepMerge.get_deleted_keys(parent.data, task.data)
            data = [registry.convert(updates) if updates else 0, deletions or 0]
        fragment = json.dumps([
            task.id.hex, parent_at, children, task.state, task.task_spec.name,
            1 if task.triggered else 0, ranks[task.last_state_change],
            registry.convert(task.internal_data) if task.internal_data else 0, data,
        ], separators=(",", ":"), ensure_ascii=False)
        if key is not None and cache is not None:
            cache[task.id] = (key, fragment)
        fragments.append(fragment)
    document = {
        "root": position[workflow.task_tree.id.int],
        "last": position[workflow.last_task.id.int] if workflow.last_task is not None else -1,
        "data": registry.convert(registry.clean(workflow.data)),
        "success": workflow.success,
        "completed": workflow.completed,
        "correlations": workflow.correlations,
    }
    head = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return f'{head[:-1]},"tasks":[{",".join(fragments)}]}}'


def load_state(blob: bytes, model: _Specs, script_engine: Any,
               dictionary: bytes | None = None) -> BpmnWorkflow:
    """Rebuild a workflow from :func:`dump_state` output and its model."""
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
    registry = _workflow_converter().registry
    workflow = BpmnWorkflow(model.spec, dict(model.subprocess_specs),
                            script_engine=script_engine, deserializing=True)
    _decode_workflow(document, workflow, registry)
    workflow.bpmn_events = registry.restore(document["events"])
    _decode_subprocesses(document["subprocesses"], workflow, workflow, registry)
    if document["format"] == 3:
        renumber(workflow)           # wall-clock stamps: only their order is kept
    return workflow


def _decode_workflow(document: dict[str, Any], workflow: Any, registry: Any) -> None:
    workflow.tasks = {}
    ids = [UUID(hex=row[0]) for row in document["tasks"]]
    specs = workflow.spec.task_specs
    top = getattr(workflow, "top_workflow", workflow)
    for row in document["tasks"]:
        task_id, parent, children, state, spec_name, triggered, changed, internal, data = row
        spec = specs.get(spec_name)
        if spec is None:
            raise ValueError(f"the state names task {spec_name!r}, which the model lacks")
        task = Task(workflow, spec, state=state, id=UUID(hex=task_id))
        task._parent = ids[parent] if parent >= 0 else None
        task._children = [ids[child] for child in children]
        task.triggered = bool(triggered)
        task.last_state_change = changed
        task.internal_data = registry.restore(internal) if internal else {}
        if isinstance(task.task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            top.event_manager.add_task(task)
        if parent >= 0 and data == 1:
            task.data = {}
        elif parent >= 0:
            updates, deletions = data
            merged = DeepMerge.merge({}, workflow.tasks[ids[parent]].data)
            if updates:
                merged.update(registry.restore(updates))
            for key in deletions or ():
                merged.pop(key, None)
            task.data = merged
        else:
            task.data = registry.restore(data)
    workflow.task_tree = workflow.tasks[ids[document["root"]]]
    workflow.last_task = workflow.tasks[ids[document["last"]]] if document["last"] >= 0 else None
    workflow.data = registry.restore(document["data"])
    workflow.success = document["success"]
    workflow.completed = document["completed"]
    workflow.correlations = document["correlations"]


def _decode_subprocesses(documents: dict[str, Any], workflow: Any, top: BpmnWorkflow,
                         registry: Any) -> None:
    # Parents before children: a sub-process hangs off a task of an already built one.
    for task in list(workflow.tasks.values()):
        document = documents.pop(str(task.id), None)
        if document is None or not isinstance(task.task_spec, SubWorkflowTask):
            continue
        spec = top.subprocess_specs.get(task.task_spec.spec)
        sub = BpmnSubWorkflow(spec, task.id, top, deserializing=True)
        _decode_workflow(document, sub, registry)
        top.subprocesses[task.id] = sub
        sub.completed_event.connect(task.task_spec._on_subworkflow_completed, task)
        _decode_subprocesses(documents, sub, top, registry)
