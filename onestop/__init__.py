"""onestop: Vietnam's one-stop-shop (một cửa, một cửa liên thông) dossier processing as
BPMN workflows, with durable SQL persistence.

The public API is what this module exports; everything else is private.
"""

from .catalog import Agency, Catalog, Component, Procedure, load_catalog
from .clock import VIETNAM_TZ, Clock, ManualClock, SystemClock
from .duration import Duration, Unit
from .engine import LEADER_ROLE, RECEIVING_ROLE, Engine
from .errors import (
    CatalogError,
    ConcurrentUpdate,
    DossierNotFound,
    InvalidInput,
    ModelError,
    OnestopError,
    OnestopWarning,
    PermissionDenied,
    ProcessError,
    RuleViolation,
    StoreError,
    TaskNotFound,
    TaskNotOpen,
    UnknownAgency,
    UnknownOfficer,
    UnknownProcedure,
    UnsafeModelError,
)
from .calendar import WorkingCalendar, WorkingTime
from .library import Library, default_library_path, load_library
from .model import (
    Channel,
    Dossier,
    DossierStatus,
    DossierSummary,
    Event,
    EventKind,
    Feedback,
    FiredTimer,
    FormField,
    Officer,
    OutboxMessage,
    Task,
    TaskState,
)
from .rules.sla import Apology, ApologyStatus, Mark, SlaReport, StepSla

__version__ = "0.1.0"

__all__ = [
    "Agency", "Apology", "Catalog", "CatalogError", "Channel", "Clock", "Component",
    "ApologyStatus", "LEADER_ROLE", "OnestopWarning", "TaskNotOpen",
    "ConcurrentUpdate", "Dossier", "DossierNotFound", "DossierStatus", "DossierSummary",
    "Duration", "Engine", "Event", "EventKind", "Feedback", "FiredTimer", "FormField",
    "InvalidInput", "Library", "ManualClock",
    "Mark", "ModelError", "OnestopError", "Officer", "OutboxMessage", "PermissionDenied",
    "Procedure",
    "ProcessError", "RECEIVING_ROLE", "RuleViolation", "SlaReport", "StepSla", "StoreError",
    "SystemClock", "Task", "TaskNotFound", "TaskState", "Unit", "UnknownAgency",
    "UnknownOfficer", "UnknownProcedure", "UnsafeModelError", "VIETNAM_TZ",
    "WorkingCalendar", "WorkingTime", "default_library_path", "load_catalog", "load_library",
]
