"""Verify: recompute every chain, its Merkle tree and its recordings from the events, check them against the signed
checkpoints the mirror stored, and name the first problem of each kind in each chain (verify); or check one event
against its neighbours without walking its chain (chain_status).

verify reads each chain once, in seq order: each event's hash from its content and its link to the one before, and
(in the same pass) its leaf, the subtrees it closes (compared with merkle_nodes) and the tree head at every size a
checkpoint names (a long chain is first checked by worker processes over aligned seq ranges, and by that serial pass
only when they find anything off: see "the parallel pass" below). Then each stored checkpoint is checked: its note against its columns, its root against the root
recomputed from the events (never from merkle_nodes), and its signature with the key it must be signed by: the mirror's
own key (identity.py) for the local chain, the key sync pinned (sync_state.checkpoint_key) for every other, or a key
the caller knows from outside the mirror. Chains the
mirror no longer holds are still known from what it stored about them: their checkpoints, the `chain …` lines of
the mirror's signed local checkpoint, and the sync key files beside the database (data/sync-<name>.key).
docs/architecture.md ("Chains and verify") lists every kind and what it catches.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import contextlib
import json
import multiprocessing
import multiprocessing.pool
import os
import sqlite3
import threading
import urllib.parse
from typing import Callable, Iterator, Sequence

from auditkit.errors import StoreError
from auditkit.model import merkle, note
from auditkit.model.events import (
    FIELDS, GENESIS_HASH, KEY_SHIFT, canonical_json, chain_hash, timestamp_ms,
)
from auditkit.store import identity, trees
from auditkit.store.chains import LOCAL_SOURCE, ChainHead, chain_head, chain_heads
from auditkit.store.queries import row_dict
from auditkit.store.recordings import recording, recording_sha256
from auditkit.store.schema import SELECT_EVENT

PROBLEM_KINDS: tuple[str, ...] = (
    "edited", "deleted", "inserted", "reordered", "broken_link", "recording",
    "recording_missing", "tree", "checkpoint", "unsigned", "truncated", "rewritten", "dropped_chain",
)
# The kinds `auditkit verify --online` adds (mirror/online.py): the live checkpoint of a source could not be had or
# did not verify ("live"), or it does not extend the one the mirror stored ("forked").
ONLINE_KINDS: tuple[str, ...] = ("live", "forked")


@dataclasses.dataclass(frozen=True)
class Problem:
    kind: str
    source: str
    seq: int | None
    event_id: str | None
    message: str


@dataclasses.dataclass(frozen=True)
class Signature:
    """The newest verified checkpoint of a chain: what the chain was checked against."""

    source: str
    size: int
    root: bytes
    key: str
    signed_at: str | None


@dataclasses.dataclass
class VerifyReport:
    events: int = 0
    sessions: int = 0
    heads: list[ChainHead] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    signatures: dict[str, Signature] = dataclasses.field(default_factory=dict)
    signed: bool = True  # False: a store with no signed checkpoints at all and no mark of a mirror (a journal)
    notes: list[str] = dataclasses.field(default_factory=list)  # facts that are not problems (e.g. how far behind)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            signed = (", each against its signed checkpoint" if self.signed and self.heads
                      else ", no signed checkpoints (a gateway's journal)" if not self.signed else "")
            return (f"OK — {self.events:,} events in {len(self.heads)} chain(s){signed}, "
                    f"{self.sessions} recording(s) intact")
        return f"FAILED — {len(self.problems)} problem(s) in {self.events:,} events"

    def first(self, kind: str) -> Problem | None:
        return next((p for p in self.problems if p.kind == kind), None)


def verify(conn: sqlite3.Connection, progress: Callable[[int], None] | None = None,
           keys: Sequence[note.Verifier] = ()) -> VerifyReport:
    """Recompute every chain, tree and recording and check each chain against its signed checkpoints. Reports the
    first problem of each kind in each source. `keys` are verifier keys known from outside the mirror (an auditor's
    pins): a chain whose key name is among them must be signed by that key."""
    report = VerifyReport()
    heads = {h.source: h for h in chain_heads(conn)}
    pins = {row[0]: row[1] for row in conn.execute("SELECT source, checkpoint_key FROM sync_state")}
    stored = _stored_checkpoints(conn)
    sources = [r[0] for r in conn.execute("SELECT DISTINCT source FROM events ORDER BY source")]
    local_lines, local_problem = _local_chain_lines(conn, stored.get(LOCAL_SOURCE, []))
    # A store with none of these is a gateway's journal (its gateway signs on request and stores no checkpoint),
    # checked as hash chains and trees only.
    report.signed = bool(stored) or LOCAL_SOURCE in heads or LOCAL_SOURCE in sources or any(
        h.url for h in heads.values()) or any(pins.values()) or _has_key_file(conn)
    traces = _traces(conn) if report.signed else {}
    known = {k.name: k for k in keys}
    order = sorted(set(sources) | {s for s, h in heads.items() if h.last_seq > 0} | set(stored) | set(local_lines)
                   | set(traces))
    sizes_of = {source: {cp.size for cp in stored.get(source, [])}
                | ({local_lines[source][0]} if source in local_lines else set()) for source in order}
    plans = {source: plan for source in order
             if (plan := _plan(conn, source, heads.get(source), sizes_of[source])) is not None}
    with _dispatched(plans) as pending:
        for source in order:
            _verify_source(conn, source, heads, sources, stored, local_lines, local_problem, traces, pins, known,
                           sizes_of[source], pending.get(source), report, progress)
    for name in sorted(set(known) - set(heads) - set(sources)):
        report.notes.append(f"the mirror holds no chain '{name}': the key given for it was not used")
    report.heads = [heads[s] for s in sorted(heads)]
    _verify_sessions(conn, report)
    return report


def _verify_source(conn: sqlite3.Connection, source: str, heads: dict[str, ChainHead], sources: list[str],
                   stored: dict[str, list[trees.StoredCheckpoint]], local_lines: dict[str, tuple[int, bytes]],
                   local_problem: str | None, traces: dict[str, str], pins: dict[str, str | None],
                   known: dict[str, note.Verifier], sizes: set[int],
                   parts: Sequence[multiprocessing.pool.AsyncResult] | None, report: VerifyReport,
                   progress: Callable[[int], None] | None) -> None:
    """One chain checked (in parallel ranges when `parts` are given, serially when they are not or find anything
    off), and against its checkpoints; its problems, first of each kind, added to the report."""
    found: dict[str, Problem] = {}

    def note_problem(kind: str, seq: int | None, event_id: str | None, message: str,
                     _found: dict[str, Problem] = found, _source: str = source) -> None:
        if kind not in _found:
            _found[kind] = Problem(kind, _source, seq, event_id, f"{_source}: {message}")

    cps = stored.get(source, [])
    if source not in heads and source not in sources:
        _dropped(source, cps, local_lines.get(source), traces.get(source), note_problem)
    else:
        head = heads.get(source)
        pass_ = (_fast_chain(conn, source, head, report, progress, sizes, parts)
                 if parts is not None and head is not None else None)
        if pass_ is None:  # something is wrong (or the chain is small): the serial pass names it
            pass_ = _verify_chain(conn, source, heads.get(source), report, progress, sizes, note_problem)
        if report.signed:
            _check_signed(conn, source, cps, pins.get(source), known.get(source), pass_, report,
                          note_problem)
            if source in local_lines:
                size, root = local_lines[source]
                _check_root(source, size, root, "the mirror's signed local checkpoint names", pass_,
                            note_problem)
    if source == LOCAL_SOURCE and local_problem:
        note_problem("checkpoint", None, None, local_problem)
    report.problems.extend(sorted(found.values(), key=lambda p: PROBLEM_KINDS.index(p.kind)))


@dataclasses.dataclass
class _Pass:
    """What one pass over a chain's events found: the last seq it reached, and the tree head at each size asked for
    (as far as the seqs ran contiguous from 1 and every hash could be read)."""

    last_seq: int = 0
    roots: dict[int, bytes] = dataclasses.field(default_factory=dict)


class _Nodes:
    """merkle_nodes of one chain checked against the subtrees the pass closes: each level's expected hashes are
    gathered in order and compared CHUNK at a time with the stored ones (one indexed range read and one list
    comparison per chunk: the per-node work stays a list append)."""

    CHUNK = 4096

    def __init__(self, conn: sqlite3.Connection, source: str):
        self.conn, self.source = conn, source
        self.expected: dict[int, list[bytes]] = {}  # level → hashes of its next nodes, from index start[level]
        self.start: dict[int, int] = {}
        self.problem: str | None = None

    def add(self, level: int, value: bytes) -> None:
        nodes = self.expected.get(level)
        if nodes is None:
            nodes = self.expected[level] = []
            self.start[level] = 0
        nodes.append(value)
        if len(nodes) >= self.CHUNK:
            self._compare(level)

    def _compare(self, level: int) -> None:
        nodes, first = self.expected[level], self.start[level]
        self.expected[level], self.start[level] = [], first + len(nodes)
        if self.problem is not None or not nodes:
            return
        cursor = self.conn.cursor()
        cursor.row_factory = None
        stored = cursor.execute("SELECT idx, hash FROM merkle_nodes WHERE source = ? AND level = ? "
                                "AND idx BETWEEN ? AND ? ORDER BY idx",
                                (self.source, level, first, first + len(nodes) - 1)).fetchall()
        if len(stored) == len(nodes) and [bytes(h) for _, h in stored] == nodes:
            return
        held = {idx: bytes(h) for idx, h in stored}
        for index, value in enumerate(nodes, start=first):
            if index not in held:
                self.problem = f"merkle_nodes lacks the node at level {level}, index {index}"
            elif held[index] != value:
                self.problem = (f"the node at level {level}, index {index} in merkle_nodes is not the one the "
                                f"events give (covering seq {(index << level) + 1}–{(index + 1) << level})")
            if self.problem:
                return

    def finish(self, size: int, whole: bool) -> str | None:
        """Compare what is left and, when the tree covers the `whole` chain, look for stored nodes beyond its `size`
        leaves; the first problem found."""
        for level in sorted(self.expected):
            self._compare(level)
        if self.problem is None and whole:
            row = self.conn.execute(
                "SELECT level, idx FROM merkle_nodes WHERE source = ? AND ((idx + 1) << level) > ? LIMIT 1",
                (self.source, size)).fetchone()
            if row is not None:
                self.problem = (f"merkle_nodes holds a node at level {row[0]}, index {row[1]}, covering seqs up to "
                                f"{(row[1] + 1) << row[0]}, beyond the chain's {size} events")
        return self.problem


def _verify_chain(conn: sqlite3.Connection, source: str, head: ChainHead | None, report: VerifyReport,
                  progress: Callable[[int], None] | None, sizes: set[int],
                  note_problem: Callable[[str, int | None, str | None, str], None]) -> _Pass:
    link_breaks: list[tuple[int, str, str, str]] = []  # (seq, id, prev_hash, expected)
    hashes: set[str] = set()
    result = _Pass()
    building, tsize, edge = True, 0, []  # the tree over seqs 1..tsize, while they come contiguous and readable
    push, pop, sha256, fromhex = edge.append, edge.pop, hashlib.sha256, bytes.fromhex
    tree_nodes = _Nodes(conn, source)
    wanted = sorted(s for s in sizes if s > 0)
    if 0 in sizes:
        result.roots[0] = merkle.EMPTY_ROOT
    node_add = tree_nodes.add

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
            note_problem("edited", seq, event_id,
                         f"event seq {seq} ({event_id}) was edited: its content no longer hashes to {stored}")
        try:
            ms = timestamp_ms(row["timestamp"])
        except (ValueError, TypeError):
            ms = None
        if ms is not None and row["n"] >> KEY_SHIFT != ms:
            note_problem("reordered", seq, event_id,
                         f"event seq {seq} ({event_id}) was moved in time order: key {row['n']} does not belong to "
                         f"{row['timestamp']}")
        if seq == prev_seq:
            note_problem("inserted", seq, event_id, f"a second event with seq {seq} ({event_id}) was inserted")
        elif seq > prev_seq + 1:
            missing = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}–{seq - 1}"
            note_problem("deleted", prev_seq + 1, None, f"event(s) seq {missing} were deleted")
        elif row["prev_hash"] != prev_hash:
            link_breaks.append((seq, event_id, row["prev_hash"], prev_hash))
        if building:
            # the tree's right edge, extended by this leaf (RFC 9162's MTH folded as merkle.CompactRange does, inlined:
            # this runs once per event), checking each subtree it closes against merkle_nodes
            try:
                node = sha256(b"\x00" + fromhex(stored)).digest()
            except (ValueError, TypeError):
                building = False
            if building and seq != tsize + 1:
                building = False
            if building:
                index, level = tsize, 0
                while index & 1:
                    node = sha256(b"\x01" + pop() + node).digest()
                    index >>= 1
                    level += 1
                    node_add(level, node)
                push(node)
                tsize += 1
                if wanted and wanted[0] == tsize:
                    result.roots[wanted.pop(0)] = merkle.CompactRange(tsize, edge).root()
        hashes.add(stored)
        prev_seq, prev_hash = seq, stored
    result.last_seq = prev_seq
    if building or tsize:
        tree_problem = tree_nodes.finish(tsize, whole=building)
        if tree_problem:
            note_problem("tree", None, None, tree_problem)

    for seq, event_id, linked, expected in link_breaks:
        if linked in hashes:
            note_problem("reordered", seq, event_id,
                         f"event seq {seq} ({event_id}) links to another event of the chain, not to seq {seq - 1}")
        else:
            note_problem("broken_link", seq, event_id,
                         f"broken link at seq {seq} ({event_id}): prev_hash {linked} but seq {seq - 1} hashes to "
                         f"{expected}")

    if head is None:
        note_problem("inserted", 1, None, f"events of source '{source}' exist but the mirror never recorded that chain")
    elif prev_seq < head.last_seq:
        note_problem("deleted", prev_seq + 1, None,
                     f"the chain ends at seq {prev_seq} but the mirror recorded events up to seq {head.last_seq}")
    elif prev_seq > head.last_seq:
        note_problem("inserted", head.last_seq + 1, None,
                     f"events after seq {head.last_seq} (the recorded head) were inserted, up to seq {prev_seq}")
    elif prev_seq and prev_hash != head.last_hash:
        note_problem("edited", prev_seq, None,
                     f"the last event (seq {prev_seq}) hashes to {prev_hash}, not the recorded head {head.last_hash}")
    return result


# --- the parallel pass ----------------------------------------------------------------------------------------------
# A chain of at least PARALLEL_MIN events is first checked in aligned ranges of 2**RANGE_LEVEL seqs, one worker process per
# core, each opening the file read-only: the hashes, the links inside the range, the keys and the Merkle subtrees
# inside the range (a power of two, so each full range is one whole subtree). The parent joins the ranges'
# edges (links, the subtrees above RANGE_LEVEL, the tree heads at the checkpoint sizes). The parallel pass only ever says
# "intact, with these roots" or "something is off": on anything off, the serial pass (_verify_chain) runs over that
# chain and names the problems exactly as it always has, so the findings do not depend on which pass ran.

PARALLEL_MIN = 1 << 12
RANGE_LEVEL = 14  # ranges of 2**RANGE_LEVEL seqs
_COLUMNS = ("n",) + FIELDS
_SELECT_RANGE = (f"SELECT {', '.join('e.' + c for c in _COLUMNS)} FROM events e "
                 "WHERE e.source = ? AND e.source_seq BETWEEN ? AND ? ORDER BY e.source_seq, e.n")
_AT = {name: i for i, name in enumerate(_COLUMNS)}


@dataclasses.dataclass
class _Range:
    """What a worker found intact in seqs lo..hi: its edges for the joins, its Merkle edge at its end and at each
    checkpoint size inside it (subtrees of at most 2**RANGE_LEVEL leaves)."""

    lo: int
    hi: int
    first_prev: str
    last_hash: str
    edge: list[bytes]
    edges_at: dict[int, list[bytes]]


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _plan(conn: sqlite3.Connection, source: str, head: ChainHead | None, sizes: set[int]
          ) -> list[tuple[str, str, int, int, list[int]]] | None:
    """The ranges of a chain for the workers; None when it is small, has no file, its seqs do not run 1..head, or
    other threads run (then the serial pass checks it)."""
    if head is None or head.last_seq < PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
        return None
    if threading.active_count() > 1:  # a fork copies locks other threads may hold (SQLite's among them)
        return None
    try:
        path = identity.database_path(conn)
    except StoreError:
        return None
    lowest, highest, count = conn.execute(
        "SELECT min(source_seq), max(source_seq), count(*) FROM events WHERE source = ?", (source,)).fetchone()
    if lowest != 1 or highest != head.last_seq or count != highest:
        return None
    wanted = sorted(s for s in sizes if 0 < s <= highest)
    span = 1 << RANGE_LEVEL
    return [(str(path), source, lo, min(lo + span - 1, highest), [s for s in wanted if lo <= s < lo + span])
            for lo in range(1, highest + 1, span)]


@contextlib.contextmanager
def _dispatched(plans: dict[str, list[tuple[str, str, int, int, list[int]]]]
                ) -> Iterator[dict[str, list[multiprocessing.pool.AsyncResult]]]:
    """Every planned range of every chain handed to one pool of workers (so that chains overlap): source → its
    ranges' results, in seq order."""
    jobs = [job for plan in plans.values() for job in plan]
    if not jobs:
        yield {}
        return
    with multiprocessing.get_context("fork").Pool(min(_workers(), len(jobs))) as pool:
        yield {source: [pool.apply_async(_check_range, (job,)) for job in plan] for source, plan in plans.items()}


