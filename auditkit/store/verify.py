"""Verify: recompute every chain and recording of a store and name the first problem of each kind (verify), or
check one event against its neighbours without walking its chain (chain_status).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import sqlite3
from typing import Callable

from auditkit.model.events import GENESIS_HASH, KEY_SHIFT, canonical_json, chain_hash, timestamp_ms
from auditkit.store.chains import ChainHead, chain_head, chain_heads
from auditkit.store.queries import row_dict
from auditkit.store.recordings import recording, recording_sha256
from auditkit.store.schema import SELECT_EVENT

PROBLEM_KINDS: tuple[str, ...] = ("edited", "deleted", "inserted", "reordered", "broken_link", "recording")


@dataclasses.dataclass(frozen=True)
class Problem:
    kind: str
    source: str
    seq: int | None
    event_id: str | None
    message: str


@dataclasses.dataclass
class VerifyReport:
    events: int = 0
    sessions: int = 0
    heads: list[ChainHead] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return (f"OK — {self.events:,} events in {len(self.heads)} chain(s), "
                    f"{self.sessions} recording(s) intact")
        return f"FAILED — {len(self.problems)} kind(s) of problem in {self.events:,} events"

    def first(self, kind: str) -> Problem | None:
        return next((p for p in self.problems if p.kind == kind), None)


def verify(conn: sqlite3.Connection, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Recompute every chain and recording. Reports the first problem of each kind in each source."""
    report = VerifyReport()
    heads = {h.source: h for h in chain_heads(conn)}
    sources = [r[0] for r in conn.execute("SELECT DISTINCT source FROM events ORDER BY source")]
    for source in sorted(set(sources) | {s for s, h in heads.items() if h.last_seq > 0}):
        _verify_chain(conn, source, heads.get(source), report, progress)
    report.heads = [heads[s] for s in sorted(heads)]
    _verify_sessions(conn, report)
    return report


def _verify_chain(conn: sqlite3.Connection, source: str, head: ChainHead | None, report: VerifyReport,
                  progress: Callable[[int], None] | None) -> None:
    found: dict[str, Problem] = {}
    link_breaks: list[tuple[int, str, str, str]] = []  # (seq, id, prev_hash, expected)
    hashes: set[str] = set()

    def note(kind: str, seq: int | None, event_id: str | None, message: str) -> None:
        if kind not in found:
            found[kind] = Problem(kind, source, seq, event_id, f"{source}: {message}")

    prev_seq, prev_hash = 0, GENESIS_HASH
    cur = conn.execute(
        f"SELECT e.n AS n, {SELECT_EVENT} FROM events e WHERE e.source = ? ORDER BY e.source_seq, e.n", (source,)
    )
    for row in cur:
        report.events += 1
        if progress and report.events % 50000 == 0:
            progress(report.events)
        seq, event_id, stored = row["source_seq"], row["id"], row["hash"]
        try:
            content_ok = chain_hash(row["prev_hash"], canonical_json(row_dict(row))) == stored
        except (ValueError, TypeError):
            content_ok = False
        if not content_ok:
            note("edited", seq, event_id,
                 f"event seq {seq} ({event_id}) was edited: its content no longer hashes to {stored}")
        try:
            ms = timestamp_ms(row["timestamp"])
        except (ValueError, TypeError):
            ms = None
        if ms is not None and row["n"] >> KEY_SHIFT != ms:
            note("reordered", seq, event_id,
                 f"event seq {seq} ({event_id}) was moved in time order: key {row['n']} does not belong to "
                 f"{row['timestamp']}")
        if seq == prev_seq:
            note("inserted", seq, event_id, f"a second event with seq {seq} ({event_id}) was inserted")
        elif seq > prev_seq + 1:
            missing = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}–{seq - 1}"
            note("deleted", prev_seq + 1, None, f"event(s) seq {missing} were deleted")
        elif row["prev_hash"] != prev_hash:
            link_breaks.append((seq, event_id, row["prev_hash"], prev_hash))
        hashes.add(stored)
        prev_seq, prev_hash = seq, stored

    for seq, event_id, linked, expected in link_breaks:
        if linked in hashes:
            note("reordered", seq, event_id,
                 f"event seq {seq} ({event_id}) links to another event of the chain, not to seq {seq - 1}")
        else:
            note("broken_link", seq, event_id,
                 f"broken link at seq {seq} ({event_id}): prev_hash {linked} but seq {seq - 1} hashes to {expected}")

    if head is None:
        note("inserted", 1, None, f"events of source '{source}' exist but the mirror never recorded that chain")
    elif prev_seq < head.last_seq:
        note("deleted", prev_seq + 1, None,
             f"the chain ends at seq {prev_seq} but the mirror recorded events up to seq {head.last_seq}")
    elif prev_seq > head.last_seq:
        note("inserted", head.last_seq + 1, None,
             f"events after seq {head.last_seq} (the recorded head) were inserted, up to seq {prev_seq}")
    elif prev_seq and prev_hash != head.last_hash:
        note("edited", prev_seq, None,
             f"the last event (seq {prev_seq}) hashes to {prev_hash}, not the recorded head {head.last_hash}")
    report.problems.extend(sorted(found.values(), key=lambda p: PROBLEM_KINDS.index(p.kind)))


