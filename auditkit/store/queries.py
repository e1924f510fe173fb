"""Reading events: keyset pages through a filter, counts, the key at an offset, streaming every match, a chain's
events after a seq (feed pages), single events, and the values a qualifier takes.

Filters become SQL in model/filters.py; this module chooses, per query, whether free text is answered through the
full-text index or by scanning the other qualifiers' candidates (_use_fts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from typing import Any, Iterator

from auditkit.model import filters as filters_mod
from auditkit.model.events import FIELDS, Event, from_dict
from auditkit.model.filters import Filter
from auditkit.store.bulk import has_text_index
from auditkit.store.schema import SELECT_EVENT


@dataclasses.dataclass(frozen=True)
class Page:
    """One keyset page, newest first. Pass `next_before` back as `before` to get the next (older) page."""

    events: list[Event]
    next_before: int | None
    keys: list[int]


def row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """An events row as a dict of FIELDS, details parsed (ValueError when they are not JSON)."""
    data = {name: row[name] for name in FIELDS}
    data["details"] = json.loads(data["details"]) if data["details"] else {}
    return data


def row_to_event(row: sqlite3.Row | dict[str, Any]) -> Event:
    data = {name: row[name] for name in FIELDS}
    return from_dict(data)


def _statement(f: Filter | None, columns: str, now: dt.datetime | None, before: int | None,
               tail: str, fts: bool = True, after: int | None = None) -> tuple[str, list[Any]]:
    sf = filters_mod.to_sql(f or Filter(), now, fts=fts)
    params: list[Any] = []
    where = [sf.where]
    params.extend(sf.params)
    if sf.match is not None:
        key = "f.rowid"
        source = "events_fts f CROSS JOIN events e ON e.n = f.rowid"
        where.insert(0, "events_fts MATCH ?")
        params.insert(0, sf.match)
    else:
        key = "e.n"
        source = "events e"
    if before is not None:
        where.append(f"{key} < ?")
        params.append(before)
    if after is not None:
        where.append(f"{key} > ?")
        params.append(after)
    sql = f"SELECT {columns.format(key=key)} FROM {source} WHERE {' AND '.join(where)} {tail.format(key=key)}"
    return sql, params


def page(conn: sqlite3.Connection, f: Filter | None = None, *, limit: int = 100, before: int | None = None,
         after: int | None = None, oldest_first: bool = False, now: dt.datetime | None = None,
         fts: bool = True) -> Page:
    """The newest `limit` events matching `f` with after < key < before (fts=False: free text without the index).

    oldest_first=True gives the oldest `limit` of them instead, oldest first (a page just above a known key, when
    scrolling up); then pass `next_before` back as `after` to continue.
    """
    fts = _use_fts(conn, f, now, fts)
    order = "ASC" if oldest_first else "DESC"
    sql, params = _statement(f, "{key} AS n, " + SELECT_EVENT, now, before, f"ORDER BY {{key}} {order} LIMIT ?",
                             fts, after=after)
    rows = conn.execute(sql, params + [limit]).fetchall()
    events = [row_to_event(r) for r in rows]
    keys = [r["n"] for r in rows]
    return Page(events, keys[-1] if rows and len(rows) == limit else None, keys)


# Below this many candidates from the other qualifiers, testing free text on those rows beats walking the FTS
# matches (bench/query.py: ~1.7 µs per scanned row against ~0.75 µs per FTS match, and a common word has 100k+).
_SCAN_LIMIT = 30_000


def _use_fts(conn: sqlite3.Connection, f: Filter | None, now: dt.datetime | None, fts: bool) -> bool:
    """Whether free text should be answered through the FTS index for this filter (the query plan's one choice
    SQLite cannot make: it does not know how many rows an FTS phrase matches). Scanning is chosen only for ASCII
    terms, where the scan's case folding and the trigram index's agree exactly."""
    if not fts or f is None or not any(t.key == filters_mod.TEXT for t in f.terms):
        return fts
    if not has_text_index(conn):
        return False
    text = f.values(filters_mod.TEXT)
    others = f.without(filters_mod.TEXT)
    if not text or others.is_empty or not all(v.isascii() for v in text):
        return True
    if all(t.key in filters_mod.TIME_KEYS for t in others.terms):
        return True
    return count(conn, others, now=now) > _SCAN_LIMIT


def count(conn: sqlite3.Connection, f: Filter | None = None, *, now: dt.datetime | None = None,
          fts: bool = True, after: int | None = None, before: int | None = None) -> int:
    """How many events match `f` (with after < key < before, when given)."""
    f = f or Filter()
    fts = _use_fts(conn, f, now, fts)
    sf = filters_mod.to_sql(f, now, fts=fts)
    if sf.match is not None and sf.where == "1" and after is None and before is None:
        return conn.execute("SELECT count(*) FROM events_fts WHERE events_fts MATCH ?", (sf.match,)).fetchone()[0]
    sql, params = _statement(f, "count(*)", now, before, "", fts, after=after)
    return conn.execute(sql, params).fetchone()[0]


def key_at(conn: sqlite3.Connection, f: Filter | None, offset: int, *, now: dt.datetime | None = None,
           before: int | None = None, total: int | None = None) -> int | None:
    """The key of the event at `offset` (0 = newest) among those matching `f` with key < before, or None past the
    end. Costs O(offset) index steps (~70 ms at 500,000 on 1M events); given `total` (their count), an offset in
    the older half is counted from the oldest end instead, so the last page of a million is as quick as the first.
    """
    if offset < 0:
        return None
    fts = _use_fts(conn, f, now, True)
    order, skip = "DESC", offset
    if total is not None:
        if offset >= total:
            return None
        if offset > total // 2:
            order, skip = "ASC", total - 1 - offset
    sql, params = _statement(f, "{key} AS n", now, before, f"ORDER BY {{key}} {order} LIMIT 1 OFFSET ?", fts)
    row = conn.execute(sql, params + [skip]).fetchone()
    return row[0] if row else None


def iter_rows(conn: sqlite3.Connection, f: Filter | None = None, *, now: dt.datetime | None = None,
              batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every matching event as a dict (details parsed), newest first, streamed in keyset batches of `batch`."""
    before = None
    fts = _use_fts(conn, f, now, True)
    while True:
        sql, params = _statement(f, "{key} AS n, " + SELECT_EVENT, now, before, "ORDER BY {key} DESC LIMIT ?",
                                 fts)
        rows = conn.execute(sql, params + [batch]).fetchall()
        for row in rows:
            yield row_dict(row)
        if len(rows) < batch:
            return
        before = rows[-1]["n"]


