"""What the service-quality indicators count, recorded through the public API: what was
digitized and re-used (and from where), payments, how the result was issued, the
applicant's rating, feedback with its own deadline; legal time per channel; listing and
searching dossiers; and the facts reports aggregate, always equal to a fold of the log."""

from __future__ import annotations

import json
import shutil
import unicodedata
from datetime import datetime
from pathlib import Path

import pytest

from onestop import (
    VIETNAM_TZ,
    Channel,
    DossierStatus,
    Engine,
    EventKind,
    InvalidInput,
    ManualClock,
    PermissionDenied,
    RuleViolation,
)
from onestop.rules import facts as facts_module
from onestop.rules.facts import fold

from .conftest import STAFF, drive

ROOT = Path(__file__).resolve().parent.parent


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


def staffed(engine: Engine) -> Engine:
    for officer in STAFF:
        engine.add_officer(officer)
    return engine


def receive(engine: Engine, name: str = "Nguyễn Thị Hoa", id_number: str = "079190001234",
            **kwargs) -> str:
    kwargs.setdefault("components", ["giay-de-nghi"])
    kwargs.setdefault("officer", "tn.an")
    return engine.receive("2.000575", applicant={"name": name, "id_number": id_number},
                          **kwargs).code


def stored_facts(engine: Engine, code: str) -> facts_module.Facts:
    with engine._store.read() as unit:
        return facts_module.stored(unit.dossier(code))


def assert_facts_follow_the_log(engine: Engine) -> None:
    """Every dossier's stored facts are exactly the fold of its event log."""
    for summary in engine.dossiers(limit=1000):
        history = engine.history(summary.code)
        calendar = engine.library.calendars.for_agency(summary.desk_agency)
        assert stored_facts(engine, summary.code) == \
            fold(history, summary.received_at, calendar), summary.code


def resolved(engine: Engine, clock: ManualClock, code: str) -> None:
    clock.advance(minutes=30)
    drive(engine, code, stop_before="Task_ReturnResult")


