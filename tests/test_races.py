"""Commands racing each other, on SQLite and PostgreSQL: exactly one wins, the loser gets
one typed error (the same class on both databases), nothing is written twice, and a
failed commit leaves nothing behind — not in the database, not in the engine's cache."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, Callable

import pytest

from onestop import (
    VIETNAM_TZ,
    ConcurrentUpdate,
    Engine,
    EventKind,
    ManualClock,
    Officer,
    PermissionDenied,
    StoreError,
    TaskNotOpen,
)

from .conftest import STAFF

SECOND_CLERK = Officer("vt.mai", "Võ Thị Mai", {"AN-BINH-MC": ["receiving_officer"]})


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


def staffed(engine: Engine) -> Engine:
    for officer in (*STAFF, SECOND_CLERK):
        engine.add_officer(officer)
    return engine


def receive(engine: Engine) -> str:
    return engine.receive("2.000575", applicant={"name": "Nguyễn Thị Hoa"},
                          components=["giay-de-nghi"], officer="tn.an").code


def step(engine: Engine, code: str, name: str):
    (found,) = [t for t in engine.dossier(code).open_tasks if t.step == name]
    return found


def in_resolution(engine: Engine, clock: ManualClock) -> str:
    code = receive(engine)
    for name, data in (("Task_CheckDossier", {"outcome": "accept"}), ("Task_Digitize", {}),
                       ("Task_Transfer", {})):
        clock.advance(minutes=10)
        engine.complete(step(engine, code, name).id, "tn.an", data)
    return code


def test_a_timer_suspended_after_a_sweep_read_it_does_not_fire(make_engine, database):
    """The sweep reads the due timers, then fires them one by one. A supplement request
    that pauses the clock in between suspends the warning: it must not fire."""
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    sweeper = staffed(make_engine(database, clock=clock))
    officer = make_engine(database, clock=clock)
    code = in_resolution(sweeper, clock)
    clock.set(at(2025, 7, 8, 15, 0))                      # the warning is due (14:04)
    fire = sweeper._fire                                  # the per-timer step of a sweep

    def supplement_first(*args: Any, **kwargs: Any) -> Any:
        officer.complete(step(officer, code, "Task_Examine").id, "lv.binh",
                         {"verdict": "supplement", "missing": ["bien-ban-hop"]})
        return fire(*args, **kwargs)

    sweeper._fire = supplement_first                      # type: ignore[method-assign]
    assert sweeper.fire_due_timers() == []
    assert officer.dossier(code).current_steps == ("Task_ReceiveResolutionSupplement",)
    assert not [e for e in officer.history(code) if e.kind is EventKind.TIMER_FIRED]
    assert officer.sla(code).paused
    sweeper._fire = fire                                  # type: ignore[method-assign]
    assert sweeper.fire_due_timers() == []                # suspended, not lost
    officer.complete(step(officer, code, "Task_ReceiveResolutionSupplement").id, "tn.an")
    clock.set(at(2025, 7, 20, 8, 0))
    assert [f.step for f in sweeper.fire_due_timers()] == ["Timer_Apology"]


def race(first: Callable[[], Any], second: Callable[[], Any]) -> list[Any]:
    """Run both at once; each result is its return value or the exception it raised."""
    start = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(n: int, call: Callable[[], Any]) -> None:
        start.wait()
        try:
            results[n] = call()
        except Exception as exc:  # noqa: BLE001 - the race's loser is what we look at
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate((first,
                                                                                second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


TRIALS = 40


def test_claim_and_complete_at_once_have_exactly_one_winner(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    one = staffed(make_engine(database, clock=clock))
    other = make_engine(database, clock=clock)
    losers: set[type] = set()
    for _ in range(TRIALS):
        code = receive(one)
        task = step(one, code, "Task_CheckDossier")
        claimed, completed = race(lambda t=task.id: one.claim(t, "tn.an"),
                                  lambda t=task.id: other.complete(t, "vt.mai",
                                                                   {"outcome": "accept"}))
        wins = [r for r in (claimed, completed) if not isinstance(r, Exception)]
        assert len(wins) == 1, (claimed, completed)
        loser = claimed if isinstance(claimed, Exception) else completed
        assert isinstance(loser, (ConcurrentUpdate, PermissionDenied)), repr(loser)
        losers.add(type(loser))
        kinds = [e.kind for e in one.history(code)]
        if isinstance(completed, Exception):       # the claim won: the task is held
            assert one.task(task.id).claimed_by == "tn.an"
            assert kinds.count(EventKind.CLAIMED) == 1
            assert EventKind.COMPLETED not in kinds
        else:                                      # the completion won: nothing claimed
            assert EventKind.CLAIMED not in kinds and kinds.count(EventKind.COMPLETED) == 1
            assert one.dossier(code).current_steps == ("Task_Digitize",)
    # Whoever loses, the error is one of two classes, the same on SQLite and PostgreSQL.
    assert losers <= {PermissionDenied, TaskNotOpen}


def test_two_completions_at_once_have_exactly_one_winner(make_engine, database):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    one = staffed(make_engine(database, clock=clock))
    other = make_engine(database, clock=clock)
    for _ in range(TRIALS // 2):
        code = receive(one)
        task = step(one, code, "Task_CheckDossier")
        results = race(lambda t=task.id: one.complete(t, "tn.an", {"outcome": "accept"}),
                       lambda t=task.id: other.complete(t, "vt.mai", {"outcome": "refuse"}))
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(losers) == 1, results
        assert type(losers[0]) is TaskNotOpen, repr(losers[0])   # on both databases
        kinds = [e.kind for e in one.history(code)]
        assert kinds.count(EventKind.COMPLETED) == 1


class FailingCommit:
    """A pooled connection whose commit fails once, as on a full disk."""

    def __init__(self, real: Any, fail: list[bool]) -> None:
        self._real, self._fail = real, fail

    def commit(self) -> None:
        if self._fail and self._fail.pop():
            raise _disk_full()
        self._real.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _disk_full() -> Exception:
    import sqlite3
    return sqlite3.OperationalError("database or disk is full")


def failing_commits(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Make the next commit of ``engine``'s commands fail (push True to arm it)."""
    fail: list[bool] = []
    sql = engine._store._sql
    real = sql.raw_connection
    monkeypatch.setattr(sql, "raw_connection", lambda: FailingCommit(real(), fail))
    return fail


