"""The one exception hierarchy of onestop.

Every error the library raises on bad input is an :class:`OnestopError`. Messages name
what is at fault: the file and element id of a model, the catalogue entry and field, the
dossier code, the officer and role. Callers can catch the base class, or a subclass to
react to one kind of problem (for example :class:`PermissionDenied` to answer HTTP 403).
"""

from __future__ import annotations


class OnestopError(Exception):
    """Base class of every error onestop raises on purpose."""


class ModelError(OnestopError):
    """A BPMN model cannot be loaded: malformed XML, unsafe content, an unknown element,
    a dangling reference, or a missing one-stop property.

    ``file``, ``element`` and ``line`` say where, when known.
    """

    def __init__(self, message: str, *, file: str | None = None, element: str | None = None,
                 line: int | None = None) -> None:
        self.file = file
        self.element = element
        self.line = line
        where = ""
        if file:
            where = file + (f":{line}" if line else "")
        if element:
            where = f"{where}: element '{element}'" if where else f"element '{element}'"
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message


class UnsafeModelError(ModelError):
    """A model tries something the restricted evaluator forbids (imports, dunder access,
    file or network access), or its XML declares entities."""


class CatalogError(OnestopError):
    """The procedure catalogue has bad data; names the file, entry and field."""

    def __init__(self, message: str, *, file: str | None = None, entry: str | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.entry = entry
        self.field = field
        parts = [p for p in (file, f"entry {entry}" if entry else None,
                             f"field '{field}'" if field else None) if p]
        super().__init__(f"{': '.join(parts)}: {message}" if parts else message)
        self.reason = message


class UnknownProcedure(OnestopError):
    """No procedure in the catalogue has this code."""


class DossierNotFound(OnestopError):
    """No dossier has this code (or the code is not a dossier code at all)."""


class TaskNotFound(OnestopError):
    """No task has this id, or the task is no longer open."""


class UnknownOfficer(OnestopError):
    """No officer with this id is registered."""


class UnknownAgency(OnestopError):
    """No agency with this code is known to the catalogue."""


class PermissionDenied(OnestopError):
    """The officer lacks the role the step needs in the step's agency, or the task is
    claimed by someone else."""


class InvalidInput(OnestopError, ValueError):
    """Data handed to the engine is malformed: a form field missing, unknown or out of its
    choices, a value that cannot be stored, a component code the procedure does not know,
    an argument of the wrong type. (Also a :class:`ValueError`.)"""


class ProcessError(OnestopError):
    """A model failed while running (for example no outgoing flow of a gateway matched).
    Nothing of the failed command is stored."""

    def __init__(self, message: str, *, dossier: str | None = None,
                 element: str | None = None) -> None:
        self.dossier = dossier
        self.element = element
        where = " ".join(p for p in (f"dossier {dossier}" if dossier else "",
                                     f"element '{element}'" if element else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message


class RuleViolation(OnestopError):
    """The command would break a rule of the legal regime: a second supplement request by
    the same agency, a re-appointment beyond the regime's limit, a new appointment that
    is not later than the current one. Nothing of the command is stored."""


class StoreError(OnestopError):
    """The database cannot be opened or used (missing folder, refused connection, ...)."""


class ConcurrentUpdate(OnestopError):
    """Another process changed the dossier between this command's read and write; the
    command was rolled back and may be retried."""


class TaskNotOpen(TaskNotFound, ConcurrentUpdate):
    """The task is not open (any more): another command completed or cancelled it first
    — the dossier's history says what happened — or no task ever had this id. Both a
    :class:`TaskNotFound` and a :class:`ConcurrentUpdate`: refresh and decide again."""


class OnestopWarning(UserWarning):
    """Something onestop accepted but that is probably a mistake (e.g. an officer given a
    role no loaded model uses)."""


class BudgetExceeded(ProcessError):
    """A condition, script or timer expression of a model went beyond the budget of the
    restricted evaluator: too many steps (loop iterations and guarded operations), too
    much work (sizes of the values it built or scanned), or one value too large (a text,
    list or number past its size limit). The message says which limit was hit and in
    which expression. The budget is deterministic (it counts, it never reads a clock), so
    the same data always fails the same way; a runaway or hostile model is stopped instead
    of hanging the command. Nothing of the failed command is stored."""
