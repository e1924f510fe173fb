"""The store: the hash chain as docs/event-format.md states it, append-only tables, verify against an attacker
holding the file, mirroring sealed batches, migrations, time-ordered keys and exports through the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from auditkit.model import events as ev
from auditkit.model import merkle
from auditkit import store
from auditkit.cli import main
from auditkit.errors import ChainError, StoreError
from auditkit.model.filters import parse

from helpers import FIXTURES, NOW, draft, raw_connect

_GATEWAY_KEYS: dict[str, object] = {}


def gateway_signed(conn: sqlite3.Connection, source: str = "gw-eu") -> None:
    """Checkpoint `source` as its gateway would sign it (one key per source for the whole test run), as sync stores
    a gateway's checkpoint: verify checks every chain of a mirror against one."""
    from auditkit.model import note

    signer = _GATEWAY_KEYS.setdefault(source, note.generate_signer(source))
    store.checkpoint_chain(conn, source, signer)  # type: ignore[arg-type]

GENESIS = "0" * 64


def count_rows(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM events").fetchone()[0]


# --- the chain rule ---------------------------------------------------------------------------------------------

FIXED = dict(
    id="01JD0000000000000000000001",
    timestamp="2026-11-20T14:03:07.120Z",
    actor="zoë@example.com",
    actor_type="user",
    rack="acme/production",
    category="Environment",
    action="updated",
    description="Updated environment of app web — \"quoted\" and \\ backslash",
    app="web",
    target="RKZQXWVTSA",
    outcome="succeeded",
    status=200,
    method="POST",
    path="/apps/web/releases",
    source_ip="203.0.113.7",
    user_agent=None,
    request_id=None,
    details={"zeta": [1, "ü", None, True], "alpha": {"b": 2, "a": "\n\t"}, "hmac": {}},
    session_id=None,
)


def independent_hash(fields: dict, source: str, seq: int, prev_hash: str) -> str:
    """The documented rule, written without auditkit: sha256(ascii prev_hash ‖ canonical JSON of all but hash)."""
    body = dict(fields, source=source, source_seq=seq, prev_hash=prev_hash)
    assert "hash" not in body and len(body) == 22
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if fields["details"]:
        assert b"\\u00fc" not in canonical and "ü".encode() in canonical  # not ASCII-escaped
        assert canonical.index(b'"alpha":{"a":"\\n\\t","b":2}') > 0  # nested keys sorted, JSON escapes only
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def test_seal_follows_the_documented_chain_rule():
    first = ev.seal(ev.Event(**FIXED), source="gw-eu", seq=1, prev_hash=GENESIS)
    assert first.hash == independent_hash(FIXED, "gw-eu", 1, GENESIS)
    second_fields = dict(FIXED, id="01JD0000000000000000000002", details={})
    second = ev.seal(ev.Event(**second_fields), source="gw-eu", seq=2, prev_hash=first.hash)
    assert second.hash == independent_hash(second_fields, "gw-eu", 2, first.hash)
    # seal_all continues a chain the same way
    assert [e.hash for e in ev.seal_all([ev.Event(**FIXED), ev.Event(**second_fields)], source="gw-eu",
                                        after_seq=0, after_hash=GENESIS)] == [first.hash, second.hash]


def test_the_hash_covers_position_and_chain():
    e = ev.Event(**FIXED)
    base = ev.seal(e, source="gw-eu", seq=1, prev_hash=GENESIS).hash
    assert ev.seal(e, source="gw-us", seq=1, prev_hash=GENESIS).hash != base
    assert ev.seal(e, source="gw-eu", seq=2, prev_hash=GENESIS).hash != base
    assert ev.seal(e, source="gw-eu", seq=1, prev_hash="1" * 64).hash != base


def test_appended_events_read_back_unchanged(conn):
    sealed = store.append(conn, [ev.Event(**FIXED), draft()])
    assert [s.source_seq for s in sealed] == [1, 2] and sealed[1].prev_hash == sealed[0].hash
    assert sealed[0].hash == independent_hash(FIXED, "local", 1, GENESIS)
    back = store.get_event(conn, FIXED["id"])
    assert back == sealed[0]
    assert back.compute_hash() == back.hash
    head = store.chain_head(conn, "local")
    assert (head.last_seq, head.last_hash) == (2, sealed[1].hash)


# --- append-only ------------------------------------------------------------------------------------------------

def _store_with_session(conn: sqlite3.Connection) -> tuple[list[ev.Event], bytes]:
    cast = b'{"version": 2, "width": 80, "height": 24}\n[0.5, "o", "$ ls\\r\\n"]\n'
    digest = store.add_session(conn, {"id": "S1", "rack": "acme/production", "app": "web"}, cast)
    events = store.append(conn, [
        draft(timestamp=f"2026-10-01T10:00:{i:02d}.000Z", description=f"event number {i}") for i in range(1, 5)
    ] + [
        draft(timestamp="2026-10-01T10:00:05.000Z", category="Processes", action="executed",
              description="Ran exec session in web: bash", session_id="S1", details={"recording_sha256": digest}),
    ] + [
        draft(timestamp=f"2026-10-01T10:00:{i:02d}.000Z", description=f"event number {i}") for i in range(6, 11)
    ])
    return events, cast


@pytest.mark.parametrize("statement", [
    "UPDATE events SET description = 'x' WHERE source_seq = 2",
    "UPDATE events SET n = n + 1",
    "DELETE FROM events WHERE source_seq = 2",
    "DELETE FROM events",
    "UPDATE sessions SET sha256 = 'x'",
    "DELETE FROM sessions",
])
def test_triggers_refuse_update_and_delete(conn, db_path, statement):
    events, _ = _store_with_session(conn)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute(statement)
    raw = raw_connect(db_path)  # the same with plain sqlite3
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute(statement)
    raw.close()
    assert count_rows(conn) == len(events)
    assert store.verify(conn).ok


# --- verify against tampering -----------------------------------------------------------------------------------

@pytest.fixture
def chain(tmp_path):
    """A store with a local chain of 10 (seq 5 has a recording) and a gw-eu chain of 3, plus a raw connection
    with the append-only triggers dropped, as an attacker with the file would do."""
    path = tmp_path / "audit.db"
    conn = store.open_db(path)
    events, cast = _store_with_session(conn)
    gw = store.append(conn, [draft(timestamp=f"2026-10-02T09:00:0{i}.000Z") for i in range(3)], source="gw-eu")
    gateway_signed(conn)
    assert store.verify(conn).ok
    conn.close()
    raw = raw_connect(path)
    for name in ("events_no_update", "events_no_delete", "sessions_no_update", "sessions_no_delete"):
        raw.execute(f"DROP TRIGGER {name}")
    yield path, raw, events, gw, cast
    raw.close()


def verify_path(path: Path) -> store.VerifyReport:
    conn = store.open_db(path)
    try:
        return store.verify(conn)
    finally:
        conn.close()


def row(raw: sqlite3.Connection, seq: int, source: str = "local") -> dict:
    return dict(raw.execute("SELECT * FROM events WHERE source = ? AND source_seq = ?", (source, seq)).fetchone())


def rehash(data: dict) -> str:
    """What an attacker who read docs/event-format.md computes for a row."""
    body = {k: data[k] for k in ev.HASHED_FIELDS}
    body["details"] = json.loads(body["details"])
    return ev.chain_hash(data["prev_hash"], ev.canonical_json(body))


def insert_row(raw: sqlite3.Connection, data: dict) -> None:
    columns = list(data)
    raw.execute(f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [data[c] for c in columns])


def kinds(report: store.VerifyReport) -> list[str]:
    return [p.kind for p in report.problems]


def assert_names(problem: store.Problem, seq: int | None = None, event_id: str | None = None) -> None:
    assert problem.seq == seq if seq is not None else True
    text = problem.message
    if seq is not None:
        assert f"seq {seq}" in text, text
    if event_id is not None:
        assert problem.event_id == event_id and event_id in text, text


def test_an_intact_store_verifies(chain):
    path, raw, events, gw, _ = chain
    report = verify_path(path)
    assert report.ok and report.problems == []
    assert report.events == len(events) + len(gw) and report.sessions == 1
    assert {(h.source, h.last_seq, h.last_hash) for h in report.heads} == {
        ("local", 10, events[-1].hash), ("gw-eu", 3, gw[-1].hash)}


@pytest.mark.parametrize("column,value", [
    ("description", "Nothing happened here"),
    ("actor", "mallory@example.com"),
    ("outcome", "failed"),
    ("status", 500),
    ("app", None),
    ("details", '{"recording_sha256":"0"}'),
    ("timestamp", "2026-10-01T10:00:04.001Z"),
])
def test_verify_catches_an_edited_field(chain, column, value):
    path, raw, events, _, _ = chain
    raw.execute(f"UPDATE events SET {column} = ? WHERE source = 'local' AND source_seq = 4", (value,))
    report = verify_path(path)
    p = report.first("edited")
    assert p is not None, kinds(report)
    assert p.source == "local"
    assert_names(p, 4, events[3].id)


def test_verify_catches_a_deleted_middle_row(chain):
    path, raw, events, _, _ = chain
    raw.execute("DELETE FROM events WHERE source = 'local' AND source_seq = 6")
    report = verify_path(path)
    p = report.first("deleted")
    assert p is not None, kinds(report)
    assert_names(p, 6)


def test_verify_catches_deleted_last_rows_through_the_recorded_head(chain):
    path, raw, events, _, _ = chain
    raw.execute("DELETE FROM events WHERE source = 'local' AND source_seq >= 9")
    report = verify_path(path)
    # the rest of the chain is intact: the head tells, and so do the signed checkpoint and the stored tree
    assert kinds(report) == ["deleted", "tree", "truncated"]
    p = report.first("deleted")
    assert p.seq == 9 and "seq 8" in p.message and "seq 10" in p.message


def test_verify_catches_a_whole_deleted_chain(chain):
    path, raw, _, _, _ = chain
    raw.execute("DELETE FROM events WHERE source = 'gw-eu'")
    report = verify_path(path)
    p = report.first("deleted")
    assert p is not None and p.source == "gw-eu" and "seq 3" in p.message


def test_verify_catches_a_forged_row_with_a_duplicate_seq(chain):
    path, raw, events, _, _ = chain
    raw.execute("DROP INDEX events_source_seq")
    forged = row(raw, 5)
    forged.update(id="01FORGED000000000000000000", description="Nothing to see", session_id=None,
                  details="{}", n=forged["n"] + 500)
    forged["hash"] = rehash(forged)  # a well-formed event at seq 5, linked to seq 4
    insert_row(raw, forged)
    report = verify_path(path)
    p = report.first("inserted")
    assert p is not None, kinds(report)
    assert_names(p, 5, forged["id"])


def test_verify_catches_a_forged_row_beyond_the_head(chain):
    path, raw, events, _, _ = chain
    last = row(raw, 10)
    forged = dict(last, id="01FORGED000000000000000011", source_seq=11, prev_hash=last["hash"],
                  timestamp="2026-10-01T10:00:11.000Z", n=ev.timestamp_ms("2026-10-01T10:00:11.000Z") << ev.KEY_SHIFT,
                  description="Granted admin to mallory")
    forged["hash"] = rehash(forged)  # perfectly linked: only the recorded head tells
    insert_row(raw, forged)
    report = verify_path(path)
    assert kinds(report) == ["inserted", "unsigned"]  # the head tells, and no signed checkpoint covers it
    p = report.problems[0]
    assert p.seq == 11 and "seq 10" in p.message and "seq 11" in p.message


def test_verify_catches_a_forged_chain(chain):
    path, raw, _, _, _ = chain
    forged = dict(row(raw, 1), id="01FORGED0000000000000000XX", source="evil", prev_hash=GENESIS, n=12345 << 20)
    forged["hash"] = rehash(forged)
    insert_row(raw, forged)
    report = verify_path(path)
    p = report.first("inserted")
    assert p is not None and p.source == "evil"


def test_verify_catches_an_edit_with_a_recomputed_hash(chain):
    path, raw, events, _, _ = chain
    edited = row(raw, 5)
    edited["description"] = "Nothing happened"
    new_hash = rehash(edited)
    raw.execute("UPDATE events SET description = ?, hash = ? WHERE source = 'local' AND source_seq = 5",
                (edited["description"], new_hash))
    report = verify_path(path)
    assert "edited" not in kinds(report), "the row itself is self-consistent"
    p = report.first("broken_link")
    assert p is not None, kinds(report)
    assert_names(p, 6, events[5].id)


def test_verify_catches_the_last_row_rehashed_through_the_recorded_head(chain):
    path, raw, events, _, _ = chain
    last = row(raw, 10)
    last["actor"] = "mallory@example.com"
    raw.execute("UPDATE events SET actor = ?, hash = ? WHERE id = ?", (last["actor"], rehash(last), last["id"]))
    report = verify_path(path)
    assert kinds(report) == ["edited", "tree", "rewritten"]  # the head, the stored tree, the signed root
    assert_names(report.problems[0], 10)


def test_verify_catches_a_chain_whose_recorded_head_was_removed(chain):
    path, raw, _, _, _ = chain
    raw.execute("DELETE FROM sync_state WHERE source = 'gw-eu'")
    report = verify_path(path)
    p = report.first("inserted")
    assert p is not None and p.source == "gw-eu" and "never recorded" in p.message


def test_verify_catches_two_rows_swapped(chain):
    path, raw, events, _, _ = chain
    raw.execute("DROP INDEX events_source_seq")
    a, b = row(raw, 3), row(raw, 4)
    raw.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?", (b["prev_hash"], b["hash"], a["id"]))
    raw.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?", (a["prev_hash"], a["hash"], b["id"]))
    report = verify_path(path)
    assert kinds(report) == ["edited", "reordered", "tree", "rewritten"]
    assert_names(report.first("edited"), 3, events[2].id)
    assert_names(report.first("reordered"), 3, events[2].id)


def test_verify_catches_a_relinked_row(chain):
    path, raw, events, _, _ = chain
    # seq 6 made to follow seq 4 (seq 5 skipped over), its own hash recomputed
    relinked = row(raw, 6)
    relinked["prev_hash"] = row(raw, 4)["hash"]
    relinked["hash"] = rehash(relinked)
    raw.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?",
                (relinked["prev_hash"], relinked["hash"], relinked["id"]))
    report = verify_path(path)
    assert "edited" not in kinds(report)
    p = report.first("reordered")
    assert p is not None, kinds(report)
    assert_names(p, 6, events[5].id)


