"""One `fire_due_timers()` sweep: 100 due timers among 1,000 vs among 100,000 open dossiers.

Goal: the two sweep times within 1.5x of each other. A timer event waiting in a dossier's
process is a row of `onestop_timers`, indexed on its due instant, so a sweep should cost
time in proportion to the timers that are due, not to the dossiers in progress.

Setup (not timed). The test library's process `chased` (tests/data/timers, procedure
9.000002): receiving a dossier leaves it at the user task Task_Answer with two timers, a
non-interrupting "PT4H" in working time (opens Task_Chase) and an interrupting "P3D" in
calendar time. Per database, on a ManualClock: the `--due` dossiers are received through
the engine on Monday 2025-07-07 at 08:00 (their PT4H falls due at 13:30), then 100 more
through the engine at 14:00 (due the next day at the earliest); the rest of the open
dossiers are clones of those 100 written in bulk with SQL (receiving 100,000 dossiers one
by one costs ~3.3 ms each on the project's machine, whatever the durability). A clone
gets a new code, fresh task UUIDs rewritten consistently in its compressed state, its
task rows and its timer rows, and a copy of its event log. The sweep runs at 16:00, when
exactly `--due` timers (of 2 x open) are due.

Timed: `Engine.fire_due_timers()` only (time.perf_counter), on a fresh copy of the
database (flushed to disk first), through a new Engine (durability "full", cold instance
cache; the process library is loaded once and shared, so one-off calendar building is in
neither figure).
Both sizes in the same run, same machine and settings; `--repeat` copies per size,
alternating which size goes first; medians reported. Every sweep is checked: it fired
exactly the due timers, without errors, each fired dossier now waits at Task_Answer and
Task_Chase, and every not-due timer is still there. Once per size, cloned dossiers are
checked against their restored process state and one is completed through the engine;
on a database of at most 10,000 dossiers (the small one) every remaining PT4H timer is
then fired as well.

Context (no goal): a naive sweep, what an engine without a due-index does: read every
open dossier's state and look for due timers in it. `naive_scan_*`: decompress and parse
the JSON only (a lower bound: the peer does not even rebuild workflows); `naive_restore_*`:
rebuild each workflow with Instance.restore and ask it for its timers. Both only find the
due timers; firing them would come on top.

Usage: python bench/timers.py [--small 1000] [--large 100000] [--due 100] [--repeat 5]
                              [--naive both|decode|restore|none] [--dir PATH] [--keep]
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
import random  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from uuid import UUID  # noqa: E402

from onestop import VIETNAM_TZ, Engine, ManualClock, Officer  # noqa: E402
from onestop.bpmn.runtime import Instance  # noqa: E402
from onestop.bpmn.serialization import state_dictionary  # noqa: E402
from onestop.library import Library, load_library  # noqa: E402
from onestop.store.schema import from_micros, to_micros  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "tests" / "data" / "timers"
PROCEDURE = "9.000002"                     # process "chased"
_DICTIONARY: list[bytes] = []


def _dictionary() -> bytes:
    """The preset dictionary the engine compresses this model's states with."""
    if not _DICTIONARY:
        model = load_library(LIBRARY).models["chased"]
        _DICTIONARY.append(state_dictionary(model.spec, model.subprocess_specs))
    return _DICTIONARY[0]


def _unpack(state: bytes) -> bytes:
    unpacker = zlib.decompressobj(15, _dictionary())
    return unpacker.decompress(state) + unpacker.flush()


def _pack(text: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, 15, 4, zlib.Z_DEFAULT_STRATEGY, _dictionary())
    return packer.compress(text) + packer.flush()
DESK = "AN-BINH-MC"
OFFICER = Officer("tn.an", "Trần Ngọc An", {DESK: ["receiving_officer"]})
APPLICANT = {"name": "Nguyễn Thị Hoa", "id_number": "079190001234",
             "address": "Ấp Phú Hòa, xã An Bình"}
EARLY = datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ)   # Monday: PT4H due 13:30
LATE = EARLY + timedelta(hours=6)                        # 14:00: PT4H due Tuesday
SWEEP = EARLY + timedelta(hours=8)                       # 16:00
NEXT_DAY = EARLY + timedelta(days=1, hours=9)            # Tuesday 17:00: every PT4H due
TEMPLATES = 100                                          # not-due dossiers made by the engine
WAITING = 8                                              # SpiffWorkflow TaskState.WAITING


