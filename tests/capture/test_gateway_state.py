"""The gateway's own state, end to end over real HTTP (issue 10, points 4, 8 and 9):

- fail closed after recovery: outcomes the journal could not write (a full filesystem, a lock) are recorded as soon
  as it can be written again, without a restart; a crash in between still leaves `unknown` events;
- the simulated rack is a v3 rack: generation 3 apps, `convox ssl update` applied end to end, certificate renewals
  journaled with their app;
- the TLS pair and the HMAC key live beside the journal, the key bound to the journal's chain.

The filesystem tests mount a small tmpfs (root only: CI and this machine run as root).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from auditkit import store
from convox_sim import rack as rack_mod
from convox_sim.client import CommandError, RackClient, RackError
from convox_sim.servers import ServerThread, stop_process, wait_until_listening
from auditkit.model.events import value_hmac
from auditkit.model.filters import Filter
from auditkit.capture import config as cfg
from auditkit.capture import keys
from auditkit.capture.proxy import create_app
from auditkit.capture.journal import ORPHAN_REASON, ChainMismatch, Journal, OutcomeHeld, journal_source
from helpers import CERT, draft, fill, free_port, private_key

RACK = "acme/production"
RACK_PW = "rackPW-" + secrets.token_hex(12)
SOURCE = "gw"
ALICE, AUDREY = "alice@example.com", "audrey@example.com"
AUDITKIT = [sys.executable, "-m", "auditkit.cli"]
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# --- the far side: the simulated rack behind a wrapper that can fill a filesystem ----------------------------------

class DiskFiller:
    """ASGI wrapper in front of the simulated rack. Armed with `count`, the next `count` writes (or websockets) it
    receives wait for each other; then it fills `mount` with a filler file (until ENOSPC) and lets them reach the
    rack. Their intents are durable by then (the gateway forwards only after that commit), the rack acts on them, and
    the outcomes the gateway then writes find no room."""

    def __init__(self, app: Any):
        self.app = app
        self.mount: Path | None = None
        self.count = 0
        self.arrived = 0
        self.gate: asyncio.Event | None = None
        self.filled = threading.Event()

    def arm(self, mount: Path, count: int) -> None:
        self.mount, self.count, self.arrived, self.gate = mount, count, 0, None
        self.filled.clear()

    def disarm(self) -> None:
        """Armed no more (a request still waiting gives up after 15 s)."""
        self.count, self.arrived, self.mount = 0, 0, None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        write = scope["type"] == "websocket" or (scope["type"] == "http" and scope["method"] in WRITES)
        if write and self.count:
            self.gate = self.gate or asyncio.Event()
            gate = self.gate
            self.arrived += 1
            if self.arrived == self.count and self.mount is not None:
                self.count = 0
                fill(self.mount)
                self.filled.set()
                gate.set()
            await asyncio.wait_for(gate.wait(), 15)
        await self.app(scope, receive, send)




@pytest.fixture(scope="module")
def rack() -> Iterator[tuple[Any, DiskFiller, ServerThread]]:
    rack_app = rack_mod.create_app(RACK_PW, rack_name=RACK, seed=23)
    filler = DiskFiller(rack_app)
    server = ServerThread(filler).start()
    yield rack_app, filler, server
    server.stop()


def rack_url(server: ServerThread) -> str:
    return f"http://convox:{RACK_PW}@127.0.0.1:{server.port}"


@pytest.fixture
def small_fs(tmp_path: Path, rack: tuple[Any, DiskFiller, ServerThread]) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own (a journal of a few writes takes ~300 KiB), unmounted afterwards (and the rack's
    filler disarmed, whatever the test left)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        reason = f"cannot mount a tmpfs on {mount}: {result.stderr.strip() or result.returncode}"
        if os.geteuid() != 0:
            pytest.skip(f"{reason} (not root; the filesystem tests need root to mount one)")
        pytest.fail(f"{reason}; running as root, so this machine should allow it (is this a container without "
                    f"CAP_SYS_ADMIN?)")
    try:
        yield mount
    finally:
        rack[1].disarm()
        subprocess.run(["umount", "-l", str(mount)], check=False)


# --- gateways -------------------------------------------------------------------------------------------------------

def make_journal(path: Path, source: str = SOURCE) -> dict[str, str]:
    conn = store.open_db(path)
    source = journal_source(conn, source)
    issued = {ALICE: keys.add(conn, ALICE, kind="user", role="member", source=source)[1],
              AUDREY: keys.add(conn, AUDREY, kind="user", role="auditor", source=source)[1]}
    conn.close()
    return issued


def serve(journal: Path, rack_server: ServerThread, log: Path, *, cwd: Path, http: bool = True,
          extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """`auditkit gateway serve` as a real process; (process, base URL) once it listens."""
    port = free_port()
    args = AUDITKIT + ["gateway", "serve", "--rack", f"{RACK}={rack_url(rack_server)}", "--journal", str(journal),
                       "--listen", f"127.0.0.1:{port}", *extra]
    if http:
        args.append("--http")
    env = {k: v for k, v in os.environ.items() if k != "AUDITKIT_GATEWAY_FAULT"}
    env["PYTHONUNBUFFERED"] = "1"
    with open(log, "ab") as f:
        proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    try:
        wait_until_listening(port, proc, what="the gateway")
    except RuntimeError as e:
        raise AssertionError(f"{e}: {log.read_text()}") from None
    return proc, f"{'http' if http else 'https'}://127.0.0.1:{port}"


stop = stop_process


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(AUDITKIT + list(args), capture_output=True, text=True, cwd=cwd, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def feed(url: str, key: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/audit/v1/events", params={"after": 0, "limit": 5000}, auth=(SOURCE, key),
                         timeout=10, verify=False)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def pending_intents(journal: Path) -> int:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM intents").fetchone()[0]
    finally:
        conn.close()


def in_process_gateway(d: Path, rack_server: ServerThread, **journal_kw: Any) -> tuple[ServerThread, dict[str, str],
                                                                                       Path]:
    """A gateway in a ServerThread; its state in `d` explicitly, whatever ./data of the test's directory holds."""
    journal_path = d / "journal.db"
    issued = make_journal(journal_path)
    config = cfg.load(None, racks=[cfg.parse_rack_flag(f"{RACK}={rack_url(rack_server)}")], journal=journal_path,
                      http=True, data_dir=d)
    journal = Journal(journal_path, config.name, **journal_kw)
    return ServerThread(create_app(config, journal), proxy_headers=False).start(), issued, journal_path


