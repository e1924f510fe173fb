"""The share pages a link holder sees, each re-verifying the link from the `ds_share` cookie on every request and
reading only through store.page / store.iter_rows / store.session_event with links.scope(link):

    /-/share/<token>             verify, set the cookie, 302 to /-/shared (the token leaves the address bar)
    /-/shared[?before=N&start=K] a page of the link's events, newest first (keyset: page 100 costs page 1)
    /-/shared/events.csv|.json   the whole set, streamed
    /-/shared/export.zip         the verifiable export (share/export.py): events, proofs, checkpoints, keys
    /-/shared/replay/<session>   the asciinema player on a recording referenced by an in-scope event
    /-/shared/cast/<session>     that recording (asciicast v2)

Every view (page, download, replay, recording) is an Access event (links.record_view); a refused attempt on a
known link is one too (outcome denied). Also /robots.txt, which keeps crawlers out of the whole instance.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import tempfile
import urllib.parse
from typing import Any, Callable

from auditkit import store
from auditkit.errors import ShareError, ShareLinkExpired, ShareLinkRevoked
from auditkit.model import export
from auditkit.model.events import Event, parse_timestamp
from auditkit.share import export as exporting, links as sharing
from auditkit.share.site.instance import Site, site_for
from auditkit.share.site.responses import SHARE_CSP, cast_response, client, html, methods, response
from auditkit.share.site.views import event_view, link_view, readable_time, session_view

COOKIE = "ds_share"
PAGE_SIZE = 100
NEVER_COOKIE_S = 30 * 86400  # cookie lifetime for a link that never expires (re-opening the URL renews it)


def _share_page(handler: Callable[[Any, Any, Site], Any]) -> Callable[[Any, Any], Any]:
    """What every share page does first: 404 without the plugin's site, 405 for anything but GET and HEAD.
    (Not functools.wraps: Datasette passes a view the arguments its signature names.)"""
    async def page(request: Any, datasette: Any) -> Any:
        site = site_for(datasette)
        if site is None:
            return response().text("Not found", status=404)
        if (refused := methods(request, "GET", "HEAD")) is not None:
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
    landed = response().redirect(datasette.urls.path("/-/shared"))
    secure = request.scheme == "https" or (site.base_url or "").startswith("https:")
    landed.set_cookie(COOKIE, token, max_age=max_age, path=datasette.urls.path("/-/shared"), httponly=True,
                      secure=secure, samesite="lax")
    return landed


@_share_page
async def shared_page(request: Any, datasette: Any, site: Site) -> Any:
    """/-/shared: one page of the link's events, newest first, with the link's terms and the way to the rest."""
    try:
        before = _int_arg(request, "before", -(2**63), 2**63 - 1)
        start = _int_arg(request, "start", 1, 10**12) or 1
    except ValueError as e:
        return response().text(f"Bad value for {e.args[0]}", status=400)
    token = request.cookies.get(COOKIE)
    ip, agent = client(request)

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
        checkpoints = [dict(cp, signed_at=readable_time(cp["signed_at"]) if cp["signed_at"] else None)
                       for cp in exporting.page_checkpoints(conn, page.events)]
        try:
            mirror_key = str(exporting.mirror_signer(conn).verifier)
        except exporting.ExportRefused:
            mirror_key = None
        return link, page, total, held, checkpoints, mirror_key

    try:
        link, page, total, held, checkpoints, mirror_key = await site.run(work)
    except ShareError as e:
        return await _refusal(datasette, request, e)
    next_url = None
    if page.next_before is not None:
        next_url = datasette.urls.path("/-/shared") + "?" + urllib.parse.urlencode(
            {"before": page.next_before, "start": start + len(page.events)})
    return await html(datasette, request, "auditkit_shared.html", {
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
        "export_url": datasette.urls.path(EXPORT_PATH),
        "export_name": f"auditkit-{link.id}.zip",
        "checkpoints": checkpoints,
        "verify_keys": list(dict.fromkeys([cp["key"] for cp in checkpoints if cp["key"]]
                                          + ([mirror_key] if mirror_key else []))),
        "replay_base": datasette.urls.path("/-/shared/replay/"),
    }, share=True)


@_share_page
async def shared_download(request: Any, datasette: Any, site: Site) -> Any:
    """/-/shared/events.csv and .json: every event of the link, streamed newest first."""
    from datasette.utils.asgi import AsgiStream

    fmt = request.url_vars["format"]
    token = request.cookies.get(COOKIE)
    ip, agent = client(request)

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


EXPORT_PATH = "/-/shared/export.zip"
SPOOL_BYTES = 8 << 20  # an export up to this size is built in memory, a larger one in a temporary file


@_share_page
async def shared_export(request: Any, datasette: Any, site: Site) -> Any:
    """/-/shared/export.zip: the link's verifiable export, built whole (its manifest is signed over every member)
    before the first byte is sent; the download is a view of the link (an Access event with the manifest's
    sha256). A chain without a signed checkpoint covering the events is a 409 page saying which."""
    from datasette.utils.asgi import AsgiStream

    token = request.cookies.get(COOKIE)
    ip, agent = client(request)

    def work(conn: sqlite3.Connection) -> tuple[sharing.ShareLink, Any]:
        link = _open(site, conn, token, request, "download of the verifiable export")
        if request.method == "HEAD":
            return link, None
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        try:
            summary = exporting.write_export(conn, link, spool)
        except BaseException:
            spool.close()
            raise
        sharing.record_view(conn, link, what="download of the verifiable export (zip)", ip=ip, user_agent=agent,
                            details={"download": "export", **exporting.export_details(summary)})
        spool.seek(0)
        return link, spool

    try:
        link, spool = await site.run(work)
    except exporting.ExportRefused as e:
        return await html(datasette, request, "auditkit_share_error.html", {
            "title": "The verifiable export cannot be made yet", "message": str(e)}, status=409, share=True)
    except ShareError as e:
        return await _refusal(datasette, request, e)

    async def stream(writer: Any) -> None:
        if spool is None:
            return
        try:
            while chunk := await site.run(lambda conn: spool.read(1 << 20)):
                # bytes: AsgiWriter.write only takes text
                await writer.send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            spool.close()

    return AsgiStream(stream, headers={
        "content-disposition": f'attachment; filename="auditkit-{link.id}.zip"',
        "content-security-policy": SHARE_CSP,
    }, content_type="application/zip")


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
    return await html(datasette, request, "auditkit_replay.html", {
        "session": session_view(session), "event": event_view(event, {session_id}),
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
    return cast_response(session_id, cast)


def robots_txt() -> Any:
    return response().text("User-agent: *\nDisallow: /\n")


# --- the link behind a request --------------------------------------------------------------------------------------

class _NoLink(ShareError):
    """No ds_share cookie."""


class _NotInScope(Exception):
    pass


def _open(site: Site, conn: sqlite3.Connection, token: str | None, request: Any, what: str) -> sharing.ShareLink:
    """The link the cookie names, verified now; a refused attempt on a known link is recorded (outcome denied)."""
    if not token:
        raise _NoLink("no share link")
    try:
        return sharing.verify(conn, site.secret, token)
    except (ShareLinkExpired, ShareLinkRevoked):
        ip, agent = client(request)
        link = sharing.get(conn, sharing.link_id_from_token(site.secret, token))
        sharing.record_view(conn, link, what=what, ip=ip, user_agent=agent, outcome="denied")
        raise


async def _scoped_session(site: Site, request: Any, session_id: str, what: str,
                          load: Callable[[sqlite3.Connection], Any]) -> tuple[sharing.ShareLink, Event, Any]:
    token = request.cookies.get(COOKIE)
    ip, agent = client(request)

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
    refused = await html(datasette, request, "auditkit_share_error.html",
                         {"title": title, "message": message}, status=403, share=True)
    refused.set_cookie(COOKIE, "", max_age=0, path=datasette.urls.path("/-/shared"), httponly=True,
                       samesite="lax")
    return refused


async def _not_found(datasette: Any, request: Any) -> Any:
    return await html(datasette, request, "auditkit_share_error.html", {
        "title": "Not found", "message": "There is no such recording among the events this link shares."},
        status=404, share=True)


def _int_arg(request: Any, name: str, low: int, high: int) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if not re.match(r"^-?\d{1,20}$", value) or not low <= int(value) <= high:
        raise ValueError(name)
    return int(value)
