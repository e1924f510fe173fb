"""The review commands of the `auditkit` command line: `auditkit tui` (the Textual TUI on the mirror) and `auditkit
replay` (a recording file, or a mirrored session checked against its hash). Textual and pyte load only when one of
these commands runs."""

from __future__ import annotations

from pathlib import Path

import click

from auditkit import store
from auditkit.cli_common import FILTER_COMMAND, CommandError, db_option, open_mirror
from auditkit.model.filters import parse


@click.command(**FILTER_COMMAND)
@click.argument("filter_words", nargs=-1, type=click.UNPROCESSED)
@db_option
@click.option("--base-url", envvar="AUDITKIT_BASE_URL", default=None,
              help="Where `auditkit serve` is reached, for share links (default: $AUDITKIT_BASE_URL, else "
                   "http://127.0.0.1:8001).")
@click.option("--utc", is_flag=True, help="Show times in UTC (default: local time; `z` toggles).")
def tui(filter_words: tuple[str, ...], db_path: Path | None, base_url: str | None, utc: bool) -> None:
    """Review the mirror from the keyboard: the event list (newest first), filters, detail, replay, share links.

    FILTER_WORDS, if given, is the filter it opens with (the filter language of `auditkit events`)."""
    from auditkit.review.tui.app import run  # lazy: every other command runs without loading Textual

    f = parse(" ".join(filter_words))
    path = db_path or store.default_db_path()
    open_mirror(path).close()  # exists, and migrated: the TUI itself only reads
    run(path, base_url=base_url, utc=utc, initial_filter=f)


@click.command("replay")
@click.argument("target")
@db_option
def replay_command(target: str, db_path: Path | None) -> None:
    """Replay a recording: an asciicast v2 file (.cast, plain or gzipped) or the SESSION_ID of a mirrored session.

    Keys: space play/pause, ←/→ 5 s, 0–9 jump, < > speed, . step, i idle skip, [ ] markers, / search, n/N, ? keys, q.
    """
    # lazy: every other command runs without loading pyte and Textual
    from auditkit.review import replay
    from auditkit.review.tui.screens.replay import ReplayApp

    path = Path(target)
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CommandError(f"cannot read {path}: {e.strerror}") from None
        try:
            recording = replay.open_file(data, db_path or store.default_db_path())
        except replay.RecordingError as e:
            raise CommandError(f"{path}: {e}") from None
        app = ReplayApp(recording, title=path.name)
    elif path.suffix in (".cast", ".gz") or "/" in target or path.exists():
        raise CommandError(f"no recording file at {path}")
    else:
        session = replay.open_session(open_mirror(db_path), target)
        app = ReplayApp(session.recording, title=session.title, event_markers=session.event_markers)
    app.run()
