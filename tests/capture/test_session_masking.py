"""Recorded sessions keep no secret (issue 16), end to end: the simulated rack and the gateway served on loopback,
real websockets spoken as the Convox CLI speaks them (convox_sim.client), a real SQLite journal, then `auditkit sync`'s
Feed into a real mirror and the share pages of a real Datasette over it.

- `convox exec <pid> env` shows the user every value and records each key with its value masked; the event names the
  masked keys and counts, the rule's version, that the recording is masked, and hashes the masked recording;
- resource consoles mask the resource's URL and password as the rack reports them; input is masked when recorded;
- hypothesis: random secrets set in the app's env, printed in random frames (UTF-8, colour codes around and inside)
  by a scripted container: the client gets every frame unchanged, the recording is exactly the masked stream, and no
  secret reaches the recording, the journal file, the mirror file or a share page.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import secrets as random_secrets
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest
import wcwidth
from hypothesis import HealthCheck, given, settings, strategies as st
from starlette.websockets import WebSocket

from auditkit import store
from auditkit.capture import config as cfg
from auditkit.capture import keys, masking, wire
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.model import asciicast
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread
from helpers import close_datasette, raw_bytes

RACK = "acme/production"
RACK_PW = "rackPW-" + random_secrets.token_hex(12)
SOURCE = "gw"
ALICE, AUDITOR = "alice@example.com", "audrey@example.com"
SCRIPTED = "web-scripted-1"  # the pid whose exec websocket plays the frames a test scripts


class ScriptedContainer:
    """ASGI wrapper in front of the simulated rack: the exec websocket of process SCRIPTED sends `frames` as they
    are (a container printing them), then the exit-code marker; everything else is the simulated rack."""

    def __init__(self, app: Any):
        self.app = app
        self.frames: list[str] = []
        self.slow: set[str] = set()  # paths answered only after a pause (a rack that hangs)
        self.missing: set[str] = set()  # paths answered 404 (a rack without the route)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in self.slow:
            await asyncio.sleep(2)
        if scope["type"] == "http" and scope["path"] in self.missing:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"404 page not found\n"})
            return
        if scope["type"] == "websocket" and scope["path"] == f"/apps/web/processes/{SCRIPTED}/exec":
            ws = WebSocket(scope, receive, send)
            await ws.accept()
            for frame in self.frames:
                await ws.send_text(frame)
            await ws.send_text(wire.exit_frame(0))
            await ws.close()
            return
        await self.app(scope, receive, send)


@dataclasses.dataclass
class World:
    dir: Path
    rack: rack_mod.Rack
    scripted: ScriptedContainer
    rack_url: str
    url: str  # the gateway
    config: cfg.GatewayConfig
    keys: dict[str, str]
    conn: Any  # the test's connection to the journal

    def client(self) -> RackClient:
        return RackClient(self.url, RACK, self.keys[ALICE])

    def direct(self) -> RackClient:
        return RackClient(self.rack_url, "convox", RACK_PW)

    def events_since(self, mark: int) -> list[dict[str, Any]]:
        for _ in range(2000):
            if not self.conn.execute("SELECT count(*) FROM intents").fetchone()[0]:
                break
            threading.Event().wait(0.005)
        return store.events_after(self.conn, SOURCE, mark, 10_000)

    def head(self) -> int:
        return store.chain_head(self.conn, SOURCE).last_seq


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("masking")
    rack_app = rack_mod.create_app(RACK_PW, rack_name=RACK, seed=16)
    scripted = ScriptedContainer(rack_app)
    rack_server = ServerThread(scripted).start()
    racks = [cfg.parse_rack_flag(f"{RACK}=http://convox:{RACK_PW}@127.0.0.1:{rack_server.port}")]
    config = cfg.load(None, racks=racks, journal=d / "journal.db", data_dir=d, name=SOURCE, http=True,
                      refusal_window=3600, record_input=True)
    conn = store.open_db(config.journal)
    source = journal_source(conn, SOURCE)
    issued = {ALICE: keys.add(conn, ALICE, kind="user", role="member", source=source)[1],
              AUDITOR: keys.add(conn, AUDITOR, kind="user", role="auditor", source=source)[1]}
    gateway = ServerThread(create_app(config), proxy_headers=False).start()
    yield World(d, rack_app.state.rack, scripted, rack_server.url, gateway.url, config, issued, conn)
    gateway.stop()
    rack_server.stop()
    conn.close()


def _pid(world: World, app: str = "web") -> str:
    return sorted(world.rack.apps[app].processes)[0]


def _cast(world: World, event: dict[str, Any]) -> asciicast.Cast:
    return asciicast.parse(store.recording(world.conn, event["session_id"]))


def _mask(value: str) -> str:
    return "*" * wcwidth.wcswidth(value)


def test_convox_exec_env_shows_every_value_live_and_records_each_masked(world: World, caplog):
    with world.direct() as direct:
        direct.env_set("web", {"STRIPE_SECRET_KEY": "sk_live_" + random_secrets.token_hex(12), "PIN_CODE": "4242",
                               "API_TOKEN": "tok1", "GREETING": "grüße-日本-✓"}, promote=True)
        env = direct.env_get("web")
    masked = masking.masked_values(env)
    assert {"STRIPE_SECRET_KEY", "DATABASE_URL", "SECRET_KEY_BASE", "GREETING", "API_TOKEN"} <= set(masked)
    assert "PIN_CODE" not in masked and "WEB_CONCURRENCY" not in masked  # 4 characters, not secret-named; short
    mark = world.head()
    with caplog.at_level(logging.DEBUG):
        with world.client() as client:
            result = client.exec("web", _pid(world), "env", tty=False)
    # The values are held in memory only: no log line of the session (at DEBUG, every logger) holds one.
    assert caplog.records and not [v for v in masked.values() if v in caplog.text]
    for key, value in env.items():  # the user sees the container's real environment
        assert f"{key}={value}\n" in result.output
    (event,) = world.events_since(mark)
    cast_bytes = store.recording(world.conn, event["session_id"])
    recorded = asciicast.parse(cast_bytes).output_text()
    for key, value in env.items():
        assert (f"{key}={_mask(value)}\n" if key in masked else f"{key}={value}\n") in recorded, key
        if key in masked:
            assert value not in recorded and value.encode() not in cast_bytes
    details = event["details"]
    assert details["recording_masked"] is True and details["masking_rule"] == masking.RULE_VERSION
    # Each masked key by name and count: once for its own line, and wherever else its value shows (the rule masks
    # every value of 8 or more characters: RAILS_ENV's "production" in the rack's name too).
    assert details["masked_keys"] == {key: 2 if key == "RAILS_ENV" else 1 for key in masked}
    assert f"RACK={_mask('production')}\n" in recorded
    assert details["recording_sha256"] == hashlib.sha256(cast_bytes).hexdigest()
    # The display width of every line is kept: the replay's layout does not move.
    assert [wcwidth.wcswidth(line) for line in recorded.split("\n")] == [
        wcwidth.wcswidth(line) for line in result.output.split("\n")]
    # No secret in the journal's file (the rule also masks "production", which the journal names as the rack).
    journal = raw_bytes(world.config.journal)
    assert [k for k, v in masked.items() if v.encode() in journal] == ["RAILS_ENV"]


def test_echo_and_the_rails_console_are_masked_and_typed_input_too(world: World):
    with world.direct() as direct:
        env = direct.env_get("web")
    secret = env["SECRET_KEY_BASE"]
    mark = world.head()
    stdin = ["echo $SECRET_KEY_BASE\r", f"echo {secret[:20]}", f"{secret[20:]}\r", "exit\r"]
    with world.client() as client:
        shell = client.exec("web", _pid(world), "bash", stdin)
        rails = client.exec("web", _pid(world), "bin/rails console", ['ENV["DATABASE_URL"]\r', "exit\r"])
    assert shell.output.count(secret) == 3 and env["DATABASE_URL"] in rails.output  # two echoes + the typed echo
    shell_event, rails_event = world.events_since(mark)
    shell_cast, rails_cast = _cast(world, shell_event), _cast(world, rails_event)
    typed = "".join(data for _, code, data in shell_cast.events if code == "i")
    assert typed == "".join(stdin).replace(secret, _mask(secret))  # input recorded (configured), masked
    assert secret not in json.dumps(shell_cast.events) and env["DATABASE_URL"] not in json.dumps(rails_cast.events)
    assert shell_event["details"]["masked_keys"]["SECRET_KEY_BASE"] == 4  # output 3, input 1
    assert f'=> "{_mask(env["DATABASE_URL"])}"' in rails_cast.output_text()
    times = [t for t, _, _ in shell_cast.events]
    assert times == sorted(times)


def test_a_secret_on_the_command_line_is_masked_in_the_event_and_the_recording(world: World):
    with world.direct() as direct:
        secret = direct.env_get("web")["SECRET_KEY_BASE"]
    mark = world.head()
    with world.client() as client:
        result = client.exec("web", _pid(world), f"echo {secret}", tty=False)
    assert result.output == secret + "\n"
    (event,) = world.events_since(mark)
    assert event["description"] == f"Executed `echo {_mask(secret)}` in process {_pid(world)} of app web (exit 0)"
    assert _cast(world, event).header["command"] == f"echo {_mask(secret)}"
    assert secret.encode() not in raw_bytes(world.config.journal)
    assert event["details"]["masked_keys"] == {"SECRET_KEY_BASE": 1}  # the output (the command line is not counted)


def test_resource_consoles_mask_the_resources_url_and_password(world: World):
    app = next(a for a in world.rack.apps.values() if any(r.type == "redis" for r in a.resources.values()))
    redis = next(r for r in app.resources.values() if r.type == "redis")
    password = urllib.parse.urlsplit(redis.url).password
    mark = world.head()
    with world.client() as client:
        live = client.resource_console(app.name, redis.name, ["CONFIG GET requirepass\r", "quit\r"])
    assert f'2) "{password}"' in live.output
    (event,) = world.events_since(mark)
    recorded = _cast(world, event).output_text()
    assert password not in recorded and f'2) "{_mask(password)}"' in recorded
    assert set(event["details"]["masked_keys"]) & {f"resource:{redis.name}", f"{redis.name.upper()}_URL"}


def test_an_instance_shell_masks_every_apps_environment(world: World):
    with world.direct() as direct:
        iid = direct.json("GET", "/instances")[0]["id"]
        secret = direct.env_get("worker")["API_TOKEN"]
    mark = world.head()
    with world.client() as client:
        shell = client.instance_shell(iid, "", [f"echo {secret}\r", "exit\r"])
    assert secret in shell.output
    (event,) = world.events_since(mark)
    assert secret not in json.dumps(_cast(world, event).events)
    # Typed (input is recorded here), echoed by the terminal, then printed.
    assert event["details"]["masked_keys"] == {"worker/API_TOKEN": 3}


def test_a_session_whose_environment_cannot_be_read_is_not_recorded(world: World):
    """Fail closed: without the values to mask, nothing of the session's output is recorded."""
    mark = world.head()
    with world.client() as client:
        client.exec("no-such-app", "p-1", "env", tty=False)
    (event,) = world.events_since(mark)
    assert event["details"]["recording_masked"] is False and event["details"]["recording_withheld"]
    assert _cast(world, event).output_text() == masking_note()


