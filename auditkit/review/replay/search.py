"""Search over the text as it appeared on screen: every version of every screen line the indexing pass saw (the
TextIndex), and the search that finds a query in them, reporting text that stays in place across redraws once."""

from __future__ import annotations

import bisect
import re
from array import array
from typing import TYPE_CHECKING, NamedTuple

from pyte.screens import wcwidth

if TYPE_CHECKING:
    from auditkit.review.replay.recording import Recording


class Match(NamedTuple):
    """Where searched text was on screen: at `time` (after `position` frames), on screen row `line`, cell `col`.
    `visible` is False for text that scrolled off (or was drawn over) within the frame that wrote it: it is in the
    recording's output, but no frame boundary shows it; `position` is then that frame and `line` where it was."""

    time: float
    line: int
    col: int
    length: int
    position: int
    visible: bool = True


class TextIndex:
    """Every version of every screen line that was visible: (position, row, text), plus the version it replaced on
    the same row (`prev`, -1 when none) so that search can report text that stays put once, not once per redraw.
    Texts are kept joined in chunks (one string per CHUNK versions) to keep memory near the size of the text."""

    CHUNK = 4096

    def __init__(self) -> None:
        self.positions = array("l")
        self.rows = array("l")
        self.prevs = array("l")
        self.visible = array("b")
        self.starts = array("q")  # offset of each version's text in its chunk
        self.chunks: list[str] = []
        self._pending: list[str] = []
        self._offset = 0

    def __len__(self) -> int:
        return len(self.positions)

    def add(self, position: int, row: int, text: str, prev: int, visible: bool = True) -> int:
        self.positions.append(position)
        self.rows.append(row)
        self.prevs.append(prev)
        self.visible.append(visible)
        self.starts.append(self._offset)
        self._pending.append(text)
        self._offset += len(text) + 1
        if len(self._pending) >= self.CHUNK:
            self._flush()
        return len(self.positions) - 1

    def _flush(self) -> None:
        if self._pending:
            self.chunks.append("\n".join(self._pending) + "\n")
            self._pending = []
            self._offset = 0

    def seal(self) -> None:
        self._flush()

    def text(self, version: int) -> str:
        chunk = self.chunks[version // self.CHUNK]
        start = self.starts[version]
        return chunk[start:chunk.index("\n", start)]


def search(recording: Recording, text: str) -> list[Match]:
    """Where `text` appeared on screen, over the whole recording, in time order. Smart case: a query with a capital
    letter matches case exactly, otherwise case is ignored. Text that stays in place across redraws (a progress bar,
    a full-screen program) is reported once per place, not once per redraw. Builds the index first if needed."""
    query = text.replace("\n", " ").replace("\r", " ")
    if not query.strip():
        return []
    recording.build_index()
    versions = recording.versions
    assert versions is not None
    flags = 0 if any(c.isupper() for c in query) else re.IGNORECASE
    pattern = re.compile(re.escape(query), flags)
    matches: list[tuple[int, int, int, int]] = []
    chunk_size = TextIndex.CHUNK
    for c, chunk in enumerate(versions.chunks):
        base = c * chunk_size
        starts = versions.starts[base:base + chunk_size]
        for m in pattern.finditer(chunk):
            v = base + bisect.bisect_right(starts, m.start()) - 1
            offset = m.start() - versions.starts[v]
            prev = versions.prevs[v]
            if prev >= 0:
                before = versions.text(prev)
                if pattern.fullmatch(before, offset, offset + len(query)):
                    continue
            line = versions.text(v)
            col = offset if line.isascii() else _cells(line[:offset])
            matches.append((versions.positions[v], versions.rows[v], col, v))
    matches.sort()
    return [Match(recording.time_of(p), row, col, _cells(query), p, bool(versions.visible[v]))
            for p, row, col, v in matches]


def _cells(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(max(wcwidth(ch), 0) for ch in text)

