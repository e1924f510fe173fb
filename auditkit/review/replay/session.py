"""A session of the mirror, opened for replay: its recording, refused unless its bytes hash to what the mirror and
the session's events recorded, with a title, the session's gateway events as markers, and its index cached beside
the mirror under that sha256 (cache.py)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from auditkit import store
from auditkit.errors import ChainError
from auditkit.model import events as events_mod
from auditkit.review.replay import cache, loader
from auditkit.review.replay.loader import RecordingError
from auditkit.review.replay.recording import Recording


@dataclasses.dataclass(frozen=True)
class SessionReplay:
    """What the replay screen needs for a session of the mirror."""

    recording: Recording
    title: str
    event_markers: list[tuple[float, str]]  # the session's gateway events: (seconds from its start, description)


def open_session(conn: Any, session_id: str) -> SessionReplay:
    """Load a mirrored session's recording, refusing it (ChainError) when its bytes do not hash to the sha256 the
    mirror and the session's events recorded. RecordingError when the mirror has no such recording."""
    session = store.get_session(conn, session_id)
    cast = store.recording(conn, session_id) if session else None
    if session is None or cast is None:
        raise RecordingError(f"no recording of session {session_id} in this mirror")
    digest = store.recording_sha256(cast)
    session_events = store.session_events(conn, session_id)
    expected = [("the mirror", session["sha256"])] + [
        (f"event {e.id}", e.details["recording_sha256"]) for e in session_events
        if isinstance(e.details, dict) and e.details.get("recording_sha256")]
    for where, wanted in expected:
        if wanted != digest:
            raise ChainError(f"recording of session {session_id} hashes to {digest}, but {where} recorded {wanted}: "
                             f"refusing to replay it (run `auditkit verify`)")
    recording = cache.attach(loader.load(cast), cache.slot_for(mirror_file(conn), digest))
    start_ms = None
    if session.get("started_at"):
        start_ms = events_mod.timestamp_ms(session["started_at"])
    elif isinstance(recording.header.get("timestamp"), (int, float)):
        start_ms = int(recording.header["timestamp"] * 1000)
    markers = []
    for event in session_events:
        offset = 0.0 if start_ms is None else (events_mod.timestamp_ms(event.timestamp) - start_ms) / 1000
        markers.append((min(max(offset, 0.0), recording.duration), event.description))
    parts = [session.get("command") or recording.title or "session", session.get("actor"),
             session.get("app") or session.get("rack"), (session.get("started_at") or "")[:16].replace("T", " ")]
    return SessionReplay(recording, " · ".join(p for p in parts if p), markers)


def open_file(data: bytes, mirror_path: str | os.PathLike[str] | None) -> Recording:
    """Load a recording file's bytes (RecordingError when they are not one), its index cached beside the mirror at
    `mirror_path`, if there is one, under the sha256 of those bytes."""
    recording = loader.load(data)
    return cache.attach(recording, cache.slot_for(mirror_path, store.recording_sha256(bytes(data))))


def mirror_file(conn: Any) -> str:
    """The file of the connection's main database ("" for one in memory)."""
    return next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "") or ""
