"""`auditkit verify` on a mirror synced from a real gateway over HTTPS (pinned as `sync add` pins it), and
`auditkit verify --online`, which fetches each source's live checkpoint through the same Feed: up to date, behind
(said, with how far), a truncated mirror, and a rewritten chain re-signed under a key the attacker pinned in the
mirror (which only the live checkpoint, or a key known from outside, can catch); and a gateway that forks or rolls
back after the mirror synced (a signed feed served from a second store under the gateway's key)."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from auditkit import store
from auditkit.cli import main
from auditkit.model import merkle, note
from auditkit.model import events as ev
from auditkit.mirror import trust
from auditkit.mirror.sync import Feed, add_source, sync_once
from feeds import SignedFeed, append_to, journal_with, serve_journal


@pytest.fixture
def synced(tmp_path):
    """A gateway 'gw' over HTTPS with 120 events (and its auditor key's), and a mirror with it added (fingerprint pinned) and synced."""
    journal = tmp_path / "gw.db"
    auditor = journal_with(journal, "gw", 120)
    server = serve_journal(journal, "gw", tmp_path, tls=True)
    key_file = tmp_path / "auditor.key"
    key_file.write_text(auditor)
    db = tmp_path / "data" / "audit.db"
    runner = CliRunner()
    added = runner.invoke(main, ["sync", "add", "gw", server.url, "--key-file", str(key_file),
                                 "--fingerprint", server.fingerprint, "--db", str(db)])
    assert added.exit_code == 0, added.output
    ran = runner.invoke(main, ["sync", "--db", str(db)])
    assert ran.exit_code == 0, ran.output
    conn = store.open_db(journal)
    size = store.tree_size(conn, "gw")  # the 120 events and the auditor key's creation
    conn.close()
    yield {"db": db, "journal": journal, "server": server, "runner": runner, "size": size}
    server.stop()


def _verify(synced, *args: str):
    return synced["runner"].invoke(main, ["verify", "--db", str(synced["db"]), *args])


def _attacker(path) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None)
    for table in ("events", "merkle_nodes", "checkpoints"):
        for op in ("update", "delete"):
            raw.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    return raw


def test_a_mirror_synced_from_a_real_gateway_verifies_offline_and_online(synced):
    offline = _verify(synced)
    assert offline.exit_code == 0, offline.output
    size = synced["size"]
    assert f"gw: seq {size}" in offline.output and f"signed at size {size} by gw+" in offline.output
    online = _verify(synced, "--online")
    assert online.exit_code == 0, online.output
    assert f"gw: up to date with its gateway's live checkpoint (size {size}" in online.output


def test_online_says_how_far_behind_the_mirror_is(synced):
    conn = store.open_db(synced["journal"])
    append_to(conn, "gw", 7, start_minute=500)
    conn.close()
    online = _verify(synced, "--online")
    assert online.exit_code == 0, online.output  # behind is not tampering, but it is said
    size = synced["size"]
    assert f"gw: the mirror is 7 event(s) behind its gateway (seq {size} of {size + 7}" in online.output
    assert synced["runner"].invoke(main, ["sync", "--db", str(synced["db"])]).exit_code == 0
    assert "up to date" in _verify(synced, "--online").output


def test_a_truncated_mirror_is_reported_offline_and_online(synced):
    raw = _attacker(synced["db"])
    raw.execute("DELETE FROM events WHERE source = 'gw' AND source_seq > 100")
    raw.execute("DELETE FROM merkle_nodes WHERE source = 'gw' AND ((idx + 1) << level) > 100")
    head = raw.execute("SELECT hash FROM events WHERE source = 'gw' AND source_seq = 100").fetchone()[0]
    raw.execute("UPDATE sync_state SET last_seq = 100, last_hash = ? WHERE source = 'gw'", (head,))
    raw.close()
    offline = _verify(synced)
    assert offline.exit_code == 1
    size = synced["size"]
    assert f"truncated: gw: a signed checkpoint covers {size} events" in offline.output
    online = _verify(synced, "--online")
    assert online.exit_code == 1 and "truncated: gw:" in online.output
    assert f"the mirror is {size - 100} event(s) behind its gateway (seq 100 of {size}" in online.output


