"""`auditkit alert add NAME FILTER --webhook URL`, `alert list`, `alert remove NAME`: alerts on the filter language,
posted by `auditkit sync --follow` (mirror/alerts.py). Registered on the root group by auditkit/cli.py.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auditkit import store
from auditkit.cli_common import db_option
from auditkit.mirror import alerts as alerts_mod


@click.group("alert")
def alert() -> None:
    """Alerts: post each newly mirrored event matching a filter to a webhook (Slack-compatible), during
    `auditkit sync --follow`."""


@alert.command("add")
@click.argument("name")
@click.argument("filter_text", metavar="FILTER")
@click.option("--webhook", required=True, help="The URL to POST to (kept in a 0600 file beside the mirror).")
@click.option("--base-url", default=None,
              help="Where `auditkit serve` is reached (e.g. https://audit.example.com): messages link the event.")
@db_option
def alert_add(name: str, filter_text: str, webhook: str, base_url: str | None, db_path: Path | None) -> None:
    """Alert NAME on events matching FILTER (the filter language, e.g. 'category:Security' or
    'rack:acme/production action:deleted'). It considers events mirrored from now on."""
    path = store.existing_path(db_path)
    conn = store.open_db(path)
    made = alerts_mod.add(conn, path, name, filter_text, webhook, base_url)
    click.echo(f"alert {made.name}: {made.filter_text} → {made.webhook_hint} (posted by `auditkit sync --follow`)")


@alert.command("list")
@db_option
def alert_list(db_path: Path | None) -> None:
    """Alerts, their filters and webhooks (host only), deliveries and the last failure."""
    conn = store.open_db(store.existing_path(db_path))
    table = Table(box=None, header_style="bold")
    for column in ("name", "filter", "webhook", "delivered", "waiting", "abandoned", "failures", "last failure"):
        table.add_column(column)
    for row in alerts_mod.list_alerts(conn):
        a, counts, last = row["alert"], row["counts"], row["last_failure"]
        table.add_row(escape(a.name), escape(a.filter_text), escape(a.webhook_hint), str(counts.get("delivered", 0)),
                      str(counts.get("pending", 0) + counts.get("sending", 0)), str(counts.get("abandoned", 0)),
                      str(row["failures"]), escape(f"{last['at']} {last['error']}") if last else "")
    Console().print(table)


@alert.command("remove")
@click.argument("name")
@db_option
def alert_remove(name: str, db_path: Path | None) -> None:
    """Remove alert NAME (its webhook file too; its failures stay as history)."""
    path = store.existing_path(db_path)
    alerts_mod.remove(store.open_db(path), path, name)
    click.echo(f"removed alert {name}")
