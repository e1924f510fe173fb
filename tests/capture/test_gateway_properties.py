"""Property tests for the capture gateway (issue 10, point 3): the journal says exactly what the rack does, and no
secret ever reaches the journal or the gateway's log.

Everything is real: the gateway's ASGI app and the simulated rack (convox_sim/rack.py, which routes and reads
r.Form as the Go rack does: decoded uncleaned path, first registered route, url.ParseQuery, ParseMultipartForm) each
behind uvicorn on loopback, requests written byte for byte with http.client (httpx would resolve dot segments before
sending, which is what a hostile client does not do), the gateway's SQLite journal read from its own connection and
its raw files read from another process.

- differential: hypothesis draws a request to a catalog route (path vars filled, then dot segments, `//`, encoded
  slashes, case, trailing slashes, percent-encoding, NUL and control characters; params placed in the query, the
  body or both, duplicated; the body urlencoded, multipart — parts in any order, file parts —, without a
  Content-Type or with an odd one). Each request carries a unique User-Agent, which joins the rack's record of it
  (app.state.requests) to the journal's events. For every request the rack acted on, exactly one event names the
  same route, app, target and parameters (journal_agrees_with_rack); for every request the gateway refused itself,
  the rack received nothing and the journal has a denied event; the gateway never answers 500 of its own. The
  same over websockets for the SOCKET routes (exec, shell, console, proxy, logs).
- secrets: hypothesis draws a secret (text and binary-ish characters around a unique marker) and a non-public place
  for it (an undeclared param, env values, map values, bracketed map fields, URL userinfo, a DSN, file parts,
  Authorization, Cookie and Private-Key headers, percent-encoded and base64 forms); no form of it appears in the
  journal's files (-wal and -shm included) or in what the gateway logged.

The servers are started once for the module; each example reads only what its own request produced.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import http.client
import itertools
import json
import logging
import re
import secrets
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from auditkit import store
from auditkit.capture import catalog
from auditkit.capture import config as cfg
from auditkit.capture import keys
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.capture.wire import encode_map
from auditkit.model.events import value_hmac
from convox_sim import rack as rack_mod
from convox_sim.servers import ServerThread
from helpers import basic, raw_bytes

RACK = "acme/production"
RACK_PW = "rackPW-" + secrets.token_hex(12)
SOURCE = "gw-props"
ALICE = "alice@example.com"
APPS = ("web", "api", "worker", "billing", "search")

# Examples per property, each about 20–30 s in `make test` (measured: differential 21 s, websockets 23 s, secrets
# 28 s — the secrets property reads the journal's files after every example, and they grow over the module).
DIFFERENTIAL_EXAMPLES = 2500
WEBSOCKET_EXAMPLES = 2500
SECRET_EXAMPLES = 600
PROPERTY_SETTINGS = dict(deadline=None, print_blob=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.filter_too_much])


# --- the world: the simulated rack, the gateway, its journal and its log ------------------------------------------


class StatusSpy:
    """ASGI wrapper in front of the simulated rack: the status the rack answered each request with, by User-Agent
    (so that a 500 the gateway relays is told apart from one of its own)."""

    def __init__(self, app: Any):
        self.app = app
        self.status: dict[str, list[int]] = collections.defaultdict(list)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        agent = dict(scope["headers"]).get(b"user-agent", b"").decode("latin-1")

        async def spy(message: dict) -> None:
            if message["type"] == "http.response.start":
                self.status[agent].append(message["status"])
            await send(message)

        await self.app(scope, receive, spy)


class LogCapture(logging.Handler):
    """Every log record of the gateway's threads (its server, its journal writer, its executors), at any level,
    with tracebacks: not the rack's (its thread and its logger) nor the test's own (MainThread)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.threadName in ("MainThread", "props-rack") or record.name.startswith("convox_sim"):
            return
        text = f"{record.name} {record.levelname} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatter.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + record.stack_info
        self.lines.append(text)


@dataclasses.dataclass
class World:
    rack_app: Any
    spy: StatusSpy
    gateway_port: int
    key: str
    hmac_key: bytes
    journal_path: Path
    conn: Any
    logs: LogCapture
    tags: Iterator[int]

    @property
    def received(self) -> list[rack_mod.ReceivedRequest]:
        return self.rack_app.state.requests

    def head(self) -> int:
        return store.chain_head(self.conn, SOURCE).last_seq

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every forwarded request has its outcome recorded (no intent left)."""
        deadline = time.monotonic() + timeout
        while self.conn.execute("SELECT count(*) FROM intents").fetchone()[0]:
            if time.monotonic() > deadline:
                raise AssertionError("an intent never got its outcome")
            time.sleep(0.002)

    def events_since(self, mark: int) -> list[dict[str, Any]]:
        self.settle()
        return store.events_after(self.conn, SOURCE, mark, 100_000)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("gateway-properties")
    rack_app = rack_mod.create_app(RACK_PW, rack_name=RACK, seed=29)
    spy = StatusSpy(rack_app)
    rack_server = ServerThread(spy)
    rack_server.thread.name = "props-rack"
    rack_server.start()
    config = cfg.load(None, racks=[cfg.parse_rack_flag(f"{RACK}=http://convox:{RACK_PW}@127.0.0.1:{rack_server.port}")],
                      journal=d / "journal.db", data_dir=d, name=SOURCE, http=True)
    conn = store.open_db(config.journal)
    _, key = keys.add(conn, ALICE, kind="user", role="member", source=journal_source(conn, SOURCE))
    conn.close()
    gateway_server = ServerThread(create_app(config), proxy_headers=False)
    gateway_server.thread.name = "props-gateway"
    # uvicorn configures its loggers (no propagation) when its Config is made: capture them and the root's.
    capture = LogCapture()
    watched = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error"),
               logging.getLogger("uvicorn.access")]
    levels = [(logger, logger.level) for logger in watched]
    for logger in watched:
        logger.addHandler(capture)
    logging.getLogger().setLevel(logging.DEBUG)
    gateway_server.start()
    try:
        yield World(rack_app, spy, gateway_server.port, key, config.hmac_key(), config.journal,
                    store.open_db(config.journal), capture, itertools.count(1))
    finally:
        gateway_server.stop()
        rack_server.stop()
        for logger, level in levels:
            logger.removeHandler(capture)
            logger.setLevel(level)


# --- requests on the wire ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Request:
    """A request exactly as it goes on the wire (the target is sent verbatim)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes | None
    route: catalog.Route | None = None  # what it was drawn from (for the report only)

    def describe(self) -> str:
        body = self.body if self.body is None or len(self.body) < 600 else self.body[:600] + b"..."
        return f"{self.method} {self.target}\n  headers {self.headers}\n  body {body!r}"


@dataclasses.dataclass
class Exchange:
    """One request through the gateway: what the client got, what the rack received, what the journal holds."""

    request: Request
    tag: str
    status: int
    answer: bytes
    received: list[rack_mod.ReceivedRequest]
    events: list[dict[str, Any]]
    rack_status: list[int]
    log_lines: list[str]