def _fast_chain(conn: sqlite3.Connection, source: str, head: ChainHead, report: VerifyReport,
                progress: Callable[[int], None] | None, sizes: set[int],
                parts: Sequence[multiprocessing.pool.AsyncResult]) -> _Pass | None:
    """The chain's ranges joined (links at their edges, the tree above them, the heads at `sizes`); None when
    anything is off."""
    highest = head.last_seq
    span = 1 << RANGE_LEVEL
    result = _Pass(last_seq=highest)
    if 0 in sizes:
        result.roots[0] = merkle.EMPTY_ROOT
    upper = _Nodes(conn, source)  # the levels above RANGE_LEVEL, checked by the parent
    edge: list[bytes] = []
    prev_hash, done = GENESIS_HASH, 0
    for pending in parts:
        part = pending.get()
        if part is None or part.first_prev != prev_hash:
            return None
        for size, local in part.edges_at.items():
            result.roots[size] = merkle.CompactRange(size, edge + local).root()
        if part.hi - part.lo + 1 == span:
            node, index, level = part.edge[0], (part.lo - 1) >> RANGE_LEVEL, RANGE_LEVEL
            while index & 1:
                node = hashlib.sha256(b"\x01" + edge.pop() + node).digest()
                index >>= 1
                level += 1
                upper.add(level, node)
            edge.append(node)
        else:
            edge.extend(part.edge)
        prev_hash = part.last_hash
        done += part.hi - part.lo + 1
        if progress:
            progress(report.events + done)
    if prev_hash != head.last_hash or upper.finish(highest, whole=True) is not None:
        return None
    report.events += done
    return result


