"""Interactive sessions through the gateway: the websocket to the rack, the frames relayed both ways as they come,
the exit code and error frame read on the way, the asciicast recording (masked of the app's secrets, which are read
from the rack when the session opens: masking.py), and the session's outcome in the journal.

Deciding whether a websocket may open (credentials, rack grants, its intent journaled first) is the proxy's
(Gateway.websocket); a session that opened is always recorded, whatever state its peers leave the sockets in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import ssl
import time
import urllib.parse
from typing import Any, Awaitable, Callable

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect

from auditkit import store
from auditkit.capture import catalog, masking, wire
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

READ_TIMEOUT = 10.0  # seconds the rack has to say what to mask before the session opens with its recording withheld
# The key under which a session's own request values (its credentials, a Private-Key, a run's Environment) are masked.
REQUEST = "request"
# The values of a session's classification that hold its command line (the instance shell's `shell` is its
# Command): the free text a user types, and so the only ones masked (a path's pid or app name stays as it is).
COMMAND_VALUES = frozenset({"command", "shell"})
_RECORDABLE_KEY = re.compile(r"[A-Za-z0-9_.\-/:\[\]]{1,160}")
UNNAMED_KEY = "(unnamed)"  # where the masks of keys whose names are not plain are counted

WITHHELD_NOTE = ("\x1b[0m[auditkit: output not recorded: the app's environment could not be read from the rack "
                 "to mask its secrets]\r\n")


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
    # The values to mask in the recording, compiled, held in memory only; None when they could not be read from the
    # rack, and then no output or input is recorded at all (fail closed).
    secrets: masking.Patterns | None = None
    streams: tuple["MaskedStream", ...] = ()  # the output and input streams, once the relay runs


@dataclasses.dataclass
class Relayed:
    """What the relay saw of the rack's side: the exit code (the wire's marker) and an `ERROR: ` first frame."""

    exit_code: int | None = None
    rack_error: str | None = None


def recorder_for(cls: catalog.Classification, headers: Any, *, record_input: bool, cap: int,
                 clock: Callable[[], float] | None = None,
                 secrets: masking.Patterns | None = None) -> Recorder | None:
    """The asciicast recorder of a terminal session (the route says so), sized by its Width / Height headers;
    None for other websockets (tunnels, build logs). `clock` (epoch seconds) times it instead of real time. The
    command in its header is masked of `secrets`."""
    if not cls.session:
        return None
    command = cls.values.get("Command") or None
    if command:
        command = masking.Masker(secrets or masking.Patterns(())).mask(command)
    timing: dict[str, Any] = {"clock": clock, "started": clock()} if clock is not None else {}
    return Recorder(width=_int(headers.get("width"), 80), height=_int(headers.get("height"), 24),
                    command=command, record_input=record_input, cap=cap, **timing)


async def read_secrets(cls: catalog.Classification, params: dict[str, str], headers: dict[str, str],
                       get_json: Callable[[str], Awaitable[Any]]) -> masking.Patterns | None:
    """What a session's recording is masked of, as (key, value) pairs: the app's environment as its recent releases
    hold it (the newest, the promoted one, and for an exec the process's own release, whichever it runs), the URLs
    the rack reports for the app's resources (for a resource console, that resource's), every value of the request
    the journal keeps out of the record (the client's key, a Private-Key, a run's Environment), and for an instance
    shell the environments of every app on the rack; compiled off the event loop. None when the rack could not say
    (the recording is then withheld). `get_json(path)` reads the rack with the gateway's credentials for it, None
    on failure."""
    try:
        pairs = await asyncio.wait_for(_pairs(cls, params, headers, get_json), READ_TIMEOUT)
    except asyncio.TimeoutError:
        return None
    return None if pairs is None else await asyncio.to_thread(masking.Patterns, pairs)


async def _pairs(cls: catalog.Classification, params: dict[str, str], headers: dict[str, str],
                 get_json: Callable[[str], Awaitable[Any]]) -> list[tuple[str, str]] | None:
    sdk = cls.route.sdk if cls.route else ""
    pairs: list[tuple[str, str]] = [(REQUEST, v) for v in catalog.secret_values(cls.route, params, headers)
                                    if len(v) >= masking.MIN_LENGTH]
    try:
        if sdk in ("InstanceShell", "InstanceShellClassic"):
            apps = await get_json("/apps")
            if not isinstance(apps, list):
                return None
            names = sorted(str(a["name"]) for a in apps)
            envs = await asyncio.gather(*(_app_env(get_json, name, None) for name in names))
            if any(env is None for env in envs):
                return None
            return pairs + [(f"{name}/{k}", v) for name, env in zip(names, envs) for k, v in env or ()]
        if not cls.app:
            return pairs
        pid = cls.target if sdk == "ProcessExec" else None
        resources_path = f"/apps/{_quote(cls.app)}/resources"
        if sdk == "ResourceConsole" and cls.target:
            resources_path += f"/{_quote(cls.target)}"
        env, resources = await asyncio.gather(_app_env(get_json, cls.app, pid), get_json(resources_path))
    except (asyncio.TimeoutError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if resources is None and sdk != "ResourceConsole":
        resources = []  # a rack without the app resource list (classic): the env holds what the app was linked to
    if env is None or resources is None:
        return None
    pairs += env
    for resource in resources if isinstance(resources, list) else [resources]:
        if isinstance(resource, dict) and resource.get("url"):
            pairs.append((f"resource:{resource.get('name')}", str(resource["url"])))
    return pairs


async def _app_env(get_json: Callable[[str], Awaitable[Any]], app: str,
                   pid: str | None) -> list[tuple[str, str]] | None:
    """The masked (key, value) pairs of an app's recent releases and, given a pid, of that process's release."""
    base = f"/apps/{_quote(app)}"
    releases = await get_json(f"{base}/releases")
    if not isinstance(releases, list):
        return None
    if pid:
        process = await get_json(f"{base}/processes/{_quote(pid)}")
        wanted = process.get("release") if isinstance(process, dict) else None
        if wanted and all(r.get("id") != wanted for r in releases):
            release = await get_json(f"{base}/releases/{_quote(str(wanted))}")
            if isinstance(release, dict):
                releases.append(release)
    pairs: set[tuple[str, str]] = set()
    for release in releases:
        pairs |= set(masking.masked_values(wire.parse_env(release.get("env") or "")).items())
    return sorted(pairs)


def masked_classification(cls: catalog.Classification,
                          secrets: masking.Patterns | None) -> catalog.Classification:
    """`cls` with its command line masked of `secrets`, in its values, details and description, so that a secret
    typed on the command line reaches neither the journal nor the recording. The request's own values are left
    out: the journal already keeps them out of the record (or as HMACs) where they are params of their own."""
    command = cls.values.get("Command") or cls.values.get("command")
    if not secrets or not secrets.forms or not command:
        return cls
    masker = masking.Masker(secrets)
    skip = frozenset({REQUEST})
    shown = masker.mask(command, skip)
    if shown == command:
        return cls

    def masked(values: dict[str, Any]) -> dict[str, Any]:
        return {k: masker.mask(v, skip) if k.lower() in COMMAND_VALUES and isinstance(v, str) else v
                for k, v in values.items()}

    return dataclasses.replace(cls, description=cls.description.replace(command, shown),
                               values=masked(cls.values), details=masked(cls.details))


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


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
    record_output = record_input = None
    if recorder is not None and recording is not None:
        if recording.secrets is None:
            recorder.output(WITHHELD_NOTE)
            recorder = None
        else:
            timeline = [0.0]
            record_output = MaskedStream(recorder, recorder.output, recording.secrets, timeline)
            record_input = MaskedStream(recorder, recorder.input, recording.secrets, timeline)
            recording.streams = (record_output, record_input)

    async def client_to_rack() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                try:
                    await upstream.send(message["text"])
                finally:
                    if record_input and recorder.record_input:
                        record_input(message["text"])
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
                    if record_output and before:
                        record_output(before)
                    # Journaled before the client learns the exit code: its next command (`convox run` stops the
                    # process) must come after the session in the journal.
                    await record()
                    await ws.send_text(message)
                else:
                    try:
                        await ws.send_text(message)  # what the user sees goes first: masking never delays it
                    finally:
                        if record_output:
                            record_output(message)
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


class MaskedStream:
    """One direction of a session on its way into the recording: masked (masking.Masker), each piece recorded at
    the time it arrived, never earlier than what the recording already holds (held text comes out late)."""

    def __init__(self, recorder: Recorder, write: Callable[..., None],
                 secrets: masking.Patterns | list[tuple[str, str]], timeline: list[float]):
        self.masker = masking.Masker(secrets)
        self._recorder, self._write, self._timeline = recorder, write, timeline

    def __call__(self, text: str) -> None:
        self._record(self.masker.feed(text, self._recorder.elapsed()))

    def flush(self) -> None:
        self._record(self.masker.flush())

    def _record(self, pieces: list[tuple[float, str]]) -> None:
        for at, piece in pieces:
            self._timeline[0] = at = max(at, self._timeline[0])
            self._write(piece, at=at)


def masking_details(recording: Recording) -> dict[str, Any]:
    """What the event says of the masking (allowlisted names, no value): that the recording is masked, the rule's
    version, and how often each key was masked; a recording withheld says why."""
    if recording.secrets is None:
        return {"recording_masked": False, "recording_withheld": "the app's environment could not be read"}
    counts: dict[str, int] = {}
    for stream in recording.streams:
        for key, n in stream.masker.counts.items():
            # A key name is the app's data: recorded only when plain (an env key, `resource:NAME`, `APP/KEY`).
            key = key if _RECORDABLE_KEY.fullmatch(key) else UNNAMED_KEY
            counts[key] = counts.get(key, 0) + n
    return {"recording_masked": True, "masking_rule": masking.RULE_VERSION,
            "masked_keys": dict(sorted(counts.items()))}


async def finish(recording: Recording, relayed: Relayed, seconds: float) -> None:
    """Journal the session's outcome (completing its intent) with its recording: duration, exit code, the
    recording's digest and size, the description re-rendered with the exit code; failed only when the rack
    answered with an error frame, whose text is scrubbed of the request's secret values."""
    cls, draft, recorder, exit_code = recording.cls, recording.draft, recording.recorder, relayed.exit_code
    rack_error = relayed.rack_error
    if rack_error:
        for secret in catalog.secret_values(cls.route, recording.params, recording.headers):
            rack_error = rack_error.replace(secret, catalog.REDACTED)
        if recording.secrets is not None:
            rack_error = masking.Masker(recording.secrets).mask(rack_error)
    details = dict(draft.details)
    details["duration_ms"] = int(seconds * 1000)
    if exit_code is not None:
        details["exit_code"] = exit_code
    session = None
    event = draft
    if recorder is not None:
        for stream in recording.streams:
            stream.flush()
        details.update(masking_details(recording))
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
