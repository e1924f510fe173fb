"""The key list (`?`): every key of every screen, read from the screens' own bindings so it cannot drift."""

from __future__ import annotations

from typing import Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {
    "slash": "/", "question_mark": "?", "pagedown": "PgDn", "pageup": "PgUp", "home": "Home", "end": "End",
    "enter": "Enter", "escape": "Esc", "space": "Space", "down": "↓", "up": "↑", "left": "←", "right": "→",
    "tab": "Tab",
}


def key_name(key: str) -> str:
    if key in KEY_NAMES:
        return KEY_NAMES[key]
    if key.startswith("ctrl+"):
        return "Ctrl+" + key_name(key[5:]).upper()
    return key


def keys_text(binding: Binding) -> str:
    return " ".join(key_name(k.strip()) for k in binding.key.split(","))


def describe(owner: type, binding: Binding) -> str:
    helps = getattr(owner, "KEY_HELP", {})
    return helps.get(binding.action, binding.description)


def rows(owner: type) -> Iterable[tuple[str, str]]:
    for binding in owner.BINDINGS:  # type: ignore[attr-defined]
        if isinstance(binding, Binding):
            yield keys_text(binding), describe(owner, binding)


def sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(keys, what they do)]) for every screen of the TUI."""
    from auditkit.review.tui.app import AuditApp
    from auditkit.review.tui.widgets.event_list import EventList
    from auditkit.review.tui.widgets.filter_bar import FilterBar
    from auditkit.review.tui.screens.detail import DetailScreen
    from auditkit.review.tui.screens.events import EventsScreen
    from auditkit.review.tui.screens.picker import PickerScreen
    from auditkit.review.tui.screens.share import ShareScreen
    from auditkit.review.tui.screens.time_range import TimeRangeScreen

    return [
        ("Event list", list(rows(EventList)) + list(rows(EventsScreen))),
        ("Filter bar", [("Enter", "Apply the filter (an error points at the bad token)")] + list(rows(FilterBar))),
        ("Pickers (u r a C)", list(rows(PickerScreen)) + [("Space", "Toggle the highlighted value")]),
        ("Time range (t)", list(rows(TimeRangeScreen))),
        ("Detail (Enter)", list(rows(DetailScreen))),
        ("Share (s)", list(rows(ShareScreen))),
        ("Everywhere", list(rows(AuditApp)) + [("Ctrl+P", "Command palette: find any action by name")]),
    ]


def help_renderable() -> Group:
    parts = []
    for title, entries in sections():
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True, min_width=18)
        table.add_column()
        for keys, what in entries:
            table.add_row(keys, what)
        parts += [Text(title, style="bold underline"), table, Text("")]
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close"),
        Binding("j,down", "scroll('down')", "Down", show=False),
        Binding("k,up", "scroll('up')", "Up", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="help"):
            yield Static(Text.assemble(("Keys", "bold"), ("  (Esc closes)", "dim")), id="help-title")
            yield Static(help_renderable(), id="help-body")

    def on_mount(self) -> None:
        self.query_one("#dialog").focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#dialog", VerticalScroll)
        body.scroll_down(animate=False) if direction == "down" else body.scroll_up(animate=False)
