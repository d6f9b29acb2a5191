"""The step vocabulary the engine, the rules and lint share: what onestop knows of a flow
node of a model (its role, agency slot, allotment, status, form, late-path part, clock,
connector), and who may deliver the message a catching step waits for. Read from BPMN by
:mod:`onestop.bpmn.extensions`; nothing here parses XML or runs a process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import FormField

#: Service-level parts a step can play on the late path: ``propose`` (the head of the
#: responsible agency says whether the dossier will be late, why and until when) and
#: ``apology`` (the desk issues the apology letter and the new appointment).
SLA_PARTS = ("propose", "apology")
#: The sender name a message event gives (in its role list) to accept the portal channel.
PORTAL_SENDER = "portal"
#: What a timer counts: working time (default) or calendar time.
CLOCKS = ("working", "calendar")
#: Step kinds an officer works on (they wait in inboxes).
OFFICER_KINDS = ("userTask", "manualTask")


@dataclass(frozen=True)
class StepInfo:
    """What onestop knows about one flow node of a model."""

    id: str
    name: str
    kind: str
    role: str | None = None
    agency: str | None = None
    allotment: str | None = None
    status: int | None = None
    form: tuple[FormField, ...] = ()
    sla: str | None = None
    clock: str | None = None
    connector: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The step as plain JSON values (how a stored model keeps it)."""
        return {
            "id": self.id, "name": self.name, "kind": self.kind, "role": self.role,
            "agency": self.agency, "allotment": self.allotment, "status": self.status,
            "form": [[f.name, f.required, list(f.choices)] for f in self.form],
            "sla": self.sla, "clock": self.clock, "connector": self.connector,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StepInfo":
        """The step :meth:`to_dict` gave."""
        form = tuple(FormField(str(n), bool(r), tuple(c)) for n, r, c in data["form"])
        return cls(id=data["id"], name=data["name"], kind=data["kind"], role=data["role"],
                   agency=data["agency"], allotment=data["allotment"],
                   status=data["status"], form=form, sla=data.get("sla"),
                   clock=data.get("clock"), connector=data.get("connector"))


def message_senders(step: StepInfo) -> frozenset[str]:
    """Who may deliver the message a catching step waits for: role names, and
    ``"portal"`` for the portal channel (the applicant, the payment platform). A step
    that names nobody takes messages from the portal only."""
    names = frozenset(n for n in (step.role or "").split(",") if n)
    return names or frozenset({PORTAL_SENDER})
