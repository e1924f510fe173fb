"""Each chain as an RFC 6962 Merkle log: its nodes kept as events are appended, its tree heads and proofs read from
them, and the signed checkpoints stored for it.

The leaves of chain C are its events in seq order: leaf i is the event of seq i + 1, and a leaf's data is that
event's 32-byte hash (the hex `hash` column, decoded), so the hash chain and its golden vectors stay as they were.
`merkle_nodes` holds the hash of every complete subtree of 2^level leaves, level ≥ 1 (a leaf hash is one index
lookup of its event away, and leaving level 0 out halves the table). chains.py calls extend() in the transaction of
every append, so a tree head or a proof reads O(log n) rows and never the chain.

These functions trust what the file holds; verify.py is what recomputes the tree from the events and compares it
with the nodes and with the signed checkpoints.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Iterable

from auditkit.errors import ChainError, StoreError
from auditkit.model import merkle, note
from auditkit.model.events import now_timestamp

TIMESTAMP_EXTENSION = "timestamp "
TREES_VERSION = 6  # the schema version that added merkle_nodes


@dataclasses.dataclass(frozen=True)
class StoredCheckpoint:
    source: str
    size: int
    root: bytes
    note: str  # the signed note, as received or signed
    key: str  # the verifier key it was checked with: <name>+<hex key id>+<base64 key>
    signed_at: str | None
    stored_at: str


def leaf(hash_hex: str) -> bytes:
    """The leaf hash of an event whose `hash` column is hash_hex."""
    return merkle.leaf_hash(bytes.fromhex(hash_hex))


def tree_size(conn: sqlite3.Connection, source: str) -> int:
    row = conn.execute("SELECT last_seq FROM sync_state WHERE source = ?", (source,)).fetchone()
    return row[0] if row else 0


def nodes(conn: sqlite3.Connection, source: str) -> merkle.Nodes:
    """merkle.Nodes over the stored tree of `source`; StoreError when a node the tree must have is missing."""

    def node(level: int, index: int) -> bytes:
        if level == 0:
            row = conn.execute("SELECT hash FROM events WHERE source = ? AND source_seq = ?",
                               (source, index + 1)).fetchone()
            if row is None:
                raise StoreError(f"{source}: no event of seq {index + 1} for leaf {index} of its Merkle tree")
            return leaf(row[0])
        row = conn.execute("SELECT hash FROM merkle_nodes WHERE source = ? AND level = ? AND idx = ?",
                           (source, level, index)).fetchone()
        if row is None:
            raise StoreError(f"{source}: its Merkle tree has no node at level {level}, index {index} "
                             f"(run `auditkit verify`)")
        return row[0]

    return node


def _size(conn: sqlite3.Connection, source: str, size: int | None) -> int:
    have = tree_size(conn, source)
    if size is None:
        return have
    if not 0 <= size <= have:
        raise merkle.ProofError(f"{source}: no tree of size {size} (the chain holds {have} events)")
    return size


def tree_root(conn: sqlite3.Connection, source: str, size: int | None = None) -> bytes:
    """The tree head of `source`'s first `size` leaves (default: all of them)."""
    return merkle.root(nodes(conn, source), _size(conn, source, size))


def inclusion_proof(conn: sqlite3.Connection, source: str, seq: int, size: int) -> list[bytes]:
    """The inclusion proof of the event of `seq` (leaf seq - 1) in the tree of `size` leaves."""
    return merkle.inclusion_proof(nodes(conn, source), seq - 1, _size(conn, source, size))