def _check_range(job: tuple[str, str, int, int, list[int]]) -> _Range | None:
    """One worker's range (see above); None at the first thing that is not as an intact chain has it."""
    path, source, lo, hi, wanted = job
    conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
    try:
        return _range_pass(conn, source, lo, hi, wanted)
    except (ValueError, TypeError, sqlite3.Error):
        return None
    finally:
        conn.close()


def _range_pass(conn: sqlite3.Connection, source: str, lo: int, hi: int, wanted: list[int]) -> _Range | None:
    at_n, at_seq, at_prev, at_hash = _AT["n"], _AT["source_seq"], _AT["prev_hash"], _AT["hash"]
    at_ts = _AT["timestamp"]
    names = _COLUMNS
    loads, sha256, fromhex = json.loads, hashlib.sha256, bytes.fromhex
    edge: list[bytes] = []
    push, pop = edge.append, edge.pop
    nodes: dict[int, list[bytes]] = {level: [] for level in range(1, RANGE_LEVEL + 1)}
    adders = {level: nodes[level].append for level in nodes}
    edges_at: dict[int, list[bytes]] = {}
    want = set(wanted)
    expect, prev, first_prev, local = lo, None, "", 0
    for row in conn.execute(_SELECT_RANGE, (source, lo, hi)):
        seq, linked, stored = row[at_seq], row[at_prev], row[at_hash]
        if seq != expect:
            return None
        if prev is None:
            first_prev = linked
        elif linked != prev:
            return None
        values = dict(zip(names, row))
        details = values["details"]
        values["details"] = loads(details) if details else {}
        if chain_hash(linked, canonical_json(values)) != stored:
            return None
        if row[at_n] >> KEY_SHIFT != timestamp_ms(row[at_ts]):
            return None
        node = sha256(b"\x00" + fromhex(stored)).digest()
        index, level = local, 0
        while index & 1:
            node = sha256(b"\x01" + pop() + node).digest()
            index >>= 1
            level += 1
            adders[level](node)
        push(node)
        local += 1
        if seq in want:
            edges_at[seq] = list(edge)
        prev, expect = stored, seq + 1
    if prev is None or expect != hi + 1:
        return None
    cursor = conn.cursor()
    for level, expected in nodes.items():
        if expected:
            first = (lo - 1) >> level
            stored_nodes = cursor.execute(
                "SELECT hash FROM merkle_nodes WHERE source = ? AND level = ? AND idx BETWEEN ? AND ? ORDER BY idx",
                (source, level, first, first + len(expected) - 1)).fetchall()
            if [bytes(h) for (h,) in stored_nodes] != expected:
                return None
    return _Range(lo, hi, first_prev, prev, edge, edges_at)