def test_a_failed_commit_leaves_nothing_behind_in_the_database_or_the_cache(
        make_engine, sqlite_url, monkeypatch):
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(sqlite_url, clock=clock))
    desk = make_engine(sqlite_url, clock=clock)               # another process's engine
    fail = failing_commits(engine, monkeypatch)
    fail.append(True)
    with pytest.raises(StoreError, match="disk is full"):
        receive(engine)
    # The other engine's next dossier takes the same row id; when this engine works on
    # it, it must see that dossier's workflow, not the one it failed to store.
    code = receive(desk)
    assert code.endswith("-0001")
    task = step(engine, code, "Task_CheckDossier")
    clock.advance(minutes=5)
    fail.append(True)
    with pytest.raises(StoreError, match="nothing was stored"):
        engine.complete(task.id, "tn.an", {"outcome": "accept"})
    assert engine.dossier(code).current_steps == ("Task_CheckDossier",)
    dossier = engine.complete(task.id, "tn.an", {"outcome": "accept"})
    assert dossier.current_steps == ("Task_Digitize",)
    kinds = [e.kind for e in engine.history(code)]
    assert kinds.count(EventKind.COMPLETED) == 1


def warned(engine: Engine, clock: ManualClock) -> str:
    code = in_resolution(engine, clock)
    engine.complete(step(engine, code, "Task_Examine").id, "lv.binh", {"verdict": "approve"})
    engine.start_apology(code, "lv.binh")                  # the prompt opens
    return code


def test_the_signature_that_ends_a_resolution_and_an_answer_to_its_prompt_race(
        make_engine, database):
    """Signing ends the resolution and withdraws the late path's prompt; answering the
    prompt at the same moment locks the same dossier. One order or the other, never a
    deadlock: the answer either lands first or finds its task gone."""
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    one = staffed(make_engine(database, clock=clock))
    other = make_engine(database, clock=clock)
    for _ in range(TRIALS // 4):
        code = warned(one, clock)
        sign, answer = step(one, code, "Task_Approve"), step(one, code, "Task_ExplainDelay")
        later = (clock.now() + timedelta(days=40)).isoformat()
        signed, answered = race(
            lambda t=sign.id: one.complete(t, "pq.cuong"),
            lambda t=answer.id, later=later: other.complete(t, "pq.cuong", {
                "will_be_late": "yes", "delay_reason": "Chậm", "new_appointment": later}))
        assert not isinstance(signed, Exception), repr(signed)
        assert not isinstance(answered, Exception) or type(answered) is TaskNotOpen, \
            repr(answered)
        assert "Task_ReturnResult" in one.dossier(code).current_steps


def test_a_command_waits_for_a_locked_dossier_no_longer_than_the_lock_timeout(
        make_engine, database, clock):
    engine = staffed(make_engine(database, clock=clock, lock_timeout=0.2))
    code = receive(engine)
    task = step(engine, code, "Task_CheckDossier")
    holder = make_engine(database, clock=clock)
    with holder._store.command() as unit:                 # another session holds the row
        if database.startswith("postgresql"):
            unit._cursor.execute("SELECT id FROM onestop_dossiers FOR UPDATE")
        with pytest.raises(StoreError, match="lock"):
            engine.complete(task.id, "tn.an", {"outcome": "accept"})
    assert engine.complete(task.id, "tn.an", {"outcome": "accept"}).current_steps == \
        ("Task_Digitize",)


def test_engines_starting_together_on_a_new_database_both_start(database, clock, tmp_path):
    from .conftest import _reset_postgres

    for attempt in range(4):
        url = database if database.startswith("postgresql") else \
            f"sqlite:///{tmp_path / f'boot{attempt}.db'}"
        if database.startswith("postgresql"):
            _reset_postgres(url)
        started = race(lambda u=url: Engine(u, clock=clock), lambda u=url: Engine(u, clock=clock))
        assert all(isinstance(e, Engine) for e in started), started
        for engine in started:
            engine.close()


def test_one_engine_shared_by_a_portal_s_threads(make_engine, database):
    """A portal backend serves requests from a thread pool with one engine: dossiers
    received and worked on from several threads at once all move on correctly."""
    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = staffed(make_engine(database, clock=clock))
    failures: list[BaseException] = []
    codes: list[str] = []

    def desk_work(n: int) -> None:
        try:
            for _ in range(6):
                code = receive(engine)
                codes.append(code)
                for name, data in (("Task_CheckDossier", {"outcome": "accept"}),
                                   ("Task_Digitize", {}), ("Task_Transfer", {})):
                    engine.complete(step(engine, code, name).id,
                                    ("tn.an", "vt.mai")[n % 2], data)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=desk_work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(set(codes)) == 24
    for code in codes:
        assert engine.dossier(code).current_steps == ("Task_Examine",)
        kinds = [e.kind for e in engine.history(code)]
        assert kinds.count(EventKind.COMPLETED) == 3
