"""What every command group of the `auditkit` command line shares: the `--db` option, opening the mirror a command
reads (refused in one line when it does not exist), CommandError (one line on stderr, exit status 2),
FilterCommand, the command class of every command that takes filter words (`events`, `tui`, `share create`),
plural() for counts in what the commands print ("1 view", "2 views"), and `literal`, how event text goes into a
Rich table."""

from __future__ import annotations

import difflib
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


class FilterCommand(click.Command):
    """A command whose arguments are filter words: words may start with `-` (`-user:ci-bot` negates), so unknown
    options cannot be refused by click itself, but a word starting with `--` before a `--` is a mistyped option
    (`--limt 5` would otherwise filter by "5"): it is refused, naming the options it may have meant. After `--`
    every word is a filter word."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        options = {name: param for param in self.get_params(ctx) if isinstance(param, click.Option)
                   for name in (*param.opts, *param.secondary_opts) if name.startswith("--")}
        words = iter(args)
        for arg in words:
            if arg == "--":
                break
            if not arg.startswith("--"):
                continue
            name, has_value, _ = arg.partition("=")
            option = options.get(name)
            if option is None:
                close = difflib.get_close_matches(name, sorted(options), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise click.UsageError(f"no such option: {name}{hint}; a filter word that starts with `--` "
                                       "goes after `--`", ctx)
            if not has_value and not option.is_flag and option.nargs > 0:
                next(words, None)  # the option's value (`--note --draft` is a note), not a word to check
        return super().parse_args(ctx, args)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and the noun that goes with it: 1 view, 2 views, 1,000 events."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


FILTER_COMMAND: dict[str, Any] = {"cls": FilterCommand, "context_settings": {"ignore_unknown_options": True}}


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
