"""Who may get in, and what a refusal leaves behind: refused credentials journaled and coalesced per source IP,
per-rack grants (HTTP and websockets, direct and Console mode), and Console mode as the Convox CLI drives it
(`convox login`, `convox racks`, `convox switch`).

Real uvicorn servers on 127.0.0.1 (the simulated rack behind the gateway), real HTTP and websockets, a real SQLite
journal. The gateway trusts X-Forwarded-For from loopback, so each test speaks from addresses of its own and reads
only the events of those addresses: refusal windows of one test never mix with another's.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from auditkit import store
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread
from auditkit.model.events import Event, now_timestamp
from auditkit.capture import config as cfg
from auditkit.capture import keys, refusals
from auditkit.capture.proxy import create_app
from auditkit.capture.journal import journal_source
from auditkit.capture.wire import basic_authorization
from helpers import basic

PROD, STAGING, SANDBOX = "acme/production", "acme/staging", "sandbox"  # sandbox: a configured name without "/"
SOURCE = "gw"  # the chain name: sandbox is listed as organization "gw"
RACK_PW = "rackPW-access-" + os.urandom(6).hex()
ALICE, STAGER, AUDREY, ADMIN, CI = ("alice@example.com", "stan@example.com", "audrey@example.com",
                                    "root@example.com", "ci-staging")
WINDOW = 1.0  # seconds: the test gateway's refusal window
AUDITKIT = [sys.executable, "-m", "auditkit.cli"]
CLI_HEADERS = {"User-Agent": "convox.go/dev", "Version": "dev", "Accept": "*/*"}  # the Convox CLI built from source

_addresses = itertools.count(1)


def new_ip() -> str:
    """A source address no other test uses (sent as X-Forwarded-For, trusted from loopback)."""
    n = next(_addresses)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


def cli_login_header(token: str) -> str:
    """What `convox login HOST -t TOKEN` sends: Basic base64("convox:" + url.QueryEscape(TOKEN))."""
    return basic("convox", token, escape=lambda p: urllib.parse.quote_plus(p))


class JournalView:
    def __init__(self, path: Path):
        self.conn = store.open_db(path)

    def settle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.conn.execute("SELECT count(*) FROM intents").fetchone()[0]:
            assert time.monotonic() < deadline, "an intent never got its outcome"
            time.sleep(0.005)

    def all(self) -> list[dict[str, Any]]:
        self.settle()
        return store.events_after(self.conn, SOURCE, 0, 1_000_000)

    def head(self) -> int:
        self.settle()
        return store.chain_head(self.conn, SOURCE).last_seq

    def since(self, mark: int) -> list[dict[str, Any]]:
        self.settle()
        return store.events_after(self.conn, SOURCE, mark, 1_000_000)

    def from_ips(self, *ips: str) -> list[dict[str, Any]]:
        return [e for e in self.all() if e["source_ip"] in ips]

    def wait_from(self, *ips: str, count: int = 1, timeout: float = WINDOW + 8) -> list[dict[str, Any]]:
        """The events of these source addresses once there are `count` of them (refusal windows close late)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.from_ips(*ips)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@dataclasses.dataclass
class World:
    dir: Path
    url: str
    rack_url: str
    config: cfg.GatewayConfig
    rack_app: Any
    journal: JournalView
    keys: dict[str, str]
    key_ids: dict[str, str]

    @property
    def received(self) -> list[rack_mod.ReceivedRequest]:
        return self.rack_app.state.requests

    def client(self, who: str, rack: str, ip: str, **kw: Any) -> RackClient:
        client = RackClient(self.url, rack, self.keys[who], **kw)
        client.http.headers["X-Forwarded-For"] = ip
        return client