def send(world: World, request: Request, authorization: str | None = None) -> Exchange:
    """Send one request on a connection of its own and collect what it caused. The User-Agent is the tag; the
    member's key authenticates it unless another `authorization` is given."""
    tag = f"props-{next(world.tags)}-{secrets.token_hex(4)}"
    headers = {"Authorization": authorization or basic(RACK, world.key), "Accept": "*/*", **request.headers,
               "User-Agent": tag}
    mark, received_mark, log_mark = world.head(), len(world.received), len(world.logs.lines)
    conn = http.client.HTTPConnection("127.0.0.1", world.gateway_port, timeout=30)
    try:
        conn.putrequest(request.method, request.target, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if request.body is not None:
            conn.putheader("Content-Length", str(len(request.body)))
        try:
            conn.endheaders(request.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway may answer (and close) before reading a body it refuses
        response = conn.getresponse()
        status, answer = response.status, response.read()
    finally:
        conn.close()
    events = [e for e in world.events_since(mark) if e["user_agent"] == tag]
    received = [r for r in world.received[received_mark:] if r.headers.get("user-agent") == tag]
    return Exchange(request, tag, status, answer, received, events, list(world.spy.status.get(tag, [])),
                    world.logs.lines[log_mark:])


def send_ws(world: World, request: Request, authorization: str | None = None) -> Exchange:
    """Open a websocket as the Convox SDK does (option headers on the handshake), send stdin EOF (an empty BINARY
    frame) at once, read until the rack's EOF, close. The status is 101, or that of the refused handshake."""
    tag = f"props-{next(world.tags)}-{secrets.token_hex(4)}"
    headers = {"Authorization": authorization or basic(RACK, world.key), **request.headers, "User-Agent": tag}
    mark, received_mark, log_mark = world.head(), len(world.received), len(world.logs.lines)
    status, frames = 101, []
    try:
        with ws_connect(f"ws://127.0.0.1:{world.gateway_port}{request.target}", additional_headers=headers,
                        user_agent_header=None, open_timeout=10, close_timeout=5, max_size=None,
                        compression=None, proxy=None) as ws:
            try:
                ws.send(b"")
                while True:
                    frame = ws.recv(timeout=10)
                    frames.append(frame.encode() if isinstance(frame, str) else frame)
                    if frame == b"":
                        break
            except (ConnectionClosed, TimeoutError):
                pass
    except InvalidStatus as e:
        status = e.response.status_code
        frames = [e.response.body or b""]
    events = [e for e in world.events_since(mark) if e["user_agent"] == tag]
    received = [r for r in world.received[received_mark:] if r.headers.get("user-agent") == tag]
    return Exchange(request, tag, status, b"".join(frames), received, events, [], world.logs.lines[log_mark:])


# --- what the catalog and the rack call a route --------------------------------------------------------------------

def shape(pattern: str) -> str:
    """A pattern without its var names: the rack and the catalog name some vars differently (`{app}`/`{name}`)."""
    return re.sub(r"\{[^}]*\}", "{}", pattern)


def catalog_twin(rack_route: tuple[str, str], method: str) -> catalog.Route | None:
    """The catalog row for the route the rack matched (same shape; for a request of `method`, the catalog's
    exact-method row wins over its ANY row, as catalog.match decides)."""
    rack_method, pattern = rack_route
    rows = [r for r in catalog.ROUTES if shape(r.path) == shape(pattern)]
    if rack_method == "SOCKET":
        rows = [r for r in rows if r.method == "SOCKET"]
    elif rack_method == "ANY":
        rows = [r for r in rows if r.method in (method, "ANY")]
    else:
        rows = [r for r in rows if r.method in (rack_method, "ANY")]
    rows.sort(key=lambda r: r.method == "ANY")
    return rows[0] if rows else None


def same_route(a: catalog.Route | None, b: catalog.Route | None) -> bool:
    return a is not None and b is not None and (a.method, shape(a.path)) == (b.method, shape(b.path))


def twin_vars(twin: catalog.Route, received: rack_mod.ReceivedRequest) -> dict[str, str]:
    """The rack's path vars under the catalog's names (the patterns have the same shape: same order)."""
    assert received.route is not None and received.vars is not None
    rack_names = re.findall(r"\{([^}:]+)\}", received.route[1])
    return {c: received.vars[r] for c, r in zip(twin.vars, rack_names)}


def go_env_load(text: str) -> dict[str, str]:
    """convox structs.Environment.Load: bufio.Scanner lines (a final `\\r` dropped), split at the first `=`, the key
    trimmed and non-empty, the value as is; the last value of a key wins."""
    env: dict[str, str] = {}
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        key, sep, value = line.partition("=")
        if sep and key.strip():
            env[key.strip()] = value
    return env


def go_map(text: str) -> dict[str, str] | None:
    """A doubly encoded map param as stdapi's UnmarshalOptions decodes it: url.ParseQuery, the first value of each
    key; None where ParseQuery reports an error (a pair with `;` or a bad escape), on which the Go rack fails the
    request rather than apply the map."""
    for chunk in text.encode("utf-8").split(b"&"):
        if b";" in chunk or any(rack_mod._go_unescape(p, plus=True) is None for p in chunk.split(b"=", 1)):
            return None
    out: dict[str, str] = {}
    for key, value in rack_mod.go_parse_query(text):
        out.setdefault(key, value)
    return out


def text_field(value: str | None) -> str | None:
    """A value as an event's text field holds it: NUL is recorded as `\\0` (events.py), empty as absent."""
    return value.replace("\x00", "\\0") if value else None


# Keys of details that are not params of the request.
NOT_PARAMS = frozenset({
    "error", "pid", "release", "reason", "unnamed_params", "params_hmac", "file_parts", "map_forms", "params", "method", "path",
    "websocket", "run_event", "duration_ms", "exit_code", "recording_sha256", "recording_bytes",
    "recording_truncated", "link", "recording_masked", "masking_rule", "masked_keys", "recording_withheld",
})
ENV_SUMMARY = frozenset({"env", "added", "changed", "removed", "set", "hmac", "previous", "note"})
_BRACKET = re.compile(r"^([^\[\].]+)(?:\[([^\[\]]*)\]|\.(.+))$")


def journal_agrees_with_rack(event: dict[str, Any], received: rack_mod.ReceivedRequest,
                             hmac_key: bytes) -> list[str]:
    """Whether one journal event describes what the rack did with the request it received; the disagreements.

    The rack's record is the truth (it routes and parses as the Go rack does). The event must:

    1. name the same route: catalog.match(event method, event path) is the catalog row of the rack's matched
       route (same method, same pattern up to var names);
    2. carry the same app and target: the catalog row's `app` placeholder and `target` template filled from the
       rack's path vars and params (first value of each, as FormValue reads them); a target that comes from the
       rack's answer (`{id}` of a build) or from headers is not compared;
    3. record exactly the params the rack received (the names of r.Form; file parts apart), each in one of the
       forms of the recording format:
       - in clear: details[name] == the value the rack read (certificate bodies may be recorded as
         "sha256:<hex>" of it);
       - hashed: details["params_hmac"][name] == value_hmac(key, value);
       - a map param of the route (`parameters`, `Environment`, …): details[name] == its sorted keys and
         details[name + "_hmac"] == {key: value_hmac(key, value)} (a map the Go rack refuses — url.ParseQuery
         reports an error — must be named, its keys are not compared); a bracketed field `parameters[K]` /
         `parameters.K` (a param of its own name on the wire) and, on inline-parameter routes, a param outside the
         route's `fields` may instead be recorded as the key K of that map;
       - the env of ReleaseCreate: the env change summary (details, or details["env"] with a build), its keys the
         env's keys and its HMACs those of the env's values (structs.Environment.Load);
       and nothing else may look like a param (every other key of details is one of NOT_PARAMS);
    4. record the multipart file parts as details["file_parts"][name] == {"filename", "size", "sha256"}.
    """
    problems: list[str] = []
    assert received.route is not None
    method = event["method"] or ""
    twin = catalog_twin(received.route, received.method)
    found = catalog.match(method, event["path"] or "", websocket=received.method == "SOCKET")
    journal_route = found[0] if found else None
    if not same_route(journal_route, twin):
        problems.append(f"route: the rack acted as {received.route}, the journal's event is "
                        f"{(journal_route.method, journal_route.path) if journal_route else None} "
                        f"({event['method']} {event['path']!r})")
        return problems
    assert twin is not None
    path_vars = twin_vars(twin, received)
    form = received.params

    def value_of(name: str) -> str | None:
        return path_vars[name] if name in path_vars else form.get(name)

    if twin.app:
        expected_app = text_field(value_of(twin.app))
        if event["app"] != expected_app:
            problems.append(f"app: rack {expected_app!r}, journal {event['app']!r}")
    placeholders = re.findall(r"\{([^}]+)\}", twin.target or "")
    if placeholders and not set(placeholders) & (set(twin.response) | set(twin.headers)):
        values = [value_of(p) for p in placeholders]
        expected_target = None
        if all(values):
            expected_target = twin.target
            for p, v in zip(placeholders, values):
                expected_target = expected_target.replace("{" + p + "}", v)
        if event["target"] != text_field(expected_target):
            problems.append(f"target: rack {text_field(expected_target)!r}, journal {event['target']!r}")

    details = event["details"] or {}
    hashed = details.get("params_hmac") or {}
    if not isinstance(hashed, dict):
        return problems + [f"details['params_hmac'] is not a map: {hashed!r}"]
    map_names = set(twin.maps) | ({"parameters"} if twin.inline_params else set())
    # What each map of the journal may hold besides the map param's own keys: bracketed fields `m[K]` / `m.K`, and
    # on inline-parameter routes every param outside `fields`: {map: {key: param name}}.
    extra_keys: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for name in form:
        found_bracket = _BRACKET.match(name)
        if found_bracket and found_bracket.group(1) in map_names:
            key = found_bracket.group(2) if found_bracket.group(2) is not None else found_bracket.group(3)
            extra_keys[found_bracket.group(1)].setdefault(key, name)
        elif twin.inline_params and name not in twin.fields:
            extra_keys["parameters"].setdefault(name, name)
    via_map = {name: (m, key) for m, keys_ in extra_keys.items() for key, name in keys_.items()}
    accounted: set[str] = set()  # keys of details explained by what the rack received

    def hmac_of(value: str) -> str:
        return value_hmac(hmac_key, value)

    def recorded_map(m: str) -> tuple[list[Any], dict[str, Any]] | None:
        keys_, hashes = details.get(m), details.get(f"{m}_hmac")
        if isinstance(keys_, list) and isinstance(hashes, dict):
            return keys_, hashes
        return None

    for name in sorted(form):
        value = form[name]
        accounted.add(name)
        if twin.special == "env" and name == "env":
            summary = details.get("env") if isinstance(details.get("env"), dict) else details
            env = go_env_load(value)
            keys_seen = set(summary.get("set") or []) | set(summary.get("added") or []) | \
                set(summary.get("changed") or [])
            if "set" not in summary and "added" not in summary:
                problems.append(f"param env: the rack received an env ({sorted(env)}), the journal has no summary")
            elif not keys_seen <= set(env) or (summary.get("set") is not None and set(summary["set"]) != set(env)):
                problems.append(f"param env: rack keys {sorted(env)}, journal {summary}")
            for key, digest in (summary.get("hmac") or {}).items():
                if key not in env or digest != hmac_of(env[key]):
                    problems.append(f"param env: the HMAC of {key!r} is not that of the value the rack got")
            accounted |= ENV_SUMMARY
        elif name in hashed:
            if hashed[name] != hmac_of(value):
                problems.append(f"param {name!r}: its HMAC is not that of the value the rack got")
        elif name in map_names and recorded_map(name) is not None:
            pass  # checked with the map below
        elif name in via_map and recorded_map(via_map[name][0]) is not None and \
                via_map[name][1] in recorded_map(via_map[name][0])[0]:  # type: ignore[index]
            pass  # checked with the map below
        elif isinstance(details.get(name), str):
            recorded = details[name]
            digest = "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()
            if recorded != value.replace("\x00", "\\0") and not (name in twin.digests and recorded == digest):
                problems.append(f"param {name!r}: the rack read {value!r}, the journal holds {recorded!r}")
        else:
            problems.append(f"param {name!r}: the rack received it (= {value!r}), the journal does not name it")
    for m in sorted(map_names):
        recorded = recorded_map(m)
        if recorded is None:
            continue
        keys_, hashes = recorded
        accounted |= {m, f"{m}_hmac"}
        decoded = go_map(form[m]) if m in form else {}
        if decoded is None:
            continue  # the Go rack refuses such a map: its keys are not compared
        allowed = {**{k: [v] for k, v in decoded.items()}}
        for key, name in extra_keys.get(m, {}).items():
            allowed.setdefault(key, []).append(form[name])
        if set(keys_) - set(allowed) or set(decoded) - set(keys_) or sorted(keys_) != list(keys_):
            problems.append(f"map {m!r}: the rack received keys {sorted(allowed)} (its own {sorted(decoded)}), "
                            f"the journal {keys_}")
        for key in keys_:
            if hashes.get(key) not in [hmac_of(v) for v in allowed.get(key, [])]:
                problems.append(f"map {m!r}: the HMAC of key {key!r} is not that of a value the rack got")
    for name in hashed:
        if name not in form:
            problems.append(f"param {name!r}: in the journal's params_hmac, never received by the rack")
    headers = {h.lower() for h in twin.headers}
    for name, value in details.items():
        if name in accounted or name in NOT_PARAMS or name in headers:
            continue
        if twin.special == "env" and name in ENV_SUMMARY and "env" not in form:
            problems.append(f"details[{name!r}]: an env summary, but the rack received no env")
            continue
        problems.append(f"details[{name!r}] = {value!r}: the rack received no such param")

    rack_files: dict[str, dict[str, Any]] = {}
    for part in received.files:
        rack_files.setdefault(part.name, {"filename": part.filename, "size": part.size, "sha256": part.sha256})
    journal_files = details.get("file_parts") or {}
    if journal_files != rack_files:
        problems.append(f"files: rack {rack_files}, journal {journal_files}")
    return problems


def check_exchange(x: Exchange, hmac_key: bytes) -> None:
    """The differential property for one exchange (see the module docstring)."""
    note(f"sent {x.request.describe()}")
    note(f"gateway answered {x.status} {x.answer[:300]!r}; rack answered {x.rack_status}")
    note(f"rack received {[(r.method, r.path, r.route, r.vars, r.form, r.files) for r in x.received]}")
    journal = [(e["outcome"], e["status"], e["method"], e["path"], e["app"], e["target"], e["description"],
                e["details"]) for e in x.events]
    note(f"journal {journal}")
    if x.status == 500:
        assert x.rack_status == [500], "the gateway answered 500 of its own (the rack did not)"
    assert len(x.received) <= 1, f"the rack received the request {len(x.received)} times"
    if not x.received:
        assert 400 <= x.status < 500, f"the gateway answered {x.status} without forwarding the request"
        assert [e["outcome"] for e in x.events] == ["denied"], \
            f"the gateway refused the request itself ({x.status}); the journal should hold one denied event"
        return
    received = x.received[0]
    if received.route is None or received.actor is None:
        return  # the rack did not act on it (no route: 404, 405, 400): nothing to compare
    twin = catalog_twin(received.route, received.method)
    must_record = (twin is not None and twin.audited) or (twin is None and received.method not in ("GET", "HEAD"))
    if not must_record and not x.events:
        return
    assert len(x.events) == 1, f"the rack acted as {received.route}: {len(x.events)} events in the journal"
    problems = journal_agrees_with_rack(x.events[0], received, hmac_key)
    assert not problems, "the journal does not say what the rack did:\n  " + "\n  ".join(problems)


# --- the comparison itself, on hand-made records (the format being introduced by issue 10's point 2) ----------

KEY = b"k" * 32


def rack_record(method: str, pattern: str, path_vars: dict[str, str], form: list[tuple[str, str]],
                files: tuple[rack_mod.FilePart, ...] = ()) -> rack_mod.ReceivedRequest:
    first: dict[str, str] = {}
    for name, value in form:
        first.setdefault(name, value)
    path = pattern
    for name, value in path_vars.items():
        path = re.sub(r"\{" + name + r"(:[^}]*)?\}", value, path)
    return rack_mod.ReceivedRequest(method, path, ALICE, {}, first, (method, pattern), path_vars, tuple(form), files)


def journal_event(method: str, path: str, app: str | None, target: str | None, details: dict[str, Any]) -> dict:
    return {"method": method, "path": path, "app": app, "target": target, "details": details}


def h(value: str) -> str:
    return value_hmac(KEY, value)


def test_the_comparison_accepts_each_recording_form_and_names_every_disagreement():
    # clear, hashed, a map, a bracketed map field, a file part
    received = rack_record("PUT", "/apps/{app}", {"app": "web"},
                           [("lock", "true"), ("dsn", "postgres://u:pw@h"), ("parameters", "A=1&B=2"),
                            ("parameters[C]", "3")],
                           (rack_mod.FilePart("src", "app.tgz", 3, "ab" * 32),))
    details = {"lock": "true", "params_hmac": {"dsn": h("postgres://u:pw@h")}, "parameters": ["A", "B", "C"],
               "parameters_hmac": {"A": h("1"), "B": h("2"), "C": h("3")},
               "file_parts": {"src": {"filename": "app.tgz", "size": 3, "sha256": "ab" * 32}}, "error": "x"}
    good = journal_event("PUT", "/apps/web", "web", "web", details)
    assert journal_agrees_with_rack(good, received, KEY) == []
    # the bracketed field may also be named as it is on the wire
    literal = {**details, "parameters": ["A", "B"], "parameters_hmac": {"A": h("1"), "B": h("2")},
               "params_hmac": {"dsn": h("postgres://u:pw@h"), "parameters[C]": h("3")}}
    assert journal_agrees_with_rack({**good, "details": literal}, received, KEY) == []

    def problems(**changes: Any) -> list[str]:
        event = {**good, **changes}
        return journal_agrees_with_rack(event, received, KEY)

    assert problems(path="/apps/web/cancel", method="POST")[0].startswith("route:")
    assert problems(path="/apps/./web")[0].startswith("route:")  # the catalog matches no such path
    assert problems(app="billing")[0].startswith("app:")
    assert problems(target="billing")[0].startswith("target:")
    assert any("'lock'" in p for p in problems(details={**details, "lock": "false"}))
    assert any("'dsn'" in p for p in problems(details={**details, "params_hmac": {"dsn": h("other")}}))
    assert any("'dsn'" in p for p in problems(details={**details, "params_hmac": {}}))  # not named
    # which params may be recorded in clear is the catalog's allowlist (and the secrets property's), not this
    assert problems(details={**details, "dsn": "postgres://u:pw@h", "params_hmac": {}}) == []
    assert any("never received" in p for p in problems(details={**details, "params_hmac": {
        "dsn": h("postgres://u:pw@h"), "name": h("x")}}))
    assert any("no such param" in p for p in problems(details={**details, "name": "x"}))
    assert any(p.startswith("map") for p in problems(details={**details, "parameters": ["A", "C"]}))
    assert any(p.startswith("map") for p in problems(details={**details, "parameters_hmac": {
        "A": h("2"), "B": h("2"), "C": h("3")}}))
    assert any(p.startswith("files") for p in problems(details={**details, "file_parts": {}}))


def test_the_comparison_of_a_websocket_and_of_a_path_the_rack_decoded():
    received = rack_record("SOCKET", "/apps/{app}/processes/{pid}/exec", {"app": "we?b", "pid": "p 1"},
                           [("x", "1")])
    event = journal_event("GET", "/apps/we%3Fb/processes/p%201/exec", "we?b", "p 1",
                          {"command": "bash", "params_hmac": {"x": h("1")}, "duration_ms": 3, "exit_code": 0})
    assert journal_agrees_with_rack(event, received, KEY) == []
    # a path recorded decoded, `?` and all, no longer reads as the route the rack took
    assert journal_agrees_with_rack({**event, "path": "/apps/we?b/processes/p 1/exec"}, received, KEY)


def test_the_comparison_reads_env_and_inline_parameters_as_the_rack_does():
    env = "DATABASE_URL=postgres://x\r\nTOKEN=t=1\nnot a line\n =skipped"
    received = rack_record("POST", "/apps/{app}/releases", {"app": "web"}, [("env", env)])
    summary = {"added": ["TOKEN"], "changed": ["DATABASE_URL"], "removed": ["OLD"],
               "hmac": {"DATABASE_URL": h("postgres://x"), "TOKEN": h("t=1")}}
    event = journal_event("POST", "/apps/web/releases", "web", None, summary)
    assert journal_agrees_with_rack(event, received, KEY) == []
    with_build = rack_record("POST", "/apps/{app}/releases", {"app": "web"}, [("build", "B1"), ("env", env)])
    event = journal_event("POST", "/apps/web/releases", "web", None, {"build": "B1", "env": summary})
    assert journal_agrees_with_rack(event, with_build, KEY) == []
    wrong = {**summary, "hmac": {"DATABASE_URL": h("postgres://x\r"), "TOKEN": h("t=1")}}
    assert journal_agrees_with_rack({**event, "details": {"build": "B1", "env": wrong}}, with_build, KEY)
    no_env = rack_record("POST", "/apps/{app}/releases", {"app": "web"}, [("build", "B1")])
    assert journal_agrees_with_rack(journal_event("POST", "/apps/web/releases", "web", None,
                                                  {"build": "B1", **summary}), no_env, KEY)
    # POST /resources: every param outside its fields is a parameter of the resource
    received = rack_record("POST", "/resources", {}, [("name", "db"), ("kind", "postgres"), ("Storage", "20")])
    event = journal_event("POST", "/resources", None, "db", {"name": "db", "kind": "postgres",
                                                             "parameters": ["Storage"],
                                                             "parameters_hmac": {"Storage": h("20")}})
    assert journal_agrees_with_rack(event, received, KEY) == []


# --- drawing requests --------------------------------------------------------------------------------------------

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
AUDITED_READS = frozenset(r for r in catalog.ROUTES if r.audited and r.method in ("GET", "HEAD"))
HTTP_ROUTES = tuple(r for r in catalog.ROUTES
                    if r.method != "SOCKET" and (r.method not in catalog.READ_METHODS or r in AUDITED_READS))
COMPUTED = {"keys", "settings", "method", "shell", "code"}
# Routes whose body the rack reads raw (a JSON document, an upload) rather than as a form: their params travel in the
# query string only (how the Go rack would read a form body there is not modelled).
RACK_RAW = frozenset(r for r in HTTP_ROUTES for q in rack_mod.ROUTES
                     if q.body == "raw" and q.method in (r.method, "ANY") and shape(rack_mod.route_pattern(q)) ==
                     shape(r.path))

# Names a route reads, beyond its placeholders (the rack's handlers read them).
SPECIAL_PARAMS = {
    "env": ("env", "build", "description", "parent-release"),
    "app_update": ("lock", "parameters"),
    "system_update": ("parameters", "version", "count", "type"),
    "scale": ("count", "cpu", "memory", "gpu", "min", "max"),
}
EXTRA_NAMES = ("description", "note", "dsn", "url", "token", "x", "parameters[DbPassword]", "parameters.Region",
               "name[]", "a[b][c]", "", "Name", "NAME", "na%me", "n&m", "n=m", "x\x00y", "x\x01", "é")


def route_params(route: catalog.Route) -> list[str]:
    """The params a request to `route` plausibly carries."""
    names: list[str] = []
    for template in (route.description, route.target or ""):
        names += [p for p in re.findall(r"\{([^}]+)\}", template)
                  if p not in route.vars and p not in route.response and p not in COMPUTED and p not in route.headers]
    if route.app and route.app not in route.vars:
        names.append(route.app)
    names += list(route.maps) + list(route.secrets) + list(route.digests) + list(route.fields)
    names += list(SPECIAL_PARAMS.get(route.special or "", ()))
    return list(dict.fromkeys(n for n in names if n.lower() not in {h.lower() for h in route.headers}))


VALUE_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00") | \
    st.sampled_from(list("&=;+%#?/ \t\n.:@[]'\"\\é日"))
values = st.text(VALUE_ALPHABET, max_size=16)
words = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1, max_size=10)


@st.composite
def map_values(draw: st.DrawFn) -> str:
    items = draw(st.dictionaries(st.sampled_from(["DbPassword", "Region", "node_disk", "BuildCpu", "a b", "k&v"]),
                                 values, max_size=3))
    return encode_map(items)


@st.composite
def env_values(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.tuples(st.sampled_from(["DATABASE_URL", "TOKEN", " K ", "#C", "A=B", ""]), values),
                          max_size=3))
    sep = draw(st.sampled_from(["\n", "\r\n"]))
    return sep.join(f"{k}={v}" for k, v in lines)


