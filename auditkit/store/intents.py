"""The gateway's intents: writes noted durably before they are forwarded, each turned into its event once the
rack has answered (complete_intents), or into an event with outcome `unknown` when that answer was lost
(recover_intents). capture/journal.py is the only caller; the `intents` table is the gateway's (schema.py).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Sequence

from auditkit.model.events import Event, dumps, from_dict, now_timestamp
from auditkit.store.chains import append
from auditkit.store.db import transaction


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
    `ids` of the intents whose outcome it knows it will never have (see capture/journal.py)."""
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
