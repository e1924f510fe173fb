"""Who may get in: per-rack grants of gateway keys — stored with the key (store v5), given by
`auditkit gateway users/keys add --rack`, shown by `… list`, recorded in the key's creation event.

Real uvicorn servers on 127.0.0.1 (the simulated rack behind the gateway), real HTTP, a real SQLite journal. The
gateway trusts X-Forwarded-For from loopback, so each test speaks from addresses of its own and reads only the
events of those addresses.
"""

from __future__ import annotations

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
from typing import Any, Callable, Iterator

import httpx
import pytest

from auditkit import store
from auditkit.demo import rack as rack_mod
from auditkit.demo.client import RackClient
from auditkit.demo.servers import ServerThread
from auditkit.events import now_timestamp
from auditkit.gateway import config as cfg
from auditkit.gateway import keys
from auditkit.gateway.app import create_app
from auditkit.gateway.journal import journal_source

PROD, STAGING, SANDBOX = "acme/production", "acme/staging", "sandbox"  # sandbox: a configured name without "/"
SOURCE = "gw"  # the chain name: sandbox is listed as organization "gw"
RACK_PW = "rackPW-access-" + os.urandom(6).hex()
ALICE, STAGER, AUDREY, ADMIN, CI = ("alice@example.com", "stan@example.com", "audrey@example.com",
                                    "root@example.com", "ci-staging")
WINDOW = 1.0  # seconds: the test gateway's refusal window
AUDITKIT = [sys.executable, "-m", "auditkit.cli"]
CLI_HEADERS = {"User-Agent": "convox.go/dev", "Version": "dev", "Accept": "*/*"}  # reference §3, CLI from source

_addresses = itertools.count(1)


def new_ip() -> str:
    """A source address no other test uses (sent as X-Forwarded-For, trusted from loopback)."""
    n = next(_addresses)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


def basic(username: str, password: str, *, escape: Callable[[str], str] = lambda p: urllib.parse.quote(p, safe="")
          ) -> str:
    return "Basic " + base64.b64encode(f"{username}:{escape(password)}".encode()).decode()


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
        config = gateway_config(d, rack_server.url)
        issued, ids = make_keys(config.journal)
        with ServerThread(create_app(config), proxy_headers=False) as gateway:
            yield World(d, gateway.url, rack_server.url, config, rack_app, JournalView(config.journal), issued, ids)


def raw(url: str, method: str, path: str, ip: str, authorization: str | bytes | None = None,
        **kw: Any) -> httpx.Response:
    headers: dict[str, Any] = {**CLI_HEADERS, "X-Forwarded-For": ip, **kw.pop("headers", {})}
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.request(method, url + path, headers=headers, **kw)


# --- 6. per-rack grants ---------------------------------------------------------------------------------------------

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
    principal = keys.authenticate(conn, key)
    assert principal.racks is None and principal.may_use_rack(PROD)
    assert keys.list_keys(conn)[0]["racks"] is None
    # A grants value that is not a list of names grants nothing rather than everything.
    conn.execute("UPDATE gateway_keys SET racks = 'garbage' WHERE id = 'key_old'")
    assert keys.authenticate(conn, key).racks == () and not keys.authenticate(conn, key).may_use_rack(PROD)
    conn.close()
