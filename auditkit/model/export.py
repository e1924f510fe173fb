"""The exported forms of events (CSV, JSON array, JSON lines) as text chunks, shared by `auditkit events` and the
share links' downloads, so both give byte-identical files for the same events."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable, Iterable, Iterator, TextIO

from auditkit.model.events import FIELDS


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _csv_line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def csv_chunks(rows: Iterable[dict[str, Any]], batch: int = 500) -> Iterator[str]:
    """A header line, then the rows (details as canonical-order JSON), `batch` rows per chunk."""
    yield _csv_line(FIELDS)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    n = 0
    for row in rows:
        writer.writerow([json.dumps(row[f], ensure_ascii=False, sort_keys=True) if f == "details" else
                         ("" if row[f] is None else row[f]) for f in FIELDS])
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
