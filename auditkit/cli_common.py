"""What every command group of the `auditkit` command line shares: the `--db` option, opening the mirror a command
reads (refused in one line when it does not exist), CommandError (one line on stderr, exit status 2), and `literal`,
how event text goes into a Rich table."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from auditkit import store
from auditkit.model.safe_text import printable


class CommandError(click.ClickException):
    """One line on stderr and exit status 2, so that scripts can tell "could not run" from `verify`'s exit 1."""

    exit_code = 2


def db_option(func: Any) -> Any:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The mirror (default: $AUDITKIT_DB, else data/audit.db).",
    )(func)


def open_mirror(db_path: Path | None, *, must_exist: bool = True) -> sqlite3.Connection:
    return store.open_existing(db_path) if must_exist else store.open_db(db_path or store.default_db_path())


def literal(value: str | None, style: str = "") -> Text:
    """Event text for Rich: a Text (never parsed as markup, not highlighted) with control, bidi and zero-width
    characters as visible escapes (safe_text.printable)."""
    return Text(printable(value or ""), style=style)
