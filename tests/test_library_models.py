"""Every branch of the shipped ``full_online``, ``interagency`` and ``interlevel`` models,
driven through the engine on the shipped catalogue: the online fee payment before the
receipt (and the dossier left unpaid), parallel consulted agencies each within its own
share of the legal time, a commune desk calling the province, and a boundary-free
procedure received at any commune's desk and resolved by the competent agency."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from onestop import (
    VIETNAM_TZ,
    Channel,
    DossierStatus,
    Duration,
    Engine,
    EventKind,
    ManualClock,
    Officer,
    load_library,
)

from .conftest import assert_well_drawn, drive, with_staff

ROOT = Path(__file__).resolve().parent.parent

STAFF = [
    Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}),
    Officer("lt.hoa", "Lý Thị Hoa", {"PHU-HOA-MC": ["receiving_officer"]}),
    Officer("ttpv.lan", "Ngô Thị Lan", {"TINH-TTPVHCC": ["receiving_officer"]}),
    Officer("dt.dung", "Đặng Thùy Dung", {"AN-BINH-TP": ["specialist"]}),
    Officer("vh.hai", "Võ Hoàng Hải", {"AN-BINH-TP": ["leader"]}),
    Officer("stp.minh", "Hoàng Văn Minh", {"SO-TU-PHAP": ["specialist"]}),
    Officer("stp.thu", "Nguyễn Thị Thu", {"SO-TU-PHAP": ["leader"]}),
    Officer("cat.son", "Quách Văn Sơn", {"CA-TINH": ["specialist"]}),
    Officer("cat.hung", "Đỗ Mạnh Hùng", {"CA-TINH": ["leader"]}),
    Officer("tha.vy", "Đoàn Tường Vy", {"THA-TINH": ["specialist"]}),
    Officer("vp.khoa", "Châu Minh Khoa", {"VPDKDD-CN-AN-BINH": ["specialist"]}),
    Officer("vp.ngan", "Tạ Kim Ngân", {"VPDKDD-CN-AN-BINH": ["leader"]}),
]
APPLICANT = {"name": "Lương Thị Ánh Tuyết", "address": "Ấp Phú Hòa, xã An Bình"}


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


@pytest.fixture
def engine(make_engine: Callable[..., Engine], sqlite_url: str) -> Engine:
    return with_staff(make_engine(sqlite_url), STAFF)


def run(engine: Engine, code: str, answers: dict[str, list[dict[str, Any]]] | None = None,
        stop_before: str | tuple[str, ...] = ()) -> list[str]:
    return drive(engine, code, answers, stop_before, STAFF)


def statuses(engine: Engine, code: str) -> list[int]:
    return [e.detail["to"] for e in engine.history(code) if e.kind is EventKind.STATUS_CHANGED]


def ready(engine: Engine, code: str) -> list[tuple[str, str]]:
    """(step, agency) of every task as it became ready, in order."""
    return [(e.step, e.agency) for e in engine.history(code) if e.kind is EventKind.TASK_READY]


def open_task(engine: Engine, code: str, step: str):
    return next(t for t in engine.dossier(code).open_tasks if t.step == step)


# -- full_online: Cấp Giấy xác nhận tình trạng hôn nhân (1.004873), fee 3,000 VND ------------
MARITAL = "1.004873"


def receive_online(engine: Engine) -> str:
    return engine.receive(MARITAL, applicant=APPLICANT, channel=Channel.ONLINE,
                          desk="AN-BINH-MC", components=["to-khai", "giay-to-tuy-than"]).code


def test_online_dossier_waits_for_the_fee_and_is_received_when_paid(
        engine: Engine, clock: ManualClock) -> None:
    code = receive_online(engine)
    run(engine, code)
    waiting = engine.dossier(code)
    assert waiting.status is DossierStatus.AWAITING_FINANCIAL_OBLIGATION
    assert waiting.open_tasks == () and waiting.appointment_at is None
    clock.set(at(2025, 7, 8, 9, 30))                    # paid the next morning
    paid = engine.message(code, "fee_paid", data={"receipt": "PAYGOV-2025-000123"},
                          portal=True)
    # The receipt and appointment count from the payment: 3 working days later.
    assert paid.status is DossierStatus.IN_PROGRESS
    assert paid.appointment_at == at(2025, 7, 11, 9, 30)
    # Electronic documents: nothing to digitize; transferred electronically at once.
    assert [t.step for t in paid.open_tasks] == ["Task_Examine"]
    done = run(engine, code)
    assert done == ["Task_Examine", "Task_Approve"]        # returned online, no one's task
    final = engine.dossier(code)
    assert final.finished and final.status is DossierStatus.RESULT_RETURNED
    assert statuses(engine, code) == [6, 2, 4, 9, 10]


def test_an_unpaid_online_dossier_is_not_received_after_five_working_days(
        engine: Engine, clock: ManualClock) -> None:
    code = receive_online(engine)
    run(engine, code)                                   # accepted at Mon 7 July, 08:00
    deadline = at(2025, 7, 14, 8, 0)                    # five working days later
    clock.set(deadline - timedelta(minutes=1))
    assert engine.fire_due_timers() == []
    clock.set(deadline)
    assert [f.step for f in engine.fire_due_timers()] == ["Timer_PaymentWindow"]
    final = engine.dossier(code)
    assert final.finished and final.status is DossierStatus.NOT_RECEIVED
    assert final.appointment_at is None
    with pytest.raises(Exception, match="fee_paid"):
        engine.message(code, "fee_paid", portal=True)


def test_a_paid_dossier_drops_the_payment_window(engine: Engine, clock: ManualClock) -> None:
    code = receive_online(engine)
    run(engine, code)
    engine.message(code, "fee_paid", portal=True)
    clock.advance(days=10)
    assert "Timer_PaymentWindow" not in [f.step for f in engine.fire_due_timers()]
    assert engine.dossier(code).status is DossierStatus.IN_PROGRESS


def test_in_person_dossier_pays_at_the_desk_is_digitized_and_may_take_the_result_there(
        engine: Engine) -> None:
    code = engine.receive(MARITAL, applicant=APPLICANT, officer="tn.an",
                          components=["to-khai", "giay-to-tuy-than"]).code
    done = run(engine, code, {"Task_CheckDossier": [{"outcome": "accept",
                                                     "return_mode": "desk"}]})
    assert done == ["Task_CheckDossier", "Task_Digitize", "Task_Examine", "Task_Approve",
                    "Task_ReturnAtDesk"]
    assert statuses(engine, code) == [2, 4, 9, 10]


def test_online_supplement_then_payment(engine: Engine) -> None:
    code = receive_online(engine)
    run(engine, code, {"Task_CheckDossier": [{"outcome": "supplement"}, {"outcome": "accept"}],
                       "Task_RequestSupplement": [{"missing": "Tờ khai có chữ ký số"}]})
    assert engine.dossier(code).status is DossierStatus.AWAITING_FINANCIAL_OBLIGATION
    engine.message(code, "fee_paid", portal=True)
    run(engine, code, {"Task_Examine": [{"verdict": "refuse"}],
                       "Task_SignRefusal": [{"reason": "Đang có đăng ký kết hôn"}]})
    assert engine.dossier(code).status is DossierStatus.RESULT_RETURNED


# -- interagency: Cấp Phiếu lý lịch tư pháp (2.000488), 10 working days --------------------
RECORD = "2.000488"
CONSULTS = ("Task_Consult_police", "Task_Consult_enforcement")


def test_consulted_agencies_work_in_parallel_each_within_its_own_share(
        engine: Engine, clock: ManualClock) -> None:
    code = engine.receive(RECORD, applicant=APPLICANT, officer="ttpv.lan",
                          components=["to-khai"]).code
    run(engine, code, stop_before=CONSULTS)
    dossier = engine.dossier(code)
    consult = {t.step: t for t in dossier.open_tasks}
    assert set(consult) == {"Task_Consult_police", "Task_Consult_enforcement"}
    assert consult["Task_Consult_police"].agency == "CA-TINH"
    assert consult["Task_Consult_enforcement"].agency == "THA-TINH"
    # 30% and 20% of the 10 working days: 3 and 2 working days from the handover.
    calendar = engine.library.calendars.for_agency("CA-TINH")
    handed = clock.now()
    assert consult["Task_Consult_police"].due_at == calendar.add(handed, Duration.parse("3wd"))
    assert consult["Task_Consult_enforcement"].due_at == calendar.add(handed,
                                                                      Duration.parse("2wd"))
    assert engine.inbox("stp.minh") == []
    engine.complete(consult["Task_Consult_enforcement"].id, "tha.vy",
                    {"opinion": "Không có thông tin thi hành án"})
    # The specialist waits for the police as well.
    assert [t.step for t in engine.dossier(code).open_tasks] == ["Task_Consult_police"]
    engine.complete(consult["Task_Consult_police"].id, "cat.son",
                    {"opinion": "Không có án tích"})
    done = run(engine, code)
    assert done == ["Task_Examine", "Task_Approve", "Task_ReturnAtDesk"]
    assert engine.dossier(code).status is DossierStatus.RESULT_RETURNED


def test_the_late_consulted_agency_explains_and_the_desk_apologises(
        engine: Engine, clock: ManualClock) -> None:
    code = engine.receive(RECORD, applicant=APPLICANT, officer="ttpv.lan",
                          components=["to-khai"]).code
    run(engine, code, stop_before=CONSULTS)
    engine.complete(open_task(engine, code, "Task_Consult_enforcement").id, "tha.vy",
                    {"opinion": "Không có thông tin"})
    appointment = engine.dossier(code).appointment_at
    clock.set(appointment - timedelta(hours=4))          # the police still hold it
    assert [f.step for f in engine.fire_due_timers()] == ["Timer_Apology"]
    explain = open_task(engine, code, "Task_ExplainDelay")
    assert (explain.agency, explain.role) == ("CA-TINH", "leader")   # the police's head
    engine.complete(explain.id, "cat.hung", {"will_be_late": "yes",
                                             "delay_reason": "Chờ tra cứu dữ liệu lý lịch",
                                             "new_appointment": "2025-07-25"})
    engine.complete(open_task(engine, code, "Task_IssueApology").id, "ttpv.lan")
    (apology,) = engine.sla(code).apologies
    assert apology.responsible_agency == "CA-TINH"
    assert engine.dossier(code).appointment_at == at(2025, 7, 25, 17, 0)


# -- interlevel: Đăng ký biến động đất đai (1.004227), commune desk → province -------------
LAND = "1.004227"
LAND_PAPERS = ["don-dang-ky-bien-dong", "hop-dong", "giay-chung-nhan", "to-khai-thue"]


def test_commune_desk_receives_the_province_resolves_and_the_commune_returns(
        engine: Engine) -> None:
    code = engine.receive(LAND, applicant=APPLICANT, officer="tn.an",
                          components=LAND_PAPERS).code
    done = run(engine, code)
    assert done == ["Task_CheckDossier", "Task_Digitize", "Task_TakeOver", "Task_Examine",
                    "Task_Approve", "Task_SendBack", "Task_ReturnAtDesk"]
    assert ready(engine, code) == [
        ("Task_CheckDossier", "AN-BINH-MC"), ("Task_Digitize", "AN-BINH-MC"),
        ("Task_TakeOver", "TINH-TTPVHCC"), ("Task_Examine", "VPDKDD-CN-AN-BINH"),
        ("Task_Approve", "VPDKDD-CN-AN-BINH"), ("Task_SendBack", "TINH-TTPVHCC"),
        ("Task_ReturnAtDesk", "AN-BINH-MC")]
    assert statuses(engine, code) == [2, 4, 9, 10]


def test_boundary_free_any_commune_desk_receives_and_keeps_the_applicant_side(
        engine: Engine) -> None:
    # Phú Hòa's desk receives a dossier about land the An Bình office resolves.
    dossier = engine.receive(LAND, applicant=APPLICANT, officer="lt.hoa",
                             components=LAND_PAPERS)
    assert dossier.code.startswith("PHU-HOA-MC-")
    assert dossier.resolving_agency == "VPDKDD-CN-AN-BINH"
    run(engine, dossier.code, {
        "Task_CheckDossier": [{"outcome": "accept"}],
        "Task_Examine": [{"verdict": "supplement", "missing": "Bản đồ thửa đất"},
                         {"verdict": "approve"}]})
    agencies = dict(ready(engine, dossier.code))
    # The applicant deals with the desk that received the dossier, the supplement too.
    assert agencies["Task_CheckDossier"] == agencies["Task_ReturnAtDesk"] == "PHU-HOA-MC"
    assert agencies["Task_ReceiveResolutionSupplement"] == "PHU-HOA-MC"
    assert agencies["Task_Examine"] == "VPDKDD-CN-AN-BINH"
    assert engine.dossier(dossier.code).status is DossierStatus.RESULT_RETURNED


def test_processing_stopped_at_the_province_ends_at_the_commune(engine: Engine) -> None:
    code = engine.receive(LAND, applicant=APPLICANT, officer="tn.an",
                          components=LAND_PAPERS).code
    done = run(engine, code, {"Task_CheckDossier": [{"outcome": "accept"}],
                              "Task_Examine": [{"verdict": "stop"}],
                              "Task_SignStop": [{"reason": "Đất đang có tranh chấp"}]})
    assert done[-2:] == ["Task_SignStop", "Task_SendBack"]
    final = engine.dossier(code)
    assert final.finished and final.status is DossierStatus.PROCESSING_STOPPED


def test_withdrawal_cancels_the_work_at_both_levels(engine: Engine) -> None:
    code = engine.receive(LAND, applicant=APPLICANT, officer="tn.an",
                          components=LAND_PAPERS).code
    run(engine, code, stop_before="Task_Examine")
    after = engine.message(code, "withdrawal_requested", portal=True)
    assert after.status is DossierStatus.WITHDRAWAL_REQUESTED
    assert [(t.step, t.agency) for t in after.open_tasks] == [("Task_ConfirmWithdrawal",
                                                               "AN-BINH-MC")]
    assert engine.inbox("vp.khoa") == []
    assert run(engine, code) == ["Task_ConfirmWithdrawal"]
    assert engine.dossier(code).finished


def test_late_at_the_province_the_commune_desk_issues_the_apology(
        engine: Engine, clock: ManualClock) -> None:
    code = engine.receive(LAND, applicant=APPLICANT, officer="tn.an",
                          components=LAND_PAPERS).code
    run(engine, code, stop_before="Task_Examine")
    appointment = engine.dossier(code).appointment_at
    clock.set(appointment - timedelta(hours=6))
    assert [f.step for f in engine.fire_due_timers()] == ["Timer_Apology"]
    explain = open_task(engine, code, "Task_ExplainDelay")
    assert (explain.agency, explain.role) == ("VPDKDD-CN-AN-BINH", "leader")
    engine.complete(explain.id, "vp.ngan", {"will_be_late": "yes",
                                            "delay_reason": "Chờ đo đạc lại thửa đất",
                                            "new_appointment": "2025-07-31"})
    apology = open_task(engine, code, "Task_IssueApology")
    assert apology.agency == "AN-BINH-MC"
    engine.complete(apology.id, "tn.an")
    assert engine.sla(code).apologies[0].responsible_agency == "VPDKDD-CN-AN-BINH"


# -- the files themselves -----------------------------------------------------------------
GENERATED = ("resolution", "one_stop", "full_online", "interagency", "interlevel")


def test_generated_models_are_what_the_builder_writes_and_are_drawn_cleanly(
        tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_library",
                                                  ROOT / "examples" / "build_library.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    written = builder.build(tmp_path)
    assert [p.stem for p in written] == list(GENERATED)
    for path in written:
        shipped = (ROOT / "processes" / path.name).read_bytes()
        assert path.read_bytes() == shipped, f"processes/{path.name} is out of date"
        assert_well_drawn(shipped)


def test_every_user_step_of_the_library_has_an_allotment_or_waits_on_the_applicant(
        ) -> None:
    library = load_library()
    applicant_paced = {"Task_ReceiveSupplement", "Task_ReceiveResolutionSupplement"}
    for name in GENERATED:
        for step in library.models[name].user_steps():
            if step.id not in applicant_paced:
                assert step.allotment, (name, step.id)