# --- 4. fail closed after recovery ----------------------------------------------------------------------------------

def test_outcomes_the_journal_could_not_write_are_recorded_once_it_can_without_a_restart(rack, small_fs, tmp_path):
    """Two writes (an HTTP write and an exec session) reach the rack; the filesystem fills between their intents and
    their outcomes; a third write is refused; once the filesystem has room again, both are in the feed with their
    outcomes within a few seconds, the session with its recording, and the chain verifies.

    How the failure is timed, reliably: DiskFiller holds both requests at the rack's door until both have arrived
    (both intents are on disk then, since the gateway forwards only after that commit), fills the tmpfs to the last
    byte and lets them through. The journal's WAL only grows during this test (a handful of commits, far from
    SQLite's 1000-page auto-checkpoint), so the outcome commits need new blocks and get SQLITE_FULL.
    """
    rack_app, filler, rack_server = rack
    journal = small_fs / "journal.db"
    issued = make_journal(journal)
    log = tmp_path / "gateway.log"
    proc, url = serve(journal, rack_server, log, cwd=tmp_path, extra=("--name", SOURCE))
    received = len(rack_app.state.requests)
    try:
        with RackClient(url, RACK, issued[ALICE]) as alice:
            assert alice.request("POST", "/apps", {"name": "before-full"}).status_code == 200
            pid = sorted(rack_app.state.rack.apps["web"].processes)[0]
            filler.arm(small_fs, 2)
            session: dict[str, Any] = {}

            def run_session() -> None:
                with RackClient(url, RACK, issued[ALICE]) as client:
                    session["result"] = client.exec("web", pid, "echo held", ["exit\r"])

            worker = threading.Thread(target=run_session)
            worker.start()
            assert alice.request("POST", "/apps", {"name": "held-app"}).status_code == 200
            worker.join(30)
            assert filler.filled.is_set() and session["result"].exit_code is not None
            assert "held-app" in rack_app.state.rack.apps
            # Both outcome writes failed (the gateway logs each) and are held; they are not in the feed yet.
            wait_for("both outcome writes to fail", lambda: log.read_text().count("not recorded:") >= 2)
            assert pending_intents(journal) == 2
            during = feed(url, issued[AUDREY])
            assert [e["description"] for e in during if e["category"] != "Access"] == ["Created app before-full"]
            # While they wait, a new write is refused and not forwarded.
            before = len(rack_app.state.requests)
            refused = alice.request("POST", "/apps", {"name": "refused-app"})
            assert refused.status_code == 503 and "not forwarded" in refused.json()["error"]
            assert "refused-app" not in rack_app.state.rack.apps
            assert [(r.method, r.path) for r in rack_app.state.requests[before:]] == []

            (small_fs / "filler").unlink()
            freed = time.monotonic()
            events = wait_for("the held outcomes in the feed", lambda: (
                lambda got: got if {"Created app held-app"} <= {e["description"] for e in got}
                and any(e["session_id"] for e in got) else None)(feed(url, issued[AUDREY])), timeout=10)
            took = time.monotonic() - freed
            assert took < 4, f"sealed {took:.1f}s after the disk had room"
            assert pending_intents(journal) == 0
            assert alice.request("POST", "/apps", {"name": "after-recovery"}).status_code == 200
        events = wait_for("the last write", lambda: (lambda got: got if len(got) == len(events) + 1 else None)(
            feed(url, issued[AUDREY])))
        by_desc = {e["description"]: e for e in events}
        held = by_desc["Created app held-app"]
        assert (held["outcome"], held["status"], held["actor"]) == ("succeeded", 200, ALICE)
        assert held["details"]["held_in_memory_ms"] >= 0
        (ran,) = [e for e in events if e["session_id"]]
        assert (ran["outcome"], ran["status"], ran["details"]["exit_code"]) == ("succeeded", 101, 0)
        cast = httpx.get(f"{url}/audit/v1/sessions/{ran['session_id']}.cast", auth=(SOURCE, issued[AUDREY]))
        assert cast.status_code == 200 and b"held" in cast.content
        assert hashlib.sha256(cast.content).hexdigest() == ran["details"]["recording_sha256"]
        # Every write the rack received is in the feed, with its outcome; the refused one nowhere.
        acted = [(r.method, r.path) for r in rack_app.state.requests[received:]
                 if r.method in WRITES or r.method == "SOCKET"]
        recorded = [("SOCKET" if e["session_id"] else e["method"], e["path"]) for e in events
                    if e["category"] != "Access"]
        assert sorted(acted) == sorted(recorded) and len(acted) == 4
        assert all(e["outcome"] == "succeeded" for e in events)
        assert "refused-app" not in json.dumps(events)
    finally:
        stop(proc)
    verify = cli("verify", "--db", str(journal), cwd=tmp_path)
    assert verify.stdout.startswith(f"verify: OK — {len(events)} events")
    output = log.read_text()
    assert "(2 in all)" in output and "can be written again: recorded 2 held outcome(s)" in output
    assert [s for s in (RACK_PW, *issued.values()) if s in output] == []


