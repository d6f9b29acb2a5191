"""The service-level path of the standard process: step deadlines, statuses from the
event log, a supplement pausing (or restarting) the clock once per agency, and the late
path — the warning early enough to apologise in time, the prompt that asks whether the
dossier will be late, the apology letter with a new appointment, the proactive start, the
prompt withdrawn when the resolution ends, and the late apology after the due instant."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from onestop import (
    VIETNAM_TZ,
    ApologyStatus,
    DossierStatus,
    Engine,
    EventKind,
    InvalidInput,
    ManualClock,
    Officer,
    PermissionDenied,
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
    08:10), digitized and transferred by 08:30: it waits in Task_Examine.

    Its late path: the letter is due by Wednesday 08:10 at the latest (one working day
    before the appointment); the prompt (10% of 3 working days) and the letter (5%)
    need 3 h 36 min of working time before that, so the warning falls due on Tuesday
    2025-07-08 at 14:04."""
    code = engine.receive("2.000575", applicant={"name": "Nguyễn Thị Hoa"},
                          components=["giay-de-nghi"], officer="tn.an").code
    for step, data in (("Task_CheckDossier", {"outcome": "accept"}), ("Task_Digitize", {}),
                       ("Task_Transfer", {})):
        clock.advance(minutes=10)
        engine.complete(task(engine, code, step).id, "tn.an", data)
    return code


WARNING = at(2025, 7, 8, 14, 4)
LATEST = at(2025, 7, 9, 8, 10)
DUE = at(2025, 7, 10, 8, 10)


def kinds(engine: Engine, code: str, kind: EventKind) -> list:
    return [e for e in engine.history(code) if e.kind is kind]


def resolve(engine: Engine, clock: ManualClock, code: str, minutes: int = 30) -> None:
    for step, officer, data in (("Task_Examine", "lv.binh", {"verdict": "approve"}),
                                ("Task_Approve", "pq.cuong", {})):
        clock.advance(minutes=minutes)
        engine.complete(task(engine, code, step).id, officer, data)


def warned(engine: Engine, clock: ManualClock) -> str:
    code = transferred(engine, clock)
    clock.set(WARNING)
    assert [f.step for f in engine.fire_due_timers()] == ["Timer_Apology"]
    return code


