"""The SQLite store: schema and migrations, appending events to their hash chains, recordings, queries and verify.

This is the only module that writes SQL over events and sessions. Everything else (gateway journal, sync, CLI, TUI,
Datasette plugin) opens a database with open_db() and calls the functions here.

- `events.n` is a time-ordered key, (ms << KEY_SHIFT) + tiebreak: ORDER BY n is newest/oldest first, time ranges are
  ranges of n, keyset pages resume after an n, and each secondary index (actor, rack, …) is implicitly (column, n).
- One hash chain per `source`; `sync_state` holds each chain's head (last_seq, last_hash) and, for mirrored
  sources, the feed's URL. The mirror's own events are on the chain named `local`.
- Events and sessions are append-only: triggers refuse UPDATE and DELETE. verify() recomputes every chain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import operator
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from auditkit.model import filters as filters_mod
from auditkit.errors import ChainError, StoreError
from auditkit.model.events import (
    FIELDS,
    GENESIS_HASH,
    KEY_SHIFT,
    Event,
    canonical_json,
    chain_hash,
    dumps,
    from_dict,
    now_timestamp,
    seal_all,
    splice_hash,
    timestamp_ms,
)
from auditkit.model.filters import Filter

LOCAL_SOURCE = "local"
PAGE_SIZE = 8192
DEFAULT_DB = Path("data") / "audit.db"
_SLOT = 1 << KEY_SHIFT

# Columns of the events table, in order; `n` first.
EVENT_COLUMNS: tuple[str, ...] = ("n",) + FIELDS
_SELECT_EVENT = ", ".join(f"e.{c}" for c in FIELDS)


# --- schema ---------------------------------------------------------------------------------------------------------

_APPEND_ONLY = """
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} are append-only: UPDATE refused'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} are append-only: DELETE refused'); END;
"""

# The full-text index reads app and target only where the description does not already contain them (it nearly
# always does): any substring of a contained value is a substring of the description, so matches are the same, and
# the index is smaller and builds faster. events_text is its content view.
_FTS_TRIGGER = """
CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
  INSERT INTO events_fts(rowid, description, actor, app, target)
  VALUES (new.n, new.description, new.actor,
          CASE WHEN new.app IS NOT NULL AND instr(new.description, new.app) > 0 THEN NULL ELSE new.app END,
          CASE WHEN new.target IS NOT NULL AND instr(new.description, new.target) > 0 THEN NULL ELSE new.target END);
