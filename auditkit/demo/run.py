"""`auditkit demo` / `make demo`: the main job on the embedded default.

1. The simulated rack and the capture gateway start on loopback, and scripted users do a week of work through the
   gateway with a client that speaks the Convox wire protocol; the gateway journals it (data/gateway.db).
2. The mirror (data/audit.db) holds a month of synthetic activity that ends where the week begins, and the sync
   agent mirrors the week's journal into it over the gateway's feed: the week is the newest part of the mirror,
   where the TUI opens.
3. Both are shown and verified.
4. Datasette (`auditkit serve`, a real process) starts on the mirror; the demo prints its one-time admin login URL
   and a ready share link for the week's shop events.
5. On a terminal the TUI opens on the mirror while Datasette runs (quitting the TUI stops both); without one (CI)
   the demo checks that the share link opens, stops Datasette, says that the URLs it printed stop with it, and
   how to serve them again. Re-running reuses what exists.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import click
from rich.console import Console

import contextlib

import httpx

from auditkit import store
from auditkit.share import links as sharing
from auditkit.model.filters import Filter


def _verify_line(console: Console, label: str, conn) -> bool:  # type: ignore[no-untyped-def]
    report = store.verify(conn)
    console.print(f"verify {label}: {report.summary()}")
    if report.ok:
        return True
    for problem in report.problems:
        console.print(f"verify {label}: {problem.kind}: {problem.message}")
    return False


def main(db_path: Path, events: int = 20_000, journal_path: Path | None = None) -> None:
    from auditkit.store.cli import print_events
    from auditkit.synth import history as synth
    from auditkit.demo import week

    console = Console() if sys.stdout.isatty() else Console(width=160)
    journal_path = journal_path or db_path.with_name("gateway.db")
    conn = store.open_db(db_path)
    existing = store.count(conn)
    monday = week.week_start(dt.datetime.now(dt.timezone.utc))
    if existing:
        console.print(f"demo: {db_path} already holds {existing:,} events; using them (delete it to start over)")
    else:
        started = time.monotonic()
        # The month ends where the week through the gateway begins, so the week is the newest part of the mirror.
        summary = synth.write_history(conn, events=events, seed=1, days=30, end=monday)
        console.print(f"demo: wrote a month of synthetic history to the mirror {db_path}: {summary.events:,} events, "
                      f"{summary.sessions} recorded sessions ({time.monotonic() - started:.1f}s)")
    if journal_path.exists() and store.count(store.open_db(journal_path)):
        console.print(f"demo: {journal_path} already holds the gateway's journal; using it (delete it to replay)")
    else:
        console.rule("a week through the gateway")
        started = time.monotonic()
        week_summary = week.run_week(journal_path, db_path.parent, say=console.print, mirror_path=db_path)
        console.print(f"demo: {week_summary.steps} CLI commands through the gateway → {week_summary.events} journaled "
                      f"events, {week_summary.sessions} recorded sessions; sync mirrored {week_summary.mirrored} of "
                      f"them into {db_path} ({time.monotonic() - started:.1f}s)")
    journal = store.open_db(journal_path)
    console.rule(f"the gateway's journal ({journal_path})")
    print_events(journal, Filter(), 40, console)
    ok = _verify_line(console, "journal", journal)
    console.rule(f"the mirror ({db_path}): app shop, synced from the gateway's journal beside the synthetic month")
    print_events(conn, Filter.parse("app:shop"), 15, console)
    ok = _verify_line(console, "mirror", conn) and ok
    if not ok:
        sys.exit(1)
    port = _port(8001)
    link, share_url = _demo_link(conn, db_path, f"http://127.0.0.1:{port}")
    console.rule("Datasette")
    with _datasette(db_path, port) as (login, base):
        console.print(f"Datasette (admins): {base}/  — one-time admin login: {login}")
        console.print(f"share link for auditors (app:shop, expires {link.expires_at}): {share_url}")
        _explore(console, db_path, journal_path, base, share_url, port, monday)


def _demo_link(conn, db_path: Path, base_url: str) -> tuple[sharing.ShareLink, str]:  # type: ignore[no-untyped-def]
    """The demo's share link for the week's shop events: the live one an earlier run made, else a new one."""
    secret = sharing.secret_for(db_path)
    for link in sharing.list_links(conn):
        if link.created_by == "make demo" and link.status() == "active":
            return link, sharing.url_for(base_url, sharing.token_for(secret, link.id))
    return sharing.create(conn, Filter.parse("app:shop"), secret=secret, expires="7d",
                          note="make demo: the week's shop events", created_by="make demo", base_url=base_url)


def _port(preferred: int) -> int:
    """`preferred` when it is free on loopback, else any free port."""
    from convox_sim.servers import free_port

    return free_port(preferred)


@contextlib.contextmanager
def _datasette(db_path: Path, port: int) -> Iterator[tuple[str, str]]:
    """`auditkit serve` on the mirror, on the port the share link names; yields (one-time login URL, base URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "auditkit.cli", "serve", "--db", str(db_path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        login = ""
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("one-time admin login:"):
                login = line.split(":", 1)[1].strip()
                break
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/robots.txt", timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise click.ClickException(f"auditkit serve did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield login, base
    finally:
        from convox_sim.servers import stop_process

        stop_process(proc)


def _explore(console: Console, db_path: Path, journal_path: Path, base: str, share_url: str, port: int,
             monday: dt.datetime) -> None:
    week = f"since:{monday.date().isoformat()}"
    how = (f"  .venv/bin/auditkit events --db {journal_path} category:Processes   the gateway's journal\n"
           f"  .venv/bin/auditkit events --db {db_path} {week}       the week through the gateway\n"
           f"  .venv/bin/auditkit events --db {db_path} user:<email> since:7d       filter the mirror\n"
           f"  .venv/bin/auditkit events --db {db_path} --format csv > audit.csv    export\n"
           f"  .venv/bin/auditkit verify --db {db_path}                             re-check the chains")
    serve = f".venv/bin/auditkit serve --db {db_path}" + ("" if port == 8001 else f" --port {port}")
    if not sys.stdout.isatty():
        with httpx.Client(follow_redirects=True, timeout=10) as client:
            page = client.get(share_url)
        if page.status_code != 200 or "shop" not in page.text:
            raise click.ClickException(f"the share link did not open ({page.status_code})")
        console.print(f"demo: the share link opens ({len(page.text):,} bytes)")
        click.echo("\nNo terminal here, so nothing interactive was started, and Datasette stopped with the demo: the "
                   "admin login and the share link printed above stop working now. The share link works again "
                   f"while `{serve}` runs (it prints a new one-time admin login).\nExplore with:\n" + how
                   + f"\n  {serve}   Datasette: the admin pages and the share link"
                   + f"\n  .venv/bin/auditkit tui --db {db_path}                                the TUI (the week "
                     "is its newest part)")
        return
    click.echo("\nExplore with:\n" + how)
    click.echo(f"\nOpening the TUI on {db_path}: the week through the gateway is at the top (the synthetic month "
               f"ends where it begins; `{week}` keeps to it). q quits; Datasette stops with it. Datasette: {base}/")
    from auditkit.review.tui.app import run as run_tui

    run_tui(db_path, base_url=base)