def test_a_crash_while_outcomes_are_held_leaves_them_unknown_at_the_next_start(rack, small_fs, tmp_path):
    """The held outcome lives in memory only: if the gateway dies before the journal has room, its intent is on disk
    and the next start records it as `unknown`, as after any crash."""
    rack_app, filler, rack_server = rack
    journal = small_fs / "journal.db"
    issued = make_journal(journal)
    log = tmp_path / "gateway.log"
    proc, url = serve(journal, rack_server, log, cwd=tmp_path)
    try:
        filler.arm(small_fs, 1)
        with RackClient(url, RACK, issued[ALICE]) as alice:
            assert alice.request("POST", "/apps", {"name": "lost-outcome"}).status_code == 200
        wait_for("the outcome write to fail", lambda: "not recorded:" in log.read_text())
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        stop(proc)
    assert pending_intents(journal) == 1
    (small_fs / "filler").unlink()
    proc, url = serve(journal, rack_server, log, cwd=tmp_path)
    try:
        events = [e for e in feed(url, issued[AUDREY]) if e["category"] != "Access"]
    finally:
        stop(proc)
    assert [(e["description"], e["outcome"], e["status"]) for e in events] == [
        ("Created app lost-outcome", "unknown", None)]
    assert events[0]["details"]["recovered"] == store.RECOVERED_AFTER_STOP
    assert "recovered 1 write(s)" in log.read_text() and pending_intents(journal) == 0
    assert cli("verify", "--db", str(journal), cwd=tmp_path).stdout.startswith("verify: OK")


