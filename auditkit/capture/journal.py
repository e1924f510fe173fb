"""The gateway's journal: a store (same schema as a mirror) written by one thread with group commit.

Requests hand intents and outcomes to the writer and await them; the writer commits everything queued in one
transaction with synchronous=FULL, so concurrent writes share an fsync. An intent is durable before its request is
forwarded; its outcome replaces it with a chained event. At start, intents left by a crash become `unknown` events.

Fail closed after a failure, without a restart: an outcome that cannot be written (disk full, I/O error, a lock
held too long) is kept in memory with its recording, and the writer seals it as soon as the journal takes writes
again — retrying every RETRY_SECONDS and before any other commit. Until every held outcome is sealed, new intents
are refused (the request gets 503 and is not forwarded), so what is held is bounded by the writes that were in
flight when the journal broke, and the chain keeps the order the rack answered in. An intent the writer reported
as failed but that reached the file anyway (none will ever get an outcome) is sealed as `unknown` once the journal
is writable. If the process stops while outcomes are held, their intents are on disk and the next start turns them
into `unknown` events, as after any crash.

A journal holds one chain; its name is fixed by the first gateway (or `auditkit gateway users add`) that wrote it,
and a gateway started with another `--name` is refused (chain_name, journal_source): the HMAC key and the TLS pair
are named after the chain.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.model.events import Event, new_event_id

log = logging.getLogger("auditkit.gateway.journal")

_BATCH = 512
DEFAULT_NAME = "gateway"
RETRY_SECONDS = 1.0
# Errors that say "the journal cannot be written now" (disk full, I/O, locked), as opposed to an event the
# database refuses whatever the disk does.
_UNWRITABLE = (sqlite3.OperationalError, OSError)
ORPHAN_REASON = "the journal could not be written while this request was handled; its outcome is not known"


class JournalUnavailable(AuditkitError):
    """The journal could not be written; the request must not be forwarded."""


class OutcomeHeld(JournalUnavailable):
    """An outcome could not be written now: the journal keeps it (in memory) and seals it once it can."""


class ChainMismatch(AuditkitError):
    """A gateway was given a chain name other than the one its journal holds."""


@dataclasses.dataclass
class _Op:
    kind: str  # intent | outcome | record
    intent_id: str | None
    event: Event
    future: concurrent.futures.Future[Any]
    session: tuple[dict[str, Any], bytes] | None = None
    held_since: float = 0.0  # monotonic time its first write failed (held outcomes)


def _mismatch(path: Path | str, chain: str, name: str) -> ChainMismatch:
    return ChainMismatch(
        f"journal {path} holds chain '{chain}'; this gateway was given --name {name}, but a journal keeps one "
        f"chain, and its HMAC key and TLS pair are named after it: use --name {chain} or a new journal")


def chain_of(path: Path | str) -> str | None:
    """The chain a journal file holds, read without creating or changing anything; None for no (or an empty)
    journal. Raises when the file holds several chains (a mirror, not a gateway journal)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            sources = [row[0] for row in conn.execute("SELECT source FROM sync_state ORDER BY source")]
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # not a store (yet): opening it for writing says what is wrong
    if len(sources) > 1:
        raise AuditkitError(f"{path} holds several chains ({', '.join(sources)}); it is not a gateway journal")
    return sources[0] if sources else None


def chain_name(path: Path | str, name: str | None) -> str:
    """The chain name a gateway on journal `path` uses: the chain the journal holds (refusing another `name`),
    else `name`, else 'gateway'."""
    chain = chain_of(path)
    if chain is not None:
        if name is not None and name != chain:
            raise _mismatch(path, chain, name)
        return chain
    return name or DEFAULT_NAME


def journal_source(conn: sqlite3.Connection, name: str | None) -> str:
    """The chain name of an open journal: the one it holds (refusing another `name`), or, for a new journal,
    `name` (default 'gateway'), which it then holds. A journal holds one chain."""
    sources = [h.source for h in store.chain_heads(conn)]
    if len(sources) > 1:
        raise AuditkitError(f"this journal holds several chains ({', '.join(sources)}); it is not a gateway journal")
    if sources:
        if name is not None and name != sources[0]:
            path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
            raise _mismatch(path or "(this journal)", sources[0], name)
        return sources[0]
    name = name or DEFAULT_NAME
    store.set_source_url(conn, name, None)
    return name


