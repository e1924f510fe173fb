"""Points worth jumping to in a recording: the Marker, the merge of the recording's own markers with the command
boundaries the indexing pass found, and a session's gateway events as markers."""

from __future__ import annotations

import bisect
from typing import Iterable, NamedTuple


class Marker(NamedTuple):
    """A point worth jumping to. kind: "command" (a prompt followed by a typed command, found in the output),
    "input" (Enter in recorded keystrokes), "marker" (an asciicast "m" event) or "event" (a gateway event)."""

    time: float
    label: str
    kind: str


def merge(given: list[Marker], found: list[Marker]) -> list[Marker]:
    """asciicast markers and command boundaries; an Enter keystroke is kept only where no command was found
    within a second of it (the same boundary seen from the keyboard)."""
    commands = sorted(m.time for m in found)
    out = list(found)
    for m in given:
        if m.kind == "input":
            i = bisect.bisect_left(commands, m.time - 1.0)
            if i < len(commands) and commands[i] <= m.time + 1.0:
                continue
        out.append(m)
    return sorted(out)


def events_as_markers(events: Iterable[tuple[float, str]]) -> list[Marker]:
    return sorted(Marker(max(float(t), 0.0), label, "event") for t, label in events)
