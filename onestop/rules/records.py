"""The records the service-quality index counts, checked without I/O: what was digitized
and re-used, payments, how the result was issued, the applicant's rating, and feedback
(phản ánh, kiến nghị) with its own deadline.

Each check takes the dossier as its log tells it (:class:`Record`) and the input, and
returns the event payload to append, or raises :class:`InvalidInput` (bad input) or
:class:`RuleViolation` (the dossier is not in a state to take it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from .. import inputs
from ..catalog import Procedure
from ..errors import InvalidInput, PermissionDenied, RuleViolation
from ..events import (
    DataReused,
    Digitized,
    FeedbackAnswered,
    FeedbackReceived,
    Paid,
    Rated,
    Received,
    ResultIssued,
)
from ..model import Officer
from .facts import RATING_LEVELS

#: Kinds of feedback: a report of a problem (phản ánh) and a proposal (kiến nghị).
FEEDBACK_KINDS = {"phan_anh": "Phản ánh", "kien_nghi": "Kiến nghị"}
#: The largest payment taken, in VND (a typo guard, not a legal limit).
MAX_AMOUNT = 10**12
_REF = 200
_TEXT = 4000


@dataclass
class Record:
    """What the log says of a dossier so far that the records depend on."""

    code: str
    procedure: str
    finished: bool
    resolved: bool
    digitized: dict[str, str] = field(default_factory=dict)
    reused: dict[str, str] = field(default_factory=dict)
    rated: bool = False
    #: feedback number -> (due instant, answered?, rated?)
    feedback: dict[int, list[Any]] = field(default_factory=dict)


def read(code: str, procedure: str, finished: bool, events: Iterable[Any]) -> Record:
    """The :class:`Record` of a dossier from its log (oldest first)."""
    found = Record(code, procedure, finished, resolved=False)
    for event in events:
        payload = event.payload
        if isinstance(payload, Received):
            found.reused.update({c: payload.sources.get(c, "") for c in payload.held})
        elif isinstance(payload, Digitized):
            found.digitized.update(payload.documents)
        elif isinstance(payload, DataReused):
            found.reused.update(payload.sources)
        elif isinstance(payload, Rated):
            if payload.feedback is None:
                found.rated = True
            elif payload.feedback in found.feedback:
                found.feedback[payload.feedback][2] = True
        elif isinstance(payload, FeedbackReceived):
            found.feedback[payload.number] = [payload.due, False, False]
        elif isinstance(payload, FeedbackAnswered) and payload.number in found.feedback:
            found.feedback[payload.number][1] = True
        elif getattr(payload, "to_status", None) in (9, 10):
            found.resolved = True
    return found


def acting_agency(record: Record, officer: Officer, agencies: Iterable[str]) -> str:
    """The dossier's agency where ``officer`` holds a role (desk first): who records
    for it. :class:`PermissionDenied` for an officer of none of its agencies."""
    for agency in agencies:
        if officer.roles.get(agency):
            return agency
    raise PermissionDenied(f"officer {officer.id} holds no role in the agencies of dossier "
                           f"{record.code} and cannot record for it")


def digitization(record: Record, proc: Procedure | None,
                 documents: Mapping[str, Any]) -> Digitized:
    """Components scanned and signed: component code -> document code (số hiệu)."""
    found = _mapping("documents", documents, record, proc)
    return Digitized(documents=found)


def reuse(record: Record, proc: Procedure | None, sources: Mapping[str, Any]) -> DataReused:
    """Components taken from the state's databases: component code -> the database."""
    found = _mapping("sources", sources, record, proc)
    if proc is not None:
        for code in found:
            component = proc.component(code)
            if component is not None and not component.reusable:
                raise InvalidInput(f"dossier {record.code}: sources: component {code!r} "
                                   f"({component.name}) is not marked reusable in the "
                                   f"catalogue")
    return DataReused(sources=found)


def sources(codes: list[str], given: Any) -> dict[str, str]:
    """``held`` as given to receive: codes (no source told) or code -> database."""
    if not isinstance(given, Mapping):
        return {}
    found: dict[str, str] = {}
    for code, source in given.items():
        code = inputs.text("held", code, max_length=inputs.MAX_ID)
        found[code] = inputs.text(f"held.{code}", source, max_length=_REF)
    return {code: found[code] for code in codes if code in found}


def _mapping(name: str, value: Any, record: Record,
             proc: Procedure | None) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput(f"dossier {record.code}: {name} must map component codes to "
                           f"text, e.g. {{'giay-de-nghi': 'DOC-001'}}")
    found: dict[str, str] = {}
    for code, text in value.items():
        code = inputs.text(f"{name} key", code, max_length=inputs.MAX_ID)
        if proc is not None and proc.component(code) is None:
            raise InvalidInput(f"dossier {record.code}: {name}: procedure {proc.code} has no "
                               f"component {code!r} (it has: "
                               f"{', '.join(c.code for c in proc.components) or 'none'})")
        found[code] = inputs.text(f"{name}.{code}", text, max_length=_REF)
    return found


