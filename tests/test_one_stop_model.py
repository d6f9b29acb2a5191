"""Every branch of the shipped ``one_stop`` model (with its called ``resolution``), driven
through the engine: reception outcomes, digitization and re-use, electronic and paper
transfer, resolution with and without verification, supplement, refusal after appraisal,
stopping, the apology path, and return at the desk, by post or online."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

import pytest

from onestop import (
    VIETNAM_TZ,
    DossierStatus,
    Engine,
    EventKind,
    ManualClock,
    Officer,
    RuleViolation,
)

from .conftest import drive, with_staff

PROCEDURE = "1.001776"  # Trợ cấp xã hội hàng tháng: process one_stop
STAFF = [
    Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}),
    Officer("dt.dung", "Đặng Thùy Dung", {"AN-BINH-UB": ["specialist"]}),
    Officer("vh.hai", "Võ Hoàng Hải", {"AN-BINH-UB": ["leader"]}),
]


@pytest.fixture
def engine(make_engine: Callable[..., Engine], sqlite_url: str) -> Engine:
    return with_staff(make_engine(sqlite_url), STAFF)


def _run(engine: Engine, code: str, answers: dict[str, list[dict[str, Any]]],
         stop_before: str | tuple[str, ...] = ()) -> list[str]:
    return drive(engine, code, answers, stop_before, STAFF)


def _receive(engine: Engine, **kwargs: Any):
    kwargs.setdefault("components", ["to-khai"])
    return engine.receive(PROCEDURE, applicant={"name": "Phan Thị Ngọc Ánh"},
                          officer="tn.an", **kwargs)


ACCEPT = {"Task_CheckDossier": [{"outcome": "accept"}],
          "Task_Examine": [{"verdict": "approve"}]}


def test_straight_path_digitizes_transfers_electronically_and_returns_at_the_desk(
        engine: Engine) -> None:
    dossier = _receive(engine)
    done = _run(engine, dossier.code, ACCEPT)
    assert done == ["Task_CheckDossier", "Task_Digitize", "Task_Examine", "Task_Approve",
                    "Task_ReturnAtDesk"]
    final = engine.dossier(dossier.code)
    assert final.status is DossierStatus.RESULT_RETURNED
    statuses = [e.detail["to"] for e in engine.history(dossier.code)
                if e.kind is EventKind.STATUS_CHANGED]
    assert statuses == [2, 4, 9, 10]


def test_components_the_state_holds_are_not_digitized_again(engine: Engine) -> None:
    dossier = _receive(engine, components=[], held=["giay-to-tuy-than"])
    done = _run(engine, dossier.code, ACCEPT)
    assert "Task_Digitize" not in done
    assert engine.dossier(dossier.code).status is DossierStatus.RESULT_RETURNED


@pytest.mark.parametrize("outcome, steps, status", [
    ("refuse", ["Task_CheckDossier", "Task_IssueRefusal"], DossierStatus.NOT_RECEIVED),
])
def test_refusal_at_reception(engine: Engine, outcome: str, steps: list[str],
                              status: DossierStatus) -> None:
    dossier = _receive(engine)
    done = _run(engine, dossier.code, {"Task_CheckDossier": [{"outcome": outcome}],
                                       "Task_IssueRefusal": [{"reason": "Không thuộc thẩm quyền"}]})
    assert done == steps and engine.dossier(dossier.code).status is status


def test_supplement_at_reception_then_accept(engine: Engine) -> None:
    dossier = _receive(engine)
    done = _run(engine, dossier.code, {
        "Task_CheckDossier": [{"outcome": "supplement"}, {"outcome": "accept"}],
        "Task_RequestSupplement": [{"missing": "Tờ khai có chữ ký"}],
        "Task_Examine": [{"verdict": "approve"}]})
    assert done[:4] == ["Task_CheckDossier", "Task_RequestSupplement",
                        "Task_ReceiveSupplement", "Task_CheckDossier"]
    assert engine.dossier(dossier.code).status is DossierStatus.RESULT_RETURNED


def test_paper_transfer_is_due_by_the_cut_off_rule(engine: Engine, clock: ManualClock
                                                   ) -> None:
    clock.set(datetime(2025, 7, 8, 15, 30, tzinfo=VIETNAM_TZ))  # a Tuesday, after 15:00
    dossier = _receive(engine)
    _run(engine, dossier.code, {"Task_CheckDossier": [{"outcome": "accept",
                                                       "transfer": "paper"}]},
         stop_before="Task_TransferPaper")
    task = engine.dossier(dossier.code).open_tasks[0]
    assert task.step == "Task_TransferPaper"
    # Accepted after the cut-off: by the end of the next working day's morning session.
    assert task.due_at == datetime(2025, 7, 9, 11, 30, tzinfo=VIETNAM_TZ)
    done = _run(engine, dossier.code, ACCEPT)
    assert done[0] == "Task_TransferPaper"


def test_verification_and_resolution_supplement_loop_back_to_examination(
        engine: Engine) -> None:
    dossier = _receive(engine)
    done = _run(engine, dossier.code, {
        "Task_CheckDossier": [{"outcome": "accept"}],
        "Task_Examine": [{"verdict": "verify"}, {"verdict": "supplement",
                                                 "missing": "Bản sao trích lục"},
                         {"verdict": "approve"}],
        "Task_Verify": [{"findings": "Đã xác minh tại nơi cư trú"}]})
    assert done == ["Task_CheckDossier", "Task_Digitize", "Task_Examine", "Task_Verify",
                    "Task_Examine", "Task_ReceiveResolutionSupplement", "Task_Examine",
                    "Task_Approve", "Task_ReturnAtDesk"]
    kinds = [e.kind for e in engine.history(dossier.code)]
    assert EventKind.SUPPLEMENT_REQUESTED in kinds


def test_refusal_after_appraisal_is_returned_as_a_result(engine: Engine) -> None:
    dossier = _receive(engine)
    done = _run(engine, dossier.code, {
        "Task_CheckDossier": [{"outcome": "accept"}],
        "Task_Examine": [{"verdict": "refuse"}],
        "Task_SignRefusal": [{"reason": "Đã có đăng ký kết hôn khác"}]})
    assert done[-2:] == ["Task_SignRefusal", "Task_ReturnAtDesk"]
    assert engine.dossier(dossier.code).status is DossierStatus.RESULT_RETURNED


def test_processing_stopped(engine: Engine) -> None:
    dossier = _receive(engine)
    done = _run(engine, dossier.code, {
        "Task_CheckDossier": [{"outcome": "accept"}],
        "Task_Examine": [{"verdict": "stop"}],
        "Task_SignStop": [{"reason": "Người yêu cầu đã chết"}]})
    assert done[-1] == "Task_SignStop"
    final = engine.dossier(dossier.code)
    assert final.finished and final.status is DossierStatus.PROCESSING_STOPPED


@pytest.mark.parametrize("mode, last", [("post", "Task_SendByPost"),
                                        ("online", "Task_Approve")])
def test_return_by_post_or_online(engine: Engine, mode: str, last: str) -> None:
    dossier = _receive(engine)
    done = _run(engine, dossier.code, {
        "Task_CheckDossier": [{"outcome": "accept", "return_mode": mode}],
        "Task_Examine": [{"verdict": "approve"}],
        "Task_SendByPost": [{"postal_code": "EMS-VN-0001"}]})
    # Online, the result goes to the applicant's e-store with no one's task.
    assert done[-1] == last
    assert engine.dossier(dossier.code).status is DossierStatus.RESULT_RETURNED


def test_late_dossier_gets_one_apology_through_the_call(engine: Engine,
                                                        clock: ManualClock) -> None:
    dossier = _receive(engine)
    _run(engine, dossier.code, {"Task_CheckDossier": [{"outcome": "accept"}]},
         stop_before="Task_Examine")
    appointment = engine.dossier(dossier.code).appointment_at
    assert appointment is not None
    clock.set(appointment - timedelta(hours=1))
    fired = engine.fire_due_timers()
    assert [f.step for f in fired] == ["Timer_Apology"] and fired[0].error is None
    steps = {t.step for t in engine.dossier(dossier.code).open_tasks}
    assert steps == {"Task_Examine", "Task_ExplainDelay"}
    explain = next(t for t in engine.dossier(dossier.code).open_tasks
                   if t.step == "Task_ExplainDelay")
    assert (explain.agency, explain.role) == ("AN-BINH-UB", "leader")
    new_day = (appointment + timedelta(days=7)).replace(hour=16, minute=0)
    engine.complete(explain.id, "vh.hai", {"will_be_late": "yes",
                                           "delay_reason": "Chờ xác minh của xã khác",
                                           "new_appointment": new_day.date().isoformat()})
    apology = next(t for t in engine.dossier(dossier.code).open_tasks
                   if t.step == "Task_IssueApology")
    after = engine.complete(apology.id, "tn.an", {})
    assert after.appointment_at > appointment
    assert engine.sla(dossier.code).apologies


def test_applicant_withdraws_during_resolution(engine: Engine) -> None:
    dossier = _receive(engine)
    _run(engine, dossier.code, {"Task_CheckDossier": [{"outcome": "accept"}]},
         stop_before="Task_Examine")
    # The applicant asks in writing at the desk; the receiving officer records it.
    after = engine.message(dossier.code, "withdrawal_requested", officer="tn.an",
                           data={"reason": "Công dân rút hồ sơ"})
    assert after.status is DossierStatus.WITHDRAWAL_REQUESTED
    assert [t.step for t in after.open_tasks] == ["Task_ConfirmWithdrawal"]
    assert engine.inbox("dt.dung") == []
    done = _run(engine, dossier.code, {})
    assert done == ["Task_ConfirmWithdrawal"] and engine.dossier(dossier.code).finished


def test_the_resolving_agency_asks_for_a_supplement_only_once(engine: Engine) -> None:
    dossier = _receive(engine)
    _run(engine, dossier.code, {"Task_CheckDossier": [{"outcome": "accept"}]},
         stop_before="Task_Examine")
    first = engine.dossier(dossier.code).open_tasks[0]
    engine.complete(first.id, "dt.dung", {"verdict": "supplement",
                                          "missing": "Giấy xác nhận khuyết tật"})
    desk = engine.dossier(dossier.code).open_tasks[0]
    assert desk.step == "Task_ReceiveResolutionSupplement"
    engine.complete(desk.id, "tn.an", {"supplemented": "yes"})
    examine = engine.dossier(dossier.code).open_tasks[0]
    assert examine.step == "Task_Examine"
    before = engine.history(dossier.code)
    with pytest.raises(RuleViolation, match="may ask once during resolution"):
        engine.complete(examine.id, "dt.dung", {"verdict": "supplement", "missing": "Ảnh"})
    # Refused as a whole: the examination is still open, nothing was logged.
    assert engine.history(dossier.code) == before
    assert engine.dossier(dossier.code).open_tasks[0].id == examine.id
