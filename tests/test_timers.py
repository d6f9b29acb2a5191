"""Timers in models: due instants on the engine's clock, in working time by default,
fired once each by Engine.fire_due_timers(), surviving a restart."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from onestop import VIETNAM_TZ, DossierStatus, Engine, EventKind, ManualClock, ModelError, Officer
from onestop import load_library

DATA = Path(__file__).parent / "data" / "timers"
CLERK = Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]})


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


def open_engine(make_engine, database: str, clock: ManualClock) -> Engine:
    engine = make_engine(database, library=DATA, clock=clock)
    engine.add_officer(CLERK)
    return engine


def prepared(engine: Engine) -> str:
    """A 'waiting' dossier whose first step is done: it now waits on its P2D timer."""
    dossier = engine.receive("9.000001", applicant={"name": "Vũ Thị Hằng"}, officer="tn.an")
    engine.complete(dossier.open_tasks[0].id, "tn.an")
    return dossier.code


def fired_events(engine: Engine, code: str) -> list:
    return [e for e in engine.history(code) if e.kind is EventKind.TIMER_FIRED]


def test_bare_iso_duration_counts_working_days_from_friday_afternoon(make_engine, database):
    clock = ManualClock(at(2025, 7, 4, 16, 0))            # Friday 16:00
    engine = open_engine(make_engine, database, clock)
    code = prepared(engine)
    assert engine.dossier(code).open_tasks == ()          # waiting on the timer
    clock.set(at(2025, 7, 8, 15, 59))                     # Tuesday, a minute early
    assert engine.fire_due_timers() == []
    clock.set(at(2025, 7, 8, 16, 0))                      # 2 working days: Tuesday 16:00
    fired = engine.fire_due_timers()
    assert [(f.dossier_code, f.step, f.due_at, f.error) for f in fired] == \
        [(code, "Timer_Wait", at(2025, 7, 8, 16, 0), None)]
    assert engine.dossier(code).current_steps == ("Task_Remind",)
    assert engine.fire_due_timers() == []                 # each timer fires once
    (event,) = fired_events(engine, code)
    assert event.at == at(2025, 7, 8, 16, 0)
    assert event.detail == {"due": "2025-07-08T16:00:00+07:00"}


def test_working_hours_from_off_hours_and_calendar_days_per_timer(make_engine, database):
    clock = ManualClock(at(2025, 7, 8, 17, 30))           # Tuesday after office hours
    engine = open_engine(make_engine, database, clock)
    code = engine.receive("9.000002", applicant={"name": "Lê Hữu Phước"}, officer="tn.an").code
    clock.set(at(2025, 7, 9, 11, 29))
    assert engine.fire_due_timers() == []
    clock.set(at(2025, 7, 9, 11, 30))                     # PT4H from Wednesday 07:30
    (chase,) = engine.fire_due_timers()
    assert chase.step == "Timer_Chase" and chase.due_at == at(2025, 7, 9, 11, 30)
    dossier = engine.dossier(code)
    assert set(dossier.current_steps) == {"Task_Answer", "Task_Chase"}   # non-interrupting
    clock.set(at(2025, 7, 11, 17, 30))                    # "P3D" calendar: Friday 17:30
    (give_up,) = engine.fire_due_timers()
    assert give_up.step == "Timer_GiveUp" and give_up.due_at == at(2025, 7, 11, 17, 30)
    dossier = engine.dossier(code)
    assert dossier.current_steps == ("Task_Chase",)       # the answer step was interrupted
    assert dossier.status is DossierStatus.PROCESSING_STOPPED
    cancelled = [e.step for e in engine.history(code) if e.kind is EventKind.TASK_CANCELLED]
    assert cancelled == ["Task_Answer"]


def test_a_timer_left_behind_is_dropped_and_never_fires(make_engine, sqlite_url):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    code = engine.receive("9.000002", applicant={"name": "Đinh Công Tráng"},
                          officer="tn.an").code
    engine.complete(engine.dossier(code).open_tasks[0].id, "tn.an")   # answered in time
    dossier = engine.dossier(code)
    assert dossier.status is DossierStatus.RESULT_RETURNED and dossier.finished
    clock.advance(days=30)
    assert engine.fire_due_timers() == []
    rows = sqlite3.connect(sqlite_url.removeprefix("sqlite:///")).execute(
        "SELECT COUNT(*) FROM onestop_timers").fetchone()
    assert rows == (0,)


def test_pending_timer_survives_a_restart(make_engine, database):
    clock = ManualClock(at(2025, 7, 4, 16, 0))
    first = open_engine(make_engine, database, clock)
    code = prepared(first)
    first.close()
    clock.set(at(2025, 7, 9, 8, 0))
    second = make_engine(database, library=DATA, clock=clock)
    fired = second.fire_due_timers()
    assert [(f.dossier_code, f.step) for f in fired] == [(code, "Timer_Wait")]
    assert second.dossier(code).current_steps == ("Task_Remind",)


def test_concurrent_sweeps_fire_each_timer_exactly_once(make_engine, database):
    clock = ManualClock(at(2025, 7, 4, 16, 0))
    engine = open_engine(make_engine, database, clock)
    codes = [prepared(engine) for _ in range(12)]
    clock.set(at(2025, 7, 9, 8, 0))
    sweepers = [make_engine(database, library=DATA, clock=clock) for _ in range(3)]
    results: list[list] = []
    start = threading.Barrier(len(sweepers))

    def sweep(sweeper: Engine) -> None:
        start.wait()
        results.append(sweeper.fire_due_timers())

    threads = [threading.Thread(target=sweep, args=(s,)) for s in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fired = sorted(f.dossier_code for batch in results for f in batch)
    assert fired == sorted(codes)
    assert all(f.error is None for batch in results for f in batch)
    for code in codes:
        assert len(fired_events(engine, code)) == 1
        assert engine.dossier(code).current_steps == ("Task_Remind",)


TIMER_MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:onestop="urn:onestop:bpmn:1" id="Defs_t" targetNamespace="urn:test">
  <bpmn:process id="waiting" isExecutable="true">
    <bpmn:laneSet id="LS"><bpmn:lane id="L" name="receiving_officer" onestop:agency="desk">
      <bpmn:flowNodeRef>S</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_Prepare</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>Timer_Wait</bpmn:flowNodeRef><bpmn:flowNodeRef>E</bpmn:flowNodeRef>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="S" />
    <bpmn:userTask id="Task_Prepare" />
    <bpmn:intermediateCatchEvent id="Timer_Wait" {attributes}>
      <bpmn:timerEventDefinition id="TD">{definition}</bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="E" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Task_Prepare" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_Prepare" targetRef="Timer_Wait" />
    <bpmn:sequenceFlow id="F3" sourceRef="Timer_Wait" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def library_with_timer(tmp_path: Path, definition: str, attributes: str = "") -> Path:
    folder = tmp_path / "lib"
    folder.mkdir()
    catalog = (DATA / "catalog.json").read_text(encoding="utf-8")
    (folder / "catalog.json").write_text(catalog.replace('"process": "chased"',
                                                         '"process": "waiting"'),
                                         encoding="utf-8")
    (folder / "timers.bpmn").write_text(TIMER_MODEL.format(definition=definition,
                                                           attributes=attributes),
                                        encoding="utf-8")
    return folder


@pytest.mark.parametrize("definition, attributes, words", [
    ("<bpmn:timeCycle>R3/PT1H</bpmn:timeCycle>", "", "cycle timers"),
    ("<bpmn:timeDuration>P1M</bpmn:timeDuration>", "", "no fixed length in working time"),
    ("<bpmn:timeDuration>P2X</bpmn:timeDuration>", "", "not an ISO 8601 duration"),
    ("<bpmn:timeDuration>__import__('os')</bpmn:timeDuration>", "", "not allowed"),
    ("<bpmn:timeDuration></bpmn:timeDuration>", "", "no duration or date"),
    ("<bpmn:timeDuration>P1D</bpmn:timeDuration>", 'onestop:clock="lunar"', "clock 'lunar'"),
])
def test_timers_that_cannot_run_are_refused_at_load(tmp_path, definition, attributes, words):
    folder = library_with_timer(tmp_path, definition, attributes)
    with pytest.raises(ModelError) as refused:
        load_library(folder)
    error = refused.value
    assert error.element == "Timer_Wait" and error.file.endswith("timers.bpmn")
    assert words in str(error)


@pytest.mark.parametrize("definition, attributes, due", [
    ('<bpmn:timeDuration>"P1D"</bpmn:timeDuration>', "", at(2025, 7, 8, 9, 0)),
    ("<bpmn:timeDuration>P1M</bpmn:timeDuration>", 'onestop:clock="calendar"',
     at(2025, 8, 7, 9, 0)),
    ("<bpmn:timeDuration>1.5wd</bpmn:timeDuration>", "", at(2025, 7, 8, 14, 30)),
    ("<bpmn:timeDate>2025-07-10T10:00:00+07:00</bpmn:timeDate>", "", at(2025, 7, 10, 10, 0)),
])
def test_timer_forms_a_modeler_writes(make_engine, sqlite_url, tmp_path, definition,
                                      attributes, due):
    folder = library_with_timer(tmp_path, definition, attributes)
    clock = ManualClock(at(2025, 7, 7, 9, 0))             # Monday 09:00
    engine = make_engine(sqlite_url, library=folder, clock=clock)
    engine.add_officer(CLERK)
    code = prepared(engine)
    clock.set(due - timedelta(seconds=1))
    assert engine.fire_due_timers() == []
    clock.advance(seconds=1)
    assert [f.due_at for f in engine.fire_due_timers()] == [due]
    assert engine.dossier(code).finished


def test_library_copy_keeps_its_timers(tmp_path):
    shutil.copytree(DATA, tmp_path / "copy")
    models = load_library(tmp_path / "copy").models
    assert {"waiting", "chased"} <= set(models)


def test_a_sweep_can_be_capped_and_reads_due_timers_in_batches(make_engine, sqlite_url,
                                                               monkeypatch):
    import onestop.engine

    monkeypatch.setattr(onestop.engine, "_TIMER_BATCH", 2)
    clock = ManualClock(at(2025, 7, 4, 16, 0))
    engine = open_engine(make_engine, sqlite_url, clock)
    codes = [prepared(engine) for _ in range(5)]
    clock.set(at(2025, 7, 9, 8, 0))
    first = engine.fire_due_timers(limit=3)
    assert len(first) == 3
    rest = engine.fire_due_timers()
    assert len(rest) == 2
    assert sorted(f.dossier_code for f in first + rest) == codes
    assert engine.fire_due_timers() == []


FAILING_MODEL = TIMER_MODEL.replace(
    '<bpmn:sequenceFlow id="F3" sourceRef="Timer_Wait" targetRef="E" />',
    '<bpmn:scriptTask id="Script_Share"><bpmn:script>share = 100 / parts</bpmn:script>'
    '</bpmn:scriptTask>'
    '<bpmn:sequenceFlow id="F3" sourceRef="Timer_Wait" targetRef="Script_Share" />'
    '<bpmn:sequenceFlow id="F4" sourceRef="Script_Share" targetRef="E" />').replace(
    '<bpmn:userTask id="Task_Prepare" />',
    '<bpmn:userTask id="Task_Prepare" onestop:form="parts" />')


def test_a_timer_whose_dossier_fails_is_reported_and_stays_due(make_engine, sqlite_url,
                                                               tmp_path):
    folder = library_with_timer(tmp_path, "<bpmn:timeDuration>P1D</bpmn:timeDuration>")
    (folder / "timers.bpmn").write_text(FAILING_MODEL.format(
        definition="<bpmn:timeDuration>P1D</bpmn:timeDuration>", attributes=""),
        encoding="utf-8")
    clock = ManualClock(at(2025, 7, 7, 9, 0))
    engine = make_engine(sqlite_url, library=folder, clock=clock)
    engine.add_officer(CLERK)
    codes = []
    for parts in (0, 4):
        dossier = engine.receive("9.000001", applicant={"name": "Tạ Quang Bửu"},
                                 officer="tn.an")
        engine.complete(dossier.open_tasks[0].id, "tn.an", {"parts": parts})
        codes.append(dossier.code)
        clock.advance(minutes=1)                          # the sweep fires oldest first
    clock.set(at(2025, 7, 8, 9, 5))
    broken, fine = engine.fire_due_timers()
    assert broken.dossier_code == codes[0] and "Script_Share" in broken.error
    assert "division by zero" in broken.error
    assert fine.dossier_code == codes[1] and fine.error is None
    assert engine.dossier(codes[1]).finished
    assert fired_events(engine, codes[0]) == []           # nothing of the failure stored
    clock.advance(hours=1)
    (again,) = engine.fire_due_timers()                   # still due, retried
    assert again.dossier_code == codes[0] and again.error


def test_the_next_timer_due_lets_a_simulation_jump_its_clock(make_engine, database):
    clock = ManualClock(at(2025, 7, 4, 16, 0))            # Friday 16:00
    engine = open_engine(make_engine, database, clock)
    assert engine.next_timer_due() is None                # nothing waits yet
    first = prepared(engine)
    clock.set(at(2025, 7, 7, 9, 0))
    second = prepared(engine)
    due = engine.next_timer_due()
    assert due == at(2025, 7, 8, 16, 0) and due.tzinfo is not None
    # Jump to it instead of polling: exactly the first dossier's timer is due.
    clock.set(due)
    assert [f.dossier_code for f in engine.fire_due_timers()] == [first]
    assert engine.next_timer_due() == at(2025, 7, 9, 9, 0)
    clock.set(engine.next_timer_due())
    assert [f.dossier_code for f in engine.fire_due_timers()] == [second]
    assert engine.next_timer_due() is None
