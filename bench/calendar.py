"""Due-instant computations per second: onestop's calendar vs holidays' own.

Both answer "N working days after this receipt" for the same 20,000 (instant, N) inputs
drawn from 2025–2026, in the same run: ours with `WorkingCalendar.add_working_days`
(working-clock position kept, O(log n) over a precomputed index), the peer with
`holidays.Vietnam().get_nth_working_day` (day resolution, which walks day by day).
The peer answers a simpler question (a date, not an instant), so the comparison favours
it. Ours must agree with it on the date wherever the receipt is inside office hours.

Usage: python bench/calendar.py [--inputs 20000] [--rounds 5]. Last line: one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's name shadows the standard library's calendar module, which holidays and
# SpiffWorkflow import: run without this folder on the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402

import holidays  # noqa: E402

from onestop import VIETNAM_TZ  # noqa: E402
from onestop.calendar import WorkingCalendar  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed passes per side, alternating; medians are reported")
    options = parser.parse_args()
    rng = random.Random(20251122)
    start = datetime(2025, 1, 1, tzinfo=VIETNAM_TZ)
    inputs = []
    for _ in range(options.inputs):
        day = start + timedelta(days=rng.randrange(0, 700))
        instant = day.replace(hour=rng.choice([8, 9, 10, 14, 15, 16]), minute=rng.randrange(60))
        inputs.append((instant, rng.randrange(1, 21)))

    ours = WorkingCalendar()
    peer = holidays.Vietnam(years=range(2015, 2041))
    for instant, n in inputs[:200]:  # warm up
        ours.add_working_days(instant, n)
        peer.get_nth_working_day(instant.date(), n)

    # One pass over 20,000 inputs takes tens of milliseconds: a single pass is at the
    # mercy of a GC pause or a CPU frequency step, so each side runs several passes,
    # alternating, and the medians are compared.
    ours_times, peer_times = [], []
    for _ in range(options.rounds):
        t0 = time.perf_counter()
        our_results = [ours.add_working_days(instant, n) for instant, n in inputs]
        ours_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        peer_results = [peer.get_nth_working_day(instant.date(), n) for instant, n in inputs]
        peer_times.append(time.perf_counter() - t0)
    ours_s, peer_s = statistics.median(ours_times), statistics.median(peer_times)

    disagree = 0
    for (instant, _n), mine, theirs in zip(inputs, our_results, peer_results, strict=True):
        if ours.is_working_day(instant.date()) and mine.date() != theirs:
            disagree += 1
    result = {
        "benchmark": "calendar_due",
        "inputs": options.inputs,
        "ours_per_second": round(options.inputs / ours_s),
        "baseline_per_second": round(options.inputs / peer_s),
        "speedup": round(peer_s / ours_s, 1),
        "goal_speedup_min": 20,
        "rounds": options.rounds,
        "speedup_per_round": [round(p / o, 1) for o, p in zip(ours_times, peer_times,
                                                             strict=True)],
        "dates_disagreeing_on_working_days": disagree,
    }
    print(f"ours      {result['ours_per_second']:>10,} due instants/s")
    print(f"holidays  {result['baseline_per_second']:>10,} due dates/s (get_nth_working_day)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