END;
"""

MIGRATIONS: list[str] = [
    # v1: events, sessions and chain heads.
    """
    CREATE TABLE events (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        actor TEXT NOT NULL,
        actor_type TEXT NOT NULL,
        rack TEXT NOT NULL,
        category TEXT NOT NULL,
        action TEXT NOT NULL,
        description TEXT NOT NULL,
        app TEXT,
        target TEXT,
        outcome TEXT NOT NULL,
        status INTEGER,
        method TEXT,
        path TEXT,
        source_ip TEXT,
        user_agent TEXT,
        request_id TEXT,
        details TEXT NOT NULL DEFAULT '{}',
        session_id TEXT,
        source TEXT NOT NULL,
        source_seq INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE UNIQUE INDEX events_source_seq ON events(source, source_seq);
    CREATE UNIQUE INDEX events_id ON events(id);
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        rack TEXT,
        app TEXT,
        actor TEXT,
        command TEXT,
        started_at TEXT,
        ended_at TEXT,
        duration_ms INTEGER,
        exit_code INTEGER,
        width INTEGER,
        height INTEGER,
        size INTEGER NOT NULL,
        truncated INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT NOT NULL,
        cast_gz BLOB NOT NULL
    );
    CREATE TABLE sync_state (
        source TEXT PRIMARY KEY,
        url TEXT,
        last_seq INTEGER NOT NULL DEFAULT 0,
        last_hash TEXT NOT NULL DEFAULT '""" + GENESIS_HASH + """',
        last_sync_at TEXT,
        updated_at TEXT
    );
    """
    + _APPEND_ONLY.format(table="events")
    + _APPEND_ONLY.format(table="sessions"),
    # v2: share links, the indexes chosen from bench/query.py's plans, and the trigram full-text index.
    """
    CREATE TABLE share_links (
        id TEXT PRIMARY KEY,
        filter TEXT NOT NULL,
        filter_text TEXT NOT NULL,
        since TEXT,
        until TEXT,
        expires_at TEXT,
        note TEXT,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        revoked_by TEXT
    );
    CREATE INDEX events_actor ON events(actor);
    CREATE INDEX events_rack ON events(rack);
    CREATE INDEX events_category ON events(category);
    CREATE INDEX events_action ON events(action);
    CREATE INDEX events_app ON events(app);
    CREATE INDEX events_target ON events(target);
    CREATE INDEX events_outcome ON events(outcome);
    CREATE INDEX events_rack_action ON events(rack, action);
    CREATE INDEX events_rack_category ON events(rack, category);
    CREATE INDEX events_category_action ON events(category, action);
    CREATE INDEX events_session ON events(session_id) WHERE session_id IS NOT NULL;
    CREATE VIEW events_text AS SELECT n, description, actor,
        CASE WHEN app IS NOT NULL AND instr(description, app) > 0 THEN NULL ELSE app END AS app,
        CASE WHEN target IS NOT NULL AND instr(description, target) > 0 THEN NULL ELSE target END AS target
        FROM events;
    CREATE VIRTUAL TABLE events_fts USING fts5(
        description, actor, app, target, content='events_text', content_rowid='n', tokenize='trigram'
    );
    INSERT INTO events_fts(events_fts) VALUES ('rebuild');
    """
    + _FTS_TRIGGER,
    # v3: the gateway's side of a journal — intents awaiting their outcome, and gateway users and keys.
    """
    CREATE TABLE intents (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        event TEXT NOT NULL
    );
    CREATE TABLE gateway_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'deploy_key')),
        role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'auditor', 'deploy')),
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        created_by TEXT,
        revoked_at TEXT,
        revoked_by TEXT
    );
    CREATE INDEX gateway_keys_name ON gateway_keys(name);
    """,
    # v4: secondary indexes of events dropped for a large load into an empty mirror, to be built again at its end
    # (or, after a crash, by the next writer: store.restore_indexes). The full-text index is no longer kept by a
    # per-row trigger but by one INSERT … SELECT per batch (_index_text): FTS5 flushes its pending terms at every
    # statement a trigger runs, so each row made its own segment (81 µs an event against 34).
    """
    CREATE TABLE deferred_indexes (
        name TEXT PRIMARY KEY,
        sql TEXT NOT NULL
    );
    DROP TRIGGER IF EXISTS events_fts_insert;
    -- Files made before v2 gained this view (its FTS table reads 'events') need it for _index_text.
    CREATE VIEW IF NOT EXISTS events_text AS SELECT n, description, actor,
        CASE WHEN app IS NOT NULL AND instr(description, app) > 0 THEN NULL ELSE app END AS app,
        CASE WHEN target IS NOT NULL AND instr(description, target) > 0 THEN NULL ELSE target END AS target
        FROM events;
    """,
    # v5: per-rack grants of gateway keys — a JSON list of rack names (as the gateway's config names them), or NULL
    # for every rack (what every key made before v5 keeps).
    """
    ALTER TABLE gateway_keys ADD COLUMN racks TEXT;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


# --- opening --------------------------------------------------------------------------------------------------------

def default_db_path() -> Path:
    """AUDITKIT_DB when set, else data/audit.db under the current directory."""
    return Path(os.environ.get("AUDITKIT_DB") or DEFAULT_DB)


