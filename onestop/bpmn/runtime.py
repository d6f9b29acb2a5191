"""Running a process model: the only module that drives SpiffWorkflow at run time.

The engine sees :class:`Instance` and our own step types; SpiffWorkflow's tasks and
exceptions stay in here.
"""

from __future__ import annotations

import json
from copy import deepcopy
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ContextManager, Iterator, Mapping
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task as SpiffTask
from SpiffWorkflow.util.task import TaskState as SpiffState

from ..errors import BudgetExceeded, OnestopError, ProcessError
from ..rules import late_path
from .extensions import StepInfo
from .loader import ProcessModel, deep_recursion
from .sandbox import Sandbox
from .serialization import Stamps, dump_state, load_state, state_dictionary, ticking
from .timers import timer_definition, timer_expression


#: A connector: called with a copy of the process data; the mapping it returns (if any)
#: is merged into the data.
Connector = Callable[[dict[str, Any]], "Mapping[str, Any] | None"]


class _SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Routes SpiffWorkflow's evaluations through the restricted evaluator, and service
    tasks to the connectors the engine was given."""

    def __init__(self, sandbox: Sandbox, connectors: Mapping[str, Connector] | None = None,
                 ) -> None:
        super().__init__({})
        self._sandbox = sandbox
        self._connectors = dict(connectors or {})

    def evaluate(self, expression: str, context: dict[str, Any],
                 external_context: Mapping[str, Any] | None = None) -> Any:
        scope = dict(external_context or {})
        scope.update(context)
        result = self._sandbox.evaluate(expression, scope)
        if expression in _CARDINALITIES and (not isinstance(result, int)
                                             or isinstance(result, bool)
                                             or not 0 <= result <= MAX_INSTANCES):
            # SpiffWorkflow would create that many task instances at once.
            raise BudgetExceeded(f"the loop cardinality {expression.strip()!r} is "
                                 f"{_short(result)}; a multi-instance activity runs a whole "
                                 f"number of 0 to {MAX_INSTANCES} instances")
        return result

    def execute(self, script: str, context: dict[str, Any],
                external_context: Mapping[str, Any] | None = None) -> bool:
        self._sandbox.execute(script, context)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        name = kwargs.get("operation_name", "")
        connector = self._connectors.get(name)
        if connector is None:
            raise ProcessError(f"no connector {name!r} is registered with the engine "
                               f"(Engine(connectors={{{name!r}: ...}}))")
        answer = connector(json.loads(json.dumps(context, default=str)))
        if answer is None:
            return "{}"
        if not isinstance(answer, Mapping):
            raise ProcessError(f"connector {name!r} returned {type(answer).__name__}, "
                               f"not a mapping of process variables")
        try:
            return json.dumps(dict(answer), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ProcessError(f"connector {name!r} returned data that cannot be stored: "
                               f"{exc}") from None


_SANDBOX = Sandbox()
SCRIPT_ENGINE = PythonScriptEngine(environment=_SandboxEnvironment(_SANDBOX))


def script_engine(connectors: Mapping[str, Connector] | None) -> PythonScriptEngine:
    """The engine that runs models' expressions, scripts and (with ``connectors``)
    service tasks."""
    if not connectors:
        return SCRIPT_ENGINE
    return PythonScriptEngine(environment=_SandboxEnvironment(_SANDBOX, connectors))


_DICTIONARIES: dict[str, bytes] = {}
_UNFINISHED = SpiffState.NOT_FINISHED_MASK
#: How many settled rows an instance keeps before it forgets those of removed tasks.
_KEPT_ROWS = 400
_READY = SpiffState.READY
#: A reached task's state, as the late path counts it.
_REACHED = {SpiffState.READY: "open", SpiffState.COMPLETED: "done",
            SpiffState.CANCELLED: "withdrawn"}
#: The most instances a multi-instance activity may run, and the cardinality expressions
#: of the models instances were made of (their results are checked against it).
MAX_INSTANCES = 1000
_CARDINALITIES: set[str] = set()
_COUNTED: set[str] = set()


def _note_cardinalities(model: ProcessModel) -> None:
    """Register the model's loop cardinalities, and bound the collections its
    multi-instance activities iterate over (once per model)."""
    if model.spec_hash in _COUNTED:
        return
    for spec in (model.spec, *model.subprocess_specs.values()):
        for task_spec in spec.task_specs.values():
            cardinality = getattr(task_spec, "cardinality", None)
            if isinstance(cardinality, str) and cardinality.strip():
                _CARDINALITIES.add(cardinality)
            collection = getattr(task_spec, "data_input", None)
            if collection is not None and not isinstance(collection, _BoundedInput):
                task_spec.data_input = _BoundedInput(collection)
    _COUNTED.add(model.spec_hash)


def _short(value: Any) -> str:
    """A value for an error message: its repr, shortened; an enormous one by its type."""
    try:
        shown = repr(value)
    except ValueError:
        return f"a {type(value).__name__} too large to print"
    return shown if len(shown) <= 60 else f"{shown[:57]}..."


class _BoundedInput:
    """A multi-instance activity's input collection, refused when it holds more items
    than a multi-instance activity may run (the model's spec is already stored: this
    only wraps what SpiffWorkflow reads at run time)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def get(self, my_task: Any) -> Any:
        found = self._inner.get(my_task)
        if hasattr(found, "__len__") and len(found) > MAX_INSTANCES:
            raise BudgetExceeded(f"the collection {self._inner.bpmn_id!r} holds {len(found)} "
                                 f"items; a multi-instance activity runs 0 to "
                                 f"{MAX_INSTANCES} instances")
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
_LATE_PATHS: dict[str, dict[str, tuple[StepInfo | None, StepInfo | None]]] = {}
_HAS_LATE: dict[str, bool] = {}


