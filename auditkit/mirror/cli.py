"""`auditkit sync`: `sync [NAME…] [--follow]` mirrors the registered gateway feeds (the group's default command,
hidden as `run`), `sync add` registers one and pins its gateway (TLS, checkpoint key), `sync list` shows each
source's cursor and lag.
"""

from __future__ import annotations

import contextlib
import os
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
@click.argument("name_and_url", nargs=-1, required=True, metavar="[NAME] URL")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A file holding the source's feed key (auditor or admin); it is copied to data/ with mode 0600. "
                   "Default: $AUDITKIT_SYNC_KEY_<NAME> (then NAME must be given).")
@click.option("--fingerprint", default=None, metavar="SHA256",
              help="The SHA-256 fingerprint of the gateway's TLS certificate, as `auditkit gateway serve` prints it "
                   "(AB:CD:… or 64 hex digits); checked during the handshake, before the key is sent.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A PEM file of the CA(s) that sign the gateway's certificate (its host name is checked too).")
@click.option("--insecure", is_flag=True,
              help="Do not verify the gateway's certificate (or allow plain HTTP to another machine); every sync "
                   "warns.")
@click.option("--checkpoint-key", default=None, metavar="KEY",
              help="The gateway's checkpoint verifier key, as `auditkit gateway key` prints it "
                   "(<name>+<key id>+<base64>). Default: learned from the gateway now, and printed.")
@db_option
def sync_add(name_and_url: tuple[str, ...], key_file: Path | None, fingerprint: str | None, ca_file: Path | None,
             insecure: bool, checkpoint_key: str | None, db_path: Path | None) -> None:
    """Register a gateway feed and pin the gateway: its TLS certificate (--fingerprint or --ca-file; else the
    system's trust store must vouch for it) and its checkpoint key, which every sync checks the signed tree with.
    NAME is the chain the gateway serves: asked from the feed now, so it may be left out, and another is refused."""
    from auditkit.capture.tls import parse_fingerprint
    from auditkit.mirror import sync as sync_mod
    from auditkit.mirror.trust import Pins

    if len(name_and_url) > 2:
        raise click.UsageError("give at most NAME and URL")
    name, url = (None, name_and_url[0]) if len(name_and_url) == 1 else name_and_url
    if key_file is not None:
        key = key_file.read_text().strip()
    elif name is not None and os.environ.get(sync_mod.env_var(name), "").strip():
        key = os.environ[sync_mod.env_var(name)].strip()
    else:
        where = f" or set ${sync_mod.env_var(name)}" if name else " (or give NAME and set $AUDITKIT_SYNC_KEY_<NAME>)"
        raise AuditkitError(f"the feed key is needed to ask the feed which chain it serves: give --key-file{where}")
    pins = Pins(fingerprint=parse_fingerprint(fingerprint) if fingerprint else None,
                ca_file=str(ca_file.resolve()) if ca_file else None, insecure=insecure,
                checkpoint_key=checkpoint_key.strip() if checkpoint_key else None)
    path = db_path or store.default_db_path()
    conn = store.open_db(path)
    added = sync_mod.add_source(conn, name, url, key, path.parent, pins, write_key=key_file is not None)
    name = added.name
    where = f"key in {sync_mod.key_path(path.parent, name)}" if key_file else f"key from ${sync_mod.env_var(name)}"
    click.echo(f"source {name} → {url.rstrip('/')} ({where}; {pins.describe(url)})")
    if added.learned_key:
        unverified = " over TLS that was NOT verified (--insecure): anyone on the path could have served it" \
            if insecure else ""
        click.echo(f"checkpoint key learned from the gateway{unverified} and pinned; compare it with what "
                   f"`auditkit gateway key` prints on the gateway's machine:\n{added.pins.checkpoint_key}")
    else:
        click.echo(f"checkpoint key pinned: {added.pins.checkpoint_key}")


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
@click.option("--refetch", is_flag=True,
              help="Fetch again events removed from the mirror after a checkpoint it stored signed them (refused "
                   "otherwise); recorded on the mirror's local chain.")
def sync_run(names: tuple[str, ...], db_path: Path | None, follow: bool, refetch: bool) -> None:
    """Mirror the named sources (default: all)."""
    from auditkit.mirror import sync as sync_mod
    from auditkit.mirror import trust

    path = store.existing_path(db_path)
    conn = store.open_db(path)
    sources = [h for h in store.chain_heads(conn) if h.url and (not names or h.source in names)]
    unknown = set(names) - {h.source for h in sources}
    if unknown or not sources:
        raise AuditkitError(f"no such source: {', '.join(sorted(unknown))}" if unknown else
                            "no sources: add one with `auditkit sync add URL --key-file F --fingerprint SHA256`")
    feeds = []
    for head in sources:
        pins = trust.load(conn, head.source)
        warning = trust.warning(head.url, pins)
        if warning:
            click.echo(f"{head.source}: {warning}", err=True)
        feeds.append(sync_mod.Feed(head.source, head.url, sync_mod.read_key(head.source, path.parent), pins))
    interactive = sys.stdout.isatty()
    alerting = _alerts(conn, path) if follow else None  # alerts are posted while following (mirror/alerts.py)
    try:
        while True:
            for feed in feeds:
                started = time.monotonic()
                with _sync_progress(feed.name, interactive) as on_page:
                    done = sync_mod.sync_once(conn, feed, wait=1.0 if follow and len(feeds) == 1 else 0,
                                              progress=_then(on_page, alerting), refetch=refetch)
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
        if alerting is not None:
            alerting[1].stop()


def _alerts(conn: Any, path: Path) -> tuple[Callable[[Any], None], Any]:
    """(after each committed page: queue matching events and wake the poster, the poster)."""
    from auditkit.mirror import alerts

    poster = alerts.Dispatcher(path).start()

    def after_page(_state: Any) -> None:
        if alerts.scan(conn):
            poster.wake()

    after_page(None)  # what was mirrored while not following
    return after_page, poster


def _then(on_page: Callable[[Any], None] | None,
          alerting: tuple[Callable[[Any], None], Any] | None) -> Callable[[Any], None] | None:
    if alerting is None:
        return on_page

    def both(state: Any) -> None:
        if on_page is not None:
            on_page(state)
        alerting[0](state)
    return both


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
