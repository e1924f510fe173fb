"""The time range dialog: presets (last hour, 24 hours, 7 days, 30 days, all time) or a custom since/until in the
filter language's time forms. Dismisses with (since, until) — either may be None — or None when cancelled."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from auditkit.errors import FilterError
from auditkit.model.filters import Filter
from auditkit.model.safe_text import printable
from auditkit.review.tui.widgets.text_input import TextInput

PRESETS: list[tuple[str, str, str | None]] = [
    ("1", "Last hour", "1h"),
    ("2", "Last 24 hours", "24h"),
    ("3", "Last 7 days", "7d"),
    ("4", "Last 30 days", "30d"),
    ("0", "All time", None),
]


class TimeRangeScreen(ModalScreen[tuple[str | None, str | None] | None]):
    BINDINGS = [
        Binding("escape,q", "cancel", "Cancel", tooltip="Close without changing the time range"),
        Binding("1", "preset('1h')", "Last hour", show=False, tooltip="Last hour (since:1h)"),
        Binding("2", "preset('24h')", "Last 24 hours", show=False, tooltip="Last 24 hours (since:24h)"),
        Binding("3", "preset('7d')", "Last 7 days", show=False, tooltip="Last 7 days (since:7d)"),
        Binding("4", "preset('30d')", "Last 30 days", show=False, tooltip="Last 30 days (since:30d)"),
        Binding("0", "preset('')", "All time", show=False, tooltip="All time (no since/until)"),
        Binding("c", "custom", "Custom range", show=False,
                tooltip="Custom since/until (2026-11-01, 2026-11-01T09:30, 90m, 12h, 7d, 2w); Enter applies"),
    ]

    def __init__(self, since: str | None, until: str | None) -> None:
        super().__init__()
        self.since = since
        self.until = until

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="time-range"):
            yield Label("Time range", id="time-title")
            yield OptionList(
                *[Option(f"{key}  {label}", id=value or "all") for key, label, value in PRESETS],
                Option("c  Custom since / until…", id="custom"),
                id="time-presets",
            )
            with Horizontal(classes="time-field"):
                yield Label("since ", classes="time-label")
                yield TextInput(self.since or "", placeholder="e.g. 2026-11-01 or 7d", id="time-since",
                                compact=True)
            with Horizontal(classes="time-field"):
                yield Label("until ", classes="time-label")
                yield TextInput(self.until or "", placeholder="e.g. 2026-11-20 (open: empty)",
                                id="time-until", compact=True)
            yield Static("", id="time-error")

    def on_mount(self) -> None:
        self.query_one("#time-presets", OptionList).focus()

    @on(OptionList.OptionSelected, "#time-presets")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        choice = event.option.id
        if choice == "custom":
            self.action_custom()
        else:
            self.action_preset("" if choice == "all" else str(choice))

    def action_preset(self, value: str) -> None:
        self.dismiss((value or None, None))

    def action_custom(self) -> None:
        self.query_one("#time-since", Input).focus()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        since = self.query_one("#time-since", Input).value.strip() or None
        until = self.query_one("#time-until", Input).value.strip() or None
        try:
            f = Filter()
            if since:
                f = f.with_values("since", [since])
            if until:
                f = f.with_values("until", [until])
        except FilterError as e:
            self.query_one("#time-error", Static).update(Text(printable(e.reason)))
            return
        self.dismiss((since, until))

    def action_cancel(self) -> None:
        self.dismiss(None)
