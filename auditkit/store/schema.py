"""The store's schema: every table of an auditkit SQLite file, and the migrations that build it.

A file's `PRAGMA user_version` is the number of MIGRATIONS applied to it (db.migrate applies the rest). The SQL is
written below in one section per owner — the code that reads and writes those tables — and MIGRATIONS joins the
sections' pieces in the order each version first shipped them. A shipped migration never changes: a file made by
any version must migrate to the schema a fresh file gets (tests/store/test_store.py checks both).

- `events.n` is a time-ordered key, (ms << KEY_SHIFT) + tiebreak: ORDER BY n is newest/oldest first, time ranges are
  ranges of n, keyset pages resume after an n, and each secondary index (actor, rack, …) is implicitly (column, n).
- Events and sessions are append-only: triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from auditkit.model.events import FIELDS, GENESIS_HASH

# Columns of the events table, in order; `n` first.
EVENT_COLUMNS: tuple[str, ...] = ("n",) + FIELDS
# The event's FIELDS as a select list over `events e`.
SELECT_EVENT = ", ".join(f"e.{c}" for c in FIELDS)


# --- the event tables: events, sessions (recordings), their indexes and the full-text index -------------------------
# Owner: auditkit.store — chains.py appends, bulk.py keeps the indexes, queries.py reads, recordings.py, verify.py.

_EVENTS_V1 = """
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
"""

_SESSIONS_V1 = """    CREATE TABLE sessions (
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
"""

_APPEND_ONLY = """
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} are append-only: UPDATE refused'); END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} are append-only: DELETE refused'); END;
"""
_APPEND_ONLY_V1 = _APPEND_ONLY.format(table="events") + _APPEND_ONLY.format(table="sessions")

# v2: the indexes chosen from bench/query.py's plans.
_EVENT_INDEXES_V2 = """    CREATE INDEX events_actor ON events(actor);
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
"""

# v2: the trigram full-text index. It reads app and target only where the description does not already contain
# them (it nearly always does): any substring of a contained value is a substring of the description, so matches
# are the same, and the index is smaller and builds faster. events_text is its content view. v2 kept it with a
# per-row trigger, which v4 drops for one INSERT … SELECT per batch (bulk.index_text).
_FTS_TRIGGER = """
CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
  INSERT INTO events_fts(rowid, description, actor, app, target)
  VALUES (new.n, new.description, new.actor,
          CASE WHEN new.app IS NOT NULL AND instr(new.description, new.app) > 0 THEN NULL ELSE new.app END,
          CASE WHEN new.target IS NOT NULL AND instr(new.description, new.target) > 0 THEN NULL ELSE new.target END);
END;
"""
_TEXT_INDEX_V2 = """    CREATE VIEW events_text AS SELECT n, description, actor,
        CASE WHEN app IS NOT NULL AND instr(description, app) > 0 THEN NULL ELSE app END AS app,
        CASE WHEN target IS NOT NULL AND instr(description, target) > 0 THEN NULL ELSE target END AS target
        FROM events;
    CREATE VIRTUAL TABLE events_fts USING fts5(
        description, actor, app, target, content='events_text', content_rowid='n', tokenize='trigram'
    );
    INSERT INTO events_fts(events_fts) VALUES ('rebuild');
    """ + _FTS_TRIGGER

# v4: secondary indexes of events dropped for a large load into an empty mirror, to be built again at its end (or,
# after a crash, by the next writer: bulk.restore_indexes). The full-text index is no longer kept by a per-row
# trigger but by one INSERT … SELECT per batch (bulk.index_text): FTS5 flushes its pending terms at every statement
# a trigger runs, so each row made its own segment.
_DEFERRED_INDEXES_V4 = """
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
    """


# --- chain heads and mirrored feeds: sync_state -----------------------------------------------------------------------
# Owner: auditkit.store.chains (each chain's head: last_seq, last_hash) and auditkit.mirror.sync (a mirrored source's
# feed URL and last sync time). One row per chain `source`; the mirror's own events are on the chain named `local`.

_SYNC_STATE_V1 = """    CREATE TABLE sync_state (
        source TEXT PRIMARY KEY,
        url TEXT,
        last_seq INTEGER NOT NULL DEFAULT 0,
        last_hash TEXT NOT NULL DEFAULT '""" + GENESIS_HASH + """',
        last_sync_at TEXT,
        updated_at TEXT
    );
    """


# v6: what a mirror pins of a source's gateway (owner: auditkit.mirror.sync): its TLS certificate's SHA-256
# fingerprint or a CA file, whether it was added --insecure, and its checkpoint key (a C2SP verifier key).
_SYNC_PINS_V6 = """
    ALTER TABLE sync_state ADD COLUMN tls_fingerprint TEXT;
    ALTER TABLE sync_state ADD COLUMN ca_file TEXT;
    ALTER TABLE sync_state ADD COLUMN insecure INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sync_state ADD COLUMN checkpoint_key TEXT;
    """


# --- Merkle trees and signed checkpoints: merkle_nodes, checkpoints ---------------------------------------------------
# Owner: auditkit.store.trees. Each chain is an RFC 6962 Merkle log whose leaf i is the event of seq i + 1 (leaf data:
# its 32-byte hash). merkle_nodes holds every complete subtree of 2^level leaves (level ≥ 1; a leaf is hashed from
# its event), kept in the transaction of each append. checkpoints holds the signed notes a chain was checkpointed
# with: the gateway's, fetched by sync, and the mirror's own for its local chain. db.migrate fills merkle_nodes for
# the events a file already holds (trees.rebuild).
_TREES_V6 = """
    CREATE TABLE merkle_nodes (
        source TEXT NOT NULL,
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (source, level, idx)
    ) WITHOUT ROWID;
    CREATE TABLE checkpoints (
        source TEXT NOT NULL,
        size INTEGER NOT NULL,
        root BLOB NOT NULL,
        note TEXT NOT NULL,
        key TEXT NOT NULL,
        signed_at TEXT,
        stored_at TEXT NOT NULL,
        PRIMARY KEY (source, size, root)
    );
    """ + _APPEND_ONLY.format(table="merkle_nodes") + _APPEND_ONLY.format(table="checkpoints")


# --- share links: share_links ---------------------------------------------------------------------------------------
# Owner: auditkit.share.links (create, revoke, list; `auditkit serve` reads them).

_SHARE_LINKS_V2 = """
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
"""


# --- the gateway's side of a journal: intents, gateway_keys ----------------------------------------------------------
# Owner: auditkit.capture — the journal's intents awaiting their outcome (their SQL is store/intents.py), and the
# gateway's users and deploy keys (capture/keys.py).

_INTENTS_V3 = """
    CREATE TABLE intents (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        event TEXT NOT NULL
    );
