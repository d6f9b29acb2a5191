"""Models do not run arbitrary Python, and XML is parsed without entities."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from onestop import Engine, ModelError, Officer, UnsafeModelError, load_library
from onestop.bpmn.sandbox import Sandbox, check

from .conftest import DATA


def test_script_with_an_import_is_refused_at_load(tmp_path):
    shutil.copy(DATA / "script_import.bpmn", tmp_path)
    with pytest.raises(UnsafeModelError) as refused:
        load_library(tmp_path, catalog=DATA / "script_catalog.json")
    error = refused.value
    assert error.element == "Script_Steal" and error.file.endswith("script_import.bpmn")
    assert "imports are not allowed" in str(error)


@pytest.mark.parametrize("name", ["xxe.bpmn", "billion_laughs.bpmn"])
def test_xml_declaring_entities_is_refused(tmp_path, name):
    shutil.copy(DATA / name, tmp_path / name)
    with pytest.raises(UnsafeModelError) as refused:
        load_library(tmp_path)
    assert name in str(refused.value) and "entities" in str(refused.value)
    assert "root:" not in str(refused.value)  # nothing of /etc/passwd leaks into messages


def test_condition_reaching_for_dunders_is_refused_at_load(tmp_path):
    shutil.copy(DATA / "dunder_condition.bpmn", tmp_path)
    with pytest.raises(UnsafeModelError) as refused:
        load_library(tmp_path)
    assert refused.value.element == "Gateway_Escape"
    assert "__class__" in str(refused.value)


@pytest.mark.parametrize("source, why", [
    ("__import__('os').system('id')", "name '__import__'"),
    ("open('/etc/passwd').read()", "calling 'open'"),
    ("getattr(x, 'y')", "calling 'getattr'"),
    ("eval('1')", "calling 'eval'"),
    ("'{0.__class__}'.format(x)", "attribute 'format'"),
    ("(lambda: 1)()", "lambdas"),
    ("x.gi_frame", "attribute 'gi_frame'"),
    ("[c for c in ().__class__.__mro__]", "attribute '__(class|mro)__'"),
])
def test_sandbox_refuses_escapes(source, why):
    with pytest.raises(UnsafeModelError, match=why):
        check(source, "eval")


@pytest.mark.parametrize("script, why", [
    ("import os", "imports"),
    ("from os import path", "imports"),
    ("def f():\n    return 1", "defining functions"),
    ("while True:\n    pass", "while loops"),
    ("class A:\n    pass", "defining classes"),
    ("global x", "global"),
])
def test_sandbox_refuses_statements(script, why):
    with pytest.raises(UnsafeModelError, match=why):
        check(script, "exec")


def test_sandbox_evaluates_ordinary_conditions_and_scripts():
    sandbox = Sandbox()
    data = {"outcome": "accept", "components": ["to-khai", "ban-sao"], "pages": 5}
    assert sandbox.evaluate('outcome == "accept" and len(components) >= 2', data) is True
    assert sandbox.evaluate("'ban-sao' in components", data) is True
    assert sandbox.evaluate("{'a': 1}.get('b', 'mặc định')", data) == "mặc định"
    sandbox.execute("fee = 2000 * min(pages, 2) + 1000 * max(pages - 2, 0)\n"
                    "names = [c.upper() for c in components]", data)
    assert data["fee"] == 7000 and data["names"] == ["TO-KHAI", "BAN-SAO"]
    with pytest.raises(ModelError, match="cannot be stored"):
        sandbox.execute("bad = set()", data)


def test_model_scripts_and_conditions_run_in_the_sandbox(tmp_path, sqlite_url, clock):
    shutil.copy(DATA / "script_task.bpmn", tmp_path)
    shutil.copy(DATA / "script_catalog.json", tmp_path / "catalog.json")
    engine = Engine(sqlite_url, library=tmp_path, clock=clock)
    try:
        engine.add_officer(Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
        code = engine.receive("2.000815", applicant={"name": "A"}, components=["ban-sao"],
                              officer="tn.an").code
        count = engine.inbox("tn.an")[0]
        assert count.step == "Task_Count"            # role from the lane's name
        dossier = engine.complete(count.id, "tn.an", {"pages": 4})
        assert dossier.current_steps == ("Task_Collect",)   # fee 6000 > 0, in person
        dossier = engine.complete(dossier.open_tasks[0].id, "tn.an")
        assert dossier.finished and int(dossier.status) == 10
    finally:
        engine.close()
    assert code


def test_a_runtime_failure_in_a_model_is_a_clear_error_and_stores_nothing(tmp_path, sqlite_url,
                                                                          clock):
    shutil.copy(DATA / "script_task.bpmn", tmp_path)
    shutil.copy(DATA / "script_catalog.json", tmp_path / "catalog.json")
    engine = Engine(sqlite_url, library=tmp_path, clock=clock)
    try:
        engine.add_officer(Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
        code = engine.receive("2.000815", applicant={"name": "A"}, components=["ban-sao"],
                              officer="tn.an").code
        task = engine.inbox("tn.an")[0]
        from onestop import ProcessError
        with pytest.raises(ProcessError) as failed:
            engine.complete(task.id, "tn.an", {"pages": "bốn"})   # int("bốn") fails
        assert failed.value.dossier == code and failed.value.element == "Script_Fee"
        assert engine.dossier(code).current_steps == ("Task_Count",)
        assert len(engine.history(code)) == 2
        dossier = engine.complete(task.id, "tn.an", {"pages": 1})
        assert dossier.current_steps == ("Task_Collect",)
    finally:
        engine.close()


def test_library_files_are_not_read_through_entities(tmp_path):
    # Even a well-formed model is read with a parser that never loads external files.
    from onestop.bpmn.xml import parse_xml
    root = parse_xml((Path(__file__).parent.parent / "processes" / "standard.bpmn").read_bytes(),
                     "standard.bpmn")
    assert root.getroottree().docinfo.internalDTD is None