def make_keys(journal: Path) -> tuple[dict[str, str], dict[str, str]]:
    conn = store.open_db(journal)
    source = journal_source(conn, SOURCE)
    issued, ids = {}, {}
    for who, role, racks in ((ALICE, "member", None), (STAGER, "member", [STAGING]), (AUDREY, "auditor", None),
                             (ADMIN, "admin", None)):
        ids[who], issued[who] = keys.add(conn, who, kind="user", role=role, source=source, racks=racks)
    ids[CI], issued[CI] = keys.add(conn, CI, kind="deploy_key", role="deploy", source=source,
                                   racks=[STAGING, SANDBOX])
    conn.close()
    return issued, ids


def gateway_config(d: Path, rack_url: str, **options: Any) -> cfg.GatewayConfig:
    racks = [cfg.parse_rack_flag(f"{name}=http://convox:{RACK_PW}@{rack_url.split('://')[1]}")
             for name in (PROD, STAGING, SANDBOX)]
    return cfg.load(None, racks=racks, journal=d / "journal.db", data_dir=d, name=SOURCE, http=True,
                    trusted_proxies=["127.0.0.0/8"], **options)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    d = tmp_path_factory.mktemp("access")
    rack_app = rack_mod.create_app(RACK_PW, rack_name=PROD, seed=5)
    with ServerThread(rack_app) as rack_server:
        config = gateway_config(d, rack_server.url, refusal_window=WINDOW)
        issued, ids = make_keys(config.journal)
        with ServerThread(create_app(config), proxy_headers=False) as gateway:
            yield World(d, gateway.url, rack_server.url, config, rack_app, JournalView(config.journal), issued, ids)


def raw(url: str, method: str, path: str, ip: str, authorization: str | bytes | None = None,
        **kw: Any) -> httpx.Response:
    headers: dict[str, Any] = {**CLI_HEADERS, "X-Forwarded-For": ip, **kw.pop("headers", {})}
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.request(method, url + path, headers=headers, **kw)


def ws_refusal(url: str, path: str, ip: str, authorization: str | bytes,
               **headers: str | bytes) -> tuple[int, dict[str, Any]]:
    """Open a websocket as the SDK does and return the refusal's (status, JSON body)."""
    target = "ws" + url[len("http"):] + path
    sent = {k: v.decode("latin-1") if isinstance(v, bytes) else v
            for k, v in {**CLI_HEADERS, "Authorization": authorization, "X-Forwarded-For": ip, **headers}.items()}
    with pytest.raises(InvalidStatus) as e:
        with ws_connect(target, additional_headers=sent,
                        user_agent_header=None, proxy=None, open_timeout=10):
            pass
    response = e.value.response
    return response.status_code, json.loads(response.body or b"{}")


# --- 5. refused credentials -----------------------------------------------------------------------------------------

BAD = {
    "none": None,
    "bearer": "Bearer akg_whatever",
    "empty-basic": "Basic",
    "bad-base64": "Basic !!!notbase64",
    "no-colon": "Basic " + base64.b64encode(b"no-colon").decode(),
    "not-utf8": "Basic " + base64.b64encode(b"\xff\xfe:\xc3(").decode(),
    "non-ascii": "Basic d\u00e9j\u00e0:vu".encode("latin-1"),
    "unknown-key": basic(PROD, "akg_" + "A" * 43),
    "foreign-key": basic(PROD, "not-a-gateway-key"),
    "empty-key": basic("convox", ""),
    "bad-escape": "Basic " + base64.b64encode(b"convox:%zz%").decode(),
}


