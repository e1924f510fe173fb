"""Interactive sessions through the gateway: the websocket to the rack, the frames relayed both ways as they come,
the exit code and error frame read on the way, the asciicast recording, and the session's outcome in the journal.

Deciding whether a websocket may open (credentials, rack grants, its intent journaled first) is the proxy's
(Gateway.websocket); a session that opened is always recorded, whatever state its peers leave the sockets in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from typing import Any, Callable

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect

from auditkit import store
from auditkit.capture import catalog, wire
from auditkit.capture.journal import Journal, JournalUnavailable
from auditkit.model.asciicast import Recorder
from auditkit.model.events import Event

log = logging.getLogger("auditkit.gateway")
# websockets logs every handshake header (the rack's credentials, Private-Key) and every frame at DEBUG: the
# upstream connections log through a logger of their own that never goes below INFO.
upstream_log = logging.getLogger("auditkit.gateway.upstream")
upstream_log.setLevel(logging.INFO)

# Handshake headers of the client's connection, never passed on: the upstream connection makes its own.
HANDSHAKE_HEADERS = ("sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                     "sec-websocket-protocol")
# What connect() raises when the rack refuses the session (an HTTP status on `.response`) or cannot be reached.
CONNECT_ERRORS = (OSError, websockets.WebSocketException, asyncio.TimeoutError)


@dataclasses.dataclass
class Recording:
    """A session the journal waits for: its classification, the intent journaled before it opened, and what its
    outcome needs."""

    journal: Journal
    source: str  # the gateway's chain name
    now: Callable[[], str]
    cls: catalog.Classification
    draft: Event
    intent_id: str
    rack: str
    params: dict[str, str]  # the request's params and headers: the values an error frame is scrubbed of
    headers: dict[str, str]
    recorder: Recorder | None  # the asciicast, for a terminal session


@dataclasses.dataclass
class Relayed:
    """What the relay saw of the rack's side: the exit code (the wire's marker) and an `ERROR: ` first frame."""

    exit_code: int | None = None
    rack_error: str | None = None


def recorder_for(cls: catalog.Classification, headers: Any, *, record_input: bool, cap: int,
                 clock: Callable[[], float] | None = None) -> Recorder | None:
    """The asciicast recorder of a terminal session (the route says so), sized by its Width / Height headers;
    None for other websockets (tunnels, build logs). `clock` (epoch seconds) times it instead of real time."""
    if not cls.session:
        return None
    timing: dict[str, Any] = {"clock": clock, "started": clock()} if clock is not None else {}
    return Recorder(width=_int(headers.get("width"), 80), height=_int(headers.get("height"), 24),
                    command=cls.values.get("Command") or None, record_input=record_input, cap=cap, **timing)


async def connect(rack_url: str, target: str, headers: dict[str, str]) -> Any:
    """The websocket to the rack for `target` (path and query as sent and parsed) with `headers` (the client's
    handshake headers dropped). Racks commonly present self-signed certificates, which the Convox CLI does not verify
    either. Raises one of CONNECT_ERRORS when the rack refuses or cannot be reached."""
    scheme = "wss" if rack_url.startswith("https") else "ws"
    url = f"{scheme}{rack_url[rack_url.index(':'):]}{target}"
    headers = dict(headers)
    for drop in HANDSHAKE_HEADERS:
        headers.pop(drop, None)
        headers.pop(drop.title(), None)
    context = None
    if scheme == "wss":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return await websockets.connect(url, additional_headers=headers, ssl=context, max_size=None, compression=None,
                                    open_timeout=15, ping_interval=None, user_agent_header=None, proxy=None,
                                    logger=upstream_log)


async def relay(ws: WebSocket, upstream: Any, recording: Recording | None) -> None:
    """Relay an accepted session frame by frame until one side ends it, then record it (when `recording` is given)
    and close both sockets."""
    recorder = recording.recorder if recording is not None else None
    relayed = Relayed()
    started = time.monotonic()
    recorded = False

    async def record() -> None:
        nonlocal recorded
        if recording is not None and not recorded:
            recorded = True
            elapsed = recorder.elapsed() if recorder is not None else time.monotonic() - started
            await finish(recording, relayed, elapsed)

    async def client_to_rack() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                if recorder:
                    recorder.input(message["text"])
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])

    async def rack_to_client() -> None:
        first = True
        async for message in upstream:
            if isinstance(message, str):
                if first and message.startswith("ERROR: "):
                    relayed.rack_error = message[7:].strip()[:300]
                first = False
                ended = wire.split_exit(message)
                if ended:
                    before, relayed.exit_code = ended
                    if recorder and before:
                        recorder.output(before)
                    # Journaled before the client learns the exit code: its next command (`convox run` stops the
                    # process) must come after the session in the journal.
                    await record()
                elif recorder:
                    recorder.output(message)
                await ws.send_text(message)
            else:
                await ws.send_bytes(message)

    tasks = [asyncio.ensure_future(client_to_rack()), asyncio.ensure_future(rack_to_client())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[1] in done:
            # The rack finished: give the client's last frames a moment, then close.
            pending_client = tasks[0]
            pending_client.cancel()
        else:
            await upstream.close()
            try:
                await asyncio.wait_for(tasks[1], 5)
            except (asyncio.TimeoutError, Exception):
                tasks[1].cancel()
    except Exception:  # noqa: BLE001 — a broken peer ends the session; it is still recorded
        for task in tasks:
            task.cancel()
    finally:
        # Record first: whatever state the peers left the sockets in, the session's event is never lost.
        await record()
        await upstream.close()
        try:
            await ws.close()
        except (RuntimeError, WebSocketDisconnect, OSError):
            pass  # the client has gone already


async def finish(recording: Recording, relayed: Relayed, seconds: float) -> None:
    """Journal the session's outcome (completing its intent) with its recording: duration, exit code, the
    recording's digest and size, the description re-rendered with the exit code; failed only when the rack
    answered with an error frame, whose text is scrubbed of the request's secret values."""
    cls, draft, recorder, exit_code = recording.cls, recording.draft, recording.recorder, relayed.exit_code
    rack_error = relayed.rack_error
    if rack_error:
        for secret in catalog.secret_values(cls.route, recording.params, recording.headers):
            rack_error = rack_error.replace(secret, catalog.REDACTED)
    details = dict(draft.details)
    details["duration_ms"] = int(seconds * 1000)
    if exit_code is not None:
        details["exit_code"] = exit_code
    session = None
    event = draft
    if recorder is not None:
        cast = recorder.getvalue()
        session_id = "ses_" + draft.id
        digest = store.recording_sha256(cast)
        details["recording_sha256"] = digest
        details["recording_bytes"] = len(cast)
        if recorder.truncated:
            details["recording_truncated"] = True
        session = ({"id": session_id, "source": recording.source, "rack": recording.rack, "app": cls.app,
                    "actor": draft.actor, "command": cls.values.get("Command"), "started_at": draft.timestamp,
                    "ended_at": recording.now(), "duration_ms": details["duration_ms"], "exit_code": exit_code,
                    "width": recorder.width, "height": recorder.height,
                    "truncated": recorder.truncated, "sha256": digest}, cast)
        event = event.replace(session_id=session_id)
    done = catalog.describe_outcome(cls, 101, None, exit_code=exit_code)
    details.update(done.details)
    # The session happened whatever the command's exit code (kept in details); it failed only when the rack
    # answered with an error frame.
    outcome = "failed" if rack_error else "succeeded"
    if rack_error:
        details["error"] = rack_error
    event = event.replace(description=done.description, target=done.target, outcome=outcome, status=101,
                          details=details)
    try:
        await recording.journal.outcome(recording.intent_id, event, session=session)
    except JournalUnavailable as e:
        log.error("session outcome not recorded: %s", e)


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, min(1000, int(value))) if value else default
    except ValueError:
        return default
