"""The feed's trust endpoints against a real gateway: its signed checkpoint verifies with the key `auditkit gateway
key` prints and names the tree of exactly the events the feed serves; every inclusion and consistency proof it
serves verifies with the RFC 9162 checks, and a proof of a tree it does not hold is refused."""

from __future__ import annotations

import base64
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from auditkit import store
from auditkit.capture import config as cfg
from auditkit.capture import keys
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.model import merkle, note
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread

RACK, SOURCE = "acme/production", "gw-proofs"
RACK_PW = "rackPW-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("proofs")
    rack_server = ServerThread(rack_mod.create_app(RACK_PW, rack_name=RACK, seed=3)).start()
    config = cfg.load(None, racks=[cfg.parse_rack_flag(f"{RACK}=http://convox:{RACK_PW}@127.0.0.1:{rack_server.port}")],
                      journal=d / "journal.db", data_dir=d, name=SOURCE, http=True)
    conn = store.open_db(config.journal)
    source = journal_source(conn, SOURCE)
    issued = {role: keys.add(conn, f"{role}@example.com", kind="user", role=role, source=source)[1]
              for role in ("admin", "auditor", "member")}
    conn.close()
    server = ServerThread(create_app(config), proxy_headers=False).start()
    with RackClient(server.url, RACK, issued["member"]) as client:
        for i in range(13):
            client.apps_create(f"app{i}")
    yield {"url": server.url, "keys": issued, "config": config, "dir": d}
    server.stop()
    rack_server.stop()


def _get(gw: dict[str, Any], path: str, who: str = "auditor", **params: Any) -> httpx.Response:
    return httpx.get(gw["url"] + path, params=params, auth=(SOURCE, gw["keys"][who]), timeout=30)


def _leaves(gw: dict[str, Any]) -> list[bytes]:
    events = _get(gw, "/audit/v1/events", after=0, limit=5000).json()["events"]
    return [merkle.leaf_hash(bytes.fromhex(e["hash"])) for e in events]


def _verifier(gw: dict[str, Any]) -> note.Verifier:
    printed = subprocess.run([sys.executable, "-m", "auditkit.cli", "gateway", "key", "--journal",
                              str(gw["config"].journal), "--data-dir", str(gw["dir"])],
                             capture_output=True, text=True, check=True).stdout.strip()
    return note.Verifier.parse(printed)


def test_the_checkpoint_is_signed_by_the_printed_key_and_names_the_feeds_tree(gw):
    verifier = _verifier(gw)
    assert verifier.name == SOURCE
    assert _get(gw, "/audit/v1/key").text == f"{verifier}\n"
    response = _get(gw, "/audit/v1/checkpoint")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text, signers = note.open_note(response.text, verifier)
    checkpoint = note.parse_checkpoint(text)
    leaves = _leaves(gw)
    assert checkpoint.origin == SOURCE and checkpoint.size == len(leaves) >= 13
    assert checkpoint.root == merkle.root(merkle.nodes_of(leaves), len(leaves))
    assert checkpoint.extensions[0].startswith("timestamp 20") and checkpoint.extensions[0].endswith("Z")
    # another key does not open it
    with pytest.raises(note.NoteError):
        note.open_note(response.text, note.generate_signer(SOURCE).verifier)


def test_the_signing_key_lives_beside_the_journal_and_only_its_owner_reads_it(gw):
    path = gw["config"].checkpoint_key_path
    assert path.parent == gw["dir"] and path.name == f"{SOURCE}-checkpoint.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().startswith(f"PRIVATE+KEY+{SOURCE}+")


def test_every_inclusion_and_consistency_proof_verifies(gw):
    leaves = _leaves(gw)
    size = len(leaves)
    reference = merkle.nodes_of(leaves)
    for at in (1, 2, 7, size):
        for seq in range(1, at + 1):
            body = _get(gw, "/audit/v1/proof/inclusion", seq=seq, size=at).json()
            assert (body["leaf_index"], body["tree_size"]) == (seq - 1, at)
            proof = [base64.b64decode(h) for h in body["hashes"]]
            merkle.verify_inclusion(seq - 1, at, leaves[seq - 1], proof, merkle.root(reference, at))
    for old in range(0, size + 1):
        body = _get(gw, "/audit/v1/proof/consistency", **{"from": old, "to": size}).json()
        proof = [base64.b64decode(h) for h in body["hashes"]]
        merkle.verify_consistency(old, size, merkle.root(reference, old), merkle.root(reference, size), proof)
        if 0 < old < size:
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(old, size, merkle.root(reference, old), bytes(32), proof)


@pytest.mark.parametrize("path,params,message", [
    ("/audit/v1/proof/inclusion", {"seq": 1, "size": 10**6}, "size must be between"),
    ("/audit/v1/proof/inclusion", {"seq": 0, "size": 3}, "seq must be between"),
    ("/audit/v1/proof/inclusion", {"seq": 5, "size": 3}, "seq must be between"),
    ("/audit/v1/proof/inclusion", {"size": 3}, "seq is required"),
    ("/audit/v1/proof/consistency", {"from": 4, "to": 3}, "from must be between"),
    ("/audit/v1/proof/consistency", {"to": 3}, "from is required"),
    ("/audit/v1/proof/consistency", {"from": "x", "to": 3}, "must be an integer"),
])
def test_a_proof_that_cannot_exist_is_refused_with_its_reason(gw, path, params, message):
    response = _get(gw, path, **params)
    assert response.status_code == 400 and message in response.json()["error"]


def test_the_trust_endpoints_need_a_feed_reader(gw):
    for path, params in (("/audit/v1/checkpoint", {}), ("/audit/v1/key", {}),
                         ("/audit/v1/proof/consistency", {"from": 0, "to": 1})):
        assert httpx.get(gw["url"] + path, params=params).status_code == 401
        assert _get(gw, path, who="member", **params).status_code == 403
        assert _get(gw, path, who="admin", **params).status_code == 200


def test_gateway_key_on_a_journal_that_never_served_says_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "auditkit.cli", "gateway", "key", "--journal",
                             str(tmp_path / "none.db")], capture_output=True, text=True)
    assert result.returncode != 0 and "no checkpoint key at" in result.stderr
    assert not Path(tmp_path / "gateway-checkpoint.key").exists()
