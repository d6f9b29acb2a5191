"""Public value types: what the engine hands back to portal backends.

Everything here is an immutable snapshot; to act, call the engine again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, IntEnum
from typing import Any, Iterable, Mapping

from .errors import InvalidInput
from .events import Event, EventKind

__all__ = ["Channel", "Dossier", "DossierStatus", "DossierSummary", "Event", "EventKind",
           "Feedback", "FiredTimer", "FormField", "Officer", "OutboxMessage", "Task",
           "TaskState"]


class Channel(IntEnum):
    """How the dossier reached the one-stop desk (national channel codes)."""

    IN_PERSON = 1
    ONLINE = 2
    POSTAL = 3


class DossierStatus(IntEnum):
    """National dossier status codes used for portal sync."""

    NEWLY_REGISTERED = 1
    RECEIVED = 2
    NOT_RECEIVED = 3
    IN_PROGRESS = 4
    SUPPLEMENT_REQUESTED = 5
    AWAITING_FINANCIAL_OBLIGATION = 6
    WITHDRAWAL_REQUESTED = 7
    PROCESSING_STOPPED = 8
    RESOLVED = 9
    RESULT_RETURNED = 10

    @property
    def label_vi(self) -> str:
        """The status as officers and citizens read it."""
        return _STATUS_LABELS_VI[self]


_STATUS_LABELS_VI = {
    DossierStatus.NEWLY_REGISTERED: "Mới đăng ký",
    DossierStatus.RECEIVED: "Đã tiếp nhận",
    DossierStatus.NOT_RECEIVED: "Không được tiếp nhận",
    DossierStatus.IN_PROGRESS: "Đang xử lý",
    DossierStatus.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung hồ sơ",
    DossierStatus.AWAITING_FINANCIAL_OBLIGATION: "Chờ thực hiện nghĩa vụ tài chính",
    DossierStatus.WITHDRAWAL_REQUESTED: "Công dân yêu cầu rút hồ sơ",
    DossierStatus.PROCESSING_STOPPED: "Dừng xử lý",
    DossierStatus.RESOLVED: "Đã giải quyết xong",
    DossierStatus.RESULT_RETURNED: "Đã trả kết quả",
}


class TaskState(str, Enum):
    """Where an open task stands in the inboxes: anyone of its role may take it, or one
    officer holds it. (Completed and cancelled tasks are in the dossier's history.)"""

    READY = "ready"
    CLAIMED = "claimed"


@dataclass(frozen=True)
class Officer:
    """A civil servant and the roles they hold, per agency.

    ``roles`` maps an agency code to the role names held there, e.g.
    ``{"DESK-XA-01": ["receiving_officer"]}``.
    """

    id: str
    name: str
    roles: Mapping[str, Iterable[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here, so a wrong shape fails where the officer is written down.
        from .inputs import identifier, text

        who = identifier("officer id", self.id)
        object.__setattr__(self, "id", who)
        object.__setattr__(self, "name", text(f"officer {who}: name", self.name,
                                              max_length=200))
        if not isinstance(self.roles, Mapping):
            raise InvalidInput(f"officer {who}: roles must map agency codes to lists of "
                               f"role names, not {type(self.roles).__name__}")
        roles: dict[str, frozenset[str]] = {}
        for agency, names in self.roles.items():
            agency = identifier(f"officer {who}: agency", agency)
            if isinstance(names, (str, bytes)) or not isinstance(names, Iterable) \
                    or isinstance(names, Mapping):
                raise InvalidInput(f"officer {who}: roles at {agency} must be a list of "
                                   f"role names, not {names!r}"
                                   + (f" (write [{names!r}])" if isinstance(names, str)
                                      else ""))
            roles[agency] = frozenset(identifier(f"officer {who}: role at {agency}", name)
                                      for name in names)
        object.__setattr__(self, "roles", roles)

    def has_role(self, agency: str, role: str) -> bool:
        """True when the officer holds ``role`` in ``agency``."""
        return role in self.roles.get(agency, ())


@dataclass(frozen=True)
class FormField:
    """A field an officer fills when completing a step: ``required`` fields must be
    given, and a field with ``choices`` takes one of them."""

    name: str
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """One open step of a dossier, waiting for an officer of ``role`` in ``agency``."""

    id: str
    dossier_code: str
    step: str
    name: str
    role: str
    agency: str
    ready_at: datetime
    claimed_by: str | None = None
    form: tuple[FormField, ...] = ()
    due_at: datetime | None = None

    @property
    def state(self) -> TaskState:
        """Claimed by someone, or ready for anyone of its role."""
        return TaskState.CLAIMED if self.claimed_by else TaskState.READY


@dataclass(frozen=True)
class Dossier:
    """A snapshot of a dossier (hồ sơ): where it is and who holds it.

    ``regime`` is the legal regime bound at receipt; ``appointment_at`` the appointment
    (ngày hẹn trả kết quả), set when the dossier is accepted as complete."""

    code: str
    procedure: str
    procedure_name: str
    status: DossierStatus
    channel: Channel
    desk_agency: str
    resolving_agency: str
    received_at: datetime
    received_by: str
    applicant: Mapping[str, Any]
    components: tuple[str, ...]
    process: str
    spec_hash: str
    finished_at: datetime | None
    open_tasks: tuple[Task, ...]
    regime: str = ""
    appointment_at: datetime | None = None
    #: Required components of the procedure the dossier does not have (handed in or held).
    missing_components: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        """True once the process has ended (result returned, refused, ...)."""
        return self.finished_at is not None

    @property
    def current_steps(self) -> tuple[str, ...]:
        """The step ids the dossier is waiting in."""
        return tuple(task.step for task in self.open_tasks)

    @property
    def owners(self) -> tuple[str, ...]:
        """Who holds the dossier now: the claiming officer, or ``role@agency`` for an
        unclaimed step."""
        return tuple(task.claimed_by or f"{task.role}@{task.agency}"
                     for task in self.open_tasks)


@dataclass(frozen=True)
class OutboxMessage:
    """A message for the national portal (Cổng Dịch vụ công quốc gia), written with the
    change it reports: ``kind`` ``dossier`` for a receipt (DongBoHoSoMC), ``progress``
    for a status or appointment change (CapNhatTienDoHoSoMC). ``key`` is its idempotency
    key: the portal can be sent a message twice, never two messages under one key."""

    key: str
    dossier_code: str
    kind: str
    status: DossierStatus
    at: datetime
    payload: Mapping[str, Any]
    id: int = 0


@dataclass(frozen=True)
class DossierSummary:
    """A dossier as lists show it (:meth:`~onestop.Engine.dossiers`): no open steps.

    ``due_at`` is the legal due instant (moved only by supplement pauses);
    ``appointment_at`` the appointment the applicant holds (a new one after an
    apology); ``resolved_at`` when it was resolved. ``id`` orders dossiers by receipt:
    pass the last one seen as ``after=`` to read the next page."""

    id: int
    code: str
    procedure: str
    procedure_name: str
    status: DossierStatus
    channel: Channel
    desk_agency: str
    resolving_agency: str
    received_at: datetime
    applicant_name: str | None
    applicant_id: str | None
    due_at: datetime | None
    appointment_at: datetime | None
    resolved_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Feedback:
    """An applicant's feedback or petition on a dossier (phản ánh, kiến nghị), numbered
    within the dossier, with its deadline and, once given, the answer and the
    applicant's rating of it."""

    dossier_code: str
    number: int
    kind: str
    text: str
    received_at: datetime
    due_at: datetime
    answered_at: datetime | None = None
    answered_by: str | None = None
    answer: str | None = None
    on_time: bool | None = None
    rating: str | None = None


@dataclass(frozen=True)
class FiredTimer:
    """A timer the engine fired in a sweep (``error`` set when its dossier could not
    move on; the timer then stays due and is retried by the next sweep)."""

    dossier_code: str
    step: str
    due_at: datetime
    fired_at: datetime
    error: str | None = None
