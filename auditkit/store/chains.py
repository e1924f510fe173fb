"""The hash chains: each chain's head, sealing and appending events onto a chain, and checking that a batch sealed
elsewhere (a gateway's feed) continues the chain it claims.

One hash chain per `source`; `sync_state` holds each chain's head (last_seq, last_hash). The mirror's own events are
on the chain named LOCAL_SOURCE. Every append inserts its rows, indexes their text, extends the chain's Merkle tree
(trees.extend) and moves the head in one transaction.
"""

from __future__ import annotations

import dataclasses
import operator
import sqlite3
from typing import Any, Iterable, Sequence

from auditkit.errors import ChainError, StoreError
from auditkit.model.events import (
    FIELDS,
    GENESIS_HASH,
    KEY_SHIFT,
    Event,
    dumps,
    now_timestamp,
    seal_all,
    splice_hash,
    timestamp_ms,
)
from auditkit.store import identity, trees
from auditkit.store.bulk import index_text
from auditkit.store.db import transaction
from auditkit.store.identity import LOCAL_SOURCE
from auditkit.store.schema import EVENT_COLUMNS

_SLOT = 1 << KEY_SHIFT


@dataclasses.dataclass(frozen=True)
class ChainHead:
    source: str
    last_seq: int
    last_hash: str
    url: str | None = None
    last_sync_at: str | None = None


def chain_head(conn: sqlite3.Connection, source: str) -> ChainHead:
    row = conn.execute("SELECT * FROM sync_state WHERE source = ?", (source,)).fetchone()
    if row is None:
        return ChainHead(source, 0, GENESIS_HASH)
    return ChainHead(row["source"], row["last_seq"], row["last_hash"], row["url"], row["last_sync_at"])


def chain_heads(conn: sqlite3.Connection) -> list[ChainHead]:
    rows = conn.execute("SELECT * FROM sync_state ORDER BY source").fetchall()
    return [ChainHead(r["source"], r["last_seq"], r["last_hash"], r["url"], r["last_sync_at"]) for r in rows]


def set_source_url(conn: sqlite3.Connection, source: str, url: str | None) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO sync_state(source, url, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(source) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at",
            (source, url, now_timestamp()),
        )


def append(conn: sqlite3.Connection, drafts: Iterable[Event], source: str = LOCAL_SOURCE) -> list[Event]:
    """Seal unsealed events onto `source`'s chain and insert them in one transaction; returns the sealed events.
    An append to the mirror's own chain (LOCAL_SOURCE) also signs and stores its checkpoint with the mirror's key
    (identity.checkpoint_local), in the same transaction."""
    drafts = list(drafts)
    with transaction(conn):
        head = chain_head(conn, source)
        sealed = seal_all(drafts, source=source, after_seq=head.last_seq, after_hash=head.last_hash)
        _insert(conn, sealed, source)
        if source == LOCAL_SOURCE and sealed and _has_trees(conn):
            identity.checkpoint_local(conn)
    return sealed


def append_sealed(conn: sqlite3.Connection, events: Sequence[Event], *, synced_at: str | None = None,
                  check_hashes: bool = True) -> int:
    """Insert events sealed elsewhere (a gateway's journal) after checking that they continue their chain.

    All events must share one source. Raises ChainError, inserting nothing, when the first event does not link
    to the mirrored head or any event's hash is not the one its content implies. Returns how many were inserted.
    check_hashes=False skips recomputing each hash (seq and links are still checked): only when the caller has
    checked them already (sync checks each page with check_chain as it fetches it); verify() re-checks everything.
    """
    if not events:
        return 0
    source = events[0].source
    if source is None or any(e.source != source for e in events):
        raise ChainError("a sealed batch must hold events of exactly one source")
    with transaction(conn):
        head = chain_head(conn, source)
        check_chain(events, head.last_seq, head.last_hash, check_hashes=check_hashes)
        _insert(conn, events, source, synced_at=synced_at)
    return len(events)


def check_chain(events: Sequence[Event], seq: int, prev: str, *, check_hashes: bool = True) -> tuple[int, str]:
    """Raise ChainError unless `events` continue the chain whose head is (seq, prev): contiguous seqs, each
    prev_hash the hash before it, and (check_hashes) each hash the one its content implies. Returns the new head."""
    for event in events:
        source = event.source
        if event.source_seq != seq + 1:
            raise ChainError(
                f"{source}: expected seq {seq + 1} but got {event.source_seq} (a gap, a repeat or a reorder)"
            )
        if event.prev_hash != prev:
            raise ChainError(
                f"{source}: broken chain at seq {event.source_seq}: prev_hash {event.prev_hash} "
                f"but the mirrored head is {prev}"
            )
        expected = event.compute_hash() if check_hashes else event.hash
        if event.hash != expected:
            raise ChainError(
                f"{source}: event seq {event.source_seq} carries hash {event.hash} but its content hashes "
                f"to {expected}"
            )
        seq, prev = event.source_seq, event.hash  # type: ignore[assignment]
    return seq, prev


