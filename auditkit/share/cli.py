"""The `auditkit share` and `auditkit serve` command groups: create, list, revoke and audit share links; run the
locked-down Datasette on the mirror and manage the admin accounts that may log in to it.

Each command is a thin layer over auditkit.share.links, .admins and .serve; the root group (auditkit.cli) turns
auditkit's errors into one line on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from auditkit import store
from auditkit.cli_common import FILTER_COMMAND, CommandError, db_option, literal, plural
from auditkit.model.filters import parse
from auditkit.share import admins, export as exporting, links as sharing, serve as serving


def _existing(db_path: Path | None) -> Path:
    """The mirror --db names (else the default one); refused when there is none."""
    return serving.require_mirror(db_path or store.default_db_path())


# --- share links ----------------------------------------------------------------------------------------------------

@click.group()
def share() -> None:
    """Signed, expiring links to a filtered slice of the mirror, for auditors (served by `auditkit serve`)."""


@share.command("create", **FILTER_COMMAND)
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
    conn = store.open_db(_existing(path))
    link, url = sharing.create(conn, f, secret=sharing.secret_for(path), expires=expires, since=since, until=until,
                               note=note, created_by=created_by or sharing.default_creator(), base_url=base_url)
    matching = store.count(conn, sharing.scope(link))
    click.echo(f"share link {link.id}: {plural(matching, 'event matches', 'events match')} {sharing.describe(link)}")
    if not matching:
        for hint in store.hints_for(conn, f):
            click.echo(f"warning: {hint.text()}", err=True)
    click.echo(url)


@share.command("list")
@db_option
def share_list(db_path: Path | None) -> None:
    """Every link with its status and number of views."""
    conn = store.open_db(_existing(db_path))
    table = Table(box=None, header_style="bold")
    for column in ("id", "status", "views", "filter", "range", "expires", "created", "note"):
        table.add_column(column, overflow="fold")
    for link in sharing.list_links(conn):
        status = link.status()
        if status == "revoked":
            status = f"revoked {sharing.human_time(link.revoked_at or '')} by {link.revoked_by}"
        table.add_row(link.id, literal(status), str(link.views), literal(link.filter_text or "(every event)"),
                      literal(sharing.range_text(link)),
                      sharing.human_time(link.expires_at) if link.expires_at else "never",
                      literal(f"{sharing.human_time(link.created_at)} by {link.created_by}"), literal(link.note))
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@share.command("revoke")
@click.argument("link_id")
@click.option("--by", "revoked_by", default=None, help="Who revokes it (default: $AUDITKIT_USER or the login name).")
@db_option
def share_revoke(link_id: str, revoked_by: str | None, db_path: Path | None) -> None:
    """Revoke a link: its next request is refused."""
    conn = store.open_db(_existing(db_path))
    link = sharing.revoke(conn, link_id, revoked_by or sharing.default_creator())
    click.echo(f"revoked {link.id} ({plural(link.views, 'view')})")


@share.command("views")
@click.argument("link_id")
@db_option
def share_views(link_id: str, db_path: Path | None) -> None:
    """Every recorded view of a link, newest first: time, IP, user agent, what was viewed."""
    conn = store.open_db(_existing(db_path))
    table = Table(box=None, header_style="bold")
    for column in ("time (UTC)", "outcome", "ip", "what", "user agent"):
        table.add_column(column, overflow="fold")
    found = sharing.views(conn, link_id)
    for e in found:
        table.add_row(e.timestamp.replace("T", " ")[:23], e.outcome, literal(e.source_ip),
                      literal(str(e.details.get("what", ""))), literal(e.user_agent))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    click.echo(f"{plural(len(found), 'view')} of {link_id}")


@share.command("export")
@click.argument("link_id")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The zip to write (refused if it exists).")
@click.option("--by", "exported_by", default=None, help="Who exports (default: $AUDITKIT_USER or the login name).")
@db_option
def share_export(link_id: str, output: Path, exported_by: str | None, db_path: Path | None) -> None:
    """Write the verifiable export of a link: its events with inclusion proofs against their chains' signed
    checkpoints, the keys, the recordings in scope and a manifest signed by the mirror (check it with
    `auditkit verify-export`). Recorded as an Access event on the local chain."""
    conn = store.open_db(_existing(db_path))
    link = sharing.get(conn, link_id)
    if output.exists():
        raise CommandError(f"{output} exists; choose another file")
    partial = output.with_name(output.name + ".partial")
    try:
        with open(partial, "xb") as out:
            summary = exporting.write_export(conn, link, out)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    sharing.record_export(conn, link, by=exported_by or sharing.default_creator(), events=summary.events,
                          details=exporting.export_details(summary))
    chains = ", ".join(f"{s} seq {a}–{b} ({c})" for s, (a, b, c) in summary.chains.items()) or "no chain"
    click.echo(f"wrote {output}: {summary.events:,} events of {link.id} ({chains}), {summary.recordings} "
               f"recording(s), manifest sha256 {summary.manifest_sha256}")


@share.command("rotate-secret")
@click.option("--by", "revoked_by", default=None, help="Who rotates it (default: $AUDITKIT_USER or the login name).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
def share_rotate(revoked_by: str | None, yes: bool, db_path: Path | None) -> None:
    """Replace the signing secret: every link stops working (they are marked revoked) and admins log in again."""
    path = db_path or store.default_db_path()
    conn = store.open_db(_existing(path))
    if not yes:
        click.confirm("Every share link will stop working. Rotate the secret?", abort=True)
    revoked = sharing.rotate_secret(conn, path, revoked_by or sharing.default_creator())
    click.echo(f"new secret in {sharing.secret_path(path)}; {plural(len(revoked), 'open link')} revoked; "
               "restart `auditkit serve`")


# --- verify-export ------------------------------------------------------------------------------------------------

@click.command("verify-export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "keys", multiple=True, metavar="KEY",
              help="A trusted verifier key (NAME+ID+KEY, as `auditkit gateway key` prints); repeat for each gateway "
                   "and the mirror. Without --key the keys inside the file are used, and said to be self-asserted.")
def verify_export(file: Path, keys: tuple[str, ...]) -> None:
    """Check a verifiable export offline: signatures, inclusion proofs, hashes and chain links, recordings, the
    scope of every event, the manifest and the counts (exit 1 naming the first problem)."""
    from auditkit.model import note
    from auditkit.share import export_check

    for key in keys:
        try:
            note.Verifier.parse(key)
        except note.NoteError as e:
            raise click.BadParameter(f"{key!r} is not a verifier key ({e})", param_hint="--key") from None
    try:
        report = export_check.check_export(file, list(keys))
    except export_check.ExportInvalid as e:
        click.echo(f"verify-export: FAILED: {e}", err=True)
        sys.exit(1)
    for line in report.lines():
        click.echo(line, err=line.startswith("WARNING"))


# --- serve ----------------------------------------------------------------------------------------------------------

@click.group(invoke_without_command=True)
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
    serving.serve(_existing(db_path), host=host, port=port, base_url=base_url, echo=click.echo)


@serve.group("admins")
def serve_admins() -> None:
    """Accounts that may log in to `auditkit serve` (kept hashed in admins.json beside the mirror)."""


@serve_admins.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@db_option
def admins_add(email: str, password_stdin: bool, db_path: Path | None) -> None:
    """Add an admin (or set a new password); asks for the password twice."""
    path = db_path or store.default_db_path()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    new = admins.add_admin(path, email, password)
    what = "added" if new else "password changed"
    click.echo(f"admin {email.strip().lower()} {what} in {admins.admins_path(path)} "
               "(restart `auditkit serve` to apply)")


@serve_admins.command("list")
@db_option
def admins_list(db_path: Path | None) -> None:
    """The admin accounts."""
    for email in sorted(admins.load_admins(db_path or store.default_db_path())):
        click.echo(email)


@serve_admins.command("remove")
@click.argument("email")
@db_option
def admins_remove(email: str, db_path: Path | None) -> None:
    """Remove an admin account (their login ends at the next restart of `auditkit serve`)."""
    path = db_path or store.default_db_path()
    admins.remove_admin(path, email)
    click.echo(f"admin {email.strip().lower()} removed")
