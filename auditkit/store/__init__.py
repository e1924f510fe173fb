"""The SQLite store: the only code that writes SQL over events and sessions. Its public API is re-exported here, so
callers write `from auditkit import store; store.append(...)`:

- schema      every table, by owner, and the migrations (PRAGMA user_version)
- db          open_db / open_existing, pragmas, migrate, transaction, default_db_path
- chains      chain heads, append (sealing), append_sealed / check_chain (batches sealed elsewhere), append_halves
- bulk        the full-text index per batch, deferred indexes and bulk_load for large loads
- queries     page, count, key_at, iter_rows, events_after, matching_after, get_event, session_event, value_counts
- hints       hints_for: the values near a qualifier that matches nothing (did you mean user:alice@example.com?)
- recordings  add_session, recording, get_session, session_events, held_sessions
- intents     the gateway journal's intents (record, complete, recover)
- trees       each chain's Merkle tree (RFC 6962): tree heads, inclusion and consistency proofs, compact ranges,
              signed checkpoints stored
- identity    the mirror's own signing key (beside the database) and the signed checkpoints of its local chain
- verify      verify (every chain, tree, checkpoint and recording) and chain_status (one event)
"""

from __future__ import annotations

from auditkit.store.bulk import (
    bulk_load,
    defer_indexes,
    drop_text_index,
    has_text_index,
    index_text,
    indexes_deferred,
    restore_indexes,
)
from auditkit.store.chains import (
    LOCAL_SOURCE,
    ChainHead,
    append,
    append_halves,
    append_sealed,
    chain_head,
    chain_heads,
    check_chain,
    set_source_url,
)
from auditkit.store.db import (
    DEFAULT_DB,
    PAGE_SIZE,
    data_version,
    default_db_path,
    existing_path,
    migrate,
    open_db,
    open_existing,
    transaction,
)
from auditkit.store.hints import Hint, hints_for
from auditkit.store.identity import (
    beside,
    checkpoint_chain,
    database_path,
    load_signer,
    local_signer,
    local_verifier,
    pinned_key,
)
from auditkit.store.identity import key_path as mirror_key_path
from auditkit.store.intents import RECOVERED_AFTER_STOP, complete_intents, record_intents, recover_intents
from auditkit.store.queries import (
    Page,
    count,
    events_after,
    get_event,
    iter_rows,
    key_at,
    matching_after,
    page,
    row_dict,
    row_to_event,
    session_event,
    value_counts,
)
from auditkit.store.recordings import (
    SESSION_FIELDS,
    add_session,
    get_session,
    held_sessions,
    recording,
    recording_sha256,
    session_events,
)
from auditkit.store.schema import EVENT_COLUMNS, MIGRATIONS, SCHEMA_VERSION, SELECT_EVENT
from auditkit.store.trees import (
    StoredCheckpoint,
    add_checkpoint,
    checkpoints,
    compact_range,
    consistency_proof,
    inclusion_proof,
    latest_checkpoint,
    sign_checkpoint,
    tree_root,
    tree_size,
)
from auditkit.store.verify import (
    ONLINE_KINDS,
    PROBLEM_KINDS,
    ChainStatus,
    Problem,
    Signature,
    VerifyReport,
    chain_status,
    verify,
)

__all__ = [
    "bulk_load", "defer_indexes", "drop_text_index", "has_text_index", "index_text", "indexes_deferred",
    "restore_indexes",
    "LOCAL_SOURCE", "ChainHead", "append", "append_halves", "append_sealed", "chain_head", "chain_heads",
    "check_chain", "set_source_url",
    "DEFAULT_DB", "PAGE_SIZE", "data_version", "default_db_path", "existing_path", "migrate", "open_db",
    "open_existing", "transaction",
    "Hint", "hints_for",
    "beside", "checkpoint_chain", "database_path", "load_signer", "local_signer", "local_verifier", "mirror_key_path",
    "pinned_key",
    "RECOVERED_AFTER_STOP", "complete_intents", "record_intents", "recover_intents",
    "Page", "count", "events_after", "get_event", "iter_rows", "key_at", "page", "row_dict", "row_to_event",
    "session_event", "value_counts", "matching_after",
    "SESSION_FIELDS", "add_session", "get_session", "held_sessions", "recording", "recording_sha256",
    "session_events",
    "EVENT_COLUMNS", "MIGRATIONS", "SCHEMA_VERSION", "SELECT_EVENT",
    "StoredCheckpoint", "add_checkpoint", "checkpoints", "compact_range", "consistency_proof", "inclusion_proof",
    "latest_checkpoint", "sign_checkpoint", "tree_root", "tree_size",
    "ONLINE_KINDS", "PROBLEM_KINDS", "ChainStatus", "Problem", "Signature", "VerifyReport", "chain_status", "verify",
]
