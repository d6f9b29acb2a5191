"""The in-memory store behaves as a database would: engines on one ``memory://NAME`` share
it, ``memory://`` alone is private, and a unit that fails leaves nothing behind."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from onestop import VIETNAM_TZ, Officer, StoreError
from onestop.store import MemoryStore, open_store

from .conftest import drive, stored, with_staff

NOW = datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ)


def test_engines_on_one_name_share_the_store_and_an_unnamed_one_is_private(make_engine):
    name = f"memory://{uuid.uuid4().hex}"
    desk = with_staff(make_engine(name))
    code = desk.receive("2.000575", applicant={"name": "Đỗ Văn Lâm"},
                        components=["giay-de-nghi"], officer="tn.an").code
    other = make_engine(name)
    assert other.dossier(code).current_steps == ("Task_CheckDossier",)
    drive(other, code, stop_before="Task_Examine")
    assert desk.dossier(code).current_steps == ("Task_Examine",)

    private = with_staff(make_engine("memory://"))
    assert private.procedures()                          # a working engine ...
    assert list(private.events()) == []                  # ... with none of the others' data
    assert private.receive("2.000575", applicant={"name": "B"}, components=["giay-de-nghi"],
                           officer="tn.an").code.endswith("-0001")


def test_a_unit_that_fails_takes_back_everything_it_wrote(make_engine):
    engine = with_staff(make_engine(f"memory://{uuid.uuid4().hex}"))
    code = engine.receive("2.000575", applicant={"name": "Đỗ Văn Lâm"},
                          components=["giay-de-nghi"], officer="tn.an").code
    before = stored(engine)
    row = None
    with pytest.raises(RuntimeError):
        with engine._store.command() as unit:
            row = unit.dossier(code)
            unit.next_sequence("AN-BINH-MC:250707")
            unit.put_officer(Officer("x.y", "Người mới", {"AN-BINH-MC": ["leader"]}))
            unit.update_dossier(row.id, row.version, 4, b"state", NOW, NOW, None)
            task = unit.open_tasks(row.id)[0]
            unit.claim_task(task.id, "tn.an")
            unit.take_task(task.id, "tn.an")
            unit.insert_tasks([{"id": "t-1", "dossier_id": row.id, "step": "S", "role": "r",
                                "agency": "A", "claimed_by": None, "ready_at": NOW,
                                "due_at": None}])
            unit.insert_timers([{"id": "m-1", "dossier_id": row.id, "step": "T",
                                 "due_at": NOW}])
            unit.reschedule_timer("m-1", None)
            unit.append_events([{"dossier_id": row.id, "at": NOW, "kind": "claimed",
                                 "step": "S", "actor": "tn.an", "agency": "A",
                                 "detail": None, "version": 2}])
            raise RuntimeError("the command fails after writing")
    assert stored(engine) == before
    with engine._store.read() as unit:
        assert unit.officer("x.y") is None
        assert unit.next_timer_due() is None
    assert engine.dossier(code).current_steps == ("Task_CheckDossier",)


def test_what_a_caller_gets_back_cannot_change_what_is_stored(make_engine):
    engine = with_staff(make_engine(f"memory://{uuid.uuid4().hex}"))
    code = engine.receive("2.000575", applicant={"name": "Đỗ Văn Lâm"},
                          components=["giay-de-nghi"], officer="tn.an").code
    with engine._store.read() as unit:
        unit.dossier(code).info["applicant"]["name"] = "changed"
        unit.events(unit.dossier(code).id)[0].detail["procedure"] = "changed"
    assert engine.dossier(code).applicant == {"name": "Đỗ Văn Lâm"}
    assert engine.history(code)[0].detail["procedure"] == "2.000575"


def test_a_unit_of_another_thread_waits_no_longer_than_the_lock_timeout():
    store = open_store(f"memory://{uuid.uuid4().hex}", lock_timeout=0.05)
    assert isinstance(store, MemoryStore)
    outcome: list[BaseException | None] = []

    def read_elsewhere() -> None:
        try:
            with store.read():
                outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    with store.command():
        worker = threading.Thread(target=read_elsewhere)
        worker.start()
        worker.join()
    assert isinstance(outcome[0], StoreError) and "locked by another command" in \
        str(outcome[0])
    with store.read() as unit:                       # free again once the command ended
        assert unit.next_timer_due() is None


def test_within_a_command_its_thread_may_read_but_not_start_another_command():
    store = open_store(f"memory://{uuid.uuid4().hex}", lock_timeout=5)
    with store.command() as unit:
        unit.put_officer(Officer("x.y", "Người mới", {"AN-BINH-MC": ["leader"]}))
        with store.read() as reader:                 # a connector reading the engine
            assert reader.officer("x.y") is not None
        with pytest.raises(StoreError, match="cannot run inside another"):
            with store.command():
                pass


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_a_connector_may_read_through_the_engine_during_a_command(make_engine, tmp_path,
                                                                  backend):
    """A connector called by a service task asks the engine who an officer is: the read
    goes through, on SQLite and in memory alike."""
    url = f"sqlite:///{tmp_path / 'c.db'}" if backend == "sqlite" \
        else f"memory://{uuid.uuid4().hex}"
    seen: list[str] = []
    holder: list = []
    engine = make_engine(url, library=Path(__file__).parent / "data" / "reception",
                         lock_timeout=1, connectors={"data.reuse": lambda data: seen.append(
                             holder[0].officer("mc.anbinh").name)})
    holder.append(engine)
    engine.add_officer(Officer("mc.anbinh", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
    code = sorted(engine.library.catalog.procedures)[0]
    engine.receive(code, applicant={"name": "Lê Thị Hà"}, officer="mc.anbinh")
    assert seen == ["Trần Ngọc An"]


def test_an_officer_read_back_cannot_change_the_stored_one(make_engine):
    engine = with_staff(make_engine(f"memory://{uuid.uuid4().hex}"))
    engine.officer("tn.an").roles["AN-BINH-KT"] = frozenset({"leader"})
    assert "AN-BINH-KT" not in engine.officer("tn.an").roles


def test_an_engine_takes_a_store_as_it_takes_a_clock(make_engine):
    store = MemoryStore()
    engine = with_staff(make_engine(store))
    code = engine.receive("2.000575", applicant={"name": "Đỗ Văn Lâm"},
                          components=["giay-de-nghi"], officer="tn.an").code
    with store.read() as unit:
        assert unit.dossier(code).procedure == "2.000575"


def test_both_stores_offer_every_operation_of_the_store_interface_alike():
    """The SQL and memory units implement the Unit protocol method for method, with the
    same parameters, so neither can drift from the interface the engine uses."""
    import inspect

    from onestop.store.memory import MemoryUnit
    from onestop.store.rows import Unit
    from onestop.store.sql import SqlUnit

    operations = {name for name, value in vars(Unit).items()
                  if callable(value) and not name.startswith("_")}
    assert {"dossier", "task_for", "event_stream", "next_timer_due", "update_dossier",
            "append_events"} <= operations
    for implementation in (SqlUnit, MemoryUnit):
        for name in sorted(operations):
            expected = list(inspect.signature(getattr(Unit, name)).parameters)
            found = getattr(implementation, name, None)
            assert found is not None, f"{implementation.__name__} lacks {name}"
            assert list(inspect.signature(found).parameters) == expected, \
                f"{implementation.__name__}.{name}"
