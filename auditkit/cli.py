"""The `auditkit` command line (click): events, verify, synth and demo. Each command is a thin layer over the
store, the filter language and the demo package; errors are one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import click
from rich.console import Console
from rich.table import Table

from auditkit import store
from auditkit.capture import cli as capture_cli
from auditkit.cli_common import CommandError, db_option, open_mirror as _open  # _open: the name used below
from auditkit.model import export
from auditkit.errors import AuditkitError
from auditkit.model.filters import Filter, parse
from auditkit.review import cli as review_cli
from auditkit.share import cli as share_cli

OUTCOME_STYLE = {"succeeded": "green", "failed": "red", "denied": "bold magenta", "unknown": "yellow"}


class AuditkitGroup(click.Group):
    """Turns auditkit's own errors and database errors into one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuditkitError as e:
            raise CommandError(str(e)) from None
        except sqlite3.Error as e:
            raise CommandError(f"database error: {e}") from None
        except BrokenPipeError:
            sys.stderr.close()  # `auditkit events --format jsonl | head` is not an error
            return None


@click.group(cls=AuditkitGroup)
@click.version_option(package_name="auditkit")
def main() -> None:
    """auditkit: an open, local-first audit log for Convox racks."""


# --- events ---------------------------------------------------------------------------------------------------------

@main.command(context_settings={"ignore_unknown_options": True})
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
    conn = _open(db_path)
    if fmt == "table":
        _print_table(conn, f, limit or 50)
        return
    rows = store.iter_rows(conn, f)
    if limit is not None:
        rows = (row for i, row in zip(range(limit), rows))
    export.write(fmt, rows, sys.stdout)


def _print_table(conn: sqlite3.Connection, f: Filter, limit: int, console: Console | None = None) -> None:
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
            e.timestamp[:16].replace("T", " "),
            e.actor,
            e.rack,
            f"{e.category}/{e.action}",
            f"[{OUTCOME_STYLE.get(e.outcome, '')}]{e.outcome}[/]",
            e.description,
        )
    console.print(table)
    scope = f"matching {f.to_text()}" if not f.is_empty else "in the mirror"
    console.print(f"[dim]{len(page.events)} newest of {total:,} events {scope}[/]", highlight=False)


# --- verify ---------------------------------------------------------------------------------------------------------

@main.command()
@db_option
def verify(db_path: Path | None) -> None:
    """Re-check every hash chain and recording in the mirror (exit 1 naming the first bad event)."""
    conn = _open(db_path)
    started = time.monotonic()
    report = store.verify(conn)
    elapsed = time.monotonic() - started
    if report.ok:
        click.echo(f"verify: {report.summary()} ({elapsed:.1f}s)")
        for head in report.heads:
            click.echo(f"  {head.source}: seq {head.last_seq}, head {head.last_hash}")
        return
    click.echo(f"verify: {report.summary()}", err=True)
    for problem in report.problems:
        click.echo(f"  {problem.kind}: {problem.message}", err=True)
    sys.exit(1)


# --- synth and demo -------------------------------------------------------------------------------------------------

@main.command()
@click.option("--events", "count", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="How many events to write.")
@db_option
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same history.")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True, help="Span of the history.")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Last day of the history, UTC (default: now).")
def synth(count: int, db_path: Path | None, seed: int, days: int, end: Any) -> None:
    """Write a realistic, chain-valid synthetic history into the mirror."""
    from auditkit.synth import history as synth_mod

    path = db_path or store.default_db_path()
    conn = store.open_db(path)
    started = time.monotonic()
    summary = synth_mod.write_history(conn, events=count, seed=seed, days=days, end=end)
    elapsed = time.monotonic() - started
    click.echo(f"synth: wrote {summary.events:,} events and {summary.sessions} recordings to {path} "
               f"in {elapsed:.1f}s ({summary.events / max(elapsed, 1e-9):,.0f} events/s)")


