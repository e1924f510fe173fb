"""The sync agent: mirrors gateway journals (their feeds, docs/feed.md) into a local store, verified and resumable.

Each sync first takes the gateway's signed checkpoint (mirror/checkpoints.py: its signature under the pinned key,
consistent with the last one stored, not behind the mirror), then fetches pages up to its size. Each page is
checked before anything of it is committed: it must be well-formed, continue the mirrored chain (first prev_hash =
the last mirrored hash, seqs contiguous), every event must carry the hash its content implies (store.check_chain),
and the chain it makes must be a prefix of the signed tree (checkpoints.check_page), all on the fetch thread. The
page's events, the recordings they reference (checked against their sha256), the new cursor and, with the page
that reaches it, the checkpoint are committed in one transaction, so a crash at any point loses nothing and
duplicates nothing.

Keys never enter the database: a source's key comes from $AUDITKIT_SYNC_KEY_<NAME> or from data/sync-<name>.key
(mode 0600), written by `auditkit sync add`. How the gateway is trusted (TLS pin, CA file or --insecure; the
checkpoint key) is mirror/trust.py's; `add_source` asks the feed which chain it serves, so a source is named as the
feed names it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
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
from auditkit.model.events import Event, format_timestamp, from_dict, new_event_id, now_timestamp
from auditkit.files import write_private
from auditkit.mirror import checkpoints
from auditkit.mirror.checkpoints import CheckpointError, Signed
from auditkit.mirror.trust import Pins, check_url, save as save_pins, ssl_context, tls_refusal
from auditkit.model.merkle import CompactRange

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


def check_name(name: str) -> None:
    if not _NAME_RE.fullmatch(name) or name == store.LOCAL_SOURCE:
        raise SyncError(f"{name!r} cannot name a source (letters, digits, . _ -; not 'local')")


@dataclasses.dataclass(frozen=True)
class Added:
    name: str
    pins: Pins
    learned_key: bool  # the checkpoint key was learned from the gateway (trust on first use), not given


def add_source(conn: sqlite3.Connection, name: str | None, url: str, key: str, data_dir: Path,
               pins: Pins = Pins(), *, write_key: bool = True, client: httpx.Client | None = None) -> Added:
    """Register the feed at `url`, asking it at once (over the pinned TLS, with `key`) which chain it serves, so a
    `name` the feed would refuse is refused here, and for its checkpoint key unless `pins` has one (a given key must
    be the one the gateway serves). The gateway's current checkpoint must verify with that key. The feed key is
    written to data_dir/sync-<name>.key with mode 0600 when `write_key` (not when it comes from the source's
    environment variable)."""
    if name is not None:
        check_name(name)
    if not re.match(r"^https?://[^/]+", url):
        raise SyncError(f"{url!r} is not an http(s) URL of a gateway")
    url = url.rstrip("/")
    check_url(url, pins)
    given = checkpoints.verifier(name or "the source", pins.checkpoint_key) if pins.checkpoint_key else None
    feed = Feed(name or "new source", url, key, pins, client=client, retries=2)
    try:
        served = feed.served_chain()
        if name is not None and served != name:
            raise SyncError(f"the feed at {url} serves chain '{served}', not '{name}': name the source '{served}' "
                            f"(or leave NAME out to take the feed's)")
        feed.name = served
        served_key = checkpoints.served_key(feed)
        if given is not None and str(given) != served_key:
            raise SyncError(f"{served}: the gateway serves checkpoint key {served_key}, not the given {given}: "
                            f"check the key `auditkit gateway key` prints on the gateway's machine")
        pins = dataclasses.replace(pins, checkpoint_key=str(given) if given else served_key)
        checkpoints.fetch(feed, pins.checkpoint_key)  # the key signs what the gateway serves
    finally:
        feed.close()
    if write_key:
        path = key_path(data_dir, served)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, key.strip() + "\n")
    save_pins(conn, served, url, pins)
    return Added(served, pins, given is None)


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

    def __init__(self, name: str, url: str, key: str, pins: Pins = Pins(), *, client: httpx.Client | None = None,
                 retries: int = 8, sleep: Callable[[float], None] = time.sleep, timeout: float = 30.0):
        self.name, self.url, self.pins = name, url.rstrip("/"), pins
        self.client = client or httpx.Client(timeout=timeout, verify=ssl_context(pins))
        self.client.auth = ("sync", key)
        self.retries, self.sleep = retries, sleep

    def get(self, path: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> httpx.Response:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                response = self.client.get(self.url + path, params=params,
                                           timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
            except httpx.TransportError as e:
                refusal = tls_refusal(e, self.name, self.url)
                if refusal is not None:
                    raise refusal from None  # not retried: another try would meet the same certificate
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

    def served_chain(self) -> str:
        """The chain name the feed serves (its answers' `source`)."""
        try:
            served = self.get("/audit/v1/events", {"after": 0, "limit": 1}).json().get("source")
        except (ValueError, AttributeError):
            served = None
        if not isinstance(served, str) or not _NAME_RE.fullmatch(served) or served == store.LOCAL_SOURCE:
            raise SyncError(f"{self.url} does not answer as an auditkit feed (no chain name a source can take)")
        return served

    def close(self) -> None:
        self.client.close()


@dataclasses.dataclass
class _Page:
    events: list[Event]
    remote_head: int
    more: bool
    casts: list[tuple[Event, bytes]]


def _fetch(feed: Feed, after: int, prev: str, page: int, tree: CompactRange, signed: Signed) -> _Page:
    """The page after (seq `after`, hash `prev`), at most up to the signed tree's size: well-formed, continuing that
    chain with every event's hash checked (store.check_chain), proven part of the signed tree (checkpoints.check_page,
    which extends `tree`), with the recordings it references."""
    response = feed.get("/audit/v1/events", {"after": after, "limit": min(page, signed.size - after)})
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
    if not events:
        raise CheckpointError(f"{feed.name}: the feed has no events after seq {after}, but its checkpoint signs "
                              f"size {signed.size}: it hides the newest events; sync stopped at seq {after}")
    checkpoints.check_page(feed, tree, [event.hash or "" for event in events], signed)
    casts = [(event, feed.get(f"/audit/v1/sessions/{event.session_id}.cast").content) for event in events
             if event.session_id and event.details.get("recording_sha256")]
    return _Page(events, remote_head, more, casts)


def _prefetch(feed: Feed, after: int, prev: str, page: int, tree: CompactRange, signed: Signed) -> Iterator[_Page]:
    """Pages in order up to the signed tree's size, each fetched and checked on a thread while the caller commits the
    one before (the database releases the GIL while it writes)."""
    results: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def run() -> None:
        nonlocal after, prev
        try:
            while not stop.is_set() and after < signed.size:
                got = _fetch(feed, after, prev, page, tree, signed)
                results.put(got)
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
            if (got.events[-1].source_seq or 0) >= signed.size:
                return
    finally:
        stop.set()
        while worker.is_alive():  # let a fetcher blocked on a full queue finish
            try:
                results.get(timeout=0.05)
            except queue.Empty:
                pass


def _signed(conn: sqlite3.Connection, feed: Feed, refetch: bool = False) -> Signed:
    """The gateway's checkpoint, verified with the pinned key and against what this mirror holds and stored."""
    signed = checkpoints.fetch(feed, feed.pins.checkpoint_key)
    checkpoints.check_against_mirror(conn, feed, signed, refetch=refetch)
    return signed


def _record_refetch(conn: sqlite3.Connection, source: str, first: int, last: int) -> None:
    """An Access event on the mirror's local chain: events of `source` removed from the mirror were fetched again."""
    now = dt.datetime.now(dt.timezone.utc)
    store.append(conn, [Event(
        id=new_event_id(int(now.timestamp() * 1000)), timestamp=format_timestamp(now), actor="system",
        actor_type="system", rack="local", category="Access", action="downloaded",
        description=f"Fetched events {first:,}–{last:,} of chain {source} again: they had been removed from this "
                    f"mirror after a checkpoint signed them", target=source, outcome="succeeded",
        details={"refetched_from_seq": first, "refetched_to_seq": last})])


def _long_poll(feed: Feed, after: int, wait: float) -> bool:
    """Whether an event after `after` arrived within `wait` s (a long-poll of the feed; the event itself is fetched
    again under the next checkpoint)."""
    response = feed.get("/audit/v1/events", {"after": after, "limit": 1, "wait": wait}, timeout=wait + 30)
    try:
        body = response.json()
    except ValueError:
        raise SyncError(f"{feed.name}: malformed page after seq {after}: not JSON") from None
    return bool(_check_page(feed.name, after, body)[0])


def sync_once(conn: sqlite3.Connection, feed: Feed, *, page: int = PAGE, wait: float = 0,
              progress: Callable[[Progress], None] | None = None, refetch: bool = False) -> Progress:
    """Mirror the gateway's signed tree: fetch its checkpoint (signature, consistency with the last one stored,
    not less than the mirror holds), then every page after this source's cursor up to the checkpoint's size, each
    proven part of the signed tree before it is committed; the checkpoint is stored with the page that reaches it.
    When caught up, one long-poll of `wait` s for a new event (then a new checkpoint).

    Into an empty mirror with a backlog of BULK_MIN events or more, the secondary indexes are deferred and built
    once at the end (store.defer_indexes); a crash in between leaves every committed page intact, and the next
    sync builds them (store.restore_indexes). A mirror holding less of the chain than a checkpoint it stored is
    refused (checkpoints.TruncatedMirror) unless `refetch`: the removed events are then fetched again and an Access
    event on the local chain says so."""
    state = Progress(feed.name)
    store.restore_indexes(conn)  # a bulk catch-up that was interrupted
    head = store.chain_head(conn, feed.name)
    state.head_seq = head.last_seq
    signed = _signed(conn, feed, refetch)
    stored = store.latest_checkpoint(conn, feed.name)
    removed = (head.last_seq + 1, stored.size) if refetch and stored and head.last_seq < stored.size else None
    if signed.size == head.last_seq and wait and _long_poll(feed, head.last_seq, wait):
        signed = _signed(conn, feed, refetch)
    state.remote_head = signed.size
    if signed.size == head.last_seq:
        with store.transaction(conn):
            store.add_checkpoint(conn, feed.name, signed.note, signed.key)
        return state
    deferred = False
    if signed.size - head.last_seq >= BULK_MIN:  # (only an empty mirror defers them)
        deferred = store.defer_indexes(conn)
    try:
        tree = store.compact_range(conn, feed.name)
        for got in _prefetch(feed, head.last_seq, head.last_hash, page, tree, signed):
            last = got.events[-1].source_seq or 0
            try:
                with store.transaction(conn):
                    store.append_sealed(conn, got.events, synced_at=now_timestamp(), check_hashes=False)
                    for event, cast in got.casts:
                        store.add_session(conn, _session_meta(feed.name, event, cast), cast)
                    if last == signed.size:
                        store.add_checkpoint(conn, feed.name, signed.note, signed.key)
            except ChainError as e:
                raise SyncError(f"{feed.name}: {e}; nothing of this page was committed") from None
            state.synced += len(got.events)
            state.recordings += len(got.casts)
            state.head_seq = last
            if progress:
                progress(state)
    finally:
        if deferred:
            store.restore_indexes(conn)
    if removed and state.head_seq >= removed[1]:
        _record_refetch(conn, feed.name, *removed)
    return state


def _session_meta(source: str, event: Event, cast: bytes) -> dict[str, Any]:
    width, height = asciicast.header_size(cast)  # the event holds them only as the request's header strings
    return {"width": width, "height": height, "id": event.session_id, "source": source, "rack": event.rack, "app": event.app, "actor": event.actor,
            "command": event.details.get("command"), "started_at": event.timestamp,
            "duration_ms": event.details.get("duration_ms"), "exit_code": event.details.get("exit_code"),
            "truncated": event.details.get("recording_truncated", False),
            "sha256": event.details["recording_sha256"]}