def open_db(
    path: str | os.PathLike[str] | None = None,
    *,
    readonly: bool = False,
    durable: bool = False,
    migrate_to: int = SCHEMA_VERSION,
) -> sqlite3.Connection:
    """Open (creating and migrating) a store. `durable` syncs every commit to disk (the gateway's journal)."""
    path = Path(path) if path is not None else default_db_path()
    try:
        if readonly:
            if not path.exists():
                raise StoreError(f"no database at {path}")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists() or path.stat().st_size == 0
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            if new:
                # 8 KiB pages: a 1M-event bulk load and its index builds ~6% faster than with 4 KiB (bench).
                conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot open {path}: {e}") from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"{path} has schema v{version}, newer than this auditkit's v{SCHEMA_VERSION}: upgrade auditkit")
    if version < migrate_to:
        if readonly:
            conn.close()
            raise StoreError(f"{path} has schema v{version}; open it once read-write to migrate it")
        migrate(conn, migrate_to)
    return conn


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations after the database's user_version, each in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    while version < target:
        script = MIGRATIONS[version]
        version += 1
        # executescript() commits first; wrap the migration and its version bump in one transaction.
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    return version


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (re-entrant: inner blocks join the outer one)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- chains ---------------------------------------------------------------------------------------------------------

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
    """Seal unsealed events onto `source`'s chain and insert them in one transaction; returns the sealed events."""
    drafts = list(drafts)
    with transaction(conn):
        head = chain_head(conn, source)
        sealed = seal_all(drafts, source=source, after_seq=head.last_seq, after_hash=head.last_hash)
        _insert(conn, sealed, source)
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
        _index_text(conn, keys)
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
    _index_text(conn, keys)
    last = events[-1]
    _set_head(conn, source, last.source_seq, last.hash, synced_at)  # type: ignore[arg-type]


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


_FTS_BULK_ON = ("INSERT INTO events_fts(events_fts, rank) VALUES ('automerge', 0);"
                "INSERT INTO events_fts(events_fts, rank) VALUES ('crisismerge', 64);")
_FTS_BULK_OFF = ("INSERT INTO events_fts(events_fts, rank) VALUES ('automerge', 4);"
                 "INSERT INTO events_fts(events_fts, rank) VALUES ('crisismerge', 16);")


def defer_indexes(conn: sqlite3.Connection) -> bool:
    """Before loading a large backlog into an EMPTY store: drop the secondary (non-unique) indexes of events,
    remembering them in `deferred_indexes`, and turn FTS segment merging down (merging once at the end costs less:
    1M events 32 s → 20 s). Rows stay exactly as safe as before: each batch still commits with its chain head.
    restore_indexes() builds them again from sorted data; after a crash, the next writer's restore_indexes() does.
    Returns False (and changes nothing) when the store holds events or indexes are already deferred."""
    with transaction(conn):
        if conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None or indexes_deferred(conn):
            return False
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL "
            "AND sql NOT LIKE 'CREATE UNIQUE%'").fetchall()
        conn.executemany("INSERT INTO deferred_indexes(name, sql) VALUES (?, ?)", [tuple(r) for r in indexes])
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        if has_text_index(conn):
            _execute_each(conn, _FTS_BULK_ON)
    return True


