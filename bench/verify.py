"""What `auditkit verify` costs on a large mirror: events per second of the parallel pass (store/verify.py, one
worker per core over aligned seq ranges) against the serial pass it replaces and against a floor measured in the same
run (reading every event row in seq order, one core, no hashing).

    .venv/bin/python bench/verify.py --db /tmp/v1m.db --runs 3      (the mirror is built with synth when missing)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import statistics
import time
from pathlib import Path

from auditkit import store
from auditkit.synth import history

verify_mod = importlib.import_module("auditkit.store.verify")
TARGET = 200_000


def _read_floor(path: Path) -> tuple[int, float]:
    """Every event row read in each chain's seq order, the columns verify reads; nothing computed."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    t = time.perf_counter()
    count = 0
    for (source,) in conn.execute("SELECT DISTINCT source FROM events ORDER BY source").fetchall():
        for _ in conn.execute(verify_mod._SELECT_RANGE, (source, 1, 1 << 62)):
            count += 1
    conn.close()
    return count, time.perf_counter() - t


def _verify(path: Path, parallel: bool) -> tuple[int, float]:
    saved = verify_mod.PARALLEL_MIN
    verify_mod.PARALLEL_MIN = saved if parallel else 1 << 62
    conn = store.open_db(path)
    try:
        t = time.perf_counter()
        report = store.verify(conn)
        elapsed = time.perf_counter() - t
    finally:
        conn.close()
        verify_mod.PARALLEL_MIN = saved
    if not report.ok:
        raise SystemExit(f"the bench mirror does not verify: {report.summary()}")
    return report.events, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/v1m.db"))
    parser.add_argument("--events", type=int, default=1_000_000, help="events to synthesize when --db is missing")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-serial", action="store_true", help="skip the serial pass (it takes ~20 s at 1M)")
    args = parser.parse_args()
    if not args.db.exists():
        conn = store.open_db(args.db)
        history.write_history(conn, events=args.events, seed=1, days=30)
        conn.close()
    cores = len(os.sched_getaffinity(0))
    print(f"mirror: {args.db} ({args.db.stat().st_size / 2**20:,.0f} MiB), {cores} core(s), {args.runs} run(s)")
    floors, serials, fasts = [], [], []
    for run in range(1, args.runs + 1):
        n, floor = _read_floor(args.db)
        floors.append(floor)
        line = f"run {run}: read floor {floor:.2f} s ({n / floor:,.0f}/s)"
        if not args.no_serial:
            _, serial = _verify(args.db, parallel=False)
            serials.append(serial)
            line += f", serial verify {serial:.2f} s ({n / serial:,.0f}/s)"
        events, fast = _verify(args.db, parallel=True)
        fasts.append(fast)
        print(f"{line}, parallel verify {fast:.2f} s ({events / fast:,.0f}/s), {fast / floor:.2f}x the floor")
    rate = events / statistics.median(fasts)
    print(f"read-floor-events-per-second: {events / statistics.median(floors):,.0f}")
    if serials:
        print(f"verify-speedup-vs-serial: {statistics.median(serials) / statistics.median(fasts):.2f}x")
    print(f"verify-vs-read-floor: {statistics.median(fasts) / statistics.median(floors):.2f}x")
    print(f"verify-events-per-second: {rate:,.0f} (target >= {TARGET:,}) {'ok' if rate >= TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
