"""What a completion's form and a message may carry, and who may send a message —
decided without I/O."""

from __future__ import annotations

import re
from typing import Any, Collection, Iterable, Mapping, Sequence

from ..errors import InvalidInput, PermissionDenied
from ..model import Officer
from ..steps import PORTAL_SENDER, StepInfo, message_senders
from .intake import START_VARIABLES

#: Process variables the engine sets; completion data and messages may not overwrite them.
RESERVED_FIELDS = frozenset(START_VARIABLES)
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def check_form(step: StepInfo | None, data: Mapping[str, Any], dossier: str,
               given: Iterable[str] = ()) -> None:
    """The data of a completion is the step's form: every field named must be one of
    the step's (so a step cannot change what another step decided), required fields must
    be given (in ``data``, or ``given`` on the task already), and choices respected."""
    given = set(given)
    fields = {f.name: f for f in (step.form if step else ())}
    for key in data:
        if not FIELD_NAME.fullmatch(key):
            raise InvalidInput(f"dossier {dossier}: field name {key!r} must start with a "
                               f"letter and use letters, digits and '_'")
        if key in RESERVED_FIELDS:
            raise InvalidInput(f"dossier {dossier}: field {key!r} is set by the engine "
                               f"and cannot be changed by a form")
        if step is not None and key not in fields:
            listed = ", ".join(fields) if fields else "none: it takes no data"
            raise InvalidInput(f"dossier {dossier}: step {step.id} has no field {key!r} "
                               f"(its fields: {listed})")
    where = step.id if step else "?"
    for form_field in fields.values():
        value = data.get(form_field.name)
        if value in (None, ""):
            if form_field.required and form_field.name not in given:
                hint = f" (one of: {', '.join(form_field.choices)})" \
                    if form_field.choices else ""
                raise InvalidInput(f"dossier {dossier}: step {where} needs field "
                                   f"{form_field.name!r}{hint}")
            continue
        if form_field.choices and value not in form_field.choices:
            raise InvalidInput(f"dossier {dossier}: field {form_field.name!r} of step "
                               f"{where} is {value!r}; allowed: "
                               f"{', '.join(form_field.choices)}")


def blanks(step: StepInfo | None, data: Mapping[str, Any],
           known: Collection[str]) -> dict[str, None]:
    """The optional fields left out of a completion that the dossier does not have yet:
    None in the process data, so conditions can test them."""
    return {f.name: None for f in (step.form if step else ())
            if f.name not in data and f.name not in known}


def check_message_names(dossier: str, name: str, data: Mapping[str, Any]) -> None:
    """A message's field names: like form fields, and never the engine's own."""
    for key in data:
        if not FIELD_NAME.fullmatch(key):
            raise InvalidInput(f"dossier {dossier}: message {name!r}: field name {key!r} "
                               f"must start with a letter and use letters, digits and '_'")
        if key in RESERVED_FIELDS:
            raise InvalidInput(f"dossier {dossier}: message {name!r}: field {key!r} is set "
                               f"by the engine and cannot be changed by a message")


def check_message_fields(dossier: str, name: str, data: Mapping[str, Any],
                         catching: Sequence[StepInfo], officers_steps: Iterable[StepInfo],
                         ) -> None:
    """What officers decide on their forms (``outcome``, ``verdict``, ...) is theirs: a
    message may carry such a field only if its own catching event's form lists it."""
    declared = {f.name for s in catching for f in s.form}
    decided = {f.name for s in officers_steps for f in s.form}
    for key in data:
        if key in decided and key not in declared:
            raise InvalidInput(f"dossier {dossier}: message {name!r}: field {key!r} is "
                               f"decided on an officer's form; a message cannot set it "
                               f"unless its catching event's form lists it")


def check_sender(dossier: str, name: str, catching: Sequence[StepInfo],
                 clerk: Officer | None, agencies: Collection[str]) -> None:
    """Who may deliver message ``name``: the roles its catching events list (in one of
    the dossier's ``agencies``), and the portal when they list ``portal`` or nobody
    (``clerk`` None: the portal delivers it). :class:`PermissionDenied` otherwise."""
    senders = frozenset().union(*(message_senders(s) for s in catching)) \
        if catching else frozenset({PORTAL_SENDER})
    if clerk is None:
        if PORTAL_SENDER not in senders:
            raise PermissionDenied(f"dossier {dossier}: message {name!r} is delivered by an "
                                   f"officer ({', '.join(sorted(senders))}), not through "
                                   f"the portal")
        return
    roles = senders - {PORTAL_SENDER}
    if not any(clerk.has_role(agency, role) for agency in agencies for role in roles):
        who = f"an officer with the role {' or '.join(sorted(roles))}" if roles \
            else "the portal only"
        raise PermissionDenied(f"officer {clerk.id} may not deliver message {name!r} to "
                               f"dossier {dossier}: it is for {who}"
                               + (f" in {', '.join(sorted(agencies))}" if roles else ""))
