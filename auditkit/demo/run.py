"""`auditkit demo` / `make demo`: the main job on the embedded default.

Makes (once) a realistic month of activity in the mirror, prints its newest events and the result of verify. On a
terminal it would go on to interactive review; without one (CI) it says how to open the mirror instead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console

from .. import store
from ..filters import Filter


def main(db_path: Path, events: int = 20_000) -> None:
    from . import synth
    from ..cli import _print_table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    conn = store.open_db(db_path)
    existing = store.count(conn)
    if existing:
        console.print(f"demo: {db_path} already holds {existing:,} events; using them (delete it to start over)")
    else:
        started = time.monotonic()
        summary = synth.write_history(conn, events=events, seed=1, days=30)
        console.print(f"demo: wrote a month of activity to {db_path}: {summary.events:,} events, "
                      f"{summary.sessions} recorded sessions ({time.monotonic() - started:.1f}s)")
    console.rule("newest events")
    _print_table(conn, Filter(), 15, console)
    console.rule("verify")
    report = store.verify(conn)
    if report.ok:
        console.print(f"verify: OK — {report.events:,} events in {len(report.heads)} chain(s), "
                      f"{report.sessions} recording(s) intact")
    else:
        for problem in report.problems:
            console.print(f"verify: {problem.kind}: {problem.message}")
        sys.exit(1)
    prefix = "" if db_path == store.default_db_path() else f" --db {db_path}"
    how = (f"  .venv/bin/auditkit events{prefix} user:<email> since:7d      filter the mirror\n"
           f"  .venv/bin/auditkit events{prefix} --format csv > audit.csv   export\n"
           f"  .venv/bin/auditkit verify{prefix}                              re-check the chains")
    if not sys.stdout.isatty():
        click.echo("\nNo terminal here, so nothing interactive was started. Explore the mirror with:\n" + how)
    else:
        click.echo("\nExplore the mirror with:\n" + how)
