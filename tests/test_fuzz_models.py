"""Damaged models, by the hundred: loading never raises anything but a ModelError (or a
CatalogError), lint never crashes, and lint's verdict is the engine's.

The corpus is deterministic (seeded, see :mod:`tests.model_fuzz`): the shipped library,
the test libraries and the third-party files, each mutated one to three times (attributes
dropped, garbled or of the wrong type, elements dropped, duplicated, moved, renamed or
nested deeply, ids removed, references broken, expressions nested thousands deep, diagram
bounds that are not numbers). A mutated file is loaded the way the engine loads it —
alone with ``load_models``, or inside its library folder with ``load_library`` — and
linted the way a modeler lints it (the file, or the folder).
"""

from __future__ import annotations

import re
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from onestop.bpmn.loader import load_models
from onestop.errors import CatalogError, ModelError, OnestopError
from onestop.library import load_library
from onestop.modeling.lint import ERROR, LOAD, Finding, lint

from . import model_fuzz
from .model_fuzz import ROOT, mutants

DATA = ROOT / "tests" / "data"
SEED = 20251122
#: Mutants of files linted and loaded on their own.
LOOSE = 300
#: Mutants of a file inside a library folder (with its catalogue).
LIBRARY = 60
LINE = re.compile(r"^(?P<file>[^:]+):(?P<element>[^:]+): (?P<severity>error|warning): .+$")
#: Library folders, and the files of them that get mutated.
LIBRARIES = [(ROOT / "processes", "one_stop.bpmn"), (ROOT / "processes", "interlevel.bpmn"),
             (DATA / "modeler", "camunda7-household.bpmn"),
             (DATA / "reception", "reception.bpmn")]


@dataclass
class Verdict:
    """What the engine and lint made of one mutant."""

    label: str
    mutation: str
    refused: OnestopError | None
    crash: str | None
    findings: list[Finding]
    lint_crash: str | None

    def __str__(self) -> str:
        return f"{self.label} ({self.mutation})"


def _crash(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {str(exc)[:120]} (at {Path(where.filename).name}:" \
           f"{where.lineno} {where.name})"


def _judge(label: str, mutation: str, load, target: Path) -> Verdict:
    refused = crash = lint_crash = None
    try:
        load()
    except OnestopError as exc:
        refused = exc
    except Exception as exc:  # noqa: BLE001 - what the test looks for
        crash = _crash(exc)
    findings: list[Finding] = []
    try:
        findings = lint([target])
    except Exception as exc:  # noqa: BLE001 - what the test looks for
        lint_crash = _crash(exc)
    return Verdict(label, mutation, refused, crash, findings, lint_crash)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> list[Verdict]:
    tmp = tmp_path_factory.mktemp("fuzz")
    found = []
    loose = [s for s in model_fuzz.SOURCES if s.parent.name != "processes"] + [
        ROOT / "processes" / "standard.bpmn", ROOT / "processes" / "resolution.bpmn"]
    for label, source, mutation, data in mutants(SEED, LOOSE, loose):
        folder = tmp / label
        folder.mkdir()
        path = folder / source.name
        path.write_bytes(data)
        found.append(_judge(label, mutation, lambda p=path: load_models([p]), path))
    by_file = {folder / name: folder for folder, name in LIBRARIES}
    for label, source, mutation, data in mutants(SEED + 1, LIBRARY, list(by_file)):
        folder = tmp / label
        shutil.copytree(by_file[source], folder,
                        ignore=shutil.ignore_patterns("tables", "templates", "*.schema.json"))
        (folder / source.name).write_bytes(data)
        found.append(_judge(f"{label} in its library", mutation,
                            lambda f=folder: load_library(f), folder))
    return found


def test_loading_never_raises_anything_but_a_model_error(verdicts: list[Verdict]) -> None:
    crashes = [f"{v}: {v.crash}" for v in verdicts if v.crash]
    assert crashes == []
    assert all(isinstance(v.refused, (ModelError, CatalogError))
               for v in verdicts if v.refused)


def test_lint_never_crashes(verdicts: list[Verdict]) -> None:
    crashes = [f"{v}: {v.lint_crash}" for v in verdicts if v.lint_crash]
    internal = [f"{v}: {f}" for v in verdicts for f in v.findings
                if "internal error" in f.message]
    malformed = [f"{v}: {f}" for v in verdicts for f in v.findings if not LINE.match(str(f))]
    assert crashes == [] and internal == [] and malformed == []


def test_lint_has_an_error_exactly_when_the_engine_refuses(verdicts: list[Verdict]) -> None:
    """The property: the engine refuses the files iff lint reports an error of kind
    "load". (Lint may also report errors of kind "rule" or "run" on files the engine
    loads: one-stop rules the engine does not enforce, and dry-run failures.)"""
    disagree = []
    for verdict in verdicts:
        load_errors = [f for f in verdict.findings if f.severity == ERROR and f.kind == LOAD]
        if bool(verdict.refused) != bool(load_errors):
            disagree.append(f"{verdict}: engine: {verdict.refused or 'loads'}; lint: "
                            f"{[str(f) for f in load_errors][:3] or 'no load error'}")
    assert disagree == []
    # Not vacuous: the corpus has plenty of both.
    refused = sum(1 for v in verdicts if v.refused)
    assert 0.2 * len(verdicts) < refused < 0.9 * len(verdicts), refused


def test_lint_clean_means_the_engine_loads(verdicts: list[Verdict]) -> None:
    clean = [v for v in verdicts if not any(f.severity == ERROR for f in v.findings)]
    assert clean and [str(v) for v in clean if v.refused] == []
