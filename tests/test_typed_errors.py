"""Every exception that leaves a public call is an OnestopError naming what it concerns:
wrong types and values for every argument of the public API, clocks that lie, and a
database that is locked, full, read-only or gone."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import event

from onestop import (
    VIETNAM_TZ,
    DossierNotFound,
    Engine,
    InvalidInput,
    ManualClock,
    ModelError,
    ProcessError,
    Officer,
    OnestopError,
    StoreError,
    TaskNotFound,
    UnknownAgency,
    UnknownOfficer,
    UnknownProcedure,
)

from .conftest import POSTGRES_URL, STAFF, with_staff

SURROGATE = "Nguy\ud800n"
DEEP: Any = []
for _ in range(100_000):
    DEEP = [DEEP]
LONG = "x" * 5000


class NaiveClock:
    def now(self) -> datetime:
        return datetime(2025, 7, 7, 8, 0)


class BrokenClock:
    def now(self) -> datetime:
        raise RuntimeError("NTP unreachable")


def each_raises(cases: list[tuple[Callable[[], Any], type[OnestopError]]]) -> None:
    """Each call raises its error class, and nothing else escapes."""
    for number, (call, error) in enumerate(cases):
        try:
            call()
        except error:
            continue
        except BaseException as exc:  # noqa: BLE001 - reported below
            pytest.fail(f"case {number}: {type(exc).__name__}: {str(exc)[:200]}")
        pytest.fail(f"case {number}: no {error.__name__}")


def prepared(engine: Engine) -> tuple[str, str]:
    """A dossier and its open task."""
    with_staff(engine)
    dossier = engine.receive("2.000575", applicant={"name": "Nguyễn Văn A"},
                             components=["giay-de-nghi"], officer="tn.an")
    return dossier.code, dossier.open_tasks[0].id


def test_constructing_an_engine_with_wrong_arguments(tmp_path: Path, clock):
    db = str(tmp_path / "x.db")
    cases: list[tuple[Callable[[], Any], type[OnestopError], str]] = [
        (lambda: Engine(123), InvalidInput, "database must be"),          # type: ignore
        (lambda: Engine(""), InvalidInput, "database must be"),
        (lambda: Engine("a\x00b"), InvalidInput, "database must be"),
        (lambda: Engine(db, durability="x"), InvalidInput, "durability"),
        (lambda: Engine(db, clock=object()), InvalidInput, "now"),  # type: ignore[arg-type]
        (lambda: Engine(db, clock=NaiveClock()), InvalidInput, "timezone-aware"),
        (lambda: Engine(db, clock=BrokenClock()), InvalidInput, "NTP unreachable"),
        (lambda: Engine(db, clock=clock, cache_size=-1), InvalidInput, "cache_size"),
        (lambda: Engine(db, clock=clock, cache_size="9"), InvalidInput, "cache_size"),  # type: ignore
        (lambda: Engine(db, clock=clock, due_soon=5), InvalidInput, "due_soon"),  # type: ignore
        (lambda: Engine(db, clock=clock, connectors=["x"]), InvalidInput, "connectors"),  # type: ignore
        (lambda: Engine(db, clock=clock, library=123), InvalidInput, "library"),  # type: ignore
        (lambda: Engine(db, clock=clock, lock_timeout="x"), InvalidInput, "lock_timeout"),  # type: ignore
        (lambda: Engine(str(tmp_path / "no" / "x.db"), clock=clock), StoreError, "does not exist"),
        (lambda: ManualClock(datetime(2025, 7, 7)), InvalidInput, "no time zone"),
        (lambda: ManualClock("2025-07-07"), InvalidInput, "datetime"),  # type: ignore
        (lambda: clock.advance(hours=-1), InvalidInput, "cannot go back"),
        (lambda: clock.advance("1h"), InvalidInput, "timedelta"),  # type: ignore[arg-type]
        (lambda: clock.set(datetime(2030, 1, 1)), InvalidInput, "no time zone"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words):
            call()


def test_every_command_and_query_refuses_wrong_input_with_a_typed_error(make_engine,
                                                                       database, clock):
    engine = make_engine(database)
    code, task = prepared(engine)
    receive = engine.receive
    cases: list[tuple[Callable[[], Any], type[OnestopError]]] = [
        # receive
        (lambda: receive(None, applicant={}), UnknownProcedure),  # type: ignore[arg-type]
        (lambda: receive("2.000575\x00", applicant={}), UnknownProcedure),
        (lambda: receive("2.000575", applicant=None, officer="tn.an"), InvalidInput),  # type: ignore
        (lambda: receive("2.000575", applicant={"name": SURROGATE}, officer="tn.an"),
         InvalidInput),
        (lambda: receive("2.000575", applicant={"name": "A\x00B"}, officer="tn.an"),
         InvalidInput),
        (lambda: receive("2.000575", applicant={"a": DEEP}, officer="tn.an"), InvalidInput),
        (lambda: receive("2.000575", applicant={"a": float("nan")}, officer="tn.an"),
         InvalidInput),
        (lambda: receive("2.000575", applicant={"a": {1, 2}}, officer="tn.an"), InvalidInput),
        (lambda: receive("2.000575", applicant={}, components=[1], officer="tn.an"),
         InvalidInput),
        (lambda: receive("2.000575", applicant={}, components=[LONG], officer="tn.an"),
         InvalidInput),
        (lambda: receive("2.000575", applicant={}, channel="x", officer="tn.an"),  # type: ignore
         InvalidInput),
        (lambda: receive("2.000575", applicant={}, officer=123), InvalidInput),  # type: ignore
        (lambda: receive("2.000575", applicant={}, officer=LONG), InvalidInput),
        (lambda: receive("2.000575", applicant={}, officer="tn.an", desk=7), InvalidInput),  # type: ignore
        (lambda: receive("2.000575", applicant={}, officer="tn.an", desk="NOPE\x00"),
         InvalidInput),
        (lambda: receive("2.000575", applicant={}, officer="tn.an", desk="NOPE"), UnknownAgency),
        (lambda: receive("2.000575", applicant={}, officer="tn.an", held=b"x"), InvalidInput),  # type: ignore
        (lambda: receive("2.000575", applicant={}, officer="tn.an", resolving_agency=[]),  # type: ignore
         InvalidInput),
        # tasks
        (lambda: engine.claim(None, "tn.an"), TaskNotFound),  # type: ignore[arg-type]
        (lambda: engine.claim("a\x00b", "tn.an"), TaskNotFound),
        (lambda: engine.claim(LONG, "tn.an"), TaskNotFound),
        (lambda: engine.claim(task, None), UnknownOfficer),  # type: ignore[arg-type]
        (lambda: engine.claim(task, "tn\x00an"), UnknownOfficer),
        (lambda: engine.claim(task, LONG), UnknownOfficer),
        (lambda: engine.release(task, 5), UnknownOfficer),  # type: ignore[arg-type]
        (lambda: engine.reassign(task, "tn.an", by=None), UnknownOfficer),  # type: ignore
        (lambda: engine.complete(task, "tn.an", [("outcome", "accept")]), InvalidInput),  # type: ignore
        (lambda: engine.complete(task, "tn.an", "accept"), InvalidInput),  # type: ignore
        (lambda: engine.complete(task, "tn.an", {"outcome": SURROGATE}), InvalidInput),
        (lambda: engine.complete(task, "tn.an", {"note": DEEP, "outcome": "accept"}),
         InvalidInput),
        (lambda: engine.complete(task, "tn.an", {"note": "a\x00", "outcome": "accept"}),
         InvalidInput),
        (lambda: engine.complete(task, "tn.an", {3: "x"}), InvalidInput),  # type: ignore
        (lambda: engine.task(None), TaskNotFound),  # type: ignore[arg-type]
        (lambda: engine.task("a\x00"), TaskNotFound),
        # messages and the late path
        (lambda: engine.message(code, None, portal=True), InvalidInput),  # type: ignore
        (lambda: engine.message(code, "x\x00", portal=True), InvalidInput),
        (lambda: engine.message(code, "x", portal="yes"), InvalidInput),  # type: ignore
        (lambda: engine.message(code, "x", portal=True, data=[1]), InvalidInput),  # type: ignore
        (lambda: engine.message(None, "x", portal=True), DossierNotFound),  # type: ignore
        (lambda: engine.start_apology(code, "lv.binh", reason=5), InvalidInput),  # type: ignore
        (lambda: engine.start_apology(code + "\n", "lv.binh"), DossierNotFound),
        (lambda: engine.fire_due_timers(limit="x"), InvalidInput),  # type: ignore
        (lambda: engine.fire_due_timers(limit=-1), InvalidInput),
        # queries
        (lambda: engine.dossier(None), DossierNotFound),  # type: ignore[arg-type]
        (lambda: engine.dossier(f"{code}\x00"), DossierNotFound),
        (lambda: engine.dossier(LONG), DossierNotFound),
        (lambda: engine.history(42), DossierNotFound),  # type: ignore[arg-type]
        (lambda: engine.sla(code, due_soon=3), InvalidInput),  # type: ignore[arg-type]
        (lambda: engine.sla(b"x"), DossierNotFound),  # type: ignore[arg-type]
        (lambda: engine.inbox(None), UnknownOfficer),  # type: ignore[arg-type]
        (lambda: engine.inbox("nobody\x00"), UnknownOfficer),
        (lambda: engine.officer(LONG), UnknownOfficer),
        (lambda: engine.officer("a\x00"), UnknownOfficer),
        (lambda: engine.procedure(None), UnknownProcedure),  # type: ignore[arg-type]
        (lambda: engine.procedures(desk=3), InvalidInput),  # type: ignore[arg-type]
        (lambda: engine.procedures(desk="NOPE"), UnknownAgency),
        # officers
        (lambda: engine.add_officer("tn.an"), InvalidInput),  # type: ignore[arg-type]
        (lambda: engine.add_officer(Officer("a b", "A B", {})), InvalidInput),
        (lambda: Officer(LONG, "A", {}), InvalidInput),
        (lambda: Officer("a", "A\x00", {}), InvalidInput),
        (lambda: Officer("a", "A", {LONG: ["leader"]}), InvalidInput),
        (lambda: Officer("a", "A", {"AN-BINH-KT": [None]}), InvalidInput),  # type: ignore
        (lambda: engine.add_officer(Officer("a", "A", {"NOPE": ["leader"]})), UnknownAgency),
    ]
    before = engine.history(code)
    each_raises(cases)
    assert engine.history(code) == before                         # nothing was stored
    assert len(engine.procedures()) == 12


def test_a_clock_that_turns_naive_is_refused_by_every_command(make_engine, sqlite_url):
    clock = ManualClock(datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ))
    engine = make_engine(sqlite_url, clock=clock)
    code, task = prepared(engine)
    clock._now = datetime(2025, 7, 7, 9, 0)                  # a clock gone wrong
    for call in (lambda: engine.complete(task, "tn.an", {"outcome": "accept"}),
                 lambda: engine.fire_due_timers(), lambda: engine.sla(code),
                 lambda: engine.claim(task, "tn.an")):
        with pytest.raises(InvalidInput, match="timezone-aware"):
            call()


def test_a_read_only_database_is_a_store_error_and_reads_still_work(tmp_path, clock):
    path = tmp_path / "ro.db"
    code, _task = prepared(Engine(str(path), clock=clock))
    readonly = Engine(f"sqlite:///file:{path}?mode=ro&uri=true", clock=clock)
    assert readonly.dossier(code).code == code
    with pytest.raises(StoreError, match="readonly"):
        readonly.add_officer(STAFF[0])
    with pytest.raises(StoreError, match="readonly"):
        readonly.receive("2.000575", applicant={"name": "B"}, officer="tn.an")
    readonly.close()


def test_a_locked_database_is_a_store_error_after_the_lock_timeout(tmp_path, clock):
    path = tmp_path / "locked.db"
    engine = Engine(str(path), clock=clock, lock_timeout=0)
    code, task = prepared(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for call in (lambda: engine.add_officer(STAFF[1]),
                     lambda: engine.complete(task, "tn.an", {"outcome": "accept"}),
                     lambda: Engine(str(path), clock=clock, lock_timeout=0).add_officer(
                         STAFF[2])):
            with pytest.raises(StoreError, match="locked"):
                call()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert engine.complete(task, "tn.an", {"outcome": "accept"}).current_steps == \
        ("Task_Digitize",)
    engine.close()


def test_a_full_database_is_a_store_error_and_stores_nothing(tmp_path, clock):
    path = tmp_path / "full.db"
    engine = Engine(str(path), clock=clock)
    code, task = prepared(engine)
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]

    def tiny(connection: Any, _record: Any) -> None:
        connection.execute(f"PRAGMA max_page_count={pages}")

    event.listen(engine._store._sql, "connect", tiny)
    engine._store._sql.dispose()
    big = {"name": "Nguyễn Văn A", "scan": "x" * 200_000}
    with pytest.raises(StoreError, match="full"):
        engine.receive("2.000575", applicant=big, officer="tn.an")
    with pytest.raises(StoreError, match="full"):
        engine.complete(task, "tn.an", {"outcome": "accept", "note": "x" * 200_000})
    assert engine.dossier(code).current_steps == ("Task_CheckDossier",)
    engine.close()


@pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL server (set ONESTOP_TEST_POSTGRES)")
def test_a_postgresql_server_that_drops_its_connections_is_a_store_error(make_engine, clock):
    from .conftest import _reset_postgres

    assert POSTGRES_URL is not None
    database = POSTGRES_URL
    _reset_postgres(database)
    engine = make_engine(database)
    code, task = prepared(engine)
    from sqlalchemy import create_engine, text

    admin = create_engine(database)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE pid <> pg_backend_pid() AND datname = current_database()"))
        conn.commit()
    admin.dispose()
    errors = []
    for call in (lambda: engine.dossier(code),
                 lambda: engine.complete(task, "tn.an", {"outcome": "accept"}),
                 lambda: engine.add_officer(STAFF[0])):
        try:
            call()
        except StoreError as exc:
            errors.append(str(exc))
    assert errors, "a dropped connection must show as StoreError"
    # The pool replaces the dead connections: the engine works again.
    clock.advance(timedelta(minutes=1))
    if engine.dossier(code).current_steps == ("Task_CheckDossier",):
        engine.complete(task, "tn.an", {"outcome": "accept"})
    assert engine.dossier(code).current_steps == ("Task_Digitize",)


def chain_library(folder: Path, length: int) -> Path:
    """A library whose one process is ``length`` automatic steps, then an officer's."""
    folder.mkdir()
    nodes = "".join(f'<bpmn:task id="T{n}"/><bpmn:sequenceFlow id="F{n}" sourceRef="T{n}" '
                    f'targetRef="T{n + 1}"/>' for n in range(length))
    (folder / "chain.bpmn").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:onestop="urn:onestop:bpmn:1" id="D" targetNamespace="urn:x">
  <bpmn:process id="chain" isExecutable="true">
    <bpmn:startEvent id="S"/><bpmn:sequenceFlow id="F_S" sourceRef="S" targetRef="T0"/>
    {nodes}
    <bpmn:userTask id="T{length}" onestop:role="receiving_officer" onestop:agency="desk"/>
    <bpmn:sequenceFlow id="F_E" sourceRef="T{length}" targetRef="E"/><bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>""", encoding="utf-8")
    (folder / "catalog.json").write_text("""{"schema": "onestop-catalog/1",
      "agencies": [{"code": "AN-BINH-MC", "name": "Một cửa", "level": "commune"}],
      "procedures": [{"code": "9.000009", "name": "Chuỗi dài", "field": "Thử nghiệm",
        "level": "commune", "agency": "AN-BINH-MC", "process": "chain",
        "legal_time": "5wd", "components": []}]}""", encoding="utf-8")
    return folder


def test_a_long_chain_runs_and_one_too_long_to_run_is_refused_at_load(make_engine,
                                                                         sqlite_url, tmp_path):
    """SpiffWorkflow runs a path by recursing from step to step and looks no deeper than
    1,000 levels for ready tasks: a chain of 500 automatic steps runs; one of 3,000 is
    refused when the library loads (it would otherwise be taken for finished at once),
    with lint saying the same."""
    engine = make_engine(sqlite_url, library=chain_library(tmp_path / "ok", 500))
    engine.add_officer(Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
    dossier = engine.receive("9.000009", applicant={"name": "A"}, officer="tn.an")
    assert dossier.current_steps == ("T500",)
    assert engine.complete(dossier.open_tasks[0].id, "tn.an").finished
    too_long = chain_library(tmp_path / "long", 3000)
    with pytest.raises(ModelError, match="'chain' runs up to 300[0-9] steps in a row"):
        make_engine(sqlite_url, library=too_long)
    from onestop.modeling.lint import lint
    assert any("steps in a row" in f.message and f.severity == "error"
               for f in lint([too_long]))


def test_a_multi_instance_cardinality_beyond_the_limit_is_refused(make_engine, sqlite_url,
                                                                  tmp_path):
    """A cardinality of a billion would make SpiffWorkflow create a billion tasks."""
    folder = chain_library(tmp_path / "lib", 1)
    model = (folder / "chain.bpmn").read_text(encoding="utf-8")
    (folder / "chain.bpmn").write_text(model.replace(
        '<bpmn:task id="T0"/>',
        '<bpmn:userTask id="T0" onestop:role="receiving_officer" onestop:agency="desk">'
        '<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>fee_due'
        '</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>'),
        encoding="utf-8")
    catalog = (folder / "catalog.json").read_text(encoding="utf-8")
    for fee, outcome in ((3, "T0"), (10**9, None)):
        (folder / "catalog.json").write_text(catalog.replace(
            '"components": []', f'"components": [], "fees": [{{"name": "x", "amount": {fee}}}]'),
            encoding="utf-8")
        engine = make_engine(sqlite_url, library=folder)
        engine.add_officer(Officer("tn.an", "Trần Ngọc An",
                                   {"AN-BINH-MC": ["receiving_officer"]}))
        if outcome is not None:
            dossier = engine.receive("9.000009", applicant={"name": "A"}, officer="tn.an")
            assert dossier.current_steps == ("T0",) * 3
            continue
        with pytest.raises(ProcessError, match="runs a whole number of 0 to 1000 instances"):
            engine.receive("9.000009", applicant={"name": "A"}, officer="tn.an")


HUGE = 10**5000      # repr() of it fails: past Python's limit on integer-to-text digits


def test_values_that_cannot_even_be_printed_are_refused_by_name(make_engine, sqlite_url,
                                                                clock, tmp_path):
    engine = make_engine(sqlite_url)
    code, task = prepared(engine)
    cases: list[tuple[Callable[[], Any], type[OnestopError]]] = [
        (lambda: engine.dossier(HUGE), DossierNotFound),  # type: ignore[arg-type]
        (lambda: engine.task(HUGE), TaskNotFound),  # type: ignore[arg-type]
        (lambda: engine.inbox(HUGE), UnknownOfficer),  # type: ignore[arg-type]
        (lambda: engine.complete(task, HUGE), UnknownOfficer),  # type: ignore[arg-type]
        (lambda: engine.complete(task, "tn.an", {"outcome": "accept", "note": HUGE}),
         InvalidInput),
        (lambda: engine.complete(task, "tn.an", {"outcome": "accept", "note": 2**64}),
         InvalidInput),
        (lambda: engine.receive("2.000575", applicant={"n": HUGE}, officer="tn.an"),
         InvalidInput),
        (lambda: engine.receive("2.000575", applicant={}, channel=HUGE), InvalidInput),
        (lambda: engine.start_apology(code, "lv.binh", reason=HUGE), InvalidInput),  # type: ignore
        (lambda: Officer("a", HUGE, {}), InvalidInput),  # type: ignore[arg-type]
        (lambda: clock.advance(days=float("inf")), InvalidInput),
        (lambda: clock.advance(days=float("nan")), InvalidInput),
        (lambda: clock.advance(days=10**7), InvalidInput),
        (lambda: Engine(str(tmp_path / "\ud800.db"), clock=clock), InvalidInput),
        (lambda: Engine(str(tmp_path / "x.db"), clock=clock, library="x" * 5000), ModelError),
    ]
    each_raises(cases)


def timer_library(folder: Path, timer: str) -> Path:
    """The chain library with a timer at ``timer`` before its officer's step."""
    chain_library(folder, 1)
    model = (folder / "chain.bpmn").read_text(encoding="utf-8")
    (folder / "chain.bpmn").write_text(model.replace(
        '<bpmn:task id="T0"/>',
        '<bpmn:intermediateCatchEvent id="T0"><bpmn:timerEventDefinition><bpmn:timeDate>'
        f'{timer}</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'),
        encoding="utf-8")
    return folder


