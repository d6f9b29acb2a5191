"""Models as Camunda Modeler writes them run unmodified: candidate groups for roles,
Camunda properties for agencies and allotments, JUEL conditions, bare ISO timers and
external service tasks mapped to connectors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from onestop import DossierStatus, Engine, ManualClock, Officer
from onestop.errors import ModelError, ProcessError

MODELER = Path(__file__).parent / "data" / "modeler"
STAFF = [Officer("desk", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}),
         Officer("spec", "Lê Văn Bình", {"AN-BINH-KT": ["specialist"]})]


def _engine(make_engine: Callable[..., Engine], url: str, **connectors: Any) -> Engine:
    engine = make_engine(url, library=MODELER,
                         connectors={"payment.confirm": connectors["pay"]})
    for officer in STAFF:
        engine.add_officer(officer)
    return engine


def test_juel_conditions_and_connector_answer_decide_the_path(make_engine, sqlite_url: str,
                                                              clock: ManualClock) -> None:
    calls: list[dict[str, Any]] = []

    def pay(data: dict[str, Any]) -> dict[str, Any]:
        calls.append(data)
        return {"paid": True, "amount": 100000, "receipt": "BL-0001 Hóa đơn"}

    engine = _engine(make_engine, sqlite_url, pay=pay)
    dossier = engine.receive("2.000575", applicant={"name": "Hồ Thị Mai"},
                             components=["giay-de-nghi"], officer="desk")
    check = dossier.open_tasks[0]
    assert (check.role, check.agency) == ("receiving_officer", "AN-BINH-MC")
    after = engine.complete(check.id, "desk", {"outcome": "accept"})
    # The connector saw the dossier's data and its answer chose the paid branch.
    assert calls and calls[0]["outcome"] == "accept" and calls[0]["procedure"] == "2.000575"
    examine = after.open_tasks[0]
    assert (examine.step, examine.role, examine.agency) == \
        ("Activity_Examine", "specialist", "AN-BINH-KT")
    # camunda:property allotment = 2wd: Monday 08:00 -> Wednesday 08:00.
    assert examine.due_at == examine.ready_at + timedelta(days=2)
    # The bare P1D reminder counts one working day.
    clock.advance(timedelta(days=1))
    fired = engine.fire_due_timers()
    assert [f.step for f in fired] == ["Event_Reminder"] and fired[0].error is None
    done = engine.complete(examine.id, "spec", {})
    assert done.finished


def test_unpaid_fee_follows_the_negated_juel_condition(make_engine, sqlite_url: str) -> None:
    engine = _engine(make_engine, sqlite_url, pay=lambda data: {"paid": False, "amount": 0})
    dossier = engine.receive("2.000575", applicant={"name": "Hồ Thị Mai"},
                             components=["giay-de-nghi"], officer="desk")
    after = engine.complete(dossier.open_tasks[0].id, "desk", {"outcome": "accept"})
    assert after.finished and not after.open_tasks


def test_refusal_branch_uses_juel_ne(make_engine, sqlite_url: str) -> None:
    called = []
    engine = _engine(make_engine, sqlite_url, pay=lambda data: called.append(1))
    dossier = engine.receive("2.000575", applicant={"name": "Hồ Thị Mai"},
                             components=["giay-de-nghi"], officer="desk")
    after = engine.complete(dossier.open_tasks[0].id, "desk", {"outcome": "refuse"})
    assert after.finished and called == []


def test_missing_connector_is_refused_when_the_engine_starts(make_engine,
                                                             sqlite_url: str) -> None:
    with pytest.raises(ModelError) as caught:
        make_engine(sqlite_url, library=MODELER)
    assert "payment.confirm" in str(caught.value)
    assert caught.value.element == "Activity_Fee"


def test_failing_connector_stores_nothing(make_engine, sqlite_url: str) -> None:
    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("payment gateway timed out")

    engine = _engine(make_engine, sqlite_url, pay=broken)
    dossier = engine.receive("2.000575", applicant={"name": "Hồ Thị Mai"},
                             components=["giay-de-nghi"], officer="desk")
    task = dossier.open_tasks[0]
    with pytest.raises(ProcessError) as caught:
        engine.complete(task.id, "desk", {"outcome": "accept"})
    assert caught.value.element == "Activity_Fee"
    assert "payment gateway timed out" in str(caught.value)
    # The check step is still open, unclaimed by the failed completion.
    again = engine.dossier(dossier.code)
    assert [t.step for t in again.open_tasks] == ["Activity_Check"]
    assert again.status is DossierStatus.NEWLY_REGISTERED


def test_connector_answer_must_be_a_mapping(make_engine, sqlite_url: str) -> None:
    engine = _engine(make_engine, sqlite_url, pay=lambda data: ["paid"])
    dossier = engine.receive("2.000575", applicant={"name": "Hồ Thị Mai"},
                             components=["giay-de-nghi"], officer="desk")
    with pytest.raises(ProcessError, match="not a mapping"):
        engine.complete(dossier.open_tasks[0].id, "desk", {"outcome": "accept"})
