"""Replaying asciicast v2 recordings: reading them (plain or gzip), the terminal they drew (pyte, made faithful to
what tmux shows), keyframes so that a seek anywhere stays fast, markers at command boundaries, search over the text
as it appeared on screen, and the idle-compressed timeline. No Textual here: the TUI draws the Snapshots made here.

How a seek works: `build_index` feeds the whole recording once through an indexing terminal and keeps a packed copy
of the terminal's state (a keyframe) every KEYFRAME_BYTES of output or KEYFRAME_SECONDS of time, at a frame boundary
where the escape-sequence parser is idle. A Player restores the nearest keyframe at or before the target and feeds the
frames after it; moving forward a little it just keeps feeding. The same pass records every version of every screen
line (for search) and the prompts followed by a typed command (for markers).

pyte is extended in three ways: the alternate screen (DEC private modes 47, 1047 and 1049, as tmux does them), a fast
path for plain ASCII text and for complete CSI sequences (pyte's own parser takes one character at a time, 5x
slower), and tmux's behaviour wherever pyte's differs, checked against tmux by tests/test_replay_tmux.py (real
programs) and scripts/replay_fidelity.py (random sequences): erasing, scrolling and inserting use the background colour
only; the cursor at the wrap position, above or below the scroll region, after DECRC; IL/DL outside the region; wide
characters overwritten by halves; `CSI 3 J` leaves the screen alone; DECCOLM clears without resizing; REP, SU/SD,
CSI s/u, NEL and DEC line drawing work; unknown private or intermediate sequences are ignored rather than misread.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import gzip
import math
import re
import threading
import unicodedata
import zlib
from array import array
from collections import defaultdict
from itertools import accumulate, repeat
from operator import itemgetter
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import pyte
from pyte import charsets, modes as mo
from pyte.screens import Char, Cursor, Margins, Savepoint, StaticDefaultDict, wcwidth

from auditkit.model import asciicast
from auditkit.errors import AuditkitError, ChainError

# A keyframe every this many characters of output or seconds of recording (whichever comes first). Measured with
# bench/replay.py on a 20 MiB recording: seeks anywhere p95 6 ms (without keyframes: seconds), index +10 MiB.
KEYFRAME_BYTES = 32 * 1024
KEYFRAME_SECONDS = 30.0
IDLE_LIMIT = 2.0
MAX_SIZE = 2000  # columns or lines; anything bigger is not a terminal

BLANK = Char(" ")
_data = itemgetter(0)


class RecordingError(AuditkitError, ValueError):
    """A recording that cannot be read (not asciicast v2, corrupt gzip, bad event); the message names the line."""


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



class Frame(NamedTuple):
    """One thing that changes the screen: output ("o", data is text) or a resize ("r", data is "COLSxROWS")."""

    time: float
    kind: str
    data: str


class Marker(NamedTuple):
    """A point worth jumping to. kind: "command" (a prompt followed by a typed command, found in the output),
    "input" (Enter in recorded keystrokes), "marker" (an asciicast "m" event) or "event" (a gateway event)."""

    time: float
    label: str
    kind: str


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


class Keyframe(NamedTuple):
    position: int  # frames applied
    time: float
    state: tuple


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


# --- the terminal ---------------------------------------------------------------------------------------------------

class _Chars(dict):
    """Interned Chars of one style: chars[c] is the cell showing c in that style (built once)."""

    __slots__ = ("style",)

    def __init__(self, style: Char):
        super().__init__()
        self.style = style

    def __missing__(self, data: str) -> Char:
        ch = self[data] = self.style._replace(data=data)
        return ch


ANSI_NAMES = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")  # pyte's names for SGR 30-37


def _named_256(attrs: Sequence[int]) -> list[int]:
    """SGR parameters with 256-colour indexes 0-15 (`38;5;1`) as the named colours (`31`), which pyte would spell
    as hex; with names, a theme's palette applies to them as it does to `31`."""
    out: list[int] = []
    i = 0
    while i < len(attrs):
        a = attrs[i]
        if a in (38, 48) and i + 2 < len(attrs) and attrs[i + 1] == 5 and attrs[i + 2] < 16:
            n = attrs[i + 2]
            out.append((a - 8 if n < 8 else a + 52) + n % 8)
            i += 3
        elif a in (38, 48) and i + 1 < len(attrs) and attrs[i + 1] in (2, 5):
            width = 5 if attrs[i + 1] == 2 else 3
            out.extend(attrs[i:i + width])
            i += width
        else:
            out.append(a)
            i += 1
    return out


_LATIN1 = charsets.LAT1_MAP
_ALT_MODES = {47 << 5, 1047 << 5, 1049 << 5}
_DECCOLM = 3 << 5