def test_a_timer_that_cannot_fall_due_is_an_error_naming_it(make_engine, sqlite_url,
                                                            tmp_path):
    engine = make_engine(sqlite_url, library=timer_library(tmp_path / "lib",
                                                           "9999-12-31T23:00:00-10:00"))
    engine.add_officer(Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
    with pytest.raises(ProcessError, match="element 'T0': timer: the due instant cannot be"):
        engine.receive("9.000009", applicant={"name": "A"}, officer="tn.an")


def test_a_multi_instance_collection_beyond_the_limit_is_refused(make_engine, sqlite_url,
                                                                 tmp_path):
    folder = chain_library(tmp_path / "lib", 1)
    model = (folder / "chain.bpmn").read_text(encoding="utf-8")
    (folder / "chain.bpmn").write_text(model.replace(
        '<bpmn:task id="T0"/>',
        '<bpmn:userTask id="Pick" onestop:role="receiving_officer" onestop:agency="desk" '
        'onestop:form="items"/><bpmn:sequenceFlow id="FP" sourceRef="Pick" targetRef="T0"/>'
        '<bpmn:userTask id="T0" onestop:role="receiving_officer" onestop:agency="desk">'
        '<bpmn:multiInstanceLoopCharacteristics><bpmn:loopDataInputRef>items'
        '</bpmn:loopDataInputRef><bpmn:inputDataItem id="item" name="item"/>'
        '</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>').replace(
        'targetRef="T0"/>\n    <bpmn:intermediate', 'targetRef="T0"/>').replace(
        'sourceRef="S" targetRef="T0"', 'sourceRef="S" targetRef="Pick"'), encoding="utf-8")
    engine = make_engine(sqlite_url, library=folder)
    engine.add_officer(Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
    pick = engine.receive("9.000009", applicant={"name": "A"}, officer="tn.an").open_tasks[0]
    with pytest.raises(ProcessError, match="holds 5000 items; a multi-instance activity"):
        engine.complete(pick.id, "tn.an", {"items": list(range(5000))})
    dossier = engine.complete(pick.id, "tn.an", {"items": ["a", "b"]})
    assert dossier.current_steps == ("T0", "T0")
