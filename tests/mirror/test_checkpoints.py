"""Sync checks the gateway's signed checkpoints: against feeds served over real HTTP from a second store under the
gateway's key (a forked history, a rolled-back one) and through a MITM that rewrites events and re-hashes the page
or hides the newest events: each is refused with both tree sizes and roots named, and nothing of it is committed."""

from __future__ import annotations

import base64
import contextlib
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditkit import store
from auditkit.mirror import trust
from auditkit.mirror.checkpoints import CheckpointError, TruncatedMirror
from auditkit.mirror.sync import Feed, SyncError, add_source, sync_once
from auditkit.model import note
from feeds import Mitm, SignedFeed, append_to, forge_events, hide_after, journal_with


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _root(path, size: int) -> str:
    conn = store.open_db(path)
    try:
        return _b64(store.tree_root(conn, "gw", size))
    finally:
        conn.close()


@pytest.fixture()
def histories(tmp_path):
    """Journal `a` of chain gw (31 events); `fork` shares its first 21 and then goes its own way (41 events);
    `same_size_fork` too, with 31; `rollback` is `a` cut at 25. All signed with the one gateway key."""
    a = tmp_path / "a.db"
    journal_with(a, "gw", 20)  # 20 events and the auditor key's Access event
    for name, extra in (("fork", 20), ("same_size_fork", 10)):
        shutil.copy(a, tmp_path / f"{name}.db")
        conn = store.open_db(tmp_path / f"{name}.db")
        append_to(conn, "gw", extra, start_minute=500, actor="mallory")
        conn.close()
    conn = store.open_db(a)
    append_to(conn, "gw", 4, start_minute=100)
    conn.close()
    shutil.copy(a, tmp_path / "rollback.db")
    conn = store.open_db(a)
    append_to(conn, "gw", 6, start_minute=200)
    conn.close()
    signer = note.generate_signer("gw")
    feeds = {name: SignedFeed(tmp_path / f"{name}.db", "gw", signer)
             for name in ("a", "fork", "same_size_fork", "rollback")}
    yield tmp_path, feeds
    for feed in feeds.values():
        feed.stop()


def _mirror_of_a(tmp_path, feeds):
    conn = store.open_db(tmp_path / "audit.db")
    added = add_source(conn, None, feeds["a"].url, "any-key", tmp_path)
    assert added.name == "gw" and added.learned_key and added.pins.checkpoint_key.startswith("gw+")
    assert sync_once(conn, Feed("gw", feeds["a"].url, "any-key", trust.load(conn, "gw")), page=7).synced == 31
    [stored] = store.checkpoints(conn, "gw")
    assert (stored.size, _b64(stored.root)) == (31, _root(tmp_path / "a.db", 31))
    return conn


def _state(conn):
    return store.count(conn), store.chain_head(conn, "gw").last_seq, len(store.checkpoints(conn, "gw"))


@pytest.mark.parametrize("served,size,kind", [("fork", 41, "a forked history"),
                                               ("same_size_fork", 31, "a forked history"),
                                               ("rollback", 25, "rolled back")])
def test_a_forked_or_rolled_back_feed_is_refused_with_both_heads_named(histories, served, size, kind):
    tmp_path, feeds = histories
    conn = _mirror_of_a(tmp_path, feeds)
    before = _state(conn)
    with pytest.raises(CheckpointError) as refused:
        sync_once(conn, Feed("gw", feeds[served].url, "any-key", trust.load(conn, "gw")))
    message = str(refused.value)
    assert kind in message and "nothing was committed" in message
    assert f"size {size} (root {_root(tmp_path / f'{served}.db', size)}" in message
    assert f"size 31 (root {_root(tmp_path / 'a.db', 31)}" in message
    assert _state(conn) == before
    assert "/audit/v1/events" not in feeds[served].seen  # refused on the checkpoint, before any page


def test_a_checkpoint_signed_by_another_key_is_refused(histories):
    tmp_path, feeds = histories
    conn = _mirror_of_a(tmp_path, feeds)
    impostor = SignedFeed(tmp_path / "fork.db", "gw", note.generate_signer("gw"))
    try:
        with pytest.raises(CheckpointError, match="does not verify with the pinned key"):
            sync_once(conn, Feed("gw", impostor.url, "any-key", trust.load(conn, "gw")))
    finally:
        impostor.stop()
    assert _state(conn) == (31, 31, 1)


