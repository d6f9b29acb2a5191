"""Cost of one full standard-process lifecycle, onestop vs. raw SpiffWorkflow.

Ours: Engine on a SQLite file: receive, then complete the six tasks of the standard
process (check, digitize, transfer, examine, approve, return), each command one
transaction that writes the dossier, its task rows and its event log.

Peer baseline, in the same run, on the same model and the same SQLite settings (WAL,
synchronous=FULL): raw SpiffWorkflow running processes/standard.bpmn, serializing the
whole workflow to JSON with its stock serializer after every task and saving that blob
in one row (one commit per save: the start and each task).

The floor, in the same run: raw SpiffWorkflow running the same lifecycle in memory (no
serialization at all) plus the same number of fsynced SQLite commits (seven, each writing
one small row): what any durable engine on this library and this disk must spend. Goal:
ours / floor <= 1.5. Every database is timed with its write-ahead log in the steady
state (see steady_wal).

Also measured: the same lifecycle on the in-memory store (``memory://``: the engine's own
work without a database), and stored bytes per in-flight dossier (file size / dossiers,
with 1,000 dossiers waiting at the specialist's step), for ours and for the baseline.

Usage: python bench/engine.py [--lifecycles 200] [--inflight 1000]
The last line printed is one JSON object with the figures and ratios.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/calendar.py would shadow the standard library's calendar module (imported by
# SpiffWorkflow and holidays): run without this folder on the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime  # noqa: E402

from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402

from onestop import VIETNAM_TZ, Engine, ManualClock, Officer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "processes" / "standard.bpmn"
ANSWERS = {"Task_CheckDossier": {"outcome": "accept"}, "Task_Examine": {"verdict": "approve"}}
STAFF = [
    Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}),
    Officer("lv.binh", "Lê Văn Bình", {"AN-BINH-KT": ["specialist"]}),
    Officer("pq.cuong", "Phạm Quốc Cường", {"AN-BINH-KT": ["leader"]}),
]
WHO = {("AN-BINH-MC", "receiving_officer"): "tn.an", ("AN-BINH-KT", "specialist"): "lv.binh",
       ("AN-BINH-KT", "leader"): "pq.cuong"}
APPLICANT = {"name": "Nguyễn Thị Hoa", "id_number": "079190001234",
             "address": "Ấp Phú Hòa, xã An Bình"}


# -- ours --------------------------------------------------------------------------
class Ours:
    def __init__(self, folder: Path | None) -> None:
        self.path = folder / "onestop.db" if folder is not None else None
        self.clock = ManualClock(datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ))
        self.engine = Engine(str(self.path) if self.path else "memory://", clock=self.clock)
        for officer in STAFF:
            self.engine.add_officer(officer)

    def receive(self):
        return self.engine.receive("2.000575", applicant=APPLICANT,
                                   components=["giay-de-nghi"], officer="tn.an")

    def step(self, dossier):
        task = dossier.open_tasks[0]
        return self.engine.complete(task.id, WHO[(task.agency, task.role)],
                                    ANSWERS.get(task.step, {}))

    def lifecycle(self) -> None:
        dossier = self.receive()
        while dossier.open_tasks:
            dossier = self.step(dossier)
        assert int(dossier.status) == 10

    def close(self) -> None:
        self.engine.close()


# -- peer baseline -------------------------------------------------------------------
class Baseline:
    def __init__(self, folder: Path) -> None:
        parser = SpiffBpmnParser()
        parser.add_bpmn_file(str(MODEL))
        self.spec = parser.get_spec("standard")
        self.subprocesses = parser.get_subprocess_specs("standard")
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.path = folder / "baseline.db"
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE workflow (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")

    def _save(self, row_id: int | None, workflow: BpmnWorkflow) -> int:
        blob = self.serializer.serialize_json(workflow)
        self.db.execute("BEGIN")
        if row_id is None:
            row_id = self.db.execute("INSERT INTO workflow (state) VALUES (?)", (blob,)).lastrowid
        else:
            self.db.execute("UPDATE workflow SET state = ? WHERE id = ?", (blob, row_id))
        self.db.execute("COMMIT")
        return row_id

    def start(self) -> tuple[int, BpmnWorkflow]:
        workflow = BpmnWorkflow(self.spec, self.subprocesses)
        # The late path's instants: onestop computes them from the appointment; raw
        # SpiffWorkflow gets them as data, far enough ahead that it waits as ours does.
        workflow.task_tree.data.update({"procedure": "2.000575", "channel": 1,
                                        "components": ["giay-de-nghi"],
                                        "apology_warning": "2099-12-30T17:00:00+07:00",
                                        "apology_overdue": "2099-12-31T17:00:00+07:00"})
        workflow.do_engine_steps()
        return self._save(None, workflow), workflow

    def step(self, row_id: int, workflow: BpmnWorkflow) -> bool:
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if not ready:
            return False
        task = ready[0]
        task.data.update(ANSWERS.get(task.task_spec.bpmn_id, {}))
        task.run()
        workflow.do_engine_steps()
        self._save(row_id, workflow)
        return True

    def lifecycle(self) -> None:
        row_id, workflow = self.start()
        while self.step(row_id, workflow):
            pass
        assert workflow.is_completed()

    def close(self) -> None:
        self.db.close()


# -- the floor ------------------------------------------------------------------------
class Floor(Baseline):
    """Raw SpiffWorkflow in memory, plus one fsynced SQLite commit per engine command:
    the baseline's lifecycle, with each save replaced by a commit of one small row."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.db.execute("CREATE TABLE commits (id INTEGER PRIMARY KEY, step TEXT NOT NULL)")

    def _save(self, row_id: int | None, workflow: BpmnWorkflow) -> int:
        self.db.execute("BEGIN")
        self.db.execute("INSERT INTO commits (step) VALUES (?)",
                        (workflow.last_task.task_spec.name if workflow.last_task else "",))
        self.db.execute("COMMIT")
        return row_id or 0