def test_the_warning_comes_early_enough_for_the_letter_to_be_issued_in_time(
        make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = transferred(engine, clock)
    dossier = engine.dossier(code)
    assert dossier.appointment_at == DUE
    assert task(engine, code, "Task_Examine").due_at == at(2025, 7, 8, 16, 24)  # 60% of 3wd

    # A restart happens while the warning is pending; nothing is due a minute before it.
    engine.close()
    clock.set(at(2025, 7, 8, 14, 3))
    engine = open_engine(make_engine, database, clock)
    assert engine.fire_due_timers() == []
    clock.set(WARNING)
    (fired,) = engine.fire_due_timers()
    assert (fired.step, fired.due_at) == ("Timer_Apology", WARNING)

    # The head of the responsible agency is asked, with a deadline that leaves the desk
    # its allotment before the latest lawful instant.
    prompt = task(engine, code, "Task_ExplainDelay")
    assert (prompt.agency, prompt.role) == ("AN-BINH-KT", "leader")
    assert prompt.due_at == at(2025, 7, 8, 16, 28)                   # + 10% of 3wd
    assert [f.name for f in prompt.form] == ["will_be_late", "delay_reason",
                                             "new_appointment"]
    assert [t.step for t in engine.inbox("pq.cuong")] == ["Task_ExplainDelay"]
    assert [t.step for t in engine.inbox("lv.binh")] == ["Task_Examine"]

    clock.advance(hours=2, minutes=24)                        # 16:28: at its deadline
    with pytest.raises(InvalidInput, match="needs field 'new_appointment'"):
        engine.complete(prompt.id, "pq.cuong", {"will_be_late": "yes",
                                                "delay_reason": "Chờ xác minh thực địa"})
    engine.complete(prompt.id, "pq.cuong", {"will_be_late": "yes",
                                            "delay_reason": "Chờ xác minh thực địa",
                                            "new_appointment": "2025-07-11"})
    (assessed,) = kinds(engine, code, EventKind.DELAY_ASSESSED)
    assert assessed.detail["will_be_late"] is True and assessed.actor == "pq.cuong"
    letter = task(engine, code, "Task_IssueApology")
    assert letter.due_at == LATEST                                   # ends at the latest
    clock.advance(minutes=26)                                        # 16:54
    dossier = engine.complete(letter.id, "tn.an", {"letter_no": "15/PXL"})
    assert dossier.appointment_at == at(2025, 7, 11, 17, 0)
    assert dossier.current_steps == ("Task_Examine",)

    (apology,) = [e for e in kinds(engine, code, EventKind.APPOINTMENT_SET)
                  if e.detail["reason"] == "apology"]
    # Issued at least the regime's lead (one working day) before the due instant.
    assert apology.at <= LATEST
    assert apology.detail["latest"] == LATEST.isoformat()
    assert apology.detail["in_time"] is True and apology.detail["after_due"] is False
    assert (apology.detail["responsible"], apology.detail["form"]) == ("AN-BINH-KT", "04")

    clock.set(at(2025, 7, 10, 9, 0))
    assert engine.fire_due_timers() == []                   # re-appointed at most once
    resolve(engine, clock, code)
    dossier = engine.complete(task(engine, code, "Task_ReturnResult").id, "tn.an")
    assert dossier.status is DossierStatus.RESULT_RETURNED and dossier.finished
    report = engine.sla(code)
    assert report.mark is Mark.LATE                         # still late, whatever the end
    assert report.apology_status is ApologyStatus.IN_TIME
    assert report.due_at == DUE and report.appointment_at == at(2025, 7, 11, 17, 0)
    (entry,) = report.apologies
    assert (entry.responsible_agency, entry.reason, entry.latest, entry.in_time) == \
        ("AN-BINH-KT", "Chờ xác minh thực địa", LATEST, True)


def test_a_dossier_that_will_be_on_time_is_answered_no_and_ends_normally(make_engine,
                                                                        database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = warned(engine, clock)
    clock.advance(minutes=20)
    dossier = engine.complete(task(engine, code, "Task_ExplainDelay").id, "pq.cuong",
                              {"will_be_late": "no"})
    assert dossier.appointment_at == DUE                    # no re-appointment
    assert dossier.current_steps == ("Task_Examine",)       # the question is closed
    (assessed,) = kinds(engine, code, EventKind.DELAY_ASSESSED)
    assert assessed.detail == {"will_be_late": False, "overdue": False}
    assert kinds(engine, code, EventKind.APPOINTMENT_SET) == []

    resolve(engine, clock, code)
    dossier = engine.complete(task(engine, code, "Task_ReturnResult").id, "tn.an")
    assert dossier.finished and dossier.open_tasks == ()
    assert dossier.status is DossierStatus.RESULT_RETURNED
    clock.set(at(2025, 7, 20, 8, 0))
    assert engine.fire_due_timers() == []                   # the due-instant check is gone
    report = engine.sla(code)
    assert report.mark is Mark.EARLY and report.apologies == ()
    assert report.apology_status is ApologyStatus.NOT_NEEDED


def test_an_open_prompt_is_withdrawn_when_the_resolution_ends(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = warned(engine, clock)
    resolve(engine, clock, code)                            # nobody answered the prompt
    dossier = engine.dossier(code)
    assert dossier.current_steps == ("Task_ReturnResult",)
    assert [t.step for t in engine.inbox("pq.cuong")] == []
    (withdrawn,) = kinds(engine, code, EventKind.TASK_CANCELLED)
    assert withdrawn.step == "Task_ExplainDelay"
    assert withdrawn.detail == {"reason": "resolution_ended"}
    dossier = engine.complete(task(engine, code, "Task_ReturnResult").id, "tn.an")
    assert dossier.finished and dossier.status is DossierStatus.RESULT_RETURNED
    assert engine.sla(code).mark is Mark.EARLY
    assert engine.sla(code).apology_status is ApologyStatus.NOT_NEEDED


def test_after_the_due_instant_the_agency_is_asked_again_and_the_letter_is_late(
        make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = warned(engine, clock)
    engine.complete(task(engine, code, "Task_ExplainDelay").id, "pq.cuong",
                    {"will_be_late": "no"})
    clock.set(at(2025, 7, 10, 8, 9))
    assert engine.fire_due_timers() == []
    assert engine.sla(code).apology_status is ApologyStatus.NOT_NEEDED
    clock.set(DUE)
    assert [f.step for f in engine.fire_due_timers()] == ["Timer_Overdue"]
    again = task(engine, code, "Task_ExplainLate")
    assert (again.agency, again.role) == ("AN-BINH-KT", "leader")
    assert [f.name for f in again.form] == ["delay_reason", "new_appointment"]  # no "no"
    with pytest.raises(InvalidInput, match="has no field 'will_be_late'"):
        engine.complete(again.id, "pq.cuong", {"will_be_late": "no"})
    clock.advance(minutes=30)
    assert engine.sla(code).apology_status is ApologyStatus.MISSING   # overdue, none yet
    engine.complete(again.id, "pq.cuong", {"delay_reason": "Lãnh đạo đi công tác",
                                           "new_appointment": "2025-07-14"})
    clock.advance(minutes=30)
    dossier = engine.complete(task(engine, code, "Task_IssueApology").id, "tn.an")
    assert dossier.appointment_at == at(2025, 7, 14, 17, 0)
    (apology,) = [e for e in kinds(engine, code, EventKind.APPOINTMENT_SET)
                  if e.detail["reason"] == "apology"]
    assert apology.detail["in_time"] is False and apology.detail["after_due"] is True
    resolve(engine, clock, code)
    engine.complete(task(engine, code, "Task_ReturnResult").id, "tn.an")
    report = engine.sla(code)
    assert report.mark is Mark.LATE and report.apology_status is ApologyStatus.LATE


def test_no_is_refused_once_the_due_instant_has_passed(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code = warned(engine, clock)
    clock.set(at(2025, 7, 10, 9, 0))
    assert engine.fire_due_timers() == []          # the prompt is open: not asked twice
    prompt = task(engine, code, "Task_ExplainDelay")
    before = engine.history(code)
    with pytest.raises(RuleViolation, match="has passed, so the dossier is late"):
        engine.complete(prompt.id, "pq.cuong", {"will_be_late": "no"})
    assert engine.history(code) == before
    engine.complete(prompt.id, "pq.cuong", {"will_be_late": "yes", "delay_reason": "Chậm",
                                            "new_appointment": "2025-07-15"})
    (assessed,) = kinds(engine, code, EventKind.DELAY_ASSESSED)
    assert assessed.detail["overdue"] is True


def test_an_officer_who_knows_early_starts_the_apology_at_once(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = transferred(engine, clock)
    clock.set(at(2025, 7, 7, 10, 0))                       # long before the warning
    with pytest.raises(PermissionDenied, match="resolving side"):
        engine.start_apology(code, "tn.an")                # the desk is not the resolver
    dossier = engine.start_apology(code, "lv.binh", reason="Phải kiểm tra thực địa")
    assert sorted(dossier.current_steps) == ["Task_Examine", "Task_ExplainDelay"]
    (started,) = kinds(engine, code, EventKind.APOLOGY_REQUESTED)
    assert (started.actor, started.agency, started.detail["reason"]) == \
        ("lv.binh", "AN-BINH-KT", "Phải kiểm tra thực địa")
    assert started.detail["timer_due"] == WARNING.isoformat()
    with pytest.raises(RuleViolation, match="already open"):
        engine.start_apology(code, "lv.binh")
    prompt = task(engine, code, "Task_ExplainDelay")
    assert prompt.role == "leader"
    # The reason is filled in: the head confirms with the new appointment only.
    engine.complete(prompt.id, "pq.cuong", {"will_be_late": "yes",
                                            "new_appointment": "2025-07-14"})
    dossier = engine.complete(task(engine, code, "Task_IssueApology").id, "tn.an")
    assert dossier.appointment_at == at(2025, 7, 14, 17, 0)
    clock.set(WARNING)
    assert engine.fire_due_timers() == []                  # no second warning
    (apology,) = engine.sla(code).apologies
    assert apology.reason == "Phải kiểm tra thực địa" and apology.in_time
    with pytest.raises(RuleViolation, match="allows 1 re-appointment"):
        engine.start_apology(code, "lv.binh")


def test_a_dossier_resolved_before_the_warning_is_never_asked(make_engine, sqlite_url):
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


COMMUNE = [
    Officer("dt.dung", "Đặng Thùy Dung", {"AN-BINH-UB": ["specialist"]}),
    Officer("hm.hai", "Hoàng Minh Hải", {"AN-BINH-UB": ["leader"]}),
]


def test_same_day_dossiers_are_warned_after_receipt_and_only_when_late(make_engine,
                                                                      sqlite_url):
    """Certification (2.000815) is resolved the same day. Its lead is two working hours
    (regime data) and the late path's 15% of one working day takes 72 minutes, so a
    dossier in resolution at 13:48 is warned then; one whose resolution starts later is
    warned when it starts, never before it was received; those resolved before the
    warning are never asked."""
    clock = ManualClock(at(2025, 7, 7, 7, 30))
    engine = open_engine(make_engine, sqlite_url, clock)
    for officer in COMMUNE:
        engine.add_officer(officer)
    quick: list[str] = []
    for hour, minute in ((7, 35), (8, 30), (9, 40), (10, 40), (13, 5), (14, 10), (14, 50)):
        clock.set(at(2025, 7, 7, hour, minute))
        received = clock.now()
        code = engine.receive("2.000815", applicant={"name": f"Công dân {hour}:{minute}"},
                              components=["ban-chinh"], officer="tn.an").code
        for step, officer, data in (("Task_CheckDossier", "tn.an", {"outcome": "accept"}),
                                    ("Task_Digitize", "tn.an", {}),
                                    ("Task_Transfer", "tn.an", {})):
            clock.advance(minutes=3)
            engine.complete(task(engine, code, step).id, officer, data)
        if hour >= 14:
            # Received in the afternoon: the path no longer fits before 15:00, so the
            # warning falls due when the resolution starts, never before the receipt.
            (fired,) = engine.fire_due_timers()
            assert fired.dossier_code == code and received < fired.due_at == clock.now()
            engine.complete(task(engine, code, "Task_ExplainDelay").id, "hm.hai",
                            {"will_be_late": "no"})
        assert engine.fire_due_timers() == []
        for step, officer, data in (("Task_Examine", "dt.dung", {"verdict": "approve"}),
                                    ("Task_Approve", "hm.hai", {}),
                                    ("Task_ReturnResult", "tn.an", {})):
            clock.advance(minutes=10)
            engine.complete(task(engine, code, step).id, officer, data)
        quick.append(code)
    clock.set(at(2025, 7, 7, 17, 30))                       # past every due instant
    assert engine.fire_due_timers() == []
    for code in quick:
        dossier = engine.dossier(code)
        assert dossier.finished and dossier.open_tasks == (), code
        report = engine.sla(code)
        assert report.mark is Mark.ON_TIME and report.apologies == (), code
        assert report.apology_status is ApologyStatus.NOT_NEEDED

    # A morning dossier that sits at the specialist is warned at 13:48.
    clock.set(at(2025, 7, 8, 8, 0))
    code = engine.receive("2.000815", applicant={"name": "Lâm Văn Tâm"},
                          components=["ban-chinh"], officer="tn.an").code
    for step in ("Task_CheckDossier", "Task_Digitize", "Task_Transfer"):
        clock.advance(minutes=3)
        engine.complete(task(engine, code, step).id, "tn.an",
                        {"outcome": "accept"} if step == "Task_CheckDossier" else {})
    assert engine.dossier(code).appointment_at == at(2025, 7, 8, 17, 0)
    clock.set(at(2025, 7, 8, 13, 47))
    assert engine.fire_due_timers() == []
    clock.set(at(2025, 7, 8, 13, 48))
    assert [f.step for f in engine.fire_due_timers()] == ["Timer_Apology"]
    prompt = task(engine, code, "Task_ExplainDelay")
    assert (prompt.agency, prompt.role, prompt.due_at) == \
        ("AN-BINH-UB", "leader", at(2025, 7, 8, 14, 36))    # 10% of a working day
    clock.set(prompt.due_at)
    engine.complete(prompt.id, "hm.hai", {"will_be_late": "yes", "delay_reason": "Mất điện",
                                          "new_appointment": "2025-07-09"})
    letter = task(engine, code, "Task_IssueApology")
    assert letter.due_at == at(2025, 7, 8, 15, 0)            # 17:00 minus two working hours
    engine.complete(letter.id, "tn.an")
    assert engine.sla(code).apologies[0].in_time


@pytest.mark.parametrize("data, error, words", [
    ({"will_be_late": "yes", "delay_reason": "Chậm", "new_appointment": "2025-07-09"},
     RuleViolation, "must be later than the current one"),
    ({"will_be_late": "yes", "delay_reason": "Chậm", "new_appointment": "tuần sau"},
     InvalidInput, "is not a date"),
    ({"will_be_late": "yes", "delay_reason": "Chậm", "new_appointment": "2025-07-12"},
     InvalidInput, "not a working day"),
    ({"will_be_late": "yes", "new_appointment": "2025-07-15"}, InvalidInput,
     "needs field 'delay_reason'"),
    ({"will_be_late": "maybe"}, InvalidInput, "allowed: yes, no"),
    ({"delay_reason": "Chậm", "new_appointment": "2025-07-15"}, InvalidInput,
     "needs field 'will_be_late'"),
])
def test_bad_answers_are_refused_and_nothing_is_stored(make_engine, sqlite_url, data, error,
                                                       words):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code = warned(engine, clock)
    before = engine.history(code)
    with pytest.raises(error, match=words):
        engine.complete(task(engine, code, "Task_ExplainDelay").id, "pq.cuong", data)
    assert engine.history(code) == before
    assert engine.dossier(code).appointment_at == DUE


def copied_library(tmp_path: Path) -> Path:
    library = tmp_path / "lib"
    shutil.copytree(ROOT / "processes", library)
    return library


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_who_explains_is_a_regime_setting_a_procedure_may_override(make_engine, sqlite_url,
                                                                   tmp_path):
    library = copied_library(tmp_path)

    def specialist_explains(catalog: dict) -> None:
        for procedure in catalog["procedures"]:
            if procedure["code"] == "2.000575":
                procedure["regime_overrides"] = {"*": {"apology_role": "specialist"}}

    edit_json(library / "catalog.json", specialist_explains)
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock, library=library)
    code = warned(engine, clock)
    prompt = task(engine, code, "Task_ExplainDelay")
    assert prompt.role == "specialist"
    assert [t.step for t in engine.inbox("lv.binh")] == ["Task_Examine", "Task_ExplainDelay"]
    with pytest.raises(PermissionDenied):
        engine.complete(prompt.id, "pq.cuong", {"will_be_late": "no"})


def test_a_regime_without_reappointments_raises_no_warning(make_engine, sqlite_url, tmp_path):
    library = copied_library(tmp_path)

    def none_allowed(regimes: dict) -> None:
        for regime in regimes["regimes"]:
            regime["max_reappointments"] = 0

    edit_json(library / "regimes.json", none_allowed)
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock, library=library)
    code = transferred(engine, clock)
    clock.set(at(2025, 7, 10, 9, 0))
    assert engine.fire_due_timers() == []
    with pytest.raises(RuleViolation, match="ND118-2025 allows 0 re-appointment"):
        engine.start_apology(code, "lv.binh")
    assert engine.dossier(code).appointment_at == DUE
    assert engine.sla(code).apology_status is ApologyStatus.MISSING


def ask_supplement(engine: Engine, clock: ManualClock, code: str, when: datetime):
    clock.set(when)
    return engine.complete(task(engine, code, "Task_Examine").id, "lv.binh",
                           {"verdict": "supplement", "missing": ["bien-ban-hop"]})


def test_supplement_during_resolution_pauses_the_clock_and_moves_the_warning(
        make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = transferred(engine, clock)
    dossier = ask_supplement(engine, clock, code, at(2025, 7, 8, 9, 0))
    assert dossier.status is DossierStatus.SUPPLEMENT_REQUESTED
    assert dossier.current_steps == ("Task_ReceiveResolutionSupplement",)
    (asked,) = kinds(engine, code, EventKind.SUPPLEMENT_REQUESTED)
    assert asked.agency == "AN-BINH-KT" and asked.detail["clock"] == "pause"

    clock.set(at(2025, 7, 9, 10, 0))                       # past the old warning
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

    clock.set(at(2025, 7, 11, 14, 3))   # the new warning: 3 h 36 min before Mon 08:10
    assert engine.fire_due_timers() == []
    clock.set(at(2025, 7, 11, 14, 4))
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
    Officer("cat.hung", "Đỗ Mạnh Hùng", {"CA-TINH": ["leader"]}),
]


def test_in_inter_agency_work_the_agency_that_caused_the_delay_apologises(make_engine,
                                                                          database):
    """A model written before the prompt existed (its explanation step has no
    ``will_be_late`` question, its timer is due at ``apology_due``) still runs: the head
    of the late agency explains."""
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
    assert (explain.agency, explain.role) == ("CA-TINH", "leader")
    assert [t.step for t in engine.inbox("cat.hung")] == ["Task_ExplainDelay"]
    engine.complete(explain.id, "cat.hung", {"delay_reason": "Chờ tra cứu dữ liệu lý lịch",
                                             "new_appointment": "2025-07-18"})
    engine.complete(task(engine, code, "Task_IssueApology").id, "ttpv.lan")
    (apology,) = engine.sla(code).apologies
    assert apology.responsible_agency == "CA-TINH"
    assert apology.new_appointment == at(2025, 7, 18, 17, 0)


def test_the_late_path_is_judged_on_the_paused_clock(make_engine, database):
    """A supplement requested while the prompt is open stops the service-level clock:
    past the old appointment in calendar time, the dossier is not late yet, so `no` is
    still an answer, and a letter issued during the pause is in time."""
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = warned(engine, clock)
    ask_supplement(engine, clock, code, at(2025, 7, 8, 15, 0))
    clock.set(at(2025, 7, 11, 9, 0))                      # past the appointment, paused
    engine.complete(task(engine, code, "Task_ExplainDelay").id, "pq.cuong",
                    {"will_be_late": "no"})
    (assessed,) = kinds(engine, code, EventKind.DELAY_ASSESSED)
    assert assessed.detail["overdue"] is False
    assert engine.sla(code).apology_status is ApologyStatus.NOT_NEEDED


def test_a_letter_issued_during_a_pause_is_in_time(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code = warned(engine, clock)
    ask_supplement(engine, clock, code, at(2025, 7, 8, 15, 0))
    clock.set(at(2025, 7, 11, 9, 0))
    engine.complete(task(engine, code, "Task_ExplainDelay").id, "pq.cuong",
                    {"will_be_late": "yes", "delay_reason": "Chậm",
                     "new_appointment": "2025-07-16"})
    engine.complete(task(engine, code, "Task_IssueApology").id, "tn.an")
    (apology,) = engine.sla(code).apologies
    assert apology.in_time
    assert engine.sla(code).apology_status is ApologyStatus.IN_TIME


def test_a_proposal_moves_with_the_appointment_when_a_pause_comes_between(make_engine,
                                                                          database):
    """The head proposes Friday (a day after the appointment); a supplement then pauses
    the clock for three working days: the letter sets the proposal moved as the
    appointment moved, instead of refusing it as no longer later."""
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, database, clock)
    code = warned(engine, clock)
    engine.complete(task(engine, code, "Task_ExplainDelay").id, "pq.cuong",
                    {"will_be_late": "yes", "delay_reason": "Chờ xác minh",
                     "new_appointment": "2025-07-11"})
    ask_supplement(engine, clock, code, at(2025, 7, 8, 15, 0))
    clock.set(at(2025, 7, 11, 15, 0))                     # 3 working days later
    engine.complete(task(engine, code, "Task_ReceiveResolutionSupplement").id, "tn.an")
    assert engine.dossier(code).appointment_at == at(2025, 7, 15, 8, 10)
    dossier = engine.complete(task(engine, code, "Task_IssueApology").id, "tn.an")
    assert dossier.appointment_at == at(2025, 7, 16, 17, 0)   # Friday 17:00 + 3 wd


def test_a_new_appointment_in_the_past_is_refused(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code = warned(engine, clock)
    engine.complete(task(engine, code, "Task_ExplainDelay").id, "pq.cuong",
                    {"will_be_late": "yes", "delay_reason": "Chậm",
                     "new_appointment": "2025-07-11"})
    clock.set(at(2025, 7, 14, 9, 0))                      # the desk sat on the letter
    with pytest.raises(RuleViolation, match="has already passed"):
        engine.complete(task(engine, code, "Task_IssueApology").id, "tn.an")


def test_a_proactive_reason_counts_on_the_prompt_after_the_due_instant(make_engine,
                                                                       sqlite_url):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code = warned(engine, clock)
    engine.complete(task(engine, code, "Task_ExplainDelay").id, "pq.cuong",
                    {"will_be_late": "no"})
    clock.set(at(2025, 7, 9, 10, 0))
    dossier = engine.start_apology(code, "lv.binh", reason="Kiểm tra thực địa")
    assert "Task_ExplainLate" in dossier.current_steps      # the due-instant prompt, early
    engine.complete(task(engine, code, "Task_ExplainLate").id, "pq.cuong",
                    {"new_appointment": "2025-07-15"})
    engine.complete(task(engine, code, "Task_IssueApology").id, "tn.an")
    assert engine.sla(code).apologies[0].reason == "Kiểm tra thực địa"
