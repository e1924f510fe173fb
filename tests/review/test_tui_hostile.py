"""The TUI on hostile event text and filters (issue 13), through Textual's pilot: a filter that looks like Rich markup
opens every picker (it crashed the app), event text with markup and escapes is shown literally and escaped in the
list, the detail and the pickers, and until:9999-12-31 in the filter bar or the time dialog is a valid bound."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from auditkit import store
from auditkit.model.filters import parse
from auditkit.model.safe_text import UNSAFE
from auditkit.review.tui.app import AuditApp
from auditkit.review.tui.widgets.event_list import EventList
from helpers import draft

HOSTILE = [
    draft(actor="[bold]eve[/bold]@example.com", app="[/]", description="closing [/] and [link=https://evil.example]x[/link]"),
    draft(actor="mallory\x1b]0;pwned\x07@example.com", description="evil\x1b]0;pwned\x07\x1b[2J \u202eexe.txt",
          rack="acme/[red]prod[/red]"),
]


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    conn = store.open_db(path)
    store.append(conn, HOSTILE, source=store.LOCAL_SOURCE)
    conn.close()
    return path


def screen_text(app: AuditApp) -> tuple[str, list[str]]:
    lines, links = [], []
    for strip in app.screen._compositor.render_strips():
        lines.append("".join(segment.text for segment in strip))
        links += [s.style.link for s in strip if s.style is not None and s.style.link]
    return "\n".join(lines), links


def run(path: Path, scenario: Any) -> None:
    async def go() -> None:
        app = AuditApp(path, utc=True, poll_interval=None, cursor_blink=False)
        async with app.run_test(size=(160, 40)) as pilot:
            async def settle() -> None:
                for _ in range(3):
                    await pilot.pause()
                    await app.workers.wait_for_complete()
                await pilot.pause()

            await settle()
            await scenario(app, pilot, settle)

    asyncio.run(go())


def test_event_text_is_shown_literally_and_escaped_in_the_list_and_the_detail(hostile_db):
    async def scenario(app: AuditApp, pilot: Any, settle: Any) -> None:
        text, links = screen_text(app)
        assert "evil\\x1b]0;pwned\\x07\\x1b[2J \\u202eexe.txt" in text
        assert "closing [/] and [link=https://evil.example]x[/link]" in text
        assert UNSAFE.search(text.replace("\n", "")) is None and links == []
        await pilot.press("j", "enter")
        await settle()
        text, links = screen_text(app)
        assert type(app.screen).__name__ == "DetailScreen"
        assert "[bold]eve[/bold]@example.com" in text and "[/]" in text
        assert UNSAFE.search(text.replace("\n", "")) is None and links == []

    run(hostile_db, scenario)


@pytest.mark.parametrize("key", ["u", "r", "a", "C"])
def test_a_filter_that_looks_like_markup_opens_every_picker(hostile_db, key):
    async def scenario(app: AuditApp, pilot: Any, settle: Any) -> None:
        app.screen.apply_filter(parse('"[/]"'))
        await settle()
        assert app.screen.query_one(EventList).total == 1
        await pilot.press(key)
        await settle()
        assert type(app.screen).__name__ == "PickerScreen"
        text, links = screen_text(app)
        assert "counts within: [/]" in text
        assert UNSAFE.search(text.replace("\n", "")) is None and links == []
        await pilot.press("escape")
        await settle()
        app.screen.apply_filter(parse("rack:acme/production"))  # a value with escapes, then its picker
        await settle()
        await pilot.press("r")
        await settle()
        text, _ = screen_text(app)
        assert "acme/[red]prod[/red]" in text

    run(hostile_db, scenario)


def test_a_picked_value_with_escapes_shows_them_escaped_in_the_filter_bar(hostile_db):
    async def scenario(app: AuditApp, pilot: Any, settle: Any) -> None:
        await pilot.press("u")
        await settle()
        app.focused.insert_text_at_cursor("mallory")
        await pilot.pause()
        await pilot.press("down", "space", "enter")
        await settle()
        text, _ = screen_text(app)
        assert 'user:"mallory\\x1b]0;pwned\\x07@example.com"' in text
        assert UNSAFE.search(text.replace("\n", "")) is None
        assert app.screen.query_one(EventList).total == 1

    run(hostile_db, scenario)


def test_until_the_last_day_python_knows_is_a_valid_bound(hostile_db):
    async def scenario(app: AuditApp, pilot: Any, settle: Any) -> None:
        await pilot.press("slash")
        app.focused.insert_text_at_cursor("until:9999-12-31 since:2000-01-01")
        await pilot.press("enter")
        await settle()
        assert app.screen.filter_bar.error is None
        assert app.screen.query_one(EventList).total == 2
        await pilot.press("t", "c")  # the custom time range dialog
        await settle()
        app.screen.query_one("#time-until").value = "[/]"
        app.screen.query_one("#time-until").focus()
        await pilot.press("enter")
        await settle()
        assert "bad time '[/]'" in str(app.screen.query_one("#time-error").render())

    run(hostile_db, scenario)


def test_replay_shows_a_hostile_marker_label_and_title_escaped():
    from textual.widgets import Static

    from auditkit.review import replay
    from auditkit.review.tui.screens.replay import ReplayApp
    from helpers import FIXTURES

    label = "[/]evil\x1b]0;pwned\x07\u202e"
    app = ReplayApp(replay.load((FIXTURES / "replay_vim.cast").read_bytes()), title="mallory\x1b[2J [/]",
                    event_markers=[(0.5, label)], autoplay=False, clock=lambda: 0.0)

    async def go() -> None:
        async with app.run_test(size=(160, 30)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("home", "right_square_bracket")
            await pilot.pause()
            status = str(app.screen.query_one("#replay-status", Static).render())
            assert "[/]evil\\x1b]0;pwned\\x07\\u202e" in status and "mallory\\x1b[2J [/]" in status
            text, links = screen_text(app)
            assert UNSAFE.search(text.replace("\n", "")) is None and links == []

    asyncio.run(go())
