"""The procedure catalogue: which procedures a desk receives and how each is run.

A catalogue is a JSON file (UTF-8)::

    {
      "$schema": "./catalog.schema.json",
      "schema": "onestop-catalog/1",
      "agencies": [{"code": "H12.XA-AN-BINH", "name": "UBND xã An Bình", "level": "commune",
                    "kind": "resolver"}],
      "procedures": [{
        "code": "2.000815", "name": "Chứng thực bản sao từ bản chính",
        "field": "Chứng thực", "level": "commune",
        "agency": "H12.XA-AN-BINH", "process": "standard", "legal_time": "same_day",
        "fees": [{"name": "Phí chứng thực bản sao", "amount": 2000, "note": "mỗi trang"}],
        "regime_overrides": {"*": {"transfer_cutoff": "15:00"}},
        "components": [{"code": "ban-chinh", "name": "Bản chính giấy tờ",
                        "required": true, "must_digitize": true, "reusable": false}]
      }]
    }

``processes/catalog.schema.json`` is the same format as a JSON Schema (draft 2020-12) and
``docs/catalog.md`` describes it field by field. Loading validates every entry and raises
:class:`~onestop.errors.CatalogError` naming the file, the entry and the field at fault.
Whether the regimes that ``regime_overrides`` name exist is checked once the regimes are
loaded too (:func:`check_regime_overrides`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .datafile import read_data_file
from .duration import Duration
from .errors import CatalogError, UnknownAgency, UnknownProcedure
from .regimes import OVERRIDABLE_FIELDS, Regime, Regimes, effective_regime, parse_regime_field

SCHEMA = "onestop-catalog/1"
LEVELS = ("province", "commune", "district", "ministry")
SERVICE_MODES = ("full_online", "partial_online", "in_person")
#: What an agency is, when the catalogue says: one-stop desk, resolving agency, consulted
#: agency, postal service.
AGENCY_KINDS = ("desk", "resolver", "consulted", "postal")
#: The national channel codes by the names the catalogue uses.
CHANNEL_NAMES = {1: "in_person", 2: "online", 3: "postal"}
#: Agency slots every process may use in lanes: the receiving desk and the resolver.
BUILTIN_SLOTS = ("desk", "resolver", "responsible")

# Matched whole (fullmatch): a code with a trailing newline is not a code.
_PROCEDURE_CODE = re.compile(r"\d\.\d{6}(\.[0-9A-Za-z.]+)?")
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PROCEDURE_KEYS = {"code", "name", "field", "level", "agency", "process", "legal_time",
                   "components", "agencies", "service_mode", "boundary_free", "fees",
                   "regime_overrides", "desks", "legal_time_by_channel"}
_PROCEDURE_REQUIRED = {"code", "name", "field", "level", "agency", "process", "legal_time",
                       "components"}
_COMPONENT_KEYS = {"code", "name", "required", "must_digitize", "reusable"}
_FEE_KEYS = {"name", "amount", "note"}


@dataclass(frozen=True)
class Agency:
    """A desk, a resolving agency, or a consulted agency."""

    code: str
    name: str
    level: str
    #: "desk", "resolver", "consulted" or "postal"; None when the catalogue does not say.
    kind: str | None = None


@dataclass(frozen=True)
class Component:
    """A dossier component (thành phần hồ sơ).

    ``reusable``: the state already holds this data (for example citizen identity in the
    national population database), so it is re-used rather than asked for and digitized
    again."""

    code: str
    name: str
    required: bool = True
    must_digitize: bool = True
    reusable: bool = False


@dataclass(frozen=True)
class Fee:
    """A fee or charge (lệ phí / phí) of a procedure, in whole VND."""

    name: str
    amount: int
    note: str | None = None


@dataclass(frozen=True)
class Procedure:
    """An administrative procedure (thủ tục hành chính) as this province runs it."""

    code: str
    name: str
    field: str
    level: str
    agency: str
    process: str
    legal_time: Duration
    components: tuple[Component, ...]
    agencies: Mapping[str, str] = _field(default_factory=dict)
    service_mode: str = "partial_online"
    boundary_free: bool = False
    fees: tuple[Fee, ...] = ()
    #: Regime code or "*" -> rule name -> parsed value (``datetime.time`` for
    #: transfer_cutoff, ``Duration`` for apology_lead, str, int).
    regime_overrides: Mapping[str, Mapping[str, Any]] = _field(
        default_factory=lambda: MappingProxyType({}))
    #: Agencies (desks) that receive it; empty when boundary-free or not stated.
    desks: tuple[str, ...] = ()
    #: A legal time of its own for a channel (``online``, ``postal``, ``in_person``): a
    #: province may shorten the online one by decision.
    legal_time_by_channel: Mapping[str, Duration] = _field(
        default_factory=lambda: MappingProxyType({}))

    def legal_time_for(self, channel: int) -> Duration:
        """The legal time of a dossier received through ``channel`` (1 in person,
        2 online, 3 postal): the channel's own, else :attr:`legal_time`."""
        name = CHANNEL_NAMES.get(int(channel))
        return self.legal_time_by_channel.get(name, self.legal_time) if name \
            else self.legal_time

    def component(self, code: str) -> Component | None:
        """The component with this code, if the procedure has it."""
        for comp in self.components:
            if comp.code == code:
                return comp
        return None

    @property
    def fee_total(self) -> int:
        """All fees together, in VND (0: free of charge)."""
        return sum(fee.amount for fee in self.fees)

    def effective_regime(self, regime: Regime) -> Regime:
        """``regime`` with this procedure's overrides."""
        if not self.regime_overrides:
            return regime
        return effective_regime(regime, self.regime_overrides)


