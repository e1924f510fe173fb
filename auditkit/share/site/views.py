"""Words and values for the templates: readable times, and the dicts an event, a link and a recording become on a
page."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from auditkit.model.events import Event, parse_timestamp
from auditkit.share import links as sharing


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


def session_view(session: dict[str, Any]) -> dict[str, Any]:
    data = dict(session)
    data["started"] = readable_time(session["started_at"]) if session.get("started_at") else None
    data["duration"] = f"{session['duration_ms'] / 1000:.1f} s" if session.get("duration_ms") is not None else None
    return data
