"""Alerts on the filter language: `auditkit alert add NAME FILTER --webhook URL`, and their delivery while
`auditkit sync --follow` mirrors events.

After each page sync commits, `scan` looks at what every alert has not considered yet — per source, the events
after the alert's cursor — and, in one transaction, queues a delivery for each match and moves the cursor to the
source's head. A `Dispatcher` thread posts queued deliveries to the alert's webhook (Slack-compatible JSON: the
sentence, who, rack, time, and a link to the event when the alert has a base URL), oldest first per alert, within
a second of the page's commit.

At most once per alert and event, across restarts: a delivery is marked `sending` (committed) before it is posted,
and only a failure that proves the receiver did not take it (no connection, a 5xx, 408 or 429) sends it back to
`pending`, with backoff (BACKOFF: 0.5 s doubling to 30 s, for up to GIVE_UP_AFTER); a failure after the request
may have arrived (the answer timed out or broke off), a 4xx, and a delivery found `sending` at start (the process
stopped mid-post) are `abandoned`, never re-sent. Every failed attempt is a row of alert_failures, shown by
`alert list`.

The webhook URL is a secret (Slack's carries its token): it lives in `alert-<name>.webhook` beside the mirror (0600),
never in the database, which Datasette shows to admins; the table keeps its scheme and host as a hint. Nothing of an
event becomes markup in the message: Slack's control characters (& < >) are escaped and control characters dropped,
so a crafted app name cannot ping a channel or forge a link.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable

import httpx

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.files import write_private
from auditkit.model import filters as filters_mod
from auditkit.model.events import now_timestamp, parse_timestamp
from auditkit.model.filters import Filter

log = logging.getLogger("auditkit.alerts")

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # seconds before attempt 2, 3, …; then every 30 s
GIVE_UP_AFTER = 24 * 3600.0  # a delivery still failing a day later is abandoned
POST_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRYABLE_STATUS = {408, 429}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class AlertError(AuditkitError):
    pass


@dataclasses.dataclass(frozen=True)
class Alert:
    name: str
    filter: Filter
    filter_text: str
    webhook_hint: str
    base_url: str | None
    created_at: str
    cursor: dict[str, int]


# --- the alerts and their webhook files -----------------------------------------------------------------------------

def webhook_path(db_path: Path, name: str) -> Path:
    return db_path.parent / f"alert-{name}.webhook"


def _check_url(url: str, what: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url.strip())
        parts.port  # noqa: B018 — raises ValueError for a port that is not a number
    except ValueError:
        raise AlertError(f"{what} wants an http(s) URL, not {_hint(url)!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c in url for c in "\r\n\t <>|\"\\"):
        raise AlertError(f"{what} wants an http(s) URL, not {_hint(url)!r}")
    return url.strip()


def _hint(url: str) -> str:
    """A URL for people without its secret parts: scheme and host only."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable>"
    return f"{parts.scheme}://{host}{port}/…"


def parse_filter(text: str) -> Filter:
    """An alert's filter: the filter language, without since:/until: (an alert matches events as they arrive)."""
    f = filters_mod.parse(text)
    if f.is_empty:
        raise AlertError("an alert needs a filter (e.g. category:Security); an empty one would match every event")
    if any(t.key in filters_mod.TIME_KEYS for t in f.terms):
        raise AlertError("since: and until: do not apply to an alert, which matches events as they are mirrored")
    return f


def add(conn: sqlite3.Connection, db_path: Path, name: str, filter_text: str, webhook: str,
        base_url: str | None = None) -> Alert:
    """Create an alert; it considers events mirrored from now on (its cursor starts at every source's head)."""
    if not NAME_RE.fullmatch(name):
        raise AlertError(f"'{name}' cannot name an alert (lower-case letters, digits, _ and -; at most 64)")
    f = parse_filter(filter_text)
    webhook = _check_url(webhook, "--webhook")
    if base_url is not None:
        base_url = _check_url(base_url, "--base-url").rstrip("/")
    with store.transaction(conn):
        if conn.execute("SELECT 1 FROM alerts WHERE name = ?", (name,)).fetchone():
            raise AlertError(f"an alert named '{name}' exists; remove it first")
        cursor = {h.source: h.last_seq for h in store.chain_heads(conn)}
        conn.execute("INSERT INTO alerts(name, filter, filter_text, webhook_hint, base_url, created_at, cursor) "
                     "VALUES (?,?,?,?,?,?,?)", (name, f.to_json(), f.to_text(), _hint(webhook), base_url,
                                                now_timestamp(), json.dumps(cursor, sort_keys=True)))
        write_private(webhook_path(db_path, name), webhook + "\n")
    return get(conn, name)


def remove(conn: sqlite3.Connection, db_path: Path, name: str) -> None:
    """Remove an alert, its queued deliveries and its webhook file (its failures stay as history)."""
    with store.transaction(conn):
        if conn.execute("DELETE FROM alerts WHERE name = ?", (name,)).rowcount == 0:
            raise AlertError(f"no alert named '{name}'")
        conn.execute("DELETE FROM alert_deliveries WHERE alert = ? AND state IN ('pending', 'sending')", (name,))
    webhook_path(db_path, name).unlink(missing_ok=True)