# --- signed checkpoints ---------------------------------------------------------------------------------------------

def _stored_checkpoints(conn: sqlite3.Connection) -> dict[str, list[trees.StoredCheckpoint]]:
    out: dict[str, list[trees.StoredCheckpoint]] = {}
    for cp in trees.checkpoints(conn):
        out.setdefault(cp.source, []).append(cp)
    return out


def _open(cp: trees.StoredCheckpoint, verifier: note.Verifier | None) -> tuple[note.Checkpoint | None, str | None]:
    """(the checkpoint in cp's note, None) or (None, what is wrong): the note parses, agrees with its columns and
    names its chain, and (given `verifier`) its signature verifies with it."""
    try:
        if verifier is not None:
            text, _ = note.open_note(cp.note, verifier)
        else:
            text = cp.note.rpartition("\n\n")[0] + "\n"
        checkpoint = note.parse_checkpoint(text)
    except note.NoteError as e:
        return None, f"the stored checkpoint of size {cp.size} does not verify: {e}"
    if checkpoint.origin != cp.source:
        return None, f"the stored checkpoint of size {cp.size} is of log {checkpoint.origin!r}, not {cp.source!r}"
    if cp.signed_at != trees.signed_at(checkpoint):
        return None, (f"the stored checkpoint of size {cp.size} says it was signed at {cp.signed_at}, but its note "
                      f"says {trees.signed_at(checkpoint)}")
    if checkpoint.size != cp.size or checkpoint.root != cp.root:
        return None, (f"the stored checkpoint of size {cp.size} signs size {checkpoint.size}, root "
                      f"{_b64(checkpoint.root)}, not the size and root stored beside it ({_b64(cp.root)})")
    return checkpoint, None


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _key_for(conn: sqlite3.Connection, source: str, cp: trees.StoredCheckpoint, pin: str | None,
             outside: note.Verifier | None) -> tuple[note.Verifier | None, str | None]:
    """The key cp must verify with, or what is wrong: the given key from outside, the mirror's own key for the local
    chain, else the stored key, which must be the pinned one when a key is pinned."""
    try:
        stored_key = note.Verifier.parse(cp.key)
    except note.NoteError as e:
        return None, f"the stored checkpoint of size {cp.size} names no usable key: {e}"
    if outside is not None:
        if stored_key != outside:
            return None, (f"the stored checkpoint of size {cp.size} was checked with key {cp.key}, not the given "
                          f"{outside}")
        return outside, None
    if source == LOCAL_SOURCE:
        try:
            mine = identity.local_verifier(conn)
        except StoreError as e:
            return None, f"the mirror's key cannot be read, so its local checkpoints cannot be checked: {e}"
        if stored_key != mine:
            return None, (f"the stored checkpoint of size {cp.size} names key {cp.key}, not this mirror's key "
                          f"{mine}")
        return mine, None
    if pin and cp.key != pin:
        return None, f"the stored checkpoint of size {cp.size} names key {cp.key}, not the pinned {pin}"
    return stored_key, None