#: From this many task specs on, running a model raises the recursion limit (SpiffWorkflow
#: predicts and runs a path by recursing from one node to the next).
_DEEP_AT = 150
_SIZES: dict[str, int] = {}


def _running(model: ProcessModel, stamps: Stamps) -> ContextManager[None]:
    """SpiffWorkflow at work on a workflow of ``model``: the workflow's counters for task
    ids and clock (see :class:`~onestop.bpmn.serialization.ticking`), and room to recurse
    along a long model's longest chain."""
    size = _SIZES.get(model.spec_hash)
    if size is None:
        size = _SIZES[model.spec_hash] = len(model.spec.task_specs) + sum(
            len(sub.task_specs) for sub in model.subprocess_specs.values())
    if size < _DEEP_AT:
        return ticking(stamps)
    return _Deep(deep_recursion(size), ticking(stamps))


class _Deep:
    """Room to recurse, and the workflow's counters, entered and left together."""

    def __init__(self, room: ContextManager[None], stamps: ticking) -> None:
        self._room, self._stamps = room, stamps

    def __enter__(self) -> None:
        self._room.__enter__()
        self._stamps.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._stamps.__exit__(*exc)
        self._room.__exit__(*exc)


def has_late_path(model: ProcessModel) -> bool:
    """Whether any step of the model plays a part on the late path."""
    found = _HAS_LATE.get(model.spec_hash)
    if found is None:
        found = _HAS_LATE[model.spec_hash] = any(
            s.sla for per in model.steps.values() for s in per.values())
    return found


def late_path_after(model: ProcessModel, element_id: str,
                    ) -> tuple[StepInfo | None, StepInfo | None]:
    """The late-path steps a flow node leads to: the first step marked
    ``onestop:sla="propose"`` and the first marked ``"apology"`` downstream of it (itself
    included), following sequence flows within its process. (None, None) for a node that
    leads to neither."""
    found = _LATE_PATHS.get(model.spec_hash)
    if found is None:
        found = _LATE_PATHS[model.spec_hash] = {}
    hit = found.get(element_id)
    if hit is None:
        hit = found[element_id] = _late_path_after(model, element_id)
    return hit


