"""Every chain is a Merkle log kept as it grows: whatever batches it was appended in, the stored tree's heads and
proofs are those of RFC 6962 over its events, and verify with the model's checks."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from auditkit import store
from auditkit.errors import StoreError
from auditkit.model import merkle, note

from helpers import draft


def _leaves(conn: sqlite3.Connection, source: str) -> list[bytes]:
    rows = conn.execute("SELECT hash FROM events WHERE source = ? ORDER BY source_seq", (source,))
    return [merkle.leaf_hash(bytes.fromhex(r[0])) for r in rows]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(1, 40), min_size=1, max_size=6), data=st.data())
def test_the_stored_tree_is_rfc6962_over_the_events_whatever_the_batches(tmp_path_factory, batches, data):
    conn = store.open_db(tmp_path_factory.mktemp("t") / "m.db")
    for batch in batches:
        store.append(conn, [draft() for _ in range(batch)])
    leaves = _leaves(conn, "local")
    size = len(leaves)
    reference = merkle.nodes_of(leaves)
    assert store.tree_size(conn, "local") == size
    assert store.tree_root(conn, "local") == merkle.root(reference, size)
    seq = data.draw(st.integers(1, size))
    at = data.draw(st.integers(seq, size))
    old = data.draw(st.integers(0, at))
    proof = store.inclusion_proof(conn, "local", seq, at)
    merkle.verify_inclusion(seq - 1, at, leaves[seq - 1], proof, merkle.root(reference, at))
    consistency = store.consistency_proof(conn, "local", old, at)
    merkle.verify_consistency(old, at, merkle.root(reference, old), merkle.root(reference, at), consistency)
    edge = store.compact_range(conn, "local", at)
    assert edge.root() == merkle.root(reference, at)
    conn.close()


def test_sealed_batches_from_a_feed_and_the_synthetic_workers_extend_the_tree(tmp_path):
    journal = store.open_db(tmp_path / "journal.db")
    sealed = store.append(journal, [draft() for _ in range(37)], source="gw")
    mirror = store.open_db(tmp_path / "mirror.db")
    store.append_sealed(mirror, sealed[:20])
    store.append_sealed(mirror, sealed[20:])
    assert store.tree_root(mirror, "gw") == store.tree_root(journal, "gw")
    assert store.consistency_proof(mirror, "gw", 5, 37) == store.consistency_proof(journal, "gw", 5, 37)


def test_a_missing_node_is_an_error_not_a_wrong_root(tmp_path):
    conn = store.open_db(tmp_path / "m.db")
    store.append(conn, [draft() for _ in range(8)])
    conn.execute("DROP TRIGGER merkle_nodes_no_delete")
    conn.execute("DELETE FROM merkle_nodes WHERE level = 3")
    with pytest.raises(StoreError, match="no node at level 3"):
        store.tree_root(conn, "local")


def test_proofs_for_trees_the_chain_does_not_hold_are_refused(tmp_path):
    conn = store.open_db(tmp_path / "m.db")
    store.append(conn, [draft() for _ in range(3)])
    with pytest.raises(merkle.ProofError, match="no tree of size 4"):
        store.inclusion_proof(conn, "local", 1, 4)
    with pytest.raises(merkle.ProofError):
        store.inclusion_proof(conn, "local", 4, 3)


def test_a_signed_checkpoint_of_the_tree_is_stored_once_and_read_back(tmp_path):
    conn = store.open_db(tmp_path / "m.db")
    store.append(conn, [draft() for _ in range(5)], source="gw-eu")  # (local signs its own)
    signer = note.generate_signer("gw-eu")
    signed = store.sign_checkpoint(conn, "gw-eu", signer)
    text, _ = note.open_note(signed, signer.verifier)
    checkpoint = note.parse_checkpoint(text)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == ("gw-eu", 5, store.tree_root(conn, "gw-eu"))
    with store.transaction(conn):
        first = store.add_checkpoint(conn, "gw-eu", signed, str(signer.verifier))
        store.add_checkpoint(conn, "gw-eu", signed, str(signer.verifier))
    assert store.checkpoints(conn, "gw-eu") == [first]
    assert store.latest_checkpoint(conn, "gw-eu") == first
    assert first.signed_at and first.signed_at.endswith("Z") and first.size == 5
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM checkpoints")