@dataclasses.dataclass(frozen=True)
class ChainStatus:
    """One event checked against its neighbours on its chain (see chain_status); `problems` is empty when intact."""

    event_id: str
    source: str
    seq: int
    hash: str
    problems: tuple[str, ...]
    checks: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def chain_status(conn: sqlite3.Connection, event_id: str) -> ChainStatus | None:
    """Verify one event without walking its chain: its hash is sha256(prev_hash ‖ canonical JSON) of its content,
    its prev_hash is the hash of the previous event of its source (genesis for seq 1), the next event links to it
    (or, as the last one, it is the chain's recorded head), its key matches its timestamp, and its recording (if
    the mirror holds one) has the digest it carries. None when no event has that id."""
    row = conn.execute(f"SELECT e.n AS n, {SELECT_EVENT} FROM events e WHERE e.id = ?", (event_id,)).fetchone()
    if row is None:
        return None
    source, seq, stored = row["source"], row["source_seq"], row["hash"]
    problems: list[str] = []
    checks: list[str] = []
    try:
        content_ok = chain_hash(row["prev_hash"], canonical_json(row_dict(row))) == stored
    except (ValueError, TypeError):
        content_ok = False
    if content_ok:
        checks.append("its content hashes to its recorded hash")
    else:
        problems.append(f"edited: its content no longer hashes to {stored}")
    try:
        ms: int | None = timestamp_ms(row["timestamp"])
    except (ValueError, TypeError):
        ms = None
    if ms is not None and row["n"] >> KEY_SHIFT != ms:
        problems.append(f"reordered: its key {row['n']} does not belong to {row['timestamp']}")

    if seq == 1:
        linked = row["prev_hash"] == GENESIS_HASH
        if linked:
            checks.append("it is the first event of its chain (links to the genesis hash)")
        else:
            problems.append(f"broken link: seq 1 must link to the genesis hash, not {row['prev_hash']}")
    else:
        previous = conn.execute("SELECT hash FROM events WHERE source = ? AND source_seq = ?",
                                (source, seq - 1)).fetchall()
        if len(previous) != 1:
            problems.append(f"{'deleted' if not previous else 'inserted'}: the mirror holds {len(previous)} "
                            f"events with seq {seq - 1}, its predecessor")
        elif previous[0][0] != row["prev_hash"]:
            problems.append(f"broken link: its prev_hash {row['prev_hash']} is not the hash of seq {seq - 1} "
                            f"({previous[0][0]})")
        else:
            checks.append(f"it links to seq {seq - 1}")
    following = conn.execute("SELECT prev_hash FROM events WHERE source = ? AND source_seq = ?",
                             (source, seq + 1)).fetchall()
    head = chain_head(conn, source)
    if following:
        if all(p == stored for (p,) in following):
            checks.append(f"seq {seq + 1} links to it")
        else:
            problems.append(f"broken link: seq {seq + 1} does not link to it")
    elif seq < head.last_seq:
        problems.append(f"deleted: seq {seq + 1} is missing (the chain's recorded head is seq {head.last_seq})")
    elif seq > head.last_seq:
        problems.append(f"inserted: it lies beyond the chain's recorded head (seq {head.last_seq})")
    elif head.last_hash != stored:
        problems.append(f"edited: it is the chain's last event but its hash is not the recorded head "
                        f"{head.last_hash}")
    else:
        checks.append("it is the chain's recorded head")

    digest = None
    if row["session_id"]:
        try:
            digest = json.loads(row["details"] or "{}").get("recording_sha256")
        except (ValueError, AttributeError):
            digest = None
    if digest:
        cast = recording(conn, row["session_id"])
        if cast is None:
            checks.append("its recording is not in this mirror")
        elif recording_sha256(cast) != digest:
            problems.append(f"recording: {row['session_id']} hashes to {recording_sha256(cast)}, "
                            f"but the event records {digest}")
        else:
            checks.append("its recording has the digest the event records")
    return ChainStatus(row["id"], source, seq, stored, tuple(problems), tuple(checks))


def _verify_sessions(conn: sqlite3.Connection, report: VerifyReport) -> None:
    expected: dict[str, str] = {}
    for row in conn.execute("SELECT session_id, details FROM events WHERE session_id IS NOT NULL"):
        try:
            digest = json.loads(row["details"]).get("recording_sha256")
        except (ValueError, AttributeError):
            digest = None
        if digest:
            expected[row["session_id"]] = digest
    first: Problem | None = None
    for row in conn.execute("SELECT id, source, sha256, cast_gz FROM sessions ORDER BY id"):
        report.sessions += 1
        try:
            actual = recording_sha256(gzip.decompress(row["cast_gz"]))
        except (OSError, EOFError, TypeError):
            actual = "unreadable"
        wanted = expected.get(row["id"], row["sha256"])
        if first is None and (actual != row["sha256"] or actual != wanted):
            first = Problem("recording", row["source"], None, row["id"],
                            f"recording {row['id']} hashes to {actual}, but its event records {wanted}")
    if first:
        report.problems.append(first)
