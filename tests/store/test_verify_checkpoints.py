"""verify against signed checkpoints, on a real synthetic mirror file (auditkit synth: three synthetic gateways and the
mirror's own local chain, each checkpointed): every tampering of issue 12 made with plain sqlite3 as an attacker
with the file would (triggers dropped, hashes and Merkle nodes recomputed with the documented formulas) is
reported with its kind, and any single-byte edit of any event, node or checkpoint is found (hypothesis)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auditkit import store
from auditkit.cli import main
from auditkit.errors import StoreError
from auditkit.model import events as ev
from auditkit.model import merkle, note
from auditkit.synth import history

from helpers import draft

END = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
TRIGGERS = [f"{table}_no_{op}" for table in ("events", "sessions", "merkle_nodes", "checkpoints")
            for op in ("update", "delete")]


def _synth(folder: Path, events: int) -> Path:
    path = folder / "audit.db"
    conn = store.open_db(path)
    history.write_history(conn, events=events, seed=1, days=10, end=END, parallel=False)
    conn.close()
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory.mktemp("pristine"), 3000)


def _copy(source: Path, folder: Path) -> Path:
    """The mirror file and every key file beside it (its own and the synthetic gateways')."""
    for path in source.parent.glob(source.name + "*"):
        shutil.copy2(path, folder / path.name)
    return folder / source.name


@pytest.fixture
def mirror(pristine, tmp_path) -> Path:
    return _copy(pristine, tmp_path)


def attacker(path: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.row_factory = sqlite3.Row
    for name in TRIGGERS:
        raw.execute(f"DROP TRIGGER IF EXISTS {name}")
    return raw


def report_of(path: Path, **options) -> store.VerifyReport:
    conn = store.open_db(path)
    try:
        return store.verify(conn, **options)
    finally:
        conn.close()


def kinds(report: store.VerifyReport, source: str | None = None) -> list[str]:
    return [p.kind for p in report.problems if source is None or p.source == source]


def rehash(data: dict) -> str:
    body = {k: data[k] for k in ev.HASHED_FIELDS}
    body["details"] = json.loads(body["details"])
    return ev.chain_hash(data["prev_hash"], ev.canonical_json(body))


def rebuild_tree(raw: sqlite3.Connection, source: str, size: int) -> None:
    """What a thorough attacker does after changing a chain: its Merkle nodes recomputed (RFC 6962) from its events."""
    raw.execute("DELETE FROM merkle_nodes WHERE source = ?", (source,))
    edge = merkle.CompactRange()
    for (digest,) in raw.execute("SELECT hash FROM events WHERE source = ? AND source_seq <= ? ORDER BY source_seq",
                                 (source, size)).fetchall():
        for level, index, value in edge.append(merkle.leaf_hash(bytes.fromhex(digest))):
            if level:
                raw.execute("INSERT INTO merkle_nodes VALUES (?, ?, ?, ?)", (source, level, index, value))


def rehash_from(raw: sqlite3.Connection, source: str, seq: int) -> None:
    """Every hash from `seq` to the end recomputed, the head moved along, the tree rebuilt: a self-consistent chain."""
    rows = [dict(r) for r in raw.execute("SELECT * FROM events WHERE source = ? AND source_seq >= ? "
                                         "ORDER BY source_seq", (source, seq))]
    prev = raw.execute("SELECT hash FROM events WHERE source = ? AND source_seq = ?",
                       (source, seq - 1)).fetchone()[0] if seq > 1 else ev.GENESIS_HASH
    for data in rows:
        data["prev_hash"] = prev
        data["hash"] = prev = rehash(data)
        raw.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE n = ?", (data["prev_hash"], data["hash"], data["n"]))
    raw.execute("UPDATE sync_state SET last_hash = ? WHERE source = ?", (prev, source))
    rebuild_tree(raw, source, rows[-1]["source_seq"])


def last_seq(raw: sqlite3.Connection, source: str) -> int:
    return raw.execute("SELECT last_seq FROM sync_state WHERE source = ?", (source,)).fetchone()[0]


# --- an untampered mirror -------------------------------------------------------------------------------------------

def test_a_synthetic_mirror_verifies_against_a_signed_checkpoint_of_every_chain(mirror):
    report = report_of(mirror)
    assert report.ok, report.problems
    assert set(report.signatures) == {"gw-us", "gw-eu", "gw-ap", "local"}
    for head in report.heads:
        assert report.signatures[head.source].size == head.last_seq > 0  # every event covered
    conn = store.open_db(mirror)
    assert report.signatures["local"].key == str(store.local_verifier(conn))
    for source in ("gw-us", "gw-eu", "gw-ap"):  # each synthetic gateway's key is pinned as sync pins one
        pin = conn.execute("SELECT checkpoint_key FROM sync_state WHERE source = ?", (source,)).fetchone()[0]
        assert pin == report.signatures[source].key == str(history.synthetic_signer(conn, source).verifier)
        assert "synthetic" in history.synthetic_key_path(conn, source).name
    for path in mirror.parent.glob("audit.db*.key"):
        assert path.stat().st_mode & 0o777 == 0o600
    conn.close()


def test_the_cli_prints_the_mirror_key_and_each_chains_signature(mirror):
    runner = CliRunner()
    key = runner.invoke(main, ["mirror-key", "--db", str(mirror)])
    assert key.exit_code == 0 and key.output.startswith("local+")
    verifier = note.Verifier.parse(key.output)
    assert (mirror.parent / "audit.db.checkpoint.key").exists()
    ok = runner.invoke(main, ["verify", "--db", str(mirror)])
    assert ok.exit_code == 0, ok.output
    assert "each against its signed checkpoint" in ok.output and str(verifier) in ok.output
    pinned = runner.invoke(main, ["verify", "--db", str(mirror), "--key", str(verifier)])
    assert pinned.exit_code == 0, pinned.output
    wrong = runner.invoke(main, ["verify", "--db", str(mirror), "--key", str(note.generate_signer("local").verifier)])
    assert wrong.exit_code == 1 and "checkpoint: local:" in wrong.output
    garbled = runner.invoke(main, ["verify", "--db", str(mirror), "--key", "local+nothing"])
    assert garbled.exit_code == 2 and "--key" in garbled.output


def test_each_local_append_is_checkpointed_in_its_transaction(mirror):
    conn = store.open_db(mirror)
    before = store.latest_checkpoint(conn, "local")
    store.append(conn, [draft(description="Created share link sl_x")])
    after = store.latest_checkpoint(conn, "local")
    assert after.size == before.size + 1 == store.tree_size(conn, "local")
    text, _ = note.open_note(after.note, store.local_verifier(conn))
    checkpoint = note.parse_checkpoint(text)
    assert checkpoint.root == store.tree_root(conn, "local")
    lines = [line for line in checkpoint.extensions if line.startswith("chain ")]
    assert [line.split()[1] for line in lines] == ["gw-ap", "gw-eu", "gw-us"]  # the other chains, named
    assert report_of(mirror).ok
    conn.close()


def test_a_local_append_whose_checkpoint_cannot_be_signed_writes_nothing(mirror):
    (mirror.parent / "audit.db.checkpoint.key").write_text("not a key\n")
    conn = store.open_db(mirror)
    before = (store.count(conn), store.tree_size(conn, "local"), len(store.checkpoints(conn, "local")))
    with pytest.raises(StoreError, match="does not hold a signing key"):
        store.append(conn, [draft(description="Created share link sl_y")])
    assert (store.count(conn), store.tree_size(conn, "local"), len(store.checkpoints(conn, "local"))) == before
    conn.close()


# --- each tampering of issue 12, with its kind ------------------------------------------------------------------------

def test_a_truncated_tail_is_reported(mirror):
    raw = attacker(mirror)
    size = last_seq(raw, "gw-us")
    keep = size - 40
    raw.execute("DELETE FROM events WHERE source = 'gw-us' AND source_seq > ?", (keep,))
    raw.execute("DELETE FROM merkle_nodes WHERE source = 'gw-us' AND ((idx + 1) << level) > ?", (keep,))
    head = raw.execute("SELECT hash FROM events WHERE source = 'gw-us' AND source_seq = ?", (keep,)).fetchone()[0]
    raw.execute("UPDATE sync_state SET last_seq = ?, last_hash = ? WHERE source = 'gw-us'", (keep, head))
    raw.close()
    report = report_of(mirror)
    assert kinds(report) == ["truncated"]
    problem = report.problems[0]
    assert problem.source == "gw-us" and problem.seq == keep + 1
    assert f"seq {keep + 1}–{size} were removed" in problem.message


def test_a_rehashed_edit_is_reported(mirror):
    raw = attacker(mirror)
    raw.execute("UPDATE events SET description = 'Viewed app web' WHERE source = 'gw-eu' AND source_seq = 10")
    rehash_from(raw, "gw-eu", 10)
    raw.close()
    report = report_of(mirror)
    assert kinds(report) == ["rewritten"], "every hash, link and node is self-consistent: only the signature tells"
    assert report.problems[0].source == "gw-eu" and "rewritten" in report.problems[0].message


def test_a_rehashed_edit_resigned_with_a_key_of_the_attackers_is_reported(mirror):
    raw = attacker(mirror)
    raw.execute("UPDATE events SET actor = 'nobody@example.com' WHERE source = 'gw-eu' AND source_seq = 3")
    rehash_from(raw, "gw-eu", 3)
    raw.close()
    conn = store.open_db(mirror)
    forger = note.generate_signer("gw-eu")
    with store.transaction(conn):
        store.add_checkpoint(conn, "gw-eu", store.sign_checkpoint(conn, "gw-eu", forger), str(forger.verifier))
    conn.close()
    assert kinds(report_of(mirror)) == ["checkpoint", "rewritten"]  # not the pinned key; the real one disagrees
    # The attacker also deletes the real checkpoint and pins their own key: the mirror's signed local checkpoint
    # still names gw-eu's real root.
    raw = attacker(mirror)
    real = store.open_db(mirror)
    genuine = [cp for cp in store.checkpoints(real, "gw-eu") if cp.key != str(forger.verifier)]
    real.close()
    raw.execute("DELETE FROM checkpoints WHERE source = 'gw-eu' AND key != ?", (str(forger.verifier),))
    raw.execute("UPDATE sync_state SET checkpoint_key = ? WHERE source = 'gw-eu'", (str(forger.verifier),))
    raw.close()
    report = report_of(mirror)
    assert kinds(report) == ["rewritten"] and "local checkpoint" in report.problems[0].message
    # An auditor who pinned the gateway's real key from outside the mirror catches it without the mirror's word.
    outside = note.Verifier.parse(genuine[0].key)
    assert "checkpoint" in kinds(report_of(mirror, keys=[outside]))


@pytest.mark.parametrize("also", ["nothing", "its checkpoints"])
def test_a_dropped_chain_is_reported(mirror, also):
    raw = attacker(mirror)
    for table in ("events", "merkle_nodes", "sync_state"):
        raw.execute(f"DELETE FROM {table} WHERE source = 'gw-ap'")
    if also == "its checkpoints":
        raw.execute("DELETE FROM checkpoints WHERE source = 'gw-ap'")
    raw.execute("DELETE FROM sessions WHERE source = 'gw-ap'")
    raw.close()
    report = report_of(mirror)
    assert kinds(report) == ["dropped_chain"]
    problem = report.problems[0]
    assert problem.source == "gw-ap"
    assert "local checkpoint names it" in problem.message
    assert ("stored checkpoint" in problem.message) == (also == "nothing")


def test_a_dropped_chain_is_known_from_its_sync_key_file(mirror):
    (mirror.parent / "sync-gw-gone.key").write_text("a feed key\n")
    report = report_of(mirror)
    assert kinds(report) == ["dropped_chain"] and "sync-gw-gone.key" in report.problems[0].message


def test_a_deleted_recording_is_reported(mirror):
    raw = attacker(mirror)
    session = raw.execute("SELECT id FROM sessions ORDER BY id LIMIT 1").fetchone()[0]
    raw.execute("DELETE FROM sessions WHERE id = ?", (session,))
    raw.close()
    report = report_of(mirror)
    assert kinds(report) == ["recording_missing"]
    assert report.problems[0].event_id == session and "deleted" in report.problems[0].message


def test_a_tampered_merkle_node_is_reported_and_not_trusted(mirror):
    raw = attacker(mirror)
    raw.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE source = 'gw-us' AND level = 3 AND idx = 5")
    raw.close()
    report = report_of(mirror)
    assert kinds(report) == ["tree"]  # the roots are recomputed from the events, so they still match
    assert "level 3, index 5" in report.problems[0].message


def test_events_appended_past_the_signed_checkpoint_are_unsigned(mirror):
    raw = attacker(mirror)
    last = dict(raw.execute("SELECT * FROM events WHERE source = 'local' ORDER BY source_seq DESC LIMIT 1").fetchone())
    forged = dict(last, id=ev.new_event_id(), source_seq=last["source_seq"] + 1, prev_hash=last["hash"],
                  n=last["n"] + 1, description="Created share link sl_forged")
    forged["hash"] = rehash(forged)
    raw.execute(f"INSERT INTO events ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
                list(forged.values()))
    raw.execute("UPDATE sync_state SET last_seq = ?, last_hash = ? WHERE source = 'local'",
                (forged["source_seq"], forged["hash"]))
    rebuild_tree(raw, "local", forged["source_seq"])
    raw.close()
    report = report_of(mirror)
    assert kinds(report) == ["unsigned"] and report.problems[0].seq == forged["source_seq"]


def test_the_local_chain_needs_the_mirrors_own_key(mirror):
    key = mirror.parent / "audit.db.checkpoint.key"
    key.unlink()
    report = report_of(mirror)
    assert "checkpoint" in kinds(report, "local") and "key" in report.first("checkpoint").message
    key.write_text(str(note.generate_signer("local")) + "\n")  # another key in its place
    assert "checkpoint" in kinds(report_of(mirror), "local")


def test_a_forged_checkpoint_row_is_reported(mirror):
    raw = attacker(mirror)
    cp = raw.execute("SELECT * FROM checkpoints WHERE source = 'gw-us' ORDER BY size DESC LIMIT 1").fetchone()
    text = cp["note"].replace(f"\n{cp['size']}\n", f"\n{cp['size'] + 5}\n", 1)  # claims more than was signed
    raw.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)",
                ("gw-us", cp["size"] + 5, cp["root"], text, cp["key"], cp["signed_at"], cp["stored_at"]))
    raw.close()
    report = report_of(mirror)
    assert "checkpoint" in kinds(report, "gw-us")
    assert "does not verify" in report.first("checkpoint").message


