"""The `auditkit` command line (click): events, verify, synth and demo. Each command is a thin layer over the
store, the filter language and the demo package; errors are one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from auditkit import store
from auditkit.share import links as sharing
from auditkit.errors import AuditkitError
from auditkit.model.filters import parse
from auditkit.mirror import cli as mirror_cli
from auditkit.store import cli as store_cli
from auditkit.store.cli import db_option
from auditkit.synth import cli as synth_cli


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


def _open(db_path: Path | None) -> sqlite3.Connection:
    return store.open_existing(db_path)


@click.group(cls=AuditkitGroup)
@click.version_option(package_name="auditkit")
def main() -> None:
    """auditkit: an open, local-first audit log for Convox racks."""


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


# --- demo -----------------------------------------------------------------------------------------------------------

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
    return store.existing_path(db_path)


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


# --- gateway --------------------------------------------------------------------------------------------------------

def journal_option(func: Any) -> Any:
    func = click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="The gateway journal (default: the config's, else data/gateway.db).")(func)
    return click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        default=None, help="gateway.toml")(func)


def _gateway_config(config_path: Path | None, **overrides: Any) -> Any:
    from auditkit.capture import config as config_mod

    return config_mod.load(config_path, **overrides)


def _journal_conn(config: Any) -> tuple[sqlite3.Connection, str]:
    from auditkit.capture.journal import journal_source

    conn = store.open_db(config.journal, durable=True)
    return conn, journal_source(conn, config.name)


@main.group()
def gateway() -> None:
    """The capture gateway: serve it, manage its users and deploy keys."""


@gateway.command("serve")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--rack", "racks", multiple=True, help="NAME=URL (URL may carry the rack's credentials); repeatable.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--listen", default=None, help="HOST:PORT (default 127.0.0.1:5443).")
@click.option("--http", "plain_http", is_flag=True, default=None, help="Serve plain HTTP (loopback only).")
@click.option("--name", default=None,
              help="The journal's chain name (default: the chain the journal holds, else gateway; another is refused).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the TLS pair and the HMAC key live (default: the journal's folder).")
@click.option("--record-input", is_flag=True, default=None, help="Also record keystrokes of sessions.")
def gateway_serve(config_path: Path | None, racks: tuple[str, ...], journal: Path | None, listen: str | None,
                  plain_http: bool | None, name: str | None, data_dir: Path | None,
                  record_input: bool | None) -> None:
    """Run the gateway in front of the configured racks. Its state (self-signed TLS pair, HMAC key, named after the
    journal's chain) lives beside the journal unless --data-dir or the config say otherwise."""
    from auditkit.capture import config as config_mod
    from auditkit.capture import server

    config = config_mod.load(config_path, racks=[config_mod.parse_rack_flag(r) for r in racks], journal=journal,
                             listen=listen, http=plain_http, name=name, data_dir=data_dir, record_input=record_input)
    server.serve(config)


def _print_key(kind: str, name: str, key: str) -> None:
    click.echo(f"{kind} {name} created. Its key is shown once; it cannot be recovered:", err=True)
    click.echo(key)


@gateway.group("users")
def gateway_users() -> None:
    """Gateway users (email + role)."""


def rack_grant_option(func: Any) -> Any:
    return click.option("--rack", "racks", multiple=True, metavar="RACK",
                        help="Grant only this rack (as the gateway config names it, e.g. acme/staging); repeatable. "
                             "Default: every rack.")(func)


def _check_grants(config: Any, racks: tuple[str, ...]) -> None:
    """Warn about granted racks the given config does not serve (they may be configured later, or on a replica)."""
    if config.racks:
        for name in sorted(set(r.strip() for r in racks) - set(config.racks)):
            click.echo(f"warning: rack '{name}' is not in this gateway's config "
                       f"({', '.join(sorted(config.racks))})", err=True)


@gateway_users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "member", "auditor"]), required=True)
@rack_grant_option
@journal_option
def users_add(email: str, role: str, racks: tuple[str, ...], journal: Path | None, config_path: Path | None) -> None:
    """Add a user; prints the new key alone on the last line."""
    from auditkit.capture import keys

    config = _gateway_config(config_path, journal=journal)
    conn, source = _journal_conn(config)
    _check_grants(config, racks)
    _, key = keys.add(conn, email, kind="user", role=role, source=source, racks=racks or None)
    _print_key("user", email, key)


