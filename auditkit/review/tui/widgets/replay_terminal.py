"""TerminalView: draws a Snapshot (a recorded terminal's screen) cell for cell, with the cursor and a search
match marked. A Line-API ScrollView: when the pane is smaller than the recording it shows the part around the
cursor (or the match) and can be scrolled with the mouse."""

from __future__ import annotations

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from auditkit.review.replay.snapshot import Attrs, Snapshot
from auditkit.review.replay.terminal import ANSI_NAMES

_ANSI = {name: i for i, name in enumerate(ANSI_NAMES)}


def colour(value: str) -> Color | None:
    """A pyte colour (name, "bright…" name or rrggbb hex) as a Rich colour; None for the default."""
    if value == "default":
        return None
    bright = value.startswith("bright")
    name = value[6:] if bright else value
    if name in _ANSI:
        return Color.from_ansi(_ANSI[name] + (8 if bright else 0))
    try:
        return Color.parse(f"#{value}")
    except Exception:
        return None


def cell_style(attrs: Attrs) -> Style:
    """A cell's own look (blink is left out: a replay should not flash)."""
    return Style(color=colour(attrs.fg), bgcolor=colour(attrs.bg), bold=attrs.bold or None,
                 italic=attrs.italics or None, underline=attrs.underscore or None,
                 strike=attrs.strikethrough or None, reverse=attrs.reverse or None)


class TerminalView(ScrollView, can_focus=False):
    """The recorded terminal, at the recording's size."""

    COMPONENT_CLASSES = {"terminal-view--cursor", "terminal-view--match"}

    DEFAULT_CSS = """
    TerminalView {
        background: $background;
        color: $foreground;
        scrollbar-size: 0 0;
        overflow: hidden hidden;
        & > .terminal-view--cursor { background: $foreground 80%; color: $background; }
        & > .terminal-view--match { background: $warning; color: $background; text-style: bold; }
    }
    """

    def __init__(self, width: int, height: int, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.snapshot: Snapshot | None = None
        self.highlight: tuple[int, int, int] | None = None  # (row, col, length)
        self._strips: dict[int, Strip] = {}
        self._styles: dict[Attrs, Style] = {}
        self._base: Style | None = None
        self.set_terminal_size(width, height)

    def set_terminal_size(self, width: int, height: int) -> None:
        self.styles.width = width
        self.styles.height = height
        self.virtual_size = Size(width, height)

    def show(self, snapshot: Snapshot, highlight: tuple[int, int, int] | None = None) -> None:
        """Draw this screen; keep the match (else the cursor) in view when the pane is smaller."""
        if (snapshot.width, snapshot.height) != tuple(self.virtual_size):
            self.set_terminal_size(snapshot.width, snapshot.height)
        self.snapshot = snapshot
        self.highlight = highlight
        self._strips.clear()
        focus = None
        if highlight is not None:
            focus = Region(highlight[1], highlight[0], max(highlight[2], 1), 1)
        elif snapshot.cursor is not None:
            focus = Region(snapshot.cursor[0], snapshot.cursor[1], 1, 1)
        if focus is not None and (self.size.width < snapshot.width or self.size.height < snapshot.height):
            self.scroll_to_region(focus, animate=False, immediate=True, force=True)
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
        self._base = None

    def _style(self, attrs: Attrs) -> Style:
        style = self._styles.get(attrs)
        if style is None:
            if self._base is None:
                self._base = self.rich_style
            style = self._styles[attrs] = self._base + cell_style(attrs)
        return style

    def _strip(self, row: int) -> Strip:
        strip = self._strips.get(row)
        if strip is not None:
            return strip
        snapshot = self.snapshot
        assert snapshot is not None
        style = self._style
        strip = Strip([Segment(text, style(attrs)) for text, attrs in snapshot.lines[row]], snapshot.width)
        overlays = []
        if snapshot.cursor is not None and snapshot.cursor[1] == row:
            x = snapshot.cursor[0]
            overlays.append((x, x + 1, self.get_component_rich_style("terminal-view--cursor", partial=True)))
        if self.highlight is not None and self.highlight[0] == row:
            _, col, length = self.highlight
            overlays.append((col, col + length, self.get_component_rich_style("terminal-view--match", partial=True)))
        for start, end, overlay in overlays:
            start, end = max(0, min(start, snapshot.width)), max(0, min(end, snapshot.width))
            if start >= end:
                continue
            left, middle, right = strip.divide([start, end, snapshot.width])[:3]
            middle = Strip([Segment(text, (style or Style()) + overlay) for text, style, _ in middle], end - start)
            strip = Strip.join([left, middle, right])
        self._strips[row] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = y + scroll_y
        width = self.size.width
        if self.snapshot is None or not 0 <= row < self.snapshot.height:
            return Strip.blank(width, self.rich_style)
        return self._strip(row).crop_extend(scroll_x, scroll_x + width, self.rich_style)