def test_a_rack_too_slow_to_say_what_to_mask_opens_the_session_with_its_recording_withheld(world: World, monkeypatch):
    from auditkit.capture import sessions
    monkeypatch.setattr(sessions, "READ_TIMEOUT", 0.3)
    world.scripted.slow = {"/apps/web/releases"}
    try:
        mark = world.head()
        with world.client() as client:
            result = client.exec("web", _pid(world), "printenv SECRET_KEY_BASE", tty=False)
    finally:
        world.scripted.slow = set()
    assert result.exit_code == 0 and len(result.output) > 8  # the user got the session all the same
    (event,) = world.events_since(mark)
    assert event["details"]["recording_masked"] is False
    assert _cast(world, event).output_text() == masking_note()


def test_a_rack_without_the_app_resource_list_still_masks_the_env(world: World):
    with world.direct() as direct:
        secret = direct.env_get("web")["SECRET_KEY_BASE"]
    world.scripted.missing = {"/apps/web/resources"}
    try:
        mark = world.head()
        with world.client() as client:
            client.exec("web", _pid(world), "printenv SECRET_KEY_BASE", tty=False)
    finally:
        world.scripted.missing = set()
    (event,) = world.events_since(mark)
    assert event["details"]["recording_masked"] is True and event["details"]["masked_keys"] == {"SECRET_KEY_BASE": 1}
    assert _cast(world, event).output_text() == _mask(secret) + "\n"


