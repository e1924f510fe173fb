"""Reading a recording: asciicast v2, plain or gzipped, into a Recording of frames and markers (asciicast "m"
events and Enter in recorded keystrokes). A recording that cannot be read is a RecordingError naming the line."""

from __future__ import annotations

import gzip
import math
import re
import zlib

from auditkit.errors import AuditkitError
from auditkit.model import asciicast
from auditkit.review.replay.markers import Marker
from auditkit.review.replay.recording import Frame, Recording

MAX_SIZE = 2000  # columns or lines; anything bigger is not a terminal


class RecordingError(AuditkitError, ValueError):
    """A recording that cannot be read (not asciicast v2, corrupt gzip, bad event); the message names the line."""


_RESIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


def _line_of_event(text: str, index: int) -> int:
    """The line number of the index-th event (0-based) of an asciicast text, blank lines skipped as parse does."""
    seen = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if number == 1 or not line.strip():
            continue
        seen += 1
        if seen == index:
            return number
    return 0


def _size(header: dict, key: str) -> int:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SIZE:
        raise RecordingError(f"line 1: the header's {key} must be a whole number from 1 to {MAX_SIZE}, not {value!r}")
    return value


def load(data: bytes) -> Recording:
    """Read an asciicast v2 recording, plain or gzipped. RecordingError names the line that is wrong."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RecordingError("a recording is bytes")
    data = bytes(data)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise RecordingError(f"not a readable gzip file: {e}") from None
    if not data.strip():
        raise RecordingError("line 1: empty, not an asciicast v2 recording")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise RecordingError(f"line {line}: not UTF-8 text (byte {e.start})") from None
    try:
        cast = asciicast.parse(text)
    except asciicast.CastError as e:
        raise RecordingError(str(e)) from None
    width, height = _size(cast.header, "width"), _size(cast.header, "height")
    frames: list[Frame] = []
    markers: list[Marker] = []
    typed: list[str] = []  # keystrokes since the last Enter, when input was recorded
    last = 0.0
    for i, (t, code, payload) in enumerate(cast.events):
        if not math.isfinite(t) or t < 0:
            raise RecordingError(f"line {_line_of_event(text, i)}: the event's time must be a number of seconds "
                                 f"from 0, not {t!r}")
        last = t = max(t, last)  # a recorder's clock may step back by a hair; keep the timeline ordered
        if code == "o":
            frames.append(Frame(t, "o", payload))
        elif code == "r":
            m = _RESIZE.match(payload)
            if not m or not (0 < int(m[1]) <= MAX_SIZE and 0 < int(m[2]) <= MAX_SIZE):
                raise RecordingError(f"line {_line_of_event(text, i)}: a resize event needs COLSxROWS, "
                                     f"not {payload!r}")
            frames.append(Frame(t, "r", f"{int(m[1])}x{int(m[2])}"))
        elif code == "m":
            markers.append(Marker(t, payload or "marker", "marker"))
        elif code == "i":
            if payload.startswith("\x1b"):
                continue  # an arrow or function key
            for ch in payload:
                if ch in "\r\n":
                    markers.append(Marker(t, "".join(typed).strip() or "Enter", "input"))
                    typed.clear()
                elif ch in "\x7f\b":
                    del typed[-1:]
                elif ch.isprintable():
                    typed.append(ch)
    return Recording(cast.header, width, height, frames, markers, last)