def param_value(name: str, route: catalog.Route) -> st.SearchStrategy[str]:
    if name == "env":
        return env_values()
    if name in route.maps or name == "parameters":
        return map_values() | values
    if name in ("count", "cpu", "memory", "min", "max"):
        return st.integers(-1, 5).map(str) | values
    if name == "lock":
        return st.sampled_from(["true", "false", "1", "0", "yes"])
    if name in ("name", "app"):
        return st.sampled_from(APPS) | words
    return values


def var_value(name: str) -> st.SearchStrategy[str]:
    if name in ("app", "name"):
        return st.sampled_from(APPS) | words | values.filter(bool)
    if name in catalog.GREEDY_VARS:
        return st.lists(st.sampled_from(["tmp", "x", "..", ".", "blobs", "apps", "billing", "a.tgz", ""]) | words,
                        min_size=1, max_size=4).map("/".join).filter(bool)
    return words | values.filter(bool)


# A rare feature is drawn as `integers(0, n) == n`: hypothesis shrinks integers towards 0, so a shrunk example
# keeps only the features its failure needs.

def pct(ch: str, lower: bool = False) -> str:
    text = urllib.parse.quote(ch, safe="")
    if text == ch:
        text = "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
    return text.lower() if lower else text


def encode_component(draw: st.DrawFn, text: str, *, keep: str) -> str:
    """Percent-encode `text` for a URL (or form) component: what must be encoded is, the rest randomly."""
    out = []
    for ch in text:
        must = ch not in keep and not (ch.isascii() and (ch.isalnum() or ch in "-._~"))
        if must or draw(st.integers(0, 9)) == 9:
            out.append(pct(ch, lower=draw(st.booleans())))
        else:
            out.append(ch)
    return "".join(out)


