"""The late path holds in every shipped model that has one and in every model the table
importer writes: the warning falls due early enough that, when the explanation and the
letter each take their allotment, the letter is issued by the latest lawful instant (the
due instant minus the regime's lead); a dossier that will be on time is answered `no` and
ends normally, with nothing left open."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from onestop import (
    VIETNAM_TZ,
    ApologyStatus,
    Channel,
    Engine,
    EventKind,
    ManualClock,
    Officer,
    Task,
)
from onestop.sla import Mark, allotment_span

from onestop.modeling import read_table

from .test_import import TABLE_FILES, _library_for

START = datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ)
#: A procedure of each shipped model that has a late path.
SHIPPED = {"standard": "2.000575", "one_stop": "1.001776", "full_online": "1.004873",
           "interagency": "2.000488", "interlevel": "1.004227"}
CASES = [*(("shipped", model) for model in SHIPPED),
         *(("table", path.stem) for path in TABLE_FILES)]


class Office:
    """An engine whose staff appears as the dossier needs it: one officer per (agency,
    role) pair."""

    def __init__(self, engine: Engine, clock: ManualClock, procedure: str, desk: str) -> None:
        self.engine, self.clock, self.procedure, self.desk = engine, clock, procedure, desk
        self.staff: dict[tuple[str, str], str] = {}

    def who(self, agency: str, role: str) -> str:
        key = (agency, role)
        if key not in self.staff:
            officer = Officer(f"o{len(self.staff)}", f"Cán bộ {len(self.staff)}", {agency: [role]})
            self.engine.add_officer(officer)
            self.staff[key] = officer.id
        return self.staff[key]

    def answer(self, task: Task) -> dict[str, Any]:
        if task.step in ("Task_CheckDossier", "Step_1"):
            return {"outcome": "accept"}
        return {f.name: (f.choices[0] if f.choices else "x") for f in task.form if f.required}

    def do(self, task: Task, data: dict[str, Any] | None = None) -> None:
        self.engine.complete(task.id, self.who(task.agency, task.role),
                             self.answer(task) if data is None else data)

    def receive(self) -> str:
        procedure = self.engine.procedure(self.procedure)
        desk = self.desk
        components = [c.code for c in procedure.components if c.required]
        return self.engine.receive(self.procedure, applicant={"name": "Nguyễn Thị Hoa"},
                                   components=components, channel=Channel.IN_PERSON,
                                   officer=self.who(desk, "receiving_officer"),
                                   desk=desk).code

    def to_resolution(self, code: str) -> None:
        for _ in range(20):
            dossier = self.engine.dossier(code)
            if int(dossier.status) == 4:
                return
            self.clock.advance(minutes=5)
            self.do(dossier.open_tasks[0])
        raise AssertionError(f"{code} never reached resolution")

    def finish(self, code: str) -> None:
        for _ in range(40):
            dossier = self.engine.dossier(code)
            if not dossier.open_tasks:
                return
            self.clock.advance(minutes=5)
            self.do(dossier.open_tasks[0])
        raise AssertionError(f"{code} did not finish")


@pytest.fixture
def office(request, make_engine, sqlite_url, tmp_path) -> Office:
    kind, name = request.param
    clock = ManualClock(START)
    if kind == "shipped":
        engine = make_engine(sqlite_url, clock=clock)
        procedure, desk = SHIPPED[name], "AN-BINH-MC"
        if name == "interagency":
            desk = "TINH-TTPVHCC"
    else:
        table = next(p for p in TABLE_FILES if p.stem == name)
        folder, codes = _library_for(table, tmp_path / "lib")
        engine = make_engine(sqlite_url, clock=clock, library=folder)
        procedure = next(iter(engine.library.catalog.procedures))
        desk = codes[read_table(table).steps[0].agency]
    return Office(engine, clock, procedure, desk)


def instants(office: Office, code: str) -> tuple[datetime, datetime, datetime]:
    """The due instant, the latest lawful instant for the letter and the warning, as the
    law and the regime data state them (the explanation's and the letter's allotments
    are 10% and 5% of the legal time)."""
    engine = office.engine
    dossier = engine.dossier(code)
    procedure = engine.procedure(office.procedure)
    regimes = engine.library.regimes
    assert regimes is not None and dossier.appointment_at is not None
    regime = procedure.effective_regime(regimes.at(dossier.received_at))
    calendar = engine.library.calendars.for_agency(dossier.desk_agency)
    due = dossier.appointment_at
    lead = regime.lead_for(procedure.legal_time)
    latest = calendar.from_axis(calendar.to_axis(due) - allotment_span(
        calendar, str(lead), procedure.legal_time))
    latest = max(latest, dossier.received_at)
    path = allotment_span(calendar, "15%", procedure.legal_time)
    warning = max(calendar.from_axis(calendar.to_axis(latest) - path), office.clock.now())
    return due, latest, warning


def sweep(office: Office, when: datetime) -> list[str]:
    office.clock.set(max(when, office.clock.now()))
    return [f.step for f in office.engine.fire_due_timers()]


@pytest.mark.parametrize("office", CASES, indirect=True, ids=lambda c: f"{c[0]}-{c[1]}")
def test_a_late_dossier_gets_its_letter_by_the_latest_lawful_instant(office: Office):
    engine = office.engine
    code = office.receive()
    office.to_resolution(code)
    due, latest, warning = instants(office, code)
    assert latest <= due - timedelta(hours=1)             # a lead, whatever the legal time
    if warning > office.clock.now():
        assert sweep(office, warning - timedelta(minutes=1)) == []
    assert sweep(office, warning) == ["Timer_Apology"]
    (prompt,) = [t for t in engine.dossier(code).open_tasks if t.step == "Task_ExplainDelay"]
    assert prompt.role == "leader"
    assert prompt.due_at is not None and prompt.due_at <= latest
    # Everyone takes exactly their allotment: the letter still goes out by the latest
    # lawful instant.
    office.clock.set(max(prompt.due_at, office.clock.now()))
    new_day = (due + timedelta(days=10)).date()
    while new_day.weekday() >= 5:
        new_day += timedelta(days=1)
    office.do(prompt, {"will_be_late": "yes", "delay_reason": "Chờ xác minh",
                       "new_appointment": new_day.isoformat()})
    (letter,) = [t for t in engine.dossier(code).open_tasks if t.step == "Task_IssueApology"]
    assert letter.due_at == latest
    office.clock.set(letter.due_at)
    office.do(letter)
    (apology,) = [e for e in engine.history(code) if e.kind is EventKind.APPOINTMENT_SET
                  and e.detail.get("reason") == "apology"]
    assert apology.at <= latest and apology.detail["in_time"] is True
    office.finish(code)
    report = engine.sla(code)
    assert engine.dossier(code).finished and report.mark is Mark.LATE
    assert report.apology_status is ApologyStatus.IN_TIME


@pytest.mark.parametrize("office", CASES, indirect=True, ids=lambda c: f"{c[0]}-{c[1]}")
def test_an_on_time_dossier_is_answered_no_and_ends_with_nothing_open(office: Office):
    engine = office.engine
    code = office.receive()
    office.to_resolution(code)
    _due, _latest, warning = instants(office, code)
    assert sweep(office, warning) == ["Timer_Apology"]
    (prompt,) = [t for t in engine.dossier(code).open_tasks if t.step == "Task_ExplainDelay"]
    office.do(prompt, {"will_be_late": "no"})
    office.finish(code)
    dossier = engine.dossier(code)
    assert dossier.finished and dossier.open_tasks == ()
    assert sweep(office, dossier.finished_at + timedelta(days=60)) == []
    report = engine.sla(code)
    assert report.apologies == () and report.apology_status is ApologyStatus.NOT_NEEDED
