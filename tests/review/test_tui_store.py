"""The store functions the TUI's event list and detail stand on: pages in both directions between two keys, counts
between keys, the key at an offset, one event's chain status, a session's events and the data version.

Paging and counting are checked against the full newest-first listing of the hand-built corpus (itself checked
against a plain-Python reference in test_filters.py), for filters that take each query plan: none, indexed
qualifiers, a time range, free text through the FTS index, and free text scanned.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from auditkit.model import events as ev
from auditkit import store
from auditkit.model.filters import parse

from helpers import NOW, draft, raw_connect

FILTERS = ["", "user:alice@example.com", "rack:acme/production -outcome:succeeded", "since:30d",
           "promoted", "we", "release user:bob@example.com"]


@pytest.fixture(scope="module")
def corpus_conn(corpus):
    c = corpus.connect()
    yield c
    c.close()


def listing(conn: sqlite3.Connection, text: str) -> list[int]:
    keys = store.page(conn, parse(text), limit=100_000, now=NOW).keys
    assert len(keys) > 3, "a filter with almost no matches tests little"
    return keys


@pytest.mark.parametrize("text", FILTERS)
def test_pages_between_keys_in_both_directions(corpus_conn, text):
    f = parse(text)
    keys = listing(corpus_conn, text)
    for i in range(0, len(keys), max(1, len(keys) // 7)):
        # The 5 events just above keys[i] (newer), oldest first: what scrolling up from row i shows.
        up = store.page(corpus_conn, f, limit=5, after=keys[i], oldest_first=True, now=NOW)
        assert up.keys == list(reversed(keys[max(0, i - 5):i]))
        assert [e.id for e in up.events] == [e.id for e in reversed(store.page(
            corpus_conn, f, limit=len(keys), now=NOW).events[max(0, i - 5):i])]
        # Older than keys[i] but newer than keys[i + 6]: exactly the five rows between them.
        if i + 6 < len(keys):
            between = store.page(corpus_conn, f, limit=50, before=keys[i], after=keys[i + 6], now=NOW)
            assert between.keys == keys[i + 1:i + 6]
            assert between.next_before is None


@pytest.mark.parametrize("text", FILTERS)
def test_counts_between_keys(corpus_conn, text):
    f = parse(text)
    keys = listing(corpus_conn, text)
    assert store.count(corpus_conn, f, now=NOW) == len(keys)
    for i in range(0, len(keys), max(1, len(keys) // 9)):
        assert store.count(corpus_conn, f, now=NOW, after=keys[i]) == i
        assert store.count(corpus_conn, f, now=NOW, before=keys[i]) == len(keys) - 1 - i
        assert store.count(corpus_conn, f, now=NOW, after=keys[-1], before=keys[i]) == len(keys) - 2 - i \
            if i < len(keys) - 1 else True


@pytest.mark.parametrize("text", FILTERS)
def test_key_at_every_offset_from_either_end(corpus_conn, text):
    f = parse(text)
    keys = listing(corpus_conn, text)
    for offset in range(len(keys)):
        assert store.key_at(corpus_conn, f, offset, now=NOW) == keys[offset]
        assert store.key_at(corpus_conn, f, offset, now=NOW, total=len(keys)) == keys[offset]
    assert store.key_at(corpus_conn, f, len(keys), now=NOW) is None
    assert store.key_at(corpus_conn, f, len(keys), now=NOW, total=len(keys)) is None
    assert store.key_at(corpus_conn, f, -1, now=NOW) is None
    # Bounded above by a key: offsets count from the first event older than it.
    assert store.key_at(corpus_conn, f, 0, now=NOW, before=keys[2]) == keys[3]


def test_data_version_moves_when_another_connection_commits(db_path):
    writer = store.open_db(db_path)
    reader = store.open_db(db_path, readonly=True)
    first = store.data_version(reader)
    assert store.data_version(reader) == first
    store.append(writer, [draft()])
    assert store.data_version(reader) != first
    writer.close()
    reader.close()


# --- one event's chain status ---------------------------------------------------------------------------------------

@pytest.fixture
def chain(tmp_path):
    """A local chain of 6 (seq 3 carries a recording) and a gw-eu chain of 2; a raw connection without the
    append-only triggers, as someone tampering with the file would have."""
    path = tmp_path / "audit.db"
    conn = store.open_db(path)
    cast = b'{"version": 2, "width": 80, "height": 24}\n[0.5, "o", "$ ls\\r\\n"]\n'
    digest = store.add_session(conn, {"id": "S1", "rack": "acme/production"}, cast)
    local = store.append(conn, [
        draft(timestamp=f"2026-10-01T10:00:0{i}.000Z", description=f"event {i}",
              **({"session_id": "S1", "details": {"recording_sha256": digest}} if i == 3 else {}))
        for i in range(1, 7)])
    gw = store.append(conn, [draft(timestamp=f"2026-10-02T09:00:0{i}.000Z") for i in range(2)], source="gw-eu")
    conn.close()
    raw = raw_connect(path)
    for name in ("events_no_update", "events_no_delete", "sessions_no_update", "sessions_no_delete"):
        raw.execute(f"DROP TRIGGER {name}")
    yield path, raw, local, gw
    raw.close()


def status(path, event_id):
    conn = store.open_db(path, readonly=True)
    try:
        return store.chain_status(conn, event_id)
    finally:
        conn.close()


def test_every_event_of_an_intact_store_is_ok(chain):
    path, _, local, gw = chain
    for event in local + gw:
        s = status(path, event.id)
        assert s.ok, s.problems
        assert (s.source, s.seq, s.hash) == (event.source, event.source_seq, event.hash)
    assert "it is the first event of its chain (links to the genesis hash)" in status(path, local[0].id).checks
    assert "it is the chain's recorded head" in status(path, local[-1].id).checks
    assert "its recording has the digest the event records" in status(path, local[2].id).checks
    assert status(path, "NO-SUCH-EVENT") is None


def test_an_edited_event_is_caught(chain):
    path, raw, local, _ = chain
    raw.execute("UPDATE events SET description = 'nothing happened' WHERE id = ?", (local[3].id,))
    s = status(path, local[3].id)
    assert not s.ok and s.problems[0].startswith("edited:")
    assert status(path, local[2].id).ok  # its neighbours' own links still hold


def test_an_edit_hidden_by_rehashing_breaks_the_next_link(chain):
    path, raw, local, _ = chain
    data = dict(raw.execute("SELECT * FROM events WHERE id = ?", (local[1].id,)).fetchone())
    data["description"] = "nothing happened"
    body = {k: data[k] for k in ev.HASHED_FIELDS}
    body["details"] = json.loads(body["details"])
    raw.execute("UPDATE events SET description = ?, hash = ? WHERE id = ?",
                (data["description"], ev.chain_hash(data["prev_hash"], ev.canonical_json(body)), local[1].id))
    problems = status(path, local[1].id).problems
    assert problems == ("broken link: seq 3 does not link to it",)
    assert status(path, local[2].id).problems[0].startswith("broken link: its prev_hash")


def test_deleted_neighbours_are_caught(chain):
    path, raw, local, _ = chain
    raw.execute("DELETE FROM events WHERE id = ?", (local[2].id,))
    assert status(path, local[1].id).problems == (
        "deleted: seq 3 is missing (the chain's recorded head is seq 6)",)
    assert status(path, local[3].id).problems[0].startswith("deleted: the mirror holds 0 events with seq 3")


def test_the_last_event_is_checked_against_the_recorded_head(chain):
    path, raw, local, _ = chain
    raw.execute("DELETE FROM events WHERE id = ?", (local[-1].id,))
    assert status(path, local[-2].id).problems == (
        "deleted: seq 6 is missing (the chain's recorded head is seq 6)",)
    raw.execute("UPDATE sync_state SET last_seq = 3 WHERE source = 'local'")
    assert status(path, local[4].id).problems == ("inserted: it lies beyond the chain's recorded head (seq 3)",)
    raw.execute("UPDATE sync_state SET last_seq = 5 WHERE source = 'local'")
    assert status(path, local[4].id).problems[0].startswith("edited: it is the chain's last event")


def test_a_replaced_recording_is_caught(chain):
    path, raw, local, _ = chain
    import gzip
    raw.execute("UPDATE sessions SET cast_gz = ? WHERE id = 'S1'", (gzip.compress(b"something else"),))
    s = status(path, local[2].id)
    assert len(s.problems) == 1 and s.problems[0].startswith("recording: S1 hashes to")


def test_a_moved_event_is_caught(chain):
    path, raw, local, _ = chain
    raw.execute("UPDATE events SET n = n + (1500 << 20) WHERE id = ?", (local[0].id,))
    assert status(path, local[0].id).problems[0].startswith("reordered:")


def test_session_events_are_the_events_of_one_recording(chain):
    path, _, local, _ = chain
    conn = store.open_db(path, readonly=True)
    assert [e.id for e in store.session_events(conn, "S1")] == [local[2].id]
    assert store.session_events(conn, "S2") == []
    conn.close()