def fill_path(draw: st.DrawFn, route: catalog.Route) -> list[str]:
    """The route's path as encoded segments (a var may span several when it is greedy and holds `/`)."""
    segments: list[str] = []
    for part in route.path.strip("/").split("/"):
        pieces = re.split(r"(\{[A-Za-z0-9_]+\})", part)
        text = ""
        for piece in pieces:
            if piece.startswith("{"):
                name = piece[1:-1]
                value = draw(var_value(name))
                keep = "/" if name in catalog.GREEDY_VARS and draw(st.booleans()) else ""
                text += encode_component(draw, value, keep=keep)
            else:
                text += piece
        segments.extend(text.split("/"))
    return segments


DOT_TOKENS = [".", "..", "%2e", "%2E", "%2e%2e", "%2E.", ".%2e", "%2E%2E", "x", "apps", "web"]
CONTROL = ["%00", "%01", "%0a", "%0D", "%1F", "%7f", "%09", "%C2%85"]


@st.composite
def paths(draw: st.DrawFn, route: catalog.Route) -> str:
    segments = fill_path(draw, route)
    for mutation in draw(st.lists(st.sampled_from(
            ["dots", "traverse", "double-slash", "encoded-slash", "case", "trailing-slash", "percent", "control"]),
            max_size=3)):
        i = draw(st.integers(0, len(segments)))
        if mutation == "dots":
            segments[i:i] = draw(st.lists(st.sampled_from(DOT_TOKENS), min_size=1, max_size=3))
        elif mutation == "traverse":
            other = draw(st.sampled_from(HTTP_ROUTES))
            segments += [draw(st.sampled_from(["..", "%2e%2e", "%2E.", ".."]))
                         for _ in range(draw(st.integers(1, len(segments) + 1)))]
            segments += fill_path(draw, other)
        elif mutation == "double-slash":
            segments.insert(i, "")
        elif mutation == "encoded-slash" and len(segments) > 1:
            j = min(i, len(segments) - 2)
            segments[j:j + 2] = [segments[j] + draw(st.sampled_from(["%2F", "%2f"])) + segments[j + 1]]
        elif mutation == "case" and segments:
            j = min(i, len(segments) - 1)
            segments[j] = draw(st.sampled_from([str.upper, str.title, str.swapcase]))(segments[j])
        elif mutation == "trailing-slash":
            segments.append("")
        elif mutation == "percent" and segments:
            j = min(i, len(segments) - 1)
            segments[j] = "".join(pct(c, draw(st.booleans())) if c.isalnum() and draw(st.booleans()) else c
                                  for c in segments[j])
        elif mutation == "control" and segments:
            j = min(i, len(segments) - 1)
            k = draw(st.integers(0, len(segments[j])))
            segments[j] = segments[j][:k] + draw(st.sampled_from(CONTROL)) + segments[j][k:]
    return "/" + "/".join(segments)