def test_refused_credentials_are_one_event_per_source_ip_and_window(world: World):
    ip, other = new_ip(), new_ip()
    before = len(world.received)
    for name, authorization in BAD.items():
        response = raw(world.url, "POST", "/apps", ip, authorization, data={"name": "intruder"})
        assert response.status_code == 401 and response.json() == {"error": "invalid authentication"}, name
    assert ws_refusal(world.url, "/apps/web/processes/web-1/exec", ip, basic(PROD, "akg_bogus"),
                      Command="bash") == (401, {"error": "invalid authentication"})
    assert raw(world.url, "GET", "/audit/v1/events?after=0", ip, basic(SOURCE, "akg_nope")).status_code == 401
    assert raw(world.url, "DELETE", "/apps/web", other, "Basic x", headers={"User-Agent": "curl/8.5"}
               ).status_code == 401
    assert world.received[before:] == []  # nothing reached the rack

    events = world.journal.wait_from(ip, other, count=2)
    by_ip = {e["source_ip"]: e for e in events}
    assert len(events) == 2 and set(by_ip) == {ip, other}
    first = by_ip[ip]
    assert {k: first[k] for k in ("category", "action", "outcome", "status", "actor", "actor_type", "rack", "method",
                                  "path", "user_agent", "target")} == {
        "category": "Access", "action": "denied", "outcome": "denied", "status": 401, "actor": "unknown",
        "actor_type": "user", "rack": "gateway", "method": "POST", "path": "/apps", "user_agent": "convox.go/dev",
        "target": None}
    count = len(BAD) + 2
    assert first["description"] == f"Refused {count} requests with invalid credentials from {ip}"
    assert first["details"]["count"] == count and first["details"]["window_ms"] == int(WINDOW * 1000)
    assert first["details"]["reasons"] == {"malformed credentials": 6, "no credentials": 1, "not a gateway key": 3,
                                           "unknown key": 3}
    assert first["details"]["first_at"] <= first["details"]["last_at"]
    lone = by_ip[other]
    assert (lone["description"], lone["method"], lone["path"], lone["user_agent"], lone["details"]["count"]) == (
        f"Refused a request with invalid credentials from {other}", "DELETE", "/apps/web", "curl/8.5", 1)

    # The next window gives the next event: at most one per source IP and window, never one per request.
    for _ in range(3):
        assert raw(world.url, "GET", "/apps", ip, basic(PROD, "akg_again")).status_code == 401
    events = world.journal.wait_from(ip, count=2)
    assert [e["details"]["count"] for e in events] == [count, 3]
    assert events[1]["method"] == "GET" and events[1]["details"]["reasons"] == {"unknown key": 3}


def test_a_revoked_key_is_named_by_its_key_id_and_nothing_of_any_key_is_recorded(world: World):
    ip = new_ip()
    conn = store.open_db(world.config.journal)
    key_id, key = keys.add(conn, "leaver@example.com", kind="user", role="member", source=SOURCE)
    with RackClient(world.url, PROD, key) as client:
        client.http.headers["X-Forwarded-For"] = ip
        assert client.request("POST", "/apps/web/services/web/restart").status_code == 200
        keys.revoke(conn, key_id, source=SOURCE, by=ADMIN)
        response = client.request("POST", "/apps/web/services/web/restart")
        assert response.status_code == 401 and response.json() == {"error": "invalid authentication"}
    conn.close()
    unknown = "akg_" + os.urandom(32).hex()
    assert raw(world.url, "POST", "/apps", ip, basic(PROD, unknown)).status_code == 401
    events = world.journal.wait_from(ip, count=2)
    refused = [e for e in events if e["action"] == "denied"]
    assert len(events) == 2 and len(refused) == 1, events
    (event,) = refused
    assert event["target"] == key_id and event["details"]["key_ids"] == [key_id]
    assert event["details"]["reasons"] == {"revoked key": 1, "unknown key": 1} and event["actor"] == "unknown"
    # Any part of a secret key is secret: no slice of either key is anywhere in the journal's files.
    files = [p for p in (world.config.journal, Path(f"{world.config.journal}-wal")) if p.exists()]
    on_disk = subprocess.run(["cat", *map(str, files)], capture_output=True, check=True).stdout
    for secret in (key, unknown):
        body = secret[len(keys.KEY_PREFIX):]
        for start in range(0, len(body) - 8, 4):
            assert body[start:start + 8].encode() not in on_disk