def test_an_intent_orphaned_by_a_failed_commit_is_recorded_unknown_without_a_restart(rack, tmp_path):
    """An intent that reached the file in a commit the writer saw fail (its request got 503) never gets an outcome:
    once the journal can be written, it is recorded `unknown` (the outcome is not known) — no restart needed.

    Simulated with a lock: while another connection holds the journal, the gateway's intent commit times out and
    the request is refused; the intent row that connection adds stands for the one that reached the file."""
    _, _, rack_server = rack
    server, issued, path = in_process_gateway(tmp_path, rack_server, busy_timeout_ms=200)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        orphan = draft(outcome="unknown", status=None, description="Created app orphan-app", app="orphan-app",
                       target="orphan-app", category="Applications", action="created", method="POST", path="/apps")
        store.record_intents(locker, [("intent-" + uuid.uuid4().hex, orphan)])
        with RackClient(server.url, RACK, issued[ALICE]) as alice:
            assert alice.request("POST", "/apps", {"name": "while-locked"}).status_code == 503
        locker.execute("COMMIT")
        locker.close()
        events = wait_for("the orphan recorded", lambda: (lambda got: got if any(
            e["description"] == "Created app orphan-app" for e in got) else None)(feed(server.url, issued[AUDREY])),
            timeout=5)
        (event,) = [e for e in events if e["category"] != "Access"]
        assert (event["outcome"], event["status"], event["details"]["recovered"]) == ("unknown", None, ORPHAN_REASON)
        assert pending_intents(path) == 0
        assert "while-locked" not in json.dumps(events)
    finally:
        server.stop()
    assert store.verify(store.open_db(path)).ok


