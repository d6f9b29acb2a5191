"""Appointments at acceptance and legal regimes bound to the receipt date."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from onestop import VIETNAM_TZ, CatalogError, DossierStatus, Engine, ManualClock
from onestop.sla import load_regimes

from .conftest import STAFF, drive

ROOT = Path(__file__).resolve().parent.parent


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


def open_engine(make_engine, database: str, clock: ManualClock) -> Engine:
    engine = make_engine(database, clock=clock)
    for officer in STAFF:
        engine.add_officer(officer)
    return engine


def accept(engine: Engine, clock: ManualClock, procedure: str, components: list[str],
           minutes: int = 10):
    code = engine.receive(procedure, applicant={"name": "Hà"}, components=components,
                          officer="tn.an").code
    assert engine.dossier(code).appointment_at is None     # not before the check
    clock.advance(minutes=minutes)
    task = engine.dossier(code).open_tasks[0]
    return engine.complete(task.id, "tn.an", {"outcome": "accept"})


@pytest.mark.parametrize("received, appointment", [
    (at(2025, 7, 4, 10, 0), at(2025, 7, 9, 10, 10)),   # Friday morning: Wed same hour
    (at(2025, 7, 4, 16, 0), at(2025, 7, 9, 17, 0)),    # after 15:00: counts from Monday
    (at(2025, 7, 5, 9, 0), at(2025, 7, 9, 17, 0)),     # Saturday: counts from Monday
])
def test_appointment_is_legal_time_in_working_days_from_acceptance(make_engine, database,
                                                                   received, appointment):
    clock = ManualClock(received)
    engine = open_engine(make_engine, database, clock)
    dossier = accept(engine, clock, "2.000575", ["giay-de-nghi"])      # 3 working days
    assert dossier.status is DossierStatus.RECEIVED
    assert dossier.appointment_at == appointment
    accepted = [e for e in engine.history(dossier.code) if e.detail.get("to") == 2][0]
    assert accepted.detail["appointment"] == appointment.isoformat()


def test_same_day_procedure_is_due_at_close_of_office(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 7, 8, 9, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    engine.add_officer(STAFF[0])
    dossier = accept(engine, clock, "2.000815", ["ban-chinh", "ban-sao"])
    assert dossier.appointment_at == at(2025, 7, 8, 17, 0)


def test_supplement_at_reception_starts_the_clock_only_once_complete(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 7, 7, 9, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code = engine.receive("2.000575", applicant={"name": "Hà"}, components=[],
                          officer="tn.an").code
    drive(engine, code, {"Task_CheckDossier": [{"outcome": "supplement"}],
                         "Task_RequestSupplement": [{"missing": ["giay-de-nghi"]}]},
          stop_before="Task_ReceiveSupplement")
    assert engine.dossier(code).appointment_at is None
    clock.set(at(2025, 7, 9, 14, 0))                        # applicant returns Wednesday
    drive(engine, code, {"Task_ReceiveSupplement": [{}],
                         "Task_CheckDossier": [{"outcome": "accept"}]},
          stop_before="Task_Digitize")
    assert engine.dossier(code).appointment_at == at(2025, 7, 14, 14, 0)


def test_regime_switches_on_2025_07_01(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 6, 30, 16, 59))
    engine = open_engine(make_engine, sqlite_url, clock)
    before = engine.receive("2.000575", applicant={"name": "A"}, components=["giay-de-nghi"],
                            officer="tn.an")
    clock.set(at(2025, 7, 1, 7, 30))
    after = engine.receive("2.000575", applicant={"name": "B"}, components=["giay-de-nghi"],
                           officer="tn.an")
    assert (before.regime, after.regime) == ("ND61-2018", "ND118-2025")
    regimes = engine.library.regimes
    assert regimes.get("ND61-2018").supplement_clock == "restart"
    assert regimes.get("ND118-2025").forms["stop_notice"] == "05"


@pytest.mark.parametrize("edit, entry, field", [
    (lambda r: r[1].update(received_from="2025-06-30"), "ND61-2018", "received_until"),
    (lambda r: r[0].update(supplement_clock="freeze"), "ND61-2018", "supplement_clock"),
    (lambda r: r[1].update(transfer_cutoff="3pm"), "ND118-2025", "transfer_cutoff"),
])
def test_bad_regime_data_names_regime_and_field(tmp_path, edit, entry, field):
    data = json.loads((ROOT / "processes" / "regimes.json").read_text(encoding="utf-8"))
    edit(data["regimes"])
    path = tmp_path / "regimes.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CatalogError) as refused:
        load_regimes(path)
    assert (refused.value.entry, refused.value.field) == (entry, field)