class Catalog:
    """Procedures and agencies, looked up by code."""

    def __init__(self, agencies: Mapping[str, Agency], procedures: Mapping[str, Procedure],
                 source: str | None = None) -> None:
        self.agencies: Mapping[str, Agency] = MappingProxyType(dict(agencies))
        self.procedures: Mapping[str, Procedure] = MappingProxyType(dict(procedures))
        self.source = source

    def procedure(self, code: str) -> Procedure:
        """The procedure with this national code; :class:`UnknownProcedure` otherwise."""
        try:
            return self.procedures[code]
        except (KeyError, TypeError):
            raise UnknownProcedure(f"no procedure with code {code!r} in the catalogue"
                                   + (f" {self.source}" if self.source else "")) from None

    def agency(self, code: str) -> Agency:
        """The agency with this code; :class:`UnknownAgency` otherwise."""
        try:
            return self.agencies[code]
        except (KeyError, TypeError):
            raise UnknownAgency(f"no agency with code {code!r} in the catalogue") from None


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalogue file."""
    return parse_catalog(read_data_file(path), source=str(path))


def parse_catalog(data: Any, source: str | None = None) -> Catalog:
    """Validate an already-decoded catalogue document."""
    if not isinstance(data, dict):
        raise CatalogError("the document must be a JSON object", file=source)
    _check_keys(data, {"$schema", "schema", "agencies", "procedures"}, {"procedures"},
                source, None)
    if not isinstance(data.get("$schema", ""), str):
        raise CatalogError("must be the path or URL of the JSON Schema (text)", file=source,
                           field="$schema")
    if data.get("schema", SCHEMA) != SCHEMA:
        raise CatalogError(f"unsupported schema {data.get('schema')!r}; expected {SCHEMA!r}",
                           file=source, field="schema")
    agencies: dict[str, Agency] = {}
    for index, raw in enumerate(_list(data.get("agencies", []), source, None, "agencies")):
        entry = f"agencies[{index}]"
        if not isinstance(raw, dict):
            raise CatalogError("must be an object", file=source, entry=entry)
        code = _slug(raw, "code", source, entry)
        entry = f"agencies[{index}] ({code})"
        _check_keys(raw, {"code", "name", "level", "kind"}, {"code", "name"}, source, entry)
        if code in agencies:
            raise CatalogError(f"duplicate agency code {code!r}", file=source, entry=entry,
                               field="code")
        level = raw.get("level", "commune")
        if level not in LEVELS:
            raise CatalogError(f"must be one of {', '.join(LEVELS)}; got {level!r}",
                               file=source, entry=entry, field="level")
        kind = raw.get("kind")
        if kind is not None and kind not in AGENCY_KINDS:
            raise CatalogError(f"must be one of {', '.join(AGENCY_KINDS)} or null; "
                               f"got {kind!r}", file=source, entry=entry, field="kind")
        agencies[code] = Agency(code, _text(raw, "name", source, entry), level, kind)

    procedures: dict[str, Procedure] = {}
    for index, raw in enumerate(_list(data["procedures"], source, None, "procedures")):
        proc = _procedure(raw, index, agencies, source)
        if proc.code in procedures:
            raise CatalogError(f"duplicate procedure code {proc.code!r}", file=source,
                               entry=f"procedures[{index}] ({proc.code})", field="code")
        procedures[proc.code] = proc
    return Catalog(agencies, procedures, source)


def _procedure(raw: Any, index: int, agencies: Mapping[str, Agency],
               source: str | None) -> Procedure:
    entry = f"procedures[{index}]"
    if not isinstance(raw, dict):
        raise CatalogError("must be an object", file=source, entry=entry)
    code = raw.get("code")
    if not isinstance(code, str) or not _PROCEDURE_CODE.fullmatch(code):
        raise CatalogError(f"must be a national procedure code such as '1.001193'; "
                           f"got {code!r}", file=source, entry=entry, field="code")
    entry = f"procedures[{index}] ({code})"
    _check_keys(raw, _PROCEDURE_KEYS, _PROCEDURE_REQUIRED, source, entry)
    level = raw["level"]
    if level not in LEVELS:
        raise CatalogError(f"must be one of {', '.join(LEVELS)}; got {level!r}",
                           file=source, entry=entry, field="level")
    agency = _slug(raw, "agency", source, entry)
    if agency not in agencies:
        raise CatalogError(f"agency {agency!r} is not listed under 'agencies'",
                           file=source, entry=entry, field="agency")
    try:
        legal_time = Duration.parse(raw["legal_time"])
    except ValueError as exc:
        raise CatalogError(str(exc), file=source, entry=entry, field="legal_time") from None
    by_channel = _legal_times(raw.get("legal_time_by_channel", {}), source, entry)
    slots: dict[str, str] = {}
    extra = raw.get("agencies", {})
    if not isinstance(extra, dict):
        raise CatalogError("must map slot names to agency codes", file=source, entry=entry,
                           field="agencies")
    for slot, target in extra.items():
        if slot in BUILTIN_SLOTS or not _SLUG.fullmatch(str(slot)):
            raise CatalogError(f"slot {slot!r} is reserved or not a simple name",
                               file=source, entry=entry, field=f"agencies.{slot}")
        if not isinstance(target, str) or target not in agencies:
            raise CatalogError(f"agency {target!r} is not listed under 'agencies'",
                               file=source, entry=entry, field=f"agencies.{slot}")
        slots[str(slot)] = target
    components = _components(raw["components"], source, entry)
    mode = raw.get("service_mode", "partial_online")
    if mode not in SERVICE_MODES:
        raise CatalogError(f"must be one of {', '.join(SERVICE_MODES)}; got {mode!r}",
                           file=source, entry=entry, field="service_mode")
    boundary_free = raw.get("boundary_free", False)
    if not isinstance(boundary_free, bool):
        raise CatalogError(f"must be true or false; got {boundary_free!r}", file=source,
                           entry=entry, field="boundary_free")
    desks: tuple[str, ...] = ()
    if "desks" in raw:
        if boundary_free:
            raise CatalogError("a boundary-free procedure is received at any desk: remove "
                               "'desks' or set 'boundary_free' to false", file=source,
                               entry=entry, field="desks")
        desks = _desks(raw["desks"], agencies, source, entry)
    return Procedure(
        code=code,
        name=_text(raw, "name", source, entry),
        field=_text(raw, "field", source, entry),
        level=level,
        agency=agency,
        process=_slug(raw, "process", source, entry),
        legal_time=legal_time,
        components=components,
        agencies=MappingProxyType(slots),
        service_mode=mode,
        boundary_free=boundary_free,
        fees=_fees(raw.get("fees", []), source, entry),
        regime_overrides=_regime_overrides(raw.get("regime_overrides", {}), source, entry),
        desks=desks,
        legal_time_by_channel=MappingProxyType(by_channel),
    )


def _legal_times(value: Any, source: str | None, entry: str) -> dict[str, Duration]:
    """``{"online": "4wd"}``: a legal time of its own for a channel."""
    where = "legal_time_by_channel"
    if not isinstance(value, dict):
        raise CatalogError(f"must map channels ({', '.join(CHANNEL_NAMES.values())}) to "
                           f"durations", file=source, entry=entry, field=where)
    found: dict[str, Duration] = {}
    for channel, text in value.items():
        if channel not in CHANNEL_NAMES.values():
            raise CatalogError(f"unknown channel {channel!r} (one of "
                               f"{', '.join(CHANNEL_NAMES.values())})", file=source,
                               entry=entry, field=f"{where}.{channel}")
        try:
            found[channel] = Duration.parse(text)
        except ValueError as exc:
            raise CatalogError(str(exc), file=source, entry=entry,
                               field=f"{where}.{channel}") from None
    return found


def _components(value: Any, source: str | None, entry: str) -> tuple[Component, ...]:
    components = []
    seen: set[str] = set()
    for cindex, craw in enumerate(_list(value, source, entry, "components")):
        cfield = f"components[{cindex}]"
        if not isinstance(craw, dict):
            raise CatalogError("must be an object", file=source, entry=entry, field=cfield)
        for key in craw:
            if key not in _COMPONENT_KEYS:
                raise CatalogError(f"unknown key {key!r} (allowed: "
                                   f"{', '.join(sorted(_COMPONENT_KEYS))})", file=source,
                                   entry=entry, field=f"{cfield}.{key}")
        ccode = craw.get("code")
        if not isinstance(ccode, str) or not _SLUG.fullmatch(ccode):
            raise CatalogError(f"must be a short code of letters, digits, '-', '_' or '.'; "
                               f"got {ccode!r}", file=source, entry=entry,
                               field=f"{cfield}.code")
        if ccode in seen:
            raise CatalogError(f"duplicate component code {ccode!r}", file=source,
                               entry=entry, field=f"{cfield}.code")
        seen.add(ccode)
        cname = craw.get("name")
        if not isinstance(cname, str) or not cname.strip():
            raise CatalogError("must be non-empty text", file=source, entry=entry,
                               field=f"{cfield}.name")
        flags = {}
        for flag, default in (("required", True), ("must_digitize", True),
                              ("reusable", False)):
            value = craw.get(flag, default)
            if not isinstance(value, bool):
                raise CatalogError(f"must be true or false; got {value!r}", file=source,
                                   entry=entry, field=f"{cfield}.{flag}")
            flags[flag] = value
        components.append(Component(ccode, cname, **flags))
    return tuple(components)


def _fees(value: Any, source: str | None, entry: str) -> tuple[Fee, ...]:
    fees = []
    for findex, fraw in enumerate(_list(value, source, entry, "fees")):
        ffield = f"fees[{findex}]"
        if not isinstance(fraw, dict):
            raise CatalogError("must be an object with 'name' and 'amount'", file=source,
                               entry=entry, field=ffield)
        _check_keys(fraw, _FEE_KEYS, {"name", "amount"}, source, entry, prefix=ffield)
        name = fraw["name"]
        if not isinstance(name, str) or not name.strip():
            raise CatalogError(f"must be non-empty text; got {name!r}", file=source,
                               entry=entry, field=f"{ffield}.name")
        amount = fraw["amount"]
        # JSON Schema counts 2000.0 as an integer; so do we. true/false are not amounts.
        whole = isinstance(amount, int) or (isinstance(amount, float) and amount.is_integer())
        if isinstance(amount, bool) or not whole or amount < 0:
            raise CatalogError(f"must be a whole number of VND >= 0 (0: free); got "
                               f"{amount!r}", file=source, entry=entry,
                               field=f"{ffield}.amount")
        note = fraw.get("note")
        if "note" in fraw and (not isinstance(note, str) or not note.strip()):
            raise CatalogError(f"must be non-empty text; got {note!r}", file=source,
                               entry=entry, field=f"{ffield}.note")
        fees.append(Fee(name, int(amount), note))
    return tuple(fees)


def _regime_overrides(value: Any, source: str | None,
                      entry: str) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(value, dict):
        raise CatalogError("must map regime codes (or '*' for every regime) to rules",
                           file=source, entry=entry, field="regime_overrides")
    parsed: dict[str, Mapping[str, Any]] = {}
    for regime, rules in value.items():
        rfield = f"regime_overrides.{regime}"
        if regime != "*" and not _SLUG.fullmatch(regime):
            raise CatalogError("must be '*' or a regime code such as 'ND118-2025'",
                               file=source, entry=entry, field=rfield)
        if not isinstance(rules, dict):
            raise CatalogError(f"must be an object with any of {', '.join(OVERRIDABLE_FIELDS)}",
                               file=source, entry=entry, field=rfield)
        typed: dict[str, Any] = {}
        for key, rule in rules.items():
            if key not in OVERRIDABLE_FIELDS:
                raise CatalogError(f"unknown key {key!r} (allowed: "
                                   f"{', '.join(OVERRIDABLE_FIELDS)})", file=source,
                                   entry=entry, field=f"{rfield}.{key}")
            try:
                typed[key] = parse_regime_field(key, rule)
            except ValueError as exc:
                raise CatalogError(str(exc), file=source, entry=entry,
                                   field=f"{rfield}.{key}") from None
        parsed[regime] = MappingProxyType(typed)
    return MappingProxyType(parsed)


def _desks(value: Any, agencies: Mapping[str, Agency], source: str | None,
           entry: str) -> tuple[str, ...]:
    desks = _list(value, source, entry, "desks")
    if not desks:
        raise CatalogError("must list at least one desk agency (or leave 'desks' out)",
                           file=source, entry=entry, field="desks")
    for dindex, desk in enumerate(desks):
        dfield = f"desks[{dindex}]"
        if not isinstance(desk, str) or desk not in agencies:
            raise CatalogError(f"agency {desk!r} is not listed under 'agencies'",
                               file=source, entry=entry, field=dfield)
        kind = agencies[desk].kind
        if kind not in (None, "desk"):
            raise CatalogError(f"agency {desk!r} is a {kind} agency, not a desk",
                               file=source, entry=entry, field=dfield)
        if desk in desks[:dindex]:
            raise CatalogError(f"duplicate desk {desk!r}", file=source, entry=entry,
                               field=dfield)
    return tuple(desks)


def _check_keys(raw: dict[str, Any], allowed: set[str], required: set[str],
                source: str | None, entry: str | None, prefix: str = "") -> None:
    dot = f"{prefix}." if prefix else ""
    for key in raw:
        if key not in allowed:
            raise CatalogError(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                               file=source, entry=entry, field=f"{dot}{key}")
    for key in sorted(required):
        if key not in raw:
            raise CatalogError("is required", file=source, entry=entry, field=f"{dot}{key}")


def _list(value: Any, source: str | None, entry: str | None, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise CatalogError("must be a list", file=source, entry=entry, field=name)
    return value


def _text(raw: dict[str, Any], key: str, source: str | None, entry: str | None) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"must be non-empty text; got {value!r}", file=source,
                           entry=entry, field=key)
    return value


def _slug(raw: dict[str, Any], key: str, source: str | None, entry: str | None) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise CatalogError(f"must be a code of letters, digits, '.', '-' or '_'; "
                           f"got {value!r}", file=source, entry=entry, field=key)
    return value


def check_regime_overrides(catalog: Catalog, regimes: Regimes) -> None:
    """Refuse ``regime_overrides`` naming a regime ``regimes`` does not define (the
    catalogue alone cannot know them): :class:`CatalogError` with the procedure entry and
    field ``regime_overrides.<CODE>``."""
    known = {regime.code for regime in regimes.all}
    for index, procedure in enumerate(catalog.procedures.values()):
        for code in procedure.regime_overrides:
            if code != "*" and code not in known:
                raise CatalogError(
                    f"no legal regime {code!r} (known: {', '.join(sorted(known)) or 'none'}"
                    + (f", from {regimes.source}" if regimes.source else "") + ")",
                    file=catalog.source, entry=f"procedures[{index}] ({procedure.code})",
                    field=f"regime_overrides.{code}")