def test_an_outcome_the_database_refuses_is_recorded_unknown_and_does_not_block_the_journal(tmp_path):
    """Held outcomes block new writes until they are sealed, so one the database refuses whatever the disk does (here
    a recording whose bytes do not match its sha256) must not hold the journal for ever: it is recorded `unknown`,
    the other outcomes with their own, and writes go on."""
    journal = Journal(tmp_path / "journal.db", SOURCE)

    async def scenario() -> tuple[list[Any], str]:
        good, bad = draft(description="Created app good", outcome="unknown"), draft(description="Ran bad",
                                                                                    outcome="unknown")
        good_id, bad_id = await journal.intent(good), await journal.intent(bad)
        meta = {"id": "ses_" + bad.id, "source": SOURCE, "sha256": "0" * 64}
        results = await asyncio.gather(
            journal.outcome(good_id, good.replace(outcome="succeeded", status=200)),
            journal.outcome(bad_id, bad.replace(outcome="succeeded", status=101, session_id=meta["id"]),
                            session=(meta, b'{"version": 2}\n')), return_exceptions=True)
        await asyncio.sleep(0)
        return results, await journal.intent(draft(description="Created app later"))

    try:
        results, later = asyncio.run(scenario())
        assert isinstance(results[1], OutcomeHeld)
        assert journal.held == 0  # sealed before the later intent could be written
        conn = store.open_db(journal.path)
        events = {e["description"]: e for e in store.events_after(conn, SOURCE, 0, 100)}
        assert (events["Created app good"]["outcome"], events["Created app good"]["status"]) == ("succeeded", 200)
        assert (events["Ran bad"]["outcome"], events["Ran bad"]["session_id"]) == ("unknown", None)
        assert events["Ran bad"]["details"]["recovered"] == "the journal refused this request's outcome (ChainError)"
        assert [row[0] for row in conn.execute("SELECT id FROM intents")] == [later]  # the later write went on
        assert store.verify(conn).ok
        conn.close()
    finally:
        journal.close()


# --- 8. a v3 rack: generation 3, ssl update end to end, renewals with their app -------------------------------------

