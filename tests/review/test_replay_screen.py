"""The replay screen: snapshots (at the start, in the middle, after a seek, on a search match, on an 80×24 terminal)
and pilot tests of every key. Deterministic: a committed recording (tests/fixtures/replay_vim.cast, real bash and vim
output), a fixed clock, no autoplay, no cursor blink, workers awaited before each screenshot.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any, Awaitable, Callable

import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Static

from auditkit.review import replay
from auditkit.review.tui.screens import replay as screen_mod
from auditkit.review.tui.screens.help import HelpScreen
from auditkit.review.tui.screens.replay import ReplayApp, ReplayScreen
from auditkit.review.tui.widgets.replay_terminal import TerminalView
from auditkit.review.tui.widgets.replay_timeline import TimelineBar
from helpers import FIXTURES

VIM = (FIXTURES / "replay_vim.cast").read_bytes()
EVENTS = [(6.2, "Processes executed: dev@box ran vim in web"), (17.0, "Processes terminated web-1")]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_app(clock: Callable[[], float] = lambda: 0.0, data: bytes = VIM) -> ReplayApp:
    return ReplayApp(replay.load(data), title="vim · dev@box · web", event_markers=EVENTS, autoplay=False,
                     clock=clock)


async def settle(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def run(app: App, body: Callable[[Pilot, ReplayScreen], Awaitable[Any]], size: tuple[int, int] = (100, 30)) -> Any:
    async def main() -> Any:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ReplayScreen)
            return await body(pilot, screen)
    return asyncio.run(main())


def status(screen: ReplayScreen) -> str:
    return str(screen.query_one("#replay-status", Static).render())


def screen_text(screen: ReplayScreen) -> list[str]:
    view = screen.query_one(TerminalView)
    assert view.snapshot is not None
    return view.snapshot.text()


# --- snapshots ------------------------------------------------------------------------------------------------------

class TestReplaySnapshots:
    def test_at_start(self, snap_compare):
        assert snap_compare(make_app(), run_before=settle, terminal_size=(100, 30))

    def test_mid(self, snap_compare):
        async def before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press("5")
            await pilot.pause()
        assert snap_compare(make_app(), run_before=before, terminal_size=(100, 30))

    def test_after_a_seek(self, snap_compare):
        async def before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press("9", "left")
            await pilot.pause()
        assert snap_compare(make_app(), run_before=before, terminal_size=(100, 30))

    def test_on_a_search_match(self, snap_compare):
        async def before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press("slash", *"Ledger", "enter")
            await settle(pilot)
        assert snap_compare(make_app(), run_before=before, terminal_size=(100, 30))

    def test_on_an_80x24_terminal(self, snap_compare):
        async def before(pilot: Pilot) -> None:
            await settle(pilot)
            await pilot.press("end", "left_square_bracket")
            await pilot.pause()
        assert snap_compare(make_app(), run_before=before, terminal_size=(80, 24))


# --- search ---------------------------------------------------------------------------------------------------------

def test_search_lands_on_the_match():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        await pilot.press("slash", *"ledger", "enter")
        await settle(pilot)
        matches = replay.search(screen.recording, "ledger")
        assert len(screen.matches) == len(matches) >= 3
        first = matches[0]
        assert screen.player.position == first.position and not screen.playing
        assert screen.highlight == (first.line, first.col, first.length)
        line = screen_text(screen)[first.line]
        assert line[first.col:first.col + first.length].lower() == "ledger"
        view = screen.query_one(TerminalView)
        marked = view.get_component_rich_style("terminal-view--match", partial=True).bgcolor
        drawn = [(seg.text, seg.style.bgcolor) for seg in view._strip(first.line)]
        assert (line[first.col:first.col + first.length], marked) in drawn, "the match is drawn marked"
        assert "match 1/" in status(screen)
        await pilot.press("n")
        assert screen.player.position == matches[1].position and "match 2/" in status(screen)
        await pilot.press("N", "N")
        assert screen.match_index == len(matches) - 1, "N before the first wraps to the last"
        await pilot.press("n")
        assert screen.match_index == 0
    run(make_app(), body)


def test_search_starts_from_the_playhead():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        await pilot.press("7")
        at = screen.player.position
        await pilot.press("slash", *"Ledger", "enter")
        await settle(pilot)
        assert screen.matches[screen.match_index].position >= at
        assert screen.match_index > 0
    run(make_app(), body)


def test_a_search_without_matches_says_so_and_escape_cancels_the_box():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        await pilot.press("slash", *"zebra", "enter")
        await settle(pilot)
        assert "no match for “zebra”" in status(screen) and screen.matches == []
        await pilot.press("slash")
        assert screen.has_class("-searching")
        await pilot.press("escape")
        assert not screen.has_class("-searching") and app.is_running, "escape closes the box, not the replay"
        await pilot.press("n")
        assert "no match" in status(screen)
    app = make_app()
    run(app, body)


def test_keys_typed_right_after_slash_go_into_the_search_box():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        screen.action_search()
        screen.set_focus(None)  # as when keys arrive before the box has taken focus
        await pilot.press("i", "5", "n")
        assert screen.query_one("#replay-search").value == "i5n", "not idle skip, a jump and next match"
        assert screen.player.position == 0 and screen.idle_skip
    run(make_app(), body)


# --- playing and moving -------------------------------------------------------------------------------------------

def test_playback_follows_the_clock_and_speed():
    clock = Clock()

    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        await pilot.press("space")
        assert screen.playing
        clock.now += 2.0
        screen._tick()
        assert screen.play_time == pytest.approx(2.0)
        await pilot.press("greater_than_sign", "greater_than_sign")
        assert screen.speed == 4.0
        clock.now += 1.0
        screen._tick()
        assert screen.play_time == pytest.approx(6.0)
        assert screen.player.position == screen.recording.position_at(screen.rec_time)
        await pilot.press("space")
        clock.now += 5.0
        screen._tick()
        assert not screen.playing and screen.play_time == pytest.approx(6.0), "paused: the clock no longer moves it"
        for _ in range(8):
            await pilot.press("less_than_sign")
        assert screen.speed == 0.25, "0.25× is the slowest"
        for _ in range(10):
            await pilot.press("greater_than_sign")
        assert screen.speed == 16.0, "16× the fastest"
        await pilot.press("space")
        clock.now += 60.0
        screen._tick()
        assert not screen.playing and screen.play_time == screen.timeline.duration, "it stops at the end"
        assert screen.player.position == len(screen.recording.frames)
        await pilot.press("space")
        assert screen.playing and screen.play_time == 0.0, "play at the end starts over"
    run(make_app(clock), body)


def test_seek_keys():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        duration = screen.timeline.duration
        await pilot.press("right", "right")
        assert screen.play_time == pytest.approx(10.0)
        await pilot.press("left")
        assert screen.play_time == pytest.approx(5.0)
        await pilot.press("left", "left")
        assert screen.play_time == 0.0
        for digit in range(10):
            await pilot.press(str(digit))
            assert screen.play_time == pytest.approx(duration * digit / 10)
        await pilot.press("end")
        assert screen.play_time == duration and screen_text(screen)[-1] == "" and "after vim" in screen_text(screen)
        await pilot.press("home")
        assert screen.play_time == 0.0 and screen.player.position == 0
    run(make_app(), body)


def test_step_frames_while_paused():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        await pilot.press("full_stop", "full_stop", "full_stop")
        assert screen.player.position == 3
        assert screen.rec_time == screen.recording.frames[2].time
        await pilot.press("comma")
        assert screen.player.position == 2
        await pilot.press("space", "full_stop")
        assert not screen.playing and screen.player.position == 3, "a step pauses first"
    run(make_app(), body)


PAUSES = (b'{"version": 2, "width": 40, "height": 5}\n[1.0, "o", "$ "]\n[1.5, "o", "make\\r\\n"]\n'
          b'[40.0, "o", "built\\r\\n$ "]\n[41.0, "o", "exit\\r\\n"]\n')


def test_idle_skip_caps_pauses_and_can_be_turned_off():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        rec = screen.recording
        assert screen.idle_skip and screen.timeline.duration == pytest.approx(4.5) and rec.duration == 41.0
        await pilot.press("5")
        moment = screen.rec_time
        await pilot.press("i")
        assert not screen.idle_skip and screen.timeline.duration == rec.duration
        assert screen.rec_time == moment and screen.play_time == pytest.approx(moment), "the same moment stays"
        assert "idle skip off" in status(screen)
        await pilot.press("i")
        assert screen.idle_skip and "idle skip on" in status(screen)
    run(make_app(data=PAUSES), body)


def test_markers_are_commands_and_gateway_events():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        kinds = [(m.kind, m.label) for m in screen.markers]
        assert ("command", "echo before vim") in kinds and ("event", EVENTS[0][1]) in kinds
        await pilot.press("right_square_bracket")
        assert screen.rec_time == screen.markers[0].time and "echo before vim" in status(screen)
        assert screen_text(screen)[0].endswith("# echo before vim")
        await pilot.press("right_square_bracket")
        assert screen.rec_time == 6.2 and "2/5 event: Processes executed" in status(screen)
        await pilot.press("right_square_bracket")
        assert "3/5 $ vim -u DEFAULTS" in status(screen)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert screen.rec_time == screen.markers[0].time
        await pilot.press("home", "left_square_bracket")
        assert "no earlier marker" in status(screen)
        await pilot.press("end", "right_square_bracket")
        assert "no later marker" in status(screen)
        ticks = screen.query_one(TimelineBar).markers
        assert len(ticks) == len(screen.markers) and ("event" in {k for _, k in ticks})
    run(make_app(), body)


def test_a_click_on_the_timeline_seeks():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        bar = screen.query_one(TimelineBar)
        start = len(f" {replay.format_time(0)} ")
        width = bar.size.width - start - len(f" {replay.format_time(screen.timeline.duration)} ")
        await pilot.click(TimelineBar, offset=(start + (width - 1) // 2, 0))
        assert screen.play_time == pytest.approx(screen.timeline.duration / 2, rel=0.05)
    run(make_app(), body)


# --- keys, help and closing ---------------------------------------------------------------------------------------

def test_every_key_has_a_description_for_the_help():
    described = {b.key: b.description for b in ReplayScreen.BINDINGS}  # type: ignore[union-attr]
    for key in ("space", "left", "right", "0,1,2,3,4,5,6,7,8,9", "home", "end", "less_than_sign", "greater_than_sign",
                "full_stop", "i", "left_square_bracket", "right_square_bracket", "slash", "n", "N", "question_mark",
                "q,escape"):
        assert described.get(key), key

    app = make_app()

    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        for closing in ("question_mark", "escape", "q"):
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)  # auditkit's key list, not Textual's generic panel
            console = Console(width=120, record=True, file=io.StringIO())
            console.print(app.screen.query_one("#help-body", Static).content)
            listed = console.export_text()
            for keys, description in (("Space", "Play / pause"), ("0", "Jump to 0–90 %"), ("i", "Idle skip"),
                                      ("[", "Previous marker"), ("/", "Search"), ("q Esc", "Close")):
                assert any(line.split() [:len(keys.split())] == keys.split() and description in line
                           for line in listed.splitlines()), (keys, description, listed)
            await pilot.press(closing)  # closes the key list only; the replay stays open
            await pilot.pause()
            assert app.is_running and app.screen is screen
    run(app, body)


@pytest.mark.parametrize("key", ["q", "escape"])
def test_closing_the_standalone_replay_quits(key):
    app = make_app()

    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        await pilot.press(key)
        await pilot.pause()
        assert not app.is_running
    run(app, body)


def test_closing_a_pushed_replay_returns_to_the_screen_below():
    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(Screen(id="events"))
            self.push_screen(ReplayScreen(replay.load(VIM), title="t", autoplay=False, clock=lambda: 0.0))

    async def main() -> None:
        app = Host()
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, ReplayScreen)
            await pilot.press("q")
            await pilot.pause()
            assert app.is_running and app.screen.id == "events"
    asyncio.run(main())


def test_a_far_seek_waits_for_the_index(monkeypatch):
    """Until the index covers a place, a jump that would replay a lot of output waits instead of freezing."""
    monkeypatch.setattr(ReplayScreen, "_build_index", lambda self: None)  # the index is built by hand below
    monkeypatch.setattr(screen_mod, "SEEK_BUDGET", 100)

    clock = Clock()

    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        assert "indexing 0%" in status(screen)
        await pilot.press("9")
        assert screen.player.position == 0 and "seeking when indexed" in status(screen)
        target = screen.play_time
        await pilot.press("space")
        clock.now += 3
        screen._tick()
        assert screen.player.position == 0 and screen.play_time == target, "playing waits for the seek too"
        await pilot.press("space")
        screen.recording.build_index()
        screen.post_message(ReplayScreen.IndexReady())
        await pilot.pause()
        assert screen.player.position == screen.recording.position_at(screen.rec_time) > 0
        assert "indexing" not in status(screen) and "seeking" not in status(screen)
    run(make_app(clock), body)


def test_an_empty_recording_opens_and_every_key_is_harmless():
    async def body(pilot: Pilot, screen: ReplayScreen) -> None:
        await pilot.press("space", "right", "left", "5", "end", "home", "greater_than_sign", "full_stop", "comma", "i",
                          "left_square_bracket", "right_square_bracket", "n", "slash", "x", "enter")
        await settle(pilot)
        assert screen.player.position == 0 and screen.timeline.duration == 0
        assert "no match for “x”" in status(screen)
    run(make_app(data=b'{"version": 2, "width": 20, "height": 4}\n'), body)
