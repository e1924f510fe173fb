"""TUI benchmark: time to first painted rows and resident memory with a 1M-event mirror against a 1k-event one
(the baseline, measured in the same run), and how long a filter change takes to repaint at 1M.

    .venv/bin/python bench/tui.py [--big /tmp/bench1m.db] [--runs 5] [--repeats 3]

Each measurement runs the app headless (App.run_test, 120×40) in a fresh subprocess, so RSS is that process's alone.
- first paint: from entering run_test to the first frame that holds rows of the list (EventList.painted_at); also
  reported: the time until the match count is known, and the process's RSS and peak RSS right after the paint.
- filter repaint: EventsScreen.apply_filter(f) to the first frame holding rows of the new filter, for realistic
  filters (a mid-frequency user and rack, a common action and category, pairs, a time range, free text, negations,
  back to all events), each `--repeats` times.
- jumps: G, g and the scrollbar dragged to 1/2 and 3/4 of all events, with the row cache emptied first, until the
  visible rows are fetched and drawn (a jump far from both ends costs an O(offset) walk of the index).
Targets (issue 6): first paint and RSS at 1M within 1.5× of 1k; filter repaint p95 <= 150 ms at 1M.
The 1M mirror is reused when it exists (`auditkit synth --events 1000000 --db /tmp/bench1m.db` makes one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZE = (120, 40)
FIRST_PAINT_RATIO = 1.5
RSS_RATIO = 1.5
REPAINT_TARGET_MS = 150.0


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            values[key] = int(value.split()[0])
    return values["VmRSS"], values["VmHWM"]


def bench_filters(db: Path) -> list[str]:
    """Realistic, not best-case filters, chosen from the mirror's own values."""
    from auditkit import store

    conn = store.open_db(db, readonly=True)
    users = [u for u, _ in store.value_counts(conn, "user") if "@" in u]  # people, not keys or link viewers
    racks = [r for r, _ in store.value_counts(conn, "rack")]
    conn.close()
    user, rack = users[len(users) // 3], racks[len(racks) // 3]  # as bench/query.py picks them
    return [
        f"user:{user}",
        f"rack:{rack}",
        "action:promoted",
        "category:Environment",
        f"user:{user} action:promoted",
        f"rack:{rack} category:Releases",
        "since:1d",
        "-outcome:succeeded",
        "worker",
        f"rack:{rack} -user:{user} since:7d",
        "",
    ]


# --- the measuring child process -----------------------------------------------------------------------------------

async def child(db: Path, filters: list[str], repeats: int) -> dict:
    from auditkit.model.filters import parse
    from auditkit.review.tui.app import AuditApp
    from auditkit.review.tui.widgets.event_list import EventList

    started = time.perf_counter()
    app = AuditApp(db, utc=True, poll_interval=None, cursor_blink=False)
    result: dict = {}

    async def painted(listing: EventList) -> float:
        while listing.painted_generation != listing.generation:
            await asyncio.sleep(0.001)
        assert listing.painted_at is not None
        return listing.painted_at

    async with app.run_test(size=SIZE) as pilot:
        listing = None
        while listing is None:
            await asyncio.sleep(0.001)
            found = app.screen.query(EventList)
            listing = found.first() if found else None
        result["first_paint_ms"] = (await painted(listing) - started) * 1000
        result["rss_kib"], result["peak_rss_kib"] = rss_kib()
        while listing.total is None:
            await asyncio.sleep(0.001)
        result["counted_ms"] = (time.perf_counter() - started) * 1000
        result["total"] = listing.total
        await pilot.pause()
        await app.workers.wait_for_complete()

        repaint: dict[str, list[float]] = {}
        counted: dict[str, list[float]] = {}
        for _ in range(repeats):
            for text in filters:
                t0 = time.perf_counter()
                app.screen.apply_filter(parse(text))
                repaint.setdefault(text, []).append((await painted(listing) - t0) * 1000)
                while listing.total is None:
                    await asyncio.sleep(0.001)
                counted.setdefault(text, []).append((time.perf_counter() - t0) * 1000)
                await app.workers.wait_for_complete()
                await pilot.pause()
        result["repaint_ms"] = repaint

        async def visible_rows_ready(listing: EventList) -> None:
            while True:
                top = round(listing.scroll_offset.y)
                wanted = range(top, min(listing.total or 0, top + listing.scrollable_content_region.height - 1))
                if all(r in listing._rows for r in wanted):
                    return
                await asyncio.sleep(0.001)

        jumps: dict[str, list[float]] = {}
        if filters:
            app.screen.apply_filter(parse(""))
            await painted(listing)
            while listing.total is None:
                await asyncio.sleep(0.001)
            for i in range(repeats):
                total = listing.total or 0
                middle, three_quarters = total // 2 + i * total // 100, total * 3 // 4 + i * total // 100
                for name, jump in (("G (oldest)", listing.action_last), ("g (newest)", listing.action_first),
                                   ("scrollbar to the middle", lambda: listing.scroll_to(y=middle, animate=False)),
                                   ("scrollbar to 3/4", lambda: listing.scroll_to(y=three_quarters,
                                                                                  animate=False))):
                    listing._rows.clear()  # cold: nothing cached near the target
                    t0 = time.perf_counter()
                    jump()
                    await pilot.pause()
                    await visible_rows_ready(listing)
                    jumps.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
                    await app.workers.wait_for_complete()
        result["jump_ms"] = jumps
        result["counted_after_filter_ms"] = counted
        result["end_rss_kib"], result["end_peak_rss_kib"] = rss_kib()
    return result


# --- the parent ------------------------------------------------------------------------------------------------------

def measure(db: Path, filters: list[str], repeats: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(db), "--filters-json", json.dumps(filters),
         "--repeats", str(repeats)],
        capture_output=True, text=True, check=False, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"child failed on {db}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ensure_big(path: Path) -> None:
    if path.exists():
        return
    print(f"making {path} (1,000,000 events; about a minute)…", flush=True)
    subprocess.run([sys.executable, "-m", "auditkit.cli", "synth", "--events", "1000000", "--db", str(path)],
                   check=True)


def make_small(directory: Path) -> Path:
    from auditkit import store
    from auditkit.synth import history as synth

    path = directory / "bench1k.db"
    conn = store.open_db(path)
    synth.write_history(conn, events=1000, seed=7, days=30)
    conn.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", type=Path, default=Path("/tmp/bench1m.db"))
    parser.add_argument("--runs", type=int, default=5, help="first-paint processes per mirror (alternating)")
    parser.add_argument("--repeats", type=int, default=3, help="times each filter change is measured")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--filters-json", default="[]", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = asyncio.run(child(args.child, json.loads(args.filters_json), args.repeats))
        print(json.dumps(result))
        return

    ensure_big(args.big)
    with tempfile.TemporaryDirectory() as tmp:
        small = make_small(Path(tmp))
        filters = bench_filters(args.big)
        small_filters = bench_filters(small)
        runs: dict[str, list[dict]] = {"1k": [], "1M": []}
        for i in range(args.runs):
            # Only the last run of each measures filter changes (they do not affect the first paint).
            last = i == args.runs - 1
            runs["1k"].append(measure(small, small_filters if last else [], args.repeats))
            runs["1M"].append(measure(args.big, filters if last else [], args.repeats))

    def med(case: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[case])

    print(f"TUI benchmark, {SIZE[0]}×{SIZE[1]} headless, {args.runs} processes per mirror (medians)\n")
    print(f"{'':28}{'1k':>12}{'1M':>12}{'1M/1k':>9}  target")
    rows = [
        ("events in the mirror", "total", 1, "{:>12,.0f}", None),
        ("first paint (ms)", "first_paint_ms", 1, "{:>12.0f}", FIRST_PAINT_RATIO),
        ("match count known (ms)", "counted_ms", 1, "{:>12.0f}", None),
        ("RSS after paint (MiB)", "rss_kib", 1024, "{:>12.1f}", RSS_RATIO),
        ("peak RSS (MiB)", "peak_rss_kib", 1024, "{:>12.1f}", None),
    ]
    verdicts = []
    for label, key, scale, fmt, target in rows:
        small_v, big_v = med("1k", key) / scale, med("1M", key) / scale
        ratio = big_v / small_v if small_v else float("inf")
        line = f"{label:28}" + fmt.format(small_v) + fmt.format(big_v) + f"{ratio:>8.2f}×"
        if target:
            ok = ratio <= target
            verdicts.append(ok)
            line += f"  <= {target}× {'ok' if ok else 'MISSED'}"
        print(line)
    print(f"{'RSS after filter changes':28}{runs['1k'][-1]['end_rss_kib'] / 1024:>12.1f}"
          f"{runs['1M'][-1]['end_rss_kib'] / 1024:>12.1f}")
    print("first paint per process (ms): 1k " + ", ".join(f"{r['first_paint_ms']:.0f}" for r in runs["1k"])
          + " | 1M " + ", ".join(f"{r['first_paint_ms']:.0f}" for r in runs["1M"]))

    print(f"\nfilter change → rows repainted, {args.repeats}× each (ms; count known after)")
    print(f"{'filter':52}{'1k p50':>8}{'1M p50':>8}{'1M max':>8}{'1M count':>10}")
    big_all: list[float] = []
    small_all: list[float] = []
    for text, small_text in zip(filters, small_filters):
        big_times = runs["1M"][-1]["repaint_ms"][text]
        small_times = runs["1k"][-1]["repaint_ms"][small_text]
        counted = runs["1M"][-1]["counted_after_filter_ms"][text]
        big_all += big_times
        small_all += small_times
        print(f"{(text or '(all events)')[:51]:52}{statistics.median(small_times):>8.1f}"
              f"{statistics.median(big_times):>8.1f}{max(big_times):>8.1f}{statistics.median(counted):>10.1f}")
    print(f"\njumps with nothing cached → visible rows fetched and drawn, {args.repeats}× each (ms)")
    print(f"{'':52}{'1k p50':>8}{'1M p50':>8}{'1M max':>8}")
    for name, times in runs["1M"][-1]["jump_ms"].items():
        small_times = runs["1k"][-1]["jump_ms"][name]
        print(f"{name:52}{statistics.median(small_times):>8.1f}{statistics.median(times):>8.1f}{max(times):>8.1f}")
    p50, p95 = pct(big_all, 0.5), pct(big_all, 0.95)
    ok = p95 <= REPAINT_TARGET_MS
    verdicts.append(ok)
    print(f"\nall filter changes at 1M: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(big_all):.1f} ms "
          f"(1k: p50 {pct(small_all, 0.5):.1f}, p95 {pct(small_all, 0.95):.1f}; 1M/1k p95 "
          f"{p95 / pct(small_all, 0.95):.2f}×)  target p95 <= {REPAINT_TARGET_MS:.0f} ms: {'ok' if ok else 'MISSED'}")
    print("\nall targets met" if all(verdicts) else "\nSOME TARGETS MISSED")


if __name__ == "__main__":
    main()
