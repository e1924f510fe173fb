"""`auditkit replay FILE.cast|SESSION_ID`: which recording it opens, with which markers, and every refusal (a bad or
missing file, an unknown session, a recording whose bytes do not hash to what the mirror and its event recorded) as one
line and exit status 2. Also store.session_events, which gives a session's gateway events."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditkit import store
from auditkit.review import replay
from auditkit.cli import main
from auditkit.review.tui.screens import replay as screen_mod

from helpers import draft, raw_connect

CAST = (b'{"version": 2, "width": 80, "height": 24, "timestamp": 1790848800}\n'
        b'[0.5, "o", "$ "]\n[1.5, "o", "ls\\r\\nfile\\r\\n$ "]\n[9.0, "o", "exit\\r\\n"]\n')


@pytest.fixture
def opened(monkeypatch) -> list[screen_mod.ReplayApp]:
    """The apps `auditkit replay` would have run (run is replaced: no terminal in tests)."""
    apps: list[screen_mod.ReplayApp] = []
    monkeypatch.setattr(screen_mod.ReplayApp, "run", lambda self, *a, **k: apps.append(self))
    return apps


def invoke(*args: str):
    return CliRunner().invoke(main, ["replay", *args])


def mirror_with_session(path: Path, cast: bytes = CAST) -> str:
    conn = store.open_db(path)
    digest = store.add_session(conn, {"id": "ses_1", "rack": "acme/production", "app": "web", "actor": "alice@x.io",
                                      "command": "bash", "started_at": "2026-10-01T10:00:00.000Z"}, cast)
    store.append(conn, [
        draft(timestamp="2026-10-01T09:59:00.000Z", description="before the session"),
        draft(timestamp="2026-10-01T10:00:00.000Z", category="Processes", action="executed",
              description="Ran exec session in web: bash", session_id="ses_1", details={"recording_sha256": digest}),
        draft(timestamp="2026-10-01T10:00:04.250Z", category="Processes", action="terminated",
              description="Stopped process web-1", session_id="ses_1"),
        draft(timestamp="2026-10-01T10:00:05.000Z", description="another session's event", session_id="ses_2"),
    ])
    conn.close()
    return digest


def test_a_file_opens_with_its_name_as_title(tmp_path, opened):
    path = tmp_path / "demo.cast"
    path.write_bytes(CAST)
    result = invoke(str(path))
    assert result.exit_code == 0, result.output
    (app,) = opened
    screen = app._screen_args
    assert screen["title"] == "demo.cast" and screen["recording"].duration == 9.0
    assert list(screen["event_markers"]) == []


def test_a_gzipped_file_opens_too(tmp_path, opened):
    path = tmp_path / "demo.cast.gz"
    path.write_bytes(gzip.compress(CAST))
    assert invoke(str(path)).exit_code == 0
    assert opened[0]._screen_args["recording"].frames[0].data == "$ "


@pytest.mark.parametrize("content,message", [
    (b"hello\n", "bad.cast: line 1: not an asciicast v2 header"),
    (b'{"version": 2, "width": 80, "height": 24}\n[0.5, "o", "a"]\n{oops\n', "bad.cast: line 3: not an asciicast event"),
])
def test_a_bad_file_is_refused_naming_the_line(tmp_path, opened, content, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.cast").write_bytes(content)
    result = invoke("bad.cast")
    assert result.exit_code == 2 and not opened
    assert result.output.strip() == f"Error: {message}"


@pytest.mark.parametrize("target", ["missing.cast", "dir/missing", "old.cast.gz"])
def test_a_missing_file_is_refused(tmp_path, opened, target, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(target)
    assert result.exit_code == 2 and not opened
    assert "no recording file at" in result.output


def test_a_session_opens_with_its_gateway_events_as_markers(tmp_path, opened):
    db = tmp_path / "audit.db"
    mirror_with_session(db)
    result = invoke("ses_1", "--db", str(db))
    assert result.exit_code == 0, result.output
    args = opened[0]._screen_args
    assert args["title"] == "bash · alice@x.io · web · 2026-10-01 10:00"
    assert args["event_markers"] == [(0.0, "Ran exec session in web: bash"), (4.25, "Stopped process web-1")]
    assert replay.screen_at(args["recording"], 2).text()[:2] == ["$ ls", "file"]


def test_an_unknown_session_is_refused(tmp_path, opened):
    db = tmp_path / "audit.db"
    mirror_with_session(db)
    result = invoke("ses_nope", "--db", str(db))
    assert result.exit_code == 2 and not opened
    assert result.output.strip() == "Error: no recording of session ses_nope in this mirror"


def test_a_session_needs_a_mirror(tmp_path, opened):
    result = invoke("ses_1", "--db", str(tmp_path / "none.db"))
    assert result.exit_code == 2 and "no database at" in result.output and not opened


def _tamper(db: Path, *statements: tuple[str, tuple]) -> None:
    raw = raw_connect(db)
    for name in ("sessions_no_update", "events_no_update"):
        raw.execute(f"DROP TRIGGER {name}")
    for sql, params in statements:
        raw.execute(sql, params)
    raw.close()


def test_a_replaced_recording_is_refused(tmp_path, opened):
    db = tmp_path / "audit.db"
    digest = mirror_with_session(db)
    forged = CAST.replace(b"file", b"evil")
    _tamper(db, ("UPDATE sessions SET cast_gz = ? WHERE id = 'ses_1'", (gzip.compress(forged),)))
    result = invoke("ses_1", "--db", str(db))
    assert result.exit_code == 2 and not opened
    line = result.output.strip()
    assert line.startswith("Error: recording of session ses_1 hashes to ") and f"the mirror recorded {digest}" in line
    assert "refusing to replay it" in line and "\n" not in line


def test_a_recording_replaced_with_its_mirror_hash_is_still_refused_by_its_event(tmp_path, opened):
    db = tmp_path / "audit.db"
    digest = mirror_with_session(db)
    forged = CAST.replace(b"file", b"evil")
    _tamper(db, ("UPDATE sessions SET cast_gz = ?, sha256 = ? WHERE id = 'ses_1'",
                 (gzip.compress(forged), hashlib.sha256(forged).hexdigest())))
    result = invoke("ses_1", "--db", str(db))
    assert result.exit_code == 2 and not opened
    assert "but event EV" in result.output and f"recorded {digest}" in result.output


def test_session_events_are_the_sessions_own_oldest_first(tmp_path):
    db = tmp_path / "audit.db"
    mirror_with_session(db)
    conn = store.open_db(db)
    assert [e.description for e in store.session_events(conn, "ses_1")] == [
        "Ran exec session in web: bash", "Stopped process web-1"]
    assert store.session_events(conn, "ses_9") == []
    conn.close()


def test_open_session_uses_the_cast_timestamp_without_a_start(tmp_path):
    db = tmp_path / "audit.db"
    conn = store.open_db(db)
    digest = store.add_session(conn, {"id": "ses_x"}, CAST)  # 1790848800 = 2026-10-01T10:00:00Z
    store.append(conn, [draft(timestamp="2026-10-01T10:00:02.000Z", description="scaled", session_id="ses_x",
                              details={"recording_sha256": digest})])
    session = replay.open_session(conn, "ses_x")
    assert session.event_markers == [(2.0, "scaled")]
    assert session.title == "session"
    conn.close()