"""

_GATEWAY_KEYS_V3 = """    CREATE TABLE gateway_keys (
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
    """

# v5: per-rack grants of gateway keys — a JSON list of rack names (as the gateway's config names them), or NULL for
# every rack (what every key made before v5 keeps).
_GATEWAY_KEY_RACKS_V5 = """
    ALTER TABLE gateway_keys ADD COLUMN racks TEXT;
    """


# --- alerts: alerts, alert_deliveries, alert_failures ---------------------------------------------------------------
# Owner: auditkit.mirror.alerts — alerts on the filter language, posted to webhooks as sync --follow mirrors events.
# `cursor` is a JSON object {source: seq}: every event of a source up to that seq has been considered for the alert
# (a matching one has a delivery row), so a restart never posts an event twice. A delivery goes pending → sending
# → delivered, or back to pending (with next_at) after a failure it is safe to retry, or to abandoned; each failed
# attempt is a row of alert_failures. The webhook URL itself (a secret: Slack's carries its token) is not here but
# in a 0600 file beside the mirror; `webhook_hint` is its scheme and host.

_ALERTS_V7 = """
    CREATE TABLE alerts (
        name TEXT PRIMARY KEY,
        filter TEXT NOT NULL,
        filter_text TEXT NOT NULL,
        webhook_hint TEXT NOT NULL,
        base_url TEXT,
        created_at TEXT NOT NULL,
        cursor TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE alert_deliveries (
        id INTEGER PRIMARY KEY,
        alert TEXT NOT NULL,
        event_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'abandoned')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        UNIQUE (alert, event_id)
    );
    CREATE INDEX alert_deliveries_open ON alert_deliveries(state, alert, id);
    CREATE TABLE alert_failures (
        id INTEGER PRIMARY KEY,
        alert TEXT NOT NULL,
        event_id TEXT NOT NULL,
        at TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        error TEXT NOT NULL
    );
    CREATE INDEX alert_failures_alert ON alert_failures(alert, id);
"""


# --- the migration history ------------------------------------------------------------------------------------------

MIGRATIONS: list[str] = [
    # v1: events, sessions and chain heads.
    _EVENTS_V1 + _SESSIONS_V1 + _SYNC_STATE_V1 + _APPEND_ONLY_V1,
    # v2: share links, the secondary indexes of events and the trigram full-text index.
    _SHARE_LINKS_V2 + _EVENT_INDEXES_V2 + _TEXT_INDEX_V2,
    # v3: the gateway's intents, users and deploy keys.
    _INTENTS_V3 + _GATEWAY_KEYS_V3,
    # v4: deferred indexes for bulk loads; the full-text index kept per batch instead of per row.
    _DEFERRED_INDEXES_V4,
    # v5: per-rack grants of gateway keys.
    _GATEWAY_KEY_RACKS_V5,
    # v6: Merkle trees over every chain, signed checkpoints, and what a mirror pins of each source.
    _SYNC_PINS_V6 + _TREES_V6,
    # v7: alerts on the filter language, their deliveries and failures.
    _ALERTS_V7,
]
# Python run inside a migration's transaction, after its SQL: version → "module:function"(conn).
MIGRATION_STEPS: dict[int, str] = {6: "auditkit.store.identity:rebuild_and_sign"}
SCHEMA_VERSION = len(MIGRATIONS)