def _check_root(source: str, size: int, root: bytes, what: str, result: _Pass,
                note_problem: Callable[[str, int | None, str | None, str], None]) -> None:
    """The chain's events against a signed (size, root)."""
    if size > result.last_seq:
        note_problem("truncated", result.last_seq + 1, None,
                     f"{what} {size} events (root {_b64(root)}), but the chain holds {result.last_seq}: "
                     f"seq {result.last_seq + 1}–{size} were removed")
    elif size in result.roots and result.roots[size] != root:
        note_problem("rewritten", None, None,
                     f"{what} size {size} with root {_b64(root)}, but its events give root "
                     f"{_b64(result.roots[size])}: the chain was rewritten (an edit re-hashed to the end, or "
                     f"another history)")


def _check_signed(conn: sqlite3.Connection, source: str, cps: list[trees.StoredCheckpoint], pin: str | None,
                  outside: note.Verifier | None, result: _Pass, report: VerifyReport,
                  note_problem: Callable[[str, int | None, str | None, str], None]) -> None:
    """Every stored checkpoint of `source`: signed by the key it must be signed by, agreeing with its columns, and
    its root the one the events give at its size; then whether the newest one covers every event."""
    newest: trees.StoredCheckpoint | None = None
    keys: dict[str, tuple[note.Verifier | None, str | None]] = {}
    for cp in sorted(cps, key=lambda c: c.size):
        if cp.key not in keys:
            keys[cp.key] = _key_for(conn, source, cp, pin, outside)
        verifier, problem = keys[cp.key]
        if problem is None:
            _, problem = _open(cp, verifier)
        if problem:
            note_problem("checkpoint", None, None, problem)
            continue
        _check_root(source, cp.size, cp.root, "a signed checkpoint covers", result, note_problem)
        newest = cp
    if newest is not None:
        report.signatures[source] = Signature(source, newest.size, newest.root, newest.key, newest.signed_at)
    covered = newest.size if newest is not None else 0
    if result.last_seq > covered:
        what = (f"no signed checkpoint covers its {result.last_seq} events" if newest is None else
                f"seq {covered + 1}–{result.last_seq} are not covered by a signed checkpoint (the newest signs "
                f"size {covered})")
        hint = "sync it again" if source != LOCAL_SOURCE else "the mirror signs its local chain at every append"
        note_problem("unsigned", covered + 1, None, f"{what}; anything could have been appended there ({hint})")


