"""Share links: create, verify, revoke and list signed links to a filtered slice of the mirror, and record every view.

The one implementation behind `auditkit share …`, the share site (auditkit.share.site) and the TUI.

- A link is a row of `share_links`: a filter (without time terms), its own time range (since/until, relative forms
  frozen at creation), an expiry (or none), a note, who made it and when, and the revocation.
- Its URL carries `token_for(secret, link_id)`: the link id signed with itsdangerous under the namespace
  "share-link" (what Datasette's `sign(link_id, "share-link")` makes with the same secret). The token names only
  the id; everything else is read from the row on every request, so expiry and revocation apply at once.
- The secret lives beside the mirror (`<db dir>/share-secret`, mode 0600, made on first use) and is Datasette's
  signing secret too. Replacing it invalidates every token (rotate_secret also marks every open link revoked).
- Creating, revoking and viewing a link are Access events (actions created, revoked, viewed) on the mirror's
  `local` chain, with target = the link id, so a link's views are counted through the target index.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import os
import re
import secrets
import sqlite3
import stat
from pathlib import Path
from typing import Any, Mapping

from itsdangerous import BadSignature, URLSafeSerializer

from auditkit import store
from auditkit.errors import ShareError, ShareLinkExpired, ShareLinkRevoked, ShareLinkUnknown, ShareTokenError
from auditkit.model.events import Event, format_timestamp, from_dict, new_event_id, parse_timestamp
from auditkit.model.times import shifted, utc_text
from auditkit.model.filters import TIME_KEYS, Filter, from_json, is_date, relative_seconds, resolve_time, to_json
from auditkit.files import write_private

NAMESPACE = "share-link"
SECRET_FILE = "share-secret"
# Share-link events are the mirror's own: they carry this rack, next to the racks of the events they expose.
LOCAL_RACK = "local"
DEFAULT_BASE_URL = "http://127.0.0.1:8001"
SHARE_PATH = "/-/share/"
MAX_NOTE = 500
MAX_TOKEN = 200

_ID_RE = re.compile(r"^sl_[0-9a-f]{16}$")
_EXPIRY_HELP = "use 7d, 24h, 2w, 2026-12-31, 2026-12-31T18:00Z or never"


@dataclasses.dataclass(frozen=True)
class ShareLink:
    """A share_links row. `filter` holds no time terms: the range is `since`/`until` (filter values, absolute)."""

    id: str
    filter: Filter
    since: str | None
    until: str | None
    expires_at: str | None  # UTC timestamp; None: never
    note: str | None
    created_by: str
    created_at: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    views: int = 0  # successful views recorded (filled by list_links and get)

    @property
    def filter_text(self) -> str:
        return self.filter.to_text()

    def status(self, now: dt.datetime | None = None) -> str:
        """'revoked', 'expired' or 'active'."""
        if self.revoked_at:
            return "revoked"
        if self.expires_at and parse_timestamp(self.expires_at) <= _now(now):
            return "expired"
        return "active"


# --- the secret and tokens ------------------------------------------------------------------------------------------

def secret_path(db_path: str | os.PathLike[str]) -> Path:
    return Path(db_path).parent / SECRET_FILE


def secret_for(db_path: str | os.PathLike[str]) -> str:
    """The signing secret kept beside the mirror, made (mode 0600) on first use. Refuses a file others can read."""
    path = secret_path(db_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_private(path, secrets.token_hex(32) + "\n", exclusive=True)
        except FileExistsError:
            pass  # made by a concurrent first use: read theirs
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ShareError(f"{path} is readable by other users: `chmod 600 {path}` (or rotate the secret)")
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ShareError(f"{path} holds no usable secret (delete it to make a new one; every link stops working)")
    return secret


def token_for(secret: str, link_id: str) -> str:
    """The link id signed under the share-link namespace (what Datasette's sign(link_id, 'share-link') makes)."""
    return URLSafeSerializer(secret, NAMESPACE).dumps(link_id)


def link_id_from_token(secret: str, token: str) -> str:
    """The link id a token names; ShareTokenError unless it is signed with `secret` under the share-link namespace."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise ShareTokenError("this share link is not valid")
    try:
        link_id = URLSafeSerializer(secret, NAMESPACE).loads(token)
    except (BadSignature, UnicodeError, ValueError):
        raise ShareTokenError("this share link is not valid (its signature does not match)") from None
    if not isinstance(link_id, str) or not _ID_RE.match(link_id):
        raise ShareTokenError("this share link is not valid")
    return link_id


def url_for(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + SHARE_PATH + token


# --- parsing the inputs ---------------------------------------------------------------------------------------------

def parse_expiry(text: str, now: dt.datetime | None = None) -> str | None:
    """When a link made now with `--expires TEXT` expires, as a UTC timestamp; None for 'never'.

    7d / 24h / 90m / 2w: from now. 2026-12-31: at the end of that UTC day. 2026-12-31T18:00Z: at that instant.
    """
    now = _now(now)
    value = (text or "").strip()
    if value.lower() == "never":
        return None
    seconds = relative_seconds(value)
    try:
        if seconds is not None:
            moment = shifted(now, dt.timedelta(seconds=seconds))
        elif is_date(value):
            moment = resolve_time("until", value, now)  # a date includes that whole day
        elif "T" in value:
            moment = resolve_time("since", value, now)  # a date-time is that instant
        else:
            raise ValueError(value)
    except (ValueError, OverflowError):
        raise ShareError(f"bad expiry '{text}' ({_EXPIRY_HELP})") from None
    if moment <= now:
        raise ShareError(f"expiry '{text}' is not in the future ({format_timestamp(moment)})")
    return format_timestamp(moment)


def _frozen_time(key: str, value: str, now: dt.datetime) -> str:
    """A since:/until: value with relative forms made absolute at `now`, meaning exactly the same instants."""
    if relative_seconds(value) is None:
        return value
    moment = resolve_time(key, value, now)
    if key == "until":  # until: a date-time includes its millisecond; the relative form excludes that instant
        moment -= dt.timedelta(milliseconds=1)
    return format_timestamp(moment)


def _time_bounds(f: Filter, since: str | None, until: str | None, now: dt.datetime) -> tuple[str | None, str | None]:
    found: dict[str, str | None] = {}
    for key, given in (("since", since), ("until", until)):
        in_filter = f.values(key)
        if given is not None and in_filter:
            raise ShareError(f"'{key}' given both in the filter ({key}:{in_filter[0]}) and as --{key} {given}")
        value = given if given is not None else (in_filter[0] if in_filter else None)
        if value is not None:
            Filter().with_values(key, [value])  # validates (FilterError names the value)
            value = _frozen_time(key, value, now)
        found[key] = value
    low, high = found["since"], found["until"]
    if low and high and resolve_time("since", low, now) >= resolve_time("until", high, now):
        raise ShareError(f"the time range since {low} until {high} is empty")
    return low, high


def scope(link: ShareLink) -> Filter:
    """The filter every query for this link uses: its filter AND its time range."""
    f = link.filter.without(*TIME_KEYS)
    if link.since:
        f = f.with_values("since", [link.since])
    if link.until:
        f = f.with_values("until", [link.until])
    return f


# --- create, verify, revoke, list -----------------------------------------------------------------------------------

def create(conn: sqlite3.Connection, f: Filter, *, secret: str, expires: str, since: str | None = None,
           until: str | None = None, note: str | None = None, created_by: str, base_url: str,
           now: dt.datetime | None = None) -> tuple[ShareLink, str]:
    """Make a link to the events matching `f` (and since/until); returns the link and its URL."""
    now = _now(now)
    expires_at = parse_expiry(expires, now)
    low, high = _time_bounds(f, since, until, now)
    created_by = (created_by or "").strip()
    if not created_by:
        raise ShareError("a share link needs the name of who creates it")
    note = (note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise ShareError(f"the note is {len(note)} characters long; at most {MAX_NOTE}")
    if not re.match(r"^https?://[^/\s]+", base_url or ""):
        raise ShareError(f"'{base_url}' is not an http(s) base URL (e.g. {DEFAULT_BASE_URL})")
    link = ShareLink(
        id="sl_" + secrets.token_hex(8),
        filter=f.without(*TIME_KEYS),
        since=low,
        until=high,
        expires_at=expires_at,
        note=note,
        created_by=created_by,
        created_at=format_timestamp(now),
    )
    with store.transaction(conn):
        conn.execute(
            "INSERT INTO share_links(id, filter, filter_text, since, until, expires_at, note, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (link.id, to_json(link.filter), link.filter_text, link.since, link.until, link.expires_at, link.note,
             link.created_by, link.created_at),
        )
        details = {"filter": link.filter_text, "since": link.since, "until": link.until,
                   "expires_at": link.expires_at, "note": link.note}
        store.append(conn, [_access_event(link, "created", created_by, now,
                                          f"Created share link {link.id}: {describe(link)}", details)])
    return link, url_for(base_url, token_for(secret, link.id))


def get(conn: sqlite3.Connection, link_id: str) -> ShareLink:
    """A link by id, with its view count (ShareLinkUnknown when there is none)."""
    row = conn.execute("SELECT * FROM share_links WHERE id = ?", (link_id,)).fetchone()
    if row is None:
        raise ShareLinkUnknown(f"no share link '{link_id}'")
    return dataclasses.replace(_from_row(row), views=store.count(conn, view_filter(link_id)))


def verify(conn: sqlite3.Connection, secret: str, token: str, now: dt.datetime | None = None) -> ShareLink:
    """The link a token opens, checked: signature, existence, revocation, expiry (each failure its own error)."""
    link_id = link_id_from_token(secret, token)
    row = conn.execute("SELECT * FROM share_links WHERE id = ?", (link_id,)).fetchone()
    if row is None:
        raise ShareLinkUnknown("this share link does not exist in this mirror")
    link = _from_row(row)
    if link.revoked_at:
        raise ShareLinkRevoked(f"this share link was revoked on {human_time(link.revoked_at)}", link.revoked_at,
                               link.revoked_by)
    if link.expires_at and parse_timestamp(link.expires_at) <= _now(now):
        raise ShareLinkExpired(f"this share link expired on {human_time(link.expires_at)}", link.expires_at)
    return link


def revoke(conn: sqlite3.Connection, link_id: str, by: str, now: dt.datetime | None = None,
           reason: str | None = None) -> ShareLink:
    """Revoke a link (from its next request on). Refuses an unknown or already revoked link."""
    now = _now(now)
    by = (by or "").strip()
    if not by:
        raise ShareError("revoking a share link needs the name of who revokes it")
    with store.transaction(conn):
        link = get(conn, link_id)
        if link.revoked_at:
            raise ShareError(f"share link {link_id} was already revoked on {human_time(link.revoked_at)}"
                             f" by {link.revoked_by}")
        at = format_timestamp(now)
        conn.execute("UPDATE share_links SET revoked_at = ?, revoked_by = ? WHERE id = ?", (at, by, link_id))
        link = dataclasses.replace(link, revoked_at=at, revoked_by=by)
        why = f" ({reason})" if reason else ""
        store.append(conn, [_access_event(link, "revoked", by, now, f"Revoked share link {link.id}{why}",
                                          {"reason": reason} if reason else {})])
    return link


def list_links(conn: sqlite3.Connection) -> list[ShareLink]:
    """Every link, newest first, with its view count."""
    rows = conn.execute("SELECT * FROM share_links ORDER BY created_at DESC, id").fetchall()
    return [dataclasses.replace(_from_row(r), views=store.count(conn, view_filter(r["id"]))) for r in rows]


def view_filter(link_id: str, outcome: str | None = "succeeded") -> Filter:
    """The Access events that record views of a link."""
    f = Filter.parse("category:Access action:viewed").with_values("rack", [LOCAL_RACK])
    f = f.with_values("target", [link_id])
    return f.with_values("outcome", [outcome]) if outcome else f


def views(conn: sqlite3.Connection, link_id: str) -> list[Event]:
    """Every recorded view of a link (refused attempts included), newest first."""
    get(conn, link_id)
    return [from_dict(row) for row in store.iter_rows(conn, view_filter(link_id, outcome=None))]


def record_view(conn: sqlite3.Connection, link: ShareLink, *, what: str, ip: str | None, user_agent: str | None,
                details: Mapping[str, Any] | None = None, outcome: str = "succeeded",
                now: dt.datetime | None = None) -> Event:
    """Append the Access event for one view of a link (a page, a download, a replay): time, link, IP, user agent
    and what was viewed. A refused view (expired or revoked link) is recorded with outcome 'denied'."""
    data = {"what": what, **(details or {})}
    draft = _access_event(link, "viewed", f"share:{link.id}", _now(now), f"Viewed share link {link.id}: {what}",
                          data, outcome=outcome, ip=ip, user_agent=user_agent)
    return store.append(conn, [draft])[0]


def record_export(conn: sqlite3.Connection, link: ShareLink, *, by: str, events: int,
                  details: Mapping[str, Any], now: dt.datetime | None = None) -> Event:
    """Append the Access event of a verifiable export made from the command line (action exported, by an admin;
    the share page's download of it is a view, recorded by record_view)."""
    draft = _access_event(link, "exported", by, _now(now),
                          f"Exported share link {link.id}: a verifiable export of {events:,} events", details)
    return store.append(conn, [draft])[0]


def rotate_secret(conn: sqlite3.Connection, db_path: str | os.PathLike[str], by: str,
                  now: dt.datetime | None = None) -> list[ShareLink]:
    """Replace the signing secret: every token stops verifying (and Datasette admin sessions end). The links still
    open are marked revoked, so lists say so; returns them."""
    now = _now(now)
    revoked = [revoke(conn, link.id, by, now, reason="signing secret rotated")
               for link in list_links(conn) if not link.revoked_at]
    write_private(secret_path(db_path), secrets.token_hex(32) + "\n")
    return revoked


# --- words for people -----------------------------------------------------------------------------------------------

human_time = utc_text  # '2026-12-03 10:00 UTC': the one wording of a moment (model.times)


def _time_value_text(value: str) -> str:
    return value if is_date(value) else value.replace("T", " ").replace("Z", " UTC")


def bounds_text(since: str | None, until: str | None) -> str:
    """A link's time range in words (the one wording, for the CLI, the site and the TUI):
    'from 2026-11-01 through 2026-11-20', 'from 2026-11-01 on', 'through 2026-11-20' or 'all time'."""
    if since and until:
        return f"from {_time_value_text(since)} through {_time_value_text(until)}"
    if since:
        return f"from {_time_value_text(since)} on"
    if until:
        return f"through {_time_value_text(until)}"
    return "all time"


def range_text(link: ShareLink) -> str:
    """The link's time range in words (bounds_text)."""
    return bounds_text(link.since, link.until)


def filter_range_text(f: Filter, now: dt.datetime | None = None) -> str:
    """The time range a link made now from `f` would have, in the words range_text will use for it (relative
    forms fixed at `now`, as create fixes them). ShareError when that range is empty."""
    return bounds_text(*_time_bounds(f, None, None, _now(now)))


def expiry_text(link: ShareLink) -> str:
    return f"expires {human_time(link.expires_at)}" if link.expires_at else "never expires"


def describe(link: ShareLink) -> str:
    """'rack:acme/production, from 2026-11-01 through 2026-11-20, expires 2026-12-03 10:00 UTC'."""
    what = link.filter_text or "every event"
    return f"{what}, {range_text(link)}, {expiry_text(link)}"


def default_creator() -> str:
    """Who creates (or revokes) a link when no name is given: $AUDITKIT_USER, else the login name, else "system"."""
    try:
        return os.environ.get("AUDITKIT_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "system"


# --- helpers --------------------------------------------------------------------------------------------------------

def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.timezone.utc)


def _from_row(row: sqlite3.Row) -> ShareLink:
    return ShareLink(
        id=row["id"], filter=from_json(row["filter"]), since=row["since"], until=row["until"],
        expires_at=row["expires_at"], note=row["note"], created_by=row["created_by"], created_at=row["created_at"],
        revoked_at=row["revoked_at"], revoked_by=row["revoked_by"],
    )


def _access_event(link: ShareLink, action: str, actor: str, now: dt.datetime, description: str,
                  details: Mapping[str, Any], *, outcome: str = "succeeded", ip: str | None = None,
                  user_agent: str | None = None) -> Event:
    return Event(
        id=new_event_id(int(now.timestamp() * 1000)),
        timestamp=format_timestamp(now),
        actor=actor,
        actor_type="system" if actor == "system" else "user",
        rack=LOCAL_RACK,
        category="Access",
        action=action,
        description=description,
        target=link.id,
        outcome=outcome,
        source_ip=_clean(ip, 64),
        user_agent=_clean(user_agent, 512),
        details={k: v for k, v in details.items() if v is not None},
    )


def _clean(value: str | None, limit: int) -> str | None:
    """Request-supplied text as an event field: no NUL (events refuse it), bounded length."""
    if not value:
        return None
    return value.replace("\x00", "\\0")[:limit]
