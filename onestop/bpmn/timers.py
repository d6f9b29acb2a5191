"""Timer events that wait for the engine, not for the wall clock.

SpiffWorkflow's timer events read the wall clock and compute their due instant in
calendar time. Here a timer event only says whether it has been fired: the engine works
out its due instant (in working time unless the timer says ``clock="calendar"``, on the
injected clock), stores it in an indexed table, and fires it from
``Engine.fire_due_timers()``.

A timer's text may be written the way Camunda Modeler writes it, bare: ``P2D``,
``PT4H``, ``2025-07-15T08:00:00+07:00``; quoted, as SpiffWorkflow's own examples do:
``"P2D"``; in onestop's units: ``1.5wd``, ``4wh``, ``30d``; or as an expression the
restricted evaluator computes from the dossier's data and its service-level instants
``appointment``, ``apology_due``, ``apology_warning`` and ``apology_overdue`` (ISO text;
``None`` while the clock is paused, or while the late path does not need the timer).
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.serializer.default.event_definition import (
    TimerConditionalEventDefinitionConverter,
)
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)

from ..timevalue import SLA_NAMES, IsoDuration, TimerValue, literal, read_value, uses_sla

__all__ = ["SLA_NAMES", "IsoDuration", "TimerValue", "literal", "read_value", "uses_sla",
           "DurationTimer", "DateTimer", "TIMER_CONFIG", "adopt_timers", "timer_definition",
           "timer_expression"]

class DurationTimer(DurationTimerEventDefinition):
    """A duration timer (``timeDuration``) fired by the engine."""

    def has_fired(self, my_task: Any) -> bool:
        """Whether the engine has fired the timer (its due instant is the engine's)."""
        return bool(my_task._get_internal_data("event_fired", False))


class DateTimer(TimeDateEventDefinition):
    """A date timer (``timeDate``) fired by the engine."""

    def has_fired(self, my_task: Any) -> bool:
        """Whether the engine has fired the timer (its due instant is the engine's)."""
        return bool(my_task._get_internal_data("event_fired", False))


#: How the specs store these timers: as SpiffWorkflow stores its own.
TIMER_CONFIG = {
    DurationTimer: TimerConditionalEventDefinitionConverter,
    DateTimer: TimerConditionalEventDefinitionConverter,
}


def adopt_timers(spec: Any) -> str | None:
    """Swap SpiffWorkflow's wall-clock timers in ``spec`` for engine-fired ones.

    Returns the id of the first cycle timer found (not supported), else None."""
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if definition is None:
            continue
        if isinstance(definition, MultipleEventDefinition):
            definitions = definition.event_definitions
            for n, inner in enumerate(definitions):
                if isinstance(inner, CycleTimerEventDefinition):
                    return str(getattr(task_spec, "bpmn_id", task_spec.name))
                definitions[n] = _adopted(inner)
        elif isinstance(definition, CycleTimerEventDefinition):
            return str(getattr(task_spec, "bpmn_id", task_spec.name))
        else:
            task_spec.event_definition = _adopted(definition)
    return None


def timer_definition(task_spec: Any) -> Any:
    """A task spec's timer definition, if it is a timer event (or an event-based gateway
    waiting on one); else None."""
    definition = getattr(task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        definition = next((d for d in definition.event_definitions
                           if isinstance(d, (DurationTimer, DateTimer))), None)
    return definition if isinstance(definition, (DurationTimer, DateTimer)) else None


def timer_expression(task_spec: Any) -> str | None:
    """The text of a task spec's timer, if it is a timer event."""
    definition = timer_definition(task_spec)
    return None if definition is None else str(definition.expression or "")


def _adopted(definition: Any) -> Any:
    for theirs, ours in ((DurationTimerEventDefinition, DurationTimer),
                         (TimeDateEventDefinition, DateTimer)):
        if type(definition) is theirs:
            return ours(definition.name, definition.expression,
                        description=definition.description)
    return definition