def test_a_chain_rewritten_and_resigned_under_a_pinned_forged_key_is_caught_online(synced, tmp_path):
    db = synced["db"]
    conn = store.open_db(db)
    real_key = conn.execute("SELECT checkpoint_key FROM sync_state WHERE source = 'gw'").fetchone()[0]
    conn.close()
    # The attacker rewrites event 5, re-hashes the rest and the tree, drops the real checkpoints, pins a key of
    # their own and signs the rewritten tree with it: everything in the file is consistent.
    raw = _attacker(db)
    raw.row_factory = sqlite3.Row
    raw.execute("UPDATE events SET description = 'Viewed app web' WHERE source = 'gw' AND source_seq = 5")
    prev = raw.execute("SELECT hash FROM events WHERE source = 'gw' AND source_seq = 4").fetchone()[0]
    for row in [dict(r) for r in raw.execute("SELECT * FROM events WHERE source = 'gw' AND source_seq >= 5 "
                                             "ORDER BY source_seq")]:
        row["prev_hash"] = prev
        body = {k: row[k] for k in ev.HASHED_FIELDS}
        body["details"] = json.loads(body["details"])
        row["hash"] = ev.chain_hash(prev, ev.canonical_json(body))
        raw.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE n = ?", (prev, row["hash"], row["n"]))
        prev = row["hash"]
    raw.execute("UPDATE sync_state SET last_hash = ? WHERE source = 'gw'", (prev,))
    raw.execute("DELETE FROM merkle_nodes WHERE source = 'gw'")
    edge = merkle.CompactRange()
    for (digest,) in raw.execute("SELECT hash FROM events WHERE source = 'gw' ORDER BY source_seq").fetchall():
        for level, index, value in edge.append(merkle.leaf_hash(bytes.fromhex(digest))):
            if level:
                raw.execute("INSERT INTO merkle_nodes VALUES ('gw', ?, ?, ?)", (level, index, value))
    raw.execute("DELETE FROM checkpoints WHERE source = 'gw'")
    forger = note.generate_signer("gw")
    raw.execute("UPDATE sync_state SET checkpoint_key = ? WHERE source = 'gw'", (str(forger.verifier),))
    raw.close()
    conn = store.open_db(db)
    with store.transaction(conn):
        store.add_checkpoint(conn, "gw", store.sign_checkpoint(conn, "gw", forger), str(forger.verifier))
    conn.close()
    offline = _verify(synced)
    assert offline.exit_code == 0, offline.output  # offline, a file rewritten in full under a pinned forged key looks whole
    assert str(forger.verifier) in offline.output  # … but it names the key, for whoever knows the real one
    online = _verify(synced, "--online")
    assert online.exit_code == 1
    assert "live: gw: its live checkpoint:" in online.output and "pinned key" in online.output
    outside = _verify(synced, "--key", real_key)
    assert outside.exit_code == 1 and "checkpoint: gw:" in outside.output and real_key in outside.output


@pytest.mark.parametrize("served,message", [("fork", "a forked history"), ("rollback", "rolled back")])
def test_a_gateway_that_forks_or_rolls_back_after_the_sync_is_reported_online(tmp_path, served, message):
    """A mirror synced from journal `a` (31 events); then its gateway serves, under the same key, a fork of it (the
    first 21 events, then others) or `a` cut at 25."""
    a = tmp_path / "a.db"
    journal_with(a, "gw", 20)
    shutil.copy(a, tmp_path / "fork.db")
    conn = store.open_db(tmp_path / "fork.db")
    append_to(conn, "gw", 20, start_minute=500, actor="mallory")
    conn.close()
    conn = store.open_db(a)
    append_to(conn, "gw", 4, start_minute=100)
    conn.close()
    shutil.copy(a, tmp_path / "rollback.db")
    conn = store.open_db(a)
    append_to(conn, "gw", 6, start_minute=200)
    conn.close()
    signer = note.generate_signer("gw")
    feeds = {name: SignedFeed(tmp_path / f"{name}.db", "gw", signer) for name in ("a", served)}
    try:
        db = tmp_path / "audit.db"
        conn = store.open_db(db)
        add_source(conn, "gw", feeds["a"].url, "any-key", tmp_path)
        assert sync_once(conn, Feed("gw", feeds["a"].url, "any-key", trust.load(conn, "gw"))).synced == 31
        store.set_source_url(conn, "gw", feeds[served].url)  # the same gateway, as far as the mirror can tell
        conn.close()
        runner = CliRunner()
        assert runner.invoke(main, ["verify", "--db", str(db)]).exit_code == 0  # offline, nothing to see
        online = runner.invoke(main, ["verify", "--db", str(db), "--online"])
        assert online.exit_code == 1
        assert f"forked: gw: {message}" in online.output.replace("the gateway rolled back", "rolled back")
        assert "nothing was committed" not in online.output  # verify writes nothing, and says nothing of commits
    finally:
        for feed in feeds.values():
            feed.stop()