def events_after(conn: sqlite3.Connection, source: str, after: int, limit: int) -> list[dict[str, Any]]:
    """A chain's events with seq > after, in seq order (a feed page), as dicts with details parsed."""
    rows = conn.execute(
        f"SELECT {SELECT_EVENT} FROM events e WHERE e.source = ? AND e.source_seq > ? ORDER BY e.source_seq LIMIT ?",
        (source, after, limit),
    ).fetchall()
    return [row_dict(row) for row in rows]


def matching_after(conn: sqlite3.Connection, f: Filter, source: str, after: int, upto: int,
                   now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """A chain's events with after < seq <= upto that match `f`, in seq order, as dicts (with `n`): what an alert
    has not yet considered. Free text scans (the candidates are a chain's newest events)."""
    sf = filters_mod.to_sql(f, now, fts=False)
    rows = conn.execute(
        f"SELECT e.n AS n, {SELECT_EVENT} FROM events e WHERE e.source = ? AND e.source_seq > ? AND e.source_seq <= ? "
        f"AND {sf.where} ORDER BY e.source_seq",
        [source, after, upto, *sf.params],
    ).fetchall()
    return [{**row_dict(row), "n": row["n"]} for row in rows]


def get_event(conn: sqlite3.Connection, event_id: str) -> Event | None:
    row = conn.execute(f"SELECT {SELECT_EVENT} FROM events e WHERE e.id = ?", (event_id,)).fetchone()
    return row_to_event(row) if row else None


def session_event(conn: sqlite3.Connection, session_id: str, f: Filter | None = None, *,
                  now: dt.datetime | None = None) -> Event | None:
    """The newest event matching `f` that references recording `session_id` (None: no such event in scope)."""
    fts = _use_fts(conn, f, now, True)
    sql, params = _statement(f, "{key} AS n, " + SELECT_EVENT, now, None,
                             "AND e.session_id = ? ORDER BY {key} DESC LIMIT 1", fts)
    row = conn.execute(sql, params + [session_id]).fetchone()
    return row_to_event(row) if row else None


def value_counts(conn: sqlite3.Connection, key: str, f: Filter | None = None, *,
                 now: dt.datetime | None = None, limit: int = 200) -> list[tuple[str, int]]:
    """(value, count) of a qualifier's column within `f` (the key's own terms left out), most frequent first."""
    column = filters_mod.COLUMNS[key]
    scope = (f or Filter()).without(key)
    sql, params = _statement(scope, f"e.{column} AS value, count(*) AS c", now, None,
                             f"AND e.{column} IS NOT NULL GROUP BY e.{column} ORDER BY c DESC, value LIMIT ?")
    return [(r["value"], r["c"]) for r in conn.execute(sql, params + [limit]).fetchall()]