# -- setup ---------------------------------------------------------------------------
def build(path: Path, library: Library, open_count: int, due: int) -> dict:
    """A database with `open_count` open dossiers of which `due` have a timer due at
    SWEEP; returns what the checks need."""
    clock = ManualClock(EARLY)
    engine = Engine(str(path), library=library, clock=clock, durability="normal")
    engine.add_officer(OFFICER)
    early = [engine.receive(PROCEDURE, applicant=APPLICANT, officer=OFFICER.id).code
             for _ in range(due)]
    clock.set(LATE)
    templates = [engine.receive(PROCEDURE, applicant=APPLICANT, officer=OFFICER.id).code
                 for _ in range(min(TEMPLATES, open_count - due))]
    engine.close()
    cloned = _clone(path, templates, open_count - due - len(templates))
    return {"early": early, "templates": templates, "cloned": cloned}


def _clone(path: Path, template_codes: list[str], copies: int) -> list[str]:
    """Write `copies` clones of the template dossiers; returns a sample of their codes."""
    if copies <= 0:
        return []
    rng = random.Random(20250707 + copies)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    columns = ("procedure", "spec_id", "status", "channel", "desk_agency",
               "resolving_agency", "received_at", "received_by", "finished_at", "regime",
               "appointment_at", "paused_at", "version", "info")
    templates = []
    for code in template_codes:
        row = db.execute(f"SELECT id, {', '.join(columns)}, state FROM onestop_dossiers "
                         f"WHERE code = ?", (code,)).fetchone()
        dossier_id, values, state = row[0], row[1:-1], row[-1]
        text = _unpack(state).decode("utf-8")
        document = json.loads(text)
        assert not document["subprocesses"], "cloning expects a process without sub-processes"
        prefix = int(document["ids"][0], 16)
        tasks = db.execute("SELECT id, step, role, agency, claimed_by, ready_at, due_at "
                           "FROM onestop_tasks WHERE dossier_id = ?", (dossier_id,)).fetchall()
        timers = db.execute("SELECT id, step, due_at FROM onestop_timers "
                            "WHERE dossier_id = ?", (dossier_id,)).fetchall()
        events = db.execute("SELECT at, kind, step, actor, agency, detail, version "
                            "FROM onestop_events WHERE dossier_id = ? ORDER BY id",
                            (dossier_id,)).fetchall()
        for row_id, *_rest in (*tasks, *timers):
            assert UUID(row_id).int >> 32 == prefix, f"row {row_id} is not a task of {code}"
        templates.append((values, text, prefix, tasks, timers, events))

    day = LATE.strftime("%y%m%d")
    key = f"{DESK}:{day}"
    seq = db.execute("SELECT value FROM onestop_counters WHERE key = ?", (key,)).fetchone()[0]
    next_id = db.execute("SELECT MAX(id) FROM onestop_dossiers").fetchone()[0] + 1
    placeholders = ", ".join("?" * (len(columns) + 3))
    insert_dossier = (f"INSERT INTO onestop_dossiers (id, code, {', '.join(columns)}, state) "
                      f"VALUES ({placeholders})")
    insert_task = ("INSERT INTO onestop_tasks (id, dossier_id, step, role, agency, claimed_by, "
                   "ready_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    insert_timer = ("INSERT INTO onestop_timers (id, dossier_id, step, due_at) "
                    "VALUES (?, ?, ?, ?)")
    insert_event = ("INSERT INTO onestop_events (dossier_id, at, kind, step, actor, agency, "
                    "detail, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    sample: list[str] = []
    db.execute("BEGIN")
    batch: tuple[list, list, list, list] = ([], [], [], [])
    for n in range(copies):
        values, text, prefix, tasks, timers, events = templates[n % len(templates)]
        # A clone's task ids: a prefix of its own, the same numbers.
        fresh = UUID(int=rng.getrandbits(128) & ~0xFFFFFFFF, version=4).int >> 32
        state = _pack(text.replace(f'"ids":["{prefix:024x}"', f'"ids":["{fresh:024x}"', 1)
                      .encode("utf-8"))

        def renamed(row_id: str, fresh: int = fresh) -> str:
            return str(UUID(int=fresh << 32 | UUID(row_id).int & 0xFFFFFFFF))
        seq += 1
        dossier_id = next_id + n
        code = f"{DESK}-{day}-{seq:04d}"
        if n % max(1, copies // 20) == 0:
            sample.append(code)
        batch[0].append((dossier_id, code, *values, state))
        batch[1].extend((renamed(t[0]), dossier_id, *t[1:]) for t in tasks)
        batch[2].extend((renamed(t[0]), dossier_id, *t[1:]) for t in timers)
        batch[3].extend((dossier_id, *e) for e in events)
        if len(batch[0]) >= 5000 or n == copies - 1:
            for statement, rows in zip((insert_dossier, insert_task, insert_timer, insert_event),
                                       batch, strict=True):
                db.executemany(statement, rows)
                rows.clear()
    db.execute("UPDATE onestop_counters SET value = ? WHERE key = ?", (seq, key))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sample


def _copy(base: Path, work: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    wal = Path(f"{base}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, f"{wal} not checkpointed"
    shutil.copyfile(base, work)
    # Flush the copy now, so its write-back does not compete with the sweep's fsyncs
    # (which would weigh on the large copy more than on the small one).
    with open(work, "rb+") as copied:
        os.fsync(copied.fileno())


def _count(path: Path, sql: str, *params: object) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(sql, params).fetchone()[0])
    finally:
        db.close()


# -- the measured sweep --------------------------------------------------------------
def sweep(base: Path, work: Path, library: Library, setup: dict, open_count: int, due: int,
          deep: bool) -> tuple[float, int]:
    """Fire the due timers of a fresh copy of `base`; returns (ms, timers fired)."""
    _copy(base, work)
    timers_before = _count(work, "SELECT COUNT(*) FROM onestop_timers")
    now = to_micros(SWEEP)
    assert _count(work, "SELECT COUNT(*) FROM onestop_timers WHERE due_at <= ?", now) == due
    assert _count(work, "SELECT COUNT(*) FROM onestop_dossiers WHERE finished_at IS NULL") \
        == open_count
    clock = ManualClock(SWEEP)
    engine = Engine(str(work), library=library, clock=clock)   # durability "full"
    try:
        t0 = time.perf_counter()
        fired = engine.fire_due_timers()
        elapsed = time.perf_counter() - t0
        check_sweep(engine, work, setup, fired, timers_before, due)
        if deep:
            check_clones(engine, work, library, setup, open_count, due)
    finally:
        engine.close()
    return elapsed * 1000, len(fired)


def check_sweep(engine: Engine, work: Path, setup: dict, fired: list, timers_before: int,
                due: int) -> None:
    errors = [f for f in fired if f.error]
    assert not errors, f"timers failed: {errors[:3]}"
    assert len(fired) == due, f"fired {len(fired)} timers, expected {due}"
    assert sorted(f.dossier_code for f in fired) == sorted(setup["early"])
    assert all(f.step == "Timer_Chase" for f in fired)
    assert _count(work, "SELECT COUNT(*) FROM onestop_timers") == timers_before - due, \
        "not-due timers were removed"
    assert _count(work, "SELECT COUNT(*) FROM onestop_timers WHERE due_at <= ?",
                  to_micros(SWEEP)) == 0
    for code in setup["early"]:
        dossier = engine.dossier(code)
        assert sorted(t.step for t in dossier.open_tasks) == ["Task_Answer", "Task_Chase"], \
            (code, dossier.open_tasks)
        assert dossier.finished_at is None


def check_clones(engine: Engine, work: Path, library: Library, setup: dict, open_count: int,
                 due: int) -> None:
    """Cloned dossiers are real: state, task rows and timer rows agree, and they run."""
    model = library.models["chased"]
    db = sqlite3.connect(work)
    sample = setup["templates"][:3] + setup["cloned"]
    for code in sample:
        dossier_id, state = db.execute("SELECT id, state FROM onestop_dossiers WHERE code = ?",
                                       (code,)).fetchone()
        instance = Instance.restore(model, state)
        tasks = {r[0] for r in db.execute("SELECT id FROM onestop_tasks WHERE dossier_id = ?",
                                          (dossier_id,))}
        timers = dict(db.execute("SELECT id, due_at FROM onestop_timers WHERE dossier_id = ?",
                                 (dossier_id,)).fetchall())
        assert instance.open_task_ids() == tasks, code
        waiting = {t.id: t.due for t in instance.timers()}
        assert set(waiting) == set(timers), code
        assert all(from_micros(timers[i]) == waiting[i] for i in timers), code
        assert sorted(t.step for t in engine.dossier(code).open_tasks) == ["Task_Answer"]
    db.close()
    if setup["cloned"]:
        code = setup["cloned"][-1]
        task = engine.dossier(code).open_tasks[0]
        done = engine.complete(task.id, OFFICER.id, {})
        assert done.finished_at is not None and int(done.status) == 10, done
        assert _count(work, "SELECT COUNT(*) FROM onestop_timers t JOIN onestop_dossiers d "
                      "ON d.id = t.dossier_id WHERE d.code = ?", code) == 0
    if open_count <= 10_000:
        # Every remaining PT4H timer, clones included, fires and moves its dossier on.
        engine.clock.set(NEXT_DAY)  # type: ignore[attr-defined]
        later = engine.fire_due_timers()
        expected = open_count - due - (1 if setup["cloned"] else 0)
        assert len(later) == expected and not any(f.error for f in later), \
            (len(later), expected, [f for f in later if f.error][:3])
        assert all(f.step == "Timer_Chase" for f in later)
        for code in setup["cloned"][:5]:
            assert sorted(t.step for t in engine.dossier(code).open_tasks) \
                == ["Task_Answer", "Task_Chase"], code


# -- the naive peer: scan every open dossier -------------------------------------------
def naive_decode(path: Path) -> tuple[float, int]:
    """Read every open dossier's state, decompress and parse it, and pick out the timers
    due by SWEEP. Returns (ms, timers found)."""
    now = SWEEP
    db = sqlite3.connect(path)
    t0 = time.perf_counter()
    found = 0
    for _id, state in db.execute("SELECT id, state FROM onestop_dossiers "
                                 "WHERE finished_at IS NULL"):
        for task in json.loads(_unpack(state))["tasks"]:
            internal = task[7]
            if task[3] == WAITING and internal and internal.get("onestop_due") \
                    and datetime.fromisoformat(internal["onestop_due"]) <= now:
                found += 1
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed * 1000, found


def naive_restore(path: Path, library: Library) -> tuple[float, int]:
    """Rebuild every open dossier's workflow and ask it for its due timers."""
    now = SWEEP
    db = sqlite3.connect(path)
    by_hash = {m.spec_hash: m for m in library.models.values()}
    models = {spec_id: by_hash[h] for spec_id, h in
              db.execute("SELECT id, hash FROM onestop_specs")}
    t0 = time.perf_counter()
    found = 0
    for _id, spec_id, state in db.execute("SELECT id, spec_id, state FROM onestop_dossiers "
                                          "WHERE finished_at IS NULL"):
        instance = Instance.restore(models[spec_id], state)
        found += sum(1 for t in instance.timers() if t.due is not None and t.due <= now)
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed * 1000, found


# -- main ----------------------------------------------------------------------------
def naive_scans(options: argparse.Namespace, sizes: dict[str, int], bases: dict[str, Path],
                library: object) -> dict[str, float | None]:
    """Time the naive ways to find the due timers (context only)."""
    naive: dict[str, float | None] = {}
    for kind in ("decode", "restore"):
        for name, count in sizes.items():
            naive[f"{kind}_{name}"] = None
            if options.naive not in ("both", kind):
                continue
            scan = naive_decode if kind == "decode" else \
                (lambda path: naive_restore(path, library))
            ms, found = scan(bases[name])
            assert found == options.due, f"naive {kind} found {found} due timers"
            naive[f"{kind}_{name}"] = ms
            print(f"naive {kind:7} {name:5} {count:>9,} open dossiers: {ms:10.1f} ms "
                  f"to find the {found} due timers")
    return naive


def clean_up(options: argparse.Namespace, folder: Path, bases: dict[str, Path],
             work: Path) -> None:
    """Remove the sweep's copy, and the databases unless --keep."""
    Path(work).unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    if not options.keep:
        if options.dir:
            for path in bases.values():
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000, help="open dossiers, small case")
    parser.add_argument("--large", type=int, default=100_000, help="open dossiers, large case")
    parser.add_argument("--due", type=int, default=100, help="timers due at the sweep")
    parser.add_argument("--repeat", type=int, default=5, help="sweeps per size (median)")
    parser.add_argument("--naive", choices=("both", "decode", "restore", "none"),
                        default="both", help="which naive scans to time (context only)")
    parser.add_argument("--dir", help="folder for the SQLite files (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files")
    options = parser.parse_args()
    if not 0 < options.due < options.small <= options.large:
        parser.error("need 0 < --due < --small <= --large")
    if options.repeat < 1:
        parser.error("--repeat must be at least 1")

    started = time.perf_counter()
    folder = Path(options.dir) if options.dir else Path(tempfile.mkdtemp(prefix="onestop-timers-"))
    folder.mkdir(parents=True, exist_ok=True)
    library = load_library(LIBRARY)
    sizes = {"small": options.small, "large": options.large}
    bases = {name: folder / f"base-{name}.db" for name in sizes}
    work = folder / "sweep.db"
    try:
        t0 = time.perf_counter()
        setups = {}
        for name, count in sizes.items():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{bases[name]}{suffix}").unlink(missing_ok=True)
            t1 = time.perf_counter()
            setups[name] = build(bases[name], library, count, options.due)
            print(f"setup {name:5}  {count:>9,} open dossiers, {options.due} due  "
                  f"{time.perf_counter() - t1:6.1f} s  "
                  f"{bases[name].stat().st_size / 1e6:7.1f} MB")
        setup_s = time.perf_counter() - t0
        db_bytes = {name: path.stat().st_size for name, path in bases.items()}

        # Warm-up (not reported): imports, statement caches, the calendar index.
        sweep(bases["small"], work, library, setups["small"], options.small, options.due,
              deep=False)

        runs: dict[str, list[float]] = {"small": [], "large": []}
        fired: dict[str, int] = {}
        for rep in range(options.repeat):
            order = ("small", "large") if rep % 2 == 0 else ("large", "small")
            for name in order:
                ms, count = sweep(bases[name], work, library, setups[name], sizes[name],
                                  options.due, deep=rep == 0)
                runs[name].append(ms)
                fired[name] = count
                print(f"sweep {name:5}  repetition {rep + 1}: {count} fired in {ms:8.1f} ms")
        median = {name: statistics.median(values) for name, values in runs.items()}
        ratio = median["large"] / median["small"]

        naive = naive_scans(options, sizes, bases, library)
    finally:
        clean_up(options, folder, bases, work)

    def rnd(value: float | None, digits: int = 1) -> float | None:
        return None if value is None else round(value, digits)

    result = {
        "bench": "timers",
        "due": options.due,
        "small_open": options.small,
        "large_open": options.large,
        "repeat": options.repeat,
        "sweep_small_ms": rnd(median["small"]),
        "sweep_large_ms": rnd(median["large"]),
        "ratio_large_over_small": round(ratio, 3),
        "goal_ratio_max": 1.5,
        "goal_met": ratio <= 1.5,
        "fired_small": fired["small"],
        "fired_large": fired["large"],
        "ms_per_fired_timer_small": rnd(median["small"] / options.due, 3),
        "ms_per_fired_timer_large": rnd(median["large"] / options.due, 3),
        "sweep_small_runs_ms": [rnd(v) for v in runs["small"]],
        "sweep_large_runs_ms": [rnd(v) for v in runs["large"]],
        "naive_scan_small_ms": rnd(naive["decode_small"]),
        "naive_scan_large_ms": rnd(naive["decode_large"]),
        "naive_restore_small_ms": rnd(naive["restore_small"]),
        "naive_restore_large_ms": rnd(naive["restore_large"]),
        "naive_scan_large_over_sweep_large": rnd(
            naive["decode_large"] / median["large"] if naive["decode_large"] else None, 2),
        "naive_restore_large_over_sweep_large": rnd(
            naive["restore_large"] / median["large"] if naive["restore_large"] else None, 2),
        "timers_per_open_dossier": 2,
        "db_bytes_small": db_bytes["small"],
        "db_bytes_large": db_bytes["large"],
        "sweep_durability": "full",
        "setup": "engine-received due + 100 dossiers per size, rest cloned in SQL",
        "setup_s": round(setup_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
    }
    print(f"median sweep: {result['sweep_small_ms']} ms among {options.small:,} open, "
          f"{result['sweep_large_ms']} ms among {options.large:,} open; ratio "
          f"{result['ratio_large_over_small']} (goal <= 1.5: "
          f"{'met' if result['goal_met'] else 'NOT met'})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