def append_halves(conn: sqlite3.Connection, source: str,
                  items: Sequence[tuple[int, Sequence[Any], bytes, bytes]]) -> int:
    """Seal and insert events whose canonical JSON was made elsewhere (the synthetic history's workers), in one
    transaction. Each item is (ms, values, before, after): the event's FIELDS values with source and source_seq
    set, details as canonical JSON text and prev_hash/hash still empty, its timestamp in ms, and the halves
    events.seal_halves() cut at that seq. Seqs must continue `source`'s head; this fills in the links."""
    if not items:
        return 0
    with transaction(conn):
        head = chain_head(conn, source)
        seq, prev = head.last_seq, head.last_hash
        keys = _assign_keys(conn, [ms for ms, _, _, _ in items])
        rows = []
        for key, (_, values, before, after) in zip(keys, items):
            seq += 1
            if values[_SOURCE_AT] != source or values[_SEQ_AT] != seq:
                raise ChainError(f"{source}: expected seq {seq} but got {values[_SEQ_AT]} of {values[_SOURCE_AT]}")
            digest = splice_hash(prev, before, after)
            rows.append((key, *values[:_PREV_AT], prev, *values[_PREV_AT + 1:_HASH_AT], digest))
            prev = digest
        try:
            conn.executemany(_INSERT_EVENT, rows)
        except sqlite3.IntegrityError as e:
            raise ChainError(f"{source}: refused by the database ({e}); nothing of this batch was written") from None
        index_text(conn, keys)
        trees.extend(conn, source, head.last_seq, [row[-1] for row in rows])
        _set_head(conn, source, seq, prev, None)
    return len(items)


_SOURCE_AT, _SEQ_AT = FIELDS.index("source"), FIELDS.index("source_seq")
_PREV_AT, _HASH_AT = FIELDS.index("prev_hash"), FIELDS.index("hash")
_DETAILS_AT = FIELDS.index("details")
_BEFORE_DETAILS = operator.attrgetter(*FIELDS[:_DETAILS_AT])
_AFTER_DETAILS = operator.attrgetter(*FIELDS[_DETAILS_AT + 1:])
_INSERT_EVENT = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})")


def _insert(conn: sqlite3.Connection, events: Sequence[Event], source: str, synced_at: str | None = None) -> None:
    keys = _assign_keys(conn, [timestamp_ms(e.timestamp) for e in events])
    rows = [(key, *_BEFORE_DETAILS(e), dumps(e.details if type(e.details) is dict else dict(e.details)),
             *_AFTER_DETAILS(e)) for key, e in zip(keys, events)]
    try:
        conn.executemany(_INSERT_EVENT, rows)
    except sqlite3.IntegrityError as e:
        raise ChainError(f"{source}: refused by the database ({e}); nothing of this batch was written") from None
    index_text(conn, keys)
    trees.extend(conn, source, events[0].source_seq - 1, [e.hash for e in events])  # type: ignore[operator,misc]
    last = events[-1]
    _set_head(conn, source, last.source_seq, last.hash, synced_at)  # type: ignore[arg-type]


def _has_trees(conn: sqlite3.Connection) -> bool:
    return conn.execute("PRAGMA user_version").fetchone()[0] >= trees.TREES_VERSION


def _set_head(conn: sqlite3.Connection, source: str, seq: int, digest: str, synced_at: str | None) -> None:
    conn.execute(
        "INSERT INTO sync_state(source, last_seq, last_hash, last_sync_at, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(source) DO UPDATE SET last_seq = excluded.last_seq, last_hash = excluded.last_hash, "
        "last_sync_at = coalesce(excluded.last_sync_at, sync_state.last_sync_at), updated_at = excluded.updated_at",
        (source, seq, digest, synced_at, now_timestamp()),
    )


def _assign_keys(conn: sqlite3.Connection, ms_values: Sequence[int]) -> list[int]:
    """Time-ordered keys for new events: ms << KEY_SHIFT, plus the first free tiebreak within that millisecond.

    One query finds the highest key already used in each millisecond of the batch's time range."""
    if not ms_values:
        return []
    low, high = min(ms_values), max(ms_values)
    used = dict(conn.execute(
        "SELECT n >> ? AS ms, max(n) FROM events WHERE n >= ? AND n < ? GROUP BY ms",
        (KEY_SHIFT, low << KEY_SHIFT, (high + 1) << KEY_SHIFT)).fetchall())
    keys = []
    for ms in ms_values:
        last = used.get(ms)
        key = (ms << KEY_SHIFT) if last is None else last + 1
        if key >= (ms << KEY_SHIFT) + _SLOT:
            raise StoreError(f"more than {_SLOT} events in one millisecond ({ms})")
        used[ms] = key
        keys.append(key)
    return keys
