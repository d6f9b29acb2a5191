"""A database written by the previous release opens with this one and every dossier in it
runs to its end: the schema is upgraded (on open, or ahead of time with ``onestop db
upgrade``), the old workflow states and event payloads are read.

The previous release is taken from the repository's history (``git archive``), run in a
separate process on the same dependencies, and made to leave dossiers at every kind of
standstill: waiting at reception with its task claimed, in resolution with the apology
warning pending, paused for a supplement, with the late path's prompt open, and finished.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import textwrap
from datetime import datetime
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from onestop import VIETNAM_TZ, DossierStatus, EventKind, ManualClock, StoreError
from onestop.cli import main
from onestop.store.migrate import HEAD, VERSION_TABLE

from .test_records import assert_facts_follow_the_log
from .conftest import POSTGRES_URL, STAFF, _reset_postgres, drive, with_staff

ROOT = Path(__file__).resolve().parent.parent
#: The previous release: what was on main before the store was versioned (onestop 0.1).
PREVIOUS = "55c17d56baadf4c560b48ea868e62bea84dec77c"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's package and process library, unpacked from git."""
    folder = tmp_path_factory.mktemp("previous")
    result = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS,
                             "onestop", "processes"], capture_output=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(f"the upgrade test needs the previous release ({PREVIOUS}) from the "
                    f"repository's history: {result.stderr.decode(errors='replace')}; "
                    f"clone without --depth")
    with tarfile.open(fileobj=BytesIO(result.stdout)) as archive:
        archive.extractall(folder, filter="data")
    return folder


OLD_RUN = textwrap.dedent('''
    import json, sys
    from datetime import datetime
    import onestop
    from onestop import Engine, ManualClock, Officer, VIETNAM_TZ

    assert onestop.__file__.startswith(sys.argv[2]), onestop.__file__
    def at(*parts):
        return datetime(*parts, tzinfo=VIETNAM_TZ)

    clock = ManualClock(at(2025, 7, 7, 8, 0))
    engine = Engine(sys.argv[1], clock=clock)
    for officer in json.loads(sys.argv[3]):
        engine.add_officer(Officer(officer["id"], officer["name"], officer["roles"]))

    def task(code, step):
        return next(t for t in engine.dossier(code).open_tasks if t.step == step)

    def receive(name):
        return engine.receive("2.000575", applicant={"name": name},
                              components=["giay-de-nghi"], officer="tn.an").code

    def transfer(code):
        for step, data in (("Task_CheckDossier", {"outcome": "accept"}),
                           ("Task_Digitize", {}), ("Task_Transfer", {})):
            clock.advance(minutes=10)
            engine.complete(task(code, step).id, "tn.an", data)

    codes = {}
    codes["claimed"] = receive("Nguyễn Văn Nhận")
    engine.claim(task(codes["claimed"], "Task_CheckDossier").id, "tn.an")
    codes["prompt"] = receive("Trần Thị Chờ")
    transfer(codes["prompt"])
    codes["paused"] = receive("Lê Văn Bổ Sung")
    transfer(codes["paused"])
    codes["pending"] = receive("Phạm Thị Trễ")
    transfer(codes["pending"])
    codes["finished"] = receive("Hoàng Văn Xong")
    transfer(codes["finished"])
    for step, officer, data in (("Task_Examine", "lv.binh", {"verdict": "approve"}),
                                ("Task_Approve", "pq.cuong", {}),
                                ("Task_ReturnResult", "tn.an", {})):
        clock.advance(minutes=10)
        engine.complete(task(codes["finished"], step).id, officer, data)
    clock.set(at(2025, 7, 8, 9, 0))
    engine.complete(task(codes["paused"], "Task_Examine").id, "lv.binh",
                    {"verdict": "supplement", "missing": ["bien-ban-hop"]})
    clock.set(at(2025, 7, 8, 14, 10))
    fired = [f.dossier_code for f in engine.fire_due_timers()]
    print(json.dumps({"codes": codes, "fired": fired, "version": onestop.__version__}))
    engine.close()
''')