def test_verify_catches_a_fully_rehashed_reorder(chain):
    """Swapping two events and re-sealing both still breaks the link to the next one."""
    path, raw, events, _, _ = chain
    raw.execute("DROP INDEX events_source_seq")
    three, four = row(raw, 3), row(raw, 4)
    four.update(source_seq=3, prev_hash=row(raw, 2)["hash"])
    four["hash"] = rehash(four)
    three.update(source_seq=4, prev_hash=four["hash"])
    three["hash"] = rehash(three)
    for data in (four, three):
        raw.execute("UPDATE events SET source_seq = ?, prev_hash = ?, hash = ? WHERE id = ?",
                    (data["source_seq"], data["prev_hash"], data["hash"], data["id"]))
    report = verify_path(path)
    p = report.first("broken_link")
    assert p is not None, kinds(report)
    assert_names(p, 5, events[4].id)


def test_verify_catches_a_row_moved_in_time(chain):
    path, raw, events, _, _ = chain
    target = row(raw, 7)
    earlier = (ev.timestamp_ms("2026-09-01T00:00:00.000Z") << ev.KEY_SHIFT) + 3
    raw.execute("UPDATE events SET n = ? WHERE id = ?", (earlier, target["id"]))
    report = verify_path(path)
    assert kinds(report) == ["reordered"]
    assert_names(report.problems[0], 7, events[6].id)


