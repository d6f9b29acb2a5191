"""Who may do what, and what the data may say: messages delivered only by those entitled
to them, claims that a leader can undo, form data that is the step's form and nothing
else, text stored as NFC, inputs taken as given or refused — never silently emptied."""

from __future__ import annotations

import unicodedata
import warnings
from datetime import datetime

import pytest

from onestop import (
    VIETNAM_TZ,
    Channel,
    DossierStatus,
    Engine,
    EventKind,
    InvalidInput,
    Officer,
    OnestopWarning,
    PermissionDenied,
    UnknownOfficer,
)

from .conftest import STAFF, drive, with_staff

APPLICANT = {"name": "Lương Thị Ánh Tuyết"}
ROLELESS = Officer("kh.vo", "Khách vãng lai", {})
OTHER_DESK = Officer("lt.hoa", "Lý Thị Hoa", {"PHU-HOA-MC": ["receiving_officer"]})
UB_STAFF = [Officer("dt.dung", "Đặng Thùy Dung", {"AN-BINH-UB": ["specialist"]}),
            Officer("vh.hai", "Võ Hoàng Hải", {"AN-BINH-UB": ["leader"]})]


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


@pytest.fixture
def engine(make_engine, database) -> Engine:
    return with_staff(make_engine(database), [*STAFF, *UB_STAFF, ROLELESS, OTHER_DESK])


def in_resolution(engine: Engine, procedure: str = "1.001776") -> str:
    """A dossier of the one_stop model (1.001776) waiting at the specialist."""
    proc = engine.procedure(procedure)
    code = engine.receive(procedure, applicant=APPLICANT, officer="tn.an",
                          components=[c.code for c in proc.components if c.required]).code
    drive(engine, code, {"Task_CheckDossier": [{"outcome": "accept"}]},
          stop_before="Task_Examine", staff=[*STAFF, *UB_STAFF])
    return code


def test_a_message_is_delivered_only_by_those_entitled_to_it(engine):
    code = in_resolution(engine)
    before = engine.history(code)
    with pytest.raises(InvalidInput, match="say who delivers it"):
        engine.message(code, "withdrawal_requested")
    with pytest.raises(InvalidInput, match="say who delivers it"):
        engine.message(code, "withdrawal_requested", officer="tn.an", portal=True)
    with pytest.raises(PermissionDenied, match="kh.vo may not deliver"):
        engine.message(code, "withdrawal_requested", officer="kh.vo")
    with pytest.raises(PermissionDenied, match="lt.hoa may not deliver"):
        engine.message(code, "withdrawal_requested", officer="lt.hoa")   # another desk
    with pytest.raises(PermissionDenied, match="dt.dung may not deliver"):
        engine.message(code, "withdrawal_requested", officer="dt.dung")  # not a clerk
    with pytest.raises(UnknownOfficer):
        engine.message(code, "withdrawal_requested", officer="nobody")
    assert engine.history(code) == before                        # nothing stored
    dossier = engine.message(code, "withdrawal_requested", officer="tn.an",
                             data={"reason": "Nộp đơn rút tại quầy"})
    assert dossier.status is DossierStatus.WITHDRAWAL_REQUESTED
    (withdrawn,) = [e for e in engine.history(code) if e.kind is EventKind.MESSAGE_RECEIVED]
    assert withdrawn.actor == "tn.an"


def test_a_payment_confirmation_comes_from_the_portal_only(make_engine, sqlite_url):
    engine = with_staff(make_engine(sqlite_url))
    code = engine.receive("1.004873", applicant=APPLICANT, channel=Channel.ONLINE,
                          desk="AN-BINH-MC", components=["to-khai"]).code
    drive(engine, code, {"Task_CheckDossier": [{"outcome": "accept"}]})
    assert engine.dossier(code).status is DossierStatus.AWAITING_FINANCIAL_OBLIGATION
    with pytest.raises(PermissionDenied, match="portal only"):
        engine.message(code, "fee_paid", officer="tn.an")
    paid = engine.message(code, "fee_paid", portal=True, data={"receipt": "PAY-1"})
    assert paid.status is DossierStatus.IN_PROGRESS       # received, sent on at once
    assert [e.actor for e in engine.history(code)
            if e.kind is EventKind.MESSAGE_RECEIVED] == ["portal"]


