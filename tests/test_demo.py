"""`make demo` as CI runs it (no terminal): the week through the gateway, sync into the mirror, verify, Datasette
with a share link that opens; a second run reuses everything, including the link. Port 8001 is held by another
socket throughout, as on a machine where something else serves there: the demo must pick another port and say so."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from auditkit import store
from auditkit.model import asciicast
from auditkit.share import links as sharing

ROOT = Path(__file__).resolve().parent.parent


def _demo(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditkit.cli", "demo", "--events", "3000"], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin",
                                                                            "PYTHONPATH": str(ROOT)})


@pytest.fixture
def port_8001_taken():
    """Something listens on 8001 (or already did: then the test runs as it is)."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8001))
        holder.listen()
    except OSError:
        pass
    yield
    holder.close()


def _token(url: str) -> str:
    return url.split("/-/share/", 1)[1]


def test_demo_without_a_terminal_runs_everything_and_says_how_to_open_it(tmp_path, port_8001_taken):
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "verify journal: OK" in out and "verify mirror: OK" in out
    login = re.search(r"one-time admin login:\s+http://127\.0\.0\.1:(\d+)/-/auth-token\?token=[0-9a-f]{64}", out)
    assert login and login.group(1) != "8001"
    link = re.search(r"share link for auditors .*?: (http://\S+/-/share/\S+)", out)
    assert link and "the share link opens" in out
    assert "No terminal here" in out and "auditkit tui --db data/audit.db" in out
    # the URLs stop with the demo, and it says so and how to serve them again, on the port the link names
    assert "Datasette stopped with the demo" in out
    assert f"auditkit serve --db data/audit.db --port {login.group(1)}" in out
    conn = store.open_db(tmp_path / "data" / "audit.db")
    links = sharing.list_links(conn)
    assert len(links) == 1 and links[0].views == 1  # the demo's own check is a recorded view
    conn.close()

    second = _demo(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already holds" in second.stdout
    again = re.search(r"share link for auditors .*?: (http://\S+/-/share/\S+)", second.stdout).group(1)
    assert _token(again) == _token(link.group(1))  # the same link (the port may differ from run to run)
    conn = store.open_db(tmp_path / "data" / "audit.db")
    assert len(sharing.list_links(conn)) == 1
    conn.close()
    _the_week_is_the_newest_part_of_the_mirror_and_its_sessions_last(tmp_path / "data")


def _the_week_is_the_newest_part_of_the_mirror_and_its_sessions_last(data: Path) -> None:
    conn = store.open_db(data / "audit.db")
    first_of_week = conn.execute("SELECT min(n) FROM events WHERE source = 'gw-demo'").fetchone()[0]
    newer = {row[0] for row in conn.execute("SELECT DISTINCT source FROM events WHERE n >= ?", (first_of_week,))}
    assert newer == {"gw-demo", "local"}  # nothing synthetic among the week: the TUI opens on it
    sessions = conn.execute("SELECT id, width, height, duration_ms FROM sessions WHERE source = 'gw-demo'").fetchall()
    assert len(sessions) == 4 and all((w, h) == (100, 30) for _, w, h, _ in sessions)
    long = [sid for sid, _, _, ms in sessions if ms >= 10_000]
    assert len(long) >= 3  # typed at human speed: tens of seconds, not ~0 s
    for sid in long:
        cast = asciicast.parse(store.recording(conn, sid))
        moments = {round(t) for t, code, _ in cast.events if code == "o"}
        assert cast.duration >= 10 and len(moments) >= 10  # output spread over the session, not one burst
    conn.close()
