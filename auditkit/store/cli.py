"""The store's commands, `auditkit events` (a filtered listing) and `auditkit mirror-key` (the mirror's own checkpoint
key), and the events table they and the demo print, on the `--db` option every command that opens a store shares
(cli_common). `auditkit verify` is mirror/verify_cli.py's (its --online asks the feeds).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any, Iterator

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from auditkit import store
from auditkit.cli_common import FILTER_COMMAND, db_option, literal, plural
from auditkit.model import export
from auditkit.model.filters import Filter, parse
from auditkit.model.times import utc_minute

OUTCOME_STYLE = {"succeeded": "green", "failed": "red", "denied": "bold magenta", "unknown": "yellow"}


def print_events(conn: sqlite3.Connection, f: Filter, limit: int, console: Console | None = None) -> int:
    """The newest `limit` events matching `f` as a table, and a line saying how many match in all (returned). Event
    text goes in as cli_common.literal: never Rich markup, control characters escaped."""
    console = console or (Console() if sys.stdout.isatty() else Console(width=160))
    page = store.page(conn, f, limit=limit)
    total = store.count(conn, f)
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("user", no_wrap=True, max_width=24, overflow="ellipsis")
    table.add_column("rack", no_wrap=True, max_width=18, overflow="ellipsis")
    table.add_column("action", no_wrap=True, max_width=24, overflow="ellipsis")
    table.add_column("outcome", no_wrap=True)
    table.add_column("description", min_width=30, overflow="fold")
    for e in page.events:
        table.add_row(
            utc_minute(e.timestamp),
            literal(e.actor),
            literal(e.rack),
            f"{e.category}/{e.action}",
            Text(e.outcome, style=OUTCOME_STYLE.get(e.outcome, "")),
            literal(e.description),
        )
    console.print(table)
    scope = f"matching {f.to_text()}" if not f.is_empty else "in the mirror"
    console.print(literal(f"{len(page.events)} newest of {plural(total, 'event')} {scope}", style="dim"))
    return total


def say_hints(conn: sqlite3.Connection, f: Filter) -> None:
    """On stderr, for a filter that matched nothing: each qualifier value no event has, and the values near it."""
    for hint in store.hints_for(conn, f):
        click.echo(hint.text(), err=True)


@click.command(**FILTER_COMMAND)
@click.argument("filter_words", nargs=-1, type=click.UNPROCESSED)
@db_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most N events (table default: 50; jsonl, csv and json default: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv", "json"]), default="table",
              show_default=True)
def events(filter_words: tuple[str, ...], db_path: Path | None, limit: int | None, fmt: str) -> None:
    """List events matching FILTER, newest first.

    FILTER uses the filter language, e.g.:
    user:alice@example.com rack:acme/production action:promoted since:7d -user:ci-bot "free text"
    """
    f = parse(" ".join(filter_words))
    conn = store.open_existing(db_path)
    if fmt == "table":
        if not print_events(conn, f, limit or 50):
            say_hints(conn, f)
        return
    written = 0

    def counted(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal written
        for row in rows:
            written += 1
            yield row

    rows = store.iter_rows(conn, f)
    if limit is not None:
        rows = (row for i, row in zip(range(limit), rows))
    export.write(fmt, counted(rows), sys.stdout)
    if not written:
        say_hints(conn, f)


@click.command("mirror-key")
@db_option
def mirror_key(db_path: Path | None) -> None:
    """Print the mirror's own checkpoint key (its verifier key, NAME+ID+KEY), made beside the mirror on first
    need: the key an auditor pins to check the mirror's local chain and its exports (`auditkit verify --key`)."""
    conn = store.open_existing(db_path)
    click.echo(str(store.local_signer(conn).verifier))
