"""Three reception rules the law sets: boundary-free receipt (không phụ thuộc địa giới
hành chính), re-use of what the state already holds (tái sử dụng dữ liệu), and paper
transfer under the cut-off rule (allotment ``cutoff``)."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import datetime, time
from pathlib import Path
from typing import Any, Callable

import pytest

from onestop import (
    VIETNAM_TZ,
    Channel,
    DossierNotFound,
    Engine,
    EventKind,
    InvalidInput,
    ManualClock,
    ModelError,
    Officer,
    RuleViolation,
)
from onestop.bpmn import load_models
from onestop.calendar import WorkingCalendar
from onestop.modeling.lint import lint
from onestop.sla import cutoff_deadline, step_deadline

from .conftest import stored_dossiers

DATA = Path(__file__).parent / "data" / "reception"
STAFF = [
    Officer("mc.anbinh", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}),
    Officer("mc.binhan", "Lý Thị Hoa", {"BINH-AN-MC": ["receiving_officer"]}),
    Officer("cv.ub", "Lê Văn Bình", {"AN-BINH-UB": ["specialist"]}),
    Officer("cv.tp", "Đặng Thùy Dung", {"AN-BINH-TP": ["specialist"]}),
]
APPLICANT = {"name": "Nguyễn Thị Thu"}
CAL = WorkingCalendar()


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


class Reception:
    """An engine on the reception library, with what the re-use connector was given."""

    def __init__(self, engine: Engine, clock: ManualClock, seen: list[dict[str, Any]],
                 database: str) -> None:
        self.engine, self.clock, self.seen, self.database = engine, clock, seen, database

    def stored_dossiers(self) -> int:
        return stored_dossiers(self.engine)


@pytest.fixture
def rc(make_engine: Callable[..., Engine], database: str, clock: ManualClock) -> Reception:
    seen: list[dict[str, Any]] = []
    engine = make_engine(database, library=DATA, clock=clock,
                         connectors={"data.reuse": seen.append})
    for officer in STAFF:
        engine.add_officer(officer)
    return Reception(engine, clock, seen, database)


def received_event(engine: Engine, code: str):
    (event,) = [e for e in engine.history(code) if e.kind is EventKind.RECEIVED]
    return event


def complete_open(engine: Engine, code: str, officer: str, data: dict | None = None):
    (task,) = engine.dossier(code).open_tasks
    return engine.complete(task.id, officer, data or {})


# -- boundary-free receipt ------------------------------------------------------------
def test_boundary_free_procedure_received_at_another_communes_desk(rc: Reception) -> None:
    engine = rc.engine
    dossier = engine.receive("9.100001", applicant=APPLICANT, components=["ban-chinh"],
                             officer="mc.binhan")
    assert dossier.code == "BINH-AN-MC-250707-0001"
    assert dossier.desk_agency == "BINH-AN-MC"
    assert dossier.resolving_agency == "AN-BINH-UB"        # the competent agency
    event = received_event(engine, dossier.code)
    assert event.agency == "BINH-AN-MC" and event.actor == "mc.binhan"
    assert event.detail["desk"] == "BINH-AN-MC" and event.detail["boundary_free"] is True

    # The desk's steps stay at the receiving desk; resolution goes to the competent agency.
    (check,) = dossier.open_tasks
    assert (check.step, check.agency) == ("Task_CheckDossier", "BINH-AN-MC")
    complete_open(engine, dossier.code, "mc.binhan", {"outcome": "accept"})
    complete_open(engine, dossier.code, "mc.binhan")      # digitize the original
    transfer = complete_open(engine, dossier.code, "mc.binhan")
    assert transfer.current_steps == ("Task_Examine",)
    (examine,) = engine.inbox("cv.ub")
    assert (examine.dossier_code, examine.step, examine.agency) == \
        (dossier.code, "Task_Examine", "AN-BINH-UB")
    assert engine.inbox("cv.tp") == [] and engine.inbox("mc.anbinh") == []

    # Reports count boundary-free receipts by the desk that received them.
    home = engine.receive("9.100001", applicant=APPLICANT, components=["ban-chinh"],
                          officer="mc.anbinh")
    again = engine.receive("9.100001", applicant=APPLICANT, channel=Channel.ONLINE,
                           desk="BINH-AN-MC")
    events = [received_event(engine, c) for c in (dossier.code, home.code, again.code)]
    by_desk = Counter(e.detail["desk"] for e in events if e.detail["boundary_free"])
    assert by_desk == {"BINH-AN-MC": 2, "AN-BINH-MC": 1}


def test_procedure_with_desks_refused_elsewhere_and_nothing_is_stored(rc: Reception) -> None:
    engine = rc.engine
    with pytest.raises(RuleViolation) as refused:
        engine.receive("9.100002", applicant=APPLICANT, components=["to-khai"],
                       officer="mc.binhan")
    message = str(refused.value)
    assert "9.100002" in message and "BINH-AN-MC" in message and "AN-BINH-MC" in message
    with pytest.raises(RuleViolation, match="BINH-AN-MC"):
        engine.receive("9.100002", applicant=APPLICANT, components=["to-khai"],
                       channel=Channel.ONLINE, desk="BINH-AN-MC")
    assert rc.stored_dossiers() == 0
    with pytest.raises(DossierNotFound):
        engine.dossier("BINH-AN-MC-250707-0001")
    assert engine.inbox("mc.binhan") == []
    # The refused receipts took no number at that desk.
    taken = engine.receive("9.100003", applicant=APPLICANT, officer="mc.binhan")
    assert taken.code == "BINH-AN-MC-250707-0001"
    # At a desk that receives it, it is received as usual.
    home = engine.receive("9.100002", applicant=APPLICANT, components=["to-khai"],
                          officer="mc.anbinh")
    assert home.code == "AN-BINH-MC-250707-0001" and home.resolving_agency == "AN-BINH-TP"
    assert received_event(engine, home.code).detail["boundary_free"] is False
    assert rc.stored_dossiers() == 2


def test_procedure_without_desks_is_received_anywhere(rc: Reception) -> None:
    engine = rc.engine
    there = engine.receive("9.100003", applicant=APPLICANT, officer="mc.binhan")
    here = engine.receive("9.100003", applicant=APPLICANT, officer="mc.anbinh")
    assert (there.desk_agency, here.desk_agency) == ("BINH-AN-MC", "AN-BINH-MC")
    assert there.resolving_agency == here.resolving_agency == "AN-BINH-UB"
    assert received_event(engine, there.code).detail["desk"] == "BINH-AN-MC"


def test_boundary_free_procedure_is_received_at_a_desk_not_a_resolver(rc: Reception) -> None:
    with pytest.raises(RuleViolation, match=r"AN-BINH-UB is a resolver agency, not a desk"):
        rc.engine.receive("9.100001", applicant=APPLICANT, channel=Channel.ONLINE,
                          desk="AN-BINH-UB")
    assert rc.stored_dossiers() == 0


# -- re-use of what the state holds ---------------------------------------------------
@pytest.mark.parametrize(("components", "held", "seeded", "after_check"), [
    # Identity held by the state: handed in, not missing, nothing left to digitize.
    (["to-khai"], ["giay-to-tuy-than"],
     {"components": ["to-khai", "giay-to-tuy-than"], "missing_components": [],
      "to_digitize": [], "reused": ["giay-to-tuy-than"]}, "Task_Transfer"),
    # Held wins over a paper copy handed in as well: not digitized again.
    (["giay-to-tuy-than", "to-khai"], ["giay-to-tuy-than"],
     {"components": ["giay-to-tuy-than", "to-khai"], "missing_components": [],
      "to_digitize": [], "reused": ["giay-to-tuy-than"]}, "Task_Transfer"),
    # Something else remains to digitize: the digitize step runs.
    (["giay-xac-nhan", "to-khai"], ["giay-to-tuy-than"],
     {"components": ["giay-xac-nhan", "to-khai", "giay-to-tuy-than"],
      "missing_components": [], "to_digitize": ["giay-xac-nhan"],
      "reused": ["giay-to-tuy-than"]}, "Task_Digitize"),
    # Nothing held: the identity paper is digitized, in catalogue order.
    (["giay-xac-nhan", "giay-to-tuy-than", "to-khai"], [],
     {"components": ["giay-xac-nhan", "giay-to-tuy-than", "to-khai"],
      "missing_components": [], "to_digitize": ["giay-to-tuy-than", "giay-xac-nhan"],
      "reused": []}, "Task_Digitize"),
    # Neither handed in nor held: missing.
    (["to-khai"], [],
     {"components": ["to-khai"], "missing_components": ["giay-to-tuy-than"],
      "to_digitize": [], "reused": []}, "Task_Transfer"),
])
def test_held_components_count_as_handed_in_and_are_not_digitized(
        rc: Reception, components: list[str], held: list[str], seeded: dict[str, list[str]],
        after_check: str) -> None:
    engine = rc.engine
    dossier = engine.receive("9.100002", applicant=APPLICANT, components=components,
                             held=held, officer="mc.anbinh")
    (data,) = rc.seen                                     # what the process started with
    assert {key: data[key] for key in seeded} == seeded
    assert list(dossier.components) == seeded["components"]
    assert received_event(engine, dossier.code).detail["held"] == seeded["reused"]
    after = complete_open(engine, dossier.code, "mc.anbinh", {"outcome": "accept"})
    assert after.current_steps == (after_check,)
    ready = [e.step for e in engine.history(dossier.code) if e.kind is EventKind.TASK_READY]
    assert ("Task_Digitize" in ready) is (after_check == "Task_Digitize")


def test_held_component_must_be_a_reusable_component_of_the_procedure(rc: Reception) -> None:
    engine = rc.engine
    with pytest.raises(InvalidInput) as not_reusable:
        engine.receive("9.100002", applicant=APPLICANT, components=["to-khai"],
                       held=["giay-xac-nhan"], officer="mc.anbinh")
    message = str(not_reusable.value)
    assert "giay-xac-nhan" in message and "9.100002" in message and "reusable" in message
    with pytest.raises(InvalidInput) as unknown:
        engine.receive("9.100002", applicant=APPLICANT, components=["to-khai"],
                       held=["so-ho-khau"], officer="mc.anbinh")
    assert "so-ho-khau" in str(unknown.value) and "9.100002" in str(unknown.value)
    with pytest.raises(InvalidInput, match="held must be a list"):
        engine.receive("9.100002", applicant=APPLICANT, held="giay-to-tuy-than",
                       officer="mc.anbinh")
    # A component reusable in one procedure is not thereby reusable in another.
    with pytest.raises(InvalidInput, match="ban-chinh"):
        engine.receive("9.100001", applicant=APPLICANT, held=["ban-chinh"],
                       officer="mc.anbinh")
    assert rc.stored_dossiers() == 0 and rc.seen == []
    assert engine.receive("9.100002", applicant=APPLICANT, officer="mc.anbinh").code == \
        "AN-BINH-MC-250707-0001"


@pytest.mark.parametrize("field", ["to_digitize", "reused"])
def test_seeded_reception_variables_are_reserved(rc: Reception, field: str) -> None:
    engine = rc.engine
    dossier = engine.receive("9.100002", applicant=APPLICANT,
                             components=["to-khai", "giay-to-tuy-than"], officer="mc.anbinh")
    (check,) = dossier.open_tasks
    with pytest.raises(InvalidInput, match=f"field '{field}' is set by the engine"):
        engine.complete(check.id, "mc.anbinh", {"outcome": "accept", field: []})
    assert engine.dossier(dossier.code).current_steps == ("Task_CheckDossier",)


# -- paper transfer under the cut-off rule ---------------------------------------------
@pytest.mark.parametrize(("procedure", "accepted", "due"), [
    # Before the 15:00 cut-off: the same working day, by the close of office hours.
    ("9.100003", at(2025, 7, 8, 14, 59), at(2025, 7, 8, 17, 0)),
    # After it: the next working day's morning run.
    ("9.100003", at(2025, 7, 8, 15, 1), at(2025, 7, 9, 11, 30)),
    # Friday after the cut-off, before National Day (1 and 2 September 2025 off).
    ("9.100003", at(2025, 8, 29, 15, 1), at(2025, 9, 3, 11, 30)),
    # The procedure's own cut-off, 16:00.
    ("9.100004", at(2025, 7, 8, 15, 30), at(2025, 7, 8, 17, 0)),
    ("9.100004", at(2025, 7, 8, 16, 1), at(2025, 7, 9, 11, 30)),
])
def test_paper_transfer_is_due_under_the_cut_off_rule(rc: Reception, procedure: str,
                                                       accepted: datetime,
                                                       due: datetime) -> None:
    engine, clock = rc.engine, rc.clock
    clock.set(accepted.replace(hour=8, minute=0))
    dossier = engine.receive(procedure, applicant=APPLICANT, officer="mc.anbinh")
    clock.set(accepted)
    after = complete_open(engine, dossier.code, "mc.anbinh", {"outcome": "accept"})
    (transfer,) = after.open_tasks
    assert transfer.step == "Task_Transfer" and transfer.ready_at == accepted
    assert transfer.due_at == due
    assert engine.task(transfer.id).due_at == due
    (ready,) = [e for e in engine.history(dossier.code)
                if e.kind is EventKind.TASK_READY and e.step == "Task_Transfer"]
    assert ready.detail == {"due": due.isoformat()}
    (step,) = [s for s in engine.sla(dossier.code).steps if s.step == "Task_Transfer"]
    assert step.due_at == due


@pytest.mark.parametrize(("ready", "cutoff", "due"), [
    (at(2025, 7, 8, 6, 45), time(15), at(2025, 7, 8, 17, 0)),     # before office hours
    (at(2025, 7, 8, 12, 15), time(15), at(2025, 7, 8, 17, 0)),    # lunch break
    (at(2025, 7, 8, 15, 0), time(15), at(2025, 7, 9, 11, 30)),    # at the cut-off: after
    (at(2025, 7, 8, 17, 30), time(15), at(2025, 7, 9, 11, 30)),   # after closing
    (at(2025, 7, 8, 17, 30), time(18), at(2025, 7, 9, 11, 30)),   # a cut-off after closing
    (at(2025, 7, 12, 10, 0), time(15), at(2025, 7, 14, 17, 0)),   # Saturday: Monday's close
    (at(2025, 8, 29, 14, 0), time(15), at(2025, 8, 29, 17, 0)),
    (at(2025, 8, 29, 16, 0), time(15), at(2025, 9, 3, 11, 30)),
])
def test_cutoff_deadline(ready: datetime, cutoff: time, due: datetime) -> None:
    assert cutoff_deadline(CAL, ready, cutoff) == due
    assert step_deadline(CAL, ready, "cutoff", None, cutoff) == due


def test_cutoff_deadline_follows_the_agencys_sessions() -> None:
    own = WorkingCalendar(sessions=((time(7, 0), time(11, 0)), (time(13, 30), time(17, 30))))
    assert cutoff_deadline(own, at(2025, 7, 8, 14, 0), time(15)) == at(2025, 7, 8, 17, 30)
    assert cutoff_deadline(own, at(2025, 7, 8, 15, 5), time(15)) == at(2025, 7, 9, 11, 0)


def test_step_deadline_needs_the_cutoff_for_a_cutoff_allotment() -> None:
    with pytest.raises(ValueError, match="cut-off"):
        step_deadline(CAL, at(2025, 7, 8, 10, 0), "cutoff", None)


def test_cutoff_is_an_allotment_of_the_model(tmp_path: Path) -> None:
    text = (DATA / "reception.bpmn").read_text(encoding="utf-8")
    spaced = tmp_path / "spaced.bpmn"
    spaced.write_text(text.replace('onestop:allotment="cutoff"',
                                   'onestop:allotment=" cutoff "'), encoding="utf-8")
    model = load_models([spaced])["reception"]
    assert model.steps["reception"]["Task_Transfer"].allotment == "cutoff"
    misspelt = tmp_path / "misspelt.bpmn"
    misspelt.write_text(text.replace('onestop:allotment="cutoff"',
                                     'onestop:allotment="cut-off"'), encoding="utf-8")
    with pytest.raises(ModelError, match="'cutoff' for a transfer under the cut-off rule"):
        load_models([misspelt])


# -- lint's allotment budget -----------------------------------------------------------
def test_lint_counts_a_cutoff_step_as_one_working_day(tmp_path: Path) -> None:
    # 2wd legal time = 16 working hours: transfer (cutoff, <= 8h) + examine (1wd) fit.
    assert [str(f) for f in lint([DATA / "budget.bpmn"])] == []
    shutil.copy(DATA / "catalog.json", tmp_path)
    text = (DATA / "budget.bpmn").read_text(encoding="utf-8")
    (tmp_path / "budget.bpmn").write_text(
        text.replace('onestop:allotment="1wd"', 'onestop:allotment="1.5wd"'),
        encoding="utf-8")
    (finding,) = lint([tmp_path / "budget.bpmn"])
    assert finding.severity == "error" and finding.element == "budget"
    assert "add up to 20 working hours, more than the legal time 2wd" in finding.message
