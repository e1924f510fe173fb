"""Hints for a filter that matches nothing: for each `user:`, `rack:`, `app:` or `target:` value that no event
has, the values of that column that are near it (`user:alice` → `user:alice@example.com`), so a mistake is shown
instead of an empty result without a word. Qualifiers match whole values; hints are how a prefix finds its value.

Distinct values are walked with one index seek each (`min(col) > ?`), never by scanning the table, and stop at
DISTINCT_LIMIT, so a hint costs the same on ten million events as on ten thousand.
"""

from __future__ import annotations

import dataclasses
import difflib
import sqlite3

from auditkit.model.filters import COLUMNS, Filter, Term

HINTED_KEYS: tuple[str, ...] = ("user", "rack", "app", "target")
DISTINCT_LIMIT = 2000  # distinct values looked at for close spellings (prefixes are found by an index range)
MAX_HINTS = 3


@dataclasses.dataclass(frozen=True)
class Hint:
    """A qualifier value no event has, and the values near it (maybe none)."""

    key: str
    value: str
    near: tuple[str, ...]

    def text(self) -> str:
        """One sentence: `no event has user:alice; did you mean user:alice@example.com?`."""
        if not self.near:
            return f"no event has {_term(self.key, self.value)}"
        means = " or ".join(_term(self.key, v) for v in self.near)
        return f"no event has {_term(self.key, self.value)}; did you mean {means}?"


def hints_for(conn: sqlite3.Connection, f: Filter) -> list[Hint]:
    """A Hint for every positive user:/rack:/app:/target: value of `f` that no event in the store has."""
    found = []
    for key in HINTED_KEYS:
        column = COLUMNS[key]
        for value in f.values(key):
            if conn.execute(f"SELECT 1 FROM events WHERE {column} = ? LIMIT 1", (value,)).fetchone():
                continue
            found.append(Hint(key, value, near_values(conn, column, value)))
    return found


def near_values(conn: sqlite3.Connection, column: str, value: str, limit: int = MAX_HINTS) -> tuple[str, ...]:
    """Values of `column` that start with `value` (any case), then those containing it, then close spellings."""
    near: list[str] = []
    for prefix in dict.fromkeys((value, value.lower())):
        rows = conn.execute(f"SELECT DISTINCT {column} FROM events WHERE {column} >= ? AND {column} < ? "
                            f"ORDER BY {column} LIMIT ?", (prefix, prefix + "\U0010ffff", limit))
        near += [r[0] for r in rows if r[0] not in near]
    if len(near) < limit:
        values = distinct_values(conn, column)
        folded = value.casefold()
        near += [v for v in values if folded in v.casefold() and v not in near]
        near += [v for v in difflib.get_close_matches(value, values, n=limit, cutoff=0.8) if v not in near]
    return tuple(near[:limit])


def distinct_values(conn: sqlite3.Connection, column: str, limit: int = DISTINCT_LIMIT) -> list[str]:
    """Up to `limit` distinct non-NULL values of an indexed column, in order, one index seek each."""
    values: list[str] = []
    row = conn.execute(f"SELECT min({column}) FROM events").fetchone()
    while row and row[0] is not None and len(values) < limit:
        values.append(row[0])
        row = conn.execute(f"SELECT min({column}) FROM events WHERE {column} > ?", (row[0],)).fetchone()
    return values



def _term(key: str, value: str) -> str:
    """`key:value` as the filter language writes it (quoted when it must be)."""
    return Filter((Term(key, value),)).to_text()
