"""The engine's public API: receive, inbox, claim, complete, hand back, query."""

from __future__ import annotations

import pytest
from onestop import (
    Channel,
    ConcurrentUpdate,
    DossierNotFound,
    DossierStatus,
    Engine,
    EventKind,
    InvalidInput,
    Officer,
    PermissionDenied,
    TaskNotFound,
    TaskNotOpen,
    TaskState,
    UnknownAgency,
    UnknownOfficer,
    UnknownProcedure,
)

from .conftest import drive, stored

APPLICANT = {"name": "Nguyễn Thị Hoa", "address": "Ấp Phú Hòa, xã An Bình, tỉnh An Giang"}


def receive(engine: Engine, **kwargs: object):
    args = {"applicant": APPLICANT, "components": ["giay-de-nghi"], "officer": "tn.an"}
    args.update(kwargs)
    return engine.receive("2.000575", **args)  # type: ignore[arg-type]


def test_receive_assigns_code_records_receipt_and_opens_the_check(engine, clock):
    dossier = receive(engine)
    assert dossier.code == "AN-BINH-MC-250707-0001"
    assert dossier.status is DossierStatus.NEWLY_REGISTERED
    assert dossier.received_by == "tn.an" and dossier.received_at == clock.now()
    assert dossier.desk_agency == "AN-BINH-MC" and dossier.resolving_agency == "AN-BINH-KT"
    assert dossier.current_steps == ("Task_CheckDossier",)
    assert dossier.owners == ("receiving_officer@AN-BINH-MC",)
    assert receive(engine).code == "AN-BINH-MC-250707-0002"
    clock.advance(days=1)
    assert receive(engine).code == "AN-BINH-MC-250708-0001"
    first = engine.history(dossier.code)[0]
    assert (first.kind, first.actor, first.agency, first.at) == \
        (EventKind.RECEIVED, "tn.an", "AN-BINH-MC", dossier.received_at)


def test_full_lifecycle_sets_national_statuses_in_order(engine, clock):
    code = receive(engine).code
    drive(engine, code)
    dossier = engine.dossier(code)
    assert dossier.status is DossierStatus.RESULT_RETURNED and dossier.finished
    changes = [e.detail["to"] for e in engine.history(code) if e.kind is EventKind.STATUS_CHANGED]
    assert changes == [2, 4, 9, 10]


def test_event_log_records_every_handover_with_actor_agency_and_instant(engine, clock):
    code = receive(engine).code
    check = engine.inbox("tn.an")[0]
    clock.advance(minutes=20)
    engine.claim(check.id, "tn.an")
    clock.advance(minutes=5)
    engine.complete(check.id, "tn.an", {"outcome": "accept", "note": "Đủ thành phần"})
    log = engine.history(code)
    kinds = [e.kind for e in log]
    assert kinds == [EventKind.RECEIVED, EventKind.TASK_READY, EventKind.CLAIMED,
                     EventKind.COMPLETED, EventKind.STATUS_CHANGED, EventKind.TASK_READY,
                     EventKind.HANDED_OVER]
    claimed, completed, handover = log[2], log[3], log[6]
    assert claimed.at.strftime("%H:%M") == "08:20" and claimed.actor == "tn.an"
    assert completed.at.strftime("%H:%M") == "08:25"
    assert completed.detail == {"outcome": "accept", "note": "Đủ thành phần"}
    assert (handover.step, handover.actor, handover.agency) == \
        ("Task_CheckDossier", "tn.an", "AN-BINH-MC")
    assert handover.detail == {"to_step": "Task_Digitize", "to_agency": "AN-BINH-MC",
                               "to_role": "receiving_officer"}


def test_inbox_shows_only_steps_of_the_officers_roles_in_their_agencies(engine):
    code = receive(engine).code
    drive(engine, code, stop_before="Task_Examine")
    assert [t.step for t in engine.inbox("lv.binh")] == ["Task_Examine"]
    assert engine.inbox("pq.cuong") == []          # leader: not their step yet
    assert engine.inbox("dt.dung") == []           # specialist, but of another agency
    assert engine.inbox("tn.an") == []