def test_a_given_checkpoint_key_must_be_the_gateways(histories):
    tmp_path, feeds = histories
    other = str(note.generate_signer("gw").verifier)
    with pytest.raises(Exception, match="serves checkpoint key gw\\+.* not the given gw\\+"):
        add_source(store.open_db(tmp_path / "audit.db"), "gw", feeds["a"].url, "k", tmp_path,
                   trust.Pins(checkpoint_key=other))
    given = str(feeds["a"].signer.verifier)
    added = add_source(store.open_db(tmp_path / "audit.db"), "gw", feeds["a"].url, "k", tmp_path,
                       trust.Pins(checkpoint_key=given))
    assert added.pins.checkpoint_key == given and not added.learned_key


def test_a_mitm_that_rewrites_and_rehashes_a_page_is_caught_by_the_checkpoint_even_when_insecure(histories):
    tmp_path, feeds = histories
    conn = store.open_db(tmp_path / "audit.db")
    add_source(conn, None, feeds["a"].url, "k", tmp_path)
    mitm = Mitm(feeds["a"].url, tmp_path, rewrite=forge_events(3, description="Viewed app web"))
    try:
        pins = trust.Pins(insecure=True, checkpoint_key=trust.load(conn, "gw").checkpoint_key)
        with pytest.raises(CheckpointError) as refused:
            sync_once(conn, Feed("gw", mitm.url, "k", pins), page=10)
    finally:
        mitm.stop()
    message = str(refused.value)
    # The forged page is a well-formed chain (the chain check passed); the signed tree is what it is not part of.
    assert "the page ending at seq 10 is not part of the signed tree" in message
    assert f"size 31 (root {_root(tmp_path / 'a.db', 31)}" in message
    assert "nothing of this page was committed" in message
    assert _state(conn) == (0, 0, 0)


def test_a_mitm_that_hides_the_newest_events_is_caught(histories):
    tmp_path, feeds = histories
    conn = store.open_db(tmp_path / "audit.db")
    add_source(conn, None, feeds["a"].url, "k", tmp_path)
    mitm = Mitm(feeds["a"].url, tmp_path, rewrite=hide_after(27))
    try:
        pins = trust.Pins(insecure=True, checkpoint_key=trust.load(conn, "gw").checkpoint_key)
        with pytest.raises(CheckpointError, match="hides the newest events; sync stopped at seq 27"):
            sync_once(conn, Feed("gw", mitm.url, "k", pins), page=10)
    finally:
        mitm.stop()
    # What was committed is the signed tree's true prefix; no checkpoint was stored for a tree the mirror lacks.
    assert _state(conn) == (27, 27, 0)
    assert _b64(store.tree_root(conn, "gw")) == _root(tmp_path / "a.db", 27)


def test_a_feed_that_grows_is_followed_checkpoint_by_checkpoint(histories):
    tmp_path, feeds = histories
    conn = _mirror_of_a(tmp_path, feeds)
    journal = store.open_db(tmp_path / "a.db")
    append_to(journal, "gw", 9, start_minute=300)
    journal.close()
    feed = Feed("gw", feeds["a"].url, "any-key", trust.load(conn, "gw"))
    assert sync_once(conn, feed, page=4).synced == 9
    assert [c.size for c in store.checkpoints(conn, "gw")] == [31, 40]
    assert sync_once(conn, feed).synced == 0 and len(store.checkpoints(conn, "gw")) == 2
    assert store.verify(conn).ok


