"""A process library: a folder of BPMN models and the procedure catalogue that uses them.

``load_library("processes/")`` reads every ``*.bpmn`` file under the folder and its
``catalog.json``, and checks them against each other: each procedure names a process the
files define, and each user task of those processes has a role and an agency the
procedure can resolve. Problems are raised as :class:`~onestop.errors.OnestopError`
subclasses naming file, element, entry and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from .bpmn import ProcessModel, load_models
from .calendar import Calendars, load_calendars
from .catalog import BUILTIN_SLOTS, Catalog, Procedure, check_regime_overrides, load_catalog
from .errors import CatalogError, ModelError
from .regimes import Regimes, load_regimes

CATALOG_FILE = "catalog.json"
CALENDARS_FILE = "calendars.json"
REGIMES_FILE = "regimes.json"


@dataclass(frozen=True)
class Library:
    """Loaded, cross-checked process models and catalogue."""

    models: Mapping[str, ProcessModel]
    catalog: Catalog
    root: Path | None = None
    calendars: Calendars = field(default_factory=Calendars)
    regimes: Regimes | None = None

    def model_for(self, procedure: Procedure) -> ProcessModel:
        """The current model of a procedure's process."""
        return self.models[procedure.process]


def default_library_path() -> Path:
    """The process library shipped with onestop (``processes/``)."""
    packaged = Path(__file__).resolve().parent / "processes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "processes"


def load_library(path: str | Path | None = None, *, catalog: str | Path | None = None) -> Library:
    """Load ``path`` (a folder, default: the shipped library) and its catalogue."""
    root = Path(path) if path is not None else default_library_path()
    try:
        if not root.is_dir():
            raise ModelError(f"process library folder not found: {root}")
        files = sorted(p for p in root.rglob("*.bpmn") if p.is_file())
    except (OSError, ValueError) as exc:
        raise ModelError(f"process library folder {str(root)[:200]!r} cannot be read: "
                         f"{exc.__class__.__name__}: {str(exc)[:200]}") from None
    if not files:
        raise ModelError(f"no .bpmn files in {root}")
    models = load_models(files)
    catalog_path = Path(catalog) if catalog is not None else root / CATALOG_FILE
    loaded = load_catalog(catalog_path)
    check_library(models, loaded)
    # Working-time overrides and legal regimes: the library's own, else the shipped ones.
    calendars = load_calendars(root / CALENDARS_FILE) \
        if (root / CALENDARS_FILE).is_file() else Calendars()
    regimes_path = root / REGIMES_FILE
    if not regimes_path.is_file():
        regimes_path = default_library_path() / REGIMES_FILE
    regimes = load_regimes(regimes_path)
    check_regime_overrides(loaded, regimes)
    return Library(MappingProxyType(dict(models)), loaded, root, calendars, regimes)


def check_library(models: Mapping[str, ProcessModel], catalog: Catalog) -> None:
    """Check that every procedure's process exists and its user tasks can be assigned."""
    for procedure in catalog.procedures.values():
        entry = f"{procedure.code}"
        model = models.get(procedure.process)
        if model is None:
            known = ", ".join(sorted(models)) or "none"
            raise CatalogError(f"process {procedure.process!r} is not defined by any loaded "
                               f"BPMN file (executable processes: {known})",
                               file=catalog.source, entry=entry, field="process")
        for step in model.user_steps():
            # The late path's explanation is given by the regime's apology role.
            if step.role is None and step.sla != "propose":
                raise ModelError(f"user task has no role; set onestop:role (or a "
                                 f"role/candidate-groups property, or a lane named by role); "
                                 f"used by procedure {procedure.code}", file=model.file,
                                 element=step.id)
            slot = step.agency or "resolver"
            if slot not in BUILTIN_SLOTS and slot not in procedure.agencies \
                    and slot not in catalog.agencies:
                raise ModelError(f"agency {slot!r} is neither 'desk', 'resolver', a slot of "
                                 f"procedure {procedure.code} nor a catalogue agency",
                                 file=model.file, element=step.id)