def test_claimed_task_leaves_other_inboxes_and_can_be_handed_back(engine):
    engine.add_officer(Officer("vt.mai", "Võ Thị Mai", {"AN-BINH-MC": ["receiving_officer"]}))
    receive(engine)
    task = engine.inbox("tn.an")[0]
    claimed = engine.claim(task.id, "tn.an")
    assert claimed.state is TaskState.CLAIMED and claimed.claimed_by == "tn.an"
    assert engine.inbox("vt.mai") == []
    assert [t.id for t in engine.inbox("tn.an")] == [task.id]
    with pytest.raises(PermissionDenied, match="claimed by tn.an"):
        engine.claim(task.id, "vt.mai")
    with pytest.raises(PermissionDenied, match="claimed by tn.an"):
        engine.complete(task.id, "vt.mai", {"outcome": "accept"})
    with pytest.raises(PermissionDenied, match="only its holder"):
        engine.release(task.id, "vt.mai")
    released = engine.release(task.id, "tn.an")
    assert released.state is TaskState.READY and released.claimed_by is None
    assert [t.id for t in engine.inbox("vt.mai")] == [task.id]
    kinds = [e.kind for e in engine.history(task.dossier_code)]
    assert kinds[-2:] == [EventKind.CLAIMED, EventKind.RELEASED]


def test_officer_without_the_role_is_refused_and_nothing_changes(engine, database):
    code = receive(engine).code
    task = engine.inbox("tn.an")[0]
    before = stored(engine)
    with pytest.raises(PermissionDenied) as refused:
        engine.complete(task.id, "lv.binh", {"outcome": "accept"})
    message = str(refused.value)
    assert "lv.binh" in message and "receiving_officer" in message and "AN-BINH-MC" in message
    assert code in message
    with pytest.raises(PermissionDenied):
        engine.claim(task.id, "lv.binh")
    assert stored(engine) == before
    assert engine.dossier(code).status is DossierStatus.NEWLY_REGISTERED
    assert [e.kind for e in engine.history(code)] == [EventKind.RECEIVED, EventKind.TASK_READY]


def test_same_role_in_another_agency_is_not_enough(engine):
    engine.add_officer(Officer("tinh.cv", "Cao Văn Tình", {"SO-TU-PHAP": ["specialist"]}))
    code = receive(engine).code
    drive(engine, code, stop_before="Task_Examine")
    task = engine.dossier(code).open_tasks[0]
    with pytest.raises(PermissionDenied, match="AN-BINH-KT"):
        engine.complete(task.id, "tinh.cv")


def test_form_fields_are_required_and_checked_against_choices(engine, database):
    receive(engine)
    task = engine.inbox("tn.an")[0]
    assert [(f.name, f.required, f.choices) for f in task.form] == [
        ("outcome", True, ("accept", "supplement", "refuse")), ("note", False, ())]
    before = stored(engine)
    with pytest.raises(InvalidInput, match="needs field 'outcome'"):
        engine.complete(task.id, "tn.an", {})
    with pytest.raises(InvalidInput, match="allowed: accept, supplement, refuse"):
        engine.complete(task.id, "tn.an", {"outcome": "maybe"})
    with pytest.raises(InvalidInput, match="set by the engine"):
        engine.complete(task.id, "tn.an", {"outcome": "accept", "procedure": "1.000000"})
    with pytest.raises(InvalidInput, match="cannot be stored"):
        engine.complete(task.id, "tn.an", {"outcome": "accept", "when": object()})
    assert stored(engine) == before


def test_supplement_request_loops_back_to_the_check(engine):
    code = receive(engine).code
    drive(engine, code, {"Task_CheckDossier": [{"outcome": "supplement"}],
                         "Task_RequestSupplement": [{"missing": ["bien-ban-hop"]}]},
          stop_before="Task_ReceiveSupplement")
    dossier = engine.dossier(code)
    assert dossier.current_steps == ("Task_ReceiveSupplement",)
    assert dossier.status is DossierStatus.SUPPLEMENT_REQUESTED
    drive(engine, code, {"Task_ReceiveSupplement": [{}],
                         "Task_CheckDossier": [{"outcome": "accept"}]})
    assert engine.dossier(code).status is DossierStatus.RESULT_RETURNED
    checks = [e for e in engine.history(code)
              if e.kind is EventKind.COMPLETED and e.step == "Task_CheckDossier"]
    assert [c.detail["outcome"] for c in checks] == ["supplement", "accept"]


def test_refusal_ends_as_not_received(engine):
    code = receive(engine).code
    drive(engine, code, {"Task_CheckDossier": [{"outcome": "refuse"}],
                         "Task_IssueRefusal": [{"reason": "Hồ sơ không thuộc thẩm quyền"}]})
    dossier = engine.dossier(code)
    assert dossier.status is DossierStatus.NOT_RECEIVED and dossier.finished
    assert dossier.open_tasks == ()


