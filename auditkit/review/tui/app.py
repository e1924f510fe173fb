"""The Textual app behind `auditkit tui`: opens the mirror read-only, shows the event list, names the sections of
the key list (`?`), and adds every screen's actions to the command palette (ctrl+p).

Everything that varies between runs comes in through the constructor, so tests can pin it: the clock (relative
filters such as since:7d are read against it), UTC or local times, the poll interval (None: no live updates) and
whether the cursor blinks.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from pathlib import Path
from typing import Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from auditkit.model.filters import Filter
from auditkit.review.tui.keys import KeySection, bindings, keys_text, what_it_does
from auditkit.review.tui.mirror import Mirror
from auditkit.review.tui.screens.detail import DetailScreen
from auditkit.review.tui.screens.events import EventsScreen
from auditkit.review.tui.screens.help import HelpScreen
from auditkit.review.tui.screens.picker import PickerScreen
from auditkit.review.tui.screens.share import ShareScreen
from auditkit.review.tui.screens.time_range import TimeRangeScreen
from auditkit.review.tui.widgets.event_list import EventList
from auditkit.review.tui.widgets.filter_bar import FilterBar
from auditkit.share.links import DEFAULT_BASE_URL


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def base_url_default() -> str:
    return os.environ.get("AUDITKIT_BASE_URL") or DEFAULT_BASE_URL


class AuditApp(App[None]):
    TITLE = "auditkit"
    CSS_PATH = "auditkit.tcss"
    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Quit auditkit"),
        Binding("question_mark", "help", "Keys", key_display="?", tooltip="List every key"),
    ]

    def __init__(self, db_path: str | Path, *, clock: Callable[[], dt.datetime] = utc_now, utc: bool = False,
                 poll_interval: float | None = 0.5, base_url: str | None = None, cursor_blink: bool = True,
                 initial_filter: Filter | None = None) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.clock = clock
        self.utc = utc
        self.poll_interval = poll_interval
        self.base_url = base_url or base_url_default()
        self.cursor_blink = cursor_blink
        self.initial_filter = initial_filter or Filter()
        self.mirror = Mirror(self.db_path)

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.push_screen(EventsScreen())

    def on_unmount(self) -> None:
        self.mirror.close()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(KEY_SECTIONS))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette finds every action of the screen it was opened on, by what it does."""
        yield from super().get_system_commands(screen)
        owners: list[tuple[object, type]] = [(screen, type(screen))]
        for widget in screen.query(EventList):
            owners.append((widget, EventList))
        owners.append((self, type(self)))
        for target, owner in owners:
            for binding in bindings(owner):
                if binding.action == "quit":
                    continue
                yield SystemCommand(what_it_does(binding), f"key: {keys_text(binding)}",
                                    functools.partial(self.run_action, binding.action, target))


# The key list (`?`), section by section: every screen's keys, whichever screen it is opened on.
KEY_SECTIONS = (
    KeySection("Event list", (EventList, EventsScreen)),
    KeySection("Filter bar", (FilterBar,),
               before=(("Enter", "Apply the filter (an error points at the bad token)"),)),
    KeySection("Pickers (u r a C)", (PickerScreen,), after=(("Space", "Toggle the highlighted value"),)),
    KeySection("Time range (t)", (TimeRangeScreen,)),
    KeySection("Detail (Enter)", (DetailScreen,)),
    KeySection("Share (s)", (ShareScreen,)),
    KeySection("Everywhere", (AuditApp,), after=(("Ctrl+P", "Command palette: find any action by name"),)),
)


def run(db_path: str | Path, *, base_url: str | None = None, utc: bool = False,
        initial_filter: Filter | None = None) -> None:
    AuditApp(db_path, base_url=base_url, utc=utc, initial_filter=initial_filter).run()