def _local_chain_lines(conn: sqlite3.Connection, cps: list[trees.StoredCheckpoint]
                       ) -> tuple[dict[str, tuple[int, bytes]], str | None]:
    """The other chains (size, root) the newest local checkpoint names, if its signature verifies with the mirror's
    key; with the problem when it does not (reported once, on the local chain)."""
    if not cps:
        return {}, None
    newest = max(cps, key=lambda c: c.size)
    try:
        verifier = identity.local_verifier(conn)
    except StoreError as e:
        return {}, f"the mirror's key cannot be read, so its local checkpoints cannot be checked: {e}"
    checkpoint, problem = _open(newest, verifier)
    if checkpoint is None:
        return {}, problem
    lines: dict[str, tuple[int, bytes]] = {}
    for line in checkpoint.extensions:
        parsed = identity.parse_chain_line(line)
        if parsed is not None and parsed[0] != LOCAL_SOURCE:
            lines[parsed[0]] = (parsed[1], parsed[2])
    return lines, None


def _sync_key_files(conn: sqlite3.Connection) -> dict[str, str]:
    """Sources that have a sync key file beside the database (data/sync-<name>.key): source → file."""
    try:
        folder = identity.database_path(conn).parent
    except StoreError:
        return {}
    return {p.name[len("sync-"):-len(".key")]: str(p) for p in sorted(folder.glob("sync-*.key"))}


