"""The indexing pass: the whole recording fed once, at load or in a thread, keeping what makes the rest fast.

Keyframes: a packed copy of the terminal's state every KEYFRAME_BYTES of output or KEYFRAME_SECONDS of time, taken at
a frame boundary where the escape-sequence parser is idle, so that a seek restores the nearest one and feeds only the
frames after it. The same pass records every version of every screen line (the text search reads) and the prompts
followed by a typed command (command markers).
"""

from __future__ import annotations

import bisect
import re
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from auditkit.review.replay.markers import Marker
from auditkit.review.replay.search import TextIndex
from auditkit.review.replay.stream import TerminalStream
from auditkit.review.replay.terminal import Terminal

if TYPE_CHECKING:
    from auditkit.review.replay.recording import Recording

# A keyframe every this many characters of output or seconds of recording (whichever comes first); bench/replay.py
# measures the seeks and the memory they give.
KEYFRAME_BYTES = 32 * 1024
KEYFRAME_SECONDS = 30.0

_PROMPT = re.compile(r"(?:\S.*)?[$#%>❯»:] $")


class Keyframe(NamedTuple):
    position: int  # frames applied
    time: float
    state: Any  # Terminal.pack()'s tuple; or, from the cache, a function that makes it (called on first use)


_position = attrgetter("position")


def keyframe_before(keyframes: list[Keyframe], position: int) -> Keyframe | None:
    """The last of `keyframes` (in position order) at or before `position`, its state unpacked."""
    i = bisect.bisect_right(keyframes, position, key=_position)
    if not i:
        return None
    keyframe = keyframes[i - 1]
    if callable(keyframe.state):  # a cached keyframe, made into a state when first needed
        keyframe = keyframes[i - 1] = keyframe._replace(state=keyframe.state())
    return keyframe


def build(recording: Recording, progress: Callable[[float], None] | None = None,
          cancelled: Callable[[], bool] | None = None) -> tuple[TextIndex, list[Marker]] | None:
    """Feed the whole recording once, adding keyframes past the last one it has to `recording.keyframes`. Returns
    the text versions and the command markers found, or None when `cancelled()` stopped it."""
    term = IndexingTerminal(recording.width, recording.height)
    stream = TerminalStream(term)
    keyframes = recording.keyframes
    intern: dict = {}
    since_chars, since_time = 0, 0.0
    total = max(recording.output_size, 1)
    done = 0
    have = keyframes[-1].position if keyframes else 0
    next_report = 0
    for i, frame in enumerate(recording.frames):
        term.position = i + 1
        term.now = frame.time
        if frame.kind == "o":
            stream.feed(frame.data)
            since_chars += len(frame.data)
            done += len(frame.data)
        else:
            cols, rows = map(int, frame.data.split("x"))
            term.resize(rows, cols)
        term.frame_done()
        if (since_chars >= KEYFRAME_BYTES or frame.time - since_time >= KEYFRAME_SECONDS) and stream.idle:
            if i + 1 > have:
                keyframes.append(Keyframe(i + 1, frame.time, term.pack(intern)))
            since_chars, since_time = 0, frame.time
        if done >= next_report:
            next_report = done + 256 * 1024
            if progress:
                progress(done / total)
            if cancelled and cancelled():
                return None
    term.finish()
    term.versions.seal()
    return term.versions, term.markers


