"""The event list: every event matching a filter, newest first, over the whole mirror without loading it.

A Line-API ScrollView whose virtual height is the match count (plus its header line). Only rows near the
viewport are held (a dict of offset → Row); missing ones are drawn as placeholders and fetched from SQLite by a
thread worker, anchored on a cached neighbour's key when there is one (a keyset page), else by offset. Workers are
exclusive per group, so a superseded query (a new filter, a fast scroll) is cancelled; results carry a generation
number and stale ones are dropped. A poll worker asks the mirror whether anything was committed and, if so, what
the filter gained: new rows are added above without moving the selected event (follow mode keeps the newest one
selected instead).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Callable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState, get_current_worker

from auditkit import store
from auditkit.model.events import Event
from auditkit.model.filters import Filter
from auditkit.model.safe_text import printable
from auditkit.review.tui import mirror as mirror_mod
from auditkit.review.tui.mirror import Cancelled, Change, Mirror, Row, Snapshot

OUTCOME_MARKS = {"succeeded": "✓", "failed": "✗", "denied": "⊘", "unknown": "?"}
FETCH_MARGIN = 60  # rows fetched beyond the viewport on each side
KEEP_MARGIN = 1500  # rows kept cached beyond the viewport on each side
KEEP_MAX = 4000  # past this many cached rows, those farther than KEEP_MARGIN are dropped


# --- layout and formatting (plain functions) ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Columns:
    """Cell widths of the list's columns at one width; the description takes what is left."""

    time: int
    user: int
    rack: int
    what: int
    description: int


def layout(width: int) -> Columns:
    if width >= 150:
        time, user, rack, what = 19, 28, 22, 26
    elif width >= 100:
        time, user, rack, what = 19, 20, 16, 22
    else:
        time, user, rack, what = 14, 14, 12, 17
    used = time + 3 + user + 1 + rack + 1 + what + 1  # "T ✓ user rack what description"
    return Columns(time, user, rack, what, max(0, width - used))


def fit(text: str, width: int) -> str:
    """`text` in exactly `width` cells: padded, or cut with an ellipsis."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def format_time(timestamp: str, utc: bool, short: bool) -> str:
    """An event timestamp for the list: UTC as stored, or this machine's local time; `short` drops the year."""
    if utc:
        text = f"{timestamp[:10]} {timestamp[11:19]}"
    else:
        moment = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone()
        text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text[5:] if short else text


def local_zone_name() -> str:
    return dt.datetime.now().astimezone().tzname() or "local"


# --- the widget ------------------------------------------------------------------------------------------------------

