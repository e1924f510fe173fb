"""The TUI's read access to the mirror: connections for worker threads, cancellable read transactions, and the
event list's three questions — the first page of a filter, the rows at some offsets, and what changed since.

No Textual here (it is tested without an app) and no SQL over events: every query is a store function.

- Textual runs thread workers on a pool, and sqlite3 connections are not to be shared between threads at once, so
  each thread gets its own read-only connection (kept thread-local and reused).
- `reading(cancelled)` wraps the work in one read transaction (a consistent snapshot in WAL mode, so a count and
  the newest key agree) and installs a progress handler that aborts the running statement as soon as `cancelled()`
  turns true: a superseded query stops within a millisecond or so and raises Cancelled.
- A list shows the events matching a filter that were in the mirror when it was built, bounded by `top` (the
  newest key then); new events are added by `changes`, never by a page query, so offsets stay consistent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Iterator

from auditkit import store
from auditkit.model.events import Event
from auditkit.model.filters import Filter

# How many statement steps pass between two looks at `cancelled()` (each look is a call into Python).
_CHECK_EVERY = 2000


class Cancelled(Exception):
    """The query was superseded (its worker was cancelled) and aborted."""


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One event of the list with its key (the time-ordered `n`)."""

    key: int
    event: Event


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a list shows: the events matching `f` (relative times resolved against `now`) with key <= top."""

    f: Filter
    now: dt.datetime
    top: int | None  # None: the mirror was empty

    @property
    def bound(self) -> int | None:
        """The exclusive upper key bound for page queries."""
        return None if self.top is None else self.top + 1


@dataclasses.dataclass(frozen=True)
class Change:
    """New events since a snapshot. When `in_place`, every new match is newer than the old top, so the list's rows
    keep their order and move down by `added_above`; otherwise events were inserted among them (a sync backfilling
    an older stretch) and `selected_offset` says where the selected event is now."""

    snapshot: Snapshot
    total: int
    added_above: int
    in_place: bool
    selected_offset: int | None


class Mirror:
    """Read-only connections to one mirror, one per thread, plus a version probe for polling."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        # PRAGMA data_version only means something on one connection: the probe has its own, used under a lock.
        self._probe = store.open_db(self.path, readonly=True)
        self._version: int | None = store.data_version(self._probe)

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = store.open_db(self.path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def reading(self, cancelled: Callable[[], bool] | None = None) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside one read transaction, aborted when `cancelled()` becomes true."""
        conn = self.connection()
        if cancelled is not None:
            conn.set_progress_handler(lambda: 1 if cancelled() else 0, _CHECK_EVERY)
        conn.execute("BEGIN")
        try:
            yield conn
        except sqlite3.OperationalError as e:
            if cancelled is not None and cancelled() and "interrupt" in str(e):
                raise Cancelled() from None
            raise
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")
            if cancelled is not None:
                conn.set_progress_handler(None, 0)

    def changed(self) -> bool:
        """Whether anything was committed to the mirror since the last call (or since it was opened)."""
        with self._lock:
            version = store.data_version(self._probe)
            moved, self._version = version != self._version, version
        return moved

    def invalidate(self) -> None:
        """Make the next changed() answer True (a change was seen but could not be applied)."""
        with self._lock:
            self._version = None

    def close(self) -> None:
        with self._lock:
            for conn in self._connections + [self._probe]:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()


# --- the event list's queries (call inside Mirror.reading) -----------------------------------------------------------

def _rows(page: store.Page) -> list[Row]:
    return [Row(key, event) for key, event in zip(page.keys, page.events)]


def first_page(conn: sqlite3.Connection, f: Filter, now: dt.datetime, limit: int) -> tuple[Snapshot, list[Row]]:
    """A new snapshot of `f` and its newest `limit` rows."""
    snapshot = Snapshot(f, now, store.key_at(conn, None, 0))
    if snapshot.top is None:
        return snapshot, []
    return snapshot, _rows(store.page(conn, f, limit=limit, before=snapshot.bound, now=now))


def count(conn: sqlite3.Connection, snapshot: Snapshot) -> int:
    """How many events the snapshot holds (call in the transaction that made it, or the count may include later
    events)."""
    if snapshot.top is None:
        return 0
    return store.count(conn, snapshot.f, now=snapshot.now)


def fetch(conn: sqlite3.Connection, snapshot: Snapshot, start: int, limit: int, *, after_row: int | None = None,
          before_row: int | None = None, total: int | None = None) -> list[Row]:
    """The rows at offsets start, start+1, … (at most `limit`), newest first.

    Anchored on a known neighbour when there is one: `after_row` is the key of the row at start-1 (so these are
    the next older ones), `before_row` the key of the row at start+limit (so these are the `limit` just newer).
    Without an anchor, the first key is found by offset (from the nearer end when `total` is known).
    """
    f, now = snapshot.f, snapshot.now
    if snapshot.top is None or limit <= 0:
        return []
    if after_row is not None:
        return _rows(store.page(conn, f, limit=limit, before=after_row, now=now))
    if before_row is not None:
        page = store.page(conn, f, limit=limit, after=before_row, before=snapshot.bound, oldest_first=True, now=now)
        return list(reversed(_rows(page)))
    if start == 0:
        return _rows(store.page(conn, f, limit=limit, before=snapshot.bound, now=now))
    key = store.key_at(conn, f, start, now=now, before=snapshot.bound, total=total)
    if key is None:
        return []
    return _rows(store.page(conn, f, limit=limit, before=key + 1, now=now))


def changes(conn: sqlite3.Connection, snapshot: Snapshot, total: int, selected_key: int | None) -> Change | None:
    """What was added to the mirror that the snapshot's filter matches, or None when nothing was."""
    top = store.key_at(conn, None, 0)
    if top is None:
        return None
    new_total = store.count(conn, snapshot.f, now=snapshot.now)
    if new_total == total:  # the mirror is append-only and `now` is fixed per snapshot: no new match
        return None
    added = new_total if snapshot.top is None else store.count(conn, snapshot.f, now=snapshot.now,
                                                               after=snapshot.top)
    in_place = new_total == total + added
    selected = None
    if not in_place and selected_key is not None:
        selected = store.count(conn, snapshot.f, now=snapshot.now, after=selected_key)
    return Change(dataclasses.replace(snapshot, top=top), new_total, added, in_place, selected)