class Journal:
    def __init__(self, path: str | Path, source: str | None, *, busy_timeout_ms: int = 5000):
        self.path = Path(path)
        self._conn = store.open_db(self.path, durable=True)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        try:
            self.source = source = journal_source(self._conn, source)
        except AuditkitError:
            self._conn.close()
            raise
        # The journal keeps no full-text index: the writer would pay for it on every event (bench/RESULTS.md); the
        # mirror that sync fills has one. Free text on a journal scans.
        store.drop_text_index(self._conn)
        self.recovered = store.recover_intents(self._conn, source)
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._waiters_lock = threading.Lock()
        # Writer-thread state. _open: intents committed whose outcome has not come yet (their requests are in
        # flight); _held: outcomes that could not be written, by intent id, in the order they came; _dirty: a
        # commit failed, so an intent may have reached the file while its request was refused.
        self._open: set[str] = set()
        self._held: dict[str, _Op] = {}
        self._dirty = False
        # Observers (metrics.py): called on the writer thread after each commit with its duration and the events it
        # sealed, and after each commit that failed.
        self.on_commit: Callable[[float | None, list[Event]], None] | None = None
        self.on_failure: Callable[[], None] | None = None
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
        """Record the event that completes an intent (its outcome known), with its recording if it has one.
        Raises OutcomeHeld when it could not be written now: the journal keeps it and seals it later."""
        return await self._submit("outcome", intent_id, event, session)

    async def record(self, event: Event) -> Event:
        """Record an event that had no intent (a refusal: nothing was forwarded)."""
        return await self._submit("record", None, event)

    def head_seq(self) -> int:
        return store.chain_head(self.reader(), self.source).last_seq

    @property
    def pending(self) -> int:
        """Intents on disk still waiting for their outcome: requests in flight, and outcomes held in memory."""
        return len(self._open) + len(self._held)

    @property
    def writable(self) -> bool:
        """False while the writer holds outcomes or suspects an orphaned intent (its last commit failed): new
        intents are refused until it has recovered."""
        return not (self._held or self._dirty) and self._thread.is_alive()

    @property
    def held(self) -> int:
        """How many outcomes wait in memory for the journal to take writes again."""
        return len(self._held)

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

    _local = threading.local()  # per thread: {journal path: reading connection}

    def reader(self) -> sqlite3.Connection:
        """The connection the calling thread reads the journal with (keys, the feed, recordings): its own, opened on
        first use and kept; only the journal's writer thread writes, through a connection of its own."""
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(self.path)
        if conn is None:
            conn = conns[self.path] = store.open_db(self.path)
        return conn

    # --- internals ------------------------------------------------------------------------------------------------
    async def _submit(self, kind: str, intent_id: str | None, event: Event,
                      session: tuple[dict[str, Any], bytes] | None = None) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put(_Op(kind, intent_id, event, future, session))
        return await asyncio.wrap_future(future)

    def _run(self) -> None:
        while True:
            try:
                op = self._queue.get(timeout=RETRY_SECONDS if self._held or self._dirty else None)
            except queue.Empty:
                self._recover()
                continue
            if op is None:
                self._stop()
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
        if (self._held or self._dirty) and not self._recover():
            # Still unwritable: nothing new is forwarded until what the rack already did is on disk.
            self._fail(batch, "the audit journal could not be written" + (
                " (the outcomes of earlier writes are waiting)" if self._held else ""))
            return
        intents = [(op.intent_id, op.event) for op in batch if op.kind == "intent"]
        outcomes = [(op.intent_id, op.event) for op in batch if op.kind != "intent"]
        started = time.perf_counter()
        try:
            with store.transaction(self._conn):
                if intents:
                    store.record_intents(self._conn, intents)  # type: ignore[arg-type]
                for op in batch:
                    if op.session is not None:
                        store.add_session(self._conn, *op.session)
                sealed = store.complete_intents(self._conn, outcomes, self.source) if outcomes else []
        except Exception as e:  # noqa: BLE001 — whatever failed, every waiting request must hear of it
            self._dirty = True
            self._observe_failure()
            self._fail(batch, f"the audit journal could not be written ({type(e).__name__})")
            return
        self._observe(time.perf_counter() - started, sealed)
        by_outcome = iter(sealed)
        for op in batch:
            if op.kind == "intent":
                self._open.add(op.intent_id)  # type: ignore[arg-type]
                op.future.set_result(op.intent_id)
            else:
                self._open.discard(op.intent_id)  # type: ignore[arg-type]
                op.future.set_result(next(by_outcome))
        if sealed:
            self._notify()

    def _observe(self, seconds: float | None, sealed: list[Event]) -> None:
        if self.on_commit is not None:
            try:
                self.on_commit(seconds, sealed)
            except Exception:  # noqa: BLE001 — an observer never breaks the journal
                log.exception("journal commit observer failed")

    def _observe_failure(self) -> None:
        if self.on_failure is not None:
            try:
                self.on_failure()
            except Exception:  # noqa: BLE001
                log.exception("journal failure observer failed")

    def _fail(self, batch: list[_Op], message: str) -> None:
        """Answer a batch that was not written: intents and records fail; outcomes are held for a later seal."""
        error = JournalUnavailable(message)
        now = time.monotonic()
        held = 0
        for op in batch:
            if op.kind == "outcome":
                self._open.discard(op.intent_id)  # type: ignore[arg-type]
                op.held_since = now
                self._held[op.intent_id] = op  # type: ignore[index]
                held += 1
                op.future.set_exception(OutcomeHeld(
                    f"{message}; the outcome is kept in memory and recorded as soon as the journal can be written"))
            else:
                op.future.set_exception(error)
        if held:
            log.warning("journal %s: %d outcome(s) kept in memory until it can be written (%d in all)",
                        self.path, held, len(self._held))

    def _recover(self) -> bool:
        """Seal the held outcomes and any orphaned intents; True when nothing is left waiting."""
        if self._held:
            sealed = self._seal_held()
            if sealed is None:
                self._observe_failure()
                return False
            self._observe(None, sealed)  # held outcomes: counted, but not a commit's latency
            log.warning("journal %s can be written again: recorded %d held outcome(s)", self.path, len(sealed))
            self._notify()
        if self._dirty:
            try:
                pending = [row[0] for row in self._conn.execute("SELECT id FROM intents")]
                orphans = [i for i in pending if i not in self._open and i not in self._held]
                if orphans:
                    store.recover_intents(self._conn, self.source, orphans, reason=ORPHAN_REASON)
                    log.warning("journal %s: %d intent(s) without a request recorded as unknown", self.path,
                                len(orphans))
                    self._notify()
            except Exception:  # noqa: BLE001 — still unwritable; the timer tries again
                return False
            self._dirty = False
        return True

    def _seal_held(self) -> list[Event] | None:
        """Write the held outcomes in one transaction; None while the journal still cannot be written. An outcome
        the database refuses on its own (never seen; it must not block the journal for ever) is recorded as
        `unknown` from its intent instead."""
        ops = list(self._held.values())
        try:
            sealed = self._write_held(ops)
        except _UNWRITABLE:
            return None
        except Exception:  # noqa: BLE001 — one of them is refused whatever the disk does: one at a time
            sealed = []
            for op in ops:
                try:
                    sealed += self._write_held([op])
                except _UNWRITABLE:
                    return None
                except Exception as e:  # noqa: BLE001
                    try:
                        sealed += store.recover_intents(
                            self._conn, self.source, [op.intent_id],  # type: ignore[list-item]
                            reason=f"the journal refused this request's outcome ({type(e).__name__})")
                    except _UNWRITABLE:
                        return None
                    except Exception:  # noqa: BLE001 — left as an intent: the next start records it unknown
                        log.error("journal %s: an outcome could not be recorded; its intent stays", self.path)
                del self._held[op.intent_id]  # type: ignore[arg-type]
            return sealed
        self._held.clear()
        return sealed

    def _write_held(self, ops: list[_Op]) -> list[Event]:
        now = time.monotonic()
        outcomes = [(op.intent_id, op.event.replace(details={
            **op.event.details, "held_in_memory_ms": int((now - op.held_since) * 1000)})) for op in ops]
        with store.transaction(self._conn):
            for op in ops:
                if op.session is not None:
                    store.add_session(self._conn, *op.session)
            return store.complete_intents(self._conn, outcomes, self.source)

    def _stop(self) -> None:
        if (self._held or self._dirty) and not self._recover():
            log.error("journal %s: stopping with %d outcome(s) not recorded; the next start records them as "
                      "unknown", self.path, len(self._held))

    def _notify(self) -> None:
        with self._waiters_lock:
            waiters = list(self._waiters)
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)