def steady_wal(path: Path) -> None:
    """Bring a database's write-ahead log to its steady size before timing.

    A new WAL file grows with every commit until the first checkpoint (at 1,000 pages),
    and a commit that grows a file costs its fsync more than one that overwrites: a run
    writing one page per commit (the floor) would be timed while its log still grows,
    the others (ten pages per commit and more) after theirs has wrapped. A long-running
    database is in the steady state, so every run is timed there: the log is grown past
    the checkpoint once, by a table kept apart."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS bench_wal_pad (blob BLOB)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO bench_wal_pad VALUES (?)",
                   [(bytes(3_000),) for _ in range(1_600)])
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(RESTART)")
    db.close()


def file_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    size = pages * db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return size


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--lifecycles", type=int, default=200)
    args.add_argument("--inflight", type=int, default=1000)
    options = args.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("o", "b", "f", "so", "sb"):
            (folder / name).mkdir()
        ours, baseline, floor = Ours(folder / "o"), Baseline(folder / "b"), Floor(folder / "f")
        runs = {"ours": ours, "baseline": baseline, "floor": floor}
        for _ in range(10):  # warm up caches and the file systems
            for run in runs.values():
                run.lifecycle()
        for path in (ours.path, baseline.path, floor.path):
            assert path is not None
            steady_wal(path)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(options.lifecycles):  # interleaved so drift hits all alike
            for name, run in runs.items():
                started = time.perf_counter()
                run.lifecycle()
                times[name].append((time.perf_counter() - started) * 1000)
        for run in runs.values():
            run.close()
        ours_ms, base_ms = times["ours"], times["baseline"]
        # The in-memory store, on its own afterwards: the dossiers it keeps would make the
        # interpreter's garbage collector slower for the three runs above.
        memory = Ours(None)
        for _ in range(10):
            memory.lifecycle()
        times["memory"] = []
        for _ in range(options.lifecycles):
            started = time.perf_counter()
            memory.lifecycle()
            times["memory"].append((time.perf_counter() - started) * 1000)
        memory.close()

        # Storage: dossiers waiting at the specialist's step (receive, check, digitize, transfer).
        ours, baseline = Ours(folder / "so"), Baseline(folder / "sb")
        empty_ours, empty_base = file_bytes(ours.path), file_bytes(baseline.path)
        for _ in range(options.inflight):
            dossier = ours.receive()
            for _ in range(3):
                dossier = ours.step(dossier)
            assert dossier.current_steps == ("Task_Examine",)
            row_id, workflow = baseline.start()
            for _ in range(3):
                baseline.step(row_id, workflow)
        ours.close()
        baseline.close()
        ours_bytes = (file_bytes(ours.path) - empty_ours) / options.inflight
        base_bytes = (file_bytes(baseline.path) - empty_base) / options.inflight

    ours_median = statistics.median(ours_ms)
    base_median = statistics.median(base_ms)
    floor_median = statistics.median(times["floor"])
    memory_median = statistics.median(times["memory"])
    result = {
        "benchmark": "engine_lifecycle",
        "lifecycles": options.lifecycles,
        "commits_per_lifecycle": 7,
        "ours_median_ms": round(ours_median, 3),
        "baseline_median_ms": round(base_median, 3),
        "ratio": round(ours_median / base_median, 3),
        "goal_ratio_max": 1.0,
        "floor_median_ms": round(floor_median, 3),
        "ours_over_floor": round(ours_median / floor_median, 3),
        "goal_ours_over_floor_max": 1.5,
        "memory_store_median_ms": round(memory_median, 3),
        "ours_p90_ms": round(statistics.quantiles(ours_ms, n=10)[-1], 3),
        "baseline_p90_ms": round(statistics.quantiles(base_ms, n=10)[-1], 3),
        "inflight_dossiers": options.inflight,
        "ours_bytes_per_inflight_dossier": round(ours_bytes),
        "baseline_bytes_per_inflight_dossier": round(base_bytes),
        "goal_bytes_max": 4096,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(f"ours      median {ours_median:.2f} ms per lifecycle (7 transactions)")
    print(f"baseline  median {base_median:.2f} ms per lifecycle (7 JSON saves)")
    print(f"floor     median {floor_median:.2f} ms per lifecycle (SpiffWorkflow in memory "
          f"+ 7 fsynced commits): ours / floor {ours_median / floor_median:.2f}")
    print(f"memory    median {memory_median:.2f} ms per lifecycle (the in-memory store)")
    print(f"stored per in-flight dossier: ours {ours_bytes:.0f} B, baseline {base_bytes:.0f} B")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
