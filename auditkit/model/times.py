"""Times as people read them: a moment ("2026-12-03 10:00 UTC"), how long ago ("45s", "2h03m"), how long ("12.3 s")
and a playback clock ("1:02:05"). Event timestamps are UTC strings (events.format_timestamp); these never say local
time.

Also the one bound check of date arithmetic on times people type (filters' since:/until:, a link's expiry):
`shifted` and `in_utc` stay inside the years Python can represent (0001 … 9999), so `until:9999-12-31` means "to
the end of time" instead of raising OverflowError.
"""

from __future__ import annotations

import datetime as dt

from auditkit.model.events import parse_timestamp

EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
LATEST = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def shifted(moment: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """moment + delta, saturated at EARLIEST / LATEST rather than overflowing."""
    try:
        return moment + delta
    except OverflowError:
        return LATEST if delta > dt.timedelta(0) else EARLIEST


def in_utc(moment: dt.datetime) -> dt.datetime:
    """An aware datetime in UTC (naive ones are taken as UTC), saturated at EARLIEST / LATEST (0001-01-01T00:00+01:00
    lies before the first representable UTC instant)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    try:
        return moment.astimezone(dt.timezone.utc)
    except OverflowError:
        return EARLIEST if moment.year == dt.MINYEAR else LATEST


def utc_text(timestamp: str) -> str:
    """'2026-12-03 10:00 UTC' (seconds shown only when not zero)."""
    moment = parse_timestamp(timestamp)
    text = moment.strftime("%Y-%m-%d %H:%M")
    if moment.second or moment.microsecond:
        text += moment.strftime(":%S")
    return text + " UTC"


def utc_minute(timestamp: str) -> str:
    """'2026-12-03 10:00': an event timestamp to the minute, for a column headed "time (UTC)"."""
    return timestamp[:16].replace("T", " ")


def since_text(seconds: float) -> str:
    """How long ago, to the second under an hour and to the minute above: '45s', '2h03m', '50h00m'."""
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds}s"


def duration_text(seconds: float) -> str:
    """How long, to a tenth of a second: '12.3 s', '1,234.5 s'."""
    return f"{seconds:,.1f} s"


def clock_text(seconds: float) -> str:
    """A playback position or length: 'm:ss', or 'h:mm:ss' from an hour on."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