def _late_path_after(model: ProcessModel, element_id: str,
                     ) -> tuple[StepInfo | None, StepInfo | None]:
    for spec in (model.spec, *model.subprocess_specs.values()):
        start = next((t for t in spec.task_specs.values()
                      if getattr(t, "bpmn_id", None) == element_id), None)
        if start is not None:
            return _walk(model, spec, start.name)
    return None, None


def _walk(model: ProcessModel, spec: Any, start: str,
          ) -> tuple[StepInfo | None, StepInfo | None]:
    """:func:`~onestop.rules.late_path.path_after` over the task specs of ``spec``."""
    specs = spec.task_specs
    return late_path.path_after(
        start, lambda name: [o.name for o in specs[name].outputs],
        lambda name: model.step(spec.name, getattr(specs[name], "bpmn_id", None) or ""))


def model_dictionary(model: ProcessModel) -> bytes:
    """The state dictionary of ``model`` as this release derives it (what the store keeps
    for a model stored for the first time)."""
    found = _DICTIONARIES.get(model.spec_hash)
    if found is None:
        found = _DICTIONARIES[model.spec_hash] = state_dictionary(model.spec,
                                                                  model.subprocess_specs)
    return found


def evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate a model expression in the restricted evaluator; ProcessError if it fails."""
    try:
        return _SANDBOX.evaluate(expression, scope)
    except OnestopError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of model code is the model's
        raise ProcessError(f"cannot evaluate {expression.strip()!r}: "
                           f"{type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class OpenTask:
    """A user or manual task the process waits on."""

    id: str
    step: StepInfo


@dataclass(frozen=True)
class WaitingTimer:
    """A timer event the process waits on. ``due`` is None until the engine schedules
    it (or while its service-level clock is paused)."""

    id: str
    step: StepInfo
    expression: str
    due: datetime | None
    data: Mapping[str, Any]


class Instance:
    """One running process: a dossier's workflow."""

    def __init__(self, model: ProcessModel, workflow: BpmnWorkflow, stamps: Stamps,
                 dictionary: bytes | None = None) -> None:
        self.model = model
        self._workflow = workflow
        self._stamps = stamps
        self._dictionary = dictionary if dictionary is not None else model_dictionary(model)
        #: The open tasks as of the last run (None: to be looked up), and their tasks.
        self._open: list[OpenTask] | None = None
        self._ready: dict[str, SpiffTask] = {}
        self._encoded: dict[int, tuple[Any, str]] = {}
        #: Late-path tasks the last run withdrew because their activity had ended.
        self.withdrawn: set[str] = set()
        self._late = has_late_path(model)
        _note_cardinalities(model)

    @classmethod
    def start(cls, model: ProcessModel, data: Mapping[str, Any],
              engine: PythonScriptEngine = SCRIPT_ENGINE, dictionary: bytes | None = None,
              ) -> tuple["Instance", list[StepInfo]]:
        """Create a workflow, seed its data and run it to its first wait states.

        ``dictionary`` is the model's state dictionary as the store keeps it (default:
        :func:`model_dictionary`). Returns the instance and the automatic steps passed on
        the way (in order)."""
        stamps = Stamps()
        with _running(model, stamps):
            with _translated(None):
                workflow = BpmnWorkflow(model.spec, dict(model.subprocess_specs),
                                        script_engine=engine)
            start = workflow.task_tree
            start.data.update(data)
        instance = cls(model, workflow, stamps, dictionary)
        return instance, instance._advance(None)

    @classmethod
    def restore(cls, model: ProcessModel, state: bytes,
                engine: PythonScriptEngine = SCRIPT_ENGINE,
                dictionary: bytes | None = None) -> "Instance":
        """Rebuild an instance from :meth:`dump` (with the dictionary it was dumped with)."""
        dictionary = dictionary if dictionary is not None else model_dictionary(model)
        workflow, stamps = load_state(state, model, engine, dictionary)
        return cls(model, workflow, stamps, dictionary)

    def dump(self) -> bytes:
        """The instance state, without the model."""
        state = dump_state(self._workflow, self._stamps, self._encoded, self._dictionary)
        if len(self._encoded) > _KEPT_ROWS:
            # Forget the rows and references of tasks the workflow no longer has.
            alive = {task_id.int for workflow in (self._workflow,
                                                  *self._workflow.subprocesses.values())
                     for task_id in workflow.tasks}
            self._encoded = {k: v for k, v in self._encoded.items() if k in alive}
            self._stamps.refs = {k: v for k, v in self._stamps.refs.items() if k in alive}
        return state

    @property
    def completed(self) -> bool:
        """True once the process has reached its end (no task of it is unfinished)."""
        workflow = self._workflow
        # SpiffWorkflow's is_completed() walks the tree with an iterator: a plain scan of
        # the task map answers the same, several times faster.
        return bool(workflow.completed) or not any(
            task._state & _UNFINISHED for task in workflow.tasks.values())

    def open_tasks(self) -> list[OpenTask]:
        """The user and manual tasks ready for an officer, in creation order."""
        found = self._open
        if found is None:
            # A plain scan of the task maps (SpiffWorkflow's tree iterator costs several
            # times more), kept until the process runs again: every command asks it
            # before and after running.
            workflows = [self._workflow, *self._workflow.subprocesses.values()]
            ready = [task for workflow in workflows for task in workflow.tasks.values()
                     if task._state == _READY and task.task_spec.manual]
            found = self._open = [OpenTask(str(task.id), self._step(task)) for task in ready]
            self._ready = {item.id: task for item, task in zip(found, ready, strict=True)}
        return list(found)

    def open_task_ids(self) -> set[str]:
        """Ids of the ready user and manual tasks."""
        return {task.id for task in self.open_tasks()}

    def _ready_task(self, task_id: str) -> SpiffTask | None:
        """A ready task by id: from the open tasks found, else looked up."""
        if self._open is None:
            self.open_tasks()
        found = self._ready.get(task_id)
        return found if found is not None else self._workflow.get_task_from_id(UUID(task_id))

    def complete(self, task_id: str, data: Mapping[str, Any]) -> list[StepInfo]:
        """Complete a ready user task with form data; run on to the next wait states.

        Returns the automatic steps passed on the way."""
        task = self._ready_task(task_id)
        if task is None or task.state != SpiffState.READY:
            raise ProcessError(f"task {task_id} is not ready")
        task.data.update(data)
        return self._advance(task)

    def timers(self) -> list[WaitingTimer]:
        """The timer events waiting, with the due instants the engine gave them."""
        found = []
        for task in self._workflow.event_manager.tasks.values():
            definition = timer_definition(task.task_spec)
            if definition is None:
                continue
            due = task._get_internal_data("onestop_due")
            found.append(WaitingTimer(str(task.id), self._catcher(task, definition),
                                      str(definition.expression or ""),
                                      datetime.fromisoformat(due) if due else None,
                                      task.data))
        return found

    def timer_ids(self) -> set[str]:
        """Ids of the waiting timer events (cheaper than :meth:`timers`)."""
        return {str(task.id) for task in self._workflow.event_manager.tasks.values()
                if timer_expression(task.task_spec) is not None}

    def schedule(self, timer_id: str, due: datetime | None) -> None:
        """Record the due instant the engine gave a waiting timer (None: suspended)."""
        task = self._waiting_timer(timer_id)
        task._set_internal_data(onestop_due=due.isoformat() if due is not None else None,
                                event_value=due.isoformat() if due is not None else None)

    def fire(self, timer_id: str) -> list[StepInfo]:
        """Fire a waiting timer and run on to the next wait states.

        Returns the automatic steps passed on the way (the timer event first)."""
        task = self._waiting_timer(timer_id)
        task._set_internal_data(event_fired=True)
        self._open = None
        with _running(self.model, self._stamps):
            with _translated(task):
                task.task_spec._update(task)
            return self._advance(None)

    def waiting_messages(self) -> list[str]:
        """Names of the messages the process can catch now (sorted, each once): message
        catch events and receive tasks it has reached, message boundary events of the
        activities running, the messages of an event-based gateway it waits at; in
        called and embedded sub-processes too."""
        return sorted({definition.name for _task, definition in self._message_catchers()})

    def message_steps(self, name: str) -> list[StepInfo]:
        """The steps that would catch message ``name`` now (empty: none waits for it).
        At an event-based gateway, the catch event after the gateway."""
        return [self._catcher(task, definition)
                for task, definition in self._message_catchers(name)]

    def _catcher(self, task: SpiffTask, definition: Any) -> StepInfo:
        """The step whose event ``definition`` the waiting ``task`` holds: at an
        event-based gateway, the catch event after it; else the task's own step."""
        spec = task.task_spec
        if isinstance(spec.event_definition, MultipleEventDefinition):
            # The gateway holds its events' definitions in the order of its outputs.
            at = spec.event_definition.event_definitions.index(definition)
            target = spec.outputs[at] if at < len(spec.outputs) else spec
            step = self.model.step(task.workflow.spec.name,
                                   getattr(target, "bpmn_id", None) or "")
            if step is not None:
                return step
        return self._step(task)

    def deliver(self, name: str, data: Mapping[str, Any]) -> list[StepInfo]:
        """Deliver message ``name`` with ``data`` and run on to the next wait states.

        Every event waiting for the message catches it; ``data`` is merged into the
        process data each catching event passes on (so conditions downstream read its
        fields as variables). Returns the automatic steps passed on the way, the catching
        events among them. ProcessError when nothing waits for the message."""
        catchers = self._message_catchers(name)
        if not catchers:
            raise ProcessError(f"the process is not waiting for message {name!r}")
        payload = dict(data)
        self._open = None
        with _running(self.model, self._stamps), _translated(catchers[0][0]):
            # Matched by definition class and name: the first catcher's stands for all.
            self._workflow.send_event(BpmnEvent(catchers[0][1], payload=deepcopy(payload)))
            for task, _definition in catchers:
                # Caught: the task is ready, its data inherited; SpiffWorkflow's message
                # events copy a payload only into a spiffworkflow:messageVariable.
                if task.state == SpiffState.READY:
                    task.data.update(deepcopy(payload))
                    self._rearm(task)
        passed = self._advance(None)
        for task, definition in catchers:
            # SpiffWorkflow leaves the payload in the caught task's internal data (the
            # message's reset clears the variable's name, not the message's; an event-based
            # gateway keeps the events it saw). It is in the data now: drop the copy.
            if task.has_state(SpiffState.FINISHED_MASK):
                task.internal_data.pop(definition.name, None)
                if isinstance(task.task_spec.event_definition, MultipleEventDefinition):
                    task.internal_data.pop("seen_events", None)
        return passed

    @staticmethod
    def _rearm(task: SpiffTask) -> None:
        """Wait again at a non-interrupting boundary event that just caught, while its
        activity runs: BPMN lets it catch any number of times, SpiffWorkflow once."""
        spec, split = task.task_spec, task.parent
        if not isinstance(spec, BoundaryEvent) or spec.cancel_activity or split is None \
                or not isinstance(split.task_spec, BoundaryEventSplit):
            return
        main = next((t for t in split.children
                     if not isinstance(t.task_spec, BoundaryEvent)), None)
        if main is None or main.has_state(SpiffState.FINISHED_MASK):
            return
        # Added as SpiffWorkflow adds boundary events: predicted, so that updating it
        # lays out its outgoing path, inherits the data and makes it wait.
        again = split._add_child(spec, state=SpiffState.MAYBE)
        spec._update(again)

    def _message_catchers(self, name: str | None = None,
                          ) -> list[tuple[SpiffTask, MessageEventDefinition]]:
        """Waiting tasks that catch a message now (of ``name``, or any), with the
        message definition each catches it by."""
        found = []
        # Events in called and embedded sub-processes register with the top workflow.
        for task in list(self._workflow.event_manager.tasks.values()):
            definition = getattr(task.task_spec, "event_definition", None)
            inner = definition.event_definitions \
                if isinstance(definition, MultipleEventDefinition) else [definition]
            for each in inner:
                if not isinstance(each, MessageEventDefinition) or not each.name \
                        or (name is not None and each.name != name):
                    continue
                if task.task_spec.catches(task, BpmnEvent(each)):
                    found.append((task, each))
        return found

    def data(self) -> dict[str, Any]:
        """The process data where the process waits now (its ready and waiting tasks)."""
        merged: dict[str, Any] = {}
        workflows = [self._workflow, *self._workflow.subprocesses.values()]
        for workflow in workflows:
            for task in workflow.tasks.values():
                if task.state in (SpiffState.READY, SpiffState.WAITING):
                    merged.update(task.data)
        return merged

    def update_task_data(self, task_id: str, values: Mapping[str, Any]) -> None:
        """Fill in data of a ready task (what it is handed before an officer opens it);
        :meth:`prefilled` remembers which fields."""
        task = self._workflow.get_task_from_id(UUID(task_id))
        if task is None or task.state != SpiffState.READY:
            raise ProcessError(f"task {task_id} is not ready")
        task.data.update(values)
        filled = set(task._get_internal_data("onestop_prefilled", None) or ())
        task._set_internal_data(onestop_prefilled=sorted(filled | set(values)))

    def late_steps(self) -> list[tuple[str, str]]:
        """The late-path part (``propose`` or ``apology``) of each step marked
        ``onestop:sla`` the process has reached, and where it stands: ``open``, ``done``
        or ``withdrawn``."""
        if not self._late:
            return []
        found = []
        for workflow in [self._workflow, *self._workflow.subprocesses.values()]:
            for task in workflow.tasks.values():
                if not task.task_spec.manual or task.state not in _REACHED:
                    continue
                step = self._step(task)
                if step.sla:
                    found.append((step.sla, _REACHED[task.state]))
        return found

    def task_data(self, task_id: str) -> tuple[dict[str, Any], set[str]]:
        """The data a ready task sees (the process data at that step), and the fields
        :meth:`update_task_data` filled in on it."""
        task = self._ready_task(task_id)
        if task is None:
            return {}, set()
        return dict(task.data), set(task._get_internal_data("onestop_prefilled", None) or ())

    def step_of(self, task_id: str) -> StepInfo | None:
        """The step a task (open, done or cancelled) belongs to."""
        task = self._workflow.get_task_from_id(UUID(task_id))
        return self._step(task) if task is not None else None

    def _waiting_timer(self, timer_id: str) -> SpiffTask:
        task = self._workflow.event_manager.tasks.get(UUID(timer_id))
        if task is None or timer_expression(task.task_spec) is None:
            raise ProcessError(f"timer {timer_id} is not waiting")
        return task

    def _advance(self, task: SpiffTask | None) -> list[StepInfo]:
        passed: list[StepInfo] = []

        def record(done: SpiffTask) -> None:
            step = self._step(done)
            if step.id:
                passed.append(step)

        self.withdrawn = set()
        self._open = None
        with _running(self.model, self._stamps), _translated(task):
            if task is not None:
                task.run()
            self._workflow.do_engine_steps(did_complete_task=record)
            while self._late and self._withdraw_late_paths():
                self._workflow.do_engine_steps(did_complete_task=record)
        return passed

    def _withdraw_late_paths(self) -> bool:
        """Cancel what is left of a late path (the branch out of a boundary event that
        leads to steps marked ``onestop:sla``) once the activity it watches has ended:
        the resolution finished, or was interrupted, so nobody is to be asked why it
        will be late. True when something was withdrawn (the caller runs the engine on:
        a join may now complete)."""
        withdrawn = False
        for workflow in [self._workflow, *self._workflow.subprocesses.values()]:
            changed = False
            for boundary in list(workflow.tasks.values()):
                spec = boundary.task_spec
                if boundary.state != SpiffState.COMPLETED \
                        or not isinstance(spec, BoundaryEvent) \
                        or late_path_after(self.model, getattr(spec, "bpmn_id", "") or "")[0] \
                        is None:
                    continue
                split = boundary.parent
                main = next((t for t in split.children
                             if not isinstance(t.task_spec, BoundaryEvent)), None) \
                    if split is not None else None
                if main is None or not main.has_state(SpiffState.FINISHED_MASK):
                    continue
                left = [t for t in boundary if t.has_state(SpiffState.DEFINITE_MASK)]
                if not left:
                    continue
                self.withdrawn |= {str(t.id) for t in left
                                   if t.state == SpiffState.READY and t.task_spec.manual}
                boundary.cancel()       # finished itself: cancels what is left below it
                changed = withdrawn = True
            if changed:
                # A join waiting for the withdrawn branch (the process end) looks again.
                for waiting in list(workflow.tasks.values()):
                    if waiting.state == SpiffState.WAITING \
                            and not isinstance(waiting.task_spec, CatchingEvent):
                        waiting.task_spec._update(waiting)
        return withdrawn

    def _step(self, task: SpiffTask) -> StepInfo:
        spec = task.task_spec
        bpmn_id = getattr(spec, "bpmn_id", None) or ""
        step = self.model.step(task.workflow.spec.name, bpmn_id)
        if step is None:
            return StepInfo(id=bpmn_id, name=getattr(spec, "bpmn_name", None) or spec.name,
                            kind=type(spec).__name__)
        return step


