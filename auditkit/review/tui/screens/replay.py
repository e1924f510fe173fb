"""ReplayScreen: plays a recorded terminal session (auditkit.review.replay) with asciinema's keys: play/pause, seek,
jumps by percent, speed, frame steps, idle skip, markers (command boundaries and the session's gateway events), search
in the text of the whole recording, and a timeline. ReplayApp shows it alone (`auditkit replay`).

Playback follows a clock (injectable, so tests are deterministic): the playhead is anchor + (clock - anchor clock) ×
speed on the playback timeline (pauses capped at 2 s when idle skip is on), sampled 30 times a second. The index
(keyframes, markers, search text) is built in a thread worker; until it covers a place, a jump there that would
mean replaying a lot of output waits for it instead of freezing the screen.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from auditkit.model.safe_text import printable
from auditkit.review import replay
from auditkit.review.tui.keys import KeySection
from auditkit.review.tui.screens.help import HelpScreen
from auditkit.review.tui.widgets.replay_terminal import TerminalView
from auditkit.review.tui.widgets.replay_timeline import TimelineBar

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
SEEK_STEP = 5.0
FPS = 30
# A seek that would feed more output than this waits for the index instead of freezing the screen (bench/RESULTS.md
# has the feed rate it was chosen for).
SEEK_BUDGET = 256 * 1024


class ReplayScreen(Screen[None]):
    """A recording, played at its own terminal size, centred (cropped around the cursor on a smaller terminal)."""

    AUTO_FOCUS = ""  # nothing takes keys until `/` opens the search box (None would mean the app's "*")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_play", "Play / pause", id="replay.play"),
        Binding("left", "seek_by(-5)", "Back 5 s", id="replay.back"),
        Binding("right", "seek_by(5)", "Forward 5 s", id="replay.forward"),
        Binding("0,1,2,3,4,5,6,7,8,9", "jump_digit", "Jump to 0–90 %", id="replay.jump-percent"),
        Binding("home", "jump(0)", "Start", id="replay.start"),
        Binding("end", "jump(1)", "End", id="replay.end"),
        Binding("less_than_sign", "speed(-1)", "Slower", id="replay.slower"),
        Binding("greater_than_sign", "speed(1)", "Faster", id="replay.faster"),
        Binding("full_stop", "step(1)", "Step a frame", id="replay.step"),
        Binding("comma", "step(-1)", "Step back", id="replay.step-back"),
        Binding("i", "toggle_idle", "Idle skip", id="replay.idle-skip"),
        Binding("left_square_bracket", "marker(-1)", "Previous marker", id="replay.previous-marker"),
        Binding("right_square_bracket", "marker(1)", "Next marker", id="replay.next-marker"),
        Binding("slash", "search", "Search", id="replay.search"),
        Binding("n", "match(1)", "Next match", id="replay.next-match"),
        Binding("N", "match(-1)", "Previous match", id="replay.previous-match"),
        Binding("question_mark", "help", "Keys", id="replay.keys"),
        Binding("q,escape", "close", "Close", id="replay.close"),
    ]

    DEFAULT_CSS = """
    ReplayScreen {
        layout: vertical;
        background: $surface;
        #replay-stage { height: 1fr; width: 1fr; align: center middle; }
        #replay-stage > TerminalView { max-width: 100%; max-height: 100%; }
        #replay-status { height: 1; width: 1fr; background: $panel; color: $foreground; padding: 0 1; }
        #replay-search { dock: bottom; height: 1; border: none; padding: 0 1; display: none; }
        &.-searching #replay-search { display: block; }
        &.-searching #replay-status { display: none; }
    }
    """

    @dataclass
    class IndexProgress(Message):
        fraction: float

    class IndexReady(Message):
        pass

    @dataclass
    class SearchDone(Message):
        query: str
        matches: list[replay.Match]

    def __init__(self, recording: replay.Recording, *, title: str,
                 event_markers: Sequence[tuple[float, str]] = (), autoplay: bool = True,
                 clock: Callable[[], float] = time.monotonic, name: str | None = None, id: str | None = None):
        super().__init__(name=name, id=id)
        self.recording = recording
        self.replay_title = title
        self.event_markers = replay.events_as_markers(event_markers)
        self.clock = clock
        self.autoplay = autoplay
        self.player = replay.Player(recording)
        self.idle_skip = True
        self.timeline = replay.Timeline(recording, replay.IDLE_LIMIT)
        self.speed = 1.0
        self.playing = False
        self.play_time = 0.0  # the playhead on the playback timeline
        self.rec_time = 0.0  # the same moment in recording time
        self._anchor = (0.0, 0.0)  # (clock, play_time) when playback (re)started
        self.markers: list[replay.Marker] = sorted(recording.markers + self.event_markers)
        self.query_text = ""
        self.matches: list[replay.Match] = []
        self.match_index: int | None = None
        self.highlight: tuple[int, int, int] | None = None
        self.message = ""
        self.indexing: float | None = None if recording.indexed else 0.0
        self._pending: int | None = None  # the frame position of a seek waiting for the index
        self._ticks: tuple | None = None  # (timeline, markers, the markers' places on that timeline)
        self._digit = 0
        self._timer = None

    # -- layout ------------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Container(id="replay-stage"):
            yield TerminalView(self.recording.width, self.recording.height)
        yield TimelineBar(id="replay-timeline")
        yield Static(id="replay-status")
        yield Input(placeholder="search the recording (Enter: find, Esc: cancel)", id="replay-search")

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = False
        self._timer = self.set_interval(1 / FPS, self._tick, pause=True)
        self._show(force=True)
        if not self.recording.indexed:
            self._build_index()
        if self.autoplay:
            self._play()

    # -- the index, built off the UI thread --------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="replay-index", exit_on_error=False)
    def _build_index(self) -> None:
        worker = get_current_worker()
        last = [-1.0]

        def progress(fraction: float) -> None:
            if fraction - last[0] >= 0.02:
                last[0] = fraction
                self.post_message(self.IndexProgress(fraction))

        if self.recording.build_index(progress=progress, cancelled=lambda: worker.is_cancelled):
            self.post_message(self.IndexReady())

    @on(IndexProgress)
    def _on_index_progress(self, message: IndexProgress) -> None:
        if not self.recording.indexed:
            self.indexing = message.fraction
        self._retry_pending()
        self._update_status()

    @on(IndexReady)
    def _on_index_ready(self) -> None:
        self.indexing = None
        self.markers = sorted(self.recording.markers + self.event_markers)
        self._retry_pending()
        self._update_bars()

    # -- moving the playhead ----------------------------------------------------------------------------------------

    def _goto(self, play_time: float, *, position: int | None = None, rec_time: float | None = None) -> None:
        """Put the playhead at play_time (or at an exact frame position and its recording time)."""
        self.play_time = max(0.0, min(play_time, self.timeline.duration))
        if self.playing:
            self._anchor = (self.clock(), self.play_time)
        self.rec_time = self.timeline.to_recording(self.play_time) if rec_time is None else rec_time
        target = self.recording.position_at(self.rec_time) if position is None else position
        if target == self.player.position:
            self._pending = None
            self._show()
            return
        if not self.recording.indexed and self.player.seek_cost(target) > SEEK_BUDGET:
            if self.playing:
                self._pause()
            self._pending = target  # replaying that much now would freeze the screen: wait for the index
            self._update_bars()
            return
        self._pending = None
        self.player.seek_position(target)
        self._show(force=True)

    def _retry_pending(self) -> None:
        target = self._pending
        if target is None:
            return
        if self.recording.indexed or self.player.seek_cost(target) <= SEEK_BUDGET:
            self._pending = None
            self.player.seek_position(target)
            self._show(force=True)

    def _tick(self) -> None:
        if not self.playing:
            return
        now = self.clock()
        if self._pending is not None:  # the playhead waits where the user sent it until the index gets there
            self._anchor = (now, self.play_time)
            return
        anchor_clock, anchor_play = self._anchor
        play_time = anchor_play + (now - anchor_clock) * self.speed
        if play_time >= self.timeline.duration:
            play_time = self.timeline.duration
            self._pause()
        self.highlight = None
        self.play_time = play_time
        self.rec_time = self.timeline.to_recording(play_time)
        target = self.recording.position_at(self.rec_time)
        if target != self.player.position:
            self.player.seek_position(target)
            self._show(force=True)
        else:
            self._update_bars()

    def _play(self) -> None:
        if self.play_time >= self.timeline.duration:
            self.highlight = None
            self._goto(0.0)
        self.playing = True
        self._anchor = (self.clock(), self.play_time)
        if self._timer is not None:
            self._timer.resume()
        self._update_status()

    def _pause(self) -> None:
        self.playing = False
        if self._timer is not None:
            self._timer.pause()
        self._update_status()

    # -- drawing ---------------------------------------------------------------------------------------------------

    def _show(self, force: bool = False) -> None:
        view = self.query_one(TerminalView)
        if force or view.snapshot is None or view.highlight != self.highlight:
            view.show(self.player.snapshot(), self.highlight)
        self._update_bars()

    def _update_bars(self) -> None:
        if self._ticks is None or self._ticks[:2] != (self.timeline, self.markers):
            ticks = [(self.timeline.to_play(m.time), "event" if m.kind == "event" else "marker") for m in self.markers]
            self._ticks = (self.timeline, self.markers, ticks)
        self.query_one(TimelineBar).update(self.play_time, self.timeline.duration, self._ticks[2])
        self._update_status()

    def _update_status(self) -> None:
        state = "▶" if self.playing else ("■" if self.play_time >= self.timeline.duration else "⏸")
        parts = [f"{state} {_speed(self.speed)}", "idle skip on" if self.idle_skip else "idle skip off"]
        if self.idle_skip and abs(self.rec_time - self.play_time) >= 1:
            parts.append(f"real {replay.format_time(self.rec_time)}")
        if self.indexing is not None:
            parts.append(f"indexing {self.indexing:.0%}")
        if self._pending is not None:
            parts.append("seeking when indexed")
        if self.message:
            parts.append(self.message)
        # marker labels, searched text and the title come from the recording and the event: shown, never obeyed
        status = Text(printable(" · ".join(parts)), no_wrap=True, overflow="ellipsis", end="")
        title = printable(self.replay_title)
        text = Text.assemble(status, "  ", (title, "dim"), "  ", ("? keys", "bold"), no_wrap=True,
                             overflow="ellipsis", end="")
        self.query_one("#replay-status", Static).update(text)

    # -- actions -----------------------------------------------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        search = self.query_one("#replay-search", Input)
        if self.has_class("-searching") and not search.has_focus and event.is_printable and event.character:
            # typed right after `/`, before the box had focus: the text is meant for it
            search.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()
            return
        if len(event.key) == 1 and event.key.isdigit():
            self._digit = int(event.key)

    def action_toggle_play(self) -> None:
        if self.playing:
            self._pause()
        else:
            self.highlight = None
            self._play()

    def action_seek_by(self, seconds: float) -> None:
        self.highlight = None
        self.message = ""
        self._goto(self.play_time + seconds)

    def action_jump(self, fraction: float) -> None:
        self.highlight = None
        self.message = ""
        self._goto(fraction * self.timeline.duration)

    def action_jump_digit(self) -> None:
        self.action_jump(self._digit / 10)

    def action_speed(self, direction: int) -> None:
        i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - self.speed))
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, i + direction))]
        if self.playing:
            self._anchor = (self.clock(), self.play_time)
        self._update_status()

    def action_step(self, direction: int) -> None:
        if self.playing:
            self._pause()
        self.highlight = None
        position = max(0, min(self.player.position + direction, len(self.recording.frames)))
        rec_time = self.recording.time_of(position)
        self._goto(self.timeline.to_play(rec_time), position=position, rec_time=rec_time)

    def action_toggle_idle(self) -> None:
        self.idle_skip = not self.idle_skip
        self.timeline = replay.Timeline(self.recording, replay.IDLE_LIMIT if self.idle_skip else None)
        self.play_time = self.timeline.to_play(self.rec_time)
        if self.playing:
            self._anchor = (self.clock(), self.play_time)
        self._update_bars()

    def action_marker(self, direction: int) -> None:
        if not self.markers:
            self.message = "no markers yet" if not self.recording.indexed else "no markers"
            self._update_status()
            return
        times = [m.time for m in self.markers]
        if direction > 0:
            i = bisect.bisect_right(times, self.rec_time + 1e-6)
            if i >= len(times):
                self.message = "no later marker"
                self._update_status()
                return
        else:
            i = bisect.bisect_left(times, self.rec_time - 1e-6) - 1
            if i < 0:
                self.message = "no earlier marker"
                self._update_status()
                return
        marker = self.markers[i]
        self.highlight = None
        kind = {"command": "$", "event": "event:", "input": "input:", "marker": "marker:"}[marker.kind]
        self.message = f"{i + 1}/{len(self.markers)} {kind} {marker.label}"
        self._goto(self.timeline.to_play(marker.time), rec_time=marker.time)

    def action_search(self) -> None:
        self.add_class("-searching")
        search = self.query_one("#replay-search", Input)
        search.value = self.query_text
        search.focus()

    @on(Input.Submitted, "#replay-search")
    def _submit_search(self, event: Input.Submitted) -> None:
        self._close_search()
        text = event.value
        if not text.strip():
            return
        self.query_text = text
        self.message = f"searching for “{text}”…"
        self._update_status()
        self._run_search(text)

    @work(thread=True, exclusive=True, group="replay-search", exit_on_error=False)
    def _run_search(self, text: str) -> None:
        self.post_message(self.SearchDone(text, replay.search(self.recording, text)))

    @on(SearchDone)
    def _on_search_done(self, message: SearchDone) -> None:
        if message.query != self.query_text:
            return
        self.matches = message.matches
        if not self.matches:
            self.match_index = None
            self.message = f"no match for “{message.query}”"
            self._update_status()
            return
        later = [i for i, m in enumerate(self.matches) if m.position >= self.player.position]
        self._land(later[0] if later else 0)

    def _land(self, index: int) -> None:
        if self.playing:
            self._pause()
        self.match_index = index
        match = self.matches[index]
        self.highlight = (match.line, match.col, match.length) if match.visible else None
        self.message = f"match {index + 1}/{len(self.matches)} “{self.query_text}”"
        if not match.visible:
            self.message += " (scrolled past within one frame)"
        self._goto(self.timeline.to_play(match.time), position=match.position, rec_time=match.time)

    def action_match(self, direction: int) -> None:
        if not self.matches:
            self.message = "no search yet (press /)" if not self.query_text else f"no match for “{self.query_text}”"
            self._update_status()
            return
        index = 0 if self.match_index is None else (self.match_index + direction) % len(self.matches)
        self._land(index)

    def _close_search(self) -> None:
        self.remove_class("-searching")
        self.set_focus(None)

    def action_help(self) -> None:
        """The replay's own key list, a modal over the replay: Esc, q or ? close it and leave the replay open."""
        self.app.push_screen(HelpScreen((KeySection("Replay", (ReplayScreen,)),)))

    def action_close(self) -> None:
        if self.has_class("-searching"):
            self._close_search()
            return
        self.dismiss(None)

    @on(TimelineBar.Seek)
    def _on_timeline_click(self, message: TimelineBar.Seek) -> None:
        self.action_jump(message.fraction)


def _speed(speed: float) -> str:
    return f"{speed:g}×"


class ReplayApp(App[None]):
    """`auditkit replay`: the replay screen alone; closing it quits."""

    TITLE = "auditkit replay"

    def __init__(self, recording: replay.Recording, *, title: str, event_markers: Sequence[tuple[float, str]] = (),
                 autoplay: bool = True, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._screen_args = dict(recording=recording, title=title, event_markers=event_markers, autoplay=autoplay,
                                 clock=clock)

    def on_mount(self) -> None:
        self.push_screen(ReplayScreen(**self._screen_args), callback=lambda _: self.exit())