def consistency_proof(conn: sqlite3.Connection, source: str, old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof(nodes(conn, source), old, _size(conn, source, new))


def compact_range(conn: sqlite3.Connection, source: str, size: int | None = None) -> merkle.CompactRange:
    """The right edge of the tree of `size` leaves: what a new leaf needs to extend it."""
    size = _size(conn, source, size)
    node, edge, start = nodes(conn, source), [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            edge.append(node(level, start >> level))
            start += 1 << level
    return merkle.CompactRange(size, edge)


def extend(conn: sqlite3.Connection, source: str, after: int, hashes: Iterable[str]) -> merkle.CompactRange:
    """Add the leaves of events seq after+1, after+2, … (their hex hashes) to `source`'s tree, storing every
    subtree they complete. Runs inside the caller's transaction (chains.py's appends). A file not migrated to v6
    yet (opened with an older migrate_to) has no tree: its migration builds it from the events."""
    if conn.execute("PRAGMA user_version").fetchone()[0] < TREES_VERSION:
        return merkle.CompactRange()
    edge = compact_range(conn, source, after)
    rows = []
    for digest in hashes:
        for level, index, value in edge.append(merkle.leaf_hash(bytes.fromhex(digest))):
            if level:
                rows.append((source, level, index, value))
    try:
        conn.executemany("INSERT INTO merkle_nodes(source, level, idx, hash) VALUES (?, ?, ?, ?)", rows)
    except sqlite3.IntegrityError:
        raise ChainError(f"{source}: merkle_nodes already holds nodes past the chain's head at seq {after} (the file "
                         f"was edited): run `auditkit verify`; nothing of this batch was written") from None
    return edge


def rebuild_all(conn: sqlite3.Connection) -> None:
    """Build the tree of every chain from its events (the v6 migration, on files made before trees were kept)."""
    sources = [row[0] for row in conn.execute("SELECT source, last_seq FROM sync_state WHERE last_seq > 0")]
    for source in sources:
        rows = conn.execute("SELECT hash FROM events WHERE source = ? ORDER BY source_seq", (source,))
        extend(conn, source, 0, (row[0] for row in rows))


# --- checkpoints ----------------------------------------------------------------------------------------------------

def signed_at(checkpoint: note.Checkpoint) -> str | None:
    """The time a checkpoint says it was signed (its `timestamp …` extension line), if it says."""
    for line in checkpoint.extensions:
        if line.startswith(TIMESTAMP_EXTENSION):
            return line[len(TIMESTAMP_EXTENSION):]
    return None


def sign_checkpoint(conn: sqlite3.Connection, source: str, signer: note.Signer, *, origin: str | None = None,
                    size: int | None = None) -> str:
    """A signed checkpoint note of `source`'s tree (default: all of it), origin = the chain name."""
    size = _size(conn, source, size)
    checkpoint = note.Checkpoint(origin or source, size, tree_root(conn, source, size),
                                 (TIMESTAMP_EXTENSION + now_timestamp(),))
    return checkpoint.sign(signer)


def _stored(row: sqlite3.Row) -> StoredCheckpoint:
    return StoredCheckpoint(row["source"], row["size"], bytes(row["root"]), row["note"], row["key"],
                            row["signed_at"], row["stored_at"])


def add_checkpoint(conn: sqlite3.Connection, source: str, note_text: str, key_text: str) -> StoredCheckpoint:
    """Store a signed checkpoint of `source` that the caller has verified with `key_text`; the same (size, root)
    twice is stored once."""
    text = note_text.split("\n\n", 1)[0] + "\n"
    checkpoint = note.parse_checkpoint(text)
    stored = StoredCheckpoint(source, checkpoint.size, checkpoint.root, note_text, key_text, signed_at(checkpoint),
                              now_timestamp())
    conn.execute("INSERT OR IGNORE INTO checkpoints(source, size, root, note, key, signed_at, stored_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", dataclasses.astuple(stored))
    return stored


def latest_checkpoint(conn: sqlite3.Connection, source: str) -> StoredCheckpoint | None:
    row = conn.execute("SELECT * FROM checkpoints WHERE source = ? ORDER BY size DESC, stored_at DESC LIMIT 1",
                       (source,)).fetchone()
    return _stored(row) if row else None


def checkpoints(conn: sqlite3.Connection, source: str | None = None) -> list[StoredCheckpoint]:
    if source is None:
        rows = conn.execute("SELECT * FROM checkpoints ORDER BY source, size").fetchall()
    else:
        rows = conn.execute("SELECT * FROM checkpoints WHERE source = ? ORDER BY size", (source,)).fetchall()
    return [_stored(r) for r in rows]