@pytest.fixture
def gateway(rack, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    server, issued, path = in_process_gateway(tmp_path, rack[2])
    yield server.url, issued, path
    server.stop()


def test_the_simulated_rack_is_a_v3_rack_every_app_is_generation_3(rack, gateway):
    url, issued, _ = gateway
    with RackClient(url, RACK, issued[ALICE]) as alice:
        created = alice.apps_create("gen-check")  # the CLI's default `generation=2` is sent, as convox does
        assert created["generation"] == "3"
        assert alice.apps_info("gen-check")["generation"] == "3"
        assert {a["generation"] for a in alice.json("GET", "/apps")} == {"3"}


def test_ssl_update_applies_an_imported_certificate_end_to_end(rack, gateway):
    rack_app = rack[0]
    url, issued, path = gateway
    reader = store.open_db(path)
    with RackClient(url, RACK, issued[ALICE]) as alice:
        cert = alice.certs_import(CERT, private_key("c3NsLXVwZGF0ZQ"))
        before = len(rack_app.state.requests)
        alice.ssl_update("web", "web", 443, cert["id"])  # `convox ssl update web:443 CERT -a web`
        assert [(r.method, r.path) for r in rack_app.state.requests[before:]] == [
            ("GET", "/apps/web"), ("PUT", "/apps/web/ssl/web/443")]
        services = {s["name"]: s for s in alice.json("GET", "/apps/web/services")}
        assert services["web"]["ports"] == [{"balancer": 443, "certificate": cert["id"], "container": 3000}]
        # A service with no port has no balancer to put it on.
        with pytest.raises(RackError) as e:
            alice.ssl_update("web", "worker", 443, cert["id"])
        assert (e.value.status, e.value.message) == (400, "no balancer port 443 on service worker")
        # The CLI refuses generation 2 apps before sending anything (pkg/cli/ssl.go), as against a v2 rack.
        rack_app.state.rack.apps["legacy"] = rack_mod.AppRec(name="legacy", generation="2")
        before = len(rack_app.state.requests)
        with pytest.raises(CommandError, match="^command not valid for generation 2 applications$"):
            alice.ssl_update("legacy", "web", 443, cert["id"])
        assert [(r.method, r.path) for r in rack_app.state.requests[before:]] == [("GET", "/apps/legacy")]
    wait_for("outcomes", lambda: not reader.execute("SELECT count(*) FROM intents").fetchone()[0])
    applied = [e for e in store.page(reader, Filter.parse("category:Security"), limit=10).events]
    assert [(e.description, e.app, e.target, e.outcome) for e in reversed(applied)] == [
        (f"Imported SSL certificate {cert['id']} (shop.example.com)", None, cert["id"], "succeeded"),
        (f"Applied certificate {cert['id']} to web:443 of app web", "web", cert["id"], "succeeded"),
        (f"Applied certificate {cert['id']} to worker:443 of app web", "web", cert["id"], "failed")]
    reader.close()


def test_certificate_renewal_is_journaled_with_its_app(rack, gateway):
    rack_app = rack[0]
    url, issued, path = gateway
    with RackClient(url, RACK, issued[ALICE]) as alice:
        cert = alice.certs_import(CERT, private_key("cmVuZXc"))
        alice.ssl_update("api", "api", 443, cert["id"])
        rack_app.state.rack.certificates[cert["id"]].expiration = rack_app.state.rack.now()
        alice.certs_renew("api")  # `convox certs renew -a api`: the app's name where the route says {id}
    assert rack_app.state.rack.certificates[cert["id"]].expiration > rack_app.state.rack.now()
    reader = store.open_db(path)
    wait_for("outcomes", lambda: not reader.execute("SELECT count(*) FROM intents").fetchone()[0])
    renewals = store.page(reader, Filter.parse("app:api action:renewed"), limit=10).events
    assert [(e.description, e.app, e.target, e.path) for e in renewals] == [
        ("Renewed certificate(s) of api", "api", "api", "/certificates/api/renew")]
    assert store.count(reader, Filter.parse("app:api")) == 2  # the ssl update and the renewal
    reader.close()


# --- 9. state beside the journal, the HMAC key bound to the chain ---------------------------------------------------

def test_state_lives_beside_the_journal_and_gateway_hmac_uses_the_same_key(rack, tmp_path):
    rack_app, _, rack_server = rack
    home, elsewhere = tmp_path / "srv", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    journal = home / "journal.db"
    issued = make_journal(journal)
    log = tmp_path / "gateway.log"
    value = f"redis://:{secrets.token_hex(8)}@cache.internal:6379/0"
    proc, url = serve(journal, rack_server, log, cwd=elsewhere, http=False)  # no --name: the journal's chain
    try:
        with RackClient(url, RACK, issued[ALICE]) as alice:
            alice.env_set("billing", {"REDIS_URL": value})
        events = wait_for("the env change", lambda: [e for e in feed(url, issued[AUDREY])
                                                      if e["category"] == "Environment"])
    finally:
        stop(proc)
    assert sorted(p.name for p in home.iterdir() if not p.name.startswith("journal.db")) == [
        f"{SOURCE}-checkpoint.key", f"{SOURCE}-hmac.key", f"{SOURCE}-tls.crt", f"{SOURCE}-tls.key",
        "journal-keys.json"]
    assert all((home / n).stat().st_mode & 0o777 == 0o600
               for n in ("journal-keys.json", f"{SOURCE}-checkpoint.key", f"{SOURCE}-hmac.key", f"{SOURCE}-tls.key"))
    # `auditkit gateway key`, from any directory, prints the key the gateway printed when it started
    printed = cli("gateway", "key", "--journal", str(journal), cwd=elsewhere).stdout.strip()
    assert printed.startswith(f"{SOURCE}+") and f"checkpoint key {printed}" in log.read_text()
    assert list(elsewhere.iterdir()) == []  # nothing in ./data of the working directory
    assert f"TLS certificate {home / f'{SOURCE}-tls.crt'}" in log.read_text()
    # `auditkit gateway fingerprint` prints the fingerprint the start-up line tells sync agents to pin
    pinned = cli("gateway", "fingerprint", "--journal", str(journal), cwd=elsewhere).stdout.strip()
    assert f"auditkit sync add {url} --key-file AUDITOR_KEY --fingerprint {pinned} --checkpoint-key {printed}" \
        in log.read_text()
    recorded = events[0]["details"]["hmac"]["REDIS_URL"]
    assert recorded == value_hmac(bytes.fromhex((home / f"{SOURCE}-hmac.key").read_text().strip()), value)
    # `auditkit gateway hmac VALUE --journal J`, from any directory, uses the gateway's key.
    for cwd in (elsewhere, home):
        assert cli("gateway", "hmac", value, "--journal", str(journal), cwd=cwd).stdout.strip() == recorded
    assert cli("gateway", "hmac", value + "x", "--journal", str(journal), cwd=elsewhere).stdout.strip() != recorded
    assert value not in log.read_text() and not (elsewhere / "data").exists()


def test_data_dir_and_config_keys_still_say_where_the_state_goes(rack, tmp_path):
    _, _, rack_server = rack
    journal, state = tmp_path / "j" / "journal.db", tmp_path / "state"
    journal.parent.mkdir()
    issued = make_journal(journal)
    proc, url = serve(journal, rack_server, tmp_path / "gateway.log", cwd=tmp_path, http=False,
                      extra=("--data-dir", str(state)))
    try:
        assert httpx.get(f"{url}/audit/v1/events", auth=(SOURCE, issued[AUDREY]), verify=False).status_code == 200
    finally:
        stop(proc)
    assert sorted(p.name for p in state.iterdir()) == [f"{SOURCE}-checkpoint.key", f"{SOURCE}-hmac.key",
                                                       f"{SOURCE}-tls.crt", f"{SOURCE}-tls.key"]
    # the keys file stays beside the journal (--keys moves it), whatever --data-dir says
    assert sorted(p.name for p in journal.parent.iterdir() if not p.name.startswith("journal.db")) == [
        "journal-keys.json"]
    key = bytes.fromhex((state / f"{SOURCE}-hmac.key").read_text().strip())
    assert cli("gateway", "hmac", "v", "--journal", str(journal), "--data-dir", str(state),
               cwd=tmp_path).stdout.strip() == value_hmac(key, "v")
    toml = tmp_path / "gateway.toml"
    toml.write_text(f'journal = "{journal}"\nhmac_key_file = "{state / f"{SOURCE}-hmac.key"}"\n')
    assert cli("gateway", "hmac", "v", "--config", str(toml), cwd=tmp_path).stdout.strip() == value_hmac(key, "v")
    missing = cli("gateway", "hmac", "v", "--journal", str(journal), cwd=tmp_path, check=False)
    assert missing.returncode == 2 and f"no HMAC key at {journal.parent / f'{SOURCE}-hmac.key'}" in missing.stderr


def test_another_name_on_an_existing_journal_is_refused_instead_of_switching_keys(rack, tmp_path):
    _, _, rack_server = rack
    journal = tmp_path / "journal.db"
    issued = make_journal(journal)
    proc, url = serve(journal, rack_server, tmp_path / "gateway.log", cwd=tmp_path)  # makes gw-hmac.key
    stop(proc)
    expected = (f"Error: journal {journal} holds chain '{SOURCE}'; this gateway was given --name prod, but a journal "
                f"keeps one chain, and its HMAC key and TLS pair are named after it: use --name {SOURCE} or a new "
                f"journal")
    refused = cli("gateway", "serve", "--rack", f"{RACK}={rack_url(rack_server)}", "--journal", str(journal),
                  "--name", "prod", "--http", "--listen", f"127.0.0.1:{free_port()}", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [expected]
    toml = tmp_path / "gateway.toml"
    toml.write_text(f'name = "prod"\njournal = "{journal}"\n')
    by_config = cli("gateway", "serve", "--config", str(toml), "--rack", f"{RACK}={rack_url(rack_server)}",
                    "--http", cwd=tmp_path, check=False)
    assert by_config.returncode == 2 and "holds chain 'gw'" in by_config.stderr
    assert not list(tmp_path.glob("prod-*")) and RACK_PW not in refused.stderr + by_config.stderr
    with pytest.raises(ChainMismatch, match="use --name gw or a new journal"):
        Journal(journal, "prod")
    # Without --name, a gateway (and `gateway hmac`) takes the journal's chain and its key.
    key = bytes.fromhex((tmp_path / f"{SOURCE}-hmac.key").read_text().strip())
    assert cli("gateway", "hmac", "v", "--journal", str(journal), cwd=tmp_path).stdout.strip() == value_hmac(key, "v")
    proc, url = serve(journal, rack_server, tmp_path / "gateway.log", cwd=tmp_path)
    try:
        assert httpx.get(f"{url}/audit/v1/events", auth=(SOURCE, issued[AUDREY])).json()["source"] == SOURCE
    finally:
        stop(proc)


def test_state_left_in_the_old_data_dir_is_refused_with_how_to_move_it(rack, tmp_path):
    """Gateways before this version kept their key and pair in ./data of their working directory. Finding them there
    and not beside the journal, the gateway refuses to make new ones (new HMACs would not match the old; a new
    certificate would change the pinned fingerprint) and says how to move them; once moved, the same ones are used."""
    rack_app, _, rack_server = rack
    old_cwd, home = tmp_path / "old", tmp_path / "srv"
    (old_cwd / "data").mkdir(parents=True)
    home.mkdir()
    journal = home / "journal.db"
    make_journal(journal)
    # An older gateway, run from old_cwd, made its state in old_cwd/data (as `--data-dir data` still does).
    proc, url = serve(journal, rack_server, tmp_path / "old.log", cwd=old_cwd, http=False,
                      extra=("--data-dir", "data"))
    stop(proc)
    fingerprint = [line for line in (tmp_path / "old.log").read_text().splitlines() if "SHA-256" in line][0]
    old_key = (old_cwd / "data" / f"{SOURCE}-hmac.key").read_text()

    refused = cli("gateway", "serve", "--rack", f"{RACK}={rack_url(rack_server)}", "--journal", str(journal),
                  "--listen", f"127.0.0.1:{free_port()}", cwd=old_cwd, check=False)
    assert refused.returncode == 2
    message = refused.stderr.strip()
    assert message.startswith(f"Error: the HMAC key of chain '{SOURCE}' is at data/{SOURCE}-hmac.key")
    assert f"mv data/{SOURCE}-hmac.key {home / f'{SOURCE}-hmac.key'}" in message
    assert f"--data-dir {old_cwd / 'data'}" in message
    assert old_key.strip() not in message
    hmac_refused = cli("gateway", "hmac", "v", "--journal", str(journal), cwd=old_cwd, check=False)
    assert hmac_refused.returncode == 2 and f"mv data/{SOURCE}-hmac.key" in hmac_refused.stderr
    assert sorted(p.name for p in home.iterdir() if not p.name.startswith("journal.db")) == ["journal-keys.json"]

    (old_cwd / "data" / f"{SOURCE}-hmac.key").rename(home / f"{SOURCE}-hmac.key")
    tls_refused = cli("gateway", "serve", "--rack", f"{RACK}={rack_url(rack_server)}", "--journal", str(journal),
                      "--listen", f"127.0.0.1:{free_port()}", cwd=old_cwd, check=False)
    assert tls_refused.returncode == 2
    assert f"mv data/{SOURCE}-tls.crt {home / f'{SOURCE}-tls.crt'} && mv data/{SOURCE}-tls.key " \
           f"{home / f'{SOURCE}-tls.key'}" in tls_refused.stderr
    for name in (f"{SOURCE}-tls.crt", f"{SOURCE}-tls.key"):
        (old_cwd / "data" / name).rename(home / name)
    log = tmp_path / "new.log"
    proc, url = serve(journal, rack_server, log, cwd=old_cwd, http=False)
    stop(proc)
    assert fingerprint.split("(")[1] in log.read_text()  # the same certificate
    assert (home / f"{SOURCE}-hmac.key").read_text() == old_key
    key = bytes.fromhex(old_key.strip())
    assert cli("gateway", "hmac", "v", "--journal", str(journal), cwd=old_cwd).stdout.strip() == value_hmac(key, "v")
