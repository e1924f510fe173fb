"""What admins get beyond Datasette itself: the share-link pages (list and create, one link with its views, revoke),
the replay page for any recording in the mirror, readable cells in the mirror's tables, and the menu entries.

    /-/share-links                every link with its views; a form (CSRF-protected) to create one from a filter
    /-/share-links/<id>           one link, its URL while it is open, every view, and the revoke button
    /-/share-links/<id>/revoke    POST: revoke
    /-/replay/<session>[/cast]    the player (and the recording) for any recording in the mirror

Every page here refuses (403) anyone who is not an admin of the instance.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from typing import Any

from markupsafe import Markup

from auditkit import store
from auditkit.errors import FilterError, ShareError, ShareLinkUnknown
from auditkit.model.filters import parse
from auditkit.model.safe_text import is_printable, printable
from auditkit.share import links as sharing
from auditkit.share.site.instance import Site, count_within, site_for
from auditkit.share.site.responses import cast_response, html, methods, response
from auditkit.share.site.views import event_view, link_view, readable_time, session_view

LINK_RE = r"sl_[0-9a-f]{16}"
_TIMESTAMP_COLUMNS = {"timestamp", "started_at", "ended_at", "created_at", "expires_at", "revoked_at",
                      "last_sync_at", "updated_at"}


def _admin_site(datasette: Any, request: Any) -> Site:
    from datasette.utils.asgi import Forbidden

    site = site_for(datasette)
    if site is None or not site.is_admin(request.actor):
        raise Forbidden("Only auditkit admins may manage share links")
    return site


async def share_links_page(request: Any, datasette: Any) -> Any:
    """/-/share-links: every link with its views; a form (CSRF-protected) to create one from a filter."""
    site = _admin_site(datasette, request)
    if (refused := methods(request, "GET", "HEAD", "POST")) is not None:
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
            error, status = printable(str(e)), 400
        else:
            datasette.add_message(request, f"Share link {link.id} created: send its URL to the auditor.")
            return response().redirect(datasette.urls.path(f"/-/share-links/{link.id}"))
    links = await site.run(sharing.list_links)
    now = dt.datetime.now(dt.timezone.utc)
    return await html(datasette, request, "auditkit_share_links.html", {
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
    if (refused := methods(request, "GET", "HEAD")) is not None:
        return refused
    link_id = request.url_vars["link_id"]
    try:
        link, seen = await site.run(lambda conn: (sharing.get(conn, link_id), sharing.views(conn, link_id)))
    except ShareLinkUnknown:
        return response().html("No such share link", status=404)
    now = dt.datetime.now(dt.timezone.utc)
    matching = await site.run(lambda conn: count_within(conn, sharing.scope(link), 0.5))
    return await html(datasette, request, "auditkit_share_link.html", {
        "link": dict(link_view(link, now), url=_link_url(site, request, link, now)),
        "matching": matching,
        "views": [dict(event_view(e, set()), what=e.details.get("what", "")) for e in seen],
        "events_url": datasette.urls.path(f"/{site.db_name}/events") + "?" + urllib.parse.urlencode(
            {"target": link.id, "_sort_desc": "n"}),
    })


async def share_link_revoke(request: Any, datasette: Any) -> Any:
    """POST /-/share-links/<id>/revoke (CSRF-protected): revoke, back to the link's page."""
    site = _admin_site(datasette, request)
    if (refused := methods(request, "POST")) is not None:
        return refused
    link_id = request.url_vars["link_id"]
    try:
        await site.run(lambda conn: sharing.revoke(conn, link_id, request.actor["id"]))
    except ShareLinkUnknown:
        return response().html("No such share link", status=404)
    except ShareError as e:
        datasette.add_message(request, str(e), datasette.ERROR)
    else:
        datasette.add_message(request, f"Share link {link_id} revoked: it stops working now.")
    return response().redirect(datasette.urls.path(f"/-/share-links/{link_id}"))


async def admin_replay(request: Any, datasette: Any) -> Any:
    """/-/replay/<session>: the player for admins (any recording in the mirror)."""
    site = _admin_site(datasette, request)
    session_id = request.url_vars["session_id"]
    session = await site.run(lambda conn: store.get_session(conn, session_id))
    if session is None:
        return await html(datasette, request, "auditkit_share_error.html", {
            "title": "Not found", "message": f"The mirror holds no recording {session_id}."}, status=404)
    event = await site.run(lambda conn: store.session_event(conn, session_id))
    return await html(datasette, request, "auditkit_replay.html", {
        "session": session_view(session), "event": event_view(event, {session_id}) if event else None,
        "cast_url": datasette.urls.path(f"/-/replay/{urllib.parse.quote(session_id)}/cast"),
        "back_url": datasette.urls.path(f"/{site.db_name}/events"), "back_label": "Back to the events",
        "link": None,
    }, share=True)


async def admin_cast(request: Any, datasette: Any) -> Any:
    site = _admin_site(datasette, request)
    session_id = request.url_vars["session_id"]
    cast = await site.run(lambda conn: store.recording(conn, session_id))
    if cast is None:
        return response().text("Not found", status=404)
    return cast_response(session_id, cast)


# --- Datasette's own pages, for admins ------------------------------------------------------------------------------

def render_cell(datasette: Any, database: str, table: str | None, column: str, value: Any) -> Any:
    """Admin tables: readable UTC times, links from events and sessions to the replay page and from share_links to
    the link's page, and text with control, bidi or zero-width characters made printable (safe_text)."""
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
    if not is_printable(value):  # control, bidi or zero-width characters: shown as escapes, never obeyed
        return Markup("{}").format(printable(value))
    return None


def menu_links(datasette: Any, actor: Any) -> list[dict[str, str]] | None:
    site = site_for(datasette)
    if site is None or not site.is_admin(actor):
        return None
    return [
        {"href": datasette.urls.path(f"/{site.db_name}/events"), "label": "Events"},
        {"href": datasette.urls.path("/-/share-links"), "label": "Share links"},
    ]
