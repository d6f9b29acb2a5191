"""The procedure catalogue: which procedures a desk receives and how each is run.

A catalogue is a JSON file (UTF-8)::

    {
      "schema": "onestop-catalog/1",
      "agencies": [{"code": "H12.XA-AN-BINH", "name": "UBND xã An Bình", "level": "commune"}],
      "procedures": [{
        "code": "2.000815", "name": "Chứng thực bản sao từ bản chính",
        "field": "Chứng thực", "level": "commune",
        "agency": "H12.XA-AN-BINH", "process": "standard", "legal_time": "same_day",
        "components": [{"code": "ban-chinh", "name": "Bản chính giấy tờ",
                        "required": true, "must_digitize": true}]
      }]
    }

Loading validates every entry and raises :class:`~onestop.errors.CatalogError` naming
the file, the entry and the field at fault.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .duration import Duration
from .errors import CatalogError, UnknownAgency, UnknownProcedure

SCHEMA = "onestop-catalog/1"
LEVELS = ("province", "commune", "district", "ministry")
SERVICE_MODES = ("full_online", "partial_online", "in_person")
#: Agency slots every process may use in lanes: the receiving desk and the resolver.
BUILTIN_SLOTS = ("desk", "resolver", "responsible")

_PROCEDURE_CODE = re.compile(r"^\d\.\d{6}(\.[0-9A-Za-z.]+)?$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Agency:
    """A desk, a resolving agency, or a consulted agency."""

    code: str
    name: str
    level: str


@dataclass(frozen=True)
class Component:
    """A dossier component (thành phần hồ sơ)."""

    code: str
    name: str
    required: bool = True
    must_digitize: bool = True


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
    agencies: Mapping[str, str] = field(default_factory=dict)
    service_mode: str = "partial_online"
    boundary_free: bool = False

    def component(self, code: str) -> Component | None:
        """The component with this code, if the procedure has it."""
        for comp in self.components:
            if comp.code == code:
                return comp
        return None


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


def read_data_file(path: str | Path) -> Any:
    """Decode a UTF-8 JSON data file (catalogue, calendars, regimes); a missing file,
    bad encoding or bad JSON is a :class:`CatalogError` naming the file and place."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError("file not found", file=name) from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                           file=name) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"not valid JSON: {exc.msg} at line {exc.lineno}, "
                           f"column {exc.colno}", file=name) from None


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalogue file."""
    return parse_catalog(read_data_file(path), source=str(path))


def parse_catalog(data: Any, source: str | None = None) -> Catalog:
    """Validate an already-decoded catalogue document."""
    if not isinstance(data, dict):
        raise CatalogError("the document must be a JSON object", file=source)
    _check_keys(data, {"schema", "agencies", "procedures"}, {"procedures"}, source, None)
    if data.get("schema", SCHEMA) != SCHEMA:
        raise CatalogError(f"unsupported schema {data.get('schema')!r}; expected {SCHEMA!r}",
                           file=source, field="schema")
    agencies: dict[str, Agency] = {}
    for index, raw in enumerate(_list(data.get("agencies", []), source, None, "agencies")):
        entry = f"agencies[{index}]"
        if not isinstance(raw, dict):
            raise CatalogError("must be an object", file=source, entry=entry)
        _check_keys(raw, {"code", "name", "level"}, {"code", "name"}, source, entry)
        code = _slug(raw, "code", source, entry)
        entry = f"agencies[{index}] ({code})"
        if code in agencies:
            raise CatalogError(f"duplicate agency code {code!r}", file=source, entry=entry,
                               field="code")
        level = raw.get("level", "commune")
        if level not in LEVELS:
            raise CatalogError(f"must be one of {', '.join(LEVELS)}; got {level!r}",
                               file=source, entry=entry, field="level")
        agencies[code] = Agency(code, _text(raw, "name", source, entry), level)

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
    allowed = {"code", "name", "field", "level", "agency", "process", "legal_time",
               "components", "agencies", "service_mode", "boundary_free"}
    required = {"code", "name", "field", "level", "agency", "process", "legal_time",
                "components"}
    code = raw.get("code")
    if not isinstance(code, str) or not _PROCEDURE_CODE.match(code):
        raise CatalogError(f"must be a national procedure code such as '1.001193'; "
                           f"got {code!r}", file=source, entry=entry, field="code")
    entry = f"procedures[{index}] ({code})"
    _check_keys(raw, allowed, required, source, entry)
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
    slots: dict[str, str] = {}
    extra = raw.get("agencies", {})
    if not isinstance(extra, dict):
        raise CatalogError("must map slot names to agency codes", file=source, entry=entry,
                           field="agencies")
    for slot, target in extra.items():
        if slot in BUILTIN_SLOTS or not _SLUG.match(str(slot)):
            raise CatalogError(f"slot {slot!r} is reserved or not a simple name",
                               file=source, entry=entry, field=f"agencies.{slot}")
        if target not in agencies:
            raise CatalogError(f"agency {target!r} is not listed under 'agencies'",
                               file=source, entry=entry, field=f"agencies.{slot}")
        slots[str(slot)] = target
    components = []
    seen: set[str] = set()
    for cindex, craw in enumerate(_list(raw["components"], source, entry, "components")):
        cfield = f"components[{cindex}]"
        if not isinstance(craw, dict):
            raise CatalogError("must be an object", file=source, entry=entry, field=cfield)
        for key in craw:
            if key not in {"code", "name", "required", "must_digitize"}:
                raise CatalogError(f"unknown key {key!r}", file=source, entry=entry,
                                   field=f"{cfield}.{key}")
        ccode = craw.get("code")
        if not isinstance(ccode, str) or not _SLUG.match(ccode):
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
        for flag in ("required", "must_digitize"):
            value = craw.get(flag, True)
            if not isinstance(value, bool):
                raise CatalogError(f"must be true or false; got {value!r}", file=source,
                                   entry=entry, field=f"{cfield}.{flag}")
            flags[flag] = value
        components.append(Component(ccode, cname, **flags))
    mode = raw.get("service_mode", "partial_online")
    if mode not in SERVICE_MODES:
        raise CatalogError(f"must be one of {', '.join(SERVICE_MODES)}; got {mode!r}",
                           file=source, entry=entry, field="service_mode")
    boundary_free = raw.get("boundary_free", False)
    if not isinstance(boundary_free, bool):
        raise CatalogError(f"must be true or false; got {boundary_free!r}", file=source,
                           entry=entry, field="boundary_free")
    return Procedure(
        code=code,
        name=_text(raw, "name", source, entry),
        field=_text(raw, "field", source, entry),
        level=level,
        agency=agency,
        process=_slug(raw, "process", source, entry),
        legal_time=legal_time,
        components=tuple(components),
        agencies=MappingProxyType(slots),
        service_mode=mode,
        boundary_free=boundary_free,
    )


def _check_keys(raw: dict[str, Any], allowed: set[str], required: set[str],
                source: str | None, entry: str | None) -> None:
    for key in raw:
        if key not in allowed:
            raise CatalogError(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                               file=source, entry=entry, field=key)
    for key in sorted(required):
        if key not in raw:
            raise CatalogError("is required", file=source, entry=entry, field=key)


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
    if not isinstance(value, str) or not _SLUG.match(value):
        raise CatalogError(f"must be a code of letters, digits, '.', '-' or '_'; "
                           f"got {value!r}", file=source, entry=entry, field=key)
    return value
