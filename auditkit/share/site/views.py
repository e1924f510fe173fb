"""Words and values for the templates: readable times, and the dicts an event, a link and a recording become on a
page. Text from events and links is made printable here (safe_text: control, bidi and zero-width characters as
visible escapes); the templates' autoescape keeps it from becoming markup."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from auditkit.model.events import Event, parse_timestamp
from auditkit.model.safe_text import printable, printable_lines
from auditkit.share import links as sharing


def readable_time(value: str) -> str:
    """'2026-11-01T12:00:00.123Z' → '2026-11-01 12:00:00 UTC'."""
    try:
        return parse_timestamp(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value


def event_view(event: Event, held: set[str]) -> dict[str, Any]:
    data = {key: printable(value) if isinstance(value, str) else value for key, value in event.to_dict().items()}
    data["when"] = readable_time(event.timestamp)
    data["details_json"] = printable_lines(json.dumps(event.details, indent=2, ensure_ascii=False,
                                                    sort_keys=True))
    data["has_recording"] = bool(event.session_id and event.session_id in held)
    return data


def link_view(link: sharing.ShareLink, now: dt.datetime | None = None) -> dict[str, Any]:
    return {
        "id": link.id, "filter_text": printable(link.filter_text) or "(every event)",
        "range": printable(sharing.range_text(link)), "expiry": sharing.expiry_text(link), "status": link.status(now),
        "note": printable(link.note) if link.note else None, "views": link.views,
        "created": printable(f"{sharing.human_time(link.created_at)} by {link.created_by}"),
        "revoked": (printable(f"{sharing.human_time(link.revoked_at)} by {link.revoked_by}")
                    if link.revoked_at else None),
    }


def session_view(session: dict[str, Any]) -> dict[str, Any]:
    data = dict(session)
    data["started"] = readable_time(session["started_at"]) if session.get("started_at") else None
    data["duration"] = f"{session['duration_ms'] / 1000:.1f} s" if session.get("duration_ms") is not None else None
    return data
