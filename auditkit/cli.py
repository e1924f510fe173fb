"""The `auditkit` command line (click): the root group, which turns errors into one clear line on stderr (never a
traceback), the `demo` command, and the command groups each capability adds from its own cli module.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from auditkit import store
from auditkit.capture import cli as capture_cli
from auditkit.cli_common import CommandError, db_option
from auditkit.errors import AuditkitError
from auditkit.mirror import alert_cli
from auditkit.mirror import cli as mirror_cli
from auditkit.mirror import verify_cli
from auditkit.model.safe_text import printable
from auditkit.review import cli as review_cli
from auditkit.share import cli as share_cli
from auditkit.store import cli as store_cli
from auditkit.synth import cli as synth_cli

class AuditkitGroup(click.Group):
    """Refuses arguments that are not UTF-8 (before any command reads them) and turns auditkit's own errors and
    database errors into one line and exit status 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for i, arg in enumerate(args, 1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:  # a byte Python decoded with surrogateescape
                shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
                raise CommandError(f"argument {i} is not valid UTF-8: {shown}") from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuditkitError as e:
            raise CommandError(printable(str(e))) from None  # messages quote the input: never a terminal escape
        except sqlite3.Error as e:
            raise CommandError(printable(f"database error: {e}")) from None
        except BrokenPipeError:
            sys.stderr.close()  # `auditkit events --format jsonl | head` is not an error
            return None


@click.group(cls=AuditkitGroup)
@click.version_option(package_name="auditkit")
def main() -> None:
    """auditkit: an open, local-first audit log for Convox racks."""


# --- demo -----------------------------------------------------------------------------------------------------------

@main.group(invoke_without_command=True)
@db_option
@click.option("--events", "count", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Size of the demo month when it has to be made.")
@click.pass_context
def demo(ctx: click.Context, db_path: Path | None, count: int) -> None:
    """The embedded default, with no rack: a week of Convox CLI work through the real gateway, mirrored and served.

    The simulated rack and the capture gateway start on loopback; scripted users do a week of work through them
    (deploys, env changes, scaling, exec and SSH sessions typed at human speed, a certificate, a registry, a
    refused write, a failed promote); sync mirrors the journal into the mirror beside a synthetic month that ends
    where the week begins; both are shown and verified; Datasette starts with a share link; on a terminal the TUI
    opens on the week (without one the demo says how to open everything, and Datasette stops with it). Re-running
    reuses what exists. `auditkit demo rack` serves the simulated rack alone."""
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


# --- the capabilities' commands -------------------------------------------------------------------------------------

main.add_command(store_cli.events)
main.add_command(verify_cli.verify)
main.add_command(store_cli.mirror_key)
main.add_command(capture_cli.gateway)
main.add_command(mirror_cli.sync)
main.add_command(alert_cli.alert)
main.add_command(review_cli.tui)
main.add_command(review_cli.replay_command)
main.add_command(share_cli.share)
main.add_command(share_cli.serve)
main.add_command(share_cli.verify_export)
main.add_command(synth_cli.synth)


if __name__ == "__main__":  # pragma: no cover
    main()
