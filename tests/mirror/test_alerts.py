"""Alerts on the filter language (issue 14, point 5), end to end: a real gateway and rack, `auditkit sync --follow`
as a process, and a real local HTTP receiver (uvicorn) that records what it is sent, answers 503 for a while, or is
not there at all.

- each newly mirrored matching event is posted within a second of the write, Slack-compatible, and nothing else;
- at most once per alert across restarts of sync (the cursor is stored with the alert), and a delivery cut off
  mid-post is not re-sent;
- a receiver down for a while gets every event once it is back, in order, once each, and each failed attempt is
  recorded;
- nothing of an event becomes markup in the message (property test).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given, settings, strategies as st

from auditkit import store
from auditkit.capture import keys
from auditkit.capture.config import GatewayConfig, Rack
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.mirror import alerts
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread, free_port

AUDITKIT = [sys.executable, "-m", "auditkit.cli"]
RACK = "acme/production"


class Receiver:
    """A webhook receiver on a fixed port: records each POST (time, JSON); `status` is what it answers."""

    def __init__(self, port: int):
        self.port = port
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.status = 200
        self.server: ServerThread | None = None

    async def app(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.status == 200:
            self.got.append((time.monotonic(), json.loads(body)))
        await send({"type": "http.response.start", "status": self.status, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/B000/secret-token"

    def up(self) -> "Receiver":
        async def app(scope: dict, receive: Any, send: Any) -> None:  # a plain function: uvicorn's ASGI 3 check
            await self.app(scope, receive, send)
        self.server = ServerThread(app, port=self.port).start()
        return self

    def down(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    journal = tmp_path / "gw" / "journal.db"
    journal.parent.mkdir()
    conn = store.open_db(journal)
    source = journal_source(conn, "gw")
    _, member = keys.add(conn, "bob@example.com", kind="user", role="member", source=source)
    _, auditor = keys.add(conn, "audrey@example.com", kind="user", role="auditor", source=source)
    conn.close()
    with ServerThread(rack_mod.create_app("rackpw", rack_name=RACK)) as rack_server:
        config = GatewayConfig(racks={RACK: Rack(RACK, rack_server.url, "convox", "rackpw")}, journal=journal,
                               name="gw", http=True)
        with ServerThread(create_app(config)) as server:
            mirror = tmp_path / "audit.db"
            store.open_db(mirror).close()
            key_file = tmp_path / "auditor.key"
            key_file.write_text(auditor)
            cli("sync", "add", "gw", server.url, "--key-file", str(key_file), "--db", str(mirror), cwd=tmp_path)
            with RackClient(server.url, RACK, member) as client:
                yield {"dir": tmp_path, "mirror": mirror, "client": client}


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(AUDITKIT + list(args), capture_output=True, text=True, cwd=cwd, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def follow(world: dict[str, Any]) -> subprocess.Popen:
    log = open(world["dir"] / "sync.log", "ab")
    proc = subprocess.Popen(AUDITKIT + ["sync", "--follow", "--db", str(world["mirror"])], cwd=world["dir"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    time.sleep(1.5)  # started, caught up, long-polling
    assert proc.poll() is None, (world["dir"] / "sync.log").read_text()
    return proc


def wait_for(what: str, check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def restart(client: RackClient) -> float:
    """A matching write (a restart); returns when it was answered."""
    assert client.request("POST", "/apps/web/services/web/restart").status_code == 200
    return time.monotonic()


def test_matching_events_are_posted_within_a_second_and_at_most_once_across_restarts(world):
    receiver = Receiver(free_port()).up()
    client, d, mirror = world["client"], world["dir"], world["mirror"]
    before = restart(client)  # mirrored before the alert exists: never posted
    cli("sync", "--db", str(mirror), cwd=d)
    added = cli("alert", "add", "restarts", "action:restarted app:web", "--webhook", receiver.url, "--base-url",
                "https://audit.example.com", "--db", str(mirror), cwd=d)
    assert "secret-token" not in added.stdout and "127.0.0.1" in added.stdout
    webhook_file = d / "alert-restarts.webhook"
    assert webhook_file.stat().st_mode & 0o777 == 0o600
    assert b"secret-token" not in mirror.read_bytes()
    proc = follow(world)
    try:
        latencies = []
        for _ in range(3):
            answered = restart(client)
            client.scale("web", "web", count=2)  # not matching: never posted
            wait_for("the alert", lambda: len(receiver.got) == len(latencies) + 1)
            latencies.append(receiver.got[-1][0] - answered)
        print(f"alert latency (write answered → webhook received): {[round(x, 3) for x in latencies]} s")
        assert max(latencies) < 1.0, latencies
        text = receiver.got[0][1]["text"]
        assert set(receiver.got[0][1]) == {"text"}
        assert "Restarted service web of app web" in text or "web" in text
        assert "bob@example.com on acme/production at 20" in text
        assert "<https://audit.example.com/audit/events?id=" in text and "|view the event>" in text
        # Restarted mid-follow (SIGKILL): nothing posted twice, and what comes next is posted once.
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = follow(world)
        restart(client)
        wait_for("the alert after the restart", lambda: len(receiver.got) == 4)
        time.sleep(1.5)
        assert len(receiver.got) == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        receiver.down()
    ids = [m["text"].split("?id=")[1].split("|")[0] for _, m in receiver.got]
    assert len(set(ids)) == 4
    conn = store.open_db(mirror)
    assert before not in ids
    assert conn.execute("SELECT count(*) FROM alert_deliveries WHERE state = 'delivered'").fetchone()[0] == 4
    cursor = json.loads(conn.execute("SELECT cursor FROM alerts").fetchone()[0])
    assert cursor["gw"] == store.chain_head(conn, "gw").last_seq
    listed = cli("alert", "list", "--db", str(mirror), cwd=d).stdout
    assert "restarts" in listed and "secret-token" not in listed
    cli("alert", "remove", "restarts", "--db", str(mirror), cwd=d)
    assert not webhook_file.exists() and "restarts" not in cli("alert", "list", "--db", str(mirror), cwd=d).stdout


def test_a_receiver_down_for_a_while_gets_every_event_once_back_and_each_failure_is_recorded(world):
    receiver = Receiver(free_port())  # not up yet: connections refused
    client, d, mirror = world["client"], world["dir"], world["mirror"]
    cli("alert", "add", "all-restarts", "action:restarted", "--webhook", receiver.url, "--db", str(mirror), cwd=d)
    proc = follow(world)
    try:
        for _ in range(3):
            restart(client)
        conn = store.open_db(mirror)
        wait_for("failures recorded", lambda: conn.execute("SELECT count(*) FROM alert_failures").fetchone()[0] >= 2)
        receiver.status = 503
        receiver.up()  # up, but failing
        wait_for("a 503 recorded", lambda: conn.execute(
            "SELECT count(*) FROM alert_failures WHERE error = 'HTTP 503'").fetchone()[0] >= 1)
        assert receiver.got == []
        receiver.status = 200
        wait_for("every event", lambda: len(receiver.got) == 3, timeout=40)
        restart(client)
        wait_for("the next one", lambda: len(receiver.got) == 4, timeout=5)
        time.sleep(1.0)
        assert len(receiver.got) == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        receiver.down()
    errors = [r[0] for r in conn.execute("SELECT error FROM alert_failures ORDER BY id")]
    assert errors[0].startswith("no connection") and "HTTP 503" in errors
    seqs = [r[0] for r in conn.execute(
        "SELECT e.source_seq FROM alert_deliveries d JOIN events e ON e.id = d.event_id ORDER BY d.delivered_at, d.id")]
    assert seqs == sorted(seqs)  # in order
    ids = [m["text"] for _, m in receiver.got]
    assert len(set(ids)) == 4
    listed = cli("alert", "list", "--db", str(mirror), cwd=d).stdout
    assert "HTTP 503" in listed or "no connection" in listed


def test_a_delivery_cut_off_mid_post_is_not_sent_again(world, tmp_path):
    receiver = Receiver(free_port()).up()
    mirror, d = world["mirror"], world["dir"]
    cli("alert", "add", "a", "action:restarted", "--webhook", receiver.url, "--db", str(mirror), cwd=d)
    restart(world["client"])
    cli("sync", "--db", str(mirror), cwd=d)
    conn = store.open_db(mirror)
    assert alerts.scan(conn) == 1 and alerts.scan(conn) == 0  # the cursor moved: never queued twice
    conn.execute("UPDATE alert_deliveries SET state = 'sending', attempts = 1")  # as a process killed mid-post
    conn.commit()
    poster = alerts.Dispatcher(mirror).start()
    time.sleep(1.5)
    poster.stop()
    receiver.down()
    assert receiver.got == []
    assert conn.execute("SELECT state FROM alert_deliveries").fetchone()[0] == "abandoned"
    assert "interrupted" in conn.execute("SELECT error FROM alert_failures").fetchone()[0]


def test_an_alert_filter_is_the_filter_language_and_bad_input_gets_a_clear_error(world):
    mirror, d = world["mirror"], world["dir"]
    bad = cli("alert", "add", "x", "catgory:Security", "--webhook", "https://h.example/x", "--db", str(mirror),
              cwd=d, check=False)
    assert bad.returncode != 0 and "catgory" in bad.stderr
    timed = cli("alert", "add", "x", "category:Security since:7d", "--webhook", "https://h.example/x", "--db",
                str(mirror), cwd=d, check=False)
    assert timed.returncode != 0 and "since: and until: do not apply" in timed.stderr
    url = cli("alert", "add", "x", "category:Security", "--webhook", "ftp://h.example/x", "--db", str(mirror),
              cwd=d, check=False)
    assert url.returncode != 0 and "http(s) URL" in url.stderr
    for hostile in ("http://[::1", "https://h.example:port/x", "https://h.example/a|b", "https://h.example/<!here>"):
        got = cli("alert", "add", "x", "category:Security", "--webhook", hostile, "--db", str(mirror), cwd=d,
                  check=False)
        assert got.returncode == 2 and "http(s) URL" in got.stderr and "Traceback" not in got.stderr, hostile
    name = cli("alert", "add", "../x", "category:Security", "--webhook", "https://h.example/x", "--db", str(mirror),
               cwd=d, check=False)
    assert name.returncode != 0 and "cannot name an alert" in name.stderr
    assert not list(d.glob("*.webhook"))


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_nothing_of_an_event_becomes_markup_in_the_message(text):
    alert = alerts.Alert("a", alerts.parse_filter("category:Security"), "category:Security", "https://h/…",
                         "https://audit.example.com", "", {})
    event = {"id": "ev_" + text, "description": text, "actor": text, "rack": text, "timestamp": text,
             "outcome": text}
    body = alerts.message(alert, event, Path("audit.db"))["text"]
    link_start = body.rindex("\n<")
    head, link = body[:link_start], body[link_start + 1:]
    assert "<" not in head and ">" not in head  # no mention, no link, no channel ping from event text
    assert link.startswith("<https://audit.example.com/audit/events?id=") and link.count("<") == 1
    assert link.endswith("|view the event>") and link.count(">") == 1
    assert not any(ord(c) < 32 and c != "\n" for c in body) and body.count("\n") == 3  # no line of its own
