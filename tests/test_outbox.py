"""The portal outbox: every receipt, status change and appointment change leaves exactly
one message for the national portal, written in the transaction of the change, so a
sending worker that crashes, restarts or sends twice never loses or invents an update."""

from __future__ import annotations

import unicodedata
from datetime import datetime

import pytest

from onestop import (
    VIETNAM_TZ,
    DossierStatus,
    Engine,
    EventKind,
    InvalidInput,
    ManualClock,
    OutboxMessage,
    PermissionDenied,
    StoreError,
)

from .conftest import STAFF, drive
from .test_races import failing_commits


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


def staffed(engine: Engine) -> Engine:
    for officer in STAFF:
        engine.add_officer(officer)
    return engine


def receive(engine: Engine, name: str = "Nguyễn Thị Hoa") -> str:
    return engine.receive("2.000575", applicant={"name": name},
                          components=["giay-de-nghi"], officer="tn.an").code


def statuses(engine: Engine, code: str) -> list[tuple[int, int]]:
    return [(e.detail["from"], e.detail["to"]) for e in engine.history(code)
            if e.kind is EventKind.STATUS_CHANGED]


def test_a_receipt_and_each_status_change_leave_one_message_in_order(make_engine,
                                                                      database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    code = receive(engine)
    (receipt,) = engine.outbox()
    assert isinstance(receipt, OutboxMessage)
    assert (receipt.dossier_code, receipt.kind, receipt.status) == \
        (code, "dossier", DossierStatus.NEWLY_REGISTERED)
    assert receipt.payload["applicant"] == {"name": "Nguyễn Thị Hoa"}
    assert receipt.payload["components"] == ["giay-de-nghi"]
    assert receipt.payload["procedure"] == "2.000575"
    assert receipt.at == at(2025, 7, 7, 8, 0)
    for _ in drive(engine, code, stop_before="Task_ReturnResult"):
        pass
    clock.advance(minutes=30)
    engine.complete(engine.dossier(code).open_tasks[0].id, "tn.an")

    messages = engine.outbox()
    progress = [m for m in messages if m.kind == "progress"]
    assert [(m.payload["previous_status"], m.payload["status"]) for m in progress] == \
        statuses(engine, code)
    assert [m.status for m in progress][-1] is DossierStatus.RESULT_RETURNED
    assert progress[-1].at == at(2025, 7, 7, 8, 30)
    assert progress[0].payload["due_at"] == progress[0].payload["appointment_at"] == \
        engine.sla(code).due_at.isoformat()
    assert [m.id for m in messages] == sorted(m.id for m in messages)
    assert len({m.key for m in messages}) == len(messages)
    assert all(m.payload["dossier"] == code for m in messages)


def test_an_apology_letter_tells_the_portal_the_new_appointment(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    code = receive(engine)
    drive(engine, code, stop_before="Task_Examine")
    engine.mark_sent(m.key for m in engine.outbox())
    clock.set(at(2025, 7, 7, 10, 0))
    engine.start_apology(code, "lv.binh", reason="Phải kiểm tra thực địa")
    prompt = next(t for t in engine.dossier(code).open_tasks if t.step == "Task_ExplainDelay")
    engine.complete(prompt.id, "pq.cuong", {"will_be_late": "yes",
                                            "new_appointment": "2025-07-14"})
    assert engine.outbox() == []            # no status change, no new appointment yet
    letter = next(t for t in engine.dossier(code).open_tasks if t.step == "Task_IssueApology")
    engine.complete(letter.id, "tn.an", {"letter_no": "15/PXL"})
    (message,) = engine.outbox()
    assert message.kind == "progress"
    assert message.status is engine.dossier(code).status
    assert message.payload["appointment_at"] == at(2025, 7, 14, 17, 0).isoformat()
    # The legal due instant stays: the dossier still counts as late.
    assert message.payload["due_at"] == at(2025, 7, 10, 8, 0).isoformat()
    change = message.payload["appointment_change"]
    assert change["reason"] == "apology"
    assert change["previous"] == at(2025, 7, 10, 8, 0).isoformat()
    assert change["responsible"] == "AN-BINH-KT"


def test_a_refused_or_failed_command_leaves_no_message(make_engine, database,
                                                       monkeypatch):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    code = receive(engine)
    before = engine.outbox()
    task = engine.dossier(code).open_tasks[0]
    with pytest.raises(PermissionDenied):
        engine.complete(task.id, "lv.binh", {"outcome": "accept"})
    with pytest.raises(InvalidInput):
        engine.complete(task.id, "tn.an", {"outcome": "perhaps"})
    assert engine.outbox() == before
    if database.startswith("sqlite"):                # a full disk at commit
        fail = failing_commits(engine, monkeypatch)
        fail.append(True)
        with pytest.raises(StoreError):
            engine.complete(task.id, "tn.an", {"outcome": "accept"})
        assert engine.outbox() == before
    engine.complete(task.id, "tn.an", {"outcome": "accept"})
    assert len(engine.outbox()) == len(before) + 1


def test_a_sending_worker_reads_on_marks_sent_and_survives_a_restart(make_engine,
                                                                     database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    codes = [receive(engine, name) for name in ("Lê Thị Ánh", "Trần Văn Đức", "Hồ Ngọc Hà")]
    first = engine.outbox(limit=2)
    assert [m.dossier_code for m in first] == codes[:2]
    rest = engine.outbox(after=first[-1].id)
    assert [m.dossier_code for m in rest] == codes[2:]
    clock.advance(minutes=5)
    assert engine.mark_sent([first[0].key]) == 1
    assert engine.mark_sent([first[0].key, "no-such-key"]) == 0    # sent twice: once
    if not database.startswith("memory://"):
        engine.close()
        engine = make_engine(database, clock=clock)
    pending = engine.outbox()
    assert [m.key for m in pending] == [first[1].key, rest[0].key]
    assert pending[0].payload["applicant"]["name"] == "Trần Văn Đức"
    assert unicodedata.is_normalized("NFC", pending[1].payload["applicant"]["name"])
    assert engine.mark_sent(m.key for m in pending) == 2
    assert engine.outbox() == []


def test_decomposed_vietnamese_is_sent_as_nfc(make_engine, database):
    engine = staffed(make_engine(database))
    receive(engine, unicodedata.normalize("NFD", "Nguyễn Thị Hoa"))
    (message,) = engine.outbox()
    assert message.payload["applicant"]["name"] == "Nguyễn Thị Hoa"
    assert unicodedata.is_normalized("NFC", message.payload["applicant"]["name"])


@pytest.mark.parametrize("kwargs, error", [
    ({"limit": 0}, "limit must be a whole number from 1 to 10000"),
    ({"limit": True}, "limit must be"),
    ({"after": -1}, "after must be a message id"),
    ({"after": "5"}, "after must be a message id"),
])
def test_bad_outbox_arguments_are_refused(make_engine, sqlite_url, kwargs, error):
    engine = make_engine(sqlite_url)
    with pytest.raises(InvalidInput, match=error):
        engine.outbox(**kwargs)


@pytest.mark.parametrize("keys", [[5], [""], ["x" * 161], [None]])
def test_bad_keys_are_refused_and_nothing_is_marked(make_engine, sqlite_url, keys):
    engine = staffed(make_engine(sqlite_url))
    receive(engine)
    (message,) = engine.outbox()
    with pytest.raises(InvalidInput, match="message key"):
        engine.mark_sent([message.key, *keys])
    assert engine.outbox() == [message]
