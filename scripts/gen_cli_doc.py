"""Write docs/cli.md, the command-line reference, from the click commands (auditkit.cli.main), so the page never
drifts from the commands.

    python scripts/gen_cli_doc.py          # rewrite docs/cli.md
    python scripts/gen_cli_doc.py --check  # exit 1 if docs/cli.md is not what the commands render

Every command and subcommand, depth first in click's order (names sorted), gets its usage line, its help text as
written (click's `\\b` markers dropped, nothing after `\\f`), its options (what `--help` lists, `--help` itself aside)
with their help, default, environment variable and whether they are required or repeatable, and its subcommands
(and, for a DefaultGroup, the one that runs when none is named).
Nothing depends on the terminal: no text is wrapped, and defaults are read from the options (never from the
environment).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import generated_doc  # noqa: E402
from auditkit.cli import main as ROOT_COMMAND  # noqa: E402

DOC = ROOT / "docs" / "cli.md"


def walk(command: click.Command, name: str,
         parent: click.Context | None = None) -> list[tuple[click.Command, click.Context]]:
    """Every command under `command` (itself first) with a context naming its full path, depth first."""
    ctx = click.Context(command, info_name=name, parent=parent)
    found = [(command, ctx)]
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            found += walk(command.commands[sub], sub, ctx)
    return found


def help_text(command: click.Command) -> str:
    """The command's help as its author wrote it: dedented, `\\b` lines dropped, cut at `\\f`."""
    text = inspect.cleandoc(command.help or "").split("\f", 1)[0]
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def usage(command: click.Command, ctx: click.Context) -> str:
    return " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])


def anchor(path: str) -> str:
    """The id GitHub gives the heading `## <path>`."""
    return path.lower().replace(" ", "-")


def cell(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return " ".join(text.split()).replace("|", r"\|").replace("<", "&lt;")


def default_text(option: click.Option, ctx: click.Context) -> str:
    """What the option's Default column says: its default (if it has one), its variable, required, repeatable."""
    parts = []
    if isinstance(option.show_default, str):
        parts.append(option.show_default)
    else:
        value = option.get_default(ctx, call=False)
        if callable(value):
            parts.append("computed")
        elif option.is_flag and not option.is_bool_flag and value is not None:
            parts.append(f"`{value}`")
        elif option.is_flag:
            if value:
                parts.append("on")
        elif value is not None and value != () and value is not getattr(click.core, "UNSET", object()):
            shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            parts.append(f"`{shown}`")
    if option.envvar:
        names = [option.envvar] if isinstance(option.envvar, str) else list(option.envvar)
        parts.append("env " + ", ".join(f"`{n}`" for n in names))
    if option.required:
        parts.append("required")
    if option.multiple:
        parts.append("repeatable")
    return cell("; ".join(parts))


def render_command(command: click.Command, ctx: click.Context) -> list[str]:
    path = ctx.command_path
    lines = [f"## {path}", ""]
    if command.hidden:
        lines += ["Hidden from its group's `--help`.", ""]
    lines += ["```text", usage(command, ctx), "```", ""]
    text = help_text(command)
    if text:
        lines += ["```text", text, "```", ""]
    help_option = command.get_help_option(ctx)
    options = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param is help_option or param.hidden:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        options.append(f"| `{cell(record[0])}` | {cell(inspect.cleandoc(param.help or ''))} "
                       f"| {default_text(param, ctx)} |")
    if options:
        lines += ["| Option | Help | Default |", "|---|---|---|", *options, ""]
    if isinstance(command, click.Group):
        lines += ["Commands:", ""]
        for sub in command.list_commands(ctx):
            child = command.commands[sub]
            summary = child.get_short_help_str(limit=1000)
            lines.append(f"- [{path} {sub}](#{anchor(f'{path} {sub}')}){' — ' + cell(summary) if summary else ''}")
        lines.append("")
        default = getattr(command, "default_cmd_name", None)  # click-default-group's DefaultGroup
        if default:
            lines += [f"Without a subcommand, `{path} [ARGS]...` runs [{path} {default}](#{anchor(f'{path} {default}')})"
                      f" with those arguments.", ""]
    return lines


def render_markdown(root: click.Command = ROOT_COMMAND, name: str = "auditkit") -> str:
    """docs/cli.md: every command of `root`, in order."""
    commands = walk(root, name)
    lines = [
        "# Command-line reference",
        "",
        "<!-- Generated from the click commands (auditkit.cli.main) by scripts/gen_cli_doc.py. "
        "Do not edit by hand. -->",
        "",
        f"Every `{name}` command and subcommand: its usage, its help text, its options (with their defaults and "
        "environment variables) and its subcommands. Every command also takes `--help`, which prints the same.",
        "",
    ]
    for command, ctx in commands:
        depth = len(ctx.command_path.split()) - 1
        summary = command.get_short_help_str(limit=1000)
        lines.append(f"{'  ' * depth}- [{ctx.command_path}](#{anchor(ctx.command_path)})"
                     f"{' — ' + cell(summary) if summary else ''}")
    lines.append("")
    for command, ctx in commands:
        lines += render_command(command, ctx)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated_doc.main(DOC, render_markdown, "scripts/gen_cli_doc.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
