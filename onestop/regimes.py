"""Legal regimes: the rules that apply to a dossier, bound to its receipt date.

A regime (ND61-2018, ND118-2025, ...) is data in ``regimes.json`` beside the catalogue:
the dates it covers, the transfer cut-off, whether a supplement request pauses or
restarts the clock, how many re-appointments are allowed, how early an apology letter is
owed (for each length of legal time) and who explains a delay, and its form numbers. A
new decree is a data change. A procedure may override some rules for itself in the
catalogue (``regime_overrides``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .clock import VIETNAM_TZ
from .datafile import read_data_file
from .duration import Duration, Unit
from .errors import CatalogError, InvalidInput

SUPPLEMENT_CLOCKS = ("pause", "restart")
#: Regime fields a catalogue entry may override per procedure (``regime_overrides``).
OVERRIDABLE_FIELDS = ("transfer_cutoff", "supplement_clock", "max_reappointments",
                      "apology_lead", "apology_role", "feedback_time")
#: Who gives the explanation when a dossier will be late, unless a regime says otherwise:
#: the head of the responsible agency.
DEFAULT_APOLOGY_ROLE = "leader"
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


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
    #: Leads for short legal times, ``((legal time up to, lead), ...)`` in ascending
    #: order: the 1-working-day lead cannot apply as written to a same-day procedure.
    apology_lead_short: tuple[tuple[Duration, Duration], ...] = ()
    #: The role that explains a delay in the responsible agency (its head).
    apology_role: str = DEFAULT_APOLOGY_ROLE
    #: How long an agency has to answer an applicant's feedback or petition.
    feedback_time: Duration = field(default_factory=lambda: Duration.parse("10wd"))

    def covers(self, day: date) -> bool:
        """Whether dossiers received on ``day`` fall under this regime."""
        return ((self.received_from is None or self.received_from <= day)
                and (self.received_until is None or day <= self.received_until))

    def lead_for(self, legal_time: Duration | None) -> Duration:
        """How long before the due instant the apology letter must be issued, at the
        latest, for a procedure of ``legal_time``: the first short-time rule whose bound
        the legal time does not exceed (compared in nominal working hours), else
        ``apology_lead``."""
        if legal_time is not None:
            hours = legal_time.nominal_hours()
            for bound, lead in self.apology_lead_short:
                if hours <= bound.nominal_hours():
                    return lead
        return self.apology_lead


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
               "supplement_clock", "max_reappointments", "apology_lead", "apology_lead_short",
               "apology_role", "feedback_time", "forms", "verify"}
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

    rules: dict[str, Any] = {}
    for key, default in _RULE_DEFAULTS.items():
        try:
            rules[key] = parse_regime_field(key, raw.get(key, default))
        except ValueError as exc:
            raise CatalogError(str(exc), file=name, entry=entry, field=key) from None
    forms = raw.get("forms", {})
    if not isinstance(forms, dict) or not all(isinstance(v, str) for v in forms.values()):
        raise CatalogError("must map form names to numbers", file=name, entry=entry,
                           field="forms")
    short = _short_leads(raw.get("apology_lead_short", []), name, entry)
    return Regime(code=entry, name=str(raw.get("name", entry)),
                  received_from=day("received_from"), received_until=day("received_until"),
                  forms=dict(forms), apology_lead_short=short, **rules)


def _short_leads(value: Any, name: str, entry: str) -> tuple[tuple[Duration, Duration], ...]:
    """``[{"legal_time_up_to": "1wd", "lead": "2wh"}, ...]``, bounds strictly rising."""
    where = "apology_lead_short"
    if not isinstance(value, list):
        raise CatalogError('must be a list of {"legal_time_up_to": ..., "lead": ...}',
                           file=name, entry=entry, field=where)
    rules: list[tuple[Duration, Duration]] = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict) or set(item) != {"legal_time_up_to", "lead"}:
            raise CatalogError('must be {"legal_time_up_to": "1wd", "lead": "2wh"}',
                               file=name, entry=entry, field=at)
        try:
            bound = Duration.parse(item["legal_time_up_to"])
        except ValueError as exc:
            raise CatalogError(str(exc), file=name, entry=entry,
                               field=f"{at}.legal_time_up_to") from None
        try:
            lead = parse_regime_field("apology_lead", item["lead"])
        except ValueError as exc:
            raise CatalogError(str(exc), file=name, entry=entry, field=f"{at}.lead") from None
        if rules and bound.nominal_hours() <= rules[-1][0].nominal_hours():
            raise CatalogError("bounds must rise: list the shortest legal time first",
                               file=name, entry=entry, field=f"{at}.legal_time_up_to")
        rules.append((bound, lead))
    return tuple(rules)


_RULE_DEFAULTS = {"transfer_cutoff": "15:00", "supplement_clock": "pause",
                  "max_reappointments": 1, "apology_lead": "1wd",
                  "apology_role": DEFAULT_APOLOGY_ROLE, "feedback_time": "10wd"}


def parse_regime_field(key: str, value: Any) -> Any:
    """Validate one regime rule as ``regimes.json`` or a catalogue's ``regime_overrides``
    states it, and return it typed: ``transfer_cutoff`` "HH:MM" (24-hour) as a
    :class:`~datetime.time`, ``supplement_clock`` "pause" or "restart",
    ``max_reappointments`` a whole number >= 0, ``apology_lead`` a duration in working
    days, working hours or calendar days such as "1wd" as a
    :class:`~onestop.duration.Duration` (``feedback_time`` likewise, such as "10wd"),
    ``apology_role`` a role name such as "leader".
    ValueError saying what is wrong otherwise (the caller adds file, entry and field)."""
    if key == "transfer_cutoff":
        if not isinstance(value, str) or not _HH_MM.fullmatch(value):
            raise ValueError(f"must be a 24-hour time HH:MM such as '15:00'; got {value!r}")
        return time.fromisoformat(value)
    if key == "supplement_clock":
        if not isinstance(value, str) or value not in SUPPLEMENT_CLOCKS:
            raise ValueError(f"must be one of {', '.join(SUPPLEMENT_CLOCKS)}; got {value!r}")
        return value
    if key == "max_reappointments":
        # JSON Schema counts 2.0 as an integer; so do we. true/false are not numbers.
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole or value < 0:
            raise ValueError(f"must be a whole number >= 0; got {value!r}")
        return int(value)
    if key in ("apology_lead", "feedback_time"):
        lead = Duration.parse(value)
        if lead.unit is Unit.SAME_DAY:
            raise ValueError("must be a duration such as '1wd' or '2wh', not 'same_day'")
        return lead
    if key == "apology_role":
        if not isinstance(value, str) or not _ROLE_NAME.fullmatch(value):
            raise ValueError(f"must be one lower-case role name such as 'leader'; "
                             f"got {value!r}")
        return value
    raise ValueError(f"not a regime rule that can be set here (one of "
                     f"{', '.join(OVERRIDABLE_FIELDS)})")


def effective_regime(regime: Regime, overrides: Mapping[str, Mapping[str, Any]]) -> Regime:
    """``regime`` as it applies to one procedure: its ``"*"`` overrides, then those for
    ``regime.code``, each a mapping of already parsed values (what
    :attr:`~onestop.catalog.Procedure.regime_overrides` holds). The code is unchanged."""
    changes: dict[str, Any] = {}
    for key in ("*", regime.code):
        changes.update(overrides.get(key) or {})
    if "apology_lead" in changes:
        # A procedure that states its own lead has it whatever its legal time.
        changes["apology_lead_short"] = ()
    return replace(regime, **changes) if changes else regime
