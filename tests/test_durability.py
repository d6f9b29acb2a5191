"""Durability: restart in another process, spec stored once, model versions pinned."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
import zlib
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select

from onestop import VIETNAM_TZ, DossierStatus, EventKind, ManualClock
from onestop.store.schema import dossiers, specs

from .conftest import STAFF, drive, stored, with_staff

ROOT = Path(__file__).resolve().parent.parent


def test_restart_in_a_separate_process_continues_the_dossier(make_engine, sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    for officer in STAFF:
        engine.add_officer(officer)
    code = engine.receive("2.000575", applicant={"name": "Đỗ Văn Lâm"},
                          components=["giay-de-nghi"], officer="tn.an").code
    drive(engine, code, stop_before="Task_Examine")
    engine.close()

    script = tmp_path / "other_process.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        from datetime import datetime
        from onestop import Engine, ManualClock, VIETNAM_TZ
        clock = ManualClock(datetime(2025, 7, 8, 9, 0, tzinfo=VIETNAM_TZ))
        engine = Engine({sqlite_url!r}, clock=clock)
        task = engine.inbox("lv.binh")[0]
        dossier = engine.complete(task.id, "lv.binh", {{"verdict": "approve",
                                                      "note": "Đủ điều kiện"}})
        print(json.dumps({{"task": task.step, "status": int(dossier.status),
                          "now": list(dossier.current_steps)}}))
        engine.close()
    """), encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"task": "Task_Examine", "status": 4, "now": ["Task_Approve"]}

    reopened = make_engine(sqlite_url)
    dossier = reopened.dossier(code)
    assert dossier.current_steps == ("Task_Approve",)
    examined = [e for e in reopened.history(code)
                if e.kind is EventKind.COMPLETED and e.step == "Task_Examine"][0]
    assert examined.actor == "lv.binh" and examined.detail == {"verdict": "approve",
                                                     "note": "Đủ điều kiện"}
    assert examined.at.isoformat() == "2025-07-08T09:00:00+07:00"
    drive(reopened, code)
    assert reopened.dossier(code).status is DossierStatus.RESULT_RETURNED


def test_each_spec_is_stored_once_not_inside_every_dossier(make_engine, sql_database):
    engine = with_staff(make_engine(sql_database))
    codes = [engine.receive("2.000575", applicant={"name": f"Người nộp {i}"},
                            components=["giay-de-nghi"], officer="tn.an").code for i in range(12)]
    drive(engine, codes[0], stop_before="Task_Approve")
    sql = create_engine(sql_database)
    with sql.connect() as conn:
        # One row per model of the library, however many dossiers use it.
        assert conn.execute(select(func.count()).select_from(specs)).scalar() == \
            len(engine.library.models)
        states = conn.execute(select(dossiers.c.state)).scalars().all()
        # The dictionary the states are compressed with is stored with the model.
        dictionary = conn.execute(select(specs.c.dictionary).where(
            specs.c.hash == engine.library.models["standard"].spec_hash)).scalar_one()
    sql.dispose()
    assert len(states) == 12
    for state in states:
        unpacker = zlib.decompressobj(15, dictionary)   # compressed with the model's words
        document = json.loads(unpacker.decompress(state) + unpacker.flush())
        assert "spec" not in document and "subprocess_specs" not in document
        assert "task_specs" not in json.dumps(document)
        assert len(state) < 1400


def _library_copy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(ROOT / "processes", folder)
    return folder


def test_dossier_keeps_its_model_version_when_a_new_one_is_loaded(make_engine, sqlite_url,
                                                                  tmp_path):
    v1 = _library_copy(tmp_path, "v1")
    engine = make_engine(sqlite_url, library=v1)
    for officer in STAFF:
        engine.add_officer(officer)
    old = engine.receive("2.000575", applicant={"name": "Mai"}, components=["giay-de-nghi"],
                         officer="tn.an")
    engine.close()

    # Version 2 skips digitization: accepted dossiers go straight to transfer.
    v2 = _library_copy(tmp_path, "v2")
    model = (v2 / "standard.bpmn").read_text(encoding="utf-8")
    model = model.replace('sourceRef="Event_Accepted" targetRef="Task_Digitize"',
                          'sourceRef="Event_Accepted" targetRef="Task_Transfer"')
    model = model.replace('<bpmn:incoming>Flow_Digitize_Transfer</bpmn:incoming>',
                          '<bpmn:incoming>Flow_Accepted_Digitize</bpmn:incoming>', 1)
    (v2 / "standard.bpmn").write_text(model, encoding="utf-8")
    engine = make_engine(sqlite_url, library=v2)
    new = engine.receive("2.000575", applicant={"name": "Lan"}, components=["giay-de-nghi"],
                         officer="tn.an")
    assert new.spec_hash != old.spec_hash
    assert engine.dossier(old.code).spec_hash == old.spec_hash

    for code in (old.code, new.code):
        task = engine.dossier(code).open_tasks[0]
        engine.complete(task.id, "tn.an", {"outcome": "accept"})
    assert engine.dossier(old.code).current_steps == ("Task_Digitize",)
    assert engine.dossier(new.code).current_steps == ("Task_Transfer",)
    drive(engine, old.code)
    assert engine.dossier(old.code).status is DossierStatus.RESULT_RETURNED

    sql = create_engine(sqlite_url)
    with sql.connect() as conn:
        # The changed model is stored beside the old one; the others are unchanged.
        assert conn.execute(select(func.count()).select_from(specs)).scalar() == \
            len(engine.library.models) + 1
    sql.dispose()


def _number_ids(text: str) -> str:
    """``text`` with each task id (and a workflow's task-id prefix) replaced by its
    number in order of appearance."""
    seen: dict[str, str] = {}
    return re.sub(r"[0-9a-f]{32}|[0-9a-f-]{36}|[0-9a-f]{24}",
                  lambda m: seen.setdefault(m.group(), f"T{len(seen)}"), text)


def _states_without_task_ids(engine) -> list[str]:
    """Each stored workflow state, decompressed, its task ids numbered in order of
    appearance (the one thing in a state that is random by design)."""
    dossiers = stored(engine)[1]
    with engine._store.read() as unit:
        specs_used = {}
        texts = []
        for dossier in dossiers:
            spec = specs_used.get(dossier["spec_id"]) or unit.spec(dossier["spec_id"])
            specs_used[dossier["spec_id"]] = spec
            unpacker = zlib.decompressobj(15, spec.dictionary)
            text = (unpacker.decompress(dossier["state"]) + unpacker.flush()).decode()
            texts.append(_number_ids(text))
    return texts


def test_a_stored_state_depends_on_the_inputs_and_the_engines_clock_only(make_engine):
    """Two runs of the same dossiers at the same engine instants store the same states
    (task ids aside), whatever the wall clock says and whether the workflow came from the
    cache or was restored from the store: SpiffWorkflow's wall-clock stamps stay out."""
    runs = []
    for cache_size in (512, 0):
        clock = ManualClock(datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ))
        engine = with_staff(make_engine(f"memory://{uuid.uuid4().hex}", clock=clock,
                                        cache_size=cache_size))
        codes = [engine.receive("2.000575", applicant={"name": f"Người nộp {i}"},
                                components=["giay-de-nghi"], officer="tn.an").code
                 for i in range(3)]
        for n, code in enumerate(codes):
            clock.advance(hours=1)
            drive(engine, code, stop_before=("Task_Approve", "Task_ReturnResult")[n % 2])
        runs.append(_states_without_task_ids(engine))
    assert runs[0] == runs[1]
    assert all('"format":4' in text for text in runs[0])
