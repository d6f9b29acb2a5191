"""The service-level path of the standard process: step deadlines, statuses from the
event log, a supplement pausing (or restarting) the clock once per agency, and the
apology letter with a new appointment when a dossier will be late."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from onestop import (
    VIETNAM_TZ,
    DossierStatus,
    Engine,
    EventKind,
    InvalidInput,
    ManualClock,
    Officer,
)
from onestop.errors import RuleViolation
from onestop.sla import Mark

from .conftest import STAFF

ROOT = Path(__file__).resolve().parent.parent
INTERAGENCY = Path(__file__).parent / "data" / "interagency"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


def open_engine(make_engine, database: str, clock: ManualClock, **kwargs) -> Engine:
    engine = make_engine(database, clock=clock, **kwargs)
    for officer in STAFF:
        engine.add_officer(officer)
    return engine


def task(engine: Engine, code: str, step: str):
    found = [t for t in engine.dossier(code).open_tasks if t.step == step]
    assert found, f"{step} is not open in {code}: {engine.dossier(code).current_steps}"
    return found[0]


def transferred(engine: Engine, clock: ManualClock) -> str:
    """A 3-working-day dossier accepted on Monday 2025-07-07 08:10 (appointment Thursday
    08:10), digitized and transferred by 08:30: it waits in Task_Examine."""
    code = engine.receive("2.000575", applicant={"name": "Nguyễn Thị Hoa"},
                          components=["giay-de-nghi"], officer="tn.an").code
    for step, data in (("Task_CheckDossier", {"outcome": "accept"}), ("Task_Digitize", {}),
                       ("Task_Transfer", {})):
        clock.advance(minutes=10)
        engine.complete(task(engine, code, step).id, "tn.an", data)
    return code


def kinds(engine: Engine, code: str, kind: EventKind) -> list:
    return [e for e in engine.history(code) if e.kind is kind]


def test_late_dossier_gets_exactly_one_apology_and_a_new_appointment(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = transferred(engine, clock)
    dossier = engine.dossier(code)
    assert dossier.appointment_at == at(2025, 7, 10, 8, 10)
    examine = task(engine, code, "Task_Examine")
    assert examine.due_at == at(2025, 7, 8, 16, 24)        # 60% of 3 working days
    assert engine.sla(code).mark is Mark.WITHIN_TIME

    # The specialist sits on it. A restart happens while the apology timer is pending.
    engine.close()
    clock.set(at(2025, 7, 9, 8, 9))
    engine = open_engine(make_engine, database, clock)
    assert engine.fire_due_timers() == []
    report = engine.sla(code)
    assert report.mark is Mark.WITHIN_TIME                 # 1 working day and 1 minute left
    assert engine.sla(code, due_soon="2wd").mark is Mark.DUE_SOON   # threshold is the user's
    with pytest.raises(InvalidInput, match="due_soon"):
        engine.sla(code, due_soon="soon")
    assert {s.step: s.mark for s in report.steps}["Task_Examine"] is Mark.OVERDUE
    clock.set(at(2025, 7, 9, 8, 10))                       # one working day before
    assert engine.sla(code).mark is Mark.DUE_SOON
    (fired,) = engine.fire_due_timers()
    assert fired.step == "Timer_Apology" and fired.due_at == at(2025, 7, 9, 8, 10)

    explain = task(engine, code, "Task_ExplainDelay")
    assert (explain.agency, explain.role) == ("AN-BINH-KT", "specialist")
    assert [t.step for t in engine.inbox("lv.binh")] == ["Task_Examine", "Task_ExplainDelay"]
    clock.advance(hours=1)
    engine.complete(explain.id, "lv.binh", {"delay_reason": "Chờ kết quả xác minh thực địa",
                                            "new_appointment": "2025-07-11"})
    clock.advance(hours=1)
    dossier = engine.complete(task(engine, code, "Task_IssueApology").id, "tn.an",
                              {"letter_no": "15/PXL"})
    assert dossier.appointment_at == at(2025, 7, 11, 17, 0)
    assert dossier.current_steps == ("Task_Examine",)

    clock.set(at(2025, 7, 10, 9, 0))
    assert engine.fire_due_timers() == []                  # no second apology
    for step, officer, data in (("Task_Examine", "lv.binh", {"verdict": "approve"}),
                                ("Task_Approve", "pq.cuong", {}),
                                ("Task_ReturnResult", "tn.an", {})):
        clock.advance(minutes=30)
        dossier = engine.complete(task(engine, code, step).id, officer, data)
    assert dossier.status is DossierStatus.RESULT_RETURNED

    apologies = [e for e in kinds(engine, code, EventKind.APPOINTMENT_SET)
                 if e.detail["reason"] == "apology"]
    assert len(apologies) == 1 and len(kinds(engine, code, EventKind.TIMER_FIRED)) == 1
    assert apologies[0].detail["responsible"] == "AN-BINH-KT"
    assert apologies[0].detail["form"] == "04"
    report = engine.sla(code)
    assert report.mark is Mark.LATE                        # still late, whatever the end
    assert report.due_at == at(2025, 7, 10, 8, 10)
    assert report.appointment_at == at(2025, 7, 11, 17, 0)
    (apology,) = report.apologies
    assert (apology.responsible_agency, apology.reason) == \
        ("AN-BINH-KT", "Chờ kết quả xác minh thực địa")


def test_dossier_resolved_before_the_apology_lead_raises_no_apology(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code = transferred(engine, clock)
    for step, officer, data in (("Task_Examine", "lv.binh", {"verdict": "approve"}),
                                ("Task_Approve", "pq.cuong", {}),
                                ("Task_ReturnResult", "tn.an", {})):
        clock.advance(hours=2)
        engine.complete(task(engine, code, step).id, officer, data)
    clock.set(at(2025, 7, 20, 8, 0))
    assert engine.fire_due_timers() == []
    report = engine.sla(code)
    assert report.mark is Mark.EARLY and report.apologies == ()
    marks = {s.step: s.mark for s in report.steps}
    assert marks == {"Task_CheckDossier": Mark.NO_DEADLINE,       # before the clock starts
                     "Task_Digitize": Mark.ON_TIME, "Task_Transfer": Mark.ON_TIME,
                     "Task_Examine": Mark.EARLY,                   # due Tuesday, done Monday
                     "Task_Approve": Mark.ON_TIME, "Task_ReturnResult": Mark.ON_TIME}


def explain_ready(engine: Engine, clock: ManualClock) -> tuple[str, object]:
    code = transferred(engine, clock)
    clock.set(at(2025, 7, 9, 9, 0))
    engine.fire_due_timers()
    return code, task(engine, code, "Task_ExplainDelay")


@pytest.mark.parametrize("data, error, words", [
    ({"delay_reason": "Chậm", "new_appointment": "2025-07-09"}, RuleViolation,
     "must be later than the current one"),
    ({"delay_reason": "Chậm", "new_appointment": "tuần sau"}, InvalidInput,
     "is not a date"),
    ({"delay_reason": "Chậm", "new_appointment": "2025-07-12"}, InvalidInput,
     "not a working day"),
    ({"new_appointment": "2025-07-15"}, InvalidInput, "needs field 'delay_reason'"),
])
def test_bad_new_appointment_is_refused_and_nothing_is_stored(make_engine, sqlite_url, data,
                                                              error, words):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code, explain = explain_ready(engine, clock)
    before = engine.history(code)
    with pytest.raises(error, match=words):
        engine.complete(explain.id, "lv.binh", data)
    assert engine.history(code) == before
    assert engine.dossier(code).appointment_at == at(2025, 7, 10, 8, 10)


def test_regime_without_reappointments_refuses_a_new_appointment(make_engine, sqlite_url,
                                                                 tmp_path):
    library = tmp_path / "lib"
    shutil.copytree(ROOT / "processes", library)
    regimes = json.loads((library / "regimes.json").read_text(encoding="utf-8"))
    for regime in regimes["regimes"]:
        regime["max_reappointments"] = 0
    (library / "regimes.json").write_text(json.dumps(regimes), encoding="utf-8")
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock, library=library)
    code, explain = explain_ready(engine, clock)
    with pytest.raises(RuleViolation, match="ND118-2025 allows 0 re-appointment"):
        engine.complete(explain.id, "lv.binh", {"delay_reason": "Chậm",
                                                "new_appointment": "2025-07-15"})
    assert engine.dossier(code).appointment_at == at(2025, 7, 10, 8, 10)


def ask_supplement(engine: Engine, clock: ManualClock, code: str, when: datetime):
    clock.set(when)
    return engine.complete(task(engine, code, "Task_Examine").id, "lv.binh",
                           {"verdict": "supplement", "missing": ["bien-ban-hop"]})


def test_supplement_during_resolution_pauses_the_clock_and_moves_the_apology(
        make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = transferred(engine, clock)
    dossier = ask_supplement(engine, clock, code, at(2025, 7, 8, 9, 0))
    assert dossier.status is DossierStatus.SUPPLEMENT_REQUESTED
    assert dossier.current_steps == ("Task_ReceiveResolutionSupplement",)
    (asked,) = kinds(engine, code, EventKind.SUPPLEMENT_REQUESTED)
    assert asked.agency == "AN-BINH-KT" and asked.detail["clock"] == "pause"

    clock.set(at(2025, 7, 9, 10, 0))                       # past the old apology instant
    assert engine.fire_due_timers() == []                  # the clock is stopped
    report = engine.sla(code)
    assert report.paused and report.mark is Mark.WITHIN_TIME

    clock.set(at(2025, 7, 11, 9, 0))                       # 3 working days later
    dossier = engine.complete(task(engine, code, "Task_ReceiveResolutionSupplement").id,
                              "tn.an", {"supplemented": ["bien-ban-hop"]})
    assert dossier.status is DossierStatus.IN_PROGRESS
    assert dossier.appointment_at == at(2025, 7, 15, 8, 10)   # Thursday + 3 working days
    resumed = kinds(engine, code, EventKind.APPOINTMENT_SET)[-1]
    assert resumed.detail["reason"] == "supplement_pause"
    assert not engine.sla(code).paused and engine.sla(code).due_at == at(2025, 7, 15, 8, 10)

    clock.set(at(2025, 7, 14, 8, 9))
    assert engine.fire_due_timers() == []
    clock.set(at(2025, 7, 14, 8, 10))                      # 1 working day before the new due
    assert [f.step for f in engine.fire_due_timers()] == ["Timer_Apology"]


def test_an_agency_may_ask_for_a_supplement_only_once(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = transferred(engine, clock)
    ask_supplement(engine, clock, code, at(2025, 7, 8, 9, 0))
    clock.set(at(2025, 7, 9, 9, 0))
    engine.complete(task(engine, code, "Task_ReceiveResolutionSupplement").id, "tn.an", {})
    before = engine.history(code)
    with pytest.raises(RuleViolation, match="AN-BINH-KT has already asked"):
        ask_supplement(engine, clock, code, at(2025, 7, 9, 10, 0))
    assert engine.history(code) == before
    dossier = engine.dossier(code)
    assert dossier.status is DossierStatus.IN_PROGRESS
    assert dossier.current_steps == ("Task_Examine",)
    dossier = engine.complete(dossier.open_tasks[0].id, "lv.binh", {"verdict": "approve"})
    assert dossier.current_steps == ("Task_Approve",)


def test_under_nd61_a_supplement_restarts_the_legal_time(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 6, 23, 8, 0))             # Monday, under ND61-2018
    engine = open_engine(make_engine, sqlite_url, clock)
    code = transferred(engine, clock)
    assert engine.dossier(code).appointment_at == at(2025, 6, 26, 8, 10)
    ask_supplement(engine, clock, code, at(2025, 6, 24, 9, 0))
    clock.set(at(2025, 6, 27, 9, 0))
    dossier = engine.complete(task(engine, code, "Task_ReceiveResolutionSupplement").id,
                              "tn.an", {})
    assert dossier.regime == "ND61-2018"
    assert dossier.appointment_at == at(2025, 7, 2, 9, 0)  # 3 working days from Friday 09:00
    assert kinds(engine, code, EventKind.APPOINTMENT_SET)[-1].detail["reason"] == \
        "supplement_restart"


INTERAGENCY_STAFF = [
    Officer("ttpv.lan", "Ngô Thị Lan", {"TINH-TTPVHCC": ["receiving_officer"]}),
    Officer("stp.minh", "Hồ Văn Minh", {"SO-TU-PHAP": ["specialist"]}),
    Officer("stp.nga", "Trịnh Thu Nga", {"SO-TU-PHAP": ["leader"]}),
    Officer("cat.son", "Quách Văn Sơn", {"CA-TINH": ["specialist"]}),
]


def test_in_inter_agency_work_the_agency_that_caused_the_delay_apologises(make_engine,
                                                                          database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = make_engine(database, library=INTERAGENCY, clock=clock)
    for officer in INTERAGENCY_STAFF:
        engine.add_officer(officer)
    code = engine.receive("2.000488", applicant={"name": "Mai Anh Tuấn"},
                          officer="ttpv.lan").code
    dossier = engine.complete(task(engine, code, "Task_CheckDossier").id, "ttpv.lan",
                              {"outcome": "accept"})
    assert dossier.appointment_at == at(2025, 7, 14, 8, 0)     # 5 working days
    clock.advance(hours=1)
    engine.complete(task(engine, code, "Task_Examine").id, "stp.minh")   # in time
    verify = task(engine, code, "Task_Verify")
    assert verify.agency == "CA-TINH" and verify.due_at == at(2025, 7, 9, 9, 0)

    clock.set(at(2025, 7, 11, 8, 0))                       # the police still hold it
    assert [f.step for f in engine.fire_due_timers()] == ["Timer_Apology"]
    explain = task(engine, code, "Task_ExplainDelay")
    assert explain.agency == "CA-TINH"
    assert [t.step for t in engine.inbox("stp.minh")] == []
    engine.complete(explain.id, "cat.son", {"delay_reason": "Chờ tra cứu dữ liệu lý lịch",
                                            "new_appointment": "2025-07-18"})
    engine.complete(task(engine, code, "Task_IssueApology").id, "ttpv.lan")
    (apology,) = engine.sla(code).apologies
    assert apology.responsible_agency == "CA-TINH"
    assert apology.new_appointment == at(2025, 7, 18, 17, 0)
