"""The keys file every replica reads (issue 14, point 1): two gateways on their own journals and chains share one
keys file; a key added or revoked with `auditkit gateway … --keys FILE` works or stops working on both within a
second, over real HTTP; the file holds only hashes, mode 0600; a file others may read, or one that is not a keys
file, lets nobody in; an older journal's keys move into it with `auditkit gateway keys migrate`, and a gateway on
such a journal refuses to start until they have.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from auditkit import store
from auditkit.capture import config as cfg
from auditkit.capture import keys
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.model.events import now_timestamp
from convox_sim import rack as rack_mod
from convox_sim.servers import ServerThread

RACK = "acme/production"
RACK_PW = "rackPW-" + secrets.token_hex(12)
AUDITKIT = [sys.executable, "-m", "auditkit.cli"]


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(AUDITKIT + list(args), capture_output=True, text=True, cwd=cwd, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    if check:
        assert result.returncode == 0, result.stderr
    return result


ATTEMPTS: list[int] = []  # how many checks the last eventually() made


def eventually(what: str, check: Callable[[], Any], within: float) -> float:
    """Seconds until check() is true; fails after `within`."""
    started = time.monotonic()
    ATTEMPTS[:] = [1]
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.02)
        ATTEMPTS[0] += 1
    return time.monotonic() - started


@pytest.fixture(scope="module")
def rack() -> Iterator[ServerThread]:
    server = ServerThread(rack_mod.create_app(RACK_PW, rack_name=RACK, seed=5)).start()
    yield server
    server.stop()


def replica(d: Path, name: str, rack: ServerThread, keys_file: Path) -> ServerThread:
    config = cfg.load(None, racks=[cfg.parse_rack_flag(f"{RACK}=http://convox:{RACK_PW}@127.0.0.1:{rack.port}")],
                      journal=d / f"{name}.db", name=name, http=True, keys_file=keys_file)
    return ServerThread(create_app(config)).start()


def status(server: ServerThread, key: str) -> int:
    return httpx.post(f"{server.url}/apps/web/services/web/restart", auth=(RACK, key), timeout=10).status_code


def test_two_replicas_share_one_keys_file_and_see_new_and_revoked_keys_within_a_second(rack, tmp_path):
    shared = tmp_path / "shared" / "keys.json"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    journal_a = tmp_path / "a" / "gw-a.db"
    # The journal's chain is fixed by the first writer: name it gw-a before `users add` writes its Access event.
    conn = store.open_db(journal_a)
    journal_source(conn, "gw-a")
    conn.close()
    added = cli("gateway", "users", "add", "alice@example.com", "--role", "member", "--journal", str(journal_a),
                "--keys", str(shared), cwd=tmp_path)
    alice = added.stdout.splitlines()[-1]
    a = replica(tmp_path / "a", "gw-a", rack, shared)
    b = replica(tmp_path / "b", "gw-b", rack, shared)
    try:
        assert status(a, alice) == 200 and status(b, alice) == 200
        # A key made while both run works on both at once, though neither journal holds it.
        bob = cli("gateway", "keys", "add", "ci-bot", "--journal", str(journal_a), "--keys", str(shared),
                  cwd=tmp_path).stdout.splitlines()[-1]
        assert eventually("the new key works on both", lambda: status(a, bob) == 200 and status(b, bob) == 200,
                          1.0) < 1.0
        cli("gateway", "users", "revoke", "alice@example.com", "--journal", str(journal_a), "--keys", str(shared),
            cwd=tmp_path)
        took = eventually("the revoked key is refused on both", lambda: status(a, alice) == 401
                          and status(b, alice) == 401, 1.0)
        print(f"\nkeys file: revocation refused on both replicas {took * 1000:.0f} ms after `users revoke` returned "
              f"(at check {ATTEMPTS[0]}; one check is a write through each replica)")
        assert took < 1.0
        assert status(b, bob) == 200
    finally:
        a.stop()
        b.stop()
    text = shared.read_text()
    assert shared.stat().st_mode & 0o777 == 0o600
    assert alice not in text and bob not in text and keys.key_hash(alice) in text
    # Both chains, each its own; the Access events of the key changes are on the chain of the journal given.
    conn = store.open_db(journal_a)
    actions = [r[0] for r in conn.execute("SELECT action FROM events WHERE category = 'Access' ORDER BY source_seq")]
    assert actions[:3] == ["created", "created", "revoked"]
    listed = cli("gateway", "users", "list", "--journal", str(tmp_path / "b" / "gw-b.db"), "--keys", str(shared),
                 cwd=tmp_path).stdout
    assert "alice@example.com" in listed


def test_a_keys_file_others_may_read_or_that_is_not_a_keys_file_lets_nobody_in(rack, tmp_path):
    shared = tmp_path / "keys.json"
    journal = tmp_path / "gw.db"
    conn = store.open_db(journal)
    _, key = keys.add(conn, "alice@example.com", kind="user", role="member", source=journal_source(conn, "gw"),
                      keys_path=shared)
    conn.close()
    server = replica(tmp_path, "gw", rack, shared)
    try:
        assert status(server, key) == 200
        os.chmod(shared, 0o644)
        assert eventually("a world-readable keys file is refused", lambda: status(server, key) == 401, 1.0) < 1.0
        os.chmod(shared, 0o600)
        assert eventually("fixed again", lambda: status(server, key) == 200, 1.0) < 1.0
        good = shared.read_bytes()
        shared.write_text('{"format": "something else", "keys": []}')
        os.chmod(shared, 0o600)
        assert eventually("not a keys file", lambda: status(server, key) == 401, 1.0) < 1.0
        shared.write_bytes(good)
        assert eventually("back", lambda: status(server, key) == 200, 1.0) < 1.0
    finally:
        server.stop()
    os.chmod(shared, 0o640)
    refused = cli("gateway", "serve", "--rack", f"{RACK}=http://convox:{RACK_PW}@127.0.0.1:{rack.port}", "--journal",
                  str(journal), "--http", "--listen", "127.0.0.1:1", "--keys", str(shared), cwd=tmp_path, check=False)
    assert refused.returncode == 2 and f"chmod 600 {shared}" in refused.stderr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.one_of(st.binary(max_size=200), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8).map(lambda v: __import__("json").dumps({"format": keys.FORMAT, "keys": v}).encode())))
def test_a_hostile_keys_file_authenticates_nobody_and_never_crashes(tmp_path_factory, garbage):
    d = tmp_path_factory.mktemp("hostile")
    path = d / "keys.json"
    path.write_bytes(garbage)
    os.chmod(path, 0o600)
    found = keys.KeyStore(path)
    assert keys.authenticate(found, keys.KEY_PREFIX + "x" * 43) is None
    assert keys.diagnose(found, "Basic " + __import__("base64").b64encode(b"r:akg_" + b"y" * 43).decode())[1] is None


def test_an_older_journals_keys_migrate_with_one_command_and_serve_waits_for_it(rack, tmp_path):
    journal = tmp_path / "old.db"
    old = store.open_db(journal, migrate_to=5)
    journal_source(old, "gw")
    key = keys.KEY_PREFIX + secrets.token_urlsafe(32)
    gone = keys.KEY_PREFIX + secrets.token_urlsafe(32)
    old.executemany("INSERT INTO gateway_keys(id, name, kind, role, key_hash, created_at, revoked_at, racks) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    [("key_a", "alice@example.com", "user", "member", keys.key_hash(key), now_timestamp(), None,
                      f'["{RACK}"]'),
                     ("key_b", "bob@example.com", "user", "member", keys.key_hash(gone), now_timestamp(),
                      now_timestamp(), None)])
    old.commit()
    old.close()
    serve = ["gateway", "serve", "--rack", f"{RACK}=http://convox:{RACK_PW}@127.0.0.1:{rack.port}", "--journal",
             str(journal), "--http", "--listen", "127.0.0.1:1"]
    refused = cli(*serve, cwd=tmp_path, check=False)
    assert refused.returncode == 2
    assert f"auditkit gateway keys migrate --journal {journal} --keys {tmp_path / 'old-keys.json'}" \
        in refused.stderr
    moved = cli("gateway", "keys", "migrate", "--journal", str(journal), cwd=tmp_path)
    assert "copied 2 key(s)" in moved.stdout
    assert "copied 0 key(s)" in cli("gateway", "keys", "migrate", "--journal", str(journal), cwd=tmp_path).stdout
    server = replica(tmp_path, "gw", rack, tmp_path / "old-keys.json")
    try:
        assert status(server, key) == 200  # its grant came along
        assert status(server, gone) == 401  # and so did the revocation
    finally:
        server.stop()
    assert keys.list_keys(tmp_path / "old-keys.json")[0]["racks"] == [RACK]


def test_concurrent_key_commands_lose_no_key(tmp_path):
    """Writers take the folder's lock for their read-modify-write: six `keys add` at once leave six keys."""
    shared = tmp_path / "keys" / "gateway-keys.json"
    journal = tmp_path / "gw.db"
    conn = store.open_db(journal)
    journal_source(conn, "gw")
    conn.close()
    procs = [subprocess.Popen(AUDITKIT + ["gateway", "keys", "add", f"ci-{i}", "--journal", str(journal), "--keys",
                                          str(shared)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path) for i in range(6)]
    issued = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        issued.append(out.splitlines()[-1])
    rows = keys.read_rows(shared)
    assert sorted(r["name"] for r in rows) == [f"ci-{i}" for i in range(6)]
    found = keys.KeyStore(shared)
    assert all(keys.authenticate(found, key) is not None for key in issued)
    conn = store.open_db(journal)
    assert conn.execute("SELECT count(*) FROM events WHERE action = 'created'").fetchone()[0] == 6