def _alert(row: sqlite3.Row) -> Alert:
    cursor = json.loads(row["cursor"] or "{}")
    return Alert(row["name"], Filter.from_json(row["filter"]), row["filter_text"], row["webhook_hint"],
                 row["base_url"], row["created_at"],
                 {str(k): int(v) for k, v in cursor.items()} if isinstance(cursor, dict) else {})


def get(conn: sqlite3.Connection, name: str) -> Alert:
    row = conn.execute("SELECT * FROM alerts WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise AlertError(f"no alert named '{name}'")
    return _alert(row)


def list_alerts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every alert with its delivery counts and last failure, for `alert list`."""
    out = []
    for row in conn.execute("SELECT * FROM alerts ORDER BY name").fetchall():
        alert = _alert(row)
        counts = dict(conn.execute("SELECT state, count(*) FROM alert_deliveries WHERE alert = ? GROUP BY state",
                                   (alert.name,)).fetchall())
        failures = conn.execute("SELECT count(*), max(id) FROM alert_failures WHERE alert = ?",
                                (alert.name,)).fetchone()
        last = None
        if failures[1] is not None:
            last = dict(conn.execute("SELECT at, error FROM alert_failures WHERE id = ?", (failures[1],)).fetchone())
        out.append({"alert": alert, "counts": counts, "failures": failures[0], "last_failure": last})
    return out


# --- finding what to deliver ----------------------------------------------------------------------------------------

def scan(conn: sqlite3.Connection) -> int:
    """Queue a delivery for every event mirrored since each alert's cursor that matches it, and move the cursors to
    the sources' heads, in one transaction; returns how many were queued."""
    queued = 0
    with store.transaction(conn):
        heads = {h.source: h.last_seq for h in store.chain_heads(conn)}
        for row in conn.execute("SELECT * FROM alerts ORDER BY name").fetchall():
            alert = _alert(row)
            cursor = dict(alert.cursor)
            for source, head in heads.items():
                after = cursor.get(source, 0)
                if head <= after:
                    continue
                for event in store.matching_after(conn, alert.filter, source, after, head):
                    queued += conn.execute(
                        "INSERT OR IGNORE INTO alert_deliveries(alert, event_id, state, created_at) "
                        "VALUES (?, ?, 'pending', ?)", (alert.name, event["id"], now_timestamp())).rowcount
                cursor[source] = head
            if cursor != alert.cursor:
                conn.execute("UPDATE alerts SET cursor = ? WHERE name = ?",
                             (json.dumps(cursor, sort_keys=True), alert.name))
    return queued


# --- the message ----------------------------------------------------------------------------------------------------

def slack_text(value: Any) -> str:
    """Event text for a Slack message: control characters (newlines too: an event cannot add a line) and bidi
    overrides become spaces, & < > are escaped (Slack's markup)."""
    text = _CONTROL.sub(" ", str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def event_url(base_url: str, db_path: Path, event: dict[str, Any]) -> str:
    """The event's row in `auditkit serve` (Datasette: /<database>/events?id=<id>)."""
    return f"{base_url}/{urllib.parse.quote(db_path.stem)}/events?id={urllib.parse.quote(event['id'], safe='')}"


def message(alert: Alert, event: dict[str, Any], db_path: Path) -> dict[str, Any]:
    """Slack-compatible JSON for one event (incoming-webhook `text`, mrkdwn)."""
    outcome = event.get("outcome")
    lines = [f"*{slack_text(event['description'])}*" + ("" if outcome in (None, "succeeded")
                                                          else f" ({slack_text(outcome)})"),
             f"{slack_text(event['actor'])} on {slack_text(event['rack'])} at {slack_text(event['timestamp'])}",
             f"alert {slack_text(alert.name)}: {slack_text(alert.filter_text)}"]
    if alert.base_url:
        lines.append(f"<{slack_text(event_url(alert.base_url, db_path, event))}|view the event>")
    return {"text": "\n".join(lines)}


# --- delivery -------------------------------------------------------------------------------------------------------

class Outcome(Exception):
    """A failed attempt: `retry` when the receiver certainly did not take it."""

    def __init__(self, error: str, retry: bool):
        super().__init__(error)
        self.error, self.retry = error, retry


def post(client: httpx.Client, url: str, body: dict[str, Any]) -> None:
    """POST one message; raises Outcome on failure."""
    try:
        response = client.post(url, json=body, timeout=POST_TIMEOUT)
    except (httpx.ConnectError, httpx.ConnectTimeout) as e:
        raise Outcome(f"no connection ({type(e).__name__})", retry=True) from None
    except httpx.HTTPError as e:  # sent, but the answer did not come: it may have been taken
        raise Outcome(f"no answer ({type(e).__name__}); not re-sent, as it may have arrived", retry=False) from None
    if response.status_code >= 300:
        retry = response.status_code >= 500 or response.status_code in RETRYABLE_STATUS
        raise Outcome(f"HTTP {response.status_code}", retry=retry)


def backoff(attempts: int) -> float:
    return BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]


class Dispatcher:
    """Posts queued deliveries from a thread of its own (own connection); `wake()` after a scan."""

    def __init__(self, db_path: Path, *, client: httpx.Client | None = None, clock: Callable[[], float] = time.time):
        self.db_path = Path(db_path)
        self.client = client or httpx.Client(follow_redirects=False)
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="auditkit-alerts", daemon=True)

    def start(self) -> "Dispatcher":
        conn = store.open_db(self.db_path)
        try:
            interrupted(conn)
        finally:
            conn.close()
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.client.close()

    def _run(self) -> None:
        conn = store.open_db(self.db_path)
        try:
            while not self._stop.is_set():
                try:
                    wait = deliver_due(conn, self.db_path, self.client, self.clock, self._stop)
                except sqlite3.Error as e:  # the mirror is busy or broken: try again shortly
                    log.warning("alerts: %s", e)
                    wait = 1.0
                self._wake.wait(min(wait, 1.0))
                self._wake.clear()
        finally:
            conn.close()