@contextmanager
def _translated(task: SpiffTask | None) -> Iterator[None]:
    """SpiffWorkflow's failures while running, as a ProcessError naming the element."""
    try:
        yield
    except OnestopError:
        raise
    except SpiffWorkflowException as exc:
        raise _process_error(exc, task) from None
    except RecursionError:
        raise ProcessError("the process runs through more steps in one go than the engine "
                           "can follow; split the chain of automatic steps") from None
    except Exception as exc:  # noqa: BLE001 - what a model makes SpiffWorkflow do is its
        element = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
        raise ProcessError(f"{type(exc).__name__}: {exc}", element=element) from None


def _process_error(exc: SpiffWorkflowException, task: SpiffTask | None) -> ProcessError:
    failing = getattr(exc, "task", None) or task
    element = getattr(getattr(failing, "task_spec", None), "bpmn_id", None)
    # SpiffWorkflow wraps what an expression raised and keeps only its class name: a
    # budget error keeps its own message (which limit, which expression) and class.
    context, hops = exc.__context__, 0
    while context is not None and hops < 8:
        if isinstance(context, BudgetExceeded):
            return BudgetExceeded(context.reason, element=element)
        context, hops = context.__context__, hops + 1
    message = exc.args[0] if exc.args else str(exc)
    notes = getattr(exc, "notes", None) or getattr(exc, "__notes__", None) or []
    cause = getattr(exc, "exception", None)
    if cause is not None and str(cause) not in str(message):
        message = f"{message}: {cause}"
    if notes:
        message = f"{message} ({'; '.join(str(n) for n in notes)})"
    return ProcessError(str(message), element=element)
