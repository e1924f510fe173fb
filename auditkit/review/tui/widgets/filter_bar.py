"""The filter bar: the active filter as text, edited in place with the filter language (`/` or `f`), and an
inline error pointing at the offending token when the text does not parse."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static

from auditkit.errors import FilterError
from auditkit.model.filters import Filter, parse
from auditkit.model.safe_text import printable
from auditkit.review.tui.widgets.text_input import TextInput

PLACEHOLDER = "all events — press / to filter: user:… rack:… action:… category:… since:7d text"


class FilterBar(Vertical):
    """Posts Applied with the parsed filter on Enter, Cancelled on Escape (the text reverts)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel edit", show=False,
                        tooltip="Revert to the active filter and go back to the list")]

    class Applied(Message):
        def __init__(self, f: Filter) -> None:
            super().__init__()
            self.filter = f

    class Cancelled(Message):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.filter = Filter()
        self.error: FilterError | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="filter-row"):
            yield Label("Filter ", id="filter-label")
            yield TextInput(placeholder=PLACEHOLDER, id="filter-input", select_on_focus=False)
        yield Static("", id="filter-error")

    @property
    def input(self) -> Input:
        return self.query_one("#filter-input", Input)

    def set_filter(self, f: Filter) -> None:
        """Show `f` as the active filter (and drop any error)."""
        self.filter = f
        self.input.value = f.to_text()
        self.input.cursor_position = len(self.input.value)
        self._show_error(None)

    def edit(self) -> None:
        self.input.focus()
        self.input.cursor_position = len(self.input.value)

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            f = parse(event.value)
        except FilterError as e:
            self._show_error(e)
            return
        self.filter = f
        self._show_error(None)
        self.post_message(self.Applied(f))

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.error is not None:
            self._show_error(None)

    def action_cancel(self) -> None:
        self.set_filter(self.filter)
        self.post_message(self.Cancelled())

    def _show_error(self, error: FilterError | None) -> None:
        self.error = error
        box = self.query_one("#filter-error", Static)
        box.set_class(error is not None, "-error")
        if error is None:
            box.update("")
            return
        text = Text()
        if error.position is not None:
            indent = self.input.content_region.x - box.content_region.x - round(self.input.scroll_offset.x)
            text.append(" " * max(0, indent + error.position))
            text.append("^" * max(1, len(error.token)), style="bold")
            text.append(" ")
        text.append(printable(error.reason))
        box.update(text)