def _execute_each(conn: sqlite3.Connection, script: str) -> None:
    """The statements of `script` inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def indexes_deferred(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM deferred_indexes LIMIT 1").fetchone() is not None


def restore_indexes(conn: sqlite3.Connection) -> bool:
    """Build the indexes defer_indexes() dropped, bring FTS merging back and refresh the planner's statistics.
    Returns whether there was anything to restore."""
    if not indexes_deferred(conn):
        return False
    conn.execute("PRAGMA threads = 2")  # a second sorter thread for the index builds (5.6 s → 4.6 s at 1M)
    try:
        with transaction(conn):
            for name, sql in conn.execute("SELECT name, sql FROM deferred_indexes").fetchall():
                conn.execute(sql.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
            if has_text_index(conn):
                _execute_each(conn, _FTS_BULK_OFF)
            conn.execute("DELETE FROM deferred_indexes")
    finally:
        conn.execute("PRAGMA threads = 0")
    conn.execute("ANALYZE")  # full statistics: with analysis_limit the planner chose action over actor
    return True


@contextlib.contextmanager
def bulk_load(conn: sqlite3.Connection) -> Iterator[None]:
    """Speed up loading many events into an empty store (the synthetic history): secondary indexes are deferred
    (defer_indexes) and built at the end, and the file is in rollback-journal mode without fsync (WAL would write
    every page twice): a crash during a bulk load can leave the new file unusable — delete it and load again. It
    goes back to WAL at the end. With another connection open, it stays in WAL."""
    if not defer_indexes(conn):
        yield
        return
    mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    if mode == "delete":
        conn.execute("PRAGMA synchronous = OFF")
    try:
        yield
    finally:
        restore_indexes(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA journal_mode = WAL")


# --- recordings -----------------------------------------------------------------------------------------------------

SESSION_FIELDS: tuple[str, ...] = (
    "id", "source", "rack", "app", "actor", "command", "started_at", "ended_at", "duration_ms", "exit_code",
    "width", "height", "size", "truncated", "sha256",
)


def recording_sha256(cast: bytes) -> str:
    return hashlib.sha256(cast).hexdigest()


def add_session(conn: sqlite3.Connection, meta: dict[str, Any], cast: bytes) -> str:
    """Store a recording (asciicast v2 bytes, kept gzipped) with its metadata; returns its sha256.

    When meta carries a sha256 it must match the bytes (a mirrored recording is checked, not trusted).
    """
    digest = recording_sha256(cast)
    if meta.get("sha256") not in (None, digest):
        raise ChainError(f"recording {meta.get('id')}: bytes hash to {digest}, not the expected {meta['sha256']}")
    row = {name: meta.get(name) for name in SESSION_FIELDS}
    row.update(sha256=digest, size=len(cast), truncated=int(bool(meta.get("truncated"))),
               source=meta.get("source") or LOCAL_SOURCE)
    if not row["id"]:
        raise StoreError("a recording needs an id")
    columns = SESSION_FIELDS + ("cast_gz",)
    values = tuple(row[c] for c in SESSION_FIELDS) + (gzip.compress(cast, mtime=0),)
    with transaction(conn):
        conn.execute(f"INSERT OR IGNORE INTO sessions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     values)
    return digest


def get_session(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {', '.join(SESSION_FIELDS)} FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return dict(row) if row else None


def recording(conn: sqlite3.Connection, session_id: str) -> bytes | None:
    """A recording's asciicast bytes, or None when the mirror does not hold it."""
    row = conn.execute("SELECT cast_gz FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return gzip.decompress(row[0]) if row else None


def session_events(conn: sqlite3.Connection, session_id: str) -> list[Event]:
    """The events of one interactive session (its exec/SSH event, and any other event that names it), oldest first."""
    rows = conn.execute(f"SELECT {_SELECT_EVENT} FROM events e WHERE e.session_id = ? ORDER BY e.n",
                        (session_id,)).fetchall()
    return [row_to_event(row) for row in rows]


# --- intents (the gateway's fail-closed journal) --------------------------------------------------------------------

def record_intents(conn: sqlite3.Connection, intents: Sequence[tuple[str, Event]]) -> None:
    """Durably note writes about to be forwarded (one transaction); each becomes an event once its outcome is known,
    or, if the process dies first, an event with outcome `unknown` (see recover_intents)."""
    with transaction(conn):
        conn.executemany(
            "INSERT INTO intents(id, created_at, event) VALUES (?, ?, ?)",
            [(intent_id, now_timestamp(), dumps(event.to_dict())) for intent_id, event in intents],
        )


def complete_intents(conn: sqlite3.Connection, outcomes: Sequence[tuple[str | None, Event]],
                     source: str) -> list[Event]:
    """Append the events (outcomes known) and drop their intents, in one transaction. An intent id of None appends
    an event that had no intent (e.g. a refusal recorded without forwarding anything)."""
    with transaction(conn):
        sealed = append(conn, [event for _, event in outcomes], source=source)
        conn.executemany("DELETE FROM intents WHERE id = ?", [(i,) for i, _ in outcomes if i is not None])
    return sealed


RECOVERED_AFTER_STOP = "the gateway stopped before the rack's answer was recorded"


def recover_intents(conn: sqlite3.Connection, source: str, ids: Sequence[str] | None = None, *,
                    reason: str = RECOVERED_AFTER_STOP) -> list[Event]:
    """Turn every intent left without an outcome (a crash between forwarding and recording) into an event with
    outcome `unknown`, `details.recovered` saying why. Called when a gateway starts; a running gateway passes the
    `ids` of the intents whose outcome it knows it will never have (see gateway/journal.py)."""
    with transaction(conn):
        rows = conn.execute("SELECT id, event FROM intents ORDER BY created_at, id").fetchall()
        if ids is not None:
            wanted = set(ids)
            rows = [row for row in rows if row["id"] in wanted]
        drafts = []
        for row in rows:
            data = json.loads(row["event"])
            data.update(outcome="unknown", status=None, source=None, source_seq=None, prev_hash=None, hash=None)
            details = dict(data.get("details") or {})
            details["recovered"] = reason
            data["details"] = details
            drafts.append(from_dict(data))
        sealed = complete_intents(conn, [(row["id"], d) for row, d in zip(rows, drafts)], source) if rows else []
    return sealed


# --- queries --------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Page:
    """One keyset page, newest first. Pass `next_before` back as `before` to get the next (older) page."""

    events: list[Event]
    next_before: int | None
    keys: list[int]


def row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """An events row as a dict of FIELDS, details parsed (ValueError when they are not JSON)."""
    data = {name: row[name] for name in FIELDS}
    data["details"] = json.loads(data["details"]) if data["details"] else {}
    return data


def row_to_event(row: sqlite3.Row | dict[str, Any]) -> Event:
    data = {name: row[name] for name in FIELDS}
    return from_dict(data)


def _statement(f: Filter | None, columns: str, now: dt.datetime | None, before: int | None,
               tail: str, fts: bool = True, after: int | None = None) -> tuple[str, list[Any]]:
    sf = filters_mod.to_sql(f or Filter(), now, fts=fts)
    params: list[Any] = []
    where = [sf.where]
    params.extend(sf.params)
    if sf.match is not None:
        key = "f.rowid"
        source = "events_fts f CROSS JOIN events e ON e.n = f.rowid"
        where.insert(0, "events_fts MATCH ?")
        params.insert(0, sf.match)
    else:
        key = "e.n"
        source = "events e"
    if before is not None:
        where.append(f"{key} < ?")
        params.append(before)
    if after is not None:
        where.append(f"{key} > ?")
        params.append(after)
    sql = f"SELECT {columns.format(key=key)} FROM {source} WHERE {' AND '.join(where)} {tail.format(key=key)}"
    return sql, params


def page(conn: sqlite3.Connection, f: Filter | None = None, *, limit: int = 100, before: int | None = None,
         after: int | None = None, oldest_first: bool = False, now: dt.datetime | None = None,
         fts: bool = True) -> Page:
    """The newest `limit` events matching `f` with after < key < before (fts=False: free text without the index).

    oldest_first=True gives the oldest `limit` of them instead, oldest first (a page just above a known key, when
    scrolling up); then pass `next_before` back as `after` to continue.
    """
    fts = _use_fts(conn, f, now, fts)
    order = "ASC" if oldest_first else "DESC"
    sql, params = _statement(f, "{key} AS n, " + _SELECT_EVENT, now, before, f"ORDER BY {{key}} {order} LIMIT ?",
                             fts, after=after)
    rows = conn.execute(sql, params + [limit]).fetchall()
    events = [row_to_event(r) for r in rows]
    keys = [r["n"] for r in rows]
    return Page(events, keys[-1] if rows and len(rows) == limit else None, keys)


# Below this many candidates from the other qualifiers, testing free text on those rows beats walking the FTS
# matches (bench/query.py: ~1.7 µs per scanned row against ~0.75 µs per FTS match, and a common word has 100k+).
_SCAN_LIMIT = 30_000


def _index_text(conn: sqlite3.Connection, keys: Sequence[int]) -> None:
    """Add the events just inserted under `keys` to the full-text index, in the caller's transaction."""
    if keys and has_text_index(conn):
        conn.execute("INSERT INTO events_fts(rowid, description, actor, app, target) "
                     "SELECT n, description, actor, app, target FROM events_text "
                     "WHERE n IN (SELECT value FROM json_each(?))", (json.dumps(list(keys)),))


def has_text_index(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'events_fts'").fetchone() is not None


def drop_text_index(conn: sqlite3.Connection) -> None:
    """Stop keeping the full-text index (a gateway journal: its writes are the hot path, and nobody searches it
    but through `auditkit events`, whose free text then scans). Mirrors keep theirs."""
    with transaction(conn):
        conn.execute("DROP TABLE IF EXISTS events_fts")
        conn.execute("DROP VIEW IF EXISTS events_text")


def _use_fts(conn: sqlite3.Connection, f: Filter | None, now: dt.datetime | None, fts: bool) -> bool:
    """Whether free text should be answered through the FTS index for this filter (the query plan's one choice
    SQLite cannot make: it does not know how many rows an FTS phrase matches). Scanning is chosen only for ASCII
    terms, where the scan's case folding and the trigram index's agree exactly."""
    if not fts or f is None or not any(t.key == filters_mod.TEXT for t in f.terms):
        return fts
    if not has_text_index(conn):
        return False
    text = f.values(filters_mod.TEXT)
    others = f.without(filters_mod.TEXT)
    if not text or others.is_empty or not all(v.isascii() for v in text):
        return True
    if all(t.key in filters_mod.TIME_KEYS for t in others.terms):
        return True
    return count(conn, others, now=now) > _SCAN_LIMIT


def count(conn: sqlite3.Connection, f: Filter | None = None, *, now: dt.datetime | None = None,
          fts: bool = True, after: int | None = None, before: int | None = None) -> int:
    """How many events match `f` (with after < key < before, when given)."""
    f = f or Filter()
    fts = _use_fts(conn, f, now, fts)
    sf = filters_mod.to_sql(f, now, fts=fts)
    if sf.match is not None and sf.where == "1" and after is None and before is None:
        return conn.execute("SELECT count(*) FROM events_fts WHERE events_fts MATCH ?", (sf.match,)).fetchone()[0]
    sql, params = _statement(f, "count(*)", now, before, "", fts, after=after)
    return conn.execute(sql, params).fetchone()[0]


def key_at(conn: sqlite3.Connection, f: Filter | None, offset: int, *, now: dt.datetime | None = None,
           before: int | None = None, total: int | None = None) -> int | None:
    """The key of the event at `offset` (0 = newest) among those matching `f` with key < before, or None past the
    end. Costs O(offset) index steps (~70 ms at 500,000 on 1M events); given `total` (their count), an offset in
    the older half is counted from the oldest end instead, so the last page of a million is as quick as the first.
    """
    if offset < 0:
        return None
    fts = _use_fts(conn, f, now, True)
    order, skip = "DESC", offset
    if total is not None:
        if offset >= total:
            return None
        if offset > total // 2:
            order, skip = "ASC", total - 1 - offset
    sql, params = _statement(f, "{key} AS n", now, before, f"ORDER BY {{key}} {order} LIMIT 1 OFFSET ?", fts)
    row = conn.execute(sql, params + [skip]).fetchone()
    return row[0] if row else None


def data_version(conn: sqlite3.Connection) -> int:
    """A number that changes whenever another connection commits to the database (compare values read on the
    same connection only): a cheap "has anything been written?" for pollers."""
    return conn.execute("PRAGMA data_version").fetchone()[0]


def iter_rows(conn: sqlite3.Connection, f: Filter | None = None, *, now: dt.datetime | None = None,
              batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every matching event as a dict (details parsed), newest first, streamed in keyset batches of `batch`."""
    before = None
    fts = _use_fts(conn, f, now, True)
    while True:
        sql, params = _statement(f, "{key} AS n, " + _SELECT_EVENT, now, before, "ORDER BY {key} DESC LIMIT ?",
                                 fts)
        rows = conn.execute(sql, params + [batch]).fetchall()
        for row in rows:
            yield row_dict(row)
        if len(rows) < batch:
            return
        before = rows[-1]["n"]


def events_after(conn: sqlite3.Connection, source: str, after: int, limit: int) -> list[dict[str, Any]]:
    """A chain's events with seq > after, in seq order (a feed page), as dicts with details parsed."""
    rows = conn.execute(
        f"SELECT {_SELECT_EVENT} FROM events e WHERE e.source = ? AND e.source_seq > ? ORDER BY e.source_seq LIMIT ?",
        (source, after, limit),
    ).fetchall()
    return [row_dict(row) for row in rows]


def get_event(conn: sqlite3.Connection, event_id: str) -> Event | None:
    row = conn.execute(f"SELECT {_SELECT_EVENT} FROM events e WHERE e.id = ?", (event_id,)).fetchone()
    return row_to_event(row) if row else None


def session_event(conn: sqlite3.Connection, session_id: str, f: Filter | None = None, *,
                  now: dt.datetime | None = None) -> Event | None:
    """The newest event matching `f` that references recording `session_id` (None: no such event in scope)."""
    fts = _use_fts(conn, f, now, True)
    sql, params = _statement(f, "{key} AS n, " + _SELECT_EVENT, now, None,
                             "AND e.session_id = ? ORDER BY {key} DESC LIMIT 1", fts)
    row = conn.execute(sql, params + [session_id]).fetchone()
    return row_to_event(row) if row else None


def held_sessions(conn: sqlite3.Connection, session_ids: Iterable[str]) -> set[str]:
    """Which of these recordings the database holds."""
    wanted = sorted({s for s in session_ids if s})
    if not wanted:
        return set()
    rows = conn.execute(f"SELECT id FROM sessions WHERE id IN ({', '.join('?' * len(wanted))})", wanted)
    return {r[0] for r in rows}


def value_counts(conn: sqlite3.Connection, key: str, f: Filter | None = None, *,
                 now: dt.datetime | None = None, limit: int = 200) -> list[tuple[str, int]]:
    """(value, count) of a qualifier's column within `f` (the key's own terms left out), most frequent first."""
    column = filters_mod.COLUMNS[key]
    scope = (f or Filter()).without(key)
    sql, params = _statement(scope, f"e.{column} AS value, count(*) AS c", now, None,
                             f"AND e.{column} IS NOT NULL GROUP BY e.{column} ORDER BY c DESC, value LIMIT ?")
    return [(r["value"], r["c"]) for r in conn.execute(sql, params + [limit]).fetchall()]


# --- verify ---------------------------------------------------------------------------------------------------------

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
        f"SELECT e.n AS n, {_SELECT_EVENT} FROM events e WHERE e.source = ? ORDER BY e.source_seq, e.n", (source,)
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
    row = conn.execute(f"SELECT e.n AS n, {_SELECT_EVENT} FROM events e WHERE e.id = ?", (event_id,)).fetchone()
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
