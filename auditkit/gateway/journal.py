"""The gateway's journal: a store (same schema as a mirror) written by one thread with group commit.

Requests hand intents and outcomes to the writer and await them; the writer commits everything queued in one
transaction with synchronous=FULL, so concurrent writes share an fsync. An intent is durable before its request is
forwarded; its outcome replaces it with a chained event. At start, intents left by a crash become `unknown` events.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

from .. import store
from ..errors import AuditkitError
from ..events import Event, new_event_id

_BATCH = 512


class JournalUnavailable(AuditkitError):
    """The journal could not be written; the request must not be forwarded."""


@dataclasses.dataclass
class _Op:
    kind: str  # intent | outcome | record
    intent_id: str | None
    event: Event
    future: concurrent.futures.Future[Any]
    session: tuple[dict[str, Any], bytes] | None = None


def journal_source(conn: sqlite3.Connection, default: str) -> str:
    """The chain name a journal file already uses, or `default` for a new journal. A journal holds one chain."""
    sources = [h.source for h in store.chain_heads(conn)]
    if len(sources) > 1:
        raise AuditkitError(f"this journal holds several chains ({', '.join(sources)}); it is not a gateway journal")
    if sources:
        return sources[0]
    store.set_source_url(conn, default, None)
    return default


class Journal:
    def __init__(self, path: str | Path, source: str, *, busy_timeout_ms: int = 5000):
        self.path = Path(path)
        self.source = source
        self._conn = store.open_db(self.path, durable=True)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self.source = source = journal_source(self._conn, source)
        # The journal keeps no full-text index: it would double the writer's work per event (bench/gateway.py);
        # the mirror that sync fills has one. Free text on a journal scans.
        store.drop_text_index(self._conn)
        self.recovered = store.recover_intents(self._conn, source)
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._waiters_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="auditkit-journal", daemon=True)
        self._thread.start()

    # --- API for requests -----------------------------------------------------------------------------------------
    async def intent(self, draft: Event) -> str:
        """Durably note a write about to be forwarded; raises JournalUnavailable if it could not be written."""
        intent_id = new_event_id()
        await self._submit("intent", intent_id, draft)
        return intent_id

    async def outcome(self, intent_id: str, event: Event,
                      session: tuple[dict[str, Any], bytes] | None = None) -> Event:
        """Record the event that completes an intent (its outcome known), with its recording if it has one."""
        return await self._submit("outcome", intent_id, event, session)

    async def record(self, event: Event) -> Event:
        """Record an event that had no intent (a refusal: nothing was forwarded)."""
        return await self._submit("record", None, event)

    def head_seq(self) -> int:
        return store.chain_head(self._reader(), self.source).last_seq

    async def wait_for_new(self, after: int, timeout: float) -> None:
        """Return when the journal's head passes `after`, or after `timeout` seconds."""
        if self.head_seq() > after or timeout <= 0:
            return
        flag = asyncio.Event()
        entry = (asyncio.get_running_loop(), flag)
        with self._waiters_lock:
            self._waiters.append(entry)
        try:
            if self.head_seq() > after:
                return
            await asyncio.wait_for(flag.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._waiters_lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._conn.close()

    # --- internals ------------------------------------------------------------------------------------------------
    _local = threading.local()

    def _reader(self) -> sqlite3.Connection:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(self.path)
        if conn is None:
            conn = conns[self.path] = store.open_db(self.path)
        return conn

    async def _submit(self, kind: str, intent_id: str | None, event: Event,
                      session: tuple[dict[str, Any], bytes] | None = None) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put(_Op(kind, intent_id, event, future, session))
        return await asyncio.wrap_future(future)

    def _run(self) -> None:
        while True:
            op = self._queue.get()
            if op is None:
                return
            batch = [op]
            while len(batch) < _BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[_Op]) -> None:
        intents = [(op.intent_id, op.event) for op in batch if op.kind == "intent"]
        outcomes = [(op.intent_id, op.event) for op in batch if op.kind != "intent"]
        try:
            with store.transaction(self._conn):
                if intents:
                    store.record_intents(self._conn, intents)  # type: ignore[arg-type]
                for op in batch:
                    if op.session is not None:
                        store.add_session(self._conn, *op.session)
                sealed = store.complete_intents(self._conn, outcomes, self.source) if outcomes else []
        except (sqlite3.Error, AuditkitError, OSError) as e:
            error = JournalUnavailable(f"the audit journal could not be written ({type(e).__name__})")
            for op in batch:
                op.future.set_exception(error)
            return
        by_outcome = iter(sealed)
        for op in batch:
            op.future.set_result(op.intent_id if op.kind == "intent" else next(by_outcome))
        if sealed:
            with self._waiters_lock:
                waiters = list(self._waiters)
            for loop, flag in waiters:
                loop.call_soon_threadsafe(flag.set)