def masking_note() -> str:
    from auditkit.capture import sessions
    return sessions.WITHHELD_NOTE


# --- hypothesis: random secrets, random frames ---------------------------------------------------------------------

ANSI = ["\x1b[0m", "\x1b[01;32m", "\x1b[38;5;208m", "\x1b[1;31m", "\x1b[K", "\r\n"]
ALPHABET = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-_.:@%/") + ["é", "日", "✓", "🚀"]
SECRET = st.text(st.sampled_from(ALPHABET), min_size=8, max_size=32)
NOISE = st.lists(st.one_of(st.sampled_from(ANSI), st.text(st.sampled_from(list(" =$>#|") + ["ü", "─"]), max_size=8),
                           st.text(st.sampled_from(ALPHABET), max_size=6)), max_size=6).map("".join)
SEEN: list[tuple[list[str], str]] = []  # (secrets, session id) of every example, for the mirror and share checks


@st.composite
def printed(draw):
    values = draw(st.lists(SECRET, min_size=1, max_size=5, unique=True))
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        parts.append(draw(NOISE))
        value = draw(st.sampled_from(values))
        parts.append(draw(st.sampled_from(["", "\x1b[1;33m"])) + value + draw(st.sampled_from(["", "\x1b[0m"])))
    text = "".join(parts) + draw(NOISE)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=12))))
    frames = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)]) if text[a:b]]
    return values, frames


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=printed())
def test_no_secret_reaches_the_recording_or_the_journal_whatever_the_frames(world: World, case):
    values, frames = case
    env = {f"SECRET_{i}": v for i, v in enumerate(values)}
    with world.direct() as direct:
        direct.env_set("web", env)
    world.scripted.frames = frames
    # A value the journal held before the session (a run of zeros: the chain's genesis hash) proves nothing.
    before = raw_bytes(world.config.journal)
    values = [v for v in values if v.encode() not in before]
    mark = world.head()
    with world.client() as client:
        live = client.exec("web", SCRIPTED, "sh", tty=True)
    assert live.output == "".join(frames)  # what the user sees is not changed
    (event,) = world.events_since(mark)
    cast_bytes = store.recording(world.conn, event["session_id"])
    recorded = asciicast.parse(cast_bytes).output_text()
    # Exactly the masked stream: non-secret output byte for byte, each secret replaced by its mask.
    assert recorded == masking.Masker(list(env.items())).mask("".join(frames))
    for value in env.values():
        assert value not in recorded and value.encode() not in cast_bytes
        assert json.dumps(value, ensure_ascii=False)[1:-1].encode() not in cast_bytes
    assert event["details"]["recording_sha256"] == hashlib.sha256(cast_bytes).hexdigest()
    journal = raw_bytes(world.config.journal)
    assert not [v for v in values if v.encode() in journal]
    SEEN.append((values, event["session_id"]))


