"""The share-link site inside Datasette: what plugins/auditkit_share.py mounts (that file only registers hooks).

Who reaches what:
- Admins (actors whose id is in the plugin config's `admins`: the accounts of admins.json, and `root` from the
  one-time login URL) browse Datasette as usual and manage links at /-/share-links.
- Everyone else, link holders included, is anonymous to Datasette: every permission check answers False (a
  hook wrapper that overrides whatever other plugins answer), and an ASGI gate answers 403 to every path but the share
  pages, the login page and static files. A share visitor is never a Datasette actor, so no table, query, magic
  parameter or JSON endpoint of Datasette can see the link's scope or be widened by it.
- Share pages are this module's routes, each re-verifying the link from the `ds_share` cookie on every request and
  reading only through store.page / store.iter_rows / store.session_event with sharing.scope(link):
    /-/share/<token>             verify, set the cookie, 302 to /-/shared (the token leaves the address bar)
    /-/shared[?before=N&start=K] a page of the link's events, newest first (keyset: page 100 costs page 1)
    /-/shared/events.csv|.json   the whole set, streamed
    /-/shared/replay/<session>   the asciinema player on a recording referenced by an in-scope event
    /-/shared/cast/<session>     that recording (asciicast v2)
  Every view (page, download, replay, recording) is an Access event (sharing.record_view).
- Every response carries Referrer-Policy: no-referrer, X-Robots-Tag: noindex, Cache-Control: private, no-store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import re
import sqlite3
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from markupsafe import Markup

from auditkit import store
from auditkit.model import export
from auditkit.share import links as sharing
from auditkit.errors import (
    AuditkitError,
    FilterError,
    ShareError,
    ShareLinkExpired,
    ShareLinkRevoked,
    ShareLinkUnknown,
)
from auditkit.model.events import Event, parse_timestamp
from auditkit.model.filters import parse

CONFIG = "auditkit"
COOKIE = "ds_share"
PAGE_SIZE = 100
COUNT_BUDGET_S = 0.05  # a page shows the total only when counting it costs less than this
COUNT_TTL_S = 60.0  # a link's total is counted (or found too costly to count) at most once a minute
NEVER_COOKIE_S = 30 * 86400  # cookie lifetime for a link that never expires (re-opening the URL renews it)
ADMIN_SESSION_S = 12 * 3600  # admin logins (ds_actor) end after this
STATIC = "/-/static-plugins/auditkit"
PLAYER_JS = f"{STATIC}/asciinema-player/asciinema-player.min.js"
PLAYER_CSS = f"{STATIC}/asciinema-player/asciinema-player.css"
REPLAY_JS = f"{STATIC}/auditkit-replay.js"
SHARE_CSS = f"{STATIC}/auditkit-share.css"

# Paths anyone may reach (after the base_url prefix); everything else is for admins only. No percent-encoding and
# no dot segments: such a path never names a share page, so it is refused here rather than reinterpreted later.
_SEG = r"[A-Za-z0-9_-][A-Za-z0-9_.:-]*"
PUBLIC_PATHS = re.compile(
    rf"^(?:/-/share/{_SEG}|/-/shared(?:/{_SEG})*|/-/login|/-/logout|/-/auth-token"
    rf"|/-/static(?:/{_SEG})+|/-/static-plugins/auditkit(?:/{_SEG})+|/robots\.txt|/favicon\.ico)$"
)
SESSION_RE = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"
LINK_RE = r"sl_[0-9a-f]{16}"
_TIMESTAMP_COLUMNS = {"timestamp", "started_at", "ended_at", "created_at", "expires_at", "revoked_at",
                      "last_sync_at", "updated_at"}

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"referrer-policy", b"no-referrer"),
    (b"x-robots-tag", b"noindex, nofollow, noarchive"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"private, no-store"),
)
# Share pages load nothing from elsewhere, and only what they use from here. The player (3.18) compiles its
# WebAssembly terminal from bytes inside its bundle ('wasm-unsafe-eval') and fetches the recording (connect-src); it
# sets styles through the CSSOM, so no 'unsafe-inline'; no page loads images, fonts or workers.
# tests/test_browser.py replays a recording under this policy in Chromium and fails on any violation.
SHARE_CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

T = TypeVar("T")


# --- the per-instance state -----------------------------------------------------------------------------------------

class Site:
    """The share site of one Datasette instance: the mirror, the secret, the admins and a small thread pool whose
    threads each keep their own connection to the mirror (store calls are blocking)."""

    def __init__(self, datasette: Any, config: dict[str, Any]):
        self.ds = datasette
        self.db_name = config.get("database")
        database = datasette.databases.get(self.db_name)
        if database is None or not database.path:
            raise AuditkitError(f"the auditkit plugin's database '{self.db_name}' is not served by this Datasette")
        self.db_path = Path(database.path)
        self.secret = sharing.secret_for(self.db_path)
        self.admins = frozenset(a for a in (config.get("admins") or []) if isinstance(a, str) and a)
        self.base_url = (config.get("base_url") or "").rstrip("/") or None
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="auditkit-share")
        self._counts: dict[str, tuple[float, int | None]] = {}
        self._counts_lock = threading.Lock()

    def close(self) -> None:
        """Stop the pool (its threads close with their connections)."""
        self._pool.shutdown(wait=True)

    def is_admin(self, actor: Any) -> bool:
        return isinstance(actor, dict) and actor.get("id") in self.admins

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = store.open_db(self.db_path)
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """fn(conn) on a pool thread with that thread's own connection."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._conn()))

    async def stream(self, rows: Callable[[sqlite3.Connection], Iterator[str]]) -> Any:
        """An async iterator over chunks a blocking generator makes on its own read-only connection."""
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(self._pool, lambda: store.open_db(self.db_path, readonly=True))
        chunks = rows(conn)
        done = object()
        try:
            while True:
                chunk = await loop.run_in_executor(self._pool, next, chunks, done)
                if chunk is done:
                    return
                yield chunk
        finally:
            await loop.run_in_executor(self._pool, conn.close)

    def link_total(self, conn: sqlite3.Connection, link: sharing.ShareLink) -> int | None:
        """How many events a link shares, or None when counting costs more than COUNT_BUDGET_S; remembered for
        COUNT_TTL_S so that paging does not pay for it on every page."""
        now = time.monotonic()
        with self._counts_lock:
            cached = self._counts.get(link.id)
        if cached is not None and now - cached[0] < COUNT_TTL_S:
            return cached[1]
        total = _count_within(conn, sharing.scope(link), COUNT_BUDGET_S)
        with self._counts_lock:
            if len(self._counts) > 10_000:
                self._counts.clear()
            self._counts[link.id] = (now, total)
        return total

    def public_url(self, request: Any) -> str:
        if self.base_url:
            return self.base_url
        scheme = request.scheme or "http"
        return f"{scheme}://{request.host}{self.ds.setting('base_url').rstrip('/')}"


