"""TimelineBar: one line showing where the replay is: elapsed time, a bar with the playhead, ticks for markers
(command boundaries and gateway events) and the duration. A click on the bar asks for a seek there."""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from textual.events import Click
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from auditkit.review.replay.timeline import format_time


class TimelineBar(Widget, can_focus=False):
    COMPONENT_CLASSES = {"timeline--played", "timeline--rest", "timeline--head", "timeline--marker",
                         "timeline--event", "timeline--time"}

    DEFAULT_CSS = """
    TimelineBar {
        height: 1;
        width: 1fr;
        background: $panel;
        & > .timeline--played { color: $accent; }
        & > .timeline--rest { color: $foreground 35%; }
        & > .timeline--head { color: $text-accent; text-style: bold; }
        & > .timeline--marker { color: $foreground 80%; }
        & > .timeline--event { color: $warning; text-style: bold; }
        & > .timeline--time { color: $foreground; }
    }
    """

    @dataclass
    class Seek(Message):
        """The user clicked the bar: seek to this fraction of the duration."""

        fraction: float

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.position = 0.0
        self.duration = 0.0
        self.markers: list[tuple[float, str]] = []  # (playback time, kind)

    def update(self, position: float, duration: float, markers: list[tuple[float, str]] | None = None) -> None:
        changed = (position, duration) != (self.position, self.duration)
        self.position, self.duration = position, duration
        if markers is not None and markers != self.markers:
            self.markers = markers
            changed = True
        if changed:
            self.refresh()

    def _layout(self) -> tuple[str, str, int, int]:
        left = f" {format_time(self.position)} "
        right = f" {format_time(self.duration)} "
        start = len(left)
        return left, right, start, max(self.size.width - len(left) - len(right), 1)

    def render_line(self, y: int) -> Strip:
        base = self.rich_style
        left, right, start, width = self._layout()
        fraction = self.position / self.duration if self.duration > 0 else 0.0
        head = min(int(fraction * width), width - 1)
        style = {name: base + self.get_component_rich_style(f"timeline--{name}", partial=True)
                 for name in ("played", "rest", "head", "marker", "event", "time")}
        cells = ["━" if x < head else "─" for x in range(width)]
        kinds = ["played" if x < head else "rest" for x in range(width)]
        dense = sum(1 for _, kind in self.markers if kind != "event") > width // 3
        for t, kind in self.markers:
            if self.duration <= 0:
                break
            if dense and kind != "event":
                continue  # more command markers than the bar can show apart: [ and ] still reach them
            x = min(int(t / self.duration * width), width - 1)
            if kind == "event":
                cells[x], kinds[x] = "◆", "event"
            elif kinds[x] != "event":
                cells[x], kinds[x] = ("┿" if x < head else "┼"), "marker"
        cells[head], kinds[head] = "●", "head"
        segments = [Segment(left, style["time"])]
        run_start = 0
        for x in range(1, width + 1):
            if x == width or kinds[x] != kinds[run_start]:
                segments.append(Segment("".join(cells[run_start:x]), style[kinds[run_start]]))
                run_start = x
        segments.append(Segment(right, style["time"]))
        return Strip(segments).crop_extend(0, self.size.width, base)

    def on_click(self, event: Click) -> None:
        _, _, start, width = self._layout()
        if start <= event.x < start + width:
            self.post_message(self.Seek((event.x - start) / max(width - 1, 1)))