def test_online_dossier_arrives_without_officer_but_needs_a_desk(engine):
    dossier = engine.receive("2.000575", applicant=APPLICANT, components=["giay-de-nghi"],
                             channel=Channel.ONLINE, desk="AN-BINH-MC")
    assert dossier.received_by == "portal" and dossier.channel is Channel.ONLINE
    with pytest.raises(InvalidInput, match="desk= is required"):
        engine.receive("2.000575", applicant=APPLICANT, channel=Channel.ONLINE)
    with pytest.raises(InvalidInput, match="received by an officer"):
        engine.receive("2.000575", applicant=APPLICANT, desk="AN-BINH-MC")


def test_bad_receive_input_is_refused_with_what_is_wrong(engine):
    with pytest.raises(UnknownProcedure, match="9.999999"):
        engine.receive("9.999999", applicant=APPLICANT, officer="tn.an")
    with pytest.raises(InvalidInput, match="no component 'ban-ve'.*giay-de-nghi"):
        receive(engine, components=["giay-de-nghi", "ban-ve"])
    with pytest.raises(UnknownOfficer, match="nobody"):
        receive(engine, officer="nobody")
    with pytest.raises(PermissionDenied, match="lv.binh"):
        receive(engine, officer="lv.binh", desk="AN-BINH-MC")
    with pytest.raises(UnknownAgency, match="NO-SUCH-DESK"):
        engine.receive("2.000575", applicant=APPLICANT, channel=Channel.ONLINE,
                       desk="NO-SUCH-DESK")
    with pytest.raises(InvalidInput, match="channel"):
        receive(engine, channel=7)
    with pytest.raises(InvalidInput, match="applicant.photo cannot be stored"):
        receive(engine, applicant={"photo": b"\x89PNG"})
    # None of the refused calls left a dossier behind.
    assert receive(engine).code.endswith("-0001")


def test_wrong_dossier_codes_and_task_ids_get_clear_errors(engine):
    with pytest.raises(DossierNotFound, match="not a dossier code"):
        engine.dossier("hello")
    with pytest.raises(DossierNotFound, match="AN-BINH-MC-250707-0042"):
        engine.history("AN-BINH-MC-250707-0042")
    with pytest.raises(TaskNotFound):
        engine.complete("00000000-0000-0000-0000-000000000000", "tn.an")
    code = receive(engine).code
    task = engine.inbox("tn.an")[0]
    engine.complete(task.id, "tn.an", {"outcome": "accept"})
    with pytest.raises(TaskNotOpen, match="not open: it was completed") as closed:
        engine.complete(task.id, "tn.an", {"outcome": "accept"})
    assert isinstance(closed.value, TaskNotFound) and isinstance(closed.value, ConcurrentUpdate)
    with pytest.raises(TaskNotFound, match="no open task"):
        engine.task(task.id)
    assert engine.history(code)[2].kind is EventKind.COMPLETED


def test_vietnamese_text_round_trips_exactly(engine, make_engine, database):
    applicant = {"name": "Nguyễn Thị Ngọc Ánh", "address": "Ấp Đông Hưng, xã Đắk Ơ",
                 "note": "Hộ kinh doanh “Phở Hà Nội” – đường Lê Lợi"}
    code = receive(engine, applicant=applicant).code
    task = engine.inbox("tn.an")[0]
    engine.complete(task.id, "tn.an", {"outcome": "accept", "note": "Đã đối chiếu bản chính ✓"})
    engine.close()
    reopened = make_engine(database)
    assert reopened.dossier(code).applicant == applicant
    completed = [e for e in reopened.history(code) if e.kind is EventKind.COMPLETED][0]
    assert completed.detail["note"] == "Đã đối chiếu bản chính ✓"
    assert reopened.officer("tn.an").name == "Trần Ngọc An"
    assert reopened.dossier(code).procedure_name == "Đăng ký thành lập hộ kinh doanh"


def test_database_that_cannot_be_opened_is_a_clear_error(tmp_path, clock):
    from onestop import StoreError
    with pytest.raises(StoreError, match="no-such-folder.*does not exist"):
        Engine(str(tmp_path / "no-such-folder" / "x.db"), clock=clock)
    with pytest.raises(StoreError, match="cannot open database"):
        Engine("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", clock=clock)