def form_pair(draw: st.DrawFn, name: str, value: str) -> str:
    style = draw(st.sampled_from(["plus", "pct", "loose"]))
    if style == "plus":
        return urllib.parse.quote_plus(name) + "=" + urllib.parse.quote_plus(value)
    if style == "pct":
        return urllib.parse.quote(name, safe="") + "=" + urllib.parse.quote(value, safe="")
    return encode_component(draw, name, keep="!$'()*,:@/?[]") + "=" + encode_component(draw, value,
                                                                                      keep="!$'()*,:@/?[]=")


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def multipart_body(draw: st.DrawFn, pairs: list[tuple[str, str]], route: catalog.Route) -> tuple[bytes, str]:
    boundary = draw(st.sampled_from(["BOUNDARY", "----x7", "a'b(c)+_,-./:=?", "Zz" + "9" * 60]))
    nl = draw(st.sampled_from([b"\r\n"] * 6 + [b"\n"]))
    parts: list[bytes] = []
    for name, value in pairs:
        disposition = draw(st.sampled_from(["form-data", "Form-Data"])) + "; name=" + quoted(name)
        headers = [f"Content-Disposition: {disposition}"]
        data = value.encode("utf-8")
        if draw(st.integers(0, 5)) == 5:
            headers.append("Content-Type: text/plain; charset=utf-8")
        if draw(st.integers(0, 7)) == 7:
            headers.append("Content-Transfer-Encoding: quoted-printable")
            data = b"".join(b"=%02X" % b if b in b"=\r\n" or b > 126 or draw(st.integers(0, 3)) == 3 else bytes([b])
                            for b in data)
        parts.append("\r\n".join(headers).encode("utf-8") + b"\r\n\r\n" + data)
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(route_params(route) + ["file", "source", "env"]) if route_params(route)
                    else st.sampled_from(["file", "source", "env"]))
        filename = draw(st.sampled_from(["app.tgz", "dir/x.tar", "../../etc/passwd", 'q"uote', "", "é.txt"]))
        content = draw(st.binary(max_size=64))
        header = f"Content-Disposition: form-data; name={quoted(name)}; filename={quoted(filename)}\r\n" \
                 f"Content-Type: application/octet-stream"
        parts.append(header.encode("utf-8") + b"\r\n\r\n" + content)
    order = draw(st.permutations(range(len(parts))))
    b = boundary.encode()
    body = (b"preamble" + nl if draw(st.booleans()) else b"") + b"".join(
        b"--" + b + nl + parts[i].replace(b"\r\n", nl) + nl for i in order) + b"--" + b + b"--" + nl
    ctype = "multipart/form-data; boundary=" + (quoted(boundary) if draw(st.booleans()) or "=" in boundary
                                                 or "'" in boundary or "(" in boundary else boundary)
    return body, ctype


