"""A dossier's stored workflow state is always the whole truth: what an engine writes
after a command is exactly what encoding the workflow from scratch gives, whatever the
process shape (multi-instance activities, loops, parallel branches, sub-processes,
nested data changed in place), and a restored workflow goes on as the cached one would."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest

from onestop import VIETNAM_TZ, Engine, ManualClock, Officer
from onestop.bpmn.serialization import dump_state

from .conftest import STAFF

SHAPES = Path(__file__).parent / "data" / "shapes"
DESK = Officer("an", "Trần An", {"AN-BINH-MC": ["receiving_officer"]})


def open_engine(make_engine, library=SHAPES, **kwargs) -> Engine:
    clock = ManualClock(datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ))
    engine = make_engine(f"memory://{uuid.uuid4().hex}", library=library, clock=clock,
                         **kwargs)
    engine.add_officer(DESK)
    return engine


def assert_stored_as_whole(engine: Engine) -> None:
    """Every cached workflow's next state equals its encoding from scratch."""
    for _version, instance in list(engine._instances.values()):
        incremental = instance.dump()
        whole = dump_state(instance._workflow, instance._stamps, None, instance._dictionary)
        assert incremental == whole


@pytest.mark.parametrize("procedure, answers", [
    ("9.000001", {"T_Opinion": [{"opinion": "thứ nhất"}, {"opinion": "thứ hai"}]}),
    ("9.000002", {"T_Try": [{"done": "yes"}, {"done": "yes"}, {"done": "no"}]}),   # a loop
    ("9.000003", {"T_A": [{"note": "A"}], "T_B": [{"note": "B"}]}),              # parallel
    ("9.000011", {}),                                                           # nested data
], ids=["multi-instance", "loop", "parallel", "nested"])
def test_each_command_stores_what_encoding_the_workflow_afresh_gives(make_engine, procedure,
                                                                      answers):
    engine = open_engine(make_engine)
    dossier = engine.receive(procedure, applicant={"name": "Lê Thị Hà"}, officer="an")
    assert_stored_as_whole(engine)
    for _ in range(10):
        if not dossier.open_tasks:
            break
        task = dossier.open_tasks[0]
        queue = answers.get(task.step, [])
        dossier = engine.complete(task.id, "an", queue.pop(0) if queue else {})
        assert_stored_as_whole(engine)
    assert dossier.finished_at is not None


def test_the_shipped_models_store_what_encoding_afresh_gives(make_engine):
    engine = open_engine(make_engine, library=None)
    for officer in STAFF:
        engine.add_officer(officer)
    code = engine.receive("2.000575", applicant={"name": "Lê Thị Hà"},
                          components=["giay-de-nghi"], officer="tn.an").code
    for _ in range(8):
        dossier = engine.dossier(code)
        if not dossier.open_tasks:
            break
        task = dossier.open_tasks[0]
        clerk = next(o.id for o in STAFF if o.has_role(task.agency, task.role))
        data = {"Task_CheckDossier": {"outcome": "accept"},
                "Task_Examine": {"verdict": "approve"}}.get(task.step, {})
        engine.complete(task.id, clerk, data)
        assert_stored_as_whole(engine)


@pytest.mark.parametrize("cache_size", [512, 0])
def test_nested_data_a_script_changed_in_place_survives_a_restart(make_engine, cache_size):
    """A script sets info["a"]["n"] = 2 on data shared (one level deep) with the tasks
    before it; after the engine forgets the workflow, the gateway still sees 2."""
    engine = open_engine(make_engine, cache_size=cache_size)
    dossier = engine.receive("9.000011", applicant={"name": "Lê Thị Hà"}, officer="an")
    dossier = engine.complete(dossier.open_tasks[0].id, "an")        # then the script
    engine._instances.clear()                                        # a restart
    dossier = engine.complete(dossier.open_tasks[0].id, "an")        # then the gateway
    assert [t.step for t in dossier.open_tasks] == ["T_Yes"]
