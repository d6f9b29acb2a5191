"""Service-level rules: legal regimes bound to the receipt date, and appointments.

A regime (ND61-2018, ND118-2025, ...) is data in ``regimes.json`` beside the catalogue:
the dates it covers, the transfer cut-off, whether a supplement request pauses or
restarts the clock, how many re-appointments are allowed, how early an apology is owed,
and its form numbers. A new decree is a data change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .calendar import WorkingCalendar
from .catalog import read_data_file
from .clock import VIETNAM_TZ
from .duration import Duration
from .errors import CatalogError, InvalidInput

SUPPLEMENT_CLOCKS = ("pause", "restart")


@dataclass(frozen=True)
class Regime:
    """The rules that apply to dossiers received within its dates."""

    code: str
    name: str
    received_from: date | None
    received_until: date | None
    transfer_cutoff: time = time(15, 0)
    supplement_clock: str = "pause"
    max_reappointments: int = 1
    apology_lead: Duration = field(default_factory=lambda: Duration.parse("1wd"))
    forms: Mapping[str, str] = field(default_factory=dict)

    def covers(self, day: date) -> bool:
        return ((self.received_from is None or self.received_from <= day)
                and (self.received_until is None or day <= self.received_until))


class Regimes:
    """Regimes in force, looked up by receipt date."""

    def __init__(self, regimes: Sequence[Regime], source: str | None = None) -> None:
        self.all = tuple(regimes)
        self.source = source

    def get(self, code: str) -> Regime:
        """The regime with this code."""
        for regime in self.all:
            if regime.code == code:
                return regime
        raise InvalidInput(f"no legal regime {code!r}"
                           + (f" in {self.source}" if self.source else ""))

    def at(self, received: datetime) -> Regime:
        """The regime for a dossier received at ``received`` (Vietnam's date)."""
        day = received.astimezone(VIETNAM_TZ).date()
        for regime in self.all:
            if regime.covers(day):
                return regime
        raise InvalidInput(f"no legal regime covers dossiers received on {day}"
                           + (f" (see {self.source})" if self.source else ""))


def appointment(calendar: WorkingCalendar, regime: Regime, received: datetime,
                legal_time: Duration) -> datetime:
    """The appointment instant (ngày hẹn trả kết quả) for a dossier received at
    ``received``: the legal time counted in working time from the next session, or from
    the next working day when received after the regime's transfer cut-off."""
    start = calendar.next_working_instant(received)
    local = received.astimezone(VIETNAM_TZ)
    if start.date() == local.date() and local.time() >= regime.transfer_cutoff:
        start = calendar.start_of_next_working_day(local)
    return calendar.add(start, legal_time)


def load_regimes(path: str | Path) -> Regimes:
    """Read and validate ``regimes.json``; errors name the file, regime and field."""
    name = str(path)
    data = read_data_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("regimes"), list):
        raise CatalogError("must be an object with a 'regimes' list", file=name)
    regimes = [_regime(raw, index, name) for index, raw in enumerate(data["regimes"])]
    ordered = sorted(regimes, key=lambda r: r.received_from or date.min)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if earlier.received_until is None or later.received_from is None \
                or earlier.received_until >= later.received_from:
            raise CatalogError(f"overlaps regime {later.code}", file=name,
                               entry=earlier.code, field="received_until")
    return Regimes(ordered, name)


def _regime(raw: Any, index: int, name: str) -> Regime:
    entry = f"regimes[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("code"), str):
        raise CatalogError("must be an object with a 'code'", file=name, entry=entry)
    entry = raw["code"]
    allowed = {"code", "name", "received_from", "received_until", "transfer_cutoff",
               "supplement_clock", "max_reappointments", "apology_lead", "forms", "verify"}
    for key in raw:
        if key not in allowed:
            raise CatalogError(f"unknown key {key!r}", file=name, entry=entry, field=key)

    def day(key: str) -> date | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            raise CatalogError(f"must be YYYY-MM-DD or null; got {value!r}", file=name,
                               entry=entry, field=key) from None

    try:
        cutoff = time.fromisoformat(raw.get("transfer_cutoff", "15:00"))
    except (TypeError, ValueError):
        raise CatalogError("must be HH:MM", file=name, entry=entry,
                           field="transfer_cutoff") from None
    clock = raw.get("supplement_clock", "pause")
    if clock not in SUPPLEMENT_CLOCKS:
        raise CatalogError(f"must be one of {', '.join(SUPPLEMENT_CLOCKS)}; got {clock!r}",
                           file=name, entry=entry, field="supplement_clock")
    limit = raw.get("max_reappointments", 1)
    if not isinstance(limit, int) or limit < 0:
        raise CatalogError("must be a whole number", file=name, entry=entry,
                           field="max_reappointments")
    try:
        lead = Duration.parse(raw.get("apology_lead", "1wd"))
    except ValueError as exc:
        raise CatalogError(str(exc), file=name, entry=entry, field="apology_lead") from None
    forms = raw.get("forms", {})
    if not isinstance(forms, dict) or not all(isinstance(v, str) for v in forms.values()):
        raise CatalogError("must map form names to numbers", file=name, entry=entry,
                           field="forms")
    return Regime(code=entry, name=str(raw.get("name", entry)),
                  received_from=day("received_from"), received_until=day("received_until"),
                  transfer_cutoff=cutoff, supplement_clock=clock, max_reappointments=limit,
                  apology_lead=lead, forms=dict(forms))
