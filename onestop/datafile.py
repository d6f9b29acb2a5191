"""The one reader of the JSON data files (catalogue, calendars, regimes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import CatalogError


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