ODD_TYPES = ["text/plain", "application/json", "multipart/form-data", "multipart/form-data; boundary",
             "application/x-www-form-urlencoded; charset=utf-8", "APPLICATION/X-WWW-FORM-URLENCODED",
             "application/x-www-form-urlencoded; charset=a; charset=b", "application/x-www-form-urlencoded;;",
             " application/x-www-form-urlencoded ", "application/octet-stream", "multipart/mixed; boundary=B",
             "application/x-www-form-urlencoded, text/plain", "text/x-www-form-urlencoded"]


@st.composite
def requests(draw: st.DrawFn) -> Request:
    route = draw(st.sampled_from(HTTP_ROUTES))
    method = draw(st.sampled_from(WRITE_METHODS)) if route.method == "ANY" else route.method
    path = draw(paths(route))
    known = route_params(route)
    names = st.sampled_from(known) | st.sampled_from(EXTRA_NAMES) if known else st.sampled_from(EXTRA_NAMES)
    params = draw(st.lists(names.flatmap(lambda n: st.tuples(st.just(n), param_value(n, route))), max_size=5))
    query: list[tuple[str, str]] = []
    body_pairs: list[tuple[str, str]] = []
    raw = route.raw_body or route in RACK_RAW or method in ("GET", "HEAD")
    for name, value in params:
        place = "query" if raw else draw(st.sampled_from(["query", "body", "body", "both"]))
        if place in ("query", "both"):
            query.append((name, value))
        if place in ("body", "both"):
            body_pairs.append((name, draw(param_value(name, route)) if draw(st.booleans()) else value))
    for target in (query, body_pairs):
        if target and draw(st.integers(0, 4)) == 4:  # a repeated param
            name = draw(st.sampled_from([n for n, _ in target]))
            target.insert(draw(st.integers(0, len(target))), (name, draw(param_value(name, route))))
    query_text = "&".join(form_pair(draw, n, v) for n, v in query)
    if query and draw(st.integers(0, 9)) == 9:
        query_text += draw(st.sampled_from(["&a;b=c", "&bad=%zz", "&&", "&=x", "&%"]))
    target = path + ("?" + query_text if query_text else "")
    headers: dict[str, str] = {}
    body: bytes | None = None
    if raw:
        if method not in ("GET", "HEAD", "DELETE") or draw(st.booleans()):
            body = draw(st.binary(max_size=64))
            ctype = draw(st.sampled_from([None, "application/octet-stream", "application/gzip", "text/plain"]))
            if ctype:
                headers["Content-Type"] = ctype
    else:
        kind = draw(st.sampled_from(["urlencoded"] * 4 + ["multipart"] * 3 + ["none", "odd", "odd", "empty"]))
        if kind == "multipart":
            body, headers["Content-Type"] = draw(multipart_body(body_pairs, route))
        elif kind != "empty" or body_pairs:
            body = "&".join(form_pair(draw, n, v) for n, v in body_pairs).encode("utf-8")
            if body and draw(st.integers(0, 9)) == 9:
                body += draw(st.sampled_from([b"&a;b=c", b"&bad=%zz", b"&&", b"&=x"]))
            if kind == "urlencoded":
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            elif kind == "odd":
                headers["Content-Type"] = draw(st.sampled_from(ODD_TYPES))
    return Request(method, target, headers, body, route)


