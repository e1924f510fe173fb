"""The `auditkit` command line (click): events, verify, synth and demo. Each command is a thin layer over the
store, the filter language and the demo package; errors are one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
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
from auditkit.model import export
from auditkit.share import links as sharing
from auditkit.errors import AuditkitError
from auditkit.model.filters import Filter, parse

OUTCOME_STYLE = {"succeeded": "green", "failed": "red", "denied": "bold magenta", "unknown": "yellow"}


class CommandError(click.ClickException):
    """One line on stderr and exit status 2, so that scripts can tell "could not run" from `verify`'s exit 1."""

    exit_code = 2


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


def db_option(func: Any) -> Any:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The mirror (default: $AUDITKIT_DB, else data/audit.db).",
    )(func)


def _open(db_path: Path | None, *, must_exist: bool = True) -> sqlite3.Connection:
    path = db_path or store.default_db_path()
    if must_exist and not path.exists():
        raise AuditkitError(f"no database at {path} (run `auditkit synth` or `make demo` to make one)")
    return store.open_db(path)


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


# --- tui ------------------------------------------------------------------------------------------------------------

@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("filter_words", nargs=-1, type=click.UNPROCESSED)
@db_option
@click.option("--base-url", envvar="AUDITKIT_BASE_URL", default=None,
              help="Where `auditkit serve` is reached, for share links (default: $AUDITKIT_BASE_URL, else "
                   "http://127.0.0.1:8001).")
@click.option("--utc", is_flag=True, help="Show times in UTC (default: local time; `z` toggles).")
def tui(filter_words: tuple[str, ...], db_path: Path | None, base_url: str | None, utc: bool) -> None:
    """Review the mirror from the keyboard: the event list (newest first), filters, detail, replay, share links.

    FILTER_WORDS, if given, is the filter it opens with (the filter language of `auditkit events`)."""
    from auditkit.review.tui.app import run

    f = parse(" ".join(filter_words))
    path = db_path or store.default_db_path()
    _open(path).close()  # exists, and migrated: the TUI itself only reads
    run(path, base_url=base_url, utc=utc, initial_filter=f)


# --- replay ---------------------------------------------------------------------------------------------------------

@main.command("replay")
@click.argument("target")
@db_option
def replay_command(target: str, db_path: Path | None) -> None:
    """Replay a recording: an asciicast v2 file (.cast, plain or gzipped) or the SESSION_ID of a mirrored session.

    Keys: space play/pause, ←/→ 5 s, 0–9 jump, < > speed, . step, i idle skip, [ ] markers, / search, n/N, ? keys, q.
    """
    from auditkit.review import replay
    from auditkit.review.tui.screens.replay import ReplayApp

    path = Path(target)
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CommandError(f"cannot read {path}: {e.strerror}") from None
        try:
            recording = replay.load(data)
        except replay.RecordingError as e:
            raise CommandError(f"{path}: {e}") from None
        app = ReplayApp(recording, title=path.name)
    elif path.suffix in (".cast", ".gz") or "/" in target or path.exists():
        raise CommandError(f"no recording file at {path}")
    else:
        session = replay.open_session(_open(db_path), target)
        app = ReplayApp(session.recording, title=session.title, event_markers=session.event_markers)
    app.run()


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


# --- share links ----------------------------------------------------------------------------------------------------