@gateway.group("keys")
def gateway_keys() -> None:
    """Deploy keys (named keys for CI; events are recorded under the key's name)."""


@gateway_keys.command("add")
@click.argument("name")
@rack_grant_option
@journal_option
def keys_add(name: str, racks: tuple[str, ...], journal: Path | None, config_path: Path | None) -> None:
    """Add a deploy key; prints the new key alone on the last line."""
    from auditkit.capture import keys

    config = _gateway_config(config_path, journal=journal)
    conn, source = _journal_conn(config)
    _check_grants(config, racks)
    _, key = keys.add(conn, name, kind="deploy_key", role="deploy", source=source, racks=racks or None)
    _print_key("deploy key", name, key)


def _list(kind: str, journal: Path | None, config_path: Path | None) -> None:
    from auditkit.capture import keys

    conn, _ = _journal_conn(_gateway_config(config_path, journal=journal))
    table = Table(box=None, header_style="bold")
    for column in ("name", "role", "racks", "key id", "created", "revoked"):
        table.add_column(column)
    for row in keys.list_keys(conn):
        if row["kind"] == kind:
            grants = "none (auditor)" if row["role"] == "auditor" else keys.grants_text(row["racks"])
            table.add_row(row["name"], row["role"], grants, row["id"], row["created_at"], row["revoked_at"] or "")
    Console().print(table)


def _revoke(name: str, journal: Path | None, config_path: Path | None) -> None:
    from auditkit.capture import keys

    conn, source = _journal_conn(_gateway_config(config_path, journal=journal))
    for key_id in keys.revoke(conn, name, source=source):
        click.echo(f"revoked {key_id} ({name})")


@gateway_users.command("list")
@journal_option
def users_list(journal: Path | None, config_path: Path | None) -> None:
    """List users, their roles and the racks they are granted."""
    _list("user", journal, config_path)


@gateway_users.command("revoke")
@click.argument("email")
@journal_option
def users_revoke(email: str, journal: Path | None, config_path: Path | None) -> None:
    """Revoke a user's key (takes effect on the next request)."""
    _revoke(email, journal, config_path)


@gateway_keys.command("list")
@journal_option
def keys_list(journal: Path | None, config_path: Path | None) -> None:
    """List deploy keys and the racks they are granted."""
    _list("deploy_key", journal, config_path)


@gateway_keys.command("revoke")
@click.argument("name")
@journal_option
def keys_revoke(name: str, journal: Path | None, config_path: Path | None) -> None:
    """Revoke a deploy key."""
    _revoke(name, journal, config_path)


@gateway.command("hmac")
@click.argument("value")
@journal_option
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the gateway keeps its HMAC key, if not beside the journal.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The HMAC key file itself (default: the config's, else <chain>-hmac.key beside the journal).")
def gateway_hmac(value: str, journal: Path | None, config_path: Path | None, data_dir: Path | None,
                 key_file: Path | None) -> None:
    """Print the HMAC the gateway on this journal records for VALUE (env values, hashed parameters), to compare with
    an event's details. Uses the key the gateway uses: its chain's, found as `gateway serve` finds it."""
    from auditkit.model.events import value_hmac

    config = _gateway_config(config_path, journal=journal, data_dir=data_dir, hmac_key_file=key_file)
    click.echo(value_hmac(config.hmac_key(create=False), value))



# --- the command groups of the capability packages ------------------------------------------------------------------

main.add_command(store_cli.events)
main.add_command(store_cli.verify)
main.add_command(mirror_cli.sync)
main.add_command(synth_cli.synth)


if __name__ == "__main__":  # pragma: no cover
    main()
