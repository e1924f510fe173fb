"""Recordings: interactive sessions' asciicast bytes (kept gzipped in `sessions`) with their metadata, checked
against the sha256 their event carries, and the events that name a session.
"""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from typing import Any, Iterable

from auditkit.errors import ChainError, StoreError
from auditkit.model.events import Event
from auditkit.store.chains import LOCAL_SOURCE
from auditkit.store.db import transaction
from auditkit.store.queries import row_to_event
from auditkit.store.schema import SELECT_EVENT

SESSION_FIELDS: tuple[str, ...] = (
    "id", "source", "rack", "app", "actor", "command", "started_at", "ended_at", "duration_ms", "exit_code",
    "width", "height", "size", "truncated", "sha256",
)


def recording_sha256(cast: bytes) -> str:
    return hashlib.sha256(cast).hexdigest()


def add_session(conn: sqlite3.Connection, meta: dict[str, Any], cast: bytes) -> str:
    """Store a recording (asciicast v2 bytes, kept gzipped) with its metadata; returns its sha256.

    When meta carries a sha256 it must match the bytes (a mirrored recording is checked, not trusted).
    """
    digest = recording_sha256(cast)
    if meta.get("sha256") not in (None, digest):
        raise ChainError(f"recording {meta.get('id')}: bytes hash to {digest}, not the expected {meta['sha256']}")
    row = {name: meta.get(name) for name in SESSION_FIELDS}
    row.update(sha256=digest, size=len(cast), truncated=int(bool(meta.get("truncated"))),
               source=meta.get("source") or LOCAL_SOURCE)
    if not row["id"]:
        raise StoreError("a recording needs an id")
    columns = SESSION_FIELDS + ("cast_gz",)
    values = tuple(row[c] for c in SESSION_FIELDS) + (gzip.compress(cast, mtime=0),)
    with transaction(conn):
        conn.execute(f"INSERT OR IGNORE INTO sessions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     values)
    return digest


def get_session(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {', '.join(SESSION_FIELDS)} FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return dict(row) if row else None


def recording(conn: sqlite3.Connection, session_id: str) -> bytes | None:
    """A recording's asciicast bytes, or None when the mirror does not hold it."""
    row = conn.execute("SELECT cast_gz FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return gzip.decompress(row[0]) if row else None


def session_events(conn: sqlite3.Connection, session_id: str) -> list[Event]:
    """The events of one interactive session (its exec/SSH event, and any other event that names it), oldest first."""
    rows = conn.execute(f"SELECT {SELECT_EVENT} FROM events e WHERE e.session_id = ? ORDER BY e.n",
                        (session_id,)).fetchall()
    return [row_to_event(row) for row in rows]


def held_sessions(conn: sqlite3.Connection, session_ids: Iterable[str]) -> set[str]:
    """Which of these recordings the database holds."""
    wanted = sorted({s for s in session_ids if s})
    if not wanted:
        return set()
    rows = conn.execute(f"SELECT id FROM sessions WHERE id IN ({', '.join('?' * len(wanted))})", wanted)
    return {r[0] for r in rows}