def test_a_leader_releases_or_reassigns_a_claim_whose_holder_lost_the_role(engine):
    code = in_resolution(engine, "2.000575")
    task = engine.inbox("lv.binh")[0]
    engine.claim(task.id, "lv.binh")
    # The specialist moves to another post: the roles are withdrawn.
    engine.add_officer(Officer("lv.binh", "Lê Văn Bình", {"AN-BINH-TP": ["specialist"]}))
    with pytest.raises(PermissionDenied):
        engine.complete(task.id, "lv.binh", {"verdict": "approve"})
    with pytest.raises(PermissionDenied, match="claimed by lv.binh"):
        engine.release(task.id, "tn.an")                   # not the holder, not a leader
    engine.add_officer(Officer("nt.lan", "Nguyễn Thị Lan", {"AN-BINH-KT": ["specialist"]}))
    with pytest.raises(PermissionDenied, match="not a leader of AN-BINH-KT"):
        engine.reassign(task.id, "nt.lan", by="nt.lan")
    with pytest.raises(PermissionDenied, match="tn.an does not hold the role 'specialist'"):
        engine.reassign(task.id, "tn.an", by="pq.cuong")
    moved = engine.reassign(task.id, "nt.lan", by="pq.cuong")
    assert moved.claimed_by == "nt.lan"
    assert [t.id for t in engine.inbox("nt.lan")] == [task.id]
    (event,) = [e for e in engine.history(code) if e.kind is EventKind.REASSIGNED]
    assert (event.actor, event.detail) == ("pq.cuong", {"from": "lv.binh", "to": "nt.lan"})
    released = engine.release(task.id, "pq.cuong")         # the leader hands it back
    assert released.claimed_by is None
    (back,) = [e for e in engine.history(code) if e.kind is EventKind.RELEASED]
    assert (back.actor, back.detail) == ("pq.cuong", {"holder": "nt.lan"})
    dossier = engine.complete(task.id, "nt.lan", {"verdict": "approve"})
    assert dossier.current_steps == ("Task_Approve",)


def test_a_holder_may_hand_back_a_task_after_losing_its_role(engine):
    code = in_resolution(engine, "2.000575")
    task = engine.inbox("lv.binh")[0]
    engine.claim(task.id, "lv.binh")
    engine.add_officer(Officer("lv.binh", "Lê Văn Bình", {}))
    assert engine.release(task.id, "lv.binh").claimed_by is None
    assert engine.dossier(code).owners == ("specialist@AN-BINH-KT",)


def test_form_data_is_the_step_s_form_and_cannot_reroute_other_decisions(engine):
    code = in_resolution(engine)
    drive(engine, code, {"Task_Examine": [{"verdict": "approve"}]},
          stop_before="Task_Approve", staff=[*STAFF, *UB_STAFF])
    approve = [t for t in engine.dossier(code).open_tasks if t.step == "Task_Approve"][0]
    before = engine.history(code)
    # The desk decided how the result goes back; the leader's form cannot change it.
    with pytest.raises(InvalidInput, match="step Task_Approve has no field 'return_mode' "
                                           r"\(its fields: document_no\)"):
        engine.complete(approve.id, "vh.hai", {"return_mode": "post"})
    assert engine.history(code) == before
    engine.complete(approve.id, "vh.hai", {"document_no": "12/QĐ-UBND"})
    assert engine.dossier(code).current_steps == ("Task_ReturnAtDesk",)


def test_a_step_without_a_form_takes_no_data(engine):
    code = in_resolution(engine, "2.000575")
    drive(engine, code, {"Task_Examine": [{"verdict": "approve"}]},
          stop_before="Task_Approve")
    approve = [t for t in engine.dossier(code).open_tasks if t.step == "Task_Approve"][0]
    with pytest.raises(InvalidInput, match="its fields: none: it takes no data"):
        engine.complete(approve.id, "pq.cuong", {"verdict": "refuse"})


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_text_from_any_keyboard_is_stored_as_nfc(engine, make_engine, database):
    name, note = "Nguyễn Thị Ngọc Ánh", "Đã đối chiếu bản chính"
    assert nfd(name) != name                            # macOS / some IMEs send this
    dossier = engine.receive("2.000575", applicant={"name": nfd(name), nfd("địa_chỉ"): "Ấp"},
                             components=["giay-de-nghi"], officer="tn.an")
    assert dossier.applicant == {"name": name, "địa_chỉ": "Ấp"}
    task = engine.inbox("tn.an")[0]
    engine.complete(task.id, "tn.an", {"outcome": "accept", "note": nfd(note)})
    engine.add_officer(Officer("pt.lan", nfd("Phạm Thị Lan"), {"AN-BINH-MC": ["leader"]}))
    engine.close()
    reopened = make_engine(database)
    assert reopened.dossier(dossier.code).applicant["name"] == name
    (completed,) = [e for e in reopened.history(dossier.code)
                    if e.kind is EventKind.COMPLETED]
    assert completed.detail["note"] == note
    assert reopened.officer("pt.lan").name == "Phạm Thị Lan"