# --- a) the differential property --------------------------------------------------------------------------------

@settings(max_examples=DIFFERENTIAL_EXAMPLES, **PROPERTY_SETTINGS)
@given(request=requests())
def test_the_journal_says_what_the_rack_did(world: World, request: Request):
    check_exchange(send(world, request), world.hmac_key)


SOCKET_ROUTES = tuple(r for r in catalog.ROUTES if r.method == "SOCKET")


@st.composite
def websocket_requests(draw: st.DrawFn) -> Request:
    """A websocket upgrade to a SOCKET route of the catalog: the path drawn as for HTTP, params in the query, some
    of the route's option headers."""
    route = draw(st.sampled_from(SOCKET_ROUTES))
    path = draw(paths(route))
    names = st.sampled_from(EXTRA_NAMES + ("follow", "since", "filter"))
    query = draw(st.lists(names.flatmap(lambda n: st.tuples(st.just(n), values)), max_size=3))
    if query and draw(st.integers(0, 4)) == 4:
        query.append((query[0][0], draw(values)))
    headers = {}
    for header in draw(st.lists(st.sampled_from(route.headers), unique=True)) if route.headers else []:
        headers[header] = draw(st.sampled_from(["echo hi", "bash", "80", "24", "true", "false"]))
    query_text = "&".join(form_pair(draw, n, v) for n, v in query)
    return Request("GET", path + ("?" + query_text if query_text else ""), headers, None, route)


@settings(max_examples=WEBSOCKET_EXAMPLES, **PROPERTY_SETTINGS)
@given(request=websocket_requests())
def test_the_journal_says_what_the_rack_did_over_websockets(world: World, request: Request):
    check_exchange(send_ws(world, request), world.hmac_key)


# --- b) secrets --------------------------------------------------------------------------------------------------

SECRET_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",)) | \
    st.sampled_from(list("&=;+%#?/@: \t\r\n\x00\x01\x7f\x80\xff\"'\\[]{}é日🔑"))
PUBLIC_NAMES = frozenset(n.lower() for r in catalog.ROUTES for n in route_params(r) + list(r.vars)) | {
    "parameters", "environment", "volumes", "data", "env", "manifest", "build-args", "src-creds-pass", "password",
    "value", "key", "private", "url", "dsn"}


@dataclasses.dataclass
class Secret:
    text: str
    marker: str

    def forms(self) -> dict[str, bytes]:
        """Every form of the secret that must never be stored: as sent, percent-encoded, JSON-escaped, base64."""
        raw = self.text.encode("utf-8", errors="surrogatepass")
        out = {
            "marker": self.marker.encode(), "utf-8": raw,
            "percent-encoded": urllib.parse.quote(self.text, safe="").encode(),
            "form-encoded": urllib.parse.quote_plus(self.text).encode(),
            "percent-encoded (lower case)": urllib.parse.quote(self.text, safe="").lower().encode(),
            "json": json.dumps(self.text)[1:-1].encode(),
            "json (utf-8)": json.dumps(self.text, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass"),
            "base64": base64.b64encode(raw),
            "base64 (basic auth)": base64.b64encode(f"{RACK}:{urllib.parse.quote(self.text, safe='')}".encode()),
        }
        return {k: v for k, v in out.items() if len(v) >= 8}


def secret_text(marker: str, *, one_line: bool = False) -> st.SearchStrategy[str]:
    """A secret: text and binary-ish characters around the marker. In `KEY=VALUE` text a line break would end the
    value (and could make a public key of the rest): `one_line` secrets have none."""
    alphabet = SECRET_ALPHABET.filter(lambda c: c not in "\r\n") if one_line else SECRET_ALPHABET
    return st.tuples(st.text(alphabet, max_size=10), st.text(alphabet, max_size=10)).map(
        lambda t: t[0] + marker + t[1])


def undeclared_names() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z][a-zA-Z0-9_-]{2,12}", fullmatch=True).filter(
        lambda n: n.lower() not in PUBLIC_NAMES and not catalog.is_secret_name(n)) | \
        st.sampled_from(["apiKey", "dbPassword", "x-auth-token", "sessionCookie", "webhookSecret"])


# Where a secret goes: (route path to fill, method, a function of (draw, secret) → (params, headers, file parts)).
Placement = Callable[[st.DrawFn, str], tuple[list[tuple[str, str]], dict[str, str], list[tuple[str, bytes]]]]


def _map(draw: st.DrawFn, secret: str) -> str:
    return encode_map({"DbPassword": secret, draw(st.sampled_from(["Region", "node_disk"])): "x"})