def site_for(datasette: Any) -> Site | None:
    """The instance's Site, made on first use; None when the instance has no `auditkit` plugin config."""
    site = getattr(datasette, "_auditkit_site", None)
    if site is None:
        config = datasette.plugin_config(CONFIG)
        if not config:
            return None
        site = Site(datasette, config)
        datasette._auditkit_site = site
    return site


# --- permissions, the gate and the headers --------------------------------------------------------------------------

def denies(datasette: Any, actor: Any) -> bool:
    """Whether every permission check of this actor must answer no: anyone but an admin, on a configured instance.
    The plugin applies it as a hook wrapper around every other permission_allowed implementation (see
    plugins/auditkit_share.py), so no other plugin, however it is ordered, can widen it."""
    site = site_for(datasette)
    return site is not None and not site.is_admin(actor)


def route_path(datasette: Any, scope: dict[str, Any]) -> str | None:
    """The path Datasette's router matches (raw, still percent-encoded, without the base_url prefix)."""
    raw = scope.get("raw_path")
    try:
        path = raw.decode("ascii") if raw else scope["path"]
    except UnicodeDecodeError:
        return None
    path = path.partition("?")[0]
    base = datasette.setting("base_url")
    if base != "/" and path.startswith(base):
        path = "/" + path[len(base):]
    return path


