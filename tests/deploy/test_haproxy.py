"""Two gateway replicas behind a real HAProxy (issue 14, point 3): Debian's haproxy running docs/deploy/haproxy.cfg
as it is, health-checking `/healthz`, in front of two `auditkit gateway serve` processes (chains gw-a and gw-b, one
shared keys file), HTTP and websockets, the simulated rack behind them.

- 8 clients create apps through HAProxy while replica A is killed with SIGKILL: every app the rack created is in A's
  or B's journal (A's in-flight ones as `unknown` once it has restarted), none is missing, none is there twice, and
  nothing the rack did not get is recorded as done;
- A's journal filesystem (a small tmpfs) fills up: HAProxy takes A out within its check interval, writes go on
  through B, and nothing reached the rack unrecorded (A's held outcomes are sealed once it has room again);
- `convox exec` through HAProxy is recorded with its session;
- `auditkit sync` mirrors both chains into one file, interleaved, and `auditkit verify` passes.

Without haproxy these tests skip with the reason; with AUDITKIT_REQUIRE_HAPROXY=1 (set by .ci/run) they fail.
The filesystem test mounts a tmpfs (root only: CI and this machine run as root).
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread, free_port, stop_process, wait_until_listening
from helpers import ROOT, fill

RACK = "acme/production"
RACK_PW = "rackPW-" + secrets.token_hex(12)
AUDITKIT = [sys.executable, "-m", "auditkit.cli"]
HAPROXY_CFG = ROOT / "docs" / "deploy" / "haproxy.cfg"
CLIENTS = 8
CHECK_INTERVAL = 1.0  # `inter 1s` in haproxy.cfg


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None)
    if found is None:
        reason = "haproxy is not installed (apt-get install haproxy; .ci/run installs it)"
        if os.environ.get("AUDITKIT_REQUIRE_HAPROXY") == "1":
            pytest.fail(reason + ", and AUDITKIT_REQUIRE_HAPROXY=1 requires it")
        pytest.skip(reason)
    return found


class SlowAnswers:
    """The rack acts on a write at once and answers it 150 ms later: a replica killed meanwhile has writes in flight
    that the rack did."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return

        async def slow_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(0.15)
            await send(message)
        await self.app(scope, receive, slow_send)


