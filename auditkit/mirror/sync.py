"""The sync agent: mirrors gateway journals (their feeds, docs/feed.md) into a local store, verified and resumable.

Each page is checked before anything of it is committed: it must be well-formed, continue the mirrored chain
(first prev_hash = the last mirrored hash, seqs contiguous) and every event must carry the hash its content implies
(store.check_chain, on the fetch thread). The page's events, the recordings they reference (checked against their
sha256) and the new cursor are committed in one transaction, so a crash at any point loses nothing and duplicates
nothing.

Keys never enter the database: a source's key comes from $AUDITKIT_SYNC_KEY_<NAME> or from data/sync-<name>.key
(mode 0600), written by `auditkit sync add`.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import random
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from auditkit import store
from auditkit.errors import AuditkitError, ChainError, EventError
from auditkit.model import asciicast
from auditkit.model.events import Event, from_dict, now_timestamp
from auditkit.files import write_private

PAGE = 5000
BULK_MIN = 50_000  # a backlog this big into an empty mirror defers its indexes to the end
MAX_BACKOFF = 30.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SyncError(AuditkitError):
    """Sync stopped: a refused key, a broken chain, a malformed page, or a feed that stayed unreachable."""


@dataclasses.dataclass
class Progress:
    source: str
    synced: int = 0
    recordings: int = 0
    head_seq: int = 0
    remote_head: int = 0


def key_path(data_dir: Path, name: str) -> Path:
    return data_dir / f"sync-{name}.key"


def env_var(name: str) -> str:
    return "AUDITKIT_SYNC_KEY_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def add_source(conn: sqlite3.Connection, name: str, url: str, key: str | None, data_dir: Path) -> None:
    """Register a feed. The key, when given, is written to data_dir/sync-<name>.key with mode 0600."""
    if not _NAME_RE.fullmatch(name) or name == store.LOCAL_SOURCE:
        raise SyncError(f"'{name}' cannot name a source (letters, digits, . _ -; not 'local')")
    if not re.match(r"^https?://[^/]+", url):
        raise SyncError(f"'{url}' is not an http(s) URL of a gateway")
    if key is not None:
        path = key_path(data_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, key.strip() + "\n")
    store.set_source_url(conn, name, url.rstrip("/"))


def read_key(name: str, data_dir: Path) -> str:
    value = os.environ.get(env_var(name))
    if value:
        return value.strip()
    path = key_path(data_dir, name)
    if path.exists():
        return path.read_text().strip()
    raise SyncError(f"no key for source '{name}': set ${env_var(name)} or run `auditkit sync add` with --key-file")


def _check_page(source: str, after: int, body: Any) -> tuple[list[Any], int, bool]:
    """(events, remote head seq, more) of a well-formed page, or SyncError naming what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise SyncError(f"{source}: malformed page after seq {after}: no events list")
    events = []
    expected = after + 1
    for item in body["events"]:
        try:
            event = from_dict(item)
        except (EventError, TypeError) as e:
            raise SyncError(f"{source}: malformed event in the page after seq {after}: {e}") from None
        if event.source_seq != expected:
            kind = "a gap" if (event.source_seq or 0) > expected else "a repeat"
            raise SyncError(f"{source}: {kind} in the feed: expected seq {expected}, got {event.source_seq}")
        events.append(event)
        expected += 1
    head = body.get("head") or {}
    remote = head.get("seq", expected - 1) if isinstance(head, dict) else expected - 1
    return events, int(remote) if isinstance(remote, int) else expected - 1, bool(body.get("more"))