# --- any single-byte edit is found --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return _synth(tmp_path_factory.mktemp("small"), 400)


_EVENT_COLUMNS = [c for c in store.EVENT_COLUMNS if c != "n"]  # n is the mirror's sort key, not part of the event
_CHECKPOINT_COLUMNS = ["source", "size", "root", "note", "key", "signed_at"]  # stored_at: when this mirror stored it, unsigned


def _edited(value, position: int, byte: int):
    """`value` with one byte changed (ints moved by one step)."""
    if isinstance(value, int):
        return value + (1 if byte % 2 else -1)
    data = bytearray(value if isinstance(value, bytes) else value.encode("utf-8"))
    i = position % len(data)
    new = 0x20 + byte % 0x5f if not isinstance(value, bytes) else byte
    assume(data[i] != new)
    data[i] = new
    if isinstance(value, bytes):
        return bytes(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        assume(False)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(["events", "merkle_nodes", "checkpoints"]), pick=st.integers(0, 10_000),
       column=st.integers(0, 100), position=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_any_single_byte_edit_of_an_event_node_or_checkpoint_is_found(small, table, pick, column, position, byte):
    with tempfile.TemporaryDirectory() as folder:
        path = _copy(small, Path(folder))
        raw = attacker(path)
        columns = {"events": _EVENT_COLUMNS, "merkle_nodes": ["source", "level", "idx", "hash"],
                   "checkpoints": _CHECKPOINT_COLUMNS}[table]
        name = columns[column % len(columns)]
        keys = "source, level, idx" if table == "merkle_nodes" else "rowid"  # merkle_nodes has no rowid
        rows = raw.execute(f"SELECT {keys}, {name} FROM {table} WHERE {name} IS NOT NULL ORDER BY {keys}").fetchall()
        assume(rows)
        *key, value = rows[pick % len(rows)]
        assume(not (isinstance(value, str) and not value))
        where = " AND ".join(f"{k} = ?" for k in keys.split(", "))
        try:
            raw.execute(f"UPDATE {table} SET {name} = ? WHERE {where}", (_edited(value, position, byte), *key))
        except sqlite3.IntegrityError:
            assume(False)  # the edit collides with another row's key: not an edit the file can hold
        raw.close()
        report = report_of(path)
        assert not report.ok, f"{table}.{name} of row {key}: {value!r} edited, and verify said OK"
