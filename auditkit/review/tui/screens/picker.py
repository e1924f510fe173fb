"""The value pickers (user, rack, action, category): every value of that key within the current filter with its
count (the key's own terms left out, so several can be picked), narrowed by typing, several chosen at once.
Dismisses with the chosen values, or None when cancelled."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection
from textual.worker import get_current_worker

from auditkit import store
from auditkit.model.filters import Filter
from auditkit.model.safe_text import printable
from auditkit.review.tui.mirror import Cancelled
from auditkit.review.tui.widgets.text_input import TextInput

TITLES = {"user": "Users", "rack": "Racks", "action": "Actions", "category": "Categories"}


def option_label(value: str, count: int, width: int) -> Text:
    value = printable(value)
    text = Text(value)
    text.append(" " * max(1, width - len(value) + 1))
    text.append(f"{count:>9,}", style="dim")
    return text


class PickerScreen(ModalScreen[list[str] | None]):
    BINDINGS = [
        Binding("enter", "apply", "Apply", priority=True, tooltip="Apply the chosen values (Enter)"),
        Binding("escape,q", "cancel", "Cancel",
                tooltip="Close without changing the filter (q: when the list has focus)"),
        Binding("down", "to_list", "To list", show=False,
                tooltip="Move from the narrowing box to the list (then space toggles)"),
        Binding("ctrl+x", "clear", "Clear choice", show=False, tooltip="Un-choose every value"),
    ]

    def __init__(self, key: str, f: Filter, now: dt.datetime) -> None:
        super().__init__()
        self.key = key
        self.filter = f
        self.now = now
        self.counts: list[tuple[str, int]] | None = None
        self.chosen: set[str] = set(f.values(key))

    def compose(self) -> ComposeResult:
        scope = self.filter.without(self.key).to_text() or "all events"
        with Vertical(id="dialog", classes="picker"):
            yield Label(Text(f"{TITLES[self.key]} — counts within: {printable(scope)}"), id="picker-title")
            yield TextInput(placeholder="type to narrow", id="picker-narrow", compact=True)
            yield SelectionList[str](id="picker-list")
            yield Static("counting…", id="picker-hint")

    def on_mount(self) -> None:
        self.query_one("#picker-narrow", Input).focus()
        self._load()

    @work(thread=True, exclusive=True, group="picker", exit_on_error=False)
    def _load(self) -> None:
        worker = get_current_worker()
        mirror = self.app.mirror  # type: ignore[attr-defined]
        try:
            with mirror.reading(lambda: worker.is_cancelled) as conn:
                counts = store.value_counts(conn, self.key, self.filter, now=self.now, limit=10_000)
        except Cancelled:
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._loaded, counts)

    def _loaded(self, counts: list[tuple[str, int]]) -> None:
        present = {value for value, _ in counts}
        self.counts = counts + [(value, 0) for value in sorted(self.chosen - present)]
        self._fill()

    def _fill(self) -> None:
        if self.counts is None:
            return
        needle = self.query_one("#picker-narrow", Input).value.strip().lower()
        shown = [(v, c) for v, c in self.counts if needle in v.lower()]
        width = min(48, max((len(printable(v)) for v, _ in shown), default=0))
        choices = self.query_one("#picker-list", SelectionList)
        choices.clear_options()
        choices.add_options([Selection(option_label(v, c, width), v, v in self.chosen) for v, c in shown])
        self._fill_hint()

    def _fill_hint(self) -> None:
        if self.counts is None:
            return
        shown = self.query_one("#picker-list", SelectionList).option_count
        self.query_one("#picker-hint", Static).update(
            f"{shown} of {len(self.counts)} shown · {len(self.chosen)} chosen"
            " · ↓ list · space toggles · Enter applies · Esc cancels")

    @on(Input.Changed, "#picker-narrow")
    def _narrowed(self) -> None:
        self._fill()

    @on(SelectionList.SelectionToggled)
    def _toggled(self, event: SelectionList.SelectionToggled) -> None:
        value = event.selection.value
        if value in self.chosen:
            self.chosen.discard(value)
        else:
            self.chosen.add(value)
        self._fill_hint()

    def action_to_list(self) -> None:
        choices = self.query_one("#picker-list", SelectionList)
        if self.focused is not choices:
            choices.focus()
            if choices.option_count and choices.highlighted is None:
                choices.highlighted = 0
        else:
            choices.action_cursor_down()

    def action_clear(self) -> None:
        self.chosen.clear()
        self._fill()

    def action_apply(self) -> None:
        order = {value: i for i, (value, _) in enumerate(self.counts or [])}
        self.dismiss(sorted(self.chosen, key=lambda v: (order.get(v, len(order)), v)))

    def action_cancel(self) -> None:
        self.dismiss(None)
