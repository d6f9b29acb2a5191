"""Messages from outside the inboxes (Engine.message): a withdrawal, a fee payment, a
consulted agency's answer, a citizen's question, caught by the models' message events in
one transaction each, refused (storing nothing) when the dossier does not wait for them."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from onestop import (
    VIETNAM_TZ,
    ConcurrentUpdate,
    DossierNotFound,
    DossierStatus,
    Engine,
    EventKind,
    InvalidInput,
    ManualClock,
    Officer,
    ProcessError,
    RuleViolation,
    UnknownOfficer,
)

DATA = Path(__file__).parent / "data" / "messages"
CLERK = Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]})
SPECIALIST = Officer("lv.binh", "Lê Văn Bình", {"AN-BINH-UB": ["specialist"]})
REASON = "Công dân rút hồ sơ để bổ sung giấy tờ"

WITHDRAWABLE, FEE_PAYING, PAY_OR_EXPIRE = "9.100001", "9.100002", "9.100003"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


def open_engine(make_engine, database: str, clock: ManualClock) -> Engine:
    engine = make_engine(database, library=DATA, clock=clock)
    engine.add_officer(CLERK)
    engine.add_officer(SPECIALIST)
    return engine


def receive(engine: Engine, procedure: str = WITHDRAWABLE, name: str = "Nguyễn Thị Mai") -> str:
    return engine.receive(procedure, applicant={"name": name}, officer="tn.an").code


def complete(engine: Engine, code: str, step: str, officer: str, data=None):
    task = next(t for t in engine.dossier(code).open_tasks if t.step == step)
    return engine.complete(task.id, officer, data)


def awaiting_fee(engine: Engine, procedure: str = FEE_PAYING) -> str:
    """A dossier whose fee was assessed: it now waits for the payment platform."""
    code = receive(engine, procedure)
    first = "Task_Assess" if procedure == FEE_PAYING else "Task_Notify"
    dossier = complete(engine, code, first, "tn.an")
    assert dossier.open_tasks == ()
    assert dossier.status is DossierStatus.AWAITING_FINANCIAL_OBLIGATION
    return code


def stored(engine: Engine, code: str) -> tuple:
    """What the database holds of a dossier, as the API shows it."""
    return (engine.dossier(code), engine.history(code), engine.inbox("tn.an"),
            engine.inbox("lv.binh"))


def since(engine: Engine, code: str, instant: datetime) -> list:
    return [(e.kind, e.step) for e in engine.history(code) if e.at >= instant]


def test_withdrawal_cancels_resolution_and_asks_the_desk_to_confirm(make_engine, database,
                                                                    clock):
    engine = open_engine(make_engine, database, clock)
    code = receive(engine)
    dossier = engine.dossier(code)
    assert dossier.status is DossierStatus.IN_PROGRESS
    assert dossier.current_steps == ("Task_Examine",)
    assert [t.step for t in engine.inbox("lv.binh")] == ["Task_Examine"]
    clock.advance(hours=1)

    dossier = engine.message(code, "withdrawal_requested", data={"reason": REASON}, portal=True)

    assert dossier.status is DossierStatus.WITHDRAWAL_REQUESTED
    assert dossier.current_steps == ("Task_ConfirmWithdrawal",)
    assert engine.inbox("lv.binh") == []                  # gone from the specialist's inbox
    (confirm,) = engine.inbox("tn.an")
    assert (confirm.step, confirm.name, confirm.agency) == \
        ("Task_ConfirmWithdrawal", "Xác nhận rút hồ sơ", "AN-BINH-MC")
    assert engine.dossier(code) == dossier
    assert since(engine, code, clock.now()) == [
        (EventKind.MESSAGE_RECEIVED, "Boundary_Withdraw"),
        (EventKind.STATUS_CHANGED, "Boundary_Withdraw"),
        (EventKind.TASK_CANCELLED, "Task_Examine"),
        (EventKind.TASK_READY, "Task_ConfirmWithdrawal"),
    ]
    history = engine.history(code)
    received = next(e for e in history if e.kind is EventKind.MESSAGE_RECEIVED)
    assert received.actor == "portal" and received.agency == "AN-BINH-UB"
    assert received.detail == {"message": "withdrawal_requested", "data": {"reason": REASON}}
    assert received.detail["data"]["reason"] == "Công dân rút hồ sơ để bổ sung giấy tờ"
    status = next(e for e in history if e.kind is EventKind.STATUS_CHANGED
                  and e.at == clock.now())
    assert status.detail == {"from": 4, "to": 7} and status.actor == "portal"
    cancelled = next(e for e in history if e.kind is EventKind.TASK_CANCELLED)
    assert cancelled.agency == "AN-BINH-UB"
    (examine,) = [s for s in engine.sla(code).steps if s.step == "Task_Examine"]
    assert examine.cancelled and examine.finished_at == clock.now()

    with pytest.raises(RuleViolation, match="waits for no message"):
        engine.message(code, "withdrawal_requested", data={"reason": REASON}, portal=True)

    clock.advance(minutes=10)
    done = complete(engine, code, "Task_ConfirmWithdrawal", "tn.an")
    assert done.finished and done.status is DossierStatus.WITHDRAWAL_REQUESTED
    assert engine.history(code)[-1].kind is EventKind.FINISHED
    with pytest.raises(RuleViolation, match=rf"dossier {code} has finished"):
        engine.message(code, "status_requested", portal=True)


@pytest.mark.parametrize("receipt, next_step", [("BL-000123", "Task_Issue"),
                                                ("", "Task_Recheck")])
def test_fee_paid_carries_the_receipt_to_the_next_condition(make_engine, database, clock,
                                                            receipt, next_step):
    engine = open_engine(make_engine, database, clock)
    code = awaiting_fee(engine)
    clock.advance(hours=2)

    dossier = engine.message(code, "fee_paid", data={"receipt_no": receipt}, portal=True)

    # The payment waited inside an embedded sub-process; the condition after it reads
    # the receipt number as a process variable.
    assert dossier.current_steps == (next_step,)
    assert since(engine, code, clock.now())[0] == (EventKind.MESSAGE_RECEIVED,
                                                   "Catch_FeePaid")
    history = engine.history(code)
    before = stored(engine, code)
    with pytest.raises(RuleViolation) as refused:
        engine.message(code, "fee_paid", data={"receipt_no": "BL-000124"}, portal=True)
    text = str(refused.value)
    assert code in text and "'fee_paid'" in text and "waits for no message" in text
    assert stored(engine, code) == before and len(engine.history(code)) == len(history)


def test_a_delivery_that_fails_downstream_stores_nothing(make_engine, database, clock):
    engine = open_engine(make_engine, database, clock)
    code = awaiting_fee(engine)
    before = stored(engine, code)
    with pytest.raises(ProcessError) as failed:          # no receipt_no for the condition
        engine.message(code, "fee_paid", data={"amount": 50000}, portal=True)
    assert failed.value.dossier == code
    assert stored(engine, code) == before
    dossier = engine.message(code, "fee_paid", data={"receipt_no": "BL-000125"}, portal=True)
    assert dossier.current_steps == ("Task_Issue",)


def test_event_gateway_timer_first_then_the_payment_is_refused(make_engine, database, clock):
    engine = open_engine(make_engine, database, clock)   # Monday 08:00
    code = awaiting_fee(engine, PAY_OR_EXPIRE)
    clock.set(at(2025, 7, 9, 7, 59))
    assert engine.fire_due_timers() == []
    clock.set(at(2025, 7, 9, 8, 0))                       # 2 working days
    (fired,) = engine.fire_due_timers()
    assert (fired.dossier_code, fired.error) == (code, None)
    dossier = engine.dossier(code)
    assert dossier.finished and dossier.status is DossierStatus.PROCESSING_STOPPED
    before = stored(engine, code)
    clock.advance(minutes=5)
    with pytest.raises(RuleViolation, match="has finished"):
        engine.message(code, "fee_paid", data={"receipt_no": "BL-000126"}, portal=True)
    assert stored(engine, code) == before


def test_event_gateway_payment_first_drops_the_timer(make_engine, database, clock):
    engine = open_engine(make_engine, database, clock)
    code = awaiting_fee(engine, PAY_OR_EXPIRE)
    other = awaiting_fee(engine, PAY_OR_EXPIRE)           # keeps waiting: its timer fires
    clock.advance(hours=3)
    dossier = engine.message(code, "fee_paid", data={"receipt_no": "BL-000127"}, portal=True)
    assert dossier.current_steps == ("Task_Deliver",)
    assert dossier.status is DossierStatus.IN_PROGRESS
    assert since(engine, code, clock.now())[0] == (EventKind.MESSAGE_RECEIVED, "Catch_Paid")
    clock.advance(days=30)
    assert [f.dossier_code for f in engine.fire_due_timers()] == [other]
    assert engine.fire_due_timers() == []
    assert not any(e.kind is EventKind.TIMER_FIRED for e in engine.history(code))
    assert engine.dossier(code).current_steps == ("Task_Deliver",)
    done = complete(engine, code, "Task_Deliver", "tn.an")
    assert done.finished and done.status is DossierStatus.RESULT_RETURNED


def test_refusals_store_nothing(make_engine, database, clock):
    engine = open_engine(make_engine, database, clock)
    code = receive(engine)
    before = stored(engine, code)
    clock.advance(hours=1)

    with pytest.raises(RuleViolation) as refused:
        engine.message(code, "payment_confirmed", portal=True)
    text = str(refused.value)
    assert code in text and "'payment_confirmed'" in text
    assert "'status_requested', 'withdrawal_requested'" in text
    with pytest.raises(DossierNotFound):
        engine.message("AN-BINH-MC-250707-9999", "withdrawal_requested", portal=True)
    with pytest.raises(DossierNotFound):
        engine.message("not a dossier", "withdrawal_requested", portal=True)
    with pytest.raises(UnknownOfficer, match="no.one"):
        engine.message(code, "withdrawal_requested", officer="no.one")
    with pytest.raises(InvalidInput, match="'procedure'"):
        engine.message(code, "withdrawal_requested", data={"procedure": "1.000001"},
                       portal=True)
    with pytest.raises(InvalidInput, match="'lý_do'"):
        engine.message(code, "withdrawal_requested", data={"lý_do": REASON}, portal=True)
    with pytest.raises(InvalidInput, match="'at'"):
        engine.message(code, "withdrawal_requested", data={"at": clock.now()}, portal=True)
    with pytest.raises(InvalidInput):
        engine.message(code, "withdrawal_requested", data=[("reason", REASON)],  # type: ignore[arg-type]
                       portal=True)
    with pytest.raises(InvalidInput):
        engine.message(code, "", portal=True)
    assert stored(engine, code) == before


def test_a_dossier_waiting_for_payment_survives_a_restart(make_engine, database, clock):
    first = open_engine(make_engine, database, clock)
    code = awaiting_fee(first)
    first.close()
    clock.advance(days=1)
    second = make_engine(database, library=DATA, clock=clock)
    dossier = second.message(code, "fee_paid", data={"receipt_no": "BL-000128"}, portal=True)
    assert dossier.current_steps == ("Task_Issue",)
    assert dossier.status is DossierStatus.IN_PROGRESS
    (paid,) = [e for e in second.history(code) if e.kind is EventKind.MESSAGE_RECEIVED]
    assert paid.detail == {"message": "fee_paid", "data": {"receipt_no": "BL-000128"}}


@pytest.mark.parametrize("opinion, next_step", [("Đồng ý", "Task_Draft"),
                                                ("Không đồng ý", "Task_Reconsider")])
def test_a_receive_task_inside_a_called_process(make_engine, database, clock, opinion,
                                                next_step):
    engine = open_engine(make_engine, database, clock)
    code = receive(engine)
    dossier = complete(engine, code, "Task_Examine", "lv.binh", {"verdict": "consult"})
    assert dossier.open_tasks == ()                       # waits for the consulted agency
    clock.advance(hours=4)
    dossier = engine.message(code, "opinion_received", data={"opinion": opinion}, portal=True)
    assert dossier.current_steps == (next_step,)
    assert [t.step for t in engine.inbox("lv.binh")] == [next_step]
    (answer,) = [e for e in engine.history(code) if e.kind is EventKind.MESSAGE_RECEIVED]
    assert (answer.step, answer.agency, answer.detail["data"]) == \
        ("Receive_Opinion", "AN-BINH-UB", {"opinion": opinion})


def test_a_withdrawal_cancels_the_called_process_waiting_inside(make_engine, database, clock):
    engine = open_engine(make_engine, database, clock)
    code = receive(engine)
    complete(engine, code, "Task_Examine", "lv.binh", {"verdict": "consult"})
    dossier = engine.message(code, "withdrawal_requested", data={"reason": REASON}, portal=True)
    assert dossier.current_steps == ("Task_ConfirmWithdrawal",)
    with pytest.raises(RuleViolation, match="waits for no message"):
        engine.message(code, "opinion_received", data={"opinion": "Đồng ý"}, portal=True)


def test_a_status_question_opens_a_desk_task_and_keeps_the_specialist_s(make_engine,
                                                                         database, clock):
    engine = open_engine(make_engine, database, clock)
    code = receive(engine)
    clock.advance(hours=1)
    dossier = engine.message(code, "status_requested", officer="tn.an",
                             data={"question": "Hồ sơ của tôi đã xử lý đến đâu?"})
    assert sorted(dossier.current_steps) == ["Task_AnswerQuery", "Task_Examine"]
    assert dossier.status is DossierStatus.IN_PROGRESS
    assert [t.step for t in engine.inbox("lv.binh")] == ["Task_Examine"]
    assert [t.step for t in engine.inbox("tn.an")] == ["Task_AnswerQuery"]
    assert since(engine, code, clock.now()) == [
        (EventKind.MESSAGE_RECEIVED, "Boundary_Query"),
        (EventKind.TASK_READY, "Task_AnswerQuery"),
    ]
    asked = engine.history(code)[-2]
    assert asked.actor == "tn.an" and asked.agency == "AN-BINH-UB"

    clock.advance(hours=1)                                # asked again: caught again
    dossier = engine.message(code, "status_requested", portal=True)
    assert sorted(dossier.current_steps) == ["Task_AnswerQuery", "Task_AnswerQuery",
                                             "Task_Examine"]
    assert not any(e.kind is EventKind.TASK_CANCELLED for e in engine.history(code))

    complete(engine, code, "Task_Examine", "lv.binh", {"verdict": "approve"})
    dossier = complete(engine, code, "Task_Draft", "lv.binh")
    assert "Task_Return" in dossier.current_steps        # resolution is over
    with pytest.raises(RuleViolation, match="waits for no message"):
        engine.message(code, "status_requested", portal=True)
    for _ in range(3):
        task = engine.inbox("tn.an")[0]
        dossier = engine.complete(task.id, "tn.an")
    assert dossier.finished and dossier.status is DossierStatus.RESULT_RETURNED


def test_a_withdrawal_after_a_question_leaves_the_answer_to_give(make_engine, database,
                                                                 clock):
    engine = open_engine(make_engine, database, clock)
    code = receive(engine)
    engine.message(code, "status_requested", portal=True)
    dossier = engine.message(code, "withdrawal_requested", data={"reason": REASON}, portal=True)
    assert sorted(dossier.current_steps) == ["Task_AnswerQuery", "Task_ConfirmWithdrawal"]
    cancelled = [e.step for e in engine.history(code) if e.kind is EventKind.TASK_CANCELLED]
    assert cancelled == ["Task_Examine"]
    with pytest.raises(RuleViolation, match="waits for no message"):
        engine.message(code, "status_requested", portal=True)   # the resolution is over
    for step in ("Task_AnswerQuery", "Task_ConfirmWithdrawal"):
        dossier = complete(engine, code, step, "tn.an")
    assert dossier.finished and dossier.status is DossierStatus.WITHDRAWAL_REQUESTED


def test_concurrent_payments_are_taken_exactly_once(make_engine, database, clock):
    engine = open_engine(make_engine, database, clock)
    code = awaiting_fee(engine)
    portals = [make_engine(database, library=DATA, clock=clock) for _ in range(3)]
    start = threading.Barrier(len(portals))
    outcomes: list[str] = []

    def pay(portal: Engine, n: int) -> None:
        start.wait()
        try:
            portal.message(code, "fee_paid", data={"receipt_no": f"BL-00020{n}"}, portal=True)
            outcomes.append("paid")
        except (RuleViolation, ConcurrentUpdate) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=pay, args=(p, n)) for n, p in enumerate(portals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("paid") == 1, outcomes
    paid = [e for e in engine.history(code) if e.kind is EventKind.MESSAGE_RECEIVED]
    assert len(paid) == 1
    assert engine.dossier(code).current_steps == ("Task_Issue",)