def test_no_secret_reaches_the_mirror_or_a_share_page(world: World, tmp_path: Path):
    """After the examples above: `auditkit sync`'s feed mirrors the journal, Datasette serves a share link over it."""
    if not SEEN:
        pytest.skip("needs the hypothesis test's sessions (run the module)")
    from auditkit.mirror.sync import Feed, sync_once
    from auditkit.mirror.trust import Pins
    from auditkit.model.filters import parse
    from auditkit.share import links, serve

    mirror_path = tmp_path / "data" / "audit.db"
    mirror = store.open_db(mirror_path)
    pins = Pins(checkpoint_key=str(world.config.checkpoint_signer(create=False).verifier))
    feed = Feed(SOURCE, world.url, world.keys[AUDITOR], pins)
    sync_once(mirror, feed)
    every = [v for values, _ in SEEN for v in values]
    synced = [row[0] for row in mirror.execute("SELECT id FROM sessions")]
    assert {sid for _, sid in SEEN} <= set(synced)
    for (session_id,) in mirror.execute("SELECT id FROM sessions"):
        text = store.recording(mirror, session_id)
        assert not [v for v in every if v.encode() in text]
    mirror.commit()
    assert not [v for v in every if v.encode() in raw_bytes(mirror_path)]

    secret = links.secret_for(mirror_path)
    _, url = links.create(mirror, parse("app:web"), secret=secret, expires="7d", since="2000-01-01",
                          created_by="admin@example.com", base_url="http://localhost")
    token = url.rsplit("/", 1)[1]
    ds = serve.make_datasette(mirror_path)
    loop = asyncio.new_event_loop()
    try:
        def get(path: str) -> str:
            response = loop.run_until_complete(ds.client.get(path, cookies={"ds_share": token}))
            assert response.status_code == 200, (path, response.status_code)
            return response.text
        pages = [get("/-/shared"), get("/-/shared/events.json"), get("/-/shared/events.csv")]
        for _, session_id in SEEN[-5:]:
            pages += [get(f"/-/shared/replay/{session_id}"), get(f"/-/shared/cast/{session_id}")]
        assert any(session_id in page for page in pages for _, session_id in SEEN)
        for page in pages:
            assert not [v for v in every if v in page or json.dumps(v)[1:-1] in page]
    finally:
        loop.close()
        close_datasette(ds)
        mirror.close()
