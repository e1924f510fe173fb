"""The key list (`?`): the sections the app that opens it names, each walked through its screens' and widgets' own
Bindings (so the list cannot drift from the keys), drawn as one scrolling table."""

from __future__ import annotations

from typing import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from auditkit.review.tui.keys import KeySection, listing


def help_renderable(sections: Sequence[KeySection]) -> Group:
    parts = []
    for title, entries in listing(sections):
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

    def __init__(self, sections: Sequence[KeySection]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="help"):
            yield Static(Text.assemble(("Keys", "bold"), ("  (Esc closes)", "dim")), id="help-title")
            yield Static(help_renderable(self.sections), id="help-body")

    def on_mount(self) -> None:
        self.query_one("#dialog").focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#dialog", VerticalScroll)
        body.scroll_down(animate=False) if direction == "down" else body.scroll_up(animate=False)