@pytest.mark.parametrize("nodes_left", [False, True])
def test_a_mirror_cut_after_sync_is_refused_not_refetched_silently_and_refetch_says_so(histories, nodes_left):
    """Issue 12: events deleted from the mirror and its head moved back were re-fetched by the next sync with no
    warning. Now sync refuses (nothing fetched) naming both sizes; --refetch fetches them and records it."""
    tmp_path, feeds = histories
    conn = _mirror_of_a(tmp_path, feeds)
    conn.close()
    raw = sqlite3.connect(tmp_path / "audit.db")  # the attacker, with the file
    for trigger in ("events_no_delete", "merkle_nodes_no_delete"):
        raw.execute(f"DROP TRIGGER {trigger}")
    raw.execute("DELETE FROM events WHERE source = 'gw' AND source_seq > 25")
    if not nodes_left:
        raw.execute("DELETE FROM merkle_nodes WHERE source = 'gw' AND ((idx + 1) << level) > 25")
    head = raw.execute("SELECT hash FROM events WHERE source = 'gw' AND source_seq = 25").fetchone()[0]
    raw.execute("UPDATE sync_state SET last_seq = 25, last_hash = ? WHERE source = 'gw'", (head,))
    raw.execute("INSERT INTO events_fts(events_fts) VALUES ('rebuild')")
    raw.commit()
    raw.close()
    conn = store.open_db(tmp_path / "audit.db")
    feed = Feed("gw", feeds["a"].url, "any-key", trust.load(conn, "gw"))
    local_before = store.chain_head(conn, "local").last_seq
    with pytest.raises(TruncatedMirror, match=r"holds 25 events .* signing 31 .* removed from the mirror .*--refetch"):
        sync_once(conn, feed)
    assert store.chain_head(conn, "gw").last_seq == 25
    if nodes_left:  # the tree the attacker left disagrees with the chain it left: refused, nothing written
        with pytest.raises(SyncError, match="merkle_nodes"):
            sync_once(conn, feed, refetch=True)
        assert store.chain_head(conn, "gw").last_seq == 25
        return
    assert sync_once(conn, feed, refetch=True).synced == 6
    assert store.chain_head(conn, "gw").last_seq == 31
    said = store.get_event(conn, store.events_after(conn, "local", local_before, 10)[-1]["id"])
    assert (said.category, said.action, said.target) == ("Access", "downloaded", "gw")
    assert "Fetched events 26–31 of chain gw again" in said.description
    assert store.verify(conn).ok


def test_a_source_without_a_pinned_key_is_refused_with_the_way_out(histories):
    tmp_path, feeds = histories
    conn = store.open_db(tmp_path / "audit.db")
    with pytest.raises(CheckpointError, match="no checkpoint key is pinned .* sync add gw"):
        sync_once(conn, Feed("gw", feeds["a"].url, "k"))
    assert _state(conn) == (0, 0, 0)


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """A signed feed of chain gw (61 events) behind a MITM whose rewrite each example sets, and the honest roots."""
    work = tmp_path_factory.mktemp("invariant")
    journal_with(work / "journal.db", "gw", 60)
    signed = SignedFeed(work / "journal.db", "gw", note.generate_signer("gw"))
    mitm = Mitm(signed.url, work)
    conn = store.open_db(work / "journal.db")
    roots = [store.tree_root(conn, "gw", size) for size in range(62)]
    conn.close()
    yield work, signed, mitm, roots
    mitm.stop()
    signed.stop()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attack=st.one_of(st.none(), st.tuples(st.just("forge"), st.integers(0, 30)),
                        st.tuples(st.just("hide"), st.integers(0, 60))),
       page=st.integers(1, 70), first=st.integers(0, 61))
def test_whatever_the_feed_serves_the_mirror_holds_a_prefix_of_the_signed_tree(honest, attack, page, first):
    """Invariant: after any sync, the mirror holds a prefix of the gateway's signed tree, and every checkpoint it
    stored is the honest tree's head of that size; an attack that changes what would be committed is refused."""
    work, signed, mitm, roots = honest
    key = str(signed.signer.verifier)
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        conn = store.open_db(Path(scratch) / "audit.db")
        pins = trust.Pins(insecure=True, checkpoint_key=key)
        if first:  # the mirror first holds an honest prefix of `first` events (the rest hidden from it)
            mitm.rewrite = hide_after(first)
            with contextlib.closing(Feed("gw", mitm.url, "k", pins)) as feed, \
                    contextlib.suppress(CheckpointError):
                sync_once(conn, feed, page=7)
        held = store.chain_head(conn, "gw").last_seq
        assert held == first
        mitm.rewrite = None
        if attack is not None:
            kind, at = attack
            mitm.rewrite = forge_events(at, description="Viewed app web") if kind == "forge" else hide_after(at)
        feed = Feed("gw", mitm.url, "k", pins)
        try:
            sync_once(conn, feed, page=page)
            refused = None
        except CheckpointError as e:
            refused = e
        finally:
            feed.close()
        size = store.chain_head(conn, "gw").last_seq
        assert store.tree_root(conn, "gw", size) == roots[size]
        assert all(c.root == roots[c.size] for c in store.checkpoints(conn, "gw"))
        # A forged event lands in the first page (the largest) when that page reaches its index; anything hidden
        # leaves the mirror short of the signed size.
        changed = attack is not None and held < 61 and (
            (attack[0] == "forge" and min(page, 61 - held) > attack[1]) or (attack[0] == "hide" and attack[1] < 61))
        assert (refused is not None) == changed, (attack, held, page, refused)
        if refused is None:
            assert size == 61 and store.latest_checkpoint(conn, "gw").size == 61
        conn.close()