PLACEMENTS: dict[str, tuple[str, str, Placement]] = {
    "undeclared param": ("*", "*", lambda draw, s: ([(draw(undeclared_names()), s)], {}, [])),
    "undeclared param, percent-encoded": ("*", "*", lambda draw, s: (
        [(draw(undeclared_names()), urllib.parse.quote(s, safe=""))], {}, [])),
    "undeclared param, base64": ("*", "*", lambda draw, s: (
        [(draw(undeclared_names()), base64.b64encode(s.encode("utf-8", "surrogatepass")).decode())], {}, [])),
    "dsn": ("*", "*", lambda draw, s: ([("dsn", f"postgres://u:{urllib.parse.quote(s, safe='')}@h/db")], {}, [])),
    "env value": ("/apps/{app}/releases", "POST", lambda draw, s: (
        [("env", f"PUBLIC=1\n{draw(st.sampled_from(['DATABASE_URL', 'TOKEN', 'X']))}={s}")], {}, [])),
    "env value with a build": ("/apps/{app}/releases", "POST", lambda draw, s: (
        [("build", "B1"), ("env", f"SECRET={s}")], {}, [])),
    "rack parameter map": ("/system", "PUT", lambda draw, s: ([("parameters", _map(draw, s))], {}, [])),
    "app parameter map": ("/apps/{name}", "PUT", lambda draw, s: ([("parameters", _map(draw, s))], {}, [])),
    "bracketed map field": ("*map", "*", lambda draw, s: (
        [(draw(st.sampled_from(["parameters[DbPassword]", "parameters.DbPassword", "parameters[a][b]"])), s)],
        {}, [])),
    "url userinfo": ("/apps/{app}/builds", "POST", lambda draw, s: (
        [("url", f"https://user:{urllib.parse.quote(s, safe='')}@git.example/x.tgz")], {}, [])),
    "url userinfo (raw)": ("/apps/{app}/builds", "POST", lambda draw, s: (
        [("url", f"https://user:{s}@git.example/x.tgz")], {}, [])),
    "registry password": ("/registries", "POST", lambda draw, s: (
        [("server", "registry.example.com"), ("username", "deployer"), ("password", s)], {}, [])),
    "config value": ("/apps/{app}/configs/{name}", "PUT", lambda draw, s: (
        [("value", draw(st.sampled_from([s, base64.b64encode(s.encode("utf-8", "surrogatepass")).decode()])))],
        {}, [])),
    "image pull password": ("/apps/{app}/builds/{id}/image", "POST", lambda draw, s: (
        [("image", "quay.io/x/y:1"), ("src-creds-user", "u"), ("src-creds-pass", s)], {}, [])),
    "build args": ("/apps/{app}/builds", "POST", lambda draw, s: ([("build-args", f"TOKEN={s}")], {}, [])),
    "file part": ("*", "*", lambda draw, s: ([], {}, [(draw(st.sampled_from(["source", "env", "file"])),
                                                       s.encode("utf-8", "surrogatepass"))])),
    "Cookie header": ("*", "*", lambda draw, s: ([], {"Cookie": f"session={urllib.parse.quote(s, safe='')}"}, [])),
    "Private-Key header": ("*", "*", lambda draw, s: (
        [], {"Private-Key": base64.b64encode(s.encode("utf-8", "surrogatepass")).decode()}, [])),
    "Private-Key header (raw)": ("*", "*", lambda draw, s: (
        [], {"Private-Key": urllib.parse.quote(s, safe="")}, [])),
    "Authorization header (a wrong key)": ("*", "*", lambda draw, s: ([], {"Authorization": basic(RACK, s)}, [])),
    "Private-Key header of an instance shell": ("/instances/{id}/shell", "SOCKET", lambda draw, s: (
        [], {"Private-Key": base64.b64encode(s.encode("utf-8", "surrogatepass")).decode(), "Command": "whoami"},
        [])),
    "Proxy-Authorization header": ("*", "*", lambda draw, s: (
        [], {"Proxy-Authorization": "Bearer " + urllib.parse.quote(s, safe="")}, [])),
}
ONE_LINE = frozenset({"env value", "env value with a build", "build args"})
WRITE_ROUTES = tuple(r for r in HTTP_ROUTES if r.method != "GET" and not r.raw_body and "v3" in r.versions)
MAP_ROUTES = tuple(r for r in WRITE_ROUTES if "parameters" in r.maps)


@st.composite
def secret_requests(draw: st.DrawFn, where: str, secret: str) -> Request:
    path_pattern, method, place = PLACEMENTS[where]
    if path_pattern == "*":
        route = draw(st.sampled_from(WRITE_ROUTES))
    elif path_pattern == "*map":
        route = draw(st.sampled_from(MAP_ROUTES))
    else:
        route = next(r for r in catalog.ROUTES if r.path == path_pattern and r.method == method)
    params, headers, files = place(draw, secret)
    path = "/" + "/".join(fill_path(draw, route))
    if draw(st.integers(0, 5)) == 5:  # a hostile encoding on top: the refusal must not leak it either
        path = draw(paths(route))
    if draw(st.integers(0, 5)) == 5 and params:
        params = params + [(params[-1][0], "other")]
    kind = draw(st.sampled_from(["urlencoded", "urlencoded", "multipart", "query"])) if not files else "multipart"
    if route.method == "SOCKET":
        kind = "query"
    query = params if kind == "query" else []
    body_pairs = [] if kind == "query" else params
    body: bytes | None = None
    if kind == "urlencoded":
        body = urllib.parse.urlencode(body_pairs).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    elif kind == "multipart":
        b = "SECRETBOUNDARY"
        parts = [f'--{b}\r\nContent-Disposition: form-data; name={quoted(n)}\r\n\r\n'.encode() + v.encode("utf-8")
                 + b"\r\n" for n, v in body_pairs]
        parts += [f'--{b}\r\nContent-Disposition: form-data; name={quoted(n)}; filename="f.bin"\r\n\r\n'.encode()
                  + data + b"\r\n" for n, data in files]
        body = b"".join(parts) + f"--{b}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={b}", **headers}
    target = path + ("?" + urllib.parse.urlencode(query) if query else "")
    return Request(route.method if route.method not in ("ANY", "SOCKET") else "POST" if route.method == "ANY"
                   else "GET", target, headers, body, route)


@settings(max_examples=SECRET_EXAMPLES, **PROPERTY_SETTINGS)
@given(data=st.data())
def test_no_secret_reaches_the_journal_or_the_log(world: World, data: st.DataObject):
    marker = "Zk" + secrets.token_hex(6) + "qX"
    where = data.draw(st.sampled_from(sorted(PLACEMENTS)), label="placed as")
    secret = Secret(data.draw(secret_text(marker, one_line=where in ONE_LINE), label="secret"), marker)
    request = data.draw(secret_requests(where, secret.text), label="request")
    note(f"secret placed as: {where}\nsent {request.describe()}")
    headers = dict(request.headers)
    authorization = headers.pop("Authorization", None)  # this placement replaces the member's key
    exchange = send_ws if request.route is not None and request.route.method == "SOCKET" else send
    x = exchange(world, dataclasses.replace(request, headers=headers), authorization)
    note(f"gateway answered {x.status}; journal {[(e['outcome'], e['description'], e['details']) for e in x.events]}")
    assert x.status != 500 or x.rack_status == [500], "the gateway answered 500 of its own"
    stored = raw_bytes(world.journal_path)
    logged = "\n".join(x.log_lines).encode("utf-8", "surrogatepass")
    leaks = [(form, "journal files") for form, value in secret.forms().items() if value in stored]
    leaks += [(form, "gateway log") for form, value in secret.forms().items() if value in logged]
    assert not leaks, f"the secret reached: {leaks}"
