"""Receiving a dossier (tiếp nhận hồ sơ), decided without I/O: which components count,
where a procedure may be received and by whom, and the variables its process starts with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..catalog import Procedure
from ..errors import InvalidInput, PermissionDenied, RuleViolation
from ..model import Channel, Officer

#: The role that receives dossiers at a one-stop desk.
RECEIVING_ROLE = "receiving_officer"
#: Who acts when a dossier arrives without an officer, or a message comes from outside
#: (online or postal intake, the applicant, the payment platform).
PORTAL_ACTOR = "portal"
#: The variables a process starts with (see :meth:`Intake.variables`); completion data
#: and messages may not overwrite them.
START_VARIABLES = ("procedure", "channel", "components", "missing_components",
                   "to_digitize", "reused", "fee_due")


@dataclass(frozen=True)
class Intake:
    """What a dossier brings: ``components`` handed in, then those ``held`` (re-used from
    the state's databases, in catalogue order); ``to_digitize`` the handed-in ones to
    scan (none online: they arrive as electronic documents); ``missing`` the required
    ones neither handed in nor held; ``fee_due`` the procedure's fees in VND."""

    procedure: str
    channel: Channel
    components: tuple[str, ...]
    held: tuple[str, ...]
    to_digitize: tuple[str, ...]
    missing: tuple[str, ...]
    fee_due: int

    def variables(self) -> dict[str, Any]:
        """The process variables the dossier's process starts with."""
        return {"procedure": self.procedure, "channel": int(self.channel),
                "components": list(self.components),
                "missing_components": list(self.missing),
                "to_digitize": list(self.to_digitize), "reused": list(self.held),
                "fee_due": self.fee_due}


def intake(proc: Procedure, channel: Channel, handed_in: Iterable[str],
           held: Iterable[str]) -> Intake:
    """Check the codes handed in and held against the procedure's components
    (:class:`InvalidInput` for an unknown code, or a held one not marked ``reusable``)."""
    handed_in, held = list(handed_in), list(held)
    known = ", ".join(c.code for c in proc.components) or "none"
    for code in handed_in:
        if proc.component(code) is None:
            raise InvalidInput(f"procedure {proc.code} has no component {code!r} "
                               f"(its components: {known})")
    for code in held:
        found = proc.component(code)
        if found is None:
            raise InvalidInput(f"held component {code!r}: procedure {proc.code} has no "
                               f"such component (its components: {known})")
        if not found.reusable:
            raise InvalidInput(f"held component {code!r} ({found.name}) of procedure "
                               f"{proc.code} is not marked reusable in the catalogue: "
                               f"the applicant hands it in")
    reused = tuple(c.code for c in proc.components if c.code in held)
    to_digitize = () if channel is Channel.ONLINE else tuple(
        c.code for c in proc.components
        if c.must_digitize and c.code in handed_in and c.code not in reused)
    components = tuple(dict.fromkeys([*handed_in, *held]))
    missing = tuple(c.code for c in proc.components
                    if c.required and c.code not in components)
    return Intake(proc.code, channel, components, reused, to_digitize, missing,
                  proc.fee_total)


def receiver(channel: Channel, clerk: Officer | None, desk: str | None) -> tuple[str, str]:
    """The desk that receives the dossier and who acts: an in-person dossier is received
    by an officer holding the receiving role at the desk (which defaults to their only
    one); an online or postal one may come without an officer, at a named desk."""
    if clerk is None:
        if channel is Channel.IN_PERSON:
            raise InvalidInput("an in-person dossier is received by an officer: pass officer=")
        if desk is None:
            raise InvalidInput("desk= is required when no officer receives the dossier")
        return desk, PORTAL_ACTOR
    if desk is None:
        desks = sorted(a for a, roles in clerk.roles.items() if RECEIVING_ROLE in roles)
        if len(desks) != 1:
            raise InvalidInput(f"officer {clerk.id} receives at {len(desks)} desks; "
                               f"say which with desk=")
        desk = desks[0]
    if not clerk.has_role(desk, RECEIVING_ROLE):
        raise PermissionDenied(f"officer {clerk.id} does not hold the role "
                               f"{RECEIVING_ROLE!r} at {desk}")
    return desk, clerk.id


def check_desk(proc: Procedure, desk: str, kind_of: Callable[[str], str | None]) -> None:
    """Where a procedure may be received: a boundary-free one at any one-stop desk (an
    agency of kind ``desk`` or of no stated kind), one listing ``desks`` only there, any
    other anywhere. :class:`RuleViolation` otherwise."""
    kind = kind_of(desk)
    if proc.boundary_free and kind not in (None, "desk"):
        raise RuleViolation(f"procedure {proc.code} ({proc.name}) is boundary-free and is "
                            f"received at any one-stop desk, but {desk} is a {kind} "
                            f"agency, not a desk")
    if not proc.boundary_free and proc.desks and desk not in proc.desks:
        raise RuleViolation(f"procedure {proc.code} ({proc.name}) is not received at desk "
                            f"{desk}: it is not boundary-free and is received at "
                            f"{', '.join(proc.desks)}")
