"""`auditkit verify`: the mirror checked offline against its signed checkpoints (store.verify) and, with --online,
against each source's live checkpoint (mirror/online.py). It lives here, not beside `auditkit events` in store/cli.py,
because --online asks the feeds through mirror/sync.py, which the store may not import."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from auditkit import store
from auditkit.cli_common import CommandError, db_option
from auditkit.model import note


def _keys(texts: tuple[str, ...]) -> list[note.Verifier]:
    keys = []
    for text in texts:
        try:
            keys.append(note.Verifier.parse(text))
        except note.NoteError as e:
            raise CommandError(f"--key {text!r}: {e}") from None
    return keys


@click.command()
@db_option
@click.option("--online", is_flag=True,
              help="Also fetch each synced source's live checkpoint from its feed and check that it extends the "
                   "stored one; say how far behind the mirror is.")
@click.option("--key", "keys", multiple=True, metavar="NAME+ID+KEY",
              help="A verifier key known from outside the mirror (`auditkit gateway key`, `auditkit mirror-key`): "
                   "the chain NAME must be signed by it. Repeatable.")
def verify(db_path: Path | None, online: bool, keys: tuple[str, ...]) -> None:
    """Re-check every chain, its Merkle tree, its signed checkpoints and every recording (exit 1 naming each
    problem)."""
    pinned = _keys(keys)
    path = store.existing_path(db_path)
    conn = store.open_db(path)
    started = time.monotonic()
    report = store.verify(conn, keys=pinned)
    if online:
        from auditkit.mirror import online as online_check

        online_check.check(conn, report, path.parent)
    elapsed = time.monotonic() - started
    if not report.ok:
        click.echo(f"verify: {report.summary()}", err=True)
        for problem in report.problems:
            click.echo(f"  {problem.kind}: {problem.message}", err=True)
        for line in report.notes:
            click.echo(f"  {line}", err=True)
        sys.exit(1)
    click.echo(f"verify: {report.summary()} ({elapsed:.1f}s)")
    for head in report.heads:
        signature = report.signatures.get(head.source)
        signed = (f", signed at size {signature.size} by {signature.key}" if signature else "")
        click.echo(f"  {head.source}: seq {head.last_seq}, head {head.last_hash}{signed}")
    for line in report.notes:
        click.echo(f"  {line}")
    if store.LOCAL_SOURCE in report.signatures:
        click.echo(f"  the mirror's key: {store.local_verifier(conn)} (compare it with the one you pinned)")
