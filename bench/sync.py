"""Sync benchmark: a gateway journal of N events, served by a real gateway process over loopback HTTP, mirrored by
`auditkit sync` into an empty mirror that keeps its indexes and FTS; beside a baseline measured in the same run: the
same events inserted with one executemany into a table with no index.

    .venv/bin/python bench/sync.py [--events 1000000]

Targets (issue 4): >= 50k events/s and <= 2.0x the baseline. It also prints a floor: the rows inserted plus the
trigram FTS index built over them, which no mirror that keeps the index can beat on one SQLite writer.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditkit import store  # noqa: E402
from auditkit.model.events import Event, format_timestamp, new_event_id  # noqa: E402
from auditkit.capture import keys  # noqa: E402
from auditkit.capture.journal import journal_source  # noqa: E402
from auditkit.capture.wire import USER_AGENT  # noqa: E402


def build_journal(path: Path, count: int) -> str:
    """A journal of `count` realistic gateway events on chain 'gw'; returns an auditor key."""
    conn = store.open_db(path)
    journal_source(conn, "gw")
    store.drop_text_index(conn)  # as a gateway's journal is
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    users = [f"user{i}@example.com" for i in range(40)]
    batch = []
    for i in range(count):
        moment = start + dt.timedelta(seconds=i * 7)
        batch.append(Event(id=new_event_id(), timestamp=format_timestamp(moment), actor=users[i % 40],
                           actor_type="user", rack=f"acme/rack{i % 5}", category="Releases", action="promoted",
                           description=f"Promoted release R{i:09d} of app app{i % 30}", app=f"app{i % 30}",
                           target=f"R{i:09d}", status=200, method="POST",
                           path=f"/apps/app{i % 30}/releases/R{i:09d}/promote", source_ip="203.0.113.7",
                           user_agent=USER_AGENT, request_id=f"req-{i}"))
        if len(batch) == 20_000:
            store.append(conn, batch, source="gw")
            batch = []
    if batch:
        store.append(conn, batch, source="gw")
    _, key = keys.add(conn, "bench-auditor@example.com", kind="user", role="auditor", source="gw")
    conn.close()
    return key


def baseline(journal: Path, target: Path) -> float:
    """Seconds to insert the journal's events with one executemany into a table with no index."""
    rows = sqlite3.connect(journal).execute(
        "SELECT " + ", ".join(store.EVENT_COLUMNS) + " FROM events ORDER BY source_seq").fetchall()
    conn = sqlite3.connect(target)
    conn.execute(f"CREATE TABLE events ({', '.join(store.EVENT_COLUMNS)})")
    started = time.perf_counter()
    conn.executemany(f"INSERT INTO events VALUES ({', '.join('?' * len(store.EVENT_COLUMNS))})", rows)
    conn.commit()
    return time.perf_counter() - started


def fts_floor(journal: Path, target: Path) -> float:
    """Seconds to build the mirror's trigram FTS index alone over the same rows (a lower bound on any mirror that
    keeps it: one SQLite writer builds it, whatever else is made faster)."""
    rows = sqlite3.connect(journal).execute(  # the text the mirror indexes (its events_text view)
        "SELECT n, description, actor, "
        "CASE WHEN app IS NOT NULL AND instr(description, app) > 0 THEN NULL ELSE app END, "
        "CASE WHEN target IS NOT NULL AND instr(description, target) > 0 THEN NULL ELSE target END "
        "FROM events ORDER BY source_seq").fetchall()
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, description, actor, app, target)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(description, actor, app, target, content='t', content_rowid='n', "
                 "tokenize='trigram')")
    conn.execute("INSERT INTO f(f, rank) VALUES ('automerge', 0)")
    started = time.perf_counter()
    conn.execute("INSERT INTO f(f) VALUES ('rebuild')")
    conn.commit()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auditkit-syncbench-"))
    journal = work / "journal.db"
    started = time.perf_counter()
    key = build_journal(journal, args.events)
    print(f"journal: {args.events:,} events built in {time.perf_counter() - started:.1f}s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(work / "gateway.log", "wb")
    gateway = subprocess.Popen([sys.executable, "-m", "auditkit.cli", "gateway", "serve", "--http", "--listen",
                                f"127.0.0.1:{port}", "--journal", str(journal), "--name", "gw", "--rack",
                                "x=http://127.0.0.1:9"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/audit/v1/events", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        mirror = work / "data" / "audit.db"
        conn = store.open_db(mirror)
        from auditkit.mirror.sync import add_source

        add_source(conn, "gw", f"http://127.0.0.1:{port}", key, mirror.parent)
        conn.close()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "auditkit.cli", "sync", "--db", str(mirror)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        synced = time.perf_counter() - started
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)
    base = baseline(journal, work / "baseline.db")
    floor = fts_floor(journal, work / "fts.db")
    total = args.events + 1
    conn = store.open_db(mirror)
    ok = store.count(conn) == total and store.verify(conn).ok
    print(f"sync over loopback HTTP into a mirror with indexes and FTS: {total:,} events in {synced:.1f}s = "
          f"{total / synced:,.0f} events/s (target >= 50,000)")
    print(f"baseline, one executemany into a table with no index: {base:.1f}s = {total / base:,.0f} events/s")
    print(f"ratio sync / baseline: {synced / base:.1f}x (target <= 2.0x); mirror complete and verified: {ok}")
    print(f"the trigram FTS index alone over the same rows: {floor:.1f}s = {floor / base:.1f}x the baseline; "
          f"inserting the rows and indexing their text is at least {(base + floor) / base:.1f}x "
          f"({total / (base + floor):,.0f} events/s), before any secondary index, fetch or check")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
