"""The terminal a recording drew on: pyte's Screen made to show what tmux shows, with packable state for keyframes.

pyte is extended in three ways: the alternate screen (DEC private modes 47, 1047 and 1049, as tmux does them), a fast
path for plain ASCII text (the fast path for escape sequences is the stream's), and tmux's behaviour wherever pyte's
differs, checked against tmux by tests/review/test_replay_tmux.py (real programs) and scripts/replay_fidelity.py (random
sequences): erasing, scrolling and inserting use the background colour only; the cursor at the wrap position, above or
below the scroll region, after DECRC; IL/DL outside the region; wide characters overwritten by halves; `CSI 3 J` leaves
the screen alone; DECCOLM clears without resizing; REP, SU/SD, CSI s/u, NEL and DEC line drawing work.

Subclasses follow the screen through four hooks: autowrap (a line wrapped), rows_moving (rows scroll or are inserted
or deleted), before_screen_switch and after_screen_switch (the alternate screen comes or goes).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from itertools import repeat
from operator import itemgetter
from typing import Any, Sequence

import pyte
from pyte import charsets, modes as mo
from pyte.screens import Char, Cursor, Margins, Savepoint, StaticDefaultDict, wcwidth

from auditkit.review.replay import snapshot
from auditkit.review.replay.snapshot import Snapshot

BLANK = Char(" ")
_data = itemgetter(0)


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
                    self.autowrap()
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

    def autowrap(self) -> None:
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
                    self.autowrap()
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
        self._shift_cells(count, right=True)

    def delete_characters(self, count: int | None = None) -> None:
        """DCH; the blanks coming in from the right have the background colour (tmux)."""
        self._shift_cells(count, right=False)

    def _shift_cells(self, count: int | None, *, right: bool) -> None:
        """The cells from the cursor to the end of the line move `count` cells right (ICH) or left (DCH); the gap
        they leave is blank with the background colour."""
        self.dirty.add(self.cursor.y)
        x, columns = self.cursor.x, self.columns
        if x >= columns:
            return
        count = min(count or 1, columns - x)
        line = self.buffer[self.cursor.y]
        default = line.default
        source, target, gap = (x, x + count, x) if right else (x + count, x, columns - count)
        moved = [line.get(col, default) for col in range(source, source + columns - x - count)]
        line.update(zip(range(target, target + len(moved)), moved))
        line.update(dict.fromkeys(range(gap, gap + count), self._blank()))

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
        self.rows_moving(top, bottom, n)
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

    def rows_moving(self, top: int, bottom: int, n: int) -> None:
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
        self.before_screen_switch()
        self.alternate = self.buffer
        self.buffer = self._new_buffer()
        self.dirty.update(range(self.lines))

    def _alternate_off(self, *, restore_cursor: bool) -> None:
        """Back to the main screen; 1049 restores the cursor saved by 1049h, even when the alternate screen was not
        on (tmux)."""
        if self.alternate is not None:
            self.before_screen_switch()
            self.buffer, self.alternate = self.alternate, None
            self.dirty.update(range(self.lines))
            self.after_screen_switch()
        if restore_cursor and self.alt_cursor is not None:
            self.cursor = _copy_cursor(self.alt_cursor)
            self.ensure_hbounds()
            self.ensure_vbounds()

    def before_screen_switch(self) -> None:
        """Hook: the visible screen is about to be replaced."""

    def after_screen_switch(self) -> None:
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
        return snapshot.take(self, position, time)


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