async def actor_of(datasette: Any, scope: dict[str, Any], receive: Any) -> Any:
    """The actor Datasette will see for this request (the same hooks, in the same order)."""
    from datasette.plugins import pm
    from datasette.utils import await_me_maybe
    from datasette.utils.asgi import Request

    request = Request(scope, receive)
    for result in pm.hook.actor_from_request(datasette=datasette, request=request):
        actor = await await_me_maybe(result)
        if actor:
            return actor
    return None


def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    def wrap(app: Any) -> Any:
        @functools.wraps(app)
        async def gate(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            site = site_for(datasette)
            if site is None:
                return await app(scope, receive, send)
            secure = scope.get("scheme") == "https" or (site.base_url or "").startswith("https:")

            async def send_with_headers(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message = dict(message, headers=_with_headers(datasette, message.get("headers") or [], secure))
                await send(message)

            path = route_path(datasette, scope)
            if path is None or not PUBLIC_PATHS.match(path):
                if not site.is_admin(await actor_of(datasette, scope, receive)):
                    return await _send_forbidden(send_with_headers)
            await app(scope, receive, send_with_headers)

        return gate

    return wrap


def _with_headers(datasette: Any, headers: list[Any], secure: bool) -> list[tuple[bytes, bytes]]:
    names = {name for name, _ in SECURITY_HEADERS}
    kept = []
    for name, value in headers:
        name, value = bytes(name), bytes(value)
        lower = name.lower()
        if lower in names:
            continue
        if lower == b"set-cookie" and value.startswith(b"ds_actor="):
            value = _harden_actor_cookie(datasette, value, secure)
        kept.append((name, value))
    return kept + list(SECURITY_HEADERS)


def _harden_actor_cookie(datasette: Any, header: bytes, secure: bool) -> bytes:
    """Admin logins (datasette-auth-passwords' /-/login, Datasette's /-/auth-token) set a ds_actor cookie with no
    expiry and readable by scripts: re-sign it with an expiry Datasette enforces, and make it HttpOnly."""
    from datasette.utils import baseconv
    from itsdangerous import BadSignature

    cookie = SimpleCookie()
    try:
        cookie.load(header.decode("latin-1"))
    except CookieError:
        return header
    morsel = cookie.get("ds_actor")
    if morsel is None or not morsel.value:
        return header  # logging out
    try:
        data = datasette.unsign(morsel.value, "actor")
    except BadSignature:
        return header
    if not isinstance(data, dict) or "a" not in data:
        return header
    expires = int(time.time()) + ADMIN_SESSION_S
    value = datasette.sign({"a": data["a"], "e": baseconv.base62.encode(expires)}, "actor")
    parts = [f"ds_actor={value}", "Path=/", f"Max-Age={ADMIN_SESSION_S}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


async def _send_forbidden(send: Any) -> None:
    body = (b"<!DOCTYPE html><html><head><title>Forbidden</title></head><body><h1>Forbidden</h1>"
            b"<p>This page is for auditkit admins. <a href=\"/-/login\">Log in</a>.</p></body></html>")
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# --- words and values for templates ---------------------------------------------------------------------------------

def readable_time(value: str) -> str:
    """'2026-11-01T12:00:00.123Z' → '2026-11-01 12:00:00 UTC'."""
    try:
        return parse_timestamp(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value


def event_view(event: Event, held: set[str]) -> dict[str, Any]:
    data = event.to_dict()
    data["when"] = readable_time(event.timestamp)
    data["details_json"] = json.dumps(event.details, indent=2, ensure_ascii=False, sort_keys=True)
    data["has_recording"] = bool(event.session_id and event.session_id in held)
    return data


def link_view(link: sharing.ShareLink, now: dt.datetime | None = None) -> dict[str, Any]:
    return {
        "id": link.id, "filter_text": link.filter_text or "(every event)", "range": sharing.range_text(link),
        "expiry": sharing.expiry_text(link), "status": link.status(now), "note": link.note, "views": link.views,
        "created": f"{sharing.human_time(link.created_at)} by {link.created_by}",
        "revoked": (f"{sharing.human_time(link.revoked_at)} by {link.revoked_by}" if link.revoked_at else None),
    }


def render_cell(datasette: Any, database: str, table: str | None, column: str, value: Any) -> Any:
    """Admin tables: readable UTC times, and links from events and sessions to the replay page and from
    share_links to the link's page."""
    site = site_for(datasette)
    if site is None or database != site.db_name or not isinstance(value, str) or not value:
        return None
    if column in _TIMESTAMP_COLUMNS and re.match(r"^\d{4}-\d{2}-\d{2}T", value):
        return Markup('<span title="{}">{}</span>').format(value, readable_time(value))
    if (table, column) in (("events", "session_id"), ("sessions", "id")):
        href = datasette.urls.path(f"/-/replay/{urllib.parse.quote(value)}")
        return Markup('<a href="{}">{}</a> (replay)').format(href, value)
    if table == "share_links" and column == "id":
        return Markup('<a href="{}">{}</a>').format(datasette.urls.path(f"/-/share-links/{value}"), value)
    if table == "events" and column == "target" and value.startswith("sl_") and re.match(f"^{LINK_RE}$", value):
        return Markup('<a href="{}">{}</a>').format(datasette.urls.path(f"/-/share-links/{value}"), value)
    return None


def menu_links(datasette: Any, actor: Any) -> list[dict[str, str]] | None:
    site = site_for(datasette)
    if site is None or not site.is_admin(actor):
        return None
    return [
        {"href": datasette.urls.path(f"/{site.db_name}/events"), "label": "Events"},
        {"href": datasette.urls.path("/-/share-links"), "label": "Share links"},
    ]


# --- responses ------------------------------------------------------------------------------------------------------

def _response() -> Any:
    from datasette.utils.asgi import Response

    return Response


async def _html(datasette: Any, request: Any, template: str, context: dict[str, Any], status: int = 200,
                share: bool = False) -> Any:
    context = dict(context, player_js=datasette.urls.path(PLAYER_JS), player_css=datasette.urls.path(PLAYER_CSS),
                   replay_js=datasette.urls.path(REPLAY_JS), share_css=datasette.urls.path(SHARE_CSS))
    body = await datasette.render_template(template, context, request=request)
    headers = {"content-security-policy": SHARE_CSP} if share else {}
    return _response().html(body, status=status, headers=headers)


def _client(request: Any) -> tuple[str | None, str | None]:
    client = request.scope.get("client")
    return (client[0] if client else None), request.headers.get("user-agent")


async def _refusal(datasette: Any, request: Any, error: ShareError) -> Any:
    """The page a link holder sees when the link cannot be opened (always 403)."""
    if isinstance(error, ShareLinkExpired):
        title, message = "This link has expired", f"This share link expired on {sharing.human_time(error.expired_at)}."
    elif isinstance(error, ShareLinkRevoked):
        title, message = "This link was revoked", (f"This share link was revoked on "
                                                   f"{sharing.human_time(error.revoked_at)}.")
    elif isinstance(error, _NoLink):
        title, message = "No share link", "No share link is open in this browser: open the link you were given."
    else:
        title, message = "This link is not valid", "This share link is not valid (it may be incomplete or altered)."
    response = await _html(datasette, request, "auditkit_share_error.html",
                           {"title": title, "message": message}, status=403, share=True)
    response.set_cookie(COOKIE, "", max_age=0, path=datasette.urls.path("/-/shared"), httponly=True,
                        samesite="lax")
    return response


class _NoLink(ShareError):
    """No ds_share cookie."""


def _open(site: Site, conn: sqlite3.Connection, token: str | None, request: Any, what: str) -> sharing.ShareLink:
    """The link the cookie names, verified now; a refused attempt on a known link is recorded (outcome denied)."""
    if not token:
        raise _NoLink("no share link")
    try:
        return sharing.verify(conn, site.secret, token)
    except (ShareLinkExpired, ShareLinkRevoked):
        ip, agent = _client(request)
        link = sharing.get(conn, sharing.link_id_from_token(site.secret, token))
        sharing.record_view(conn, link, what=what, ip=ip, user_agent=agent, outcome="denied")
        raise


def _int_arg(request: Any, name: str, low: int, high: int) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if not re.match(r"^-?\d{1,20}$", value) or not low <= int(value) <= high:
        raise ValueError(name)
    return int(value)


def _count_within(conn: sqlite3.Connection, f: Any, budget_s: float) -> int | None:
    """store.count, or None when it would take longer than budget_s (a free-text scope over a large mirror)."""
    deadline = time.monotonic() + budget_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
    try:
        return store.count(conn, f)
    except sqlite3.OperationalError as e:
        if "interrupted" in str(e):
            return None
        raise
    finally:
        conn.set_progress_handler(None, 0)


def _methods(request: Any, *allowed: str) -> Any:
    if request.method not in allowed:
        return _response().text("Method not allowed", status=405, headers={"allow": ", ".join(allowed)})
    return None


# --- the share pages ------------------------------------------------------------------------------------------------

def _share_page(handler: Callable[[Any, Any, Site], Any]) -> Callable[[Any, Any], Any]:
    """What every share page does first: 404 without the plugin's site, 405 for anything but GET and HEAD.
    (Not functools.wraps: Datasette passes a view the arguments its signature names.)"""
    async def page(request: Any, datasette: Any) -> Any:
        site = site_for(datasette)
        if site is None:
            return _response().text("Not found", status=404)
        if (refused := _methods(request, "GET", "HEAD")) is not None:
            return refused
        return await handler(request, datasette, site)

    page.__name__, page.__doc__ = handler.__name__, handler.__doc__
    return page


@_share_page
async def share_landing(request: Any, datasette: Any, site: Site) -> Any:
    """/-/share/<token>: check the token, keep it in an HttpOnly cookie, and send the browser to /-/shared."""
    token = request.url_vars["token"]
    try:
        link = await site.run(lambda conn: _open(site, conn, token, request, "opened the link"))
    except ShareError as e:
        return await _refusal(datasette, request, e)
    now = dt.datetime.now(dt.timezone.utc)
    if link.expires_at:
        max_age = max(1, int((parse_timestamp(link.expires_at) - now).total_seconds()))
    else:
        max_age = NEVER_COOKIE_S
    response = _response().redirect(datasette.urls.path("/-/shared"))
    secure = request.scheme == "https" or (site.base_url or "").startswith("https:")
    response.set_cookie(COOKIE, token, max_age=max_age, path=datasette.urls.path("/-/shared"), httponly=True,
                        secure=secure, samesite="lax")
    return response


@_share_page
async def shared_page(request: Any, datasette: Any, site: Site) -> Any:
    """/-/shared: one page of the link's events, newest first, with the link's terms and the way to the rest."""
    try:
        before = _int_arg(request, "before", -(2**63), 2**63 - 1)
        start = _int_arg(request, "start", 1, 10**12) or 1
    except ValueError as e:
        return _response().text(f"Bad value for {e.args[0]}", status=400)
    token = request.cookies.get(COOKIE)
    ip, agent = _client(request)

    def work(conn: sqlite3.Connection) -> tuple[sharing.ShareLink, store.Page, int | None, set[str]]:
        link = _open(site, conn, token, request, "a page of events")
        f = sharing.scope(link)
        page = store.page(conn, f, limit=PAGE_SIZE, before=before)
        total = site.link_total(conn, link)
        held = store.held_sessions(conn, (e.session_id for e in page.events if e.session_id))
        last = start + len(page.events) - 1
        what = f"page of events {start:,}–{last:,}" if page.events else "an empty page"
        if request.method == "GET":
            sharing.record_view(conn, link, what=what, ip=ip, user_agent=agent,
                                details={"page": {"before": before, "start": start, "events": len(page.events)}})
        return link, page, total, held

    try:
        link, page, total, held = await site.run(work)
    except ShareError as e:
        return await _refusal(datasette, request, e)
    next_url = None
    if page.next_before is not None:
        next_url = datasette.urls.path("/-/shared") + "?" + urllib.parse.urlencode(
            {"before": page.next_before, "start": start + len(page.events)})
    return await _html(datasette, request, "auditkit_shared.html", {
        "link": link_view(link),
        "events": [event_view(e, held) for e in page.events],
        "total": total,
        "start": start,
        "end": start + len(page.events) - 1,
        "first_page": before is None,
        "first_url": datasette.urls.path("/-/shared"),
        "next_url": next_url,
        "csv_url": datasette.urls.path("/-/shared/events.csv"),
        "json_url": datasette.urls.path("/-/shared/events.json"),
        "replay_base": datasette.urls.path("/-/shared/replay/"),
    }, share=True)


@_share_page
async def shared_download(request: Any, datasette: Any, site: Site) -> Any:
    """/-/shared/events.csv and .json: every event of the link, streamed newest first."""
    from datasette.utils.asgi import AsgiStream

    fmt = request.url_vars["format"]
    token = request.cookies.get(COOKIE)
    ip, agent = _client(request)

    def work(conn: sqlite3.Connection) -> sharing.ShareLink:
        link = _open(site, conn, token, request, f"download events.{fmt}")
        if request.method == "GET":
            sharing.record_view(conn, link, what=f"download of every event as {fmt.upper()}", ip=ip,
                                user_agent=agent, details={"download": fmt})
        return link

    try:
        link = await site.run(work)
    except ShareError as e:
        return await _refusal(datasette, request, e)
    f = sharing.scope(link)

    async def stream(writer: Any) -> None:
        if request.method == "HEAD":
            return
        async for chunk in site.stream(lambda conn: export.FORMATS[fmt](store.iter_rows(conn, f))):
            await writer.write(chunk)

    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json; charset=utf-8"
    return AsgiStream(stream, headers={
        "content-disposition": f'attachment; filename="auditkit-{link.id}.{fmt}"',
        "content-security-policy": SHARE_CSP,
    }, content_type=content_type)


async def _scoped_session(site: Site, request: Any, session_id: str, what: str,
                          load: Callable[[sqlite3.Connection], Any]) -> tuple[sharing.ShareLink, Event, Any]:
    token = request.cookies.get(COOKIE)
    ip, agent = _client(request)

    def work(conn: sqlite3.Connection) -> tuple[sharing.ShareLink, Event | None, Any]:
        link = _open(site, conn, token, request, what)
        event = store.session_event(conn, session_id, sharing.scope(link))
        if event is None:
            return link, None, None
        loaded = load(conn)
        if loaded is None:
            return link, None, None
        if request.method == "GET":
            sharing.record_view(conn, link, what=what, ip=ip, user_agent=agent,
                                details={"session_id": session_id, "event_id": event.id})
        return link, event, loaded

    link, event, loaded = await site.run(work)
    if event is None:
        raise _NotInScope(session_id)
    return link, event, loaded


class _NotInScope(Exception):
    pass


@_share_page
async def shared_replay(request: Any, datasette: Any, site: Site) -> Any:
    """/-/shared/replay/<session>: the player on a recording an in-scope event references (404 otherwise)."""
    session_id = request.url_vars["session_id"]
    try:
        link, event, session = await _scoped_session(
            site, request, session_id, f"replay of recording {session_id}",
            lambda conn: store.get_session(conn, session_id))
    except ShareError as e:
        return await _refusal(datasette, request, e)
    except _NotInScope:
        return await _not_found(datasette, request)
    return await _html(datasette, request, "auditkit_replay.html", {
        "session": _session_view(session), "event": event_view(event, {session_id}),
        "cast_url": datasette.urls.path(f"/-/shared/cast/{urllib.parse.quote(session_id)}"),
        "back_url": datasette.urls.path("/-/shared"), "back_label": "Back to the shared events",
        "link": link_view(link),
    }, share=True)


@_share_page
async def shared_cast(request: Any, datasette: Any, site: Site) -> Any:
    """/-/shared/cast/<session>: the recording (asciicast v2) of an in-scope event."""
    session_id = request.url_vars["session_id"]
    try:
        _, _, cast = await _scoped_session(site, request, session_id, f"recording {session_id} (asciicast)",
                                           lambda conn: store.recording(conn, session_id))
    except ShareError as e:
        return await _refusal(datasette, request, e)
    except _NotInScope:
        return await _not_found(datasette, request)
    return _cast_response(session_id, cast)


def _cast_response(session_id: str, cast: bytes) -> Any:
    return _response()(cast, content_type="application/x-asciicast", headers={
        "content-disposition": f'inline; filename="{session_id}.cast"', "content-security-policy": SHARE_CSP})


def _session_view(session: dict[str, Any]) -> dict[str, Any]:
    data = dict(session)
    data["started"] = readable_time(session["started_at"]) if session.get("started_at") else None
    data["duration"] = f"{session['duration_ms'] / 1000:.1f} s" if session.get("duration_ms") is not None else None
    return data


async def _not_found(datasette: Any, request: Any) -> Any:
    return await _html(datasette, request, "auditkit_share_error.html", {
        "title": "Not found", "message": "There is no such recording among the events this link shares."},
        status=404, share=True)


def robots_txt() -> Any:
    return _response().text("User-agent: *\nDisallow: /\n")


# --- admin pages ----------------------------------------------------------------------------------------------------

def _admin_site(datasette: Any, request: Any) -> Site:
    from datasette.utils.asgi import Forbidden

    site = site_for(datasette)
    if site is None or not site.is_admin(request.actor):
        raise Forbidden("Only auditkit admins may manage share links")
    return site


async def share_links_page(request: Any, datasette: Any) -> Any:
    """/-/share-links: every link with its views; a form (CSRF-protected) to create one from a filter."""
    site = _admin_site(datasette, request)
    if (refused := _methods(request, "GET", "HEAD", "POST")) is not None:
        return refused
    form = {"filter": request.args.get("filter", ""), "since": "", "until": "", "expires": "7d", "note": ""}
    error = None
    status = 200
    if request.method == "POST":
        posted = await request.post_vars()
        form = {key: (posted.get(key) or "").strip() for key in form}
        try:
            f = parse(form["filter"])
            link, _ = await site.run(lambda conn: sharing.create(
                conn, f, secret=site.secret, expires=form["expires"], since=form["since"] or None,
                until=form["until"] or None, note=form["note"] or None, created_by=request.actor["id"],
                base_url=site.public_url(request)))
        except (ShareError, FilterError) as e:
            error, status = str(e), 400
        else:
            datasette.add_message(request, f"Share link {link.id} created: send its URL to the auditor.")
            return _response().redirect(datasette.urls.path(f"/-/share-links/{link.id}"))
    links = await site.run(sharing.list_links)
    now = dt.datetime.now(dt.timezone.utc)
    return await _html(datasette, request, "auditkit_share_links.html", {
        "links": [dict(link_view(link, now), url=_link_url(site, request, link, now)) for link in links],
        "form": form, "error": error,
    }, status=status)


def _link_url(site: Site, request: Any, link: sharing.ShareLink, now: dt.datetime) -> str | None:
    if link.status(now) != "active":
        return None
    return sharing.url_for(site.public_url(request), sharing.token_for(site.secret, link.id))


async def share_link_page(request: Any, datasette: Any) -> Any:
    """/-/share-links/<id>: one link, its URL while it is open, every view, and the revoke button."""
    site = _admin_site(datasette, request)
    if (refused := _methods(request, "GET", "HEAD")) is not None:
        return refused
    link_id = request.url_vars["link_id"]
    try:
        link, seen = await site.run(lambda conn: (sharing.get(conn, link_id), sharing.views(conn, link_id)))
    except ShareLinkUnknown:
        return _response().html("No such share link", status=404)
    now = dt.datetime.now(dt.timezone.utc)
    matching = await site.run(lambda conn: _count_within(conn, sharing.scope(link), 0.5))
    return await _html(datasette, request, "auditkit_share_link.html", {
        "link": dict(link_view(link, now), url=_link_url(site, request, link, now)),
        "matching": matching,
        "views": [dict(event_view(e, set()), what=e.details.get("what", "")) for e in seen],
        "events_url": datasette.urls.path(f"/{site.db_name}/events") + "?" + urllib.parse.urlencode(
            {"target": link.id, "_sort_desc": "n"}),
    })


async def share_link_revoke(request: Any, datasette: Any) -> Any:
    """POST /-/share-links/<id>/revoke (CSRF-protected): revoke, back to the link's page."""
    site = _admin_site(datasette, request)
    if (refused := _methods(request, "POST")) is not None:
        return refused
    link_id = request.url_vars["link_id"]
    try:
        await site.run(lambda conn: sharing.revoke(conn, link_id, request.actor["id"]))
    except ShareLinkUnknown:
        return _response().html("No such share link", status=404)
    except ShareError as e:
        datasette.add_message(request, str(e), datasette.ERROR)
    else:
        datasette.add_message(request, f"Share link {link_id} revoked: it stops working now.")
    return _response().redirect(datasette.urls.path(f"/-/share-links/{link_id}"))


async def admin_replay(request: Any, datasette: Any) -> Any:
    """/-/replay/<session>: the player for admins (any recording in the mirror)."""
    site = _admin_site(datasette, request)
    session_id = request.url_vars["session_id"]
    session = await site.run(lambda conn: store.get_session(conn, session_id))
    if session is None:
        return await _html(datasette, request, "auditkit_share_error.html", {
            "title": "Not found", "message": f"The mirror holds no recording {session_id}."}, status=404)
    event = await site.run(lambda conn: store.session_event(conn, session_id))
    return await _html(datasette, request, "auditkit_replay.html", {
        "session": _session_view(session), "event": event_view(event, {session_id}) if event else None,
        "cast_url": datasette.urls.path(f"/-/replay/{urllib.parse.quote(session_id)}/cast"),
        "back_url": datasette.urls.path(f"/{site.db_name}/events"), "back_label": "Back to the events",
        "link": None,
    }, share=True)


async def admin_cast(request: Any, datasette: Any) -> Any:
    site = _admin_site(datasette, request)
    session_id = request.url_vars["session_id"]
    cast = await site.run(lambda conn: store.recording(conn, session_id))
    if cast is None:
        return _response().text("Not found", status=404)
    return _cast_response(session_id, cast)


ROUTES: list[tuple[str, Callable[..., Any]]] = [
    (r"^/-/share/(?P<token>[^/]{1,300})$", share_landing),
    (r"^/-/shared$", shared_page),
    (r"^/-/shared/events\.(?P<format>csv|json)$", shared_download),
    (rf"^/-/shared/replay/(?P<session_id>{SESSION_RE})$", shared_replay),
    (rf"^/-/shared/cast/(?P<session_id>{SESSION_RE})$", shared_cast),
    (r"^/-/share-links$", share_links_page),
    (rf"^/-/share-links/(?P<link_id>{LINK_RE})$", share_link_page),
    (rf"^/-/share-links/(?P<link_id>{LINK_RE})/revoke$", share_link_revoke),
    (rf"^/-/replay/(?P<session_id>{SESSION_RE})$", admin_replay),
    (rf"^/-/replay/(?P<session_id>{SESSION_RE})/cast$", admin_cast),
    (r"^/robots\.txt$", robots_txt),
]


def startup(datasette: Any) -> None:
    """Fail at start, not at the first request, when the plugin config is wrong."""
    site_for(datasette)

