"""Query benchmark: first page of 100 and total count for every filter shape, on a 1M-event mirror with auditkit's
indexes and FTS, beside the same queries on a copy with only a primary key, in the same run.

    .venv/bin/python bench/query.py [--events 1000000] [--days 365] [--runs 15] [--keep DIR]

Targets (issue 2): every first page p95 <= 20 ms, every count <= 100 ms, free text <= 20 ms.
Figures are printed as milliseconds and as the ratio baseline / indexed (how many times faster the index makes it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditkit import store  # noqa: E402
try:
    from auditkit.synth import history as synth  # noqa: E402
except ImportError:  # pragma: no cover
    synth = None
from auditkit.model.filters import Filter, parse  # noqa: E402

PAGE_TARGET_MS = 20.0
COUNT_TARGET_MS = 100.0


def build(path: Path, events: int, days: int, end: dt.datetime) -> float:
    started = time.perf_counter()
    conn = store.open_db(path)
    synth.write_history(conn, events=events, seed=7, days=days, end=end)
    conn.close()
    return time.perf_counter() - started


def primary_key_copy(source: Path, target: Path) -> None:
    """The same events in a table with only its primary key: no secondary index, no FTS."""
    conn = store.open_db(target, migrate_to=1)
    conn.execute("DROP INDEX events_source_seq")
    conn.execute("DROP INDEX events_id")
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    conn.execute("BEGIN")
    conn.execute("INSERT INTO main.events SELECT * FROM src.events")
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE src")
    conn.execute("ANALYZE")
    conn.close()


def pick_values(conn: sqlite3.Connection) -> dict[str, str]:
    """Realistic, not best-case values: a mid-frequency user and rack, a common action and category."""
    users = [(u, c) for u, c in store.value_counts(conn, "user") if "@" in u]  # people, not keys or link viewers
    racks = store.value_counts(conn, "rack")
    return {
        "user": users[len(users) // 3][0],
        "rack": racks[len(racks) // 3][0],
        "action": "promoted",
        "category": "Environment",
    }


def shapes(values: dict[str, str]) -> list[tuple[str, Filter]]:
    keys = ["user", "rack", "action", "category"]
    combos: list[tuple[str, ...]] = [()]
    combos += [(k,) for k in keys]
    combos += list(itertools.combinations(keys, 2))
    combos += [("user", "rack", "action")]
    out = []
    for ranged in (False, True):
        for combo in combos:
            text = " ".join(f'{k}:"{values[k]}"' for k in combo)
            if ranged:
                text += " since:30d"
            name = ("+".join(combo) or "none") + (" +30d" if ranged else "")
            out.append((name, parse(text)))
    out.append(("text 'worker'", parse("worker")))
    out.append(("text 'worker' + user", parse(f'worker user:"{values["user"]}"')))
    return out


def timed(fn, runs: int) -> tuple[float, float, object]:
    result = fn()  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times), p95, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="Keep (and reuse) the databases in this folder.")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="auditkit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    indexed, plain = workdir / "indexed.db", workdir / "plain.db"
    end = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.timezone.utc)
    now = end
    try:
        if not indexed.exists():
            seconds = build(indexed, args.events, args.days, end)
            print(f"built {args.events:,} events over {args.days} days in {seconds:.1f}s "
                  f"({args.events / seconds:,.0f} events/s)")
        if not plain.exists():
            primary_key_copy(indexed, plain)
        fast = store.open_db(indexed, readonly=True)
        slow = store.open_db(plain, readonly=True, migrate_to=1)
        total = store.count(fast)
        values = pick_values(fast)
        print(f"mirror: {total:,} events, {os.path.getsize(indexed) / 2**20:.0f} MiB "
              f"(primary-key copy {os.path.getsize(plain) / 2**20:.0f} MiB); values {values}")
        print()
        header = (f"{'shape':34} {'matches':>9} | {'page p50':>8} {'p95':>7} {'base p50':>9} {'x':>6} | "
                  f"{'count':>7} {'base':>8} {'x':>6} | ok")
        print(header)
        print("-" * len(header))
        failures = 0
        for name, f in shapes(values):
            p50, p95, _ = timed(lambda: store.page(fast, f, limit=100, now=now), args.runs)
            b50, _, _ = timed(lambda: store.page(slow, f, limit=100, now=now, fts=False), args.baseline_runs)
            c50, _, matches = timed(lambda: store.count(fast, f, now=now), max(3, args.runs // 3))
            cb50, _, base_matches = timed(lambda: store.count(slow, f, now=now, fts=False), args.baseline_runs)
            if matches != base_matches:
                print(f"MISMATCH for {name}: {matches} vs baseline {base_matches}")
                failures += 1
            ok = p95 <= PAGE_TARGET_MS and c50 <= COUNT_TARGET_MS
            failures += not ok
            print(f"{name:34} {matches:>9,} | {p50:8.2f} {p95:7.2f} {b50:9.1f} {b50 / p50:6.0f} | "
                  f"{c50:7.2f} {cb50:8.1f} {cb50 / c50:6.0f} | {'yes' if ok else 'NO'}")
        print()
        print(f"targets: first page p95 <= {PAGE_TARGET_MS:.0f} ms, count <= {COUNT_TARGET_MS:.0f} ms; "
              f"{'all met' if not failures else f'{failures} shape(s) miss'}")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
