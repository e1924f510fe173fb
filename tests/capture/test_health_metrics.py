"""`GET /healthz` and `GET /metrics` (issue 14, points 2 and 4), over real HTTP against the simulated rack:

- healthz answers 200 `ok` without a key while the journal takes a probe write and every rack answers; 503 with one
  line when the journal's filesystem is full (a small tmpfs, filled), when a rack is down or refuses the gateway's
  credentials; the answer never names a rack, a URL or a path, whatever credentials come with it;
- metrics count audited events by category, outcome and rack, commits in the latency histogram, journal failures,
  pending intents, open sessions and feed requests; only an admin key or the metrics token reads them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from auditkit import store
from auditkit.capture import config as cfg
from auditkit.capture import keys
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.errors import AuditkitError
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread, free_port

from helpers import fill

RACK = "acme/production"
RACK_PW = "rackPW-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def rack() -> Iterator[ServerThread]:
    server = ServerThread(rack_mod.create_app(RACK_PW, rack_name=RACK, seed=9)).start()
    yield server
    server.stop()


def start(d: Path, racks: list[str], **options) -> tuple[ServerThread, dict[str, str]]:
    journal = d / "gw.db"
    conn = store.open_db(journal)
    source = journal_source(conn, "gw")
    issued = {role: keys.add(conn, f"{role}@example.com", kind="user", role=role, source=source)[1]
              for role in ("admin", "member", "auditor")}
    conn.close()
    config = cfg.load(None, racks=[cfg.parse_rack_flag(r) for r in racks], journal=journal, http=True,
                      health_deadline=1.0, **options)
    return ServerThread(create_app(config)).start(), issued


def rack_flag(port: int, password: str = RACK_PW, name: str = RACK) -> str:
    return f"{name}=http://convox:{password}@127.0.0.1:{port}"


def healthz(server: ServerThread, **kw) -> httpx.Response:
    time.sleep(0.55)  # past the check's cache
    return httpx.get(f"{server.url}/healthz", timeout=10, **kw)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "fs"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        if os.geteuid() != 0:
            pytest.skip(f"cannot mount a tmpfs (not root): {result.stderr.strip()}")
        pytest.fail(f"cannot mount a tmpfs as root: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_healthz_is_ok_without_a_key_and_503_with_one_line_when_a_rack_is_down_or_refuses(rack, tmp_path):
    dead = free_port()
    good, _ = start(tmp_path / "good", [rack_flag(rack.port)])
    down, _ = start(tmp_path / "down", [rack_flag(rack.port), rack_flag(dead, name="acme/secret-staging")])
    wrong, _ = start(tmp_path / "wrong", [rack_flag(rack.port, password="not-the-password")])
    try:
        ok = healthz(good)
        assert (ok.status_code, ok.text) == (200, "ok\n") and ok.headers["cache-control"] == "no-store"
        refused = healthz(down)
        assert refused.status_code == 503 and refused.text == "racks: 1 of 2 not usable (unreachable)\n"
        creds = healthz(wrong)
        assert creds.status_code == 503
        assert creds.text == "racks: 1 of 1 not usable (refuses the gateway's credentials)\n"
        for answer in (ok, refused, creds, healthz(down, auth=("x", "akg_whatever"))):
            assert "acme" not in answer.text and str(dead) not in answer.text and "127.0.0.1" not in answer.text
            assert str(tmp_path) not in answer.text and answer.text.count("\n") == 1
    finally:
        for s in (good, down, wrong):
            s.stop()


def test_healthz_is_503_while_the_journal_filesystem_is_full_and_ok_again_once_it_has_room(rack, small_fs):
    server, issued = start(small_fs, [rack_flag(rack.port)])
    try:
        assert healthz(server).status_code == 200
        fill(small_fs)
        full = healthz(server)
        assert full.status_code == 503
        assert full.text == "journal: the probe write failed (No space left on device)\n"
        with RackClient(server.url, RACK, issued["member"]) as member:
            assert member.request("POST", "/apps/web/services/web/restart").status_code == 503
        metrics = samples(httpx.get(f"{server.url}/metrics", auth=("x", issued["admin"])).text)
        assert metrics[("auditkit_healthy", ())] == 0
        assert metrics[("auditkit_journal_failures_total", ())] >= 1
        (small_fs / "filler").unlink()
        deadline = time.monotonic() + 5
        while healthz(server).status_code != 200:
            assert time.monotonic() < deadline, "healthz did not recover"
    finally:
        server.stop()


def test_metrics_count_what_the_gateway_did_and_only_admins_or_the_token_read_them(rack, tmp_path):
    token = secrets.token_urlsafe(24)
    token_file = tmp_path / "metrics-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o644)
    with pytest.raises(AuditkitError, match="chmod 600"):
        start(tmp_path / "refused", [rack_flag(rack.port)], metrics_token_file=token_file)
    token_file.chmod(0o600)
    server, issued = start(tmp_path / "gw", [rack_flag(rack.port)], metrics_token_file=token_file)
    url = f"{server.url}/metrics"
    try:
        with RackClient(server.url, RACK, issued["member"]) as member:
            assert member.request("POST", "/apps/web/services/web/restart").status_code == 200
            assert member.request("POST", "/apps/nope/services/web/restart").status_code >= 400
            pid = _pid(member)

            def run_exec() -> None:  # an interactive shell kept open for about 1.5 s
                asyncio.run(member._socket(f"/apps/web/processes/{pid}/exec",
                                           {"Command": "bash", "Height": "30", "Width": "100", "Tty": "true"},
                                           ["echo one\n", "echo two\n", "exit\n"], pause=0.4))
            # open sessions: counted while the exec websocket is open
            worker = threading.Thread(target=run_exec)
            worker.start()
            seen = 0.0
            deadline = time.monotonic() + 5
            while worker.is_alive() and time.monotonic() < deadline:
                seen = max(seen, samples(httpx.get(url, auth=("x", issued["admin"])).text).get(
                    ("auditkit_open_sessions", ()), 0))
                time.sleep(0.05)
            worker.join()
        assert seen == 1
        httpx.get(f"{server.url}/audit/v1/events", auth=("x", issued["auditor"]))
        httpx.get(f"{server.url}/audit/v1/events", auth=("x", issued["member"]))
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, auth=("x", issued["member"])).status_code == 403
        assert httpx.get(url, auth=("x", issued["auditor"])).status_code == 403
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}x"}).status_code == 401
        by_token = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert by_token.status_code == 200 and by_token.headers["content-type"].startswith("text/plain")
        got = samples(by_token.text)
        assert got[("auditkit_audited_requests_total",
                    (("category", "Processes"), ("outcome", "succeeded"), ("rack", RACK)))] >= 2  # restart, exec
        assert got[("auditkit_audited_requests_total",
                    (("category", "Processes"), ("outcome", "failed"), ("rack", RACK)))] == 1
        assert got[("auditkit_journal_commit_seconds_count", ())] >= 4  # an intent and an outcome each
        assert got[("auditkit_journal_pending_intents", ())] == 0 and got[("auditkit_open_sessions", ())] == 0
        assert got[("auditkit_feed_requests_total", (("code", "2xx"),))] == 1
        assert got[("auditkit_feed_requests_total", (("code", "4xx"),))] == 1
        assert got[("auditkit_journal_failures_total", ())] == 0 and got[("auditkit_healthy", ())] in (0, 1)
        assert token not in by_token.text and issued["admin"] not in by_token.text
        # What a client names never becomes a label: unknown racks, odd paths and refused keys add no series.
        series = {name for name, _ in got}
        labelled = {labels for name, labels in got if name == "auditkit_audited_requests_total"}
        for i in range(20):
            httpx.post(f"{server.url}/apps/x{i}/services/web/restart", auth=(f"acme/rack-{i}", issued["member"]))
            httpx.post(f"{server.url}/weird-{i}", auth=(RACK, f"akg_{i}"))
            httpx.get(f"{server.url}/audit/v1/events?after=x{i}", auth=("x", issued["auditor"]))
        again = samples(httpx.get(url, headers={"Authorization": f"Bearer {token}"}).text)
        assert {name for name, _ in again} == series
        grown = {labels for name, labels in again if name == "auditkit_audited_requests_total"} - labelled
        assert all(dict(labels)["rack"] in (RACK, "gateway") for labels in grown), grown
    finally:
        server.stop()


def _pid(client: RackClient) -> str:
    processes = client.json("GET", "/apps/web/processes")
    return processes[0]["id"]