class Terminal(pyte.Screen):
    """pyte.Screen with the alternate screen, a fast path for ASCII text, tmux's erase rules, and packable state."""

    def __init__(self, columns: int, lines: int):
        self._styles: dict[Char, _Chars] = {}
        self._sgr: dict[tuple, Char] = {}  # (style, SGR parameters, reverse screen) -> the style they make
        self.alternate: Any = None  # in the alternate screen: the main screen's buffer
        self.alt_cursor: Cursor | None = None  # the cursor saved by 1049h
        self._last = ""  # the last character drawn (for CSI b)
        super().__init__(columns, lines)

    # -- text --------------------------------------------------------------------------------------------------------

    def _chars(self, style: Char) -> _Chars:
        chars = self._styles.get(style)
        if chars is None:
            if len(self._styles) > 4096:  # truecolour art can make many styles; keep the cache bounded
                self._styles.clear()
            chars = self._styles[style] = _Chars(style)
        return chars

    def draw(self, data: str) -> None:
        charset = self.g1_charset if self.charset else self.g0_charset
        if charset is not _LATIN1:  # DEC line drawing (ESC ( 0): lqk is ┌─┐
            data = data.translate(charset)
        if mo.IRM in self.mode or not data.isascii() or not data.isprintable():
            self._draw_slow(data)
            return
        self._last = data[-1]
        cursor, columns, buffer = self.cursor, self.columns, self.buffer
        make = self._chars(cursor.attrs).__getitem__
        i, n = 0, len(data)
        while i < n:
            if cursor.x >= columns:
                if mo.DECAWM in self.mode:
                    self.dirty.add(cursor.y)
                    self._wrap()
                else:  # every further character lands on the last column, where the cursor stays (tmux)
                    buffer[cursor.y][columns - 1] = make(data[-1])
                    cursor.x = columns - 1
                    break
            x = cursor.x
            k = min(n - i, columns - x)
            line = buffer[cursor.y]
            if x and line.get(x, BLANK)[0] == "":  # over the right half of a wide character: its left half goes
                line[x - 1] = BLANK
            if line.get(x + k, BLANK)[0] == "":  # over a wide character's left half: its right half goes
                line[x + k] = BLANK
            line.update(zip(range(x, x + k), map(make, data[i:i + k])))
            cursor.x = x + k
            i += k
        if cursor.x >= columns and mo.DECAWM not in self.mode:
            cursor.x = columns - 1
        self.dirty.add(cursor.y)

    def _wrap(self) -> None:
        """Autowrap: like a linefeed, but a subclass can tell a wrapped line from a new one."""
        self.carriage_return()
        self.index()

    def _draw_slow(self, data: str) -> None:
        """pyte's draw, except as tmux does: unprintable characters are skipped (pyte stopped drawing the rest of the
        text), a wide character that does not fit on the line wraps first (or is dropped without autowrap), and
        overwriting half of a wide character blanks its other half."""
        cursor = self.cursor
        make = self._chars(cursor.attrs).__getitem__
        for char in data:
            width = wcwidth(char)
            if width < 0:
                continue
            if cursor.x >= self.columns or (width == 2 and cursor.x == self.columns - 1):
                if mo.DECAWM in self.mode:
                    self.dirty.add(cursor.y)
                    self._wrap()
                elif width == 2:
                    continue  # without autowrap, a wide character that does not fit is dropped (tmux)
                elif width == 1:
                    cursor.x = self.columns - 1
            if mo.IRM in self.mode and width > 0:
                self.insert_characters(width)
            line = self.buffer[cursor.y]
            if width:
                self._last = char
                x = cursor.x  # overwriting half of a wide character blanks its other half (tmux)
                if x and line.get(x, BLANK)[0] == "":
                    line[x - 1] = BLANK
                if line.get(x + width, BLANK)[0] == "":
                    line[x + width] = BLANK
            if width == 1:
                line[cursor.x] = make(char)
            elif width == 2:
                line[cursor.x] = make(char)
                if cursor.x + 1 < self.columns:
                    line[cursor.x + 1] = make("")
            elif unicodedata.combining(char):
                if cursor.x:
                    last = line[cursor.x - 1]
                    line[cursor.x - 1] = last._replace(data=unicodedata.normalize("NFC", last.data + char))
                elif cursor.y:
                    above = self.buffer[cursor.y - 1]
                    last = above[self.columns - 1]
                    above[self.columns - 1] = last._replace(data=unicodedata.normalize("NFC", last.data + char))
                continue
            else:
                continue
            cursor.x = min(cursor.x + width, self.columns)
            if cursor.x >= self.columns and mo.DECAWM not in self.mode:
                cursor.x = self.columns - 1
        self.dirty.add(cursor.y)

    def set_margins(self, top: int | None = None, bottom: int | None = None) -> None:
        """DECSTBM; resetting the margins homes the cursor too (tmux, xterm; pyte left it)."""
        super().set_margins(top, bottom)
        if not top and bottom is None:
            self.cursor_position()

    def tab(self) -> None:
        """HT; at the wrap position it does nothing, so the next character still wraps (tmux)."""
        if self.cursor.x < self.columns:
            super().tab()

    def cursor_up(self, count: int | None = None) -> None:
        """CUU stops at the top margin only from inside the scroll region (pyte also pulled a cursor above the
        region down into it)."""
        top = self.margins.top if self.margins and self.cursor.y >= self.margins.top else 0
        self.cursor.y = max(self.cursor.y - (count or 1), top)
        self.cursor.x = min(self.cursor.x, self.columns - 1)  # off the wrap position

    def cursor_down(self, count: int | None = None) -> None:
        """CUD stops at the bottom margin only from inside the scroll region."""
        bottom = self.lines - 1
        if self.margins and self.cursor.y <= self.margins.bottom:
            bottom = self.margins.bottom
        self.cursor.y = min(self.cursor.y + (count or 1), bottom)
        self.cursor.x = min(self.cursor.x, self.columns - 1)  # off the wrap position

    def cursor_back(self, count: int | None = None) -> None:
        """CUB (and backspace) count from the wrap position as from one column past the last (tmux)."""
        self.cursor.x = max(min(self.cursor.x, self.columns) - (count or 1), 0)

    def save_cursor(self) -> None:
        """DECSC: one saved state, replaced by the next save (tmux, xterm; pyte kept a stack)."""
        super().save_cursor()
        del self.savepoints[:-1]

    def restore_cursor(self) -> None:
        """DECRC puts the cursor back where it was, inside the margins or not (pyte clamped it into them), and keeps
        the saved state for the next DECRC (pyte forgot it)."""
        if not self.savepoints:  # nothing saved: home, default attributes (tmux)
            self.mode.discard(mo.DECOM)
            self.cursor.attrs = self.default_char
            self.cursor_position()
            return
        savepoint = self.savepoints[-1]
        self.g0_charset, self.g1_charset, self.charset = savepoint.g0_charset, savepoint.g1_charset, savepoint.charset
        self.mode.discard(mo.DECOM)  # origin mode comes back with the cursor; autowrap does not (tmux)
        if savepoint.origin:
            self.mode.add(mo.DECOM)
        self.cursor = _copy_cursor(savepoint.cursor)
        self.ensure_hbounds()
        self.ensure_vbounds()

    def insert_characters(self, count: int | None = None) -> None:
        """ICH; the blanks inserted have the background colour (tmux)."""
        self.dirty.add(self.cursor.y)
        x, columns = self.cursor.x, self.columns
        if x >= columns:
            return
        count = min(count or 1, columns - x)
        line = self.buffer[self.cursor.y]
        default = line.default
        moved = [line.get(col, default) for col in range(x, columns - count)]
        line.update(zip(range(x + count, columns), moved))
        line.update(dict.fromkeys(range(x, x + count), self._blank()))

    def delete_characters(self, count: int | None = None) -> None:
        """DCH; the blanks coming in from the right have the background colour (tmux)."""
        self.dirty.add(self.cursor.y)
        x, columns = self.cursor.x, self.columns
        if x >= columns:
            return
        count = min(count or 1, columns - x)
        line = self.buffer[self.cursor.y]
        default = line.default
        moved = [line.get(col, default) for col in range(x + count, columns)]
        line.update(zip(range(x, columns - count), moved))
        line.update(dict.fromkeys(range(columns - count, columns), self._blank()))

    # -- sequences pyte lacks (tmux has them) ----------------------------------------------------------------------

    def repeat_last(self, count: int | None = None) -> None:
        """CSI b (REP): the last character drawn, again `count` times (ncurses uses it for runs)."""
        if self._last:
            self.draw(self._last * min(count or 1, self.columns * self.lines))

    def next_line(self) -> None:
        """ESC E (NEL): carriage return and line feed (pyte did only the line feed)."""
        self.carriage_return()
        self.linefeed()

    def save_cursor_csi(self, *_: int) -> None:
        """CSI s (SCOSC)."""
        self.save_cursor()

    def restore_cursor_csi(self, *_: int) -> None:
        """CSI u (SCORC)."""
        self.restore_cursor()

    def tab_backward(self, count: int | None = None) -> None:
        """CSI Z (CBT)."""
        for _ in range(min(count or 1, self.columns)):
            stops = [stop for stop in self.tabstops if stop < self.cursor.x]
            self.cursor.x = max(stops) if stops else 0

    # -- tmux's rules where pyte differs ---------------------------------------------------------------------------

    def _blank(self) -> Char:
        """An erased cell: blank with the current background only (tmux's background colour erase)."""
        bg = self.cursor.attrs.bg
        reverse = mo.DECSCNM in self.mode
        if bg == "default" and not reverse:
            return BLANK
        return Char(" ", bg=bg, reverse=reverse)

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        self.dirty.add(self.cursor.y)
        x = self.cursor.x  # at the wrap position (x == columns) tmux erases nothing to the right
        interval = {0: range(x, self.columns), 1: range(x + 1), 2: range(self.columns)}.get(how)
        if interval is None:
            return
        blank = self._blank()
        line = self.buffer[self.cursor.y]
        if blank is BLANK and how != 1:
            for col in [c for c in line if c >= interval.start]:
                del line[col]
        else:
            line.update(dict.fromkeys(interval, blank))

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how == 0:
            interval = range(self.cursor.y + 1, self.lines)
        elif how == 1:
            interval = range(self.cursor.y)
        elif how == 2:
            interval = range(self.lines)
        else:  # 3 clears the scrollback only, which a replay does not have
            return
        self.dirty.update(interval)
        blank = self._blank()
        for y in interval:
            if blank is BLANK:
                self.buffer.pop(y, None)
            else:
                self.buffer[y] = line = StaticDefaultDict(self.default_char)
                line.update(dict.fromkeys(range(self.columns), blank))
        if how in (0, 1):
            self.erase_in_line(how)

    def erase_characters(self, count: int | None = None) -> None:
        self.dirty.add(self.cursor.y)
        x = self.cursor.x
        line = self.buffer[self.cursor.y]
        line.update(dict.fromkeys(range(x, min(x + (count or 1), self.columns)), self._blank()))

    def select_graphic_rendition(self, *attrs: int, private: bool = False) -> None:
        if private:
            return
        key = (self.cursor.attrs, attrs, mo.DECSCNM in self.mode)
        found = self._sgr.get(key)
        if found is None:
            super().select_graphic_rendition(*_named_256(attrs))
            if self.cursor.attrs.bg == "bfightmagenta":  # pyte's spelling of SGR 105
                self.cursor.attrs = self.cursor.attrs._replace(bg="brightmagenta")
            if len(self._sgr) > 8192:
                self._sgr.clear()
            found = self._sgr[key] = self.cursor.attrs
        self.cursor.attrs = found

    # -- rows that move (scrolling, inserted and deleted lines) -------------------------------------------------------

    def _move_rows(self, top: int, bottom: int, n: int) -> None:
        """Rows top..bottom move up by n (down when n < 0); the rows uncovered are blank (background colour)."""
        span = bottom - top + 1
        n = max(-span, min(span, n))
        if not n:
            return
        self._rows_moving(top, bottom, n)
        buffer = self.buffer
        order = range(top, bottom + 1) if n > 0 else range(bottom, top - 1, -1)
        for y in order:
            source = y + n
            if top <= source <= bottom and source in buffer:
                buffer[y] = buffer.pop(source)
            else:
                buffer.pop(y, None)
        blank = self._blank()
        if blank is not BLANK:
            for y in (range(bottom - n + 1, bottom + 1) if n > 0 else range(top, top - n)):
                line = buffer[y] = StaticDefaultDict(self.default_char)
                line.update(dict.fromkeys(range(self.columns), blank))

    def _rows_moving(self, top: int, bottom: int, n: int) -> None:
        """Hook: rows top..bottom are about to move up by n (down when n < 0)."""
        self.dirty.update(range(top, bottom + 1))

    def index(self) -> None:
        """IND / LF: down a row, scrolling at the region's bottom; a cursor at the wrap position stays there."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y == bottom:
            self._move_rows(top, bottom, 1)
        elif self.cursor.y < self.lines - 1:
            self.cursor.y += 1

    def reverse_index(self) -> None:
        """RI: up a row, scrolling at the region's top."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y == top:
            self._move_rows(top, bottom, -1)
        elif self.cursor.y > 0:
            self.cursor.y -= 1

    def _lines_below(self) -> int:
        """The last row IL and DL move: the scroll region's bottom, or the screen's when the cursor is outside the
        region (tmux; pyte did nothing there)."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        return bottom if top <= self.cursor.y <= bottom else self.lines - 1

    def insert_lines(self, count: int | None = None) -> None:
        """IL; the cursor stays where it is (tmux; pyte moved it to column 0)."""
        self._move_rows(self.cursor.y, self._lines_below(), -(count or 1))

    def delete_lines(self, count: int | None = None) -> None:
        """DL; the cursor stays where it is (tmux; pyte moved it to column 0)."""
        self._move_rows(self.cursor.y, self._lines_below(), count or 1)

    def scroll_up(self, count: int | None = None) -> None:
        """CSI S (pyte lacks it)."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        self._move_rows(top, bottom, count or 1)

    def scroll_down(self, count: int | None = None) -> None:
        """CSI T (pyte lacks it)."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        self._move_rows(top, bottom, -(count or 1))

    # -- the alternate screen and DECCOLM ---------------------------------------------------------------------------

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        modes = self._own_modes(modes, kwargs, on=True)
        if modes or not kwargs.get("private"):
            super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        modes = self._own_modes(modes, kwargs, on=False)
        if modes or not kwargs.get("private"):
            super().reset_mode(*modes, **kwargs)

    def _own_modes(self, modes: tuple[int, ...], kwargs: dict[str, Any], *, on: bool) -> tuple[int, ...]:
        """Apply the private modes this class handles (DECCOLM, the alternate screens); the rest are pyte's."""
        if not kwargs.get("private"):
            return modes
        shifted = {m << 5 for m in modes}
        if _DECCOLM in shifted:
            self.cursor_position()
            self.erase_in_display(2)
        for mode in (47, 1047, 1049):
            if mode << 5 in shifted:
                if on:
                    self._alternate_on(save_cursor=mode == 1049)
                else:
                    self._alternate_off(restore_cursor=mode == 1049)
        return tuple(m for m in modes if m << 5 not in _ALT_MODES and m << 5 != _DECCOLM)

    def _alternate_on(self, *, save_cursor: bool) -> None:
        if self.alternate is not None:
            return
        if save_cursor:
            self.alt_cursor = _copy_cursor(self.cursor)
        self._before_screen_switch()
        self.alternate = self.buffer
        self.buffer = self._new_buffer()
        self.dirty.update(range(self.lines))

    def _alternate_off(self, *, restore_cursor: bool) -> None:
        """Back to the main screen; 1049 restores the cursor saved by 1049h, even when the alternate screen was not
        on (tmux)."""
        if self.alternate is not None:
            self._before_screen_switch()
            self.buffer, self.alternate = self.alternate, None
            self.dirty.update(range(self.lines))
            self._after_screen_switch()
        if restore_cursor and self.alt_cursor is not None:
            self.cursor = _copy_cursor(self.alt_cursor)
            self.ensure_hbounds()
            self.ensure_vbounds()

    def _before_screen_switch(self) -> None:
        """Hook: the visible screen is about to be replaced."""

    def _after_screen_switch(self) -> None:
        """Hook: the main screen is back."""

    def _new_buffer(self) -> Any:
        return defaultdict(lambda: StaticDefaultDict(self.default_char))

    def reset(self) -> None:
        self.alternate = self.alt_cursor = None
        super().reset()

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """As tmux does: fewer lines drop those below the cursor first, then from the top; fewer columns cut."""
        lines, columns = lines or self.lines, columns or self.columns
        if (lines, columns) == (self.lines, self.columns):
            return
        buffer = self.buffer
        if lines < self.lines:
            needed = self.lines - lines
            below = min(max(self.lines - 1 - self.cursor.y, 0), needed)
            for y in range(self.lines - below, self.lines):
                buffer.pop(y, None)
            needed -= below
            if needed:
                for y in range(self.lines):
                    if y + needed < self.lines and y + needed in buffer:
                        buffer[y] = buffer.pop(y + needed)
                    else:
                        buffer.pop(y, None)
                self.cursor.y -= needed
        if columns < self.columns:
            for line in buffer.values():
                for x in [x for x in line if x >= columns]:
                    del line[x]
        self.lines, self.columns = lines, columns
        self.margins = None
        self.tabstops = set(range(8, self.columns, 8))
        self.dirty.update(range(lines))
        self.ensure_hbounds()
        self.ensure_vbounds()

    # -- keyframes ---------------------------------------------------------------------------------------------------

    def pack(self, intern: dict) -> tuple:
        """The terminal's whole state as immutable values (cells interned through `intern`, so identical cells
        and identical lines are stored once across keyframes)."""
        main = None if self.alternate is None else _pack_buffer(self.alternate, intern)
        alt_cursor = None if self.alt_cursor is None else _copy_cursor(self.alt_cursor)
        return (
            self.columns, self.lines, _pack_buffer(self.buffer, intern), main, alt_cursor, _copy_cursor(self.cursor),
            tuple(Savepoint(_copy_cursor(s.cursor), *s[1:]) for s in self.savepoints),
            self.margins, frozenset(self.mode), frozenset(self.tabstops), self.title, self.icon_name,
            self.charset, self.g0_charset, self.g1_charset, self.saved_columns,
        )

    def unpack(self, state: tuple) -> None:
        (self.columns, self.lines, buffer, main, alt_cursor, cursor, savepoints, self.margins, mode, tabstops,
         self.title, self.icon_name, self.charset, self.g0_charset, self.g1_charset, self.saved_columns) = state
        self.buffer = self._unpack_buffer(buffer)
        self.alternate = None if main is None else self._unpack_buffer(main)
        self.alt_cursor = None if alt_cursor is None else _copy_cursor(alt_cursor)
        self.cursor = _copy_cursor(cursor)
        self.savepoints = [Savepoint(_copy_cursor(s.cursor), *s[1:]) for s in savepoints]
        self.mode = set(mode)
        self.tabstops = set(tabstops)
        self.dirty = set(range(self.lines))

    def _unpack_buffer(self, packed: tuple) -> Any:
        buffer = self._new_buffer()
        for y, (default, keys, cells) in packed:
            line = buffer[y] = StaticDefaultDict(default)
            line.update(zip(keys, cells))
        return buffer

    # -- reading -----------------------------------------------------------------------------------------------------

    def line_text(self, y: int) -> str:
        """Row y as text (wide characters once), trailing blanks removed."""
        line = self.buffer.get(y)
        if not line:
            return ""
        columns = self.columns
        return "".join(map(_data, map(line.get, range(columns), repeat(line.default, columns)))).rstrip()

    def snapshot(self, position: int = 0, time: float = 0.0) -> Snapshot:
        columns = self.columns
        rows = []
        for y in range(self.lines):
            line = self.buffer.get(y)
            if not line:
                default = line.default if line is not None else self.default_char
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
        if not self.cursor.hidden:
            cursor = (min(self.cursor.x, columns - 1), self.cursor.y)
        return Snapshot(columns, self.lines, tuple(rows), cursor, position, time, self.alternate is not None)


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


