"""onestop: Vietnam's one-stop-shop (một cửa, một cửa liên thông) dossier processing as
BPMN workflows, with durable SQL persistence.

The public API is what this module exports; everything else is private.
"""

from .catalog import Agency, Catalog, Component, Procedure, load_catalog
from .clock import VIETNAM_TZ, Clock, ManualClock, SystemClock
from .duration import Duration, Unit
from .engine import RECEIVING_ROLE, Engine
from .errors import (
    CatalogError,
    ConcurrentUpdate,
    DossierNotFound,
    InvalidInput,
    ModelError,
    OnestopError,
    PermissionDenied,
    ProcessError,
    StoreError,
    TaskNotFound,
    UnknownAgency,
    UnknownOfficer,
    UnknownProcedure,
    UnsafeModelError,
)
from .library import Library, default_library_path, load_library
from .model import (
    Channel,
    Dossier,
    DossierStatus,
    Event,
    EventKind,
    FormField,
    Officer,
    Task,
    TaskState,
)

__version__ = "0.1.0"

__all__ = [
    "Agency", "Catalog", "CatalogError", "Channel", "Clock", "Component", "ConcurrentUpdate",
    "Dossier", "DossierNotFound", "DossierStatus", "Duration", "Engine", "Event",
    "EventKind", "FormField", "InvalidInput", "Library", "ManualClock", "ModelError",
    "OnestopError", "Officer", "PermissionDenied", "Procedure", "ProcessError",
    "RECEIVING_ROLE", "StoreError", "SystemClock", "Task", "TaskNotFound", "TaskState", "Unit",
    "UnknownAgency", "UnknownOfficer", "UnknownProcedure", "UnsafeModelError",
    "VIETNAM_TZ", "default_library_path", "load_catalog", "load_library",
]
