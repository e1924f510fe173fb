"""What a replay shows: a Snapshot of the terminal's screen after some frames, as runs of text with the Attrs they
are drawn in (pyte's colour names and flags), exactly as wide as the screen. No Textual here: the TUI draws these."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, NamedTuple

from pyte.screens import Char, wcwidth

if TYPE_CHECKING:
    from auditkit.review.replay.terminal import Terminal


class Attrs(NamedTuple):
    """How a run of cells looks, in pyte's terms: colour names ("default", "red", "brown" for yellow, "brightred"…)
    or "rrggbb" hex, and flags."""

    fg: str = "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    strikethrough: bool = False
    reverse: bool = False
    blink: bool = False


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The screen after `position` frames: per line, runs of (text, Attrs) covering exactly `width` cells."""

    width: int
    height: int
    lines: tuple[tuple[tuple[str, Attrs], ...], ...]
    cursor: tuple[int, int] | None  # (x, y); None when the program hid it
    position: int
    time: float
    alternate: bool = False

    def text(self) -> list[str]:
        """The screen as plain lines, trailing blanks removed."""
        return ["".join(t for t, _ in line).rstrip() for line in self.lines]


def take(terminal: Terminal, position: int = 0, time: float = 0.0) -> Snapshot:
    """The terminal's screen as it is now, recorded as `position` frames in, at `time`."""
    columns = terminal.columns
    rows = []
    for y in range(terminal.lines):
        line = terminal.buffer.get(y)
        if not line:
            default = line.default if line is not None else terminal.default_char
            rows.append(((" " * columns, _attrs(default)),))
            continue
        default = line.default
        cells = [line.get(x, default) for x in range(columns)]
        if not all(c[0] and c[0].isascii() for c in cells):
            cells = _whole_characters(cells)
        runs = []
        start = 0
        style = cells[0][1:]
        for x in range(1, columns):
            s = cells[x][1:]
            if s != style:
                runs.append(("".join([c[0] for c in cells[start:x]]), _attrs(cells[start])))
                start, style = x, s
        runs.append(("".join([c[0] for c in cells[start:]]), _attrs(cells[start])))
        rows.append(tuple(runs))
    cursor = None
    if not terminal.cursor.hidden:
        cursor = (min(terminal.cursor.x, columns - 1), terminal.cursor.y)
    return Snapshot(columns, terminal.lines, tuple(rows), cursor, position, time, terminal.alternate is not None)


_ATTRS: dict[tuple, Attrs] = {}


def _attrs(cell: Char) -> Attrs:
    key = cell[1:]
    found = _ATTRS.get(key)
    if found is None:
        if len(_ATTRS) > 65536:
            _ATTRS.clear()
        found = _ATTRS[key] = Attrs(*key)
    return found


def _whole_characters(cells: list[Char]) -> list[Char]:
    """Cells where every wide character is followed by its right half and every right half follows one (a blank
    in place of a half left alone), so that each row is exactly as wide as the screen when drawn."""
    out = list(cells)
    for x, cell in enumerate(cells):
        if cell[0] == "":
            if not (x and cells[x - 1][0] and wcwidth(cells[x - 1][0][0]) == 2):
                out[x] = cell._replace(data=" ")
        elif not cell[0].isascii() and wcwidth(cell[0][0]) == 2:
            if x + 1 >= len(cells) or cells[x + 1][0] != "":
                out[x] = cell._replace(data=" ")
    return out