@pytest.mark.parametrize("how", ["bytes", "bytes and sha256"])
def test_verify_catches_a_replaced_recording(chain, how):
    path, raw, _, _, cast = chain
    forged = cast.replace(b"$ ls", b"$ id")
    if how == "bytes":
        raw.execute("UPDATE sessions SET cast_gz = ? WHERE id = 'S1'", (gzip.compress(forged),))
    else:
        raw.execute("UPDATE sessions SET cast_gz = ?, sha256 = ?, size = ? WHERE id = 'S1'",
                    (gzip.compress(forged), hashlib.sha256(forged).hexdigest(), len(forged)))
    report = verify_path(path)
    assert kinds(report) == ["recording"], "the events themselves are intact"
    p = report.problems[0]
    assert p.event_id == "S1" and "S1" in p.message


def test_verify_catches_a_recording_replaced_along_with_its_event_digest(chain):
    path, raw, events, _, cast = chain
    forged = cast.replace(b"$ ls", b"$ id")
    digest = hashlib.sha256(forged).hexdigest()
    raw.execute("UPDATE sessions SET cast_gz = ?, sha256 = ? WHERE id = 'S1'", (gzip.compress(forged), digest))
    raw.execute("UPDATE events SET details = ? WHERE session_id = 'S1'", (ev.dumps({"recording_sha256": digest}),))
    report = verify_path(path)
    p = report.first("edited")
    assert p is not None, kinds(report)
    assert_names(p, 5, events[4].id)