class EventList(ScrollView, can_focus=True):
    """Newest-first events of a filter; Enter posts Opened with the selected event."""

    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, tooltip="Select the next (older) event"),
        Binding("k,up", "cursor_up", "Up", show=False, tooltip="Select the previous (newer) event"),
        Binding("pagedown,ctrl+d,space", "page_down", "Page down", show=False, tooltip="Page down (older)"),
        Binding("pageup,ctrl+u", "page_up", "Page up", show=False, tooltip="Page up (newer)"),
        Binding("g,home", "first", "Newest", show=False, tooltip="Go to the newest event"),
        Binding("G,end", "last", "Oldest", show=False, tooltip="Go to the oldest event"),
        Binding("enter", "open", "Detail", show=False, tooltip="Open the selected event's detail"),
    ]

    COMPONENT_CLASSES = {
        "event-list--header",
        "event-list--cursor",
        "event-list--placeholder",
        "event-list--succeeded",
        "event-list--failed",
        "event-list--denied",
        "event-list--unknown",
        "event-list--time",
        "event-list--empty",
    }

    DEFAULT_CSS = """
    EventList {
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
    }
    """

    class Opened(Message):
        """The user asked for the selected event's detail."""

        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    class StatusChanged(Message):
        """The list's state changed (match count, loading, follow, new rows above): for the status line."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, EventList.StatusChanged)

    @dataclasses.dataclass
    class FirstPage(Message):
        generation: int
        snapshot: Snapshot
        rows: list[Row]

    @dataclasses.dataclass
    class Counted(Message):
        generation: int
        total: int
        hints: tuple[str, ...] = ()  # when nothing matches: the qualifier values no event has, and near ones

    @dataclasses.dataclass
    class RowsLoaded(Message):
        generation: int
        start: int
        rows: list[Row]

    @dataclasses.dataclass
    class Updated(Message):
        generation: int
        change: Change

    def __init__(self, mirror: Mirror, *, clock: Callable[[], dt.datetime], utc: bool = False,
                 poll_interval: float | None = 0.5, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mirror = mirror
        self.clock = clock
        self.utc = utc
        self.poll_interval = poll_interval
        self.filter = Filter()
        self.snapshot: Snapshot | None = None
        self.total: int | None = None
        self.hints: tuple[str, ...] = ()
        self.cursor = 0
        self.follow = False
        self.new_above = 0
        self.painted_generation = -1  # the generation whose rows were last drawn, and when (perf_counter)
        self.painted_at: float | None = None
        self._generation = 0
        self._rows: dict[int, Row] = {}
        self._pending: tuple[int, int, int] | None = None  # (generation, start, end) being fetched
        self._request_scheduled = False
        self._polling = False

    # --- public ------------------------------------------------------------------------------------------------
    @property
    def counting(self) -> bool:
        return self.total is None

    @property
    def generation(self) -> int:
        return self._generation

    def selected(self) -> Row | None:
        return self._rows.get(self.cursor)

    def snapshot_now(self) -> dt.datetime:
        """The instant relative times (since:7d) are read against in what the list shows."""
        return self.snapshot.now if self.snapshot is not None else self.clock()

    def show(self, f: Filter) -> None:
        """Show the events matching `f`, from the newest."""
        self.filter = f
        self._generation += 1
        self._rows.clear()
        self._pending = None
        self.snapshot = None
        self.total = None
        self.hints = ()
        self.cursor = 0
        self.new_above = 0
        self.virtual_size = Size(0, 1)
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()
        self._post_status()
        self._query(self._generation, f, self.clock(), max(100, self.size.height * 2))

    def reload(self) -> None:
        self.show(self.filter)

    def set_utc(self, utc: bool) -> None:
        self.utc = utc
        self.refresh()

    def set_follow(self, follow: bool) -> None:
        self.follow = follow
        if follow:
            self._move_to(0)
        self._post_status()

    # --- lifecycle ------------------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.virtual_size = Size(0, 1)
        if self.poll_interval:
            self.set_interval(self.poll_interval, self._poll)

    def on_resize(self, event: events.Resize) -> None:
        self.refresh()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if round(new) == 0 and self.new_above:
            self.new_above = 0
            self._post_status()

    # --- workers ------------------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="event-list-query", exit_on_error=False)
    def _query(self, generation: int, f: Filter, now: dt.datetime, limit: int) -> None:
        worker = get_current_worker()
        try:
            with self.mirror.reading(lambda: worker.is_cancelled) as conn:
                snapshot, rows = mirror_mod.first_page(conn, f, now, limit)
                self.post_message(self.FirstPage(generation, snapshot, rows))
                total = mirror_mod.count(conn, snapshot)
                hints = tuple(h.text() for h in store.hints_for(conn, f)) if total == 0 else ()
        except Cancelled:
            return
        if not worker.is_cancelled:
            self.post_message(self.Counted(generation, total, hints))

    @work(thread=True, exclusive=True, group="event-list-rows", exit_on_error=False)
    def _fetch(self, generation: int, snapshot: Snapshot, start: int, limit: int, after_row: int | None,
               before_row: int | None, total: int | None) -> None:
        worker = get_current_worker()
        try:
            with self.mirror.reading(lambda: worker.is_cancelled) as conn:
                rows = mirror_mod.fetch(conn, snapshot, start, limit, after_row=after_row, before_row=before_row,
                                        total=total)
        except Cancelled:
            return
        if not worker.is_cancelled:
            self.post_message(self.RowsLoaded(generation, start, rows))

    @work(thread=True, exclusive=True, group="event-list-poll", exit_on_error=False)
    def _check(self, generation: int, snapshot: Snapshot, total: int, selected_key: int | None) -> None:
        worker = get_current_worker()
        try:
            if not self.mirror.changed():
                return
            with self.mirror.reading(lambda: worker.is_cancelled) as conn:
                change = mirror_mod.changes(conn, snapshot, total, selected_key)
        except Cancelled:
            return
        finally:
            self._polling = False
        if change is not None and not worker.is_cancelled:
            self.post_message(self.Updated(generation, change))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self._pending = None
            self._polling = False
            self.notify(f"Reading the mirror failed: {event.worker.error}", severity="error", timeout=10)

    def _poll(self) -> None:
        if self.snapshot is None or self.total is None or self._polling:
            return
        self._polling = True
        row = self.selected()
        self._check(self._generation, self.snapshot, self.total, row.key if row else None)

    # --- worker results -------------------------------------------------------------------------------------------
    def on_event_list_first_page(self, message: FirstPage) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        self.snapshot = message.snapshot
        self._rows = dict(enumerate(message.rows))
        self.virtual_size = Size(0, len(message.rows) + 1)
        self.refresh()

    def on_event_list_counted(self, message: Counted) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        self.total = message.total
        self.hints = message.hints
        self.virtual_size = Size(0, self.total + 1)
        self.cursor = min(self.cursor, max(0, self.total - 1))
        self.refresh()
        self._post_status()

    def on_event_list_rows_loaded(self, message: RowsLoaded) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        self._pending = None
        for i, row in enumerate(message.rows):
            self._rows[message.start + i] = row
        self._trim()
        self.refresh()

    def on_event_list_updated(self, message: Updated) -> None:
        message.stop()
        if message.generation != self._generation or self.total is None:
            self.mirror.invalidate()  # the new query may have started before these events: look again
            return
        change = message.change
        old_cursor = self.cursor
        if change.in_place:
            shift = change.added_above
            if shift:
                self._rows = {r + shift: row for r, row in self._rows.items()}
            new_cursor = old_cursor + shift
        else:
            self._rows.clear()
            if change.selected_offset is not None:
                new_cursor = change.selected_offset
            else:
                new_cursor = min(old_cursor, max(0, change.total - 1))
            shift = new_cursor - old_cursor
        self._generation += 1
        self._pending = None
        self.snapshot = change.snapshot
        self.total = change.total
        self.virtual_size = Size(0, self.total + 1)
        if self.follow:
            self.cursor = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        else:
            self.cursor = new_cursor
            at_top = round(self.scroll_offset.y) == 0
            if at_top and change.in_place and new_cursor < self._page_rows():
                pass  # the new rows appear at the top; the selected event moves down with its row
            elif shift:
                self.scroll_to(y=self.scroll_offset.y + shift, animate=False, immediate=True)
                self.new_above += shift if change.in_place else 0
        self.refresh()
        self._post_status()

    # --- rendering -------------------------------------------------------------------------------------------------
    def _page_rows(self) -> int:
        """How many rows fit under the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            return self._header(width)
        index = round(self.scroll_offset.y) + y - 1
        known = self.total if self.total is not None else len(self._rows)
        if index >= known:
            if self.total == 0 and index <= len(self.hints):
                self._painted()
                style = self.get_component_rich_style("event-list--empty")
                line = "  No events match this filter." if index == 0 else "  " + self.hints[index - 1]
                return Strip([Segment(fit(line, width), style)], width)
            return Strip.blank(width, base)
        row = self._rows.get(index)
        if row is None:
            self._want_rows()
            style = self.get_component_rich_style("event-list--placeholder")
            if index == self.cursor:
                style += self.get_component_rich_style("event-list--cursor", partial=True)
            return Strip([Segment(fit("  …", width), style)], width)
        self._painted()
        return self._row_strip(row.event, width, index == self.cursor)

    def _painted(self) -> None:
        """Note the first frame that shows this generation's rows (bench/tui.py measures up to it)."""
        if self.painted_generation != self._generation:
            self.painted_generation = self._generation
            self.painted_at = time.perf_counter()

    def _header(self, width: int) -> Strip:
        cols = layout(width)
        text = (fit("Time (UTC)" if self.utc else "Time (local)", cols.time) + "   " + fit("User", cols.user) + " " + fit("Rack", cols.rack)
                + " " + fit("Category/action", cols.what) + " " + fit("Description", cols.description))
        return Strip([Segment(fit(text, width), self.get_component_rich_style("event-list--header"))], width)

    def _row_strip(self, event: Event, width: int, selected: bool) -> Strip:
        cols = layout(width)
        style = self.get_component_rich_style
        plain = self.rich_style
        outcome = style(f"event-list--{event.outcome}", default=plain)
        times = style("event-list--time")
        if selected:
            cursor = style("event-list--cursor")
            plain, times = plain + cursor, times + cursor
            outcome = outcome + Style(bgcolor=cursor.bgcolor, bold=cursor.bold)
        segments = [
            Segment(fit(format_time(event.timestamp, self.utc, cols.time < 19), cols.time), times),
            Segment(" ", plain),
            Segment(OUTCOME_MARKS.get(event.outcome, "?"), outcome),
            Segment(" " + fit(printable(event.actor), cols.user) + " " + fit(printable(event.rack), cols.rack) + " ",
                    plain),
            Segment(fit(f"{event.category}/{event.action}", cols.what),
                    plain if event.outcome == "succeeded" or selected else outcome),
            Segment(" " + fit(printable(event.description), cols.description), plain),
        ]
        return Strip(segments).adjust_cell_length(width, plain)

    # --- fetching --------------------------------------------------------------------------------------------------
    def _want_rows(self) -> None:
        if not self._request_scheduled:
            self._request_scheduled = True
            self.call_later(self._request_rows)

    def _request_rows(self) -> None:
        self._request_scheduled = False
        if self.snapshot is None:
            return
        known = self.total if self.total is not None else len(self._rows)
        first = round(self.scroll_offset.y)
        last = min(known, first + self._page_rows())
        missing = [r for r in range(first, last) if r not in self._rows]
        if not missing:
            return
        lo, hi = missing[0], missing[-1] + 1
        if self._pending and self._pending[0] == self._generation and self._pending[1] <= lo \
                and hi <= self._pending[2]:
            return  # already on its way
        if lo - 1 in self._rows:  # continue down from the row above
            start, end = lo, min(known, hi + FETCH_MARGIN)
            end = next((r for r in range(start, end) if r in self._rows), end)
            after_row, before_row = self._rows[lo - 1].key, None
        elif hi in self._rows:  # continue up from the row below
            start, end = max(0, lo - FETCH_MARGIN), hi
            start = next((r + 1 for r in range(end - 1, start - 1, -1) if r in self._rows), start)
            after_row, before_row = None, self._rows[hi].key
        else:
            start, end = max(0, lo - FETCH_MARGIN // 2), min(known, hi + FETCH_MARGIN // 2)
            after_row = before_row = None
        self._pending = (self._generation, start, end)
        self._fetch(self._generation, self.snapshot, start, end - start, after_row, before_row, self.total)

    def _trim(self) -> None:
        if len(self._rows) <= KEEP_MAX:
            return
        first = round(self.scroll_offset.y) - KEEP_MARGIN
        last = round(self.scroll_offset.y) + self._page_rows() + KEEP_MARGIN
        self._rows = {r: row for r, row in self._rows.items() if first <= r <= last}

    # --- cursor ----------------------------------------------------------------------------------------------------
    def _move_to(self, index: int) -> None:
        total = self.total if self.total is not None else len(self._rows)
        if total == 0:
            return
        index = max(0, min(total - 1, index))
        old, self.cursor = self.cursor, index
        if index != 0 and self.follow:
            self.follow = False
            self._post_status()
        top = round(self.scroll_offset.y)
        rows = self._page_rows()
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + rows:
            self.scroll_to(y=index - rows + 1, animate=False, immediate=True)
        self.refresh_lines(old + 1)
        self.refresh_lines(index + 1)

    def action_cursor_down(self) -> None:
        self._move_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self._move_to(self.cursor - 1)

    def action_page_down(self) -> None:
        rows = self._page_rows()
        self.scroll_to(y=round(self.scroll_offset.y) + rows, animate=False, immediate=True)
        self._move_to(self.cursor + rows)

    def action_page_up(self) -> None:
        rows = self._page_rows()
        self.scroll_to(y=round(self.scroll_offset.y) - rows, animate=False, immediate=True)
        self._move_to(self.cursor - rows)

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        if self.total is not None:
            self._move_to(self.total - 1)

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            self.post_message(self.Opened(row.event))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = round(self.scroll_offset.y) + offset.y - 1
        if self.total is not None and index < self.total:
            self._move_to(index)
            if event.chain >= 2:
                self.action_open()

    def _post_status(self) -> None:
        self.post_message(self.StatusChanged())
