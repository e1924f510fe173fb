"""Share-link benchmark: a link's first page and its 100th page through the real plugin route, served by
`auditkit serve` (uvicorn, a separate process) on a 1M-event mirror, beside the same store.page query run straight
on SQLite in the same run.

    .venv/bin/python bench/share.py [--source /tmp/bench1m.db] [--copy /tmp/bench1m-share.db] [--runs 30]

The mirror is copied first (every view is recorded as an Access event, so the bench writes to its copy, never to
the shared source); the source is made with `auditkit synth --events 1000000` when it does not exist.
The link matches ~100k events (the rack whose count is nearest 100,000, unless --filter says otherwise).

Target (issue 5): first page and 100th page each <= 100 ms. The route does more than the query: it re-verifies the
link, counts the matches (within a 50 ms budget), records the view (an append on the local chain) and renders 100
rows of HTML; the ratio column says what that costs over the bare query.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from convox_sim.servers import free_port  # noqa: E402

import httpx  # noqa: E402

from auditkit import store  # noqa: E402
from auditkit.share import links as sharing
from auditkit.model.filters import Filter, parse  # noqa: E402

TARGET_MS = 100.0
REPO = Path(__file__).resolve().parent.parent


def ensure_source(path: Path) -> None:
    if path.exists():
        return
    print(f"making {path} (auditkit synth --events 1000000, about a minute)", flush=True)
    subprocess.run([sys.executable, "-m", "auditkit.cli", "synth", "--events", "1000000", "--db", str(path)],
                   check=True, cwd=REPO)


def copy_mirror(source: Path, target: Path) -> None:
    """A private copy (SQLite's backup API: consistent even while the source is in WAL mode)."""
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    src.backup(dst, pages=65536)
    dst.close()
    src.close()
    print(f"copied {source} → {target} in {time.perf_counter() - started:.1f}s", flush=True)


def pick_filter(conn: sqlite3.Connection, wanted: int) -> Filter:
    racks = store.value_counts(conn, "rack")
    rack = min(racks, key=lambda rc: abs(rc[1] - wanted))[0]
    return Filter().with_values("rack", [rack])


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, list[float]]:
    fn()  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times), p95, times



def start_server(db: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "auditkit.cli", "serve", "--db", str(db), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"auditkit serve exited: {proc.stdout.read()}")
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("auditkit serve did not start listening within 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("/tmp/bench1m.db"))
    parser.add_argument("--copy", type=Path, default=Path("/tmp/bench1m-share.db"))
    parser.add_argument("--filter", default=None, help="The link's filter (default: the rack nearest 100k events).")
    parser.add_argument("--matching", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--page", type=int, default=100, help="The deep page to time (default: the 100th).")
    args = parser.parse_args()

    ensure_source(args.source)
    copy_mirror(args.source, args.copy)
    conn = store.open_db(args.copy)
    f = parse(args.filter) if args.filter else pick_filter(conn, args.matching)
    link, url = sharing.create(conn, f, secret=sharing.secret_for(args.copy), expires="1d", created_by="bench",
                               note="bench/share.py", base_url="http://127.0.0.1")
    scope = sharing.scope(link)
    matching = store.count(conn, scope)
    total = store.count(conn)
    print(f"mirror: {total:,} events; link {link.id}: {link.filter_text!r} matches {matching:,}")

    # The same query straight on SQLite: page 1, and the cursor of page N found by walking the pages.
    cursor = None
    for _ in range(args.page - 1):
        cursor = store.page(conn, scope, limit=100, before=cursor).next_before
        if cursor is None:
            raise SystemExit(f"the link has fewer than {args.page} pages")
    sql_first = timed(lambda: store.page(conn, scope, limit=100), args.runs)
    sql_deep = timed(lambda: store.page(conn, scope, limit=100, before=cursor), args.runs)
    sql_count = timed(lambda: store.count(conn, scope), max(5, args.runs // 3))

    port = free_port()
    proc = start_server(args.copy, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            landing = client.get(url.split("http://127.0.0.1", 1)[1])
            assert landing.status_code == 302, landing.text
            # Walk to page N through the route's own "Older" links, as a browser would.
            path = "/-/shared"
            for _ in range(args.page - 1):
                page = client.get(path)
                path = re.search(r'href="([^"]+)" rel="next"', page.text).group(1).replace("&amp;", "&")
            assert f"before={cursor}" in path, (path, cursor)

            def get(p: str) -> Callable[[], None]:
                def fetch() -> None:
                    response = client.get(p)
                    assert response.status_code == 200 and response.text.count('<tr class="outcome-') == 100
                return fetch

            http_first = timed(get("/-/shared"), args.runs)
            http_deep = timed(get(path), args.runs)
            started = time.perf_counter()
            size = 0
            with client.stream("GET", "/-/shared/events.csv") as download:
                for chunk in download.iter_bytes():
                    size += len(chunk)
            download_s = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    views = sharing.get(conn, link.id).views
    print()
    header = f"{'':26} {'route p50':>9} {'p95':>7} | {'sqlite p50':>10} {'p95':>7} | {'route/sqlite':>12} | <= {TARGET_MS:.0f} ms"
    print(header)
    print("-" * len(header))
    failures = 0
    for name, http, sql in (("first page", http_first, sql_first), (f"page {args.page}", http_deep, sql_deep)):
        ok = http[1] <= TARGET_MS
        failures += not ok
        print(f"{name:26} {http[0]:9.1f} {http[1]:7.1f} | {sql[0]:10.2f} {sql[1]:7.2f} | {http[0] / sql[0]:12.0f} | "
              f"{'yes' if ok else 'NO'} (p95)")
    print(f"{'count of the link (sqlite)':26} {'':9} {'':7} | {sql_count[0]:10.2f} {sql_count[1]:7.2f} |")
    print()
    print(f"whole set as CSV through the route: {matching:,} events, {size / 2**20:.1f} MiB in {download_s:.2f}s "
          f"({matching / download_s:,.0f} events/s)")
    print(f"views recorded for the link during the run: {views:,} (one Access event per request)")
    print(f"target: first page and page {args.page} each <= {TARGET_MS:.0f} ms (p95): "
          f"{'met' if not failures else 'NOT met'}")
    conn.close()
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