def test_verify_cli(chain):
    path, raw, events, _, _ = chain
    runner = CliRunner()
    ok = runner.invoke(main, ["verify", "--db", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and events[-1].hash in ok.output
    raw.execute("UPDATE events SET actor = 'mallory' WHERE source = 'local' AND source_seq = 3")
    bad = runner.invoke(main, ["verify", "--db", str(path)])
    assert bad.exit_code == 1
    assert "edited" in bad.stderr and "seq 3" in bad.stderr and events[2].id in bad.stderr
    assert "Traceback" not in bad.output


# --- append_sealed (mirroring a gateway's journal) ----------------------------------------------------------------

@pytest.fixture
def gateway_and_mirror(tmp_path):
    gw = store.open_db(tmp_path / "gateway.db", durable=True)
    store.append(gw, [draft(timestamp=f"2026-10-03T08:00:{i:02d}.000Z", description=f"gateway event {i}")
                      for i in range(1, 11)], source="gw-eu")
    journal = [store.row_to_event(r) for r in reversed(list(store.iter_rows(gw)))]  # as a feed would send it
    gw.close()
    mirror = store.open_db(tmp_path / "mirror.db")
    store.append(mirror, [draft(description="a local event")])  # the mirror's own chain beside it
    yield journal, mirror
    mirror.close()


def test_append_sealed_mirrors_a_chain_in_batches(gateway_and_mirror):
    journal, mirror = gateway_and_mirror
    assert [e.source_seq for e in journal] == list(range(1, 11))
    assert store.append_sealed(mirror, journal[:4], synced_at="2026-10-03T09:00:00.000Z") == 4
    assert store.append_sealed(mirror, journal[4:]) == 6
    assert store.append_sealed(mirror, []) == 0
    head = store.chain_head(mirror, "gw-eu")
    assert (head.last_seq, head.last_hash, head.last_sync_at) == (10, journal[-1].hash, "2026-10-03T09:00:00.000Z")
    assert [store.get_event(mirror, e.id) for e in journal] == journal
    gateway_signed(mirror)
    assert store.verify(mirror).ok


def _refused(mirror: sqlite3.Connection, batch: list[ev.Event], match: str) -> None:
    before_count, before_head = count_rows(mirror), store.chain_head(mirror, "gw-eu")
    with pytest.raises(ChainError, match=match) as info:
        store.append_sealed(mirror, batch)
    assert "\n" not in str(info.value)
    assert count_rows(mirror) == before_count
    assert store.chain_head(mirror, "gw-eu") == before_head
    assert not mirror.in_transaction
    if before_head.last_seq:
        gateway_signed(mirror)
    assert store.verify(mirror).ok


def test_append_sealed_refuses_a_gap(gateway_and_mirror):
    journal, mirror = gateway_and_mirror
    store.append_sealed(mirror, journal[:4])
    _refused(mirror, journal[5:], "expected seq 5 but got 6")
    _refused(mirror, journal[4:5] + journal[6:], "expected seq 6 but got 7")  # a hole inside the batch


def test_append_sealed_refuses_a_repeat(gateway_and_mirror):
    journal, mirror = gateway_and_mirror
    store.append_sealed(mirror, journal[:4])
    _refused(mirror, journal[:4], "expected seq 5 but got 1")
    _refused(mirror, journal[3:6], "expected seq 5 but got 4")
    _refused(mirror, journal[4:6] + journal[5:7], "expected seq 7 but got 6")


def test_append_sealed_refuses_a_wrong_prev_hash(gateway_and_mirror):
    journal, mirror = gateway_and_mirror
    store.append_sealed(mirror, journal[:4])
    drafts = [e.replace(source=None, source_seq=None, prev_hash=None, hash=None) for e in journal[4:]]
    resealed = ev.seal_all(drafts, source="gw-eu", after_seq=4, after_hash="f" * 64)  # self-consistent, wrong link
    _refused(mirror, resealed, "seq 5")
    # a fork: a different history continuing from the right head is fine only if it is the one mirrored next
    forked = ev.seal_all(drafts[:1], source="gw-eu", after_seq=4, after_hash=journal[3].hash)
    other = ev.seal_all(drafts[1:], source="gw-eu", after_seq=5, after_hash="e" * 64)
    _refused(mirror, forked + other, "seq 6")


def test_append_sealed_refuses_a_tampered_field(gateway_and_mirror):
    journal, mirror = gateway_and_mirror
    store.append_sealed(mirror, journal[:4])
    tampered = journal[4:]
    tampered[2] = tampered[2].replace(actor="mallory@example.com")  # hash kept: no longer its content's
    _refused(mirror, tampered, "seq 7")
    _refused(mirror, [journal[4].replace(details={"x": 1})], "seq 5")
    _refused(mirror, [journal[4].replace(hash="a" * 64)], "seq 5")


def test_append_sealed_refuses_mixed_sources_and_id_clashes(gateway_and_mirror, tmp_path):
    journal, mirror = gateway_and_mirror
    other = ev.seal_all([draft()], source="gw-us", after_seq=0, after_hash=GENESIS)
    _refused(mirror, journal[:2] + other, "one source")
    store.append_sealed(mirror, journal[:4])
    # a well-formed continuation whose event id is already in the mirror
    local_id = store.page(mirror, parse("user:alice@example.com a local event")).events[0].id
    clash = ev.seal_all([draft(id=local_id)], source="gw-eu", after_seq=4, after_hash=journal[3].hash)
    _refused(mirror, journal[4:4] + clash, "nothing of this batch was written")


# --- migrations -------------------------------------------------------------------------------------------------

def test_a_previous_schema_opens_and_migrates(db_path):
    old = store.open_db(db_path, migrate_to=1)
    assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "events_fts" not in tables and "share_links" not in tables
    sealed = store.append(old, [
        draft(timestamp=f"2026-10-0{i}T10:00:00.000Z", description=f"Promoted release RQUARTZ{i} of app web")
        for i in range(1, 6)
    ] + [draft(timestamp="2026-10-06T10:00:00.000Z", description="Scaled worker", app="worker", target=None)])
    old.close()

    conn = store.open_db(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"events", "sessions", "sync_state", "share_links", "events_fts"} <= tables
        assert [store.get_event(conn, e.id) for e in sealed] == sealed
        newest_first = [e.id for e in reversed(sealed)]
        assert [e.id for e in store.page(conn).events] == newest_first
        # the old events are in the full-text index (a trigram term) and the scan (a short term)
        quartz = [e.id for e in store.page(conn, parse("quartz")).events]
        assert quartz == newest_first[1:]
        assert store.count(conn, parse("quartz")) == 5
        assert [e.id for e in store.page(conn, parse("-quartz")).events] == newest_first[:1]
        assert [e.id for e in store.page(conn, parse("ed wor")).events] == newest_first[:1]
        assert store.verify(conn).ok
        # the v6 migration built the Merkle tree of the events it found
        leaves = [merkle.leaf_hash(bytes.fromhex(e.hash)) for e in sealed]
        assert store.tree_root(conn, "local") == merkle.root(merkle.nodes_of(leaves), 6)
        # new events after the migration are indexed too, and the chain continues
        more = store.append(conn, [draft(timestamp="2026-10-07T10:00:00.000Z", description="Quartz again")])
        assert more[0].source_seq == 7 and more[0].prev_hash == sealed[-1].hash
        assert store.count(conn, parse("QUARTZ")) == 6
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM events")
        assert store.verify(conn).ok
        leaves.append(merkle.leaf_hash(bytes.fromhex(more[0].hash)))
        assert store.tree_root(conn, "local") == merkle.root(merkle.nodes_of(leaves), 7)
    finally:
        conn.close()
    again = store.open_db(db_path)  # opening a current database again changes nothing
    assert again.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    assert count_rows(again) == 7
    again.close()


def test_a_previous_schema_is_not_migrated_read_only(db_path):
    store.open_db(db_path, migrate_to=1).close()
    with pytest.raises(StoreError, match="read-write"):
        store.open_db(db_path, readonly=True)


def test_a_newer_schema_is_refused(db_path):
    store.open_db(db_path).close()
    raw = raw_connect(db_path)
    raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    raw.close()
    for readonly in (False, True):
        with pytest.raises(StoreError) as info:
            store.open_db(db_path, readonly=readonly)
        message = str(info.value)
        assert f"v{store.SCHEMA_VERSION + 1}" in message and "upgrade auditkit" in message
    result = CliRunner().invoke(main, ["events", "--db", str(db_path)])
    assert result.exit_code != 0
    assert "newer" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not an SQLite database, just some text " * 100)
    with pytest.raises(StoreError, match="cannot open"):
        store.open_db(path)


# --- time-ordered keys ------------------------------------------------------------------------------------------

def test_out_of_order_and_equal_times_come_back_newest_first(conn):
    t = ["2026-10-01T10:00:00.000Z", "2026-10-01T10:00:00.001Z", "2026-10-01T10:00:00.002Z",
         "2026-09-30T23:59:59.999Z", "2026-10-02T00:00:00.000Z"]
    appended = []
    appended += store.append(conn, [draft(timestamp=t[2]), draft(timestamp=t[0])], source="gw-eu")
    appended += store.append(conn, [draft(timestamp=t[1]), draft(timestamp=t[2])], source="local")
    appended += store.append(conn, [draft(timestamp=t[3]), draft(timestamp=t[2]), draft(timestamp=t[4])],
                             source="gw-us")
    appended += store.append(conn, [draft(timestamp=t[1])], source="gw-eu")
    got = store.page(conn, limit=100).events
    # by time, newest first; among equal times, the later appended first
    expected = sorted(range(len(appended)), key=lambda i: (appended[i].timestamp, i), reverse=True)
    assert [e.id for e in got] == [appended[i].id for i in expected]
    assert [e.id for e in reversed(store.page(conn, limit=100).events)] == [
        appended[i].id for i in sorted(range(len(appended)), key=lambda i: (appended[i].timestamp, i))]
    keys = store.page(conn, limit=100).keys
    assert len(set(keys)) == len(keys)
    assert all(k >> ev.KEY_SHIFT == ev.timestamp_ms(e.timestamp) for k, e in zip(keys, got))
    gateway_signed(conn, "gw-eu")
    gateway_signed(conn, "gw-us")
    assert store.verify(conn).ok


@pytest.mark.parametrize("query,expected_offsets", [
    ("since:2026-10-01T10:00:00.000Z", [0, 1]),
    ("since:2026-10-01T10:00:00.001Z", [1]),
    ("since:2026-10-01T09:59:59.999Z", [-1, 0, 1]),
    ("until:2026-10-01T10:00:00.000Z", [-2, -1, 0]),  # an until: date-time includes its own millisecond
    ("until:2026-10-01T09:59:59.999Z", [-2, -1]),
    ("since:2026-10-01T10:00:00.000Z until:2026-10-01T10:00:00.000Z", [0]),
    ("since:2026-10-01T12:00:00.000+02:00 until:2026-10-01T12:00:00.000+02:00", [0]),
    ("since:2026-10-01T10:00 until:2026-10-01T10:00", [0]),
    ("since:2026-10-01T09:59:59.999500Z until:2026-10-01T09:59:59.999900Z", [-1]),
])
def test_time_bounds_are_exact_at_millisecond_edges(conn, query, expected_offsets):
    base = dt.datetime(2026, 10, 1, 10, tzinfo=dt.timezone.utc)

    def stamp(offset_ms: int) -> str:
        return ev.format_timestamp(base + dt.timedelta(milliseconds=offset_ms))

    by_offset = {}
    for offset in (1, -2, 0, -1):  # appended out of order
        by_offset[offset] = store.append(conn, [draft(timestamp=stamp(offset))])[0].id
    by_offset[0] = [by_offset[0], store.append(conn, [draft(timestamp=stamp(0))], source="gw-eu")[0].id]
    expected = []
    for offset in sorted(expected_offsets, reverse=True):
        ids = by_offset[offset]
        expected += list(reversed(ids)) if isinstance(ids, list) else [ids]
    f = parse(query)
    assert [e.id for e in store.page(conn, f, now=NOW).events] == expected
    assert store.count(conn, f, now=NOW) == len(expected)


def test_day_bounds_include_the_whole_utc_day(conn):
    ids = {s: store.append(conn, [draft(timestamp=s)])[0].id for s in (
        "2026-09-30T23:59:59.999Z", "2026-10-01T00:00:00.000Z", "2026-10-01T23:59:59.999Z",
        "2026-10-02T00:00:00.000Z")}
    day = [e.id for e in store.page(conn, parse("since:2026-10-01 until:2026-10-01")).events]
    assert day == [ids["2026-10-01T23:59:59.999Z"], ids["2026-10-01T00:00:00.000Z"]]
    assert [e.id for e in store.page(conn, parse("until:2026-09-30")).events] == [ids["2026-09-30T23:59:59.999Z"]]
    assert [e.id for e in store.page(conn, parse("since:2026-10-02")).events] == [ids["2026-10-02T00:00:00.000Z"]]


# --- exports through the CLI ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    """4,000 events, most by alice, a ninth of them on app billing, four fifths promotions, over two chains."""
    path = tmp_path_factory.mktemp("big") / "big.db"
    conn = store.open_db(path)
    start = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    drafts = []
    for i in range(4000):
        moment = start + dt.timedelta(seconds=(i * 7919) % 86400, milliseconds=i % 3)
        drafts.append(draft(
            timestamp=ev.format_timestamp(moment),
            actor="alice@example.com" if i % 32 < 29 else "bob@example.com",
            app="billing" if i % 9 == 0 else ("web" if i % 2 else None),
            description=f"Promoted release R{i:05d} of app web, \"quoted\", comma" if i % 5 else f"Scaled {i}",
            details={"i": i, "note": "café, \"x\""},
        ))
    sealed = store.append(conn, drafts[:2100]) + store.append(conn, drafts[2100:], source="gw-eu")
    conn.close()
    order = sorted(range(len(sealed)), key=lambda i: (sealed[i].timestamp, i), reverse=True)
    return path, [sealed[i] for i in order]


def export(path: Path, fmt: str, *words: str, limit: int | None = None) -> list[dict]:
    args = ["events", *words, "--db", str(path), "--format", fmt] + (["--limit", str(limit)] if limit else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    if fmt == "jsonl":
        return [json.loads(line) for line in out.splitlines()]
    if fmt == "json":
        return json.loads(out)
    reader = csv.DictReader(io.StringIO(out, newline=""))
    assert tuple(reader.fieldnames) == ev.FIELDS
    return list(reader)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
@pytest.mark.parametrize("words", [
    ("user:alice@example.com", "-app:billing"),
    ("promoted", "-user:bob@example.com"),
])
def test_exports_hold_exactly_the_matching_events_beyond_a_page(big_store, fmt, words):
    path, newest_first = big_store
    if words[0] == "promoted":
        expected = [e for e in newest_first if "promoted" in e.description.lower() and e.actor != "bob@example.com"]
    else:
        expected = [e for e in newest_first if e.actor == "alice@example.com" and e.app != "billing"]
    assert len(expected) > 2500
    rows = export(path, fmt, *words)
    assert [r["id"] for r in rows] == [e.id for e in expected]
    first, want = rows[0], expected[0]
    if fmt == "csv":
        assert json.loads(first["details"]) == dict(want.details)
        assert first["app"] == (want.app or "") and first["description"] == want.description
        assert int(first["source_seq"]) == want.source_seq and first["hash"] == want.hash
    else:
        assert first == want.to_dict() | {"details": dict(want.details)}
        assert ev.from_dict(first) == want and ev.from_dict(first).compute_hash() == want.hash


def test_export_limit(big_store):
    path, newest_first = big_store
    rows = export(path, "jsonl", "user:bob@example.com", limit=5)
    assert [r["id"] for r in rows] == [e.id for e in newest_first if e.actor == "bob@example.com"][:5]


@pytest.mark.parametrize("args,mentions", [
    (["events", "foo:bar"], "foo:bar"),
    (["events", "since:2026-13-45"], "2026-13-45"),
    (["events", 'user:"unclosed'], "quote"),
    (["events", "--format", "csv", "action:promote"], "promote"),
])
def test_cli_filter_errors_are_one_line(big_store, args, mentions):
    path, _ = big_store
    result = CliRunner().invoke(main, args + ["--db", str(path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and mentions in lines[0], result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["events"], ["events", "--format", "jsonl"], ["verify"]])
def test_cli_missing_database_is_one_line(tmp_path, command):
    missing = tmp_path / "nowhere" / "audit.db"
    result = CliRunner().invoke(main, command + ["--db", str(missing)])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0]
    assert "Traceback" not in result.output
    assert not missing.exists() and not missing.parent.exists(), "a missing database is not created"


def test_free_text_without_a_text_index_scans_and_finds_the_same(tmp_path):
    """A gateway journal keeps no FTS index; free text on it must give what the indexed mirror gives."""
    indexed = store.open_db(tmp_path / "mirror.db")
    plain = store.open_db(tmp_path / "journal.db")
    store.drop_text_index(plain)
    drafts = [draft(description=f"Scaled service web of app shop{i % 3} (count={i})", actor=f"u{i % 4}@example.com",
                    timestamp=f"2026-10-0{1 + i % 9}T10:00:{i % 60:02d}.000Z") for i in range(120)]
    store.append(indexed, drafts)
    store.append(plain, drafts)
    assert not store.has_text_index(plain) and store.has_text_index(indexed)
    for text in ("shop1", "count=1", "SHOP2 u3@example", "-shop0 scaled"):
        f = parse(text)
        expected = [e.id for e in store.page(indexed, f, limit=500).events]
        assert expected, text
        assert [e.id for e in store.page(plain, f, limit=500).events] == expected
        assert store.count(plain, f) == len(expected)


def test_append_halves_seals_like_append_and_refuses_a_wrong_seq(conn):
    drafts = [draft(description=f"Created app web{i}") for i in range(3)]
    items = []
    for seq, e in enumerate(drafts, 1):
        values = [getattr(e, name) for name in ev.FIELDS]
        values[ev.FIELDS.index("source")], values[ev.FIELDS.index("source_seq")] = "gw-1", seq
        values[ev.FIELDS.index("details")] = ev.dumps(e.details)
        items.append((ev.timestamp_ms(e.timestamp), values, *ev.seal_halves(e, source="gw-1", seq=seq)))
    with pytest.raises(ChainError, match="expected seq 1"):
        store.append_halves(conn, "gw-1", items[1:])
    assert count_rows(conn) == 0
    assert store.append_halves(conn, "gw-1", items) == 3
    expected = ev.seal_all(drafts, source="gw-1", after_seq=0, after_hash=GENESIS)
    assert [store.get_event(conn, e.id) for e in drafts] == expected
    assert store.chain_head(conn, "gw-1").last_hash == expected[-1].hash
    assert store.verify(conn).ok


def test_deferred_indexes_survive_a_crash_and_the_next_writer_builds_them(db_path):
    """A large catch-up into an empty store drops the secondary indexes; if the process dies before it builds them
    again, the rows are intact and restore_indexes() (sync runs it first) finishes the job."""
    conn = store.open_db(db_path)
    wanted = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")}
    assert store.defer_indexes(conn)
    assert not store.defer_indexes(conn)  # already deferred
    store.append(conn, [draft(timestamp=f"2026-10-0{i}T10:00:00.000Z", description=f"Promoted release RJADE{i}")
                        for i in range(1, 8)])
    conn.close()  # the crash: nothing else ran

    conn = store.open_db(db_path)
    assert store.indexes_deferred(conn)
    assert store.count(conn, parse("jade")) == 7  # text was indexed with each batch all along
    assert store.restore_indexes(conn) and not store.restore_indexes(conn)
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")}
    assert have == wanted
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT n FROM events WHERE actor = 'x'"))
    assert "events_actor" in plan
    assert store.verify(conn).ok
    assert not store.defer_indexes(conn)  # a store holding events never defers


def test_session_event_finds_a_recordings_event_only_within_a_filter(conn):
    events, _ = _store_with_session(conn)
    executed = next(e for e in events if e.session_id == "S1")
    assert store.session_event(conn, "S1").id == executed.id
    assert store.session_event(conn, "S1", parse("category:Processes until:2026-10-01")).id == executed.id
    assert store.session_event(conn, "S1", parse("category:Releases")) is None
    assert store.session_event(conn, "S1", parse("since:2026-10-02")) is None
    assert store.session_event(conn, "S1", parse('"exec session"')).id == executed.id
    assert store.session_event(conn, "S2") is None
    assert store.held_sessions(conn, ["S1", "S2", None, "S1"]) == {"S1"}
    assert store.held_sessions(conn, []) == set()


def test_a_v3_file_from_before_the_text_view_migrates_and_takes_writes(db_path):
    """Files made while v2 had no events_text view (its FTS table read 'events' through a trigger) still take
    appends after v4, and their text stays searchable."""
    old = store.open_db(db_path, migrate_to=3)
    store.append(old, [draft(timestamp="2026-10-01T10:00:00.000Z", description="Promoted release ROPAL1 of app web")])
    old.execute("DROP VIEW events_text")  # as v2 made it before the view existed
    old.close()
    conn = store.open_db(db_path)
    store.append(conn, [draft(timestamp="2026-10-02T10:00:00.000Z", description="Promoted release ROPAL2 of app web")])
    assert store.count(conn, parse("ropal")) == 2
    assert store.verify(conn).ok


# --- the schema: one for every way a file got there (read with sqlite-utils) ------------------------------------

# Each migration as it shipped. A shipped migration never changes: files made by every earlier auditkit run it.
MIGRATION_SHA256 = [
    "6bb8fba2b1f1f1d0",
    "ad5258433e68609e",
    "48ae3e283f33379c",
    "c4ccc213285b9d06",
    "c39290b1cf1a6b4f",
    "b4500cd757786699",
    "007bb53d500356ae",
]
SCHEMA_FIXTURE = FIXTURES / "schema.sql"


def schema_of(path: Path) -> dict:
    """Every table (columns, indexes, foreign keys, CREATE text), view and trigger of a file, as sqlite-utils reads
    them; SQLite's own tables (sqlite_stat1 after an ANALYZE) left out."""
    db = sqlite_utils.Database(path)
    try:
        return {
            "tables": {t.name: (t.columns, t.indexes, t.foreign_keys, t.schema) for t in db.tables
                       if not t.name.startswith("sqlite_")},
            "views": {v.name: v.schema for v in db.views},
            "triggers": {t.name: (t.table, t.sql) for t in db.triggers},
        }
    finally:
        db.close()


def schema_text(path: Path) -> str:
    """The file's CREATE statements in the form of tests/fixtures/schema.sql."""
    rows = raw_connect(path).execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "ORDER BY type, name").fetchall()
    return "\n".join(f"-- {kind} {name} on {table}\n{sql};\n" for kind, name, table, sql in rows)


def test_the_migrations_and_the_schema_they_make_are_the_shipped_ones(tmp_path):
    assert [hashlib.sha256(m.encode()).hexdigest()[:16] for m in store.MIGRATIONS] == MIGRATION_SHA256
    path = tmp_path / "fresh.db"
    store.open_db(path).close()
    assert schema_text(path) == SCHEMA_FIXTURE.read_text()
    fresh = schema_of(path)
    assert {"events", "sessions", "sync_state", "share_links", "intents", "gateway_keys", "deferred_indexes",
            "events_fts", "merkle_nodes", "checkpoints", "alerts", "alert_deliveries", "alert_failures"} \
        <= set(fresh["tables"])
    assert [c.name for c in fresh["tables"]["events"][0]] == list(store.EVENT_COLUMNS)
    assert set(fresh["triggers"]) == {f"{t}_no_{op}" for t in ("events", "sessions", "merkle_nodes", "checkpoints")
                                      for op in ("update", "delete")}


@pytest.mark.parametrize("first", range(1, store.SCHEMA_VERSION))
def test_every_migration_path_makes_the_schema_of_a_fresh_file(tmp_path, first):
    fresh = tmp_path / "fresh.db"
    store.open_db(fresh).close()
    path = tmp_path / f"from-v{first}.db"
    old = store.open_db(path, migrate_to=first)
    store.append(old, [draft(timestamp="2026-10-01T10:00:00.000Z"), draft(timestamp="2026-10-02T10:00:00.000Z")])
    old.close()
    for version in range(first + 1, store.SCHEMA_VERSION + 1):  # one version at a time, reopening in between
        store.open_db(path, migrate_to=version).close()
    assert schema_of(path) == schema_of(fresh)
    assert schema_text(path) == schema_text(fresh)


def test_a_bulk_load_leaves_the_schema_of_a_fresh_file(tmp_path):
    fresh = tmp_path / "fresh.db"
    store.open_db(fresh).close()
    path = tmp_path / "bulk.db"
    conn = store.open_db(path)
    with store.bulk_load(conn):
        assert store.indexes_deferred(conn)
        deferred = {index.name for index in schema_of(path)["tables"]["events"][1]}
        assert deferred == {"events_source_seq", "events_id"}  # the unique ones stay: they keep the chain whole
        store.append(conn, [draft(timestamp=f"2026-10-0{i}T10:00:00.000Z") for i in range(1, 8)])
    conn.close()
    assert schema_of(path) == schema_of(fresh)  # the indexes came back exactly as they were
    assert schema_text(path) == schema_text(fresh)