def write_with_previous_release(previous: Path, database: str, tmp_path: Path) -> dict:
    script = tmp_path / "previous_release.py"
    script.write_text(OLD_RUN, encoding="utf-8")
    staff = [{"id": o.id, "name": o.name, "roles": {a: sorted(r) for a, r in o.roles.items()}}
             for o in STAFF]
    env = dict(os.environ, PYTHONPATH=str(previous))
    result = subprocess.run([sys.executable, str(script), database, str(previous),
                             json.dumps(staff)], capture_output=True, text=True, cwd=tmp_path,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def revision(database: str) -> str | None:
    sql = create_engine(database)
    try:
        with sql.connect() as conn:
            tables = conn.dialect.get_table_names(conn)
            if VERSION_TABLE not in tables:
                return None
            return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    finally:
        sql.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'previous.db'}"
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server (set ONESTOP_TEST_POSTGRES; .ci/run does)")
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.mark.parametrize("how", ["on open", "onestop db upgrade"])
def test_a_database_of_the_previous_release_upgrades_and_every_dossier_runs_to_its_end(
        previous_release, old_database, make_engine, tmp_path, how, capsys):
    written = write_with_previous_release(previous_release, old_database, tmp_path)
    codes = written["codes"]
    assert written["version"] == "0.1.0"
    assert revision(old_database) is None              # the previous release's schema
    # The previous release fired the first transfer's apology warning: its prompt is open.
    assert written["fired"] == [codes["prompt"]]

    if how == "onestop db upgrade":
        assert main(["db", "current", old_database]) == 0
        assert "revision 0001 (upgrade to" in capsys.readouterr().out
        assert main(["db", "upgrade", old_database]) == 0
        assert f"upgraded from revision 0001 to {HEAD}" in capsys.readouterr().out
        assert revision(old_database) == HEAD
    clock = ManualClock(at(2025, 7, 8, 14, 30))
    engine = with_staff(make_engine(old_database, clock=clock))
    assert revision(old_database) == HEAD

    # The receipt of an old dossier now tells who applied, where and under which rules.
    received = engine.history(codes["pending"])[0]
    assert received.kind is EventKind.RECEIVED
    assert received.detail["applicant"] == {"name": "Phạm Thị Trễ"}
    assert received.detail["resolving_agency"] == "AN-BINH-KT"
    assert received.detail["procedure"] == "2.000575" and received.detail["regime"]

    # The facts reports count were folded from each old dossier's log when it opened.
    assert_facts_follow_the_log(engine)
    finished = next(d for d in engine.dossiers() if d.code == codes["finished"])
    assert finished.resolved_at is not None
    assert finished.due_at == engine.sla(codes["finished"]).due_at is not None

    # The claimed task is still its holder's.
    claimed = engine.dossier(codes["claimed"]).open_tasks[0]
    assert claimed.claimed_by == "tn.an"
    assert [t.id for t in engine.inbox("tn.an")][:1] == [claimed.id]

    # The paused dossier is still paused; the prompt is still open with its deadline.
    assert engine.dossier(codes["paused"]).status is DossierStatus.SUPPLEMENT_REQUESTED
    assert engine.sla(codes["paused"]).paused
    prompt = engine.dossier(codes["prompt"]).open_tasks
    assert [t.step for t in prompt] == ["Task_Examine", "Task_ExplainDelay"]

    # The pending warning fires when it falls due (accepted 09:10: 3 h 36 min of working
    # time before Wednesday 09:10), not before.
    assert engine.next_timer_due() == at(2025, 7, 8, 15, 4)
    clock.set(at(2025, 7, 8, 15, 3))
    assert engine.fire_due_timers() == []
    clock.set(at(2025, 7, 8, 15, 4))
    assert [(f.dossier_code, f.step) for f in engine.fire_due_timers()] == \
        [(codes["pending"], "Timer_Apology")]

    # Every dossier runs to its end with this release.
    answers = {"Task_CheckDossier": [{"outcome": "accept"}],
               "Task_ExplainDelay": [{"will_be_late": "no"}],
               "Task_ReceiveResolutionSupplement": [{"supplemented": ["bien-ban-hop"]}]}
    for code in codes.values():
        clock.advance(minutes=5)
        drive(engine, code, answers)
        dossier = engine.dossier(code)
        assert dossier.status is DossierStatus.RESULT_RETURNED, (code, dossier.current_steps)
        assert dossier.finished_at is not None
    assert engine.fire_due_timers() == []


def test_an_upgraded_database_has_exactly_the_schema_of_a_new_one(
        previous_release, old_database, tmp_path):
    """The migrations and the table definitions cannot drift apart: a database upgraded
    from the previous release compares equal to the tables a new database gets."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from onestop.store import upgrade_schema
    from onestop.store.schema import metadata

    write_with_previous_release(previous_release, old_database, tmp_path)
    assert upgrade_schema(old_database) == ("0001", HEAD)
    sql = create_engine(old_database)
    try:
        with sql.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = [d for d in compare_metadata(context, metadata)
                           if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]
    finally:
        sql.dispose()
    assert differences == []


def test_a_database_written_by_a_newer_onestop_is_refused_by_name(sqlite_url, make_engine):
    make_engine(sqlite_url).close()
    sql = create_engine(sqlite_url)
    with sql.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9001'"))
    sql.dispose()
    with pytest.raises(StoreError, match="revision 9001, which this release of onestop "
                                         "does not know"):
        make_engine(sqlite_url)
    assert main(["db", "current", sqlite_url]) == 0       # shown, not changed
    assert revision(sqlite_url) == "9001"


def test_an_event_written_under_a_newer_schema_is_a_store_error(sqlite_url, make_engine):
    engine = make_engine(sqlite_url)
    engine.add_officer(STAFF[0])
    code = engine.receive("2.000575", applicant={"name": "A"}, components=["giay-de-nghi"],
                          officer="tn.an").code
    sql = create_engine(sqlite_url)
    with sql.begin() as conn:
        conn.execute(text("UPDATE onestop_events SET version = 9"))
    sql.dispose()
    with pytest.raises(StoreError, match="event schema 9 is newer"):
        engine.history(code)


def test_db_current_names_a_database_written_by_a_newer_onestop(sqlite_url, make_engine,
                                                                 capsys):
    make_engine(sqlite_url).close()
    sql = create_engine(sqlite_url)
    with sql.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9001'"))
    sql.dispose()
    assert main(["db", "current", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "written by a newer onestop" in out and "upgrade to" not in out


def test_db_commands_never_print_a_password():
    from onestop.cli import _shown_database

    shown = _shown_database("postgresql+psycopg://officer:s3cret@db.example/onestop")
    assert "s3cret" not in shown and "officer" in shown