def _has_key_file(conn: sqlite3.Connection) -> bool:
    try:
        return identity.key_path(conn).exists()
    except StoreError:
        return False


def _traces(conn: sqlite3.Connection) -> dict[str, str]:
    """Sources known only from files beside the database: source → what names it."""
    return {name: f"the sync key file {path}" for name, path in _sync_key_files(conn).items()}


def _dropped(source: str, cps: list[trees.StoredCheckpoint], line: tuple[int, bytes] | None, trace: str | None,
             note_problem: Callable[[str, int | None, str | None, str], None]) -> None:
    """A chain with neither events nor a head: report it when anything says it existed."""
    evidence = []
    if cps:
        newest = max(cps, key=lambda c: c.size)
        evidence.append(f"{len(cps)} stored checkpoint(s), the newest of size {newest.size}")
    if line is not None:
        evidence.append(f"the mirror's signed local checkpoint names it at size {line[0]}")
    if trace is not None:
        evidence.append(f"{trace} is still there")
    if evidence:
        note_problem("dropped_chain", None, None,
                     "the mirror holds no events and no head of this chain, but " + "; ".join(evidence) +
                     " (if you deleted the mirror on purpose and started a new one, remove what is left of it)")


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
    expected: dict[str, tuple[str, str, int]] = {}  # session id → (digest, source, seq) its event records
    for row in conn.execute("SELECT session_id, details, source, source_seq FROM events "
                            "WHERE session_id IS NOT NULL"):
        try:
            digest = json.loads(row["details"]).get("recording_sha256")
        except (ValueError, AttributeError, TypeError):
            digest = None
        if isinstance(digest, str) and digest:
            expected[row["session_id"]] = (digest, row["source"], row["source_seq"])
    first: Problem | None = None
    held: set[str] = set()
    for row in conn.execute("SELECT id, source, sha256, cast_gz FROM sessions ORDER BY id"):
        report.sessions += 1
        held.add(row["id"])
        try:
            actual = recording_sha256(gzip.decompress(row["cast_gz"]))
        except (OSError, EOFError, TypeError):
            actual = "unreadable"
        wanted = expected[row["id"]][0] if row["id"] in expected else row["sha256"]
        if first is None and (actual != row["sha256"] or actual != wanted):
            first = Problem("recording", row["source"], None, row["id"],
                            f"recording {row['id']} hashes to {actual}, but its event records {wanted}")
    if first:
        report.problems.append(first)
    missing = sorted(set(expected) - held)
    if missing:
        digest, source, seq = expected[missing[0]]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        report.problems.append(Problem(
            "recording_missing", source, seq, missing[0],
            f"{source}: the event of seq {seq} names recording {missing[0]} (sha256 {digest}), but the mirror "
            f"holds no such recording{more}: it was deleted"))