def test_digitization_and_reuse_are_recorded_with_their_references(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    code = receive(engine, components=["giay-de-nghi", "bien-ban-hop"])
    assert stored_facts(engine, code).flags & facts_module.NEEDS_DIGITIZATION
    clock.advance(minutes=5)
    engine.record_digitization(code, "tn.an", {"giay-de-nghi": "H12.01-GDN-000123"})
    assert not stored_facts(engine, code).flags & facts_module.DIGITIZED    # one to go
    engine.record_digitization(code, "tn.an", {"bien-ban-hop": "H12.01-BBH-000124"})
    assert stored_facts(engine, code).flags & facts_module.DIGITIZED
    (first, second) = [e for e in engine.history(code) if e.kind is EventKind.DIGITIZED]
    assert first.detail == {"documents": {"giay-de-nghi": "H12.01-GDN-000123"}}
    assert (first.actor, first.agency, first.at) == ("tn.an", "AN-BINH-MC",
                                                     at(2025, 7, 7, 8, 5))
    assert second.payload.documents == {"bien-ban-hop": "H12.01-BBH-000124"}
    assert_facts_follow_the_log(engine)


def test_held_data_says_where_it_came_from(make_engine, database):
    engine = staffed(make_engine(database))
    code = engine.receive("2.000488", applicant={"name": "Võ Thị Thu"},
                          components=["to-khai"], held={"giay-to-tuy-than": "CSDLQG-DC"},
                          officer="ttpv.lan", desk="TINH-TTPVHCC",
                          resolving_agency="SO-TU-PHAP").code
    received = engine.history(code)[0]
    assert received.payload.held == ("giay-to-tuy-than",)
    assert received.payload.sources == {"giay-to-tuy-than": "CSDLQG-DC"}
    assert stored_facts(engine, code).flags & facts_module.REUSED
    with pytest.raises(InvalidInput, match="not marked reusable"):
        engine.record_reuse(code, "ttpv.lan", {"to-khai": "CSDL-HoTich"})
    with pytest.raises(InvalidInput, match="has no component 'cmnd'"):
        engine.record_reuse(code, "ttpv.lan", {"cmnd": "CSDLQG-DC"})


def test_payments_online_and_at_the_desk(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    code = receive(engine)
    engine.record_payment(code, 100_000, online=True, portal=True, reference="PAYGOV-778899")
    (paid,) = [e for e in engine.history(code) if e.kind is EventKind.PAID]
    assert paid.detail == {"amount": 100_000, "online": True, "reference": "PAYGOV-778899"}
    assert paid.actor == "portal" and paid.agency is None
    other = receive(engine, "Lê Văn Tâm", "001085000111")
    engine.record_payment(other, 100_000, online=False, officer="tn.an")
    assert stored_facts(engine, code).flags & facts_module.PAID_ONLINE
    assert stored_facts(engine, other).flags & facts_module.PAID_AT_DESK
    assert not stored_facts(engine, other).flags & facts_module.PAID_ONLINE


def test_the_result_is_recorded_once_the_dossier_is_resolved(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    code = receive(engine)
    with pytest.raises(RuleViolation, match="not resolved yet"):
        engine.record_result(code, "tn.an", electronic=True, paper=True)
    resolved(engine, clock, code)
    with pytest.raises(InvalidInput, match="electronically, on paper, or both"):
        engine.record_result(code, "tn.an", electronic=False, paper=False)
    engine.record_result(code, "pq.cuong", electronic=True, paper=True,
                         documents=["GCN-HKD-2025-0001"])
    flags = stored_facts(engine, code).flags
    assert flags & facts_module.ELECTRONIC_RESULT and flags & facts_module.PAPER_RESULT
    (issued,) = [e for e in engine.history(code) if e.kind is EventKind.RESULT_ISSUED]
    assert issued.agency == "AN-BINH-KT"              # the leader's agency, not the desk
    assert issued.payload.documents == ("GCN-HKD-2025-0001",)


def test_an_officer_of_another_agency_cannot_record_and_nothing_is_stored(make_engine,
                                                                         database):
    engine = staffed(make_engine(database))
    code = receive(engine)
    before = engine.history(code)
    with pytest.raises(PermissionDenied, match="ttpv.lan holds no role"):
        engine.record_digitization(code, "ttpv.lan", {"giay-de-nghi": "X-1"})
    with pytest.raises(InvalidInput, match="say who records it"):
        engine.record_payment(code, 1000, online=True)
    with pytest.raises(InvalidInput, match="say who records it"):
        engine.record_payment(code, 1000, online=True, portal=True, officer="tn.an")
    for amount in (0, -5, 1.5, True, "100000", 10**13):
        with pytest.raises(InvalidInput, match="amount must be a whole number"):
            engine.record_payment(code, amount, online=False, officer="tn.an")
    with pytest.raises(InvalidInput, match="online must be True"):
        engine.record_payment(code, 1000, online="yes", officer="tn.an")
    with pytest.raises(InvalidInput, match="documents must map component codes"):
        engine.record_digitization(code, "tn.an", {})
    assert engine.history(code) == before


def test_the_applicant_rates_once_after_resolution(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    code = receive(engine)
    with pytest.raises(RuleViolation, match="still being resolved"):
        engine.record_rating(code, "satisfied")
    resolved(engine, clock, code)
    with pytest.raises(InvalidInput, match="level must be one of very_satisfied"):
        engine.record_rating(code, "ok")
    engine.record_rating(code, "very_satisfied", comment="Cán bộ hướng dẫn tận tình")
    assert stored_facts(engine, code).rating == 1
    with pytest.raises(RuleViolation, match="already been rated"):
        engine.record_rating(code, "dissatisfied")
    (rated,) = [e for e in engine.history(code) if e.kind is EventKind.RATED]
    assert rated.payload.comment == "Cán bộ hướng dẫn tận tình"


def test_feedback_is_due_in_ten_working_days_and_its_answer_is_judged(make_engine,
                                                                      database):
    clock = ManualClock(at(2025, 8, 28, 9, 0))            # Thursday before the 2/9 holiday
    engine = staffed(make_engine(database, clock=clock))
    code = receive(engine)
    text = unicodedata.normalize("NFD", "Hồ sơ bị trả lại không nêu rõ lý do")
    first = engine.record_feedback(code, text)
    # 10 working days: 28/8 09:00 -> skips the weekend and 1-2/9 (National Day).
    assert first.due_at == at(2025, 9, 15, 9, 0)
    assert (first.number, first.kind, first.answered_at) == (1, "phan_anh", None)
    assert first.text == "Hồ sơ bị trả lại không nêu rõ lý do"
    second = engine.record_feedback(code, "Đề nghị giảm giấy tờ", kind="kien_nghi")
    assert second.number == 2

    clock.set(at(2025, 9, 15, 9, 0))                       # at the due instant: on time
    answered = engine.answer_feedback(code, 1, "pq.cuong", "Đã hướng dẫn bổ sung")
    assert answered.on_time is True and answered.answered_by == "pq.cuong"
    clock.set(at(2025, 9, 15, 9, 1))
    late = engine.answer_feedback(code, 2, "tn.an", "Đã ghi nhận")
    assert late.on_time is False
    with pytest.raises(RuleViolation, match="already been answered"):
        engine.answer_feedback(code, 1, "pq.cuong", "Lần nữa")
    with pytest.raises(InvalidInput, match="has no feedback 3"):
        engine.answer_feedback(code, 3, "pq.cuong", "?")
    with pytest.raises(InvalidInput, match="kind must be one of"):
        engine.record_feedback(code, "?", kind="complaint")

    engine.record_rating(code, "satisfied", feedback=1)
    with pytest.raises(RuleViolation, match="already been rated"):
        engine.record_rating(code, "satisfied", feedback=1)
    listed = engine.feedback(code)
    assert [(f.number, f.on_time, f.rating) for f in listed] == \
        [(1, True, "satisfied"), (2, False, None)]
    assert stored_facts(engine, code).rating is None      # the dossier is not rated
    with engine._store.read() as unit:
        rows = unit.feedback(unit.dossier(code).id)
    assert [(r.number, r.due_at, r.answered_at is not None, r.rating) for r in rows] == \
        [(1, at(2025, 9, 15, 9, 0), True, 2), (2, at(2025, 9, 15, 9, 0), True, None)]


def copied_library(tmp_path: Path, change) -> Path:
    library = tmp_path / "lib"
    shutil.copytree(ROOT / "processes", library)
    path = library / "catalog.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return library


def test_an_online_dossier_may_have_a_shorter_legal_time(make_engine, sqlite_url, tmp_path):
    def shorter_online(catalog: dict) -> None:
        for procedure in catalog["procedures"]:
            if procedure["code"] == "2.000575":
                procedure["legal_time_by_channel"] = {"online": "2wd"}

    library = copied_library(tmp_path, shorter_online)
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(sqlite_url, clock=clock, library=library))
    assert engine.procedure("2.000575").legal_time_for(Channel.ONLINE).value == 2
    desk = receive(engine)
    online = receive(engine, "Lê Thị Ánh", channel=Channel.ONLINE, officer=None,
                     desk="AN-BINH-MC")
    for code in (desk, online):
        engine.complete(engine.dossier(code).open_tasks[0].id, "tn.an", {"outcome": "accept"})
    assert engine.dossier(desk).appointment_at == at(2025, 7, 10, 8, 0)      # 3wd
    assert engine.dossier(online).appointment_at == at(2025, 7, 9, 8, 0)     # 2wd
    assert engine.history(online)[0].payload.legal_time == "2wd"
    assert engine.history(desk)[0].payload.legal_time == "3wd"


def test_a_catalogue_with_a_bad_channel_legal_time_is_refused(tmp_path):
    from onestop import CatalogError, load_library

    def bad(catalog: dict) -> None:
        catalog["procedures"][0]["legal_time_by_channel"] = {"web": "2wd"}

    with pytest.raises(CatalogError, match="legal_time_by_channel.web.*unknown channel"):
        load_library(copied_library(tmp_path, bad))


def test_dossiers_are_listed_and_searched_a_page_at_a_time(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    codes = []
    for n, (name, id_number) in enumerate([("Nguyễn Thị Hoa", "079 190 001 234"),
                                           ("Lê Văn Tâm", "001085000111"),
                                           ("Trần Thị Hoa", "079190001234")]):
        clock.advance(hours=1)
        codes.append(receive(engine, name, id_number,
                             channel=Channel.ONLINE if n == 1 else Channel.IN_PERSON,
                             officer=None if n == 1 else "tn.an", desk="AN-BINH-MC"))
    resolved(engine, clock, codes[0])

    assert [d.code for d in engine.dossiers()] == codes
    first, = engine.dossiers(limit=1)
    assert [d.code for d in engine.dossiers(after=first.id)] == codes[1:]
    assert [d.code for d in engine.dossiers(newest_first=True, limit=2)] == codes[:0:-1]
    last = engine.dossiers(newest_first=True)[-1]
    assert engine.dossiers(newest_first=True, after=last.id) == []
    # The same identity number, however it was typed at the desk.
    assert [d.code for d in engine.dossiers(applicant_id="079190001234")] == \
        [codes[0], codes[2]]
    assert [d.code for d in engine.dossiers(channel=2)] == [codes[1]]
    assert [d.code for d in engine.dossiers(status=DossierStatus.RESOLVED)] == [codes[0]]
    assert [d.code for d in engine.dossiers(status=[1, 9])] == codes
    assert [d.code for d in engine.dossiers(agency="AN-BINH-KT")] == codes
    assert engine.dossiers(agency="PHU-HOA-MC") == []
    assert [d.code for d in engine.dossiers(since=at(2025, 7, 7, 10, 0),
                                            until=at(2025, 7, 7, 11, 0))] == [codes[1]]
    assert engine.dossiers(procedure="1.001193") == []
    summary = engine.dossiers()[0]
    assert (summary.applicant_name, summary.applicant_id) == ("Nguyễn Thị Hoa",
                                                              "079190001234")
    assert summary.due_at == engine.sla(codes[0]).due_at
    assert summary.resolved_at is not None and summary.finished_at is None


@pytest.mark.parametrize("kwargs, words", [
    ({"status": 11}, "status must be dossier status codes"),
    ({"status": ["x"]}, "status must be dossier status codes"),
    ({"channel": 4}, "channel 4 must be"),
    ({"since": datetime(2025, 7, 1)}, "since must be a timezone-aware"),
    ({"limit": 0}, "limit must be a whole number from 1 to 1000"),
    ({"limit": 1001}, "limit must be"),
    ({"after": -1}, "after must be a dossier id"),
    ({"applicant_id": 79190001234}, "applicant_id must be an identity number"),
    ({"applicant_id": " "}, "applicant_id must be"),
    ({"newest_first": "yes"}, "newest_first must be True or False"),
])
def test_bad_search_arguments_are_refused(make_engine, sqlite_url, kwargs, words):
    engine = make_engine(sqlite_url)
    with pytest.raises(InvalidInput, match=words):
        engine.dossiers(**kwargs)


def test_the_facts_follow_the_log_through_pauses_apologies_and_ends(make_engine, database):
    """Early, on time, late with an apology, paused and resumed, refused: whatever
    happened, the stored facts equal a fold of the dossier's log from the start."""
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    early = receive(engine, "A")
    resolved(engine, clock, early)
    apologised = receive(engine, "B")
    drive(engine, apologised, stop_before="Task_Examine")
    engine.start_apology(apologised, "lv.binh", reason="Phải xác minh")
    prompt = next(t for t in engine.dossier(apologised).open_tasks
                  if t.step == "Task_ExplainDelay")
    engine.complete(prompt.id, "pq.cuong", {"will_be_late": "yes",
                                            "new_appointment": "2025-07-14"})
    letter = next(t for t in engine.dossier(apologised).open_tasks
                  if t.step == "Task_IssueApology")
    engine.complete(letter.id, "tn.an")
    paused = receive(engine, "C")
    drive(engine, paused, stop_before="Task_Examine")
    clock.set(at(2025, 7, 8, 9, 0))
    task = next(t for t in engine.dossier(paused).open_tasks if t.step == "Task_Examine")
    engine.complete(task.id, "lv.binh", {"verdict": "supplement", "missing": ["bien-ban-hop"]})
    assert stored_facts(engine, paused).due_at == at(2025, 7, 10, 8, 30)   # 3wd from 08:30
    clock.set(at(2025, 7, 10, 9, 0))                     # two working days paused
    task = engine.dossier(paused).open_tasks[0]
    engine.complete(task.id, "tn.an", {"supplemented": ["bien-ban-hop"]})
    refused = receive(engine, "D")
    engine.complete(engine.dossier(refused).open_tasks[0].id, "tn.an",
                    {"outcome": "refuse", "note": "Không thuộc thẩm quyền"})
    clock.set(at(2025, 7, 15, 10, 0))
    for code in (apologised, paused):
        drive(engine, code, stop_before="Task_ReturnResult")

    assert stored_facts(engine, early).mark == facts_module.MARKS[facts_module.Mark.EARLY]
    late = stored_facts(engine, apologised)
    assert late.mark == 3 and late.apology == facts_module.APOLOGY_IN_TIME
    resumed = stored_facts(engine, paused)
    assert resumed.due_at == at(2025, 7, 14, 8, 30)      # moved by the two-day pause
    assert resumed.pause_work == 2000                      # two working days, in 1/1000
    assert resumed.mark == 3                               # resolved 15/7 > due 14/7
    # Mon 7/7 08:30 to Tue 15/7 10:00 is 6 working days and 1.5 of 8 hours (6187.5
    # thousandths, rounded down), less the 2 days paused.
    assert resumed.worked == 4187
    assert stored_facts(engine, refused).resolved_at is None
    assert_facts_follow_the_log(engine)