@pytest.mark.parametrize("authorization,rack_header", [
    ("Basic " + base64.b64encode("\u00e9:x".encode()).decode(), None),  # non-ASCII username, a password
    ("Basic \u00ff\u00fe\u00fd".encode("latin-1"), None),
    ("Basic ====", None),
    ("BASIC " + base64.b64encode(b"convox:akg_\x00\x01").decode(), None),
    ("Basic " + base64.b64encode(b"convox:akg_x").decode(), "acme/\u00e9".encode("latin-1")),
    ("Negotiate " + "A" * 6000, None),
], ids=["non-ascii-username", "latin1-blob", "padding-only", "control-chars", "non-ascii-rack", "huge"])
def test_garbled_authorization_is_a_401_never_a_500(world: World, authorization: Any, rack_header: Any):
    ip = new_ip()
    headers = {"Rack": rack_header} if rack_header is not None else {}
    for method, path in (("POST", "/apps/web/cancel"), ("GET", "/auth"), ("GET", "/racks"), ("GET", "/apps%00x"),
                         ("GET", "/audit/v1/events")):
        response = raw(world.url, method, path, ip, authorization, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {"error": "invalid authentication"}
    assert ws_refusal(world.url, "/instances/i-1/shell", ip, authorization, **headers)[0] == 401
    (event,) = world.journal.wait_from(ip)
    assert event["details"]["count"] == 6 and event["status"] == 401


def test_a_valid_key_with_a_garbled_rack_name_is_a_404_not_a_500(world: World):
    ip = new_ip()
    for username in ("\u00e9t\u00e9", "%C3%A9", "acme%2", "////", "="):
        authorization = basic_authorization(username, world.keys[ALICE])
        response = raw(world.url, "POST", "/apps/web/cancel", ip, authorization)
        assert response.status_code == 404 and response.json()["error"].startswith("rack not found"), username
    response = raw(world.url, "POST", "/apps/web/cancel", ip, basic("convox", world.keys[ALICE]),
                   headers={"Rack": "acme/\u00e9t\u00e9".encode("latin-1")})
    assert response.status_code == 404


def test_a_refused_path_with_control_characters_is_recorded_escaped(world: World):
    ip = new_ip()
    assert raw(world.url, "POST", "/apps/web%00/cancel%1b", ip, None).status_code == 401
    (event,) = world.journal.wait_from(ip)
    assert event["path"] == "/apps/web\\0/cancel\\x1b"


def test_a_flood_of_refusals_is_one_event_written_at_shutdown(tmp_path: Path):
    """With a long window nothing is written while the flood lasts; stopping the gateway writes each source's
    window (aclose), so a flood costs one event per source, and none is lost at shutdown."""
    rack_app = rack_mod.create_app(RACK_PW, rack_name=PROD)
    flood, other = new_ip(), new_ip()
    with ServerThread(rack_app) as rack_server:
        config = gateway_config(tmp_path, rack_server.url, refusal_window=3600)
        make_keys(config.journal)
        journal = JournalView(config.journal)
        head = journal.head()
        with ServerThread(create_app(config), proxy_headers=False) as gateway:
            with httpx.Client(headers={**CLI_HEADERS, "Authorization": basic(PROD, "akg_guess")}) as client:
                for i in range(300):
                    assert client.post(gateway.url + "/apps/web/cancel",
                                       headers={"X-Forwarded-For": flood}).status_code == 401
                assert client.get(gateway.url + "/apps", headers={"X-Forwarded-For": other}).status_code == 401
            time.sleep(0.3)
            assert journal.head() == head  # nothing yet: the windows are open
        events = journal.since(head)
    assert sorted((e["source_ip"], e["details"]["count"]) for e in events) == sorted([(flood, 300), (other, 1)])
    assert len(rack_app.state.requests) == 0


def test_open_windows_are_bounded_and_the_overflow_is_counted():
    """Unit check of the coalescer: more sources than it keeps open share one overflow event."""
    written: list[Event] = []

    async def write(event: Event) -> Event:
        written.append(event)
        return event

    async def scenario() -> None:
        windows = refusals.Coalescer(3600, write, max_open=3)
        for n in range(10):
            draft = Event(timestamp=now_timestamp(), actor="unknown", actor_type="user", rack="gateway",
                          category="Access", action="denied", description="x", outcome="denied", status=401,
                          source_ip=f"192.0.2.{n}", user_agent="ua", id=f"e{n}")
            windows.note(("credentials", draft.source_ip), draft, lambda c: f"{c} from one", reason="unknown key")
        assert len(windows.windows) == 4
        await windows.aclose()

    asyncio.run(scenario())
    counts = sorted((e.source_ip or "", e.details["count"]) for e in written)
    assert counts == [("", 7), ("192.0.2.0", 1), ("192.0.2.1", 1), ("192.0.2.2", 1)]
    overflow = next(e for e in written if e.source_ip is None)
    assert overflow.description.startswith("Refused 7 requests from many sources") and overflow.user_agent is None


# --- 6. per-rack grants ---------------------------------------------------------------------------------------------

def test_a_key_is_refused_a_rack_it_is_not_granted_and_the_attempt_is_journaled(world: World):
    ip = new_ip()
    before = len(world.received)
    with world.client(STAGER, STAGING, ip) as staging:
        assert staging.request("POST", "/apps/web/services/web/restart").status_code == 200
    with world.client(STAGER, PROD, ip) as prod:
        response = prod.request("POST", "/apps/web/releases/R123/promote")
        assert response.status_code == 403
        assert response.json() == {"error": f"{STAGER} is not granted rack {PROD}"}
        assert prod.request("GET", "/apps").status_code == 403  # a read: refused too
    with RackClient(world.url, "convox", world.keys[STAGER], rack_header=PROD) as console:
        console.http.headers["X-Forwarded-For"] = ip
        assert console.request("POST", "/apps/web/cancel").status_code == 403
    status, body = ws_refusal(world.url, "/apps/web/processes/web-1/exec", ip, basic(PROD, world.keys[STAGER]),
                              Command="bash")
    assert (status, body) == (403, {"error": f"{STAGER} is not granted rack {PROD}"})
    sent = world.received[before:]
    assert [(r.method, r.path) for r in sent] == [("POST", "/apps/web/services/web/restart")]

    events = world.journal.wait_from(ip, count=5)
    rows = [(e["actor"], e["rack"], e["category"], e["action"], e["description"], e["outcome"], e["status"])
            for e in events]
    assert rows[:4] == [
        (STAGER, STAGING, "Processes", "restarted", "Restarted service web of app web", "succeeded", 200),
        (STAGER, PROD, "Releases", "promoted", "Promoted release R123 of app web", "denied", 403),
        (STAGER, PROD, "Applications", "cancelled", "Cancelled deployment of app web", "denied", 403),
        (STAGER, PROD, "Processes", "executed", "Executed `bash` in process web-1 of app web", "denied", 403)]
    assert all(e["details"]["reason"] == f"not granted rack {PROD}" for e in events[1:4])
    # The unaudited read: an Access event coalesced per source, key and rack, written when its window closes.
    assert rows[4] == (STAGER, PROD, "Access", "denied", f"Refused a read of rack {PROD} to {STAGER} (not granted)",
                       "denied", 403)
    assert (events[4]["method"], events[4]["path"], events[4]["details"]["count"]) == ("GET", "/apps", 1)
    assert events[4]["details"]["key_id"] == world.key_ids[STAGER] and len(events) == 5


def test_deploy_key_grants_and_unrestricted_keys(world: World):
    ip = new_ip()
    for who, rack, status in ((CI, STAGING, 200), (CI, SANDBOX, 200), (CI, PROD, 403), (ALICE, PROD, 200),
                              (ALICE, SANDBOX, 200), (ADMIN, STAGING, 200), (AUDREY, STAGING, 403)):
        with world.client(who, rack, ip) as client:
            assert client.request("POST", "/apps/search/cancel").status_code == status, (who, rack)
    events = world.journal.wait_from(ip, count=7)
    assert [(e["actor"], e["rack"], e["outcome"]) for e in events] == [
        (CI, STAGING, "succeeded"), (CI, SANDBOX, "succeeded"), (CI, PROD, "denied"), (ALICE, PROD, "succeeded"),
        (ALICE, SANDBOX, "succeeded"), (ADMIN, STAGING, "succeeded"), (AUDREY, STAGING, "denied")]
    assert events[2]["actor_type"] == "deploy_key"
    assert events[6]["details"]["reason"] == "role auditor may not use racks"


def test_grants_are_stored_with_the_key_and_its_creation_event(world: World):
    conn = store.open_db(world.config.journal)
    stager = keys.authenticate(conn, world.keys[STAGER])
    assert stager.racks == (STAGING,) and stager.may_use_rack(STAGING) and not stager.may_use_rack(PROD)
    alice = keys.authenticate(conn, world.keys[ALICE])
    assert alice.racks is None and alice.may_use_rack(PROD) and alice.may_use_rack("anything")
    assert not keys.authenticate(conn, world.keys[AUDREY]).may_use_rack(STAGING)
    created = {e["target"]: e for e in store.events_after(conn, SOURCE, 0, 100) if e["action"] == "created"}
    assert created[world.key_ids[STAGER]]["description"] == (
        f"Created gateway user {STAGER} with role member, granted rack {STAGING}")
    assert created[world.key_ids[STAGER]]["details"]["racks"] == [STAGING]
    assert created[world.key_ids[CI]]["description"] == (
        f"Created gateway deploy key {CI}, granted racks {STAGING}, {SANDBOX}")
    assert created[world.key_ids[ALICE]]["details"]["racks"] == "all"
    assert created[world.key_ids[ALICE]]["description"] == f"Created gateway user {ALICE} with role member"
    conn.close()


def _cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(AUDITKIT + list(args), capture_output=True, text=True, cwd=cwd, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_cli_grants_racks_and_lists_them(tmp_path: Path):
    journal = str(tmp_path / "gateway.db")
    config = tmp_path / "gateway.toml"
    config.write_text(f'name = "{SOURCE}"\njournal = "{journal}"\n'
                      f'[racks."{STAGING}"]\nurl = "https://staging.example"\npassword = "x"\n'
                      f'[racks."{PROD}"]\nurl = "https://prod.example"\npassword = "y"\n')
    added = _cli("gateway", "users", "add", "bob@example.com", "--role", "member", "--rack", STAGING,
                 "--rack", "acme/qa", "--rack", STAGING, "--config", str(config), cwd=tmp_path)
    assert "warning: rack 'acme/qa' is not in this gateway's config" in added.stderr
    bob_key = added.stdout.splitlines()[-1]
    _cli("gateway", "users", "add", "eve@example.com", "--role", "admin", "--journal", journal, cwd=tmp_path)
    ci = _cli("gateway", "keys", "add", "ci", "--rack", PROD, "--journal", journal, cwd=tmp_path)
    auditor = _cli("gateway", "users", "add", "aud@example.com", "--role", "auditor", "--rack", PROD,
                   "--journal", journal, cwd=tmp_path, check=False)
    assert auditor.returncode == 2 and "an auditor may not use racks" in auditor.stderr
    _cli("gateway", "users", "add", "aud@example.com", "--role", "auditor", "--journal", journal, cwd=tmp_path)

    users = {line.split()[0]: line for line in
             _cli("gateway", "users", "list", "--journal", journal, cwd=tmp_path).stdout.splitlines()[1:]}
    assert f"acme/qa, {STAGING}" in users["bob@example.com"]
    assert "all racks" in users["eve@example.com"] and "none (auditor)" in users["aud@example.com"]
    deploy = _cli("gateway", "keys", "list", "--journal", journal, cwd=tmp_path).stdout
    assert "ci" in deploy and PROD in deploy and "bob@example.com" not in deploy

    conn = store.open_db(journal)
    assert keys.authenticate(conn, bob_key).racks == ("acme/qa", STAGING)
    assert keys.authenticate(conn, ci.stdout.splitlines()[-1]).racks == (PROD,)
    rows = [json.loads(r) for r in
            _cli("events", "--db", journal, "--format", "jsonl", cwd=tmp_path).stdout.splitlines()]
    granted = {r["details"]["name"]: r["details"]["racks"] for r in rows if r["action"] == "created"}
    assert granted == {"bob@example.com": ["acme/qa", STAGING], "eve@example.com": "all", "ci": [PROD],
                       "aud@example.com": "all"}
    conn.close()


def test_keys_made_before_grants_keep_every_rack(tmp_path: Path):
    path = tmp_path / "old.db"
    old = store.open_db(path, migrate_to=4)
    key = keys.KEY_PREFIX + "old-key-" + os.urandom(8).hex()
    old.execute("INSERT INTO gateway_keys(id, name, kind, role, key_hash, created_at) VALUES (?,?,?,?,?,?)",
                ("key_old", "old@example.com", "user", "member", keys.key_hash(key), now_timestamp()))
    old.close()
    conn = store.open_db(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    keys_file = tmp_path / "old-keys.json"
    assert keys.migrate_from_journal(conn, keys_file) == (1, 0)  # `auditkit gateway keys migrate`
    principal = keys.authenticate(conn, key)
    assert principal.racks is None and principal.may_use_rack(PROD)
    assert keys.list_keys(conn)[0]["racks"] is None
    # A grants value that is not a list of names grants nothing rather than everything.
    keys.update(keys_file, lambda rows: rows[0].update(racks="garbage"))
    assert keys.authenticate(conn, key).racks == () and not keys.authenticate(conn, key).may_use_rack(PROD)
    conn.close()


# --- 7. Console mode as the Convox CLI drives it --------------------------------------------------------------------

def test_convox_login_racks_and_switch_against_the_gateway(world: World):
    """`convox login GATEWAY -t KEY`, `convox racks`, `convox switch acme/staging`, then a command, exactly as the
    CLI sends them (convox/convox pkg/cli/login.go, sdk/auth.go): no Rack header until the switch, the token url.QueryEscape'd."""
    ip = new_ip()
    mark = world.journal.head()
    before = len(world.received)
    headers = {**CLI_HEADERS, "Authorization": cli_login_header(world.keys[STAGER]), "X-Forwarded-For": ip}
    with httpx.Client(base_url=world.url, headers=headers) as cli:
        login = cli.get("/auth")  # convox login
        assert login.status_code == 200 and login.json() == {"id": world.key_ids[STAGER]}
        listed = cli.get("/racks")  # convox racks / convox switch
        assert listed.status_code == 200
        assert listed.json() == [{"name": "staging", "organization": {"name": "acme"}, "provider": "convox",
                                  "status": "running"}]
        chosen = [f"{r['organization']['name']}/{r['name']}" for r in listed.json()]
        assert chosen == [STAGING]
        # After `convox switch acme/staging` every request carries the Rack header.
        restart = cli.post("/apps/web/services/web/restart", headers={"Rack": chosen[0]})
        assert restart.status_code == 200
        refused = cli.post("/apps/web/services/web/restart", headers={"Rack": PROD})
        assert refused.status_code == 403
    assert [(r.method, r.path) for r in world.received[before:]] == [("POST", "/apps/web/services/web/restart")]
    events = [e for e in world.journal.since(mark) if e["source_ip"] == ip]
    assert [(e["rack"], e["action"], e["outcome"]) for e in events] == [
        (STAGING, "restarted", "succeeded"), (PROD, "restarted", "denied")]  # /auth and /racks: not journaled


def test_console_racks_lists_what_each_key_may_use(world: World):
    ip = new_ip()

    def racks_of(who: str) -> list[dict[str, Any]]:
        response = raw(world.url, "GET", "/racks", ip, cli_login_header(world.keys[who]))
        assert response.status_code == 200
        return response.json()

    everything = [{"name": "production", "organization": {"name": "acme"}, "provider": "convox", "status": "running"},
                  {"name": "staging", "organization": {"name": "acme"}, "provider": "convox", "status": "running"},
                  {"name": SANDBOX, "organization": {"name": SOURCE}, "provider": "convox", "status": "running"}]
    assert racks_of(ALICE) == racks_of(ADMIN) == everything
    assert [f"{r['organization']['name']}/{r['name']}" for r in racks_of(CI)] == [STAGING, f"{SOURCE}/{SANDBOX}"]
    assert racks_of(AUDREY) == []  # an auditor may not use racks …
    auth = raw(world.url, "GET", "/auth", ip, cli_login_header(world.keys[AUDREY]))
    assert auth.status_code == 200 and auth.json() == {"id": world.key_ids[AUDREY]}  # … but may log in
    # A rack listed under the chain's name is reached by that name.
    with RackClient(world.url, "convox", world.keys[CI], rack_header=f"{SOURCE}/{SANDBOX}") as console:
        console.http.headers["X-Forwarded-For"] = ip
        assert console.request("POST", "/apps/search/cancel").status_code == 200
    (event,) = world.journal.wait_from(ip)
    assert (event["rack"], event["actor"], event["description"]) == (SANDBOX, CI, "Cancelled deployment of app search")


def test_console_login_with_a_bad_key_is_refused_and_journaled(world: World):
    ip = new_ip()
    for token in ("akg_" + "B" * 43, "not a key at all", ""):
        for path in ("/auth", "/racks"):
            response = raw(world.url, "GET", path, ip, cli_login_header(token))
            assert response.status_code == 401 and response.json() == {"error": "invalid authentication"}
    assert raw(world.url, "GET", "/auth", ip, None).status_code == 401
    (event,) = world.journal.wait_from(ip)
    assert (event["category"], event["action"], event["status"], event["path"]) == ("Access", "denied", 401, "/auth")
    assert event["details"]["count"] == 7


def test_auth_and_racks_with_a_rack_named_are_forwarded_to_that_rack(world: World):
    """With a Rack header or a direct-mode username, /auth and /racks are the rack's (the v3 SDK's throw-away
    `GET /racks` before a websocket in direct mode); they are reads, not journaled."""
    ip = new_ip()
    mark = world.journal.head()
    before = len(world.received)
    direct = raw(world.url, "GET", "/auth", ip, basic(PROD, world.keys[ALICE]))
    assert direct.status_code == 200
    probe = raw(world.url, "GET", "/racks", ip, basic(PROD, world.keys[ALICE]))
    header = raw(world.url, "GET", "/auth", ip, basic("convox", world.keys[ALICE]), headers={"Rack": STAGING})
    assert header.status_code == 200
    sent = world.received[before:]
    assert [(r.method, r.path, r.headers.get("convox-actor")) for r in sent] == [
        ("GET", "/auth", ALICE), ("GET", "/racks", ALICE), ("GET", "/auth", ALICE)]
    # The rack's own answer to /racks went back as it was.
    assert probe.status_code == httpx.get(world.rack_url + "/racks", auth=("convox", RACK_PW)).status_code
    before += 1  # (that direct request)
    # Not granted: refused like any request to that rack.
    assert raw(world.url, "GET", "/auth", ip, basic(PROD, world.keys[STAGER])).status_code == 403
    assert raw(world.url, "GET", "/auth", ip, basic(PROD, world.keys[AUDREY])).status_code == 403
    assert len(world.received) == before + 3
    assert [e for e in world.journal.since(mark) if e["source_ip"] == ip and e["outcome"] != "denied"] == []