def _copy_cursor(cursor: Cursor) -> Cursor:
    copy = Cursor(cursor.x, cursor.y, cursor.attrs)
    copy.hidden = cursor.hidden
    return copy


_COUNTING: dict[int, tuple[int, ...]] = {}


def _counting(n: int) -> tuple[int, ...]:
    found = _COUNTING.get(n)
    if found is None:
        found = _COUNTING[n] = tuple(range(n))
    return found


def _pack_buffer(buffer: dict, intern: dict) -> tuple:
    setdefault = intern.setdefault
    lines = []
    for y, line in buffer.items():
        if not line:
            continue
        keys: Any = tuple(line)
        n = len(keys)
        if keys[-1] == n - 1 and keys == _counting(n):
            keys = range(n)  # the usual case: cells 0..n-1 written in order
        values = line.values()
        packed = (setdefault(line.default, line.default), keys, tuple(map(setdefault, values, values)))
        lines.append((y, setdefault(packed, packed)))
    return tuple(lines)


# --- the parser -----------------------------------------------------------------------------------------------------

_CSI = re.compile(r"\x1b\[([?>=<]?)([0-9;:]*)([ -/]*)([@-~])")
# ESC ( 0 / ESC ) B (character sets), and DCS / SOS / PM / APC strings up to ST or BEL
_OTHER = re.compile(r"\x1b(?:([()])([0-~])|[P^_X][^\x07\x1b]*(?:\x07|\x1b\\))", re.S)
# what a feed may end inside of: ESC, a CSI sequence, a character set designation, or one of those strings
_UNFINISHED = re.compile(r"\x1b(?:\[[?>=<]?[0-9;:]*[ -/]*|[()]|[P^_X][^\x07\x1b]*\x1b?)?\Z")
_PRIVATE_OK = {"h", "l", "J", "K"}  # private CSI finals that mean something to the terminal


