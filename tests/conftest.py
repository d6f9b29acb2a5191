"""Shared fixtures: a manual clock, engines on SQLite (and PostgreSQL when CI provides
one through ONESTOP_TEST_POSTGRES), and the staff of the shipped catalogue."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest
from lxml import etree

from onestop import VIETNAM_TZ, Engine, ManualClock, Officer
from onestop.modeling.diagram import overlaps

DATA = Path(__file__).parent / "data"
POSTGRES_URL = os.environ.get("ONESTOP_TEST_POSTGRES")

STAFF = [
    Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}),
    Officer("lv.binh", "Lê Văn Bình", {"AN-BINH-KT": ["specialist"]}),
    Officer("pq.cuong", "Phạm Quốc Cường", {"AN-BINH-KT": ["leader"]}),
    Officer("dt.dung", "Đặng Thùy Dung", {"AN-BINH-TP": ["specialist"]}),
    Officer("ttpv.lan", "Ngô Thị Lan", {"TINH-TTPVHCC": ["receiving_officer"]}),
]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each skip reason once, with its count (pyproject's ``-rfE`` lists failures and
    errors only): ``58 skipped: no PostgreSQL server (set ONESTOP_TEST_POSTGRES; ...)``."""
    if "s" in getattr(terminalreporter, "reportchars", ""):
        return  # -rs / -ra already lists every skip
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 \
            else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count} skipped: {reason}")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ))


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    from onestop.store.migrate import VERSION_TABLE
    from onestop.store.schema import metadata

    sql = create_engine(url)
    metadata.drop_all(sql)
    with sql.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    sql.dispose()


def _fresh(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'onestop.db'}"
    if backend == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server (set ONESTOP_TEST_POSTGRES; .ci/run does)")
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each backend: SQLite, PostgreSQL (when the machine has
    one) and memory (a ``memory://`` name of its own)."""
    return _fresh(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty SQL database, for tests that look at the tables themselves."""
    return _fresh(request.param, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'onestop.db'}"


@pytest.fixture
def make_engine(clock: ManualClock) -> Iterator[Callable[..., Engine]]:
    opened: list[Engine] = []

    def make(database: str, **kwargs: object) -> Engine:
        kwargs.setdefault("clock", clock)
        engine = Engine(database, **kwargs)  # type: ignore[arg-type]
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


def stored(engine: Engine) -> tuple:
    """Everything ``engine``'s store holds about dossiers, read through the store's own
    interface (so it works on every backend): the event log, each dossier's columns and
    state, its open tasks and the scheduled timers."""
    from onestop.store import EventQuery

    with engine._store.read() as unit:
        log = unit.event_stream(EventQuery(limit=0))
        ids = sorted({e.dossier_id for e in log})
        rows = [unit.dossier_by_id(i) for i in ids]
        dossiers = [r.dossier() if r is not None else None for r in rows]
        open_tasks = [unit.open_tasks(i) for i in ids]
        timers = unit.due_timers(datetime(9999, 1, 1, tzinfo=VIETNAM_TZ), None, 1_000_000)
    return log, dossiers, open_tasks, timers


def stored_dossiers(engine: Engine) -> int:
    """How many dossiers ``engine``'s store holds (each has its ``received`` event)."""
    from onestop.store import EventQuery

    with engine._store.read() as unit:
        return len(unit.event_stream(EventQuery(kinds=("received",), limit=0)))


def with_staff(engine: Engine, staff: Sequence[Officer] = STAFF) -> Engine:
    """``engine`` with ``staff`` registered."""
    for officer in staff:
        engine.add_officer(officer)
    return engine


@pytest.fixture
def engine(make_engine: Callable[..., Engine], database: str) -> Engine:
    """An engine on the shipped library with the test staff registered."""
    return with_staff(make_engine(database))


def drive(engine: Engine, code: str, answers: dict[str, list[dict]] | None = None,
          stop_before: str | tuple[str, ...] = (), staff: Sequence[Officer] = STAFF
          ) -> list[str]:
    """Let ``staff`` complete the dossier's steps in order, answering forms from
    ``answers`` (each step's replies used in turn), until none is open or the next is
    one of ``stop_before``; returns the steps done."""
    stops = (stop_before,) if isinstance(stop_before, str) else stop_before
    answers = answers or {"Task_CheckDossier": [{"outcome": "accept"}]}
    queue = {k: list(v) for k, v in answers.items()}
    usual = {"Task_Examine": {"verdict": "approve"}}
    done: list[str] = []
    for _ in range(50):
        dossier = engine.dossier(code)
        if not dossier.open_tasks or dossier.open_tasks[0].step in stops:
            return done
        task = dossier.open_tasks[0]
        officer = next(o.id for o in staff if o.has_role(task.agency, task.role))
        replies = queue.get(task.step)
        engine.complete(task.id, officer, replies.pop(0) if replies else usual.get(task.step, {}))
        done.append(task.step)
    raise AssertionError("dossier did not finish in 50 steps")


BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
DI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
DC = "{http://www.omg.org/spec/DD/20100524/DC}"


def assert_well_drawn(xml: bytes) -> None:
    """What a designer sees on opening the file in a modeler: every element drawn, no
    two flow nodes on top of each other, every flow node inside its lane."""
    root = etree.fromstring(xml)
    elements = {e.get("id") for e in root.iter() if isinstance(e.tag, str)
                and e.tag.startswith(BPMN) and e.get("id")
                and etree.QName(e).localname not in ("process", "collaboration", "message",
                                                      "definitions", "laneSet")
                and not etree.QName(e).localname.endswith("EventDefinition")}
    drawn = {e.get("bpmnElement") for e in root.iter(f"{DI}BPMNShape", f"{DI}BPMNEdge")}
    assert elements <= drawn, elements - drawn
    flow_nodes, boxes = [], []
    for shape in root.iter(f"{DI}BPMNShape"):
        element = root.xpath(f"//*[@id='{shape.get('bpmnElement')}']")[0]
        local = etree.QName(element).localname
        if local in ("participant", "lane", "boundaryEvent"):
            continue
        bounds = shape.find(f"{DC}Bounds")
        flow_nodes.append(shape.get("bpmnElement"))
        boxes.append(tuple(float(bounds.get(k)) for k in ("x", "y", "width", "height")))
    assert overlaps(boxes) == []
    lanes = {}
    for lane in root.iter(f"{BPMN}lane"):
        bounds = root.xpath(f"//*[@bpmnElement='{lane.get('id')}']")[0].find(f"{DC}Bounds")
        box = tuple(float(bounds.get(k)) for k in ("x", "y", "width", "height"))
        for ref in lane.iterfind(f"{BPMN}flowNodeRef"):
            lanes[ref.text] = box
    for node, (x, y, w, h) in zip(flow_nodes, boxes, strict=True):
        lx, ly, lw, lh = lanes[node]
        assert lx <= x and x + w <= lx + lw and ly <= y and y + h <= ly + lh, node
