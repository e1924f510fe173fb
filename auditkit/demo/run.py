"""`auditkit demo` / `make demo`: the main job on the embedded default.

1. The simulated rack and the capture gateway start on loopback, and scripted users do a week of work through the
   gateway with a client that speaks the Convox wire protocol; the gateway journals it (data/gateway.db).
2. The mirror (data/audit.db) holds a month of synthetic activity, and the sync agent mirrors the week's journal
   into it over the gateway's feed.
3. Both are shown and verified. On a terminal it would go on to interactive review; without one (CI) it says how
   to open them. Re-running reuses what exists.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console

from .. import store
from ..filters import Filter


def _verify_line(console: Console, label: str, conn) -> bool:  # type: ignore[no-untyped-def]
    report = store.verify(conn)
    console.print(f"verify {label}: {report.summary()}")
    if report.ok:
        return True
    for problem in report.problems:
        console.print(f"verify {label}: {problem.kind}: {problem.message}")
    return False


def main(db_path: Path, events: int = 20_000, journal_path: Path | None = None) -> None:
    from ..cli import _print_table
    from . import synth, week

    console = Console() if sys.stdout.isatty() else Console(width=160)
    journal_path = journal_path or db_path.with_name("gateway.db")
    conn = store.open_db(db_path)
    if store.count(conn):
        console.print(f"demo: {db_path} already holds {store.count(conn):,} events; using them (delete it to start over)")
    else:
        started = time.monotonic()
        summary = synth.write_history(conn, events=events, seed=1, days=30)
        console.print(f"demo: wrote a month of synthetic history to the mirror {db_path}: {summary.events:,} events, "
                      f"{summary.sessions} recorded sessions ({time.monotonic() - started:.1f}s)")
    if journal_path.exists() and store.count(store.open_db(journal_path)):
        console.print(f"demo: {journal_path} already holds the gateway's journal; using it (delete it to replay)")
    else:
        console.rule("a week through the gateway")
        started = time.monotonic()
        week_summary = week.run_week(journal_path, db_path.parent, say=console.print, mirror_path=db_path)
        console.print(f"demo: {week_summary.steps} CLI commands through the gateway → {week_summary.events} journaled "
                      f"events, {week_summary.sessions} recorded sessions; sync mirrored {week_summary.mirrored} of "
                      f"them into {db_path} ({time.monotonic() - started:.1f}s)")
    journal = store.open_db(journal_path)
    console.rule(f"the gateway's journal ({journal_path})")
    _print_table(journal, Filter(), 40, console)
    ok = _verify_line(console, "journal", journal)
    console.rule(f"the mirror ({db_path}): app shop, synced from the gateway's journal beside the synthetic month")
    _print_table(conn, Filter.parse("app:shop"), 15, console)
    ok = _verify_line(console, "mirror", conn) and ok
    if not ok:
        sys.exit(1)
    how = (f"  .venv/bin/auditkit events --db {journal_path} category:Processes   the gateway's journal\n"
           f"  .venv/bin/auditkit events --db {db_path} user:<email> since:7d       filter the mirror\n"
           f"  .venv/bin/auditkit events --db {db_path} --format csv > audit.csv    export\n"
           f"  .venv/bin/auditkit verify --db {db_path}                             re-check the chains")
    if not sys.stdout.isatty():
        click.echo("\nNo terminal here, so nothing interactive was started. Explore with:\n" + how)
    else:
        click.echo("\nExplore with:\n" + how)
