"""asciicast v2: writing recordings (the gateway's sessions, the synthetic history) and reading them back.

A recording is a header line (JSON object: version 2, width, height, timestamp, command, …) followed by one JSON array
per event: [seconds since start, code, data] with code "o" (output), "i" (input) or "m" (marker).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Iterator

TRUNCATED_NOTE = "\r\n\x1b[0m[auditkit: recording truncated at {cap} bytes; the session went on]\r\n"


class Recorder:
    """Builds an asciicast v2 recording in memory, up to `cap` bytes (then a marker, and nothing more)."""

    def __init__(self, *, width: int, height: int, command: str | None = None, title: str | None = None,
                 record_input: bool = False, cap: int = 8 * 1024 * 1024, started: float | None = None,
                 clock: Any = time.monotonic, env: dict[str, str] | None = None):
        self.started_wall = started if started is not None else time.time()
        self._clock = clock
        self._t0 = clock()
        self.record_input = record_input
        self.cap = cap
        self.truncated = False
        self.width, self.height = int(width), int(height)
        header: dict[str, Any] = {"version": 2, "width": int(width), "height": int(height),
                                  "timestamp": int(self.started_wall)}
        if command:
            header["command"] = command
        if title:
            header["title"] = title
        header["env"] = env or {"TERM": "xterm-256color", "SHELL": "/bin/sh"}
        self._parts: list[str] = [json.dumps(header, ensure_ascii=False) + "\n"]
        self._size = len(self._parts[0].encode("utf-8"))

    @property
    def size(self) -> int:
        return self._size

    def elapsed(self) -> float:
        return self._clock() - self._t0

    def output(self, data: str, at: float | None = None) -> None:
        self._event("o", data, at)

    def input(self, data: str, at: float | None = None) -> None:
        if self.record_input:
            self._event("i", data, at)

    def marker(self, label: str, at: float | None = None) -> None:
        self._event("m", label, at)

    def _event(self, code: str, data: str, at: float | None) -> None:
        if self.truncated or not data and code != "m":
            return
        t = round(self.elapsed() if at is None else at, 6)
        line = json.dumps([t, code, data], ensure_ascii=False) + "\n"
        size = len(line.encode("utf-8"))
        if self._size + size > self.cap:
            self.truncated = True
            for extra in ([t, "o", TRUNCATED_NOTE.format(cap=self.cap)], [t, "m", "truncated"]):
                self._parts.append(json.dumps(extra, ensure_ascii=False) + "\n")
            return
        self._parts.append(line)
        self._size += size

    def getvalue(self) -> bytes:
        return "".join(self._parts).encode("utf-8")


@dataclasses.dataclass(frozen=True)
class Cast:
    header: dict[str, Any]
    events: list[tuple[float, str, str]]

    @property
    def width(self) -> int:
        return int(self.header.get("width", 80))

    @property
    def height(self) -> int:
        return int(self.header.get("height", 24))

    @property
    def duration(self) -> float:
        return self.events[-1][0] if self.events else 0.0

    def output_text(self) -> str:
        return "".join(data for _, code, data in self.events if code == "o")


class CastError(ValueError):
    pass


def parse(data: bytes | str) -> Cast:
    """Parse asciicast v2; CastError names the line that is not valid."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    lines = iter(enumerate(text.splitlines(), start=1))
    try:
        _, first = next(lines)
        header = json.loads(first)
    except (StopIteration, json.JSONDecodeError):
        raise CastError("line 1: not an asciicast v2 header") from None
    if not isinstance(header, dict) or header.get("version") != 2:
        raise CastError("line 1: not an asciicast v2 header (version must be 2)")
    events: list[tuple[float, str, str]] = []
    for number, line in lines:
        if not line.strip():
            continue
        try:
            t, code, payload = json.loads(line)
            events.append((float(t), str(code), str(payload)))
        except (ValueError, TypeError):
            raise CastError(f"line {number}: not an asciicast event") from None
    return Cast(header, events)


def header_size(data: bytes) -> tuple[int | None, int | None]:
    """(width, height) from a recording's header line alone; None for a value that is missing or not a positive
    integer (a mirror stores what the header says, never a guess)."""
    first = data.split(b"\n", 1)[0]
    try:
        header = json.loads(first)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(header, dict):
        return None, None
    size = [header.get("width"), header.get("height")]
    return tuple(v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None  # type: ignore[return-value]
                 for v in size)


def iter_output(cast: Cast) -> Iterator[tuple[float, str]]:
    for t, code, data in cast.events:
        if code == "o":
            yield t, data