class TerminalStream(pyte.Stream):
    """pyte.Stream that takes whole CSI sequences and control characters in one step (pyte's parser takes one
    character per generator step), keeps a CSI sequence cut by the end of a feed until the next one (so a sequence
    split across frames is read exactly as a whole one), and survives a sequence the screen cannot take."""

    escape = {**pyte.Stream.escape, "E": "next_line"}
    csi = {**pyte.Stream.csi, "S": "scroll_up", "T": "scroll_down", "b": "repeat_last", "s": "save_cursor_csi",
           "u": "restore_cursor_csi", "Z": "tab_backward"}

    def attach(self, screen: pyte.Screen) -> None:
        super().attach(screen)
        self._partial = ""
        self._csi_dispatch = {final: getattr(screen, name) for final, name in self.csi.items()
                              if hasattr(screen, name)}
        self._basic_dispatch = {char: getattr(screen, name) for char, name in self.basic.items()}

    def feed(self, data: str) -> None:
        if self._partial:
            data, self._partial = self._partial + data, ""
        listener = self.listener
        draw = listener.draw
        match_text = self._text_pattern.match
        match_csi = _CSI.match
        basic = self._basic_dispatch
        send = self._send
        plain = self._taking_plain_text
        offset, length = 0, len(data)
        while offset < length:
            if plain:
                m = match_text(data, offset)
                if m:
                    offset = m.end()
                    draw(m.group())
                    continue
                char = data[offset]
                if char == "\x1b":
                    m = match_csi(data, offset)
                    if m:
                        offset = m.end()
                        self._dispatch_csi(*m.groups())
                        continue
                    m = _OTHER.match(data, offset)
                    if m:
                        offset = m.end()
                        if m.group(1):  # ESC ( 0 and the like: which character set G0 or G1 is
                            listener.define_charset(m.group(2), m.group(1))
                        continue  # a DCS, APC, PM or SOS string: nothing on screen
                    if _UNFINISHED.match(data, offset):
                        if length - offset < 65536:  # a string that never ends is dropped, not kept forever
                            self._partial = data[offset:]
                        break
                else:
                    handler = basic.get(char)
                    if handler is not None:
                        offset += 1
                        handler()
                        continue
            plain = send(data[offset])
            offset += 1
        self._taking_plain_text = plain

    def _send(self, char: str) -> bool | None:
        try:
            return self._parser.send(char)
        except Exception:  # a sequence the screen cannot take: drop it, as a terminal would
            self._initialize_parser()
            return True

    @property
    def idle(self) -> bool:
        """True when no escape sequence is half read (a keyframe may be taken)."""
        return bool(self._taking_plain_text) and not self._partial

    def _dispatch_csi(self, prefix: str, params: str, intermediates: str, final: str) -> None:
        if intermediates or prefix in (">", "=", "<"):
            return  # DECSCUSR, modifyOtherKeys, secondary DA, …: nothing on screen
        if ":" in params:
            if final != "m" or prefix:
                return
            params = _colon_sgr(params)
        handler = self._csi_dispatch.get(final)
        if handler is None:
            return
        args = _csi_args(params)
        try:
            if prefix == "?":
                if final in _PRIVATE_OK:
                    handler(*args, private=True)
            else:
                handler(*args)
        except (TypeError, ValueError, IndexError, KeyError):
            pass