def test_lists_are_taken_as_given_or_refused_never_silently_emptied(engine):
    codes = (c for c in ["giay-de-nghi", "bien-ban-hop"])          # a generator
    dossier = engine.receive("2.000575", applicant=APPLICANT, components=codes,
                             officer="tn.an")
    assert dossier.components == ("giay-de-nghi", "bien-ban-hop")
    dossier = engine.receive("2.000575", applicant=APPLICANT,
                             components=("giay-de-nghi",), officer="tn.an")
    assert dossier.components == ("giay-de-nghi",) and dossier.missing_components == ()
    with pytest.raises(InvalidInput, match=r"write \['giay-de-nghi'\]"):
        engine.receive("2.000575", applicant=APPLICANT, components="giay-de-nghi",
                       officer="tn.an")
    with pytest.raises(InvalidInput, match="must be a list of codes"):
        engine.receive("2.000575", applicant=APPLICANT, components=42, officer="tn.an")
    with pytest.raises(InvalidInput, match="keys must be text"):
        engine.receive("2.000575", applicant={1: "Nguyễn Văn A"}, officer="tn.an")
    missing = engine.receive("2.000575", applicant=APPLICANT, officer="tn.an")
    assert missing.missing_components == ("giay-de-nghi",)


def test_officer_roles_given_as_text_are_refused_and_unused_roles_warned(engine):
    with pytest.raises(InvalidInput, match=r"not 'leader' \(write \['leader'\]\)"):
        Officer("x.y", "Xuân Yến", {"AN-BINH-KT": "leader"})
    with pytest.raises(InvalidInput, match="roles must map agency codes"):
        Officer("x.y", "Xuân Yến", ["leader"])  # type: ignore[arg-type]
    with pytest.warns(OnestopWarning, match="role 'speciallist' at AN-BINH-KT is used by no"):
        engine.add_officer(Officer("x.y", "Xuân Yến", {"AN-BINH-KT": ["speciallist"]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine.add_officer(Officer("x.y", "Xuân Yến", {"AN-BINH-KT": ["specialist"]}))


def test_the_catalogue_can_be_listed_through_the_engine(engine):
    codes = [p.code for p in engine.procedures()]
    assert codes == sorted(codes) and "2.000575" in codes and len(codes) == 12
    at_phu_hoa = {p.code for p in engine.procedures(desk="PHU-HOA-MC")}
    assert "1.004227" in at_phu_hoa                     # boundary-free
    assert {p.code for p in engine.procedures(desk="AN-BINH-KT")} == set()   # not a desk
    assert engine.procedure("2.000575").legal_time.value == 3
    desks = [a.code for a in engine.agencies(kind="desk")]
    assert desks == ["AN-BINH-MC", "PHU-HOA-MC", "TINH-TTPVHCC"]
    assert {c.code: c.must_digitize for c in engine.procedure("2.000575").components} == \
        {"giay-de-nghi": True, "bien-ban-hop": True}


def test_a_message_cannot_set_what_an_officer_decides(engine):
    code = in_resolution(engine)
    before = engine.history(code)
    with pytest.raises(InvalidInput, match="field 'verdict' is decided on an officer's form"):
        engine.message(code, "withdrawal_requested", portal=True, data={"verdict": "stop"})
    assert engine.history(code) == before
    dossier = engine.message(code, "withdrawal_requested", portal=True,
                             data={"reason": "Đã nộp ở nơi khác"})
    assert dossier.status is DossierStatus.WITHDRAWAL_REQUESTED
