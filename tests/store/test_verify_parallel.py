"""verify's parallel pass (worker processes over aligned seq ranges) against its serial pass, on a real synthetic
mirror file: on an intact mirror the parallel pass does the work and reports exactly what the serial one does; on a
tampered one (hypothesis over what is tampered and where) the two reports are identical, kinds, seqs and messages."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auditkit import store
from auditkit.model import events as ev
from auditkit.model import merkle
from auditkit.synth import history

verify_mod = importlib.import_module("auditkit.store.verify")

END = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
TRIGGERS = [f"{table}_no_{op}" for table in ("events", "sessions", "merkle_nodes", "checkpoints")
            for op in ("update", "delete")]
SOURCE = "gw-us"  # the longest chain of the synthetic mirror


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "audit.db"
    conn = store.open_db(path)
    history.write_history(conn, events=2500, seed=3, days=10, end=END, parallel=False)
    conn.close()
    return path


def _copy(source: Path, folder: Path) -> Path:
    for path in source.parent.glob(source.name + "*"):
        shutil.copy2(path, folder / path.name)
    return folder / source.name


def _report(path: Path, parallel: bool, monkeypatch: pytest.MonkeyPatch) -> store.VerifyReport:
    with monkeypatch.context() as m:
        # small ranges (32 seqs) so that every chain but the shortest is split into many ranges, a partial last one
        # included; or a threshold no chain reaches, for the serial pass
        m.setattr(verify_mod, "RANGE_LEVEL", 5)
        m.setattr(verify_mod, "PARALLEL_MIN", 64 if parallel else 1 << 60)
        conn = store.open_db(path)
        try:
            return store.verify(conn)
        finally:
            conn.close()


def _attacker(path: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.row_factory = sqlite3.Row
    for name in TRIGGERS:
        raw.execute(f"DROP TRIGGER IF EXISTS {name}")
    return raw


def _rehash_from(raw: sqlite3.Connection, source: str, seq: int) -> None:
    """Every hash from `seq` on recomputed, the head moved, the tree rebuilt: only the checkpoints can tell."""
    rows = [dict(r) for r in raw.execute("SELECT * FROM events WHERE source = ? AND source_seq >= ? "
                                         "ORDER BY source_seq", (source, seq))]
    prev = raw.execute("SELECT hash FROM events WHERE source = ? AND source_seq = ?",
                       (source, seq - 1)).fetchone()[0] if seq > 1 else ev.GENESIS_HASH
    for data in rows:
        body = {k: data[k] for k in ev.HASHED_FIELDS}
        body["details"] = json.loads(body["details"])
        body["prev_hash"] = prev
        prev = ev.chain_hash(prev, ev.canonical_json(body))
        raw.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE n = ?", (body["prev_hash"], prev, data["n"]))
    raw.execute("UPDATE sync_state SET last_hash = ? WHERE source = ?", (prev, source))
    raw.execute("DELETE FROM merkle_nodes WHERE source = ?", (source,))
    edge = merkle.CompactRange()
    for (digest,) in raw.execute("SELECT hash FROM events WHERE source = ? ORDER BY source_seq", (source,)).fetchall():
        for level, index, value in edge.append(merkle.leaf_hash(bytes.fromhex(digest))):
            if level:
                raw.execute("INSERT INTO merkle_nodes VALUES (?, ?, ?, ?)", (source, level, index, value))


def test_an_intact_mirror_is_checked_in_parallel_with_the_serial_report(pristine, tmp_path, monkeypatch):
    path = _copy(pristine, tmp_path)
    serial = _report(path, False, monkeypatch)
    fast_chains: list[str] = []
    real = verify_mod._fast_chain

    def spy(conn, source, *args):  # type: ignore[no-untyped-def]
        result = real(conn, source, *args)
        if result is not None:
            fast_chains.append(source)
        return result

    monkeypatch.setattr(verify_mod, "_fast_chain", spy)
    parallel = _report(path, True, monkeypatch)
    assert serial.ok and serial.signatures
    assert parallel == serial
    assert SOURCE in fast_chains and len(fast_chains) >= 2  # the parallel pass checked them, no fallback


TAMPERS = ["edit", "delete", "relink", "node", "rewrite", "head"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tamper=st.sampled_from(TAMPERS), where=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_a_tampered_mirror_gets_the_same_report_from_both_passes(pristine, monkeypatch, tamper, where, byte):
    with tempfile.TemporaryDirectory() as folder:
        path = _copy(pristine, Path(folder))
        raw = _attacker(path)
        size = raw.execute("SELECT max(source_seq) FROM events WHERE source = ?", (SOURCE,)).fetchone()[0]
        seq = 1 + where % size
        row = raw.execute("SELECT * FROM events WHERE source = ? AND source_seq = ?", (SOURCE, seq)).fetchone()
        if tamper == "edit":  # one byte of the description
            text = bytearray(row["description"].encode())
            text[byte % len(text)] = 0x20 + byte % 0x5f
            assume(text.decode() != row["description"])
            raw.execute("UPDATE events SET description = ? WHERE n = ?", (text.decode(), row["n"]))
        elif tamper == "delete":
            raw.execute("DELETE FROM events WHERE n = ?", (row["n"],))
        elif tamper == "relink":  # a prev_hash pointing elsewhere
            assume(f"{byte:02x}" * 32 != row["prev_hash"])
            raw.execute("UPDATE events SET prev_hash = ? WHERE n = ?", (f"{byte:02x}" * 32, row["n"]))
        elif tamper == "node":
            nodes = raw.execute("SELECT level, idx FROM merkle_nodes WHERE source = ? ORDER BY level, idx",
                                (SOURCE,)).fetchall()
            level, idx = nodes[where % len(nodes)]
            raw.execute("UPDATE merkle_nodes SET hash = ? WHERE source = ? AND level = ? AND idx = ?",
                        (bytes([byte]) * 32, SOURCE, level, idx))
        elif tamper == "rewrite":  # an edit re-hashed to the end: a self-consistent chain the checkpoints refute
            raw.execute("UPDATE events SET description = ? WHERE n = ?", (row["description"] + "!", row["n"]))
            _rehash_from(raw, SOURCE, seq)
        else:  # the recorded head moved
            assume(seq != size)
            raw.execute("UPDATE sync_state SET last_seq = ? WHERE source = ?", (seq, SOURCE))
        raw.close()
        serial = _report(path, False, monkeypatch)
        parallel = _report(path, True, monkeypatch)
        assert not serial.ok
        assert parallel == serial

