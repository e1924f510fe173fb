"""`make demo` as CI runs it (no terminal): the week through the gateway, sync into the mirror, verify, Datasette
with a share link that opens; a second run reuses everything, including the link."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from auditkit import store
from auditkit.share import links as sharing

ROOT = Path(__file__).resolve().parent.parent


def _demo(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditkit.cli", "demo", "--events", "3000"], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin",
                                                                            "PYTHONPATH": str(ROOT)})


def test_demo_without_a_terminal_runs_everything_and_says_how_to_open_it(tmp_path):
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "verify journal: OK" in out and "verify mirror: OK" in out
    assert re.search(r"one-time admin login:\s+http://127\.0\.0\.1:\d+/-/auth-token\?token=[0-9a-f]{64}", out)
    link = re.search(r"share link for auditors .*?: (http://\S+/-/share/\S+)", out)
    assert link and "the share link opens" in out
    assert "No terminal here" in out and "auditkit tui --db data/audit.db" in out
    conn = store.open_db(tmp_path / "data" / "audit.db")
    links = sharing.list_links(conn)
    assert len(links) == 1 and links[0].views == 1  # the demo's own check is a recorded view
    conn.close()

    second = _demo(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already holds" in second.stdout
    assert re.search(r"share link for auditors .*?: (http://\S+/-/share/\S+)", second.stdout).group(1) == link.group(1)
    conn = store.open_db(tmp_path / "data" / "audit.db")
    assert len(sharing.list_links(conn)) == 1