def payment(record: Record, amount: Any, online: Any, reference: Any) -> Paid:
    """A fee paid: a whole number of VND, online or at the desk."""
    if isinstance(amount, bool) or not isinstance(amount, int) \
            or not 0 < amount <= MAX_AMOUNT:
        raise InvalidInput(f"dossier {record.code}: amount must be a whole number of VND "
                           f"from 1 to {MAX_AMOUNT}, not {inputs.shown(amount)}")
    if not isinstance(online, bool):
        raise InvalidInput(f"dossier {record.code}: online must be True (paid through the "
                           f"payment platform) or False (at the desk), not "
                           f"{inputs.shown(online)}")
    ref = inputs.text("reference", reference, max_length=_REF) \
        if reference is not None else None
    return Paid(amount=amount, online=online, reference=ref)


def result(record: Record, electronic: Any, paper: Any, documents: Any) -> ResultIssued:
    """The result issued electronically, on paper, or both."""
    for name, value in (("electronic", electronic), ("paper", paper)):
        if not isinstance(value, bool):
            raise InvalidInput(f"dossier {record.code}: {name} must be True or False, not "
                               f"{inputs.shown(value)}")
    if not (electronic or paper):
        raise InvalidInput(f"dossier {record.code}: a result is issued electronically, on "
                           f"paper, or both: set electronic or paper")
    if not record.resolved and not record.finished:
        raise RuleViolation(f"dossier {record.code} is not resolved yet: its result cannot "
                            f"have been issued")
    codes = tuple(inputs.codes("documents", documents))
    return ResultIssued(electronic=electronic, paper=paper, documents=codes)


def rating(record: Record, level: Any, feedback: Any, comment: Any) -> Rated:
    """The applicant's satisfaction with the dossier's handling (once, when it has
    ended or been resolved), or with the answer to a feedback (once, when answered)."""
    if level not in RATING_LEVELS:
        raise InvalidInput(f"dossier {record.code}: level must be one of "
                           f"{', '.join(RATING_LEVELS)}, not {inputs.shown(level)}")
    note = inputs.text("comment", comment, max_length=_TEXT) if comment is not None else None
    if feedback is None:
        if not (record.resolved or record.finished):
            raise RuleViolation(f"dossier {record.code} is still being resolved: the "
                                f"applicant rates it once it is resolved or has ended")
        if record.rated:
            raise RuleViolation(f"dossier {record.code} has already been rated")
        return Rated(level=str(level), comment=note)
    entry = _feedback(record, feedback)
    if not entry[1]:
        raise RuleViolation(f"feedback {feedback} of dossier {record.code} has not been "
                            f"answered yet: its answer cannot be rated")
    if entry[2]:
        raise RuleViolation(f"the answer to feedback {feedback} of dossier {record.code} "
                            f"has already been rated")
    return Rated(level=str(level), feedback=int(feedback), comment=note)


def new_feedback(record: Record, text: Any, kind: Any, due: datetime) -> FeedbackReceived:
    """The applicant's feedback or petition, numbered within the dossier, due by
    ``due`` (the regime's feedback time after it came)."""
    if kind not in FEEDBACK_KINDS:
        raise InvalidInput(f"dossier {record.code}: kind must be one of "
                           f"{', '.join(FEEDBACK_KINDS)}, not {inputs.shown(kind)}")
    body = inputs.text("text", text, max_length=_TEXT)
    return FeedbackReceived(number=len(record.feedback) + 1, kind_of=str(kind), text=body,
                            due=due)


def answer(record: Record, number: Any, text: Any, now: datetime) -> FeedbackAnswered:
    """The agency's answer to feedback ``number`` (once)."""
    entry = _feedback(record, number)
    if entry[1]:
        raise RuleViolation(f"feedback {number} of dossier {record.code} has already been "
                            f"answered")
    body = inputs.text("answer", text, max_length=_TEXT)
    due: datetime = entry[0]
    return FeedbackAnswered(number=int(number), answer=body, due=due,
                            on_time=due is None or now <= due)


def _feedback(record: Record, number: Any) -> list[Any]:
    if isinstance(number, bool) or not isinstance(number, int) \
            or number not in record.feedback:
        raise InvalidInput(f"dossier {record.code} has no feedback {inputs.shown(number)} "
                           f"(it has: {', '.join(map(str, record.feedback)) or 'none'})")
    return record.feedback[number]
