"""The detail of one event: every field, its details JSON pretty-printed, its chain status (this event verified
against its neighbours, store.chain_status) and its recording, with `r` to replay it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.model.events import FIELDS, Event, parse_timestamp
from auditkit.model.safe_text import printable, printable_lines
from auditkit.review.tui.mirror import Cancelled
from auditkit.review.tui.widgets.event_list import OUTCOME_MARKS, format_time

OUTCOME_STYLES = {"succeeded": "green", "failed": "red", "denied": "magenta", "unknown": "yellow"}


@dataclasses.dataclass(frozen=True)
class DetailFacts:
    """What the detail screen reads from the mirror beside the event itself."""

    chain: store.ChainStatus | None
    session: dict[str, Any] | None
    markers: list[tuple[float, str]]


def load_facts(conn: Any, event: Event) -> DetailFacts:
    chain = store.chain_status(conn, event.id)
    session = store.get_session(conn, event.session_id) if event.session_id else None
    markers: list[tuple[float, str]] = []
    if event.session_id:
        start = session.get("started_at") if session else None
        origin = parse_timestamp(start) if start else parse_timestamp(event.timestamp)
        for linked in store.session_events(conn, event.session_id):
            seconds = max(0.0, (parse_timestamp(linked.timestamp) - origin).total_seconds())
            markers.append((seconds, f"{linked.category}/{linked.action}: {linked.description}"))
    return DetailFacts(chain, session, markers)


def fields_table(event: Event, utc: bool) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=11)
    table.add_column(overflow="fold")
    for name in FIELDS:
        if name == "details":
            continue
        value = getattr(event, name)
        if value is None:
            shown = Text("—", style="dim")
        elif name == "timestamp":
            shown = Text(value)
            if not utc:
                shown.append(f"  ({format_time(value, False, False)} local)", style="dim")
        elif name == "outcome":
            shown = Text(f"{OUTCOME_MARKS.get(value, '?')} {value}", style=OUTCOME_STYLES.get(value, ""))
        else:
            shown = Text(printable(str(value)))
        table.add_row(name, shown)
    return table


def chain_summary(facts: DetailFacts | None) -> Text:
    if facts is None:
        return Text("checking…", style="dim")
    status = facts.chain
    if status is None:
        return Text("this event is no longer in the mirror", style="red")
    text = Text()
    if status.ok:
        text.append("✓ intact", style="bold green")
    else:
        count = len(status.problems)
        text.append(f"✗ {count} problem{'s' if count > 1 else ''} (below)", style="bold red")
    text.append(f" — {status.source} seq {status.seq}")
    return text


def chain_checks(facts: DetailFacts | None) -> Text:
    text = Text()
    if facts is None or facts.chain is None:
        return text
    for problem in facts.chain.problems:
        text.append(f"✗ {problem}\n", style="red")
    for check in facts.chain.checks:
        text.append(f"✓ {check}\n", style="green")
    text.rstrip()
    return text


def recording_summary(event: Event, facts: DetailFacts | None) -> Text:
    if not event.session_id:
        return Text("none", style="dim")
    if facts is None:
        return Text("looking…", style="dim")
    session = facts.session
    if session is None:
        return Text(f"{event.session_id}: not in this mirror", style="yellow")
    text = Text()
    seconds = (session.get("duration_ms") or 0) / 1000
    size = f"{session.get('width')}×{session.get('height')}" if session.get("width") else "size unknown"
    text.append(f"{seconds:,.1f} s, {size}, {session['size']:,} bytes")
    if session.get("command"):
        text.append(f", `{printable(session['command'])}`")
    if session.get("exit_code") is not None:
        text.append(f", exit {session['exit_code']}")
    if session.get("truncated"):
        text.append(" (truncated)", style="yellow")
    text.append(" — ")
    text.append("r replays it", style="bold")
    return text


def summary_table(event: Event, facts: DetailFacts | None) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True, min_width=11)
    table.add_column(overflow="fold")
    table.add_row("chain", chain_summary(facts))
    table.add_row("recording", recording_summary(event, facts))
    return table


class DetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "back", "Back", tooltip="Back to the event list"),
        Binding("r", "replay", "Replay", tooltip="Replay this event's recorded session"),
        Binding("j,down", "scroll('down')", "Down", show=False, tooltip="Scroll down"),
        Binding("k,up", "scroll('up')", "Up", show=False, tooltip="Scroll up"),
    ]

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event
        self.facts: DetailFacts | None = None

    def compose(self) -> ComposeResult:
        event = self.event
        title = Text()
        title.append(f"{event.category}/{event.action}", style="bold")
        title.append(f"  {printable(event.description)}")
        yield Static(title, id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-summary")
            yield Static(id="detail-fields")
            yield Static(id="detail-details")
            yield Static(id="detail-chain")
        yield Footer()

    def on_mount(self) -> None:
        utc = bool(getattr(self.app, "utc", True))
        self.query_one("#detail-fields", Static).update(fields_table(self.event, utc))
        details = printable_lines(json.dumps(self.event.details, indent=2, sort_keys=True, ensure_ascii=False))
        self.query_one("#detail-details", Static).update(Group(
            Text("details", style="bold"),
            Syntax(details, "json", theme="ansi_dark", word_wrap=True, background_color="default"),
        ))
        self._show()
        self.query_one("#detail-body").focus()
        self._load()

    def _show(self) -> None:
        self.query_one("#detail-summary", Static).update(summary_table(self.event, self.facts))
        self.query_one("#detail-chain", Static).update(
            Group(Text("chain checks", style="bold"), chain_checks(self.facts) or Text("…", style="dim")))

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _load(self) -> None:
        worker = get_current_worker()
        mirror = self.app.mirror  # type: ignore[attr-defined]
        try:
            with mirror.reading(lambda: worker.is_cancelled) as conn:
                facts = load_facts(conn, self.event)
        except Cancelled:
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._loaded, facts)

    def _loaded(self, facts: DetailFacts) -> None:
        self.facts = facts
        self._show()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#detail-body", VerticalScroll)
        if direction == "down":
            body.scroll_down(animate=False)
        else:
            body.scroll_up(animate=False)

    def action_replay(self) -> None:
        event = self.event
        if not event.session_id:
            self.notify("This event has no recorded session.", severity="warning")
            return
        if self.facts is not None and self.facts.session is None:
            self.notify("Its recording is not in this mirror.", severity="warning")
            return
        self._load_recording()

    @work(thread=True, exclusive=True, group="detail-recording", exit_on_error=False)
    def _load_recording(self) -> None:
        # Lazy: pyte and the replay engine load on the first replay, not when the TUI starts.
        from auditkit.review.replay import open_session

        worker = get_current_worker()
        mirror = self.app.mirror  # type: ignore[attr-defined]
        try:
            with mirror.reading(lambda: worker.is_cancelled) as conn:
                facts = self.facts or load_facts(conn, self.event)
                # checked against the sha256 the mirror and its events recorded; its index cached under it
                session = open_session(conn, self.event.session_id or "")
        except Cancelled:
            return
        except (AuditkitError, ValueError) as e:  # not in the mirror, unreadable, or not the bytes recorded
            self.app.call_from_thread(self.notify, printable(f"cannot replay this recording: {e}"), severity="error",
                                      markup=False)
            return
        if worker.is_cancelled:
            return
        self.app.call_from_thread(self._open_replay, session.recording, facts.markers)

    def _open_replay(self, recording: Any, markers: list[tuple[float, str]]) -> None:
        from auditkit.review.tui.screens.replay import ReplayScreen

        event = self.event
        title = f"{event.actor} · {event.rack} · {event.description}"
        screen = ReplayScreen(recording, title=title, event_markers=markers)
        self.app.push_screen(screen)