@pytest.fixture(scope="module")
def rack() -> Iterator[Any]:
    app = rack_mod.create_app(RACK_PW, rack_name=RACK, seed=31)
    server = ServerThread(SlowAnswers(app)).start()
    yield app, server
    server.stop()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(AUDITKIT + list(args), capture_output=True, text=True, cwd=cwd, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    return result


class Replica:
    def __init__(self, name: str, journal: Path, keys_file: Path, config: Path, rack_port: int, log: Path):
        self.name, self.journal, self.log = name, journal, log
        self.port = free_port()
        self.args = AUDITKIT + ["gateway", "serve", "--config", str(config), "--rack",
                                f"{RACK}=http://convox:{RACK_PW}@127.0.0.1:{rack_port}", "--journal", str(journal),
                                "--name", name, "--keys", str(keys_file), "--listen", f"127.0.0.1:{self.port}",
                                "--http"]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Replica":
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(self.args, stdout=f, stderr=subprocess.STDOUT, cwd=self.journal.parent,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_until_listening(self.port, self.proc, what=f"replica {self.name}")
        except RuntimeError as e:
            raise AssertionError(f"{e}: {self.log.read_text()}") from None
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


class HAProxy:
    def __init__(self, binary: str, d: Path, a: Replica, b: Replica):
        self.port = free_port()
        self.socket = d / "haproxy.sock"
        self.log = d / "haproxy.log"
        env = {**os.environ, "AUDITKIT_LISTEN": f"127.0.0.1:{self.port}", "AUDITKIT_GW_A": f"127.0.0.1:{a.port}",
               "AUDITKIT_GW_B": f"127.0.0.1:{b.port}", "AUDITKIT_HAPROXY_SOCKET": str(self.socket)}
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([binary, "-db", "-f", str(HAPROXY_CFG)], stdout=f, stderr=subprocess.STDOUT,
                                         env=env)
        wait_until_listening(self.port, self.proc, what="haproxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self, server: str) -> str:
        """UP, DOWN, … of a server, from the admin socket's `show stat`."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.socket))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "gateways" and row.get("svname") == server:
                return row["status"].split(" ")[0]
        raise AssertionError(f"no server {server} in {data!r}")

    def wait_status(self, server: str, wanted: str, timeout: float = 15.0) -> float:
        started = time.monotonic()
        while self.status(server) != wanted:
            assert time.monotonic() - started < timeout, f"{server} not {wanted}: {self.log.read_text()}"
            time.sleep(0.02)
        return time.monotonic() - started

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def world(rack, tmp_path: Path) -> Iterator[dict[str, Any]]:
    binary = haproxy_binary()
    rack_app, rack_server = rack
    (tmp_path / "b").mkdir()
    mount = tmp_path / "a"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)],
                             capture_output=True, text=True).returncode == 0
    shared = tmp_path / "shared" / "gateway-keys.json"
    config = tmp_path / "gateway.toml"
    config.write_text('trusted_proxies = ["127.0.0.1/32"]\nrefusal_window = 3600\n')
    journal_a, journal_b = mount / "gw-a.db", tmp_path / "b" / "gw-b.db"
    a = Replica("gw-a", journal_a, shared, config, rack_server.port, tmp_path / "gw-a.log").start()
    b = Replica("gw-b", journal_b, shared, config, rack_server.port, tmp_path / "gw-b.log").start()
    # One keys file for both replicas, filled while they run (the Access events go to B's journal).
    issued = {}
    for who, role in [(f"dev{i}@example.com", "member") for i in range(CLIENTS)] + [("audit@example.com",
                                                                                      "auditor")]:
        issued[who] = cli("gateway", "users", "add", who, "--role", role, "--journal", str(journal_b), "--keys",
                          str(shared), cwd=tmp_path).stdout.splitlines()[-1]
    lb = HAProxy(binary, tmp_path, a, b)
    try:
        lb.wait_status("gw-a", "UP")
        lb.wait_status("gw-b", "UP")
        yield {"dir": tmp_path, "rack": rack_app, "a": a, "b": b, "lb": lb, "keys": issued, "mount": mount,
               "mounted": mounted}
    finally:
        lb.stop()
        a.stop()
        b.stop()
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def journal_rows(path: Path, query: str, params: tuple = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def created_apps(journal: Path, prefix: str) -> list[tuple[str, str]]:
    return [(r["target"], r["outcome"]) for r in journal_rows(
        journal, "SELECT target, outcome FROM events WHERE category = 'Applications' AND action = 'created' "
                 "AND target LIKE ?", (prefix + "%",))]


def rack_created(rack_app: Any, prefix: str) -> list[str]:
    return [r.params.get("name", "") for r in list(rack_app.state.requests)
            if r.method == "POST" and r.path == "/apps" and r.route is not None
            and r.params.get("name", "").startswith(prefix)]


def writers(url: str, issued: dict[str, str], prefix: str, stop: threading.Event,
            retry_503: bool = False) -> tuple[list[threading.Thread], dict[str, int]]:
    """8 clients, one key each, creating apps named <prefix><client>-<n> until `stop`; returns the threads and the
    final status of each name (a 503 is retried under the same name when retry_503: nothing was forwarded)."""
    results: dict[str, int] = {}

    def run(i: int, key: str) -> None:
        with httpx.Client(base_url=url, auth=(RACK, key), timeout=30) as client:
            n = 0
            while not stop.is_set():
                name = f"{prefix}{i}-{n}"
                for _ in range(50):
                    try:
                        status = client.post("/apps", data={"name": name, "generation": "2"}).status_code
                    except httpx.HTTPError:
                        status = 0  # the connection broke: A was killed with it open
                    if not (retry_503 and status == 503):
                        break
                    time.sleep(0.05)
                results[name] = status
                n += 1

    keys = [k for who, k in issued.items() if who.startswith("dev")]
    threads = [threading.Thread(target=run, args=(i, k)) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    return threads, results


def settle(*replicas: Replica, timeout: float = 10.0) -> None:
    """Wait until no intent is left in these journals (outcomes are written just after the answer goes back)."""
    deadline = time.monotonic() + timeout
    for replica in replicas:
        while journal_rows(replica.journal, "SELECT count(*) AS n FROM intents")[0]["n"]:
            assert time.monotonic() < deadline, f"{replica.name} kept intents without outcomes"
            time.sleep(0.05)


def check_every_write_recorded_once(world: dict[str, Any], prefix: str, results: dict[str, int]) -> dict[str, Any]:
    settle(world["a"], world["b"])
    received = rack_created(world["rack"], prefix)
    a = created_apps(world["a"].journal, prefix)
    b = created_apps(world["b"].journal, prefix)
    recorded = collections.Counter(name for name, _ in a + b)
    outcomes = dict(a + b)
    assert len(received) == len(set(received))  # the rack got each write once: nothing was sent twice
    assert [n for n, c in recorded.items() if c > 1] == []  # none twice
    assert sorted(set(received) - set(recorded)) == []  # none missing
    for name in set(recorded) - set(received):  # recorded, but the rack never got it: never recorded as done
        assert outcomes[name] in ("unknown", "failed", "denied"), (name, outcomes[name])
    for name, status in results.items():
        if 200 <= status < 300:
            assert name in received and outcomes[name] == "succeeded", name
    return {"received": len(received), "a": a, "b": b}


def test_sigkill_of_a_replica_during_8_clients_writes_loses_nothing_and_records_nothing_twice(world):
    lb, a = world["lb"], world["a"]
    stop = threading.Event()
    threads, results = writers(lb.url, world["keys"], "k-", stop)
    time.sleep(1.5)
    a.kill()
    down_after = lb.wait_status("gw-a", "DOWN")
    time.sleep(1.5)  # B alone
    a.start()  # the same journal: its in-flight writes become `unknown`
    lb.wait_status("gw-a", "UP")
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(60)
    seen = check_every_write_recorded_once(world, "k-", results)
    unknown_a = [n for n, outcome in seen["a"] if outcome == "unknown"]
    assert unknown_a, "A had no write in flight when it was killed"
    assert set(unknown_a) <= set(rack_created(world["rack"], "k-")) | {n for n, s in results.items() if s != 200}
    assert "recorded as unknown" in a.log.read_text()
    assert {o for _, o in seen["b"]} >= {"succeeded"} and {o for _, o in seen["a"]} >= {"succeeded"}
    ok = sum(1 for s in results.values() if s == 200)
    print(f"\nSIGKILL: {len(results)} writes by {CLIENTS} clients, {ok} answered 200, {seen['received']} reached the "
          f"rack; A: {len(seen['a'])} recorded ({len(unknown_a)} unknown), B: {len(seen['b'])}; HAProxy marked A "
          f"down {down_after:.2f} s after the kill")

    # `convox exec` through HAProxy, recorded with its session, on whichever replica the user sticks to.
    key = world["keys"]["dev0@example.com"]
    with RackClient(lb.url, RACK, key) as client:
        pid = client.json("GET", "/apps/web/processes")[0]["id"]
        result = client.exec("web", pid, "bash", ["echo through-haproxy\r", "exit 3\r"])
    assert "through-haproxy" in result.output and result.exit_code == 3
    settle(world["a"], world["b"])  # the session's event is sealed as the socket closes, after the client is done
    sessions = []
    for replica in (world["a"], world["b"]):
        sessions += journal_rows(replica.journal, "SELECT e.session_id, s.sha256, s.exit_code FROM events e "
                                                  "JOIN sessions s ON s.id = e.session_id WHERE e.action = 'executed'")
    assert len(sessions) == 1 and sessions[0]["exit_code"] == 3

    # The mirror: both chains, interleaved, verified.
    d = world["dir"]
    mirror = d / "audit.db"
    key_file = d / "auditor.key"
    key_file.write_text(world["keys"]["audit@example.com"])
    for replica in (world["a"], world["b"]):  # each replica's feed directly: a feed is one chain
        cli("sync", "add", replica.name, replica.url, "--key-file", str(key_file), "--db", str(mirror), cwd=d)
    cli("sync", "--db", str(mirror), cwd=d)
    cli("verify", "--db", str(mirror), cwd=d)  # exits non-zero on any broken chain or recording
    order = [r[0] for r in journal_rows(mirror, "SELECT source FROM events WHERE source != 'local' ORDER BY n")]
    assert set(order) == {"gw-a", "gw-b"}
    switches = sum(1 for x, y in zip(order, order[1:]) if x != y)
    assert switches >= 10, "the chains are not interleaved in time"
    listed = cli("events", "--db", str(mirror), "action:created", "app:k-0-0", cwd=d).stdout
    assert "k-0-0" in listed




def test_a_full_journal_filesystem_takes_its_replica_out_and_writes_go_on_through_the_other(world):
    if not world["mounted"]:
        if os.geteuid() != 0:
            pytest.skip("cannot mount a tmpfs for replica A's journal (not root)")
        pytest.fail("cannot mount a tmpfs as root")
    lb, a, b = world["lb"], world["a"], world["b"]
    stop = threading.Event()
    threads, results = writers(lb.url, world["keys"], "f-", stop, retry_503=True)
    time.sleep(1.5)
    fill(world["mount"])
    down_after = lb.wait_status("gw-a", "DOWN")
    before = len(created_apps(b.journal, "f-"))
    time.sleep(2.0)
    after = created_apps(b.journal, "f-")
    assert len(after) > before + 8, "writes did not go on through B"
    assert lb.status("gw-b") == "UP"
    stop.set()
    for t in threads:
        t.join(60)
    # Room again: A seals what it held in memory and comes back.
    (world["mount"] / "filler").unlink()
    back_after = lb.wait_status("gw-a", "UP")
    deadline = time.monotonic() + 10
    while journal_rows(a.journal, "SELECT count(*) AS n FROM intents")[0]["n"]:
        assert time.monotonic() < deadline, "A did not seal its held outcomes"
        time.sleep(0.1)
    seen = check_every_write_recorded_once(world, "f-", results)
    held = journal_rows(a.journal, "SELECT count(*) AS n FROM events WHERE target LIKE 'f-%' "
                                   "AND json_extract(details, '$.held_in_memory_ms') IS NOT NULL")[0]["n"]
    refused = sum(1 for s in results.values() if s == 503)
    assert refused == 0, "a client got 503 fifty times in a row"
    print(f"\nfull filesystem: HAProxy marked A down {down_after:.2f} s after it filled (check interval "
          f"{CHECK_INTERVAL:g} s), up again {back_after:.2f} s after it had room; {len(results)} writes, "
          f"{seen['received']} reached the rack, A recorded {len(seen['a'])} ({held} sealed from memory), B "
          f"{len(seen['b'])}")
    assert down_after <= CHECK_INTERVAL + 0.5
