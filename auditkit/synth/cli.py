"""`auditkit synth`: write a seeded synthetic history (synth/history.py) into a store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from auditkit import store
from auditkit.cli_common import db_option


@click.command()
@click.option("--events", "count", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="How many events to write.")
@db_option
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same history.")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="Span of the history.")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Last day of the history, UTC (default: now).")
def synth(count: int, db_path: Path | None, seed: int, days: int, end: Any) -> None:
    """Write a realistic, chain-valid synthetic history into the mirror."""
    from auditkit.synth import history  # the generator (and the catalog it renders through) only when it runs

    path = db_path or store.default_db_path()
    conn = store.open_db(path)
    started = time.monotonic()
    summary = history.write_history(conn, events=count, seed=seed, days=days, end=end)
    elapsed = time.monotonic() - started
    click.echo(f"synth: wrote {summary.events:,} events and {summary.sessions} recordings to {path} "
               f"in {elapsed:.1f}s ({summary.events / max(elapsed, 1e-9):,.0f} events/s)")