class IndexingTerminal(Terminal):
    """The terminal of the indexing pass. Tracks, per row, the text shown at the last frame boundary and since when;
    rows that scroll or move take their tracking with them, so scrolling does not make every row look new. Arms on
    a prompt (text ending in `$ `, `# `, `> `, `% `, `: ` … with the cursor after it) to catch the command typed
    next."""

    def __init__(self, columns: int, lines: int):
        self.position = 0
        self.now = 0.0
        self.versions = TextIndex()
        self.markers: list[Marker] = []
        self._armed: tuple[int, int] | None = None  # (row, column after the prompt)
        self._typed: list[str] = []  # parts of a command that wrapped onto further rows
        super().__init__(columns, lines)
        self._track_reset()

    def _track_reset(self) -> None:
        self.rows_text = [""] * self.lines
        self.rows_since = [self.position] * self.lines
        self.rows_last = [-1] * self.lines
        self.rows_origin = list(range(self.lines))  # the row each current version was on when it became visible
        self.dirty.clear()
        self._armed = None

    def _emit(self, row: int, position: int, text: str, origin: int | None = None, visible: bool = True) -> None:
        if text.strip():
            origin = row if origin is None else origin
            self.rows_last[row] = self.versions.add(position, origin, text, self.rows_last[row], visible)

    def _close_row(self, row: int) -> None:
        """The row's text leaves the screen: keep its last version, and text drawn over it during this frame."""
        old = self.rows_text[row]
        self._emit(row, self.rows_since[row], old, self.rows_origin[row])
        if row in self.dirty:
            text = self.line_text(row)
            if text != old:  # drawn during this frame and gone before its end: never shown at a frame boundary
                self._emit(row, self.position, text, visible=False)

    def frame_done(self) -> None:
        """At a frame boundary: close the versions of rows whose text changed, start the new ones, look for a
        prompt."""
        rows_text = self.rows_text
        for row in self.dirty:
            if row >= self.lines:
                continue
            text = self.line_text(row)
            old = rows_text[row]
            if text == old:
                continue
            if old and not text.startswith(old):
                self._emit(row, self.rows_since[row], old, self.rows_origin[row])
            rows_text[row] = text
            self.rows_since[row] = self.position
            self.rows_origin[row] = row
        y, x = self.cursor.y, self.cursor.x
        if self._armed is not None and self._armed[0] != y:
            self._armed = None
        if self._armed is None and self.alternate is None and y in self.dirty and x > 1:
            line = rows_text[y]
            if len(line) <= x and line.isascii() and _PROMPT.match(line.ljust(x)):
                self._armed = (y, x)
                self._typed = []
        self.dirty.clear()

    def finish(self) -> None:
        self.frame_done()
        for row in range(self.lines):
            self._close_row(row)

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        for row in range(self.lines):
            self._close_row(row)
        self._track_reset()  # the rows are closed; pyte's resize may delete lines, which must not close them again
        super().resize(lines, columns)
        self._track_reset()
        for row in range(self.lines):
            self.rows_text[row] = self.line_text(row)

    def rows_moving(self, top: int, bottom: int, n: int) -> None:
        span = bottom - top + 1
        for row in (range(top, top + n) if n > 0 else range(bottom + n + 1, bottom + 1)):
            self._close_row(row)
        for values, blank in ((self.rows_text, ""), (self.rows_since, self.position), (self.rows_last, -1),
                              (self.rows_origin, 0)):
            part = values[top:bottom + 1]
            values[top:bottom + 1] = part[n:] + [blank] * n if n > 0 else [blank] * -n + part[:span + n]
        for row in (range(bottom - n + 1, bottom + 1) if n > 0 else range(top, top - n)):
            self.rows_origin[row] = row

        def moved(y: int) -> int | None:
            if not top <= y <= bottom:
                return y
            y -= n
            return y if top <= y <= bottom else None

        self.dirty = {m for m in map(moved, self.dirty) if m is not None}
        if self._armed is not None:
            row = moved(self._armed[0])
            self._armed = None if row is None else (row, self._armed[1])

    def autowrap(self) -> None:
        armed = self._armed
        if armed is not None and armed[0] == self.cursor.y:
            self._typed.append(self.line_text(armed[0])[armed[1]:])
            self.carriage_return()
            self.index()
            self._armed = (self.cursor.y, 0)
        else:
            super().autowrap()

    def linefeed(self) -> None:
        armed = self._armed
        if armed is not None and armed[0] == self.cursor.y:
            command = ("".join(self._typed) + self.line_text(armed[0])[armed[1]:]).strip()
            if command and not command.endswith("^C"):
                self.markers.append(Marker(self.now, command, "command"))
        self._armed = None
        super().linefeed()

    def before_screen_switch(self) -> None:
        for row in range(self.lines):
            self._close_row(row)
        self._track_reset()

    def after_screen_switch(self) -> None:
        for row in range(self.lines):
            self.rows_text[row] = self.line_text(row)

