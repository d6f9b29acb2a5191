"""Safe XML parsing for BPMN files.

Models come from designers' machines and third-party tools. They are parsed with entity
resolution, DTD loading and network access disabled, and a document that declares a DTD
at all (the vehicle of external-entity and entity-expansion attacks) is refused: BPMN
never needs one. Whatever goes wrong reading or parsing a file is a
:class:`~onestop.errors.ModelError` naming it.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ..errors import ModelError, UnsafeModelError


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=False,
    )


def parse_file(path: str | Path) -> etree._Element:
    """Read and safely parse a model file; a :class:`ModelError` names the file."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read file: {exc.strerror or exc}", file=name) from None
    except (ValueError, MemoryError) as exc:  # a path with a NUL byte; a file too large
        raise ModelError(f"cannot read file: {exc or type(exc).__name__}", file=name) from None
    return parse_xml(data, name)


def parse_xml(data: bytes, filename: str) -> etree._Element:
    """Parse ``data`` into an element tree root, or raise a :class:`ModelError`."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise UnsafeModelError("the XML declares a DOCTYPE or entities; BPMN files must not "
                               "(external entities and entity expansion are refused)",
                               file=filename)
    try:
        tree = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        raise ModelError(f"malformed XML: {exc.msg}", file=filename, line=line) from None
    except (etree.LxmlError, ValueError, MemoryError, RecursionError) as exc:
        raise ModelError(f"cannot parse the XML: {type(exc).__name__}: {exc}",
                         file=filename) from None
    docinfo = tree.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise UnsafeModelError("the XML declares a DOCTYPE; BPMN files must not",
                               file=filename)
    return tree
