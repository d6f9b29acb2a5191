"""The event log's types: one payload type per kind of event, with the schema version of
their encoding, encoded and decoded here and nowhere else.

The log is the single source for everything downstream (the control sheet, the SLA
report, forms, reports, exports): the ``received`` event alone says who applied for
what, where, through which channel, under which rules, with which components and at what
fee, so nothing downstream needs the dossier's row.

A payload is stored as JSON (``Event.detail``: instants as ISO 8601 text in Vietnam's
time zone) next to :data:`EVENT_SCHEMA`. Reading an entry written under an earlier schema
upcasts it first (:func:`upcast`), so the rest of onestop only ever sees the current one.

Schema versions:

1. onestop 0.1: ``received`` held the procedure, channel, components, desk,
   boundary-free flag and held codes only.
2. ``received`` holds everything a form or report needs (:class:`Received`). The store's
   migration fills in what the dossier row knew for entries written under 1; what was not
   kept then (components to digitize, missing, fee due) reads as None.
3. The records the service-quality indicators count: ``digitized``, ``data_reused``,
   ``paid``, ``result_issued``, ``rated``, ``feedback_received``, ``feedback_answered``;
   ``received`` says where held data came from (``sources``; ``{}`` under 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Mapping, Union

#: The schema version of the payloads this release writes.
EVENT_SCHEMA = 3


class EventKind(str, Enum):
    """Kinds of entries in the append-only event log."""

    RECEIVED = "received"
    TASK_READY = "task_ready"
    CLAIMED = "claimed"
    RELEASED = "released"
    COMPLETED = "completed"
    HANDED_OVER = "handed_over"
    TIMER_FIRED = "timer_fired"
    MESSAGE_RECEIVED = "message_received"
    TASK_CANCELLED = "task_cancelled"
    #: An officer handed a task to another on a leader's decision.
    REASSIGNED = "reassigned"
    #: The responsible agency answered the late path's prompt (will the dossier be late?).
    DELAY_ASSESSED = "delay_assessed"
    #: An officer of the resolving side started the late path before the warning.
    APOLOGY_REQUESTED = "apology_requested"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    APPOINTMENT_SET = "appointment_set"
    STATUS_CHANGED = "status_changed"
    FINISHED = "finished"
    #: Components scanned and signed (số hóa), with their document codes.
    DIGITIZED = "digitized"
    #: Components taken from the state's databases instead of the applicant.
    DATA_REUSED = "data_reused"
    #: A fee or charge was paid, online or at the desk.
    PAID = "paid"
    #: The result was issued, electronically, on paper or both.
    RESULT_ISSUED = "result_issued"
    #: The applicant rated their satisfaction (with the dossier or with a feedback answer).
    RATED = "rated"
    #: The applicant sent feedback or a petition (phản ánh, kiến nghị) about the dossier.
    FEEDBACK_RECEIVED = "feedback_received"
    FEEDBACK_ANSWERED = "feedback_answered"


def _key(name: str, default: Any = None) -> Any:
    """A payload field stored under another JSON key (``from`` is a Python keyword)."""
    return field(default=default, metadata={"key": name})


@dataclass(frozen=True)
class _Payload:
    """What all payloads share: their kind, and how absent values are stored."""

    kind: ClassVar[EventKind]
    #: Leave out fields that are None (and store no detail at all when every one is).
    omit_none: ClassVar[bool] = True


@dataclass(frozen=True)
class Received(_Payload):
    """A dossier was received (tiếp nhận): everything forms and reports need of it.

    ``components`` are the codes handed in and then those ``held`` (re-used from the
    state's databases); ``to_digitize`` the handed-in ones to scan; ``missing`` the
    required ones neither handed in nor held; ``fee_due`` in VND; ``sources`` says where
    held data came from (component -> database), when told. ``agencies`` maps the
    procedure's slots to agencies. The procedure's version is its catalogue name and
    legal time (the dossier's channel's) and the process model's hash (``model``)."""

    kind: ClassVar[EventKind] = EventKind.RECEIVED
    omit_none: ClassVar[bool] = False
    procedure: str
    channel: int
    desk: str
    applicant: Mapping[str, Any] = field(default_factory=dict)
    procedure_name: str | None = None
    legal_time: str | None = None
    model: str | None = None
    resolving_agency: str | None = None
    agencies: Mapping[str, str] = field(default_factory=dict)
    regime: str | None = None
    boundary_free: bool = False
    components: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    to_digitize: tuple[str, ...] | None = None
    missing: tuple[str, ...] | None = None
    fee_due: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskReady(_Payload):
    """A task opened; ``due`` is its deadline, if its step has an allotment."""

    kind: ClassVar[EventKind] = EventKind.TASK_READY
    due: datetime | None = None


@dataclass(frozen=True)
class Claimed(_Payload):
    """An officer took a task (nhận xử lý)."""

    kind: ClassVar[EventKind] = EventKind.CLAIMED


@dataclass(frozen=True)
class Released(_Payload):
    """A claimed task went back to its role's pool; ``holder`` when a leader released
    someone else's claim."""

    kind: ClassVar[EventKind] = EventKind.RELEASED
    holder: str | None = None


@dataclass(frozen=True)
class Reassigned(_Payload):
    """A leader gave an open task to an officer (phân công lại)."""

    kind: ClassVar[EventKind] = EventKind.REASSIGNED
    omit_none: ClassVar[bool] = False
    from_officer: str | None = _key("from")
    to_officer: str | None = _key("to")


@dataclass(frozen=True)
class Completed(_Payload):
    """An officer completed a task with its form's data (stored as the detail itself)."""

    kind: ClassVar[EventKind] = EventKind.COMPLETED
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HandedOver(_Payload):
    """The dossier moved from one step to the next (bàn giao)."""

    kind: ClassVar[EventKind] = EventKind.HANDED_OVER
    to_step: str | None = None
    to_agency: str | None = None
    to_role: str | None = None


@dataclass(frozen=True)
class TimerFired(_Payload):
    """A timer event fired; ``due`` is when it fell due."""

    kind: ClassVar[EventKind] = EventKind.TIMER_FIRED
    due: datetime | None = None


@dataclass(frozen=True)
class MessageReceived(_Payload):
    """A message reached the dossier (the applicant, the payment platform, an agency)."""

    kind: ClassVar[EventKind] = EventKind.MESSAGE_RECEIVED
    omit_none: ClassVar[bool] = False
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskCancelled(_Payload):
    """An open task was cancelled; ``reason`` ``resolution_ended`` for a late path's
    step withdrawn because the resolution it watched had ended."""

    kind: ClassVar[EventKind] = EventKind.TASK_CANCELLED
    reason: str | None = None


@dataclass(frozen=True)
class DelayAssessed(_Payload):
    """The responsible agency answered the late path's prompt."""

    kind: ClassVar[EventKind] = EventKind.DELAY_ASSESSED
    will_be_late: bool = False
    overdue: bool = False
    delay_reason: str | None = None
    new_appointment: datetime | None = None
    appointment: datetime | None = None


@dataclass(frozen=True)
class ApologyRequested(_Payload):
    """An officer of the resolving side started the late path ahead of the warning."""

    kind: ClassVar[EventKind] = EventKind.APOLOGY_REQUESTED
    omit_none: ClassVar[bool] = False
    reason: str | None = None
    timer_due: datetime | None = None


@dataclass(frozen=True)
class SupplementRequested(_Payload):
    """An agency asked the applicant for a supplement during resolution: the
    service-level clock stops (``clock``: the regime's ``pause`` or ``restart``)."""

    kind: ClassVar[EventKind] = EventKind.SUPPLEMENT_REQUESTED
    paused: bool = True
    clock: str | None = None
    appointment: datetime | None = None


@dataclass(frozen=True)
class AppointmentSet(_Payload):
    """The appointment moved: ``reason`` ``apology`` (the letter, with its particulars)
    or ``supplement_pause`` / ``supplement_restart`` (the clock resumed)."""

    kind: ClassVar[EventKind] = EventKind.APPOINTMENT_SET
    omit_none: ClassVar[bool] = False
    appointment: datetime | None = None
    previous: datetime | None = None
    reason: str | None = None
    delay_reason: str | None = None
    responsible: str | None = None
    form: str | None = None
    latest: datetime | None = None
    in_time: bool | None = None
    after_due: bool | None = None

    #: The fields only an apology letter has.
    LETTER: ClassVar[tuple[str, ...]] = ("delay_reason", "responsible", "form", "latest",
                                         "in_time", "after_due")


@dataclass(frozen=True)
class StatusChanged(_Payload):
    """The dossier's status code changed; ``appointment`` when accepting it set one."""

    kind: ClassVar[EventKind] = EventKind.STATUS_CHANGED
    from_status: int | None = _key("from")
    to_status: int | None = _key("to")
    appointment: datetime | None = None


@dataclass(frozen=True)
class Finished(_Payload):
    """The process reached its end with the dossier at ``status``."""

    kind: ClassVar[EventKind] = EventKind.FINISHED
    status: int | None = None


@dataclass(frozen=True)
class Digitized(_Payload):
    """Components were scanned and signed (số hóa): component code -> document code."""

    kind: ClassVar[EventKind] = EventKind.DIGITIZED
    documents: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataReused(_Payload):
    """Components were taken from the state's databases (tái sử dụng dữ liệu): component
    code -> the database they came from."""

    kind: ClassVar[EventKind] = EventKind.DATA_REUSED
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Paid(_Payload):
    """A fee was paid: ``amount`` in VND, ``online`` (the payment platform) or at the
    desk, with the payment's ``reference`` when there is one."""

    kind: ClassVar[EventKind] = EventKind.PAID
    omit_none: ClassVar[bool] = False
    amount: int = 0
    online: bool = False
    reference: str | None = None


@dataclass(frozen=True)
class ResultIssued(_Payload):
    """The result was issued: ``electronic`` (to the applicant's e-store), ``paper``, or
    both, with its documents' codes."""

    kind: ClassVar[EventKind] = EventKind.RESULT_ISSUED
    electronic: bool = False
    paper: bool = False
    documents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rated(_Payload):
    """The applicant's satisfaction (``level``: very_satisfied, satisfied, dissatisfied)
    with the dossier's handling, or with the answer to feedback ``feedback``."""

    kind: ClassVar[EventKind] = EventKind.RATED
    level: str = ""
    feedback: int | None = None
    comment: str | None = None


@dataclass(frozen=True)
class FeedbackReceived(_Payload):
    """Feedback number ``number`` of the dossier (``kind_of``: phan_anh or kien_nghi),
    to be answered by ``due`` (the regime's feedback time, in working time)."""

    kind: ClassVar[EventKind] = EventKind.FEEDBACK_RECEIVED
    number: int = 0
    kind_of: str = _key("type", "phan_anh")
    text: str = ""
    due: datetime | None = None


@dataclass(frozen=True)
class FeedbackAnswered(_Payload):
    """Feedback ``number`` was answered; ``on_time`` by its due instant."""

    kind: ClassVar[EventKind] = EventKind.FEEDBACK_ANSWERED
    number: int = 0
    answer: str = ""
    due: datetime | None = None
    on_time: bool = True


#: Any event's payload.
Payload = Union[Received, TaskReady, Claimed, Released, Reassigned, Completed, HandedOver,
                TimerFired, MessageReceived, TaskCancelled, DelayAssessed, ApologyRequested,
                SupplementRequested, AppointmentSet, StatusChanged, Finished, Digitized,
                DataReused, Paid, ResultIssued, Rated, FeedbackReceived, FeedbackAnswered]

PAYLOADS: Mapping[EventKind, type[_Payload]] = {cls.kind: cls for cls in (
    Received, TaskReady, Claimed, Released, Reassigned, Completed, HandedOver, TimerFired,
    MessageReceived, TaskCancelled, DelayAssessed, ApologyRequested, SupplementRequested,
    AppointmentSet, StatusChanged, Finished, Digitized, DataReused, Paid, ResultIssued,
    Rated, FeedbackReceived, FeedbackAnswered)}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


#: Each payload type's fields: (attribute, JSON key), in order.
_KEYS: dict[type, tuple[tuple[str, str], ...]] = {
    cls: tuple((each.name, each.metadata.get("key", each.name)) for each in fields(cls))
    for cls in PAYLOADS.values()}
_PLAIN = (str, int, float, bool)


def _task_ready(payload: Any) -> dict[str, Any] | None:
    return {"due": payload.due.isoformat()} if payload.due is not None else None


def _handed_over(payload: Any) -> dict[str, Any] | None:
    return {"to_step": payload.to_step, "to_agency": payload.to_agency,
            "to_role": payload.to_role}


def _status_changed(payload: Any) -> dict[str, Any] | None:
    found: dict[str, Any] = {"from": payload.from_status, "to": payload.to_status}
    if payload.appointment is not None:
        found["appointment"] = payload.appointment.isoformat()
    return found


#: The payloads every command writes, encoded without the general walk over fields
#: (the same detail :func:`encode` would give; tests/test_events.py reads them back).
_QUICK: dict[type, Any] = {TaskReady: _task_ready, HandedOver: _handed_over,
                           StatusChanged: _status_changed,
                           Completed: lambda payload: dict(payload.data) or None,
                           Claimed: lambda payload: None}


def encode(payload: _Payload) -> dict[str, Any] | None:
    """A payload as the event's stored detail (None: nothing to store)."""
    quick = _QUICK.get(type(payload))
    if quick is not None:
        found: dict[str, Any] | None = quick(payload)
        return found
    letter_only = isinstance(payload, AppointmentSet) and payload.reason != "apology"
    omit_none = payload.omit_none
    found = {}
    for name, key in _KEYS[type(payload)]:
        value = getattr(payload, name)
        if value is None:
            if omit_none:
                continue
        elif not isinstance(value, _PLAIN):
            value = _json_value(value)
        if letter_only and name in AppointmentSet.LETTER:
            continue
        found[key] = value
    return found or None


_INSTANTS = {"due", "new_appointment", "appointment", "timer_due", "previous", "latest"}
_CODES = {"components", "held", "to_digitize", "missing", "documents"}


def decode(kind: EventKind | str, detail: Mapping[str, Any] | None) -> Payload:
    """The typed payload of a stored detail (of the current schema)."""
    cls = PAYLOADS[EventKind(kind)]
    detail = detail or {}
    if cls is Completed:
        return Completed(data=dict(detail))
    values: dict[str, Any] = {}
    for each in fields(cls):
        key = each.metadata.get("key", each.name)
        if key not in detail:
            continue
        value = detail[key]
        if each.name in _INSTANTS and isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif each.name in _CODES and isinstance(value, list):
            value = tuple(value)
        values[each.name] = value
    return cls(**values)  # type: ignore[return-value]


def upcast(kind: str, detail: Mapping[str, Any] | None, version: int,
           ) -> dict[str, Any] | None:
    """A stored detail written under schema ``version``, as the current schema has it."""
    if version > EVENT_SCHEMA:
        raise ValueError(f"event schema {version} is newer than this release's "
                         f"({EVENT_SCHEMA}): the log was written by a newer onestop")
    found = dict(detail) if detail is not None else None
    if version < 2 and kind == EventKind.RECEIVED.value:
        found = dict(found or {})
        for name in ("applicant", "agencies"):
            found.setdefault(name, {})
        for name in ("procedure_name", "legal_time", "model", "resolving_agency", "regime",
                     "to_digitize", "missing", "fee_due"):
            found.setdefault(name, None)
    if version < 3 and kind == EventKind.RECEIVED.value:
        found = dict(found or {})
        found.setdefault("sources", {})
    return found


@dataclass(frozen=True)
class Event:
    """One entry of the event log (the control sheet, the SLA report, forms and reports
    are read from these).

    ``detail`` is the payload as stored (JSON: instants as ISO 8601 text); ``payload`` is
    the same, typed (:class:`Received`, :class:`Completed`, ...). ``id`` orders the log
    across dossiers: pass the last one seen as ``after=`` to read on from there."""

    dossier_code: str
    at: datetime
    kind: EventKind
    step: str | None
    actor: str | None
    agency: str | None
    detail: Mapping[str, Any]
    id: int = 0
    procedure: str | None = None

    @property
    def payload(self) -> Payload:
        """The typed payload of this entry."""
        return decode(self.kind, self.detail)
