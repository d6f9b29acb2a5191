"""What callers hand the engine, checked and normalised before anything is stored.

Text is stored as Unicode NFC, so Vietnamese typed on different keyboards and systems
(precomposed "ế" or "e" + two combining marks) compares and prints the same. Values that
cannot be stored faithfully on every supported database are refused with
:class:`~onestop.errors.InvalidInput` naming the field: NUL characters (PostgreSQL text
cannot hold them), lone surrogates (not encodable as UTF-8), non-text keys, non-finite
numbers, values nested deeper than :data:`MAX_DEPTH`, and objects that are not plain data.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidInput

#: How deep lists and objects may nest in applicant data, form data and messages.
MAX_DEPTH = 32
#: Longest text of an id (officer, agency, role, task), as the store's columns allow.
MAX_ID = 100
#: Largest text and list or object a field may hold (documents themselves are stored
#: elsewhere; a dossier keeps their references).
MAX_TEXT, MAX_ITEMS = 1_000_000, 100_000
#: Whole numbers are stored as JSON: up to 64 bits, as every database and portal reads them.
MAX_WHOLE = 2**63 - 1


def shown(value: Any, width: int = 60) -> str:
    """What a caller handed in, for an error message: its repr, shortened; a value whose
    repr cannot be made (an integer of thousands of digits) by its type and size."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any object may fail to print itself
        size = value.bit_length() if isinstance(value, int) else None
        return f"<{type(value).__name__}" + (f" of {size:,} bits>" if size else ">")
    return text if len(text) <= width else f"{text[:width - 3]}..."


def text(name: str, value: Any, *, max_length: int | None = None,
         empty: bool = False) -> str:
    """``value`` as NFC text; InvalidInput when it is not text, is empty (unless
    ``empty``), too long, or holds a NUL character or a lone surrogate."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, not {type(value).__name__} "
                           f"({shown(value)})")
    checked = _nfc(name, value)
    if not empty and not checked.strip():
        raise InvalidInput(f"{name} is empty")
    if max_length is not None and len(checked) > max_length:
        raise InvalidInput(f"{name} is {len(checked)} characters long; at most "
                           f"{max_length} are allowed")
    return checked


def identifier(name: str, value: Any) -> str:
    """An id (officer, agency, role): text of at most :data:`MAX_ID` characters."""
    return text(name, value, max_length=MAX_ID)


def data(name: str, value: Any, depth: int = 0) -> Any:
    """A JSON-storable copy of ``value`` with every text NFC: text, whole and finite
    numbers, true/false, null, lists (tuples taken as lists) and objects with text keys."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"{name} is {len(value):,} characters long; at most "
                               f"{MAX_TEXT:,} are stored (keep documents elsewhere and store "
                               f"their references)")
        return _nfc(name, value)
    if isinstance(value, int):
        if not -MAX_WHOLE <= value <= MAX_WHOLE:
            raise InvalidInput(f"{name} is a whole number of {value.bit_length():,} bits; "
                               f"numbers are stored up to 64 bits (write longer ones as text)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{name} is {value!r}: only finite numbers can be stored")
        return value
    if depth >= MAX_DEPTH:
        raise InvalidInput(f"{name} nests more than {MAX_DEPTH} levels deep")
    if isinstance(value, (Mapping, list, tuple)) and len(value) > MAX_ITEMS:
        raise InvalidInput(f"{name} has {len(value):,} items; at most {MAX_ITEMS:,}")
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{name} has the key {shown(key)} ({type(key).__name__}); "
                                   f"keys must be text")
            key = _nfc(f"{name} key", key)
            copied[key] = data(f"{name}.{key}", item, depth + 1)
        return copied
    if isinstance(value, (list, tuple)):
        return [data(f"{name}[{n}]", item, depth + 1) for n, item in enumerate(value)]
    raise InvalidInput(f"{name} cannot be stored: {type(value).__name__} is not text, a "
                       f"number, true/false, a list or an object (write dates as ISO text)")


def fields(name: str, value: Any) -> dict[str, Any]:
    """A mapping of field names to storable values (form or message data); None is an
    empty mapping."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{name} must be a mapping of field names to values, not "
                           f"{type(value).__name__}")
    checked: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidInput(f"{name}: field name {shown(key)} must be text")
        key = _nfc(f"{name}: field name", key)
        checked[key] = data(f"{name}: field {key!r}", item, 1)
    return checked


def codes(name: str, value: Any) -> list[str]:
    """A list of codes, each NFC text, in the given order, each once. Any iterable of
    text is taken (a generator is read once); one string alone is refused, since it is
    almost always a single code given where a list was meant."""
    if isinstance(value, (str, bytes)):
        raise InvalidInput(f"{name} must be a list of codes, not one text {shown(value)} "
                           f"(write [{shown(value)}])")
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise InvalidInput(f"{name} must be a list of codes, not {type(value).__name__}")
    found = [identifier(f"{name}[{n}]", item) for n, item in enumerate(value)]
    return list(dict.fromkeys(found))


def _nfc(name: str, value: str) -> str:
    if "\x00" in value:
        raise InvalidInput(f"{name} contains a NUL character (\\x00), which cannot be "
                           f"stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} contains a lone surrogate (broken UTF-16), which is "
                           f"not text") from None
    return value if value.isascii() else unicodedata.normalize("NFC", value)
