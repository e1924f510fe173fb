"""The share dialog: a signed, expiring link (auditkit.share.links) to the events of the current filter and time range,
with an expiry (1 day, 7 days, 30 days, a date, never) and a note; shows how many events match, and the URL once
made. One dialog makes one link: pressing Ctrl+S again says where the link is instead of making a second."""

from __future__ import annotations

import datetime as dt
import sqlite3

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.model.filters import TIME_KEYS, Filter
from auditkit.model.safe_text import printable
from auditkit.review.tui.widgets.text_input import TextInput

from auditkit.share import links as sharing

EXPIRIES: list[tuple[str, str]] = [("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days"), ("date", "a date"),
                                   ("never", "never")]
DEFAULT_EXPIRY = "7d"


def range_text(f: Filter, now: dt.datetime) -> str:
    """The range the link will have, in the words the link's pages and `share list` use for it."""
    try:
        return sharing.filter_range_text(f, now)
    except AuditkitError as e:
        return str(e)


class ShareScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "close", "Close", tooltip="Close the dialog"),
        Binding("ctrl+s", "create", "Create link", tooltip="Create the link"),
        Binding("ctrl+y", "copy", "Copy URL", tooltip="Copy the link's URL to the clipboard"),
    ]

    def __init__(self, f: Filter) -> None:
        super().__init__()
        self.filter = f
        self.url: str | None = None
        self.creating = False

    def compose(self) -> ComposeResult:
        now = self.app.clock()  # type: ignore[attr-defined]
        scope = self.filter.without(*TIME_KEYS).to_text() or "all events"
        with Vertical(id="dialog", classes="share"):
            yield Label("Share a link to these events", id="share-title")
            yield Static(Text.assemble(("Filter  ", "bold"), printable(scope)), id="share-filter")
            yield Static(Text.assemble(("Range   ", "bold"), range_text(self.filter, now)), id="share-range")
            yield Static(Text.assemble(("Matches ", "bold"), ("counting…", "dim")), id="share-count")
            yield Label("Expires", classes="share-label")
            with RadioSet(id="share-expiry"):
                for value, label in EXPIRIES:
                    yield RadioButton(label, value=value == DEFAULT_EXPIRY, id=f"expiry-{value}")
            yield TextInput(placeholder="YYYY-MM-DD (the link works through that UTC day)", id="share-date",
                            disabled=True, compact=True)
            yield Label("Note", classes="share-label")
            yield TextInput(placeholder="optional: who it is for, why", id="share-note", compact=True)
            with Horizontal(id="share-buttons"):
                yield Button("Create link", id="share-create", variant="primary", compact=True)
                yield Button("Close", id="share-close", compact=True)
            yield Static("", id="share-result")

    def on_mount(self) -> None:
        self.query_one("#share-expiry", RadioSet).focus()
        self._count(self.app.clock())  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="share-count", exit_on_error=False)
    def _count(self, now: dt.datetime) -> None:
        """How many events the link will show (the filter and range as the link fixes them now)."""
        app = self.app
        try:
            with app.mirror.reading() as conn:  # type: ignore[attr-defined]
                total = store.count(conn, self.filter, now=now)
        except (AuditkitError, sqlite3.Error) as e:
            app.call_from_thread(self._counted, Text(str(e), style="red"))
            return
        app.call_from_thread(self._counted, Text(f"{total:,} event{'' if total == 1 else 's'}"))

    def _counted(self, text: Text) -> None:
        self.query_one("#share-count", Static).update(Text.assemble(("Matches ", "bold"), text))

    def expiry(self) -> str:
        pressed = self.query_one("#share-expiry", RadioSet).pressed_button
        value = (pressed.id or "").removeprefix("expiry-") if pressed else DEFAULT_EXPIRY
        if value == "date":
            return self.query_one("#share-date", Input).value.strip()
        return value

    @on(RadioSet.Changed, "#share-expiry")
    def _expiry_changed(self, event: RadioSet.Changed) -> None:
        date = self.query_one("#share-date", Input)
        date.disabled = event.pressed.id != "expiry-date"
        if not date.disabled:
            date.focus()

    @on(Button.Pressed, "#share-create")
    def _create_pressed(self) -> None:
        self.action_create()

    @on(Button.Pressed, "#share-close")
    def _close_pressed(self) -> None:
        self.action_close()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_create()

    def action_create(self) -> None:
        if self.url is not None or self.creating:
            # A second Ctrl+S (or Enter) would make a second, identical live link.
            self.notify("This dialog made its link already (ctrl+y copies it); close it and press s for another.",
                        severity="warning")
            return
        result = self.query_one("#share-result", Static)
        expires = self.expiry()
        if not expires:
            result.update(Text("give the date the link expires (YYYY-MM-DD)", style="red"))
            return
        note = self.query_one("#share-note", Input).value
        result.update(Text("creating…", style="dim"))
        self.creating = True
        self._create(expires, note)

    @work(thread=True, exclusive=True, group="share", exit_on_error=False)
    def _create(self, expires: str, note: str) -> None:
        app = self.app
        try:
            conn = store.open_db(app.db_path)  # type: ignore[attr-defined]
            try:
                _, url = sharing.create(
                    conn, self.filter, secret=sharing.secret_for(app.db_path),  # type: ignore[attr-defined]
                    expires=expires, since=None, until=None, note=note or None, created_by=sharing.default_creator(),
                    base_url=app.base_url, now=app.clock())  # type: ignore[attr-defined]
            finally:
                conn.close()
        except AuditkitError as e:
            app.call_from_thread(self._failed, str(e))
            return
        app.call_from_thread(self._created, url)

    def _failed(self, message: str) -> None:
        self.creating = False
        self.query_one("#share-result", Static).update(Text(printable(message), style="red"))

    def _created(self, url: str) -> None:
        self.creating = False
        self.url = url
        self.query_one("#share-create", Button).disabled = True
        text = Text()
        text.append("Link created", style="bold green")
        text.append(" (ctrl+y copies it):\n")
        text.append(url, style="bold")
        self.query_one("#share-result", Static).update(text)

    def action_copy(self) -> None:
        if self.url is None:
            self.notify("Create the link first.", severity="warning")
            return
        self.app.copy_to_clipboard(self.url)
        self.notify("Copied the link's URL.")

    def action_close(self) -> None:
        self.dismiss(None)
