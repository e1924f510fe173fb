"""`auditkit sync`: `sync [NAME…] [--follow]` mirrors the registered gateway feeds (the group's default command,
hidden as `run`), `sync add` registers one, `sync list` shows each source's cursor and lag.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import click
from click_default_group import DefaultGroup
from rich.console import Console
from rich.table import Table

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.model.events import now_timestamp, parse_timestamp
from auditkit.model.times import since_text
from auditkit.cli_common import db_option, plural


class SyncGroup(DefaultGroup):
    """`sync`'s help leads with its main use, the hidden default command: `sync [NAME…] [--follow]`, its options,
    then the subcommands."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[NAME…] [--follow] [--db PATH]")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        run = self.commands["run"]
        records = [r for r in (p.get_help_record(ctx) for p in run.get_params(ctx) if isinstance(p, click.Option)) if r]
        with formatter.section("Options of `sync [NAME…]`"):
            formatter.write_dl(records)
        self.format_commands(ctx, formatter)


@click.group(cls=SyncGroup, default="run", default_if_no_args=True)
def sync() -> None:
    """Mirror gateway journals into the local store.

    `auditkit sync` mirrors every registered source once, `auditkit sync NAME…` the named ones; `--follow` keeps
    mirroring new events as they are journaled (Ctrl+C stops). Register a source with `sync add` first."""


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
    conn = store.open_existing(db_path)
    table = Table(box=None, header_style="bold")
    for column in ("source", "url", "cursor (seq)", "last sync", "lag"):
        table.add_column(column)
    now = parse_timestamp(now_timestamp())
    for head in store.chain_heads(conn):
        if head.url is None:
            continue
        lag = "never synced"
        if head.last_sync_at:
            lag = since_text((now - parse_timestamp(head.last_sync_at)).total_seconds())
        table.add_row(head.source, head.url, str(head.last_seq), head.last_sync_at or "", lag)
    Console().print(table)


@sync.command("run", hidden=True)
@click.argument("names", nargs=-1)
@db_option
@click.option("--follow", is_flag=True, help="Keep mirroring new events as they are journaled.")
def sync_run(names: tuple[str, ...], db_path: Path | None, follow: bool) -> None:
    """Mirror the named sources (default: all)."""
    from auditkit.mirror import sync as sync_mod

    path = store.existing_path(db_path)
    conn = store.open_db(path)
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
                    click.echo(f"sync {feed.name}: +{plural(done.synced, 'event')}, +{plural(done.recordings, 'recording')}, "
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