class Feed:
    """One gateway feed over httpx: retries with exponential backoff and jitter on connection errors, timeouts,
    429 and 5xx (honouring Retry-After); a 401 or 403 stops at once."""

    def __init__(self, name: str, url: str, key: str, *, client: httpx.Client | None = None,
                 retries: int = 8, sleep: Callable[[float], None] = time.sleep, timeout: float = 30.0):
        self.name, self.url = name, url.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout, verify=False)
        self.client.auth = ("sync", key)
        self.retries, self.sleep = retries, sleep

    def get(self, path: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> httpx.Response:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                response = self.client.get(self.url + path, params=params,
                                           timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
            except httpx.TransportError as e:
                problem = f"{type(e).__name__}"
            else:
                if response.status_code in (401, 403):
                    raise SyncError(f"{self.name}: the feed refused the key ({response.status_code}): "
                                    f"check the source's key and that its role is auditor or admin")
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                    retry_after = response.headers.get("retry-after", "")
                    if retry_after.isdigit():
                        delay = max(delay, float(retry_after))
                elif response.status_code >= 400:
                    raise SyncError(f"{self.name}: the feed answered {response.status_code} for {path}")
                else:
                    return response
            if attempt == self.retries:
                raise SyncError(f"{self.name}: the feed stayed unreachable after {self.retries} retries ({problem})")
            self.sleep(min(MAX_BACKOFF, delay) * random.uniform(0.5, 1.0))
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.client.close()


@dataclasses.dataclass
class _Page:
    events: list[Event]
    remote_head: int
    more: bool
    casts: list[tuple[Event, bytes]]


def _fetch(feed: Feed, after: int, prev: str, page: int, wait: float) -> _Page:
    """The page after (seq `after`, hash `prev`): well-formed, continuing that chain with every event's hash
    checked (store.check_chain), with the recordings it references."""
    response = feed.get("/audit/v1/events", {"after": after, "limit": page, "wait": wait},
                        timeout=wait + 30 if wait else None)
    try:
        body = response.json()
    except ValueError:
        raise SyncError(f"{feed.name}: malformed page after seq {after}: not JSON") from None
    events, remote_head, more = _check_page(feed.name, after, body)
    if events and events[0].source != feed.name:
        raise SyncError(f"{feed.name}: the feed serves chain '{events[0].source}', not '{feed.name}' "
                        f"(name the source after the gateway's chain)")
    try:
        store.check_chain(events, after, prev)
    except ChainError as e:
        raise SyncError(f"{feed.name}: {e}; nothing of this page was committed") from None
    casts = [(event, feed.get(f"/audit/v1/sessions/{event.session_id}.cast").content) for event in events
             if event.session_id and event.details.get("recording_sha256")]
    return _Page(events, remote_head, more, casts)


def _prefetch(feed: Feed, after: int, prev: str, page: int, wait: float) -> Iterator[_Page]:
    """Pages in order, each fetched and checked on a thread while the caller commits the one before (the database
    releases the GIL while it writes). Stops after a page that says there is no more."""
    results: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def run() -> None:
        nonlocal after, prev
        try:
            while not stop.is_set():
                got = _fetch(feed, after, prev, page, wait)
                results.put(got)
                if not got.events or not got.more:
                    return
                after, prev = got.events[-1].source_seq or after, got.events[-1].hash or prev
        except BaseException as e:  # handed to the caller, who raises it in order
            results.put(e)

    worker = threading.Thread(target=run, name=f"sync-{feed.name}", daemon=True)
    worker.start()
    try:
        while True:
            got = results.get()
            if isinstance(got, BaseException):
                raise got
            yield got
            if not got.events or not got.more:
                return
    finally:
        stop.set()
        while worker.is_alive():  # let a fetcher blocked on a full queue finish
            try:
                results.get(timeout=0.05)
            except queue.Empty:
                pass


def sync_once(conn: sqlite3.Connection, feed: Feed, *, page: int = PAGE, wait: float = 0,
              progress: Callable[[Progress], None] | None = None) -> Progress:
    """Mirror everything the feed holds after this source's cursor (one long-poll of `wait` s when caught up).

    Into an empty mirror with a backlog of BULK_MIN events or more, the secondary indexes are deferred and built
    once at the end (store.defer_indexes); a crash in between leaves every committed page intact, and the next
    sync builds them (store.restore_indexes)."""
    state = Progress(feed.name)
    store.restore_indexes(conn)  # a bulk catch-up that was interrupted
    head = store.chain_head(conn, feed.name)
    state.head_seq = head.last_seq
    deferred = tried = False
    try:
        for got in _prefetch(feed, head.last_seq, head.last_hash, page, wait):
            state.remote_head = got.remote_head
            if not got.events:
                break
            if not tried and got.remote_head - state.head_seq >= BULK_MIN:
                tried = True  # only into an empty mirror: once it holds a page, asking again is a wasted write lock
                deferred = store.defer_indexes(conn)
            try:
                with store.transaction(conn):
                    store.append_sealed(conn, got.events, synced_at=now_timestamp(), check_hashes=False)
                    for event, cast in got.casts:
                        store.add_session(conn, _session_meta(feed.name, event, cast), cast)
            except ChainError as e:
                raise SyncError(f"{feed.name}: {e}; nothing of this page was committed") from None
            state.synced += len(got.events)
            state.recordings += len(got.casts)
            state.head_seq = got.events[-1].source_seq or 0
            if progress:
                progress(state)
    finally:
        if deferred:
            store.restore_indexes(conn)
    return state


def _session_meta(source: str, event: Event, cast: bytes) -> dict[str, Any]:
    width, height = asciicast.header_size(cast)  # the event holds them only as the request's header strings
    return {"width": width, "height": height, "id": event.session_id, "source": source, "rack": event.rack, "app": event.app, "actor": event.actor,
            "command": event.details.get("command"), "started_at": event.timestamp,
            "duration_ms": event.details.get("duration_ms"), "exit_code": event.details.get("exit_code"),
            "truncated": event.details.get("recording_truncated", False),
            "sha256": event.details["recording_sha256"]}
