"""The main screen: the filter bar, the event list and a status line (the active filter as text, its number of
matches, time zone, live/follow state). Its keys open the pickers, the time range, the detail and the share dialog."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from auditkit.model.filters import TIME_KEYS, Filter
from auditkit.model.safe_text import printable
from auditkit.review.tui.screens.detail import DetailScreen
from auditkit.review.tui.screens.picker import PickerScreen
from auditkit.review.tui.screens.share import ShareScreen
from auditkit.review.tui.screens.time_range import TimeRangeScreen
from auditkit.review.tui.widgets.event_list import EventList, local_zone_name
from auditkit.review.tui.widgets.filter_bar import FilterBar

PICKER_KEYS = {"user": "Users", "rack": "Racks", "action": "Actions", "category": "Categories"}


class EventsScreen(Screen[None]):
    AUTO_FOCUS = "EventList"
    BINDINGS = [
        Binding("slash,f", "edit_filter", "Filter", key_display="/",
                tooltip="Edit the filter (filter language; Enter applies, Esc reverts)"),
        Binding("u", "pick('user')", "User", tooltip="Pick users (counts within the current filter)"),
        Binding("r", "pick('rack')", "Rack", tooltip="Pick racks (counts within the current filter)"),
        Binding("a", "pick('action')", "Action", tooltip="Pick actions (counts within the current filter)"),
        Binding("C", "pick('category')", "Category", show=False,
                tooltip="Pick categories (counts within the current filter)"),
        Binding("t", "time_range", "Time",
                tooltip="Time range: last 1h, 24h, 7d, 30d, all time or a custom since/until"),
        Binding("c", "clear_filter", "Clear", show=False, tooltip="Clear the filter (all events)"),
        Binding("z", "toggle_utc", "UTC/local", show=False, tooltip="Show times in UTC or local time"),
        Binding("F", "toggle_follow", "Follow", show=False,
                tooltip="Follow mode: keep the newest event selected as events arrive"),
        Binding("s", "share", "Share", tooltip="Share the current filter and time range as a signed link"),
        Binding("R", "reload", "Reload", show=False, tooltip="Re-run the query"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status_line = Static("", id="status")

    def compose(self) -> ComposeResult:
        app = self.app
        yield FilterBar(id="filter-bar")
        yield EventList(app.mirror, clock=app.clock, utc=app.utc, poll_interval=app.poll_interval,  # type: ignore[attr-defined]
                        id="events")
        yield self.status_line
        yield Footer()

    @property
    def event_list(self) -> EventList:
        return self.query_one(EventList)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    @property
    def filter(self) -> Filter:
        return self.event_list.filter

    def on_mount(self) -> None:
        initial = self.app.initial_filter  # type: ignore[attr-defined]
        self.filter_bar.set_filter(initial)
        self.event_list.focus()
        self.event_list.show(initial)

    def apply_filter(self, f: Filter) -> None:
        """Show the events matching `f` (the filter bar, pickers and time presets all end here)."""
        self.filter_bar.set_filter(f)
        self.event_list.show(f)

    # --- messages -------------------------------------------------------------------------------------------------
    @on(FilterBar.Applied)
    def _applied(self, message: FilterBar.Applied) -> None:
        self.event_list.focus()
        if message.filter != self.filter:
            self.event_list.show(message.filter)

    @on(FilterBar.Cancelled)
    def _cancelled(self) -> None:
        self.event_list.focus()

    @on(EventList.StatusChanged)
    def _status(self) -> None:
        self.status_line.update(self.status_text())

    @on(EventList.Opened)
    def _opened(self, message: EventList.Opened) -> None:
        self.app.push_screen(DetailScreen(message.event))

    def status_text(self) -> Text:
        events = self.event_list
        text = Text()
        if events.total is None:
            text.append("counting…", style="bold")
        else:
            text.append(f"{events.total:,}", style="bold")
            text.append(" match" if events.total == 1 else " matches")
        text.append(" for ")
        text.append(printable(events.filter.to_text()) or "all events", style="italic")
        text.append("  ·  ")
        text.append("UTC" if events.utc else f"local time ({local_zone_name()})")
        if events.follow:
            text.append("  ·  ")
            text.append("following newest", style="bold")
        if events.new_above:
            text.append("  ·  ")
            text.append(f"↑ {events.new_above:,} new", style="bold")
        return text

    # --- actions --------------------------------------------------------------------------------------------------
    def action_edit_filter(self) -> None:
        self.filter_bar.edit()

    def action_clear_filter(self) -> None:
        if not self.filter.is_empty:
            self.apply_filter(Filter())

    def action_reload(self) -> None:
        self.event_list.reload()

    def action_toggle_utc(self) -> None:
        self.event_list.set_utc(not self.event_list.utc)
        self._status()

    def action_toggle_follow(self) -> None:
        self.event_list.set_follow(not self.event_list.follow)

    def action_pick(self, key: str) -> None:
        current = self.filter

        def done(values: list[str] | None) -> None:
            if values is not None:
                self.apply_filter(current.with_values(key, values))

        self.app.push_screen(PickerScreen(key, current, self.event_list.snapshot_now()), done)

    def action_time_range(self) -> None:
        current = self.filter

        def done(bounds: tuple[str | None, str | None] | None) -> None:
            if bounds is None:
                return
            since, until = bounds
            f = current.without(*TIME_KEYS)
            if since:
                f = f.with_values("since", [since])
            if until:
                f = f.with_values("until", [until])
            self.apply_filter(f)

        self.app.push_screen(TimeRangeScreen(current.since, current.until), done)

    def action_share(self) -> None:
        self.app.push_screen(ShareScreen(self.filter))