@main.group(invoke_without_command=True)
@db_option
@click.option("--events", "count", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Size of the demo month when it has to be made.")
@click.pass_context
def demo(ctx: click.Context, db_path: Path | None, count: int) -> None:
    """The embedded default: a month of activity in the mirror, its newest events, and verify."""
    if ctx.invoked_subcommand is not None:
        return
    from auditkit.demo import load_sim

    load_sim("rack")  # a clear error without the simulated rack, before anything is made
    from auditkit.demo import run as demo_run

    demo_run.main(db_path or store.default_db_path(), count)


@demo.command("rack")
@click.option("--listen", default="127.0.0.1:7070", show_default=True, help="HOST:PORT to serve on.")
@click.option("--password", envvar="AUDITKIT_DEMO_RACK_PASSWORD", required=True,
              help="The rack API password clients must send (or $AUDITKIT_DEMO_RACK_PASSWORD).")
@click.option("--name", "rack_name", default="acme/production", show_default=True, help="The rack's name.")
def demo_rack(listen: str, password: str, rack_name: str) -> None:
    """Serve the simulated Convox rack alone (plain HTTP, for loopback)."""
    from auditkit.demo import load_sim

    rack_mod = load_sim("rack")

    rack_mod.serve(listen, password, rack_name=rack_name)


# --- sync -----------------------------------------------------------------------------------------------------------

class _SyncGroup(click.Group):
    """`auditkit sync [NAME…]` runs a sync; `auditkit sync add|list` manage sources."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_SyncGroup)
def sync() -> None:
    """Mirror gateway journals into the local store: `auditkit sync [NAME…] [--follow]`, `sync add`, `sync list`."""


@sync.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A file holding the source's feed key (auditor or admin); it is copied to data/ with mode 0600.")
@db_option
def sync_add(name: str, url: str, key_file: Path | None, db_path: Path | None) -> None:
    """Register a gateway feed as source NAME (the gateway's chain name)."""
    from auditkit.mirror import sync as sync_mod

    path = db_path or store.default_db_path()
    conn = store.open_db(path)
    key = key_file.read_text().strip() if key_file else None
    sync_mod.add_source(conn, name, url, key, path.parent)
    where = f"key in {sync_mod.key_path(path.parent, name)}" if key else f"key from ${sync_mod.env_var(name)}"
    click.echo(f"source {name} → {url} ({where})")


@sync.command("list")
@db_option
def sync_list(db_path: Path | None) -> None:
    """Each source's cursor, last sync time and lag."""
    conn = _open(db_path)
    table = Table(box=None, header_style="bold")
    for column in ("source", "url", "cursor (seq)", "last sync", "lag"):
        table.add_column(column)
    from auditkit.model.events import parse_timestamp, now_timestamp

    now = parse_timestamp(now_timestamp())
    for head in store.chain_heads(conn):
        if head.url is None:
            continue
        lag = "never synced"
        if head.last_sync_at:
            seconds = int((now - parse_timestamp(head.last_sync_at)).total_seconds())
            lag = f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds}s"
        table.add_row(head.source, head.url, str(head.last_seq), head.last_sync_at or "", lag)
    Console().print(table)


@sync.command("run", hidden=True)
@click.argument("names", nargs=-1)
@db_option
@click.option("--follow", is_flag=True, help="Keep mirroring new events as they are journaled.")
def sync_run(names: tuple[str, ...], db_path: Path | None, follow: bool) -> None:
    """Mirror the named sources (default: all)."""
    from auditkit.mirror import sync as sync_mod

    path = db_path or store.default_db_path()
    conn = _open(path)
    sources = [h for h in store.chain_heads(conn) if h.url and (not names or h.source in names)]
    unknown = set(names) - {h.source for h in sources}
    if unknown or not sources:
        raise AuditkitError(f"no such source: {', '.join(sorted(unknown))}" if unknown else
                            "no sources: add one with `auditkit sync add NAME URL --key-file F`")
    feeds = [sync_mod.Feed(h.source, h.url, sync_mod.read_key(h.source, path.parent)) for h in sources]
    interactive = sys.stdout.isatty()
    try:
        while True:
            for feed in feeds:
                started = time.monotonic()
                with _sync_progress(feed.name, interactive) as on_page:
                    done = sync_mod.sync_once(conn, feed, wait=1.0 if follow and len(feeds) == 1 else 0,
                                              progress=on_page)
                if done.synced or not follow:
                    rate = done.synced / max(time.monotonic() - started, 1e-9)
                    click.echo(f"sync {feed.name}: +{done.synced:,} events, +{done.recordings} recordings, "
                               f"at seq {done.head_seq} of {done.remote_head} ({rate:,.0f} events/s)")
            if not follow:
                return
            if len(feeds) > 1:
                time.sleep(0.2)
    except KeyboardInterrupt:
        return
    finally:
        for feed in feeds:
            feed.close()


@contextlib.contextmanager
def _sync_progress(name: str, interactive: bool) -> Iterator[Callable[[Any], None] | None]:
    """A progress bar with events/s and ETA on a terminal for runs that take more than a page; nothing otherwise
    (the caller prints one summary line)."""
    if not interactive:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(f"sync {name}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:>10} events/s"), TimeRemainingColumn(), transient=True)
    task = None
    started = time.monotonic()

    def on_page(state: Any) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(name, total=max(state.remote_head - state.head_seq + state.synced, state.synced),
                                rate="")
        rate = state.synced / max(time.monotonic() - started, 1e-9)
        bar.update(task, completed=state.synced, rate=f"{rate:,.0f}")

    try:
        yield on_page
    finally:
        if task is not None:
            bar.stop()


# --- the capabilities' commands -------------------------------------------------------------------------------------

main.add_command(capture_cli.gateway)
main.add_command(review_cli.tui)
main.add_command(review_cli.replay_command)
main.add_command(share_cli.share)
main.add_command(share_cli.serve)


if __name__ == "__main__":  # pragma: no cover
    main()