def interrupted(conn: sqlite3.Connection) -> int:
    """Deliveries left `sending` by a process that stopped mid-post: abandoned (they may have arrived), each with
    its failure recorded; returns how many."""
    with store.transaction(conn):
        rows = conn.execute("SELECT id, alert, event_id, attempts FROM alert_deliveries WHERE state = 'sending'"
                            ).fetchall()
        for row in rows:
            _failed(conn, row["alert"], row["event_id"], row["attempts"],
                    "interrupted while it was being posted; not re-sent, as it may have arrived")
            conn.execute("UPDATE alert_deliveries SET state = 'abandoned' WHERE id = ?", (row["id"],))
    return len(rows)


def _failed(conn: sqlite3.Connection, alert: str, event_id: str, attempt: int, error: str) -> None:
    conn.execute("INSERT INTO alert_failures(alert, event_id, at, attempt, error) VALUES (?,?,?,?,?)",
                 (alert, event_id, now_timestamp(), attempt, error))


def deliver_due(conn: sqlite3.Connection, db_path: Path, client: httpx.Client, clock: Callable[[], float],
                stop: threading.Event | None = None) -> float:
    """Post every delivery that is due, the oldest of each alert first (a later one waits while an earlier one is
    backing off, so each alert's messages keep their order); returns seconds until the next is due (at most 1)."""
    next_due = 1.0
    for (name,) in conn.execute("SELECT DISTINCT alert FROM alert_deliveries WHERE state = 'pending'").fetchall():
        while stop is None or not stop.is_set():
            row = conn.execute("SELECT id, event_id, attempts, next_at, created_at FROM alert_deliveries "
                               "WHERE alert = ? AND state = 'pending' ORDER BY id LIMIT 1", (name,)).fetchone()
            if row is None:
                break
            now = clock()
            if row["next_at"] > now:
                next_due = min(next_due, row["next_at"] - now)
                break
            try:
                alert = get(conn, name)
                webhook = webhook_path(db_path, name).read_text().strip()
            except (AlertError, OSError) as e:
                with store.transaction(conn):
                    _failed(conn, name, row["event_id"], row["attempts"] + 1, f"cannot deliver: {e}")
                    conn.execute("UPDATE alert_deliveries SET state = 'abandoned' WHERE id = ?", (row["id"],))
                continue
            event = store.get_event(conn, row["event_id"])
            attempt = row["attempts"] + 1
            with store.transaction(conn):  # committed before the post: at most once, whatever happens next
                conn.execute("UPDATE alert_deliveries SET state = 'sending', attempts = ? WHERE id = ?",
                             (attempt, row["id"]))
            try:
                if event is None:
                    raise Outcome("the event is not in the mirror", retry=False)
                post(client, webhook, message(alert, event.to_dict(), db_path))
            except Outcome as e:
                age = now - _epoch(row["created_at"], now)
                retry = e.retry and age < GIVE_UP_AFTER
                with store.transaction(conn):
                    _failed(conn, name, row["event_id"], attempt, e.error + ("" if retry else "; abandoned"))
                    conn.execute("UPDATE alert_deliveries SET state = ?, next_at = ? WHERE id = ?",
                                 ("pending" if retry else "abandoned", now + backoff(attempt), row["id"]))
                log.warning("alert %s: delivery of %s failed (attempt %d): %s", name, row["event_id"], attempt,
                            e.error)
                if retry:
                    next_due = min(next_due, backoff(attempt))
                    break
                continue
            with store.transaction(conn):
                conn.execute("UPDATE alert_deliveries SET state = 'delivered', delivered_at = ? WHERE id = ?",
                             (now_timestamp(), row["id"]))
    return next_due


def _epoch(timestamp: str, default: float) -> float:
    try:
        return parse_timestamp(timestamp).timestamp()
    except (ValueError, TypeError):
        return default