@functools.lru_cache(maxsize=4096)
def _csi_args(params: str) -> tuple[int, ...]:
    """CSI parameters as pyte reads them: empty ones are 0, each at most 9999."""
    return tuple(min(int(p or 0), 9999) for p in params.split(";"))


def _colon_sgr(params: str) -> str:
    """ISO 8613-6 SGR (`38:2::r:g:b`, `38:5:n`, `4:3`) as the semicolon form pyte reads."""
    out = []
    for part in params.split(";"):
        if ":" not in part:
            out.append(part)
            continue
        p = part.split(":")
        if p[0] in ("38", "48") and len(p) >= 3 and p[1] == "5":
            out.append(f"{p[0]};5;{p[2] or 0}")
        elif p[0] in ("38", "48") and len(p) >= 5 and p[1] == "2":
            rgb = p[-3:]
            out.append(f"{p[0]};2;{';'.join(v or '0' for v in rgb)}")
        elif p[0] == "4" and len(p) == 2:
            out.append("24" if p[1] == "0" else "4")
    return ";".join(out) or "0"


# --- reading a recording ----------------------------------------------------------------------------------------------

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


class Recording:
    """A loaded recording. `markers` and `keyframes` grow when build_index() runs (once; thread-safe)."""

    def __init__(self, header: dict[str, Any], width: int, height: int, frames: list[Frame],
                 markers: list[Marker], duration: float):
        self.header = header
        self.width, self.height = width, height
        self.frames = frames
        self.times = [f.time for f in frames]
        self.duration = duration
        # offsets[i]: characters of output in the first i frames (what feeding costs between two positions)
        self.offsets = array("q", accumulate((len(f.data) if f.kind == "o" else 0 for f in frames), initial=0))
        self.output_size = self.offsets[-1]
        self._given_markers = markers
        self.markers: list[Marker] = sorted(markers)
        self.keyframes: list[Keyframe] = []
        self._keyframe_positions: list[int] = []
        self._versions: _TextIndex | None = None
        self._lock = threading.Lock()
        self._built = threading.Event()

    @property
    def title(self) -> str:
        return str(self.header.get("title") or self.header.get("command") or "")

    @property
    def indexed(self) -> bool:
        return self._built.is_set()

    def __repr__(self) -> str:
        return f"<Recording {self.width}x{self.height} {self.duration:.1f}s {len(self.frames)} frames>"

    def position_at(self, t: float) -> int:
        """How many frames have been shown at time t."""
        return bisect.bisect_right(self.times, t)

    def time_of(self, position: int) -> float:
        return self.times[position - 1] if position > 0 else 0.0

    def keyframe_before(self, position: int) -> Keyframe | None:
        i = bisect.bisect_right(self._keyframe_positions, position)
        return self.keyframes[i - 1] if i else None

    def build_index(self, progress: Callable[[float], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> bool:
        """Feed the whole recording once: keyframes, command markers and the text for search. Returns False when
        `cancelled()` stopped it (a later call starts over; keyframes already made are kept)."""
        with self._lock:
            if self._built.is_set():
                return True
            return self._build(progress, cancelled)

    def _build(self, progress: Callable[[float], None] | None, cancelled: Callable[[], bool] | None) -> bool:
        term = _IndexingTerminal(self.width, self.height)
        stream = TerminalStream(term)
        intern: dict = {}
        since_chars, since_time = 0, 0.0
        total = max(self.output_size, 1)
        done = 0
        have = self._keyframe_positions[-1] if self._keyframe_positions else 0
        next_report = 0
        frames = self.frames
        for i, frame in enumerate(frames):
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
                    self.keyframes.append(Keyframe(i + 1, frame.time, term.pack(intern)))
                    self._keyframe_positions.append(i + 1)
                since_chars, since_time = 0, frame.time
            if done >= next_report:
                next_report = done + 256 * 1024
                if progress:
                    progress(done / total)
                if cancelled and cancelled():
                    return False
        term.finish()
        self._versions = term.versions
        self._versions.seal()
        self.markers = _merge_markers(self._given_markers, term.markers)
        self._built.set()
        if progress:
            progress(1.0)
        return True


def _merge_markers(given: list[Marker], found: list[Marker]) -> list[Marker]:
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


# --- the indexing pass: text versions for search, prompts for markers ---------------------------------------------

_PROMPT = re.compile(r"(?:\S.*)?[$#%>❯»:] $")


class _TextIndex:
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


class _IndexingTerminal(Terminal):
    """The terminal of the indexing pass. Tracks, per row, the text shown at the last frame boundary and since when;
    rows that scroll or move take their tracking with them, so scrolling does not make every row look new. Arms on
    a prompt (text ending in `$ `, `# `, `> `, `% `, `: ` … with the cursor after it) to catch the command typed
    next."""

    def __init__(self, columns: int, lines: int):
        self.position = 0
        self.now = 0.0
        self.versions = _TextIndex()
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

    def _rows_moving(self, top: int, bottom: int, n: int) -> None:
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

    def _wrap(self) -> None:
        armed = self._armed
        if armed is not None and armed[0] == self.cursor.y:
            self._typed.append(self.line_text(armed[0])[armed[1]:])
            self.carriage_return()
            self.index()
            self._armed = (self.cursor.y, 0)
        else:
            super()._wrap()

    def linefeed(self) -> None:
        armed = self._armed
        if armed is not None and armed[0] == self.cursor.y:
            command = ("".join(self._typed) + self.line_text(armed[0])[armed[1]:]).strip()
            if command and not command.endswith("^C"):
                self.markers.append(Marker(self.now, command, "command"))
        self._armed = None
        super().linefeed()

    def _before_screen_switch(self) -> None:
        for row in range(self.lines):
            self._close_row(row)
        self._track_reset()

    def _after_screen_switch(self) -> None:
        for row in range(self.lines):
            self.rows_text[row] = self.line_text(row)


# --- playing --------------------------------------------------------------------------------------------------------

class Player:
    """A terminal positioned somewhere in a recording. Moving forward feeds the frames in between; anything else
    restores the nearest keyframe first (or starts over when the index is not built that far yet)."""

    def __init__(self, recording: Recording):
        self.recording = recording
        self._start()

    def _start(self) -> None:
        self.terminal = Terminal(self.recording.width, self.recording.height)
        self.stream = TerminalStream(self.terminal)
        self.position = 0

    @property
    def time(self) -> float:
        return self.recording.time_of(self.position)

    def seek(self, t: float) -> None:
        """Show the screen at time t: every frame at or before t."""
        self.seek_position(self.recording.position_at(t))

    def seek_position(self, position: int) -> None:
        position = max(0, min(position, len(self.recording.frames)))
        keyframe = self.recording.keyframe_before(position)
        if position < self.position or (keyframe is not None and keyframe.position > self.position):
            if keyframe is None:
                self._start()
            else:
                self.terminal.unpack(keyframe.state)
                self.stream = TerminalStream(self.terminal)
                self.position = keyframe.position
        self._feed(position)

    def seek_cost(self, position: int) -> int:
        """Characters of output seek_position(position) would feed (what makes a seek slow)."""
        position = max(0, min(position, len(self.recording.frames)))
        keyframe = self.recording.keyframe_before(position)
        start = keyframe.position if keyframe is not None else 0
        if start <= self.position <= position:
            start = self.position
        return self.recording.offsets[position] - self.recording.offsets[start]

    def step(self) -> bool:
        """Show one more frame; False at the end."""
        if self.position >= len(self.recording.frames):
            return False
        self._feed(self.position + 1)
        return True

    def _feed(self, position: int) -> None:
        frames = self.recording.frames
        feed = self.stream.feed
        for i in range(self.position, position):
            frame = frames[i]
            if frame.kind == "o":
                feed(frame.data)
            else:
                cols, rows = map(int, frame.data.split("x"))
                self.terminal.resize(rows, cols)
        self.position = max(self.position, position)

    def snapshot(self) -> Snapshot:
        return self.terminal.snapshot(self.position, self.time)


def screen_at(recording: Recording, t: float) -> Snapshot:
    """The screen at time t (a fresh Player: nearest keyframe, then the frames after it)."""
    player = Player(recording)
    player.seek(t)
    return player.snapshot()


# --- search ---------------------------------------------------------------------------------------------------------

def search(recording: Recording, text: str) -> list[Match]:
    """Where `text` appeared on screen, over the whole recording, in time order. Smart case: a query with a capital
    letter matches case exactly, otherwise case is ignored. Text that stays in place across redraws (a progress bar,
    a full-screen program) is reported once per place, not once per redraw. Builds the index first if needed."""
    query = text.replace("\n", " ").replace("\r", " ")
    if not query.strip():
        return []
    recording.build_index()
    versions = recording._versions
    assert versions is not None
    flags = 0 if any(c.isupper() for c in query) else re.IGNORECASE
    pattern = re.compile(re.escape(query), flags)
    matches: list[tuple[int, int, int, int]] = []
    chunk_size = _TextIndex.CHUNK
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


# --- the idle-compressed timeline -----------------------------------------------------------------------------------

def idle_compress(times: Sequence[float], limit: float | None = IDLE_LIMIT) -> list[float]:
    """The times on a clock where every pause longer than `limit` lasts `limit` (None: unchanged)."""
    out: list[float] = []
    previous = compressed = 0.0
    for t in times:
        gap = t - previous
        compressed += gap if limit is None else min(gap, limit)
        out.append(compressed)
        previous = t
    return out


class Timeline:
    """Converts between recording time and playback time (with idle skip, pauses capped at `limit`)."""

    def __init__(self, recording: Recording, limit: float | None = IDLE_LIMIT):
        self.limit = limit
        self._times = [0.0] + recording.times
        if recording.duration > self._times[-1]:
            self._times.append(recording.duration)
        self._play = idle_compress(self._times, limit)
        self.duration = self._play[-1]

    def to_play(self, t: float) -> float:
        i = max(bisect.bisect_right(self._times, t) - 1, 0)
        gap = t - self._times[i]
        return self._play[i] + (gap if self.limit is None else min(gap, self.limit))

    def to_recording(self, p: float) -> float:
        p = max(0.0, min(p, self.duration))
        i = max(bisect.bisect_right(self._play, p) - 1, 0)
        return min(self._times[i] + (p - self._play[i]), self._times[-1])


def format_time(seconds: float) -> str:
    """m:ss (or h:mm:ss) for a timeline."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def events_as_markers(events: Iterable[tuple[float, str]]) -> list[Marker]:
    return sorted(Marker(max(float(t), 0.0), label, "event") for t, label in events)


# --- a mirrored session ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SessionReplay:
    """What the replay screen needs for a session of the mirror."""

    recording: Recording
    title: str
    event_markers: list[tuple[float, str]]  # the session's gateway events: (seconds from its start, description)


def open_session(conn: Any, session_id: str) -> SessionReplay:
    """Load a mirrored session's recording, refusing it (ChainError) when its bytes do not hash to the sha256 the
    mirror and the session's events recorded. RecordingError when the mirror has no such recording."""
    from auditkit.model import events as events_mod
    from auditkit import store

    session = store.get_session(conn, session_id)
    cast = store.recording(conn, session_id) if session else None
    if session is None or cast is None:
        raise RecordingError(f"no recording of session {session_id} in this mirror")
    digest = store.recording_sha256(cast)
    session_events = store.session_events(conn, session_id)
    expected = [("the mirror", session["sha256"])] + [
        (f"event {e.id}", e.details["recording_sha256"]) for e in session_events
        if isinstance(e.details, dict) and e.details.get("recording_sha256")]
    for where, wanted in expected:
        if wanted != digest:
            raise ChainError(f"recording of session {session_id} hashes to {digest}, but {where} recorded {wanted}: "
                             f"refusing to replay it (run `auditkit verify`)")
    recording = load(cast)
    start_ms = None
    if session.get("started_at"):
        start_ms = events_mod.timestamp_ms(session["started_at"])
    elif isinstance(recording.header.get("timestamp"), (int, float)):
        start_ms = int(recording.header["timestamp"] * 1000)
    markers = []
    for event in session_events:
        offset = 0.0 if start_ms is None else (events_mod.timestamp_ms(event.timestamp) - start_ms) / 1000
        markers.append((min(max(offset, 0.0), recording.duration), event.description))
    parts = [session.get("command") or recording.title or "session", session.get("actor"),
             session.get("app") or session.get("rack"), (session.get("started_at") or "")[:16].replace("T", " ")]
    return SessionReplay(recording, " · ".join(p for p in parts if p), markers)
