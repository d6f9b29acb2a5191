"""What the national portal must be told, decided without I/O.

Provincial systems sync each dossier to the Cổng Dịch vụ công quốc gia when it is received
and each progress update after (OpenCPS calls the two services DongBoHoSoMC and
CapNhatTienDoHoSoMC). The engine writes these messages to its outbox in the same
transaction as the change they report, so the portal learns of every change exactly once,
whenever the sending worker runs: a message per status change, one for the receipt, and
one when the appointment moves without a status change (an apology letter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from ..events import AppointmentSet, Received, StatusChanged, SupplementRequested

#: Message kinds: the dossier as received (DongBoHoSoMC), and a progress update
#: (CapNhatTienDoHoSoMC).
DOSSIER, PROGRESS = "dossier", "progress"


@dataclass(frozen=True)
class Notice:
    """One message for the portal: its kind, the national status code it reports and
    what the portal's sync needs (JSON values)."""

    kind: str
    status: int
    at: datetime
    payload: Mapping[str, Any]


def notices(*, code: str, procedure: str, channel: int, received_at: datetime,
            entries: Iterable[Any], appointment_at: datetime | None,
            status: int, due_at: datetime | None = None) -> list[Notice]:
    """The portal messages a command's log ``entries`` call for (``code`` ... are the
    dossier's; ``appointment_at``, the legal ``due_at`` and ``status`` as the command
    leaves them)."""
    found: list[Notice] = []
    base = {"dossier": code, "procedure": procedure, "channel": channel,
            "received_at": received_at.isoformat(), "due_at": _iso(due_at)}
    entries = list(entries)
    status_changed = any(isinstance(e.payload, StatusChanged) for e in entries)
    supplement = next((e.payload for e in entries
                       if isinstance(e.payload, SupplementRequested)), None)
    for entry in entries:
        payload = entry.payload
        if isinstance(payload, Received):
            found.append(Notice(DOSSIER, status, entry.at, {
                **base, "status": status, "desk": payload.desk,
                "resolving_agency": payload.resolving_agency,
                "applicant": dict(payload.applicant),
                "components": list(payload.components),
                "appointment_at": _iso(appointment_at), "fee_due": payload.fee_due}))
        elif isinstance(payload, StatusChanged):
            detail: dict[str, Any] = {**base, "status": payload.to_status,
                                      "previous_status": payload.from_status,
                                      "at": entry.at.isoformat(),
                                      "appointment_at": _iso(appointment_at)}
            if supplement is not None and payload.to_status == 5:
                detail["supplement"] = {"paused": supplement.paused,
                                        "clock": supplement.clock,
                                        "appointment_before": _iso(supplement.appointment)}
            moved = _moved(entries)
            if moved is not None:
                detail["appointment_change"] = moved
            found.append(Notice(PROGRESS, int(payload.to_status or status), entry.at,
                                detail))
        elif isinstance(payload, AppointmentSet) and not status_changed:
            found.append(Notice(PROGRESS, status, entry.at, {
                **base, "status": status, "at": entry.at.isoformat(),
                "appointment_at": _iso(payload.appointment),
                "appointment_change": _change(payload)}))
    return found


def _moved(entries: Sequence[Any]) -> dict[str, Any] | None:
    """The appointment change among a command's entries, if any."""
    moved = next((e.payload for e in entries if isinstance(e.payload, AppointmentSet)), None)
    return _change(moved) if moved is not None else None


def _change(payload: AppointmentSet) -> dict[str, Any]:
    found: dict[str, Any] = {"reason": payload.reason,
                             "previous": _iso(payload.previous),
                             "appointment": _iso(payload.appointment)}
    if payload.reason == "apology":
        found.update(delay_reason=payload.delay_reason, responsible=payload.responsible,
                     form=payload.form)
    return found


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None