def _who() -> str:
    import getpass

    try:
        return os.environ.get("AUDITKIT_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "system"


@main.group()
def share() -> None:
    """Signed, expiring links to a filtered slice of the mirror, for auditors (served by `auditkit serve`)."""


@share.command("create", context_settings={"ignore_unknown_options": True})
@click.argument("filter_words", nargs=-1, type=click.UNPROCESSED)
@click.option("--expires", required=True, help="7d, 24h, 2w, 2026-12-31 (end of that UTC day), a date-time, or never.")
@click.option("--since", default=None, help="Start of the time range (as since: in the filter language).")
@click.option("--until", default=None, help="End of the time range, included (as until:).")
@click.option("--note", default=None, help="Why the link exists (shown to admins and the auditor).")
@click.option("--base-url", envvar="AUDITKIT_BASE_URL", default=sharing.DEFAULT_BASE_URL, show_default=True,
              help="Public URL of `auditkit serve` (or $AUDITKIT_BASE_URL).")
@click.option("--by", "created_by", default=None, help="Who creates it (default: $AUDITKIT_USER or the login name).")
@db_option
def share_create(filter_words: tuple[str, ...], expires: str, since: str | None, until: str | None,
                 note: str | None, base_url: str, created_by: str | None, db_path: Path | None) -> None:
    """Create a link to the events matching FILTER; prints the URL alone on the last line.

    Relative times (since:7d) are fixed when the link is made. Example:
    auditkit share create rack:acme/production category:Releases --since 2026-11-01 --expires 7d --note "SOC 2"
    """
    f = parse(" ".join(filter_words))
    path = db_path or store.default_db_path()
    conn = _open(path)
    link, url = sharing.create(conn, f, secret=sharing.secret_for(path), expires=expires, since=since, until=until,
                               note=note, created_by=created_by or _who(), base_url=base_url)
    matching = store.count(conn, sharing.scope(link))
    click.echo(f"share link {link.id}: {matching:,} events match {sharing.describe(link)}")
    click.echo(url)


@share.command("list")
@db_option
def share_list(db_path: Path | None) -> None:
    """Every link with its status and number of views."""
    conn = _open(db_path)
    table = Table(box=None, header_style="bold")
    for column in ("id", "status", "views", "filter", "range", "expires", "created", "note"):
        table.add_column(column, overflow="fold")
    for link in sharing.list_links(conn):
        status = link.status()
        if status == "revoked":
            status = f"revoked {sharing.human_time(link.revoked_at or '')} by {link.revoked_by}"
        table.add_row(link.id, status, str(link.views), link.filter_text or "(every event)",
                      sharing.range_text(link),
                      sharing.human_time(link.expires_at) if link.expires_at else "never",
                      f"{sharing.human_time(link.created_at)} by {link.created_by}", link.note or "")
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@share.command("revoke")
@click.argument("link_id")
@click.option("--by", "revoked_by", default=None, help="Who revokes it (default: $AUDITKIT_USER or the login name).")
@db_option
def share_revoke(link_id: str, revoked_by: str | None, db_path: Path | None) -> None:
    """Revoke a link: its next request is refused."""
    conn = _open(db_path)
    link = sharing.revoke(conn, link_id, revoked_by or _who())
    click.echo(f"revoked {link.id} ({link.views} views)")


@share.command("views")
@click.argument("link_id")
@db_option
def share_views(link_id: str, db_path: Path | None) -> None:
    """Every recorded view of a link, newest first: time, IP, user agent, what was viewed."""
    conn = _open(db_path)
    table = Table(box=None, header_style="bold")
    for column in ("time (UTC)", "outcome", "ip", "what", "user agent"):
        table.add_column(column, overflow="fold")
    found = sharing.views(conn, link_id)
    for e in found:
        table.add_row(e.timestamp.replace("T", " ")[:23], e.outcome, e.source_ip or "",
                      str(e.details.get("what", "")), e.user_agent or "")
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    click.echo(f"{len(found)} view(s) of {link_id}")


@share.command("rotate-secret")
@click.option("--by", "revoked_by", default=None, help="Who rotates it (default: $AUDITKIT_USER or the login name).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
def share_rotate(revoked_by: str | None, yes: bool, db_path: Path | None) -> None:
    """Replace the signing secret: every link stops working (they are marked revoked) and admins log in again."""
    path = db_path or store.default_db_path()
    conn = _open(path)
    if not yes:
        click.confirm("Every share link will stop working. Rotate the secret?", abort=True)
    revoked = sharing.rotate_secret(conn, path, revoked_by or _who())
    click.echo(f"new secret in {sharing.secret_path(path)}; {len(revoked)} open link(s) revoked; "
               "restart `auditkit serve`")


# --- serve ----------------------------------------------------------------------------------------------------------

@main.group(invoke_without_command=True)
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--base-url", envvar="AUDITKIT_BASE_URL", default=None,
              help="Public URL (scheme, host, optional path prefix) when behind a proxy (or $AUDITKIT_BASE_URL); "
                   "https turns on Secure cookies. Default: http://HOST:PORT.")
@click.pass_context
def serve(ctx: click.Context, db_path: Path | None, host: str, port: int, base_url: str | None) -> None:
    """Run Datasette on the mirror for admins, with the share pages for auditors (`serve admins add` first)."""
    if ctx.invoked_subcommand is not None:
        return
    from auditkit.share import serve as serve_mod

    serve_mod.serve(_existing(db_path), host=host, port=port, base_url=base_url, echo=click.echo)


def _existing(db_path: Path | None) -> Path:
    path = db_path or store.default_db_path()
    if not path.exists():
        raise AuditkitError(f"no database at {path} (run `auditkit synth` or `make demo` to make one)")
    return path


@serve.group("admins")
def serve_admins() -> None:
    """Accounts that may log in to `auditkit serve` (kept hashed in admins.json beside the mirror)."""


@serve_admins.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@db_option
def admins_add(email: str, password_stdin: bool, db_path: Path | None) -> None:
    """Add an admin (or set a new password); asks for the password twice."""
    from auditkit.share import serve as serve_mod

    path = db_path or store.default_db_path()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    new = serve_mod.add_admin(path, email, password)
    what = "added" if new else "password changed"
    click.echo(f"admin {email.strip().lower()} {what} in {serve_mod.admins_path(path)} "
               "(restart `auditkit serve` to apply)")


@serve_admins.command("list")
@db_option
def admins_list(db_path: Path | None) -> None:
    """The admin accounts."""
    from auditkit.share import serve as serve_mod

    for email in sorted(serve_mod.load_admins(db_path or store.default_db_path())):
        click.echo(email)


@serve_admins.command("remove")
@click.argument("email")
@db_option
def admins_remove(email: str, db_path: Path | None) -> None:
    """Remove an admin account (their login ends at the next restart of `auditkit serve`)."""
    from auditkit.share import serve as serve_mod

    path = db_path or store.default_db_path()
    serve_mod.remove_admin(path, email)
    click.echo(f"admin {email.strip().lower()} removed")


# --- the capabilities' command groups --------------------------------------------------------------------------

main.add_command(capture_cli.gateway)


if __name__ == "__main__":  # pragma: no cover
    main()
