"""Snapshots (pytest-textual-snapshot) of every TUI screen over the fixed mirror of tests/review/test_tui.py: the main list
(100×30 and 80×24), the filter bar with an error, each picker, the time range, the detail of a recorded session,
the share dialog and the key list.

Deterministic by construction: fixed events (fixed ids and timestamps, so fixed hashes), a fixed clock, UTC, no
polling, no cursor blink, and every worker awaited before the screenshot. Update with
`.venv/bin/python -m pytest tests/review/test_tui_snapshots.py --snapshot-update` and look at the SVGs before committing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from test_tui import build_fixture, make_app, newest_first, settle, type_text


@pytest.fixture(scope="module")
def snap_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    path = tmp_path_factory.mktemp("tui-snapshots") / "audit.db"
    return path, build_fixture(path)


def keys(*pressed: str):
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


class TestEventList:
    def test_main_list(self, snap_compare, snap_db):
        assert snap_compare(make_app(snap_db[0]), terminal_size=(100, 30), run_before=keys("j", "j"))

    def test_main_list_80x24(self, snap_compare, snap_db):
        assert snap_compare(make_app(snap_db[0]), terminal_size=(80, 24), run_before=keys())

    def test_filter_bar_with_an_error(self, snap_compare, snap_db):
        async def run_before(pilot: Any) -> None:
            await settle(pilot)
            await pilot.press("slash")
            await type_text(pilot, "user:alice@example.com actoin:promoted since:7d")
            await pilot.press("enter")
            await settle(pilot)

        assert snap_compare(make_app(snap_db[0]), terminal_size=(100, 30), run_before=run_before)


class TestPickers:
    @pytest.mark.parametrize("key", ["u", "r", "a", "C"], ids=["user", "rack", "action", "category"])
    def test_picker(self, snap_compare, snap_db, key):
        assert snap_compare(make_app(snap_db[0]), terminal_size=(100, 30), run_before=keys(key))

    def test_time_range(self, snap_compare, snap_db):
        assert snap_compare(make_app(snap_db[0]), terminal_size=(100, 30), run_before=keys("t"))


class TestDetail:
    def test_detail_of_a_recorded_session(self, snap_compare, snap_db):
        path, events = snap_db
        index = [e.id for e in newest_first(events)].index(f"EV{2:024d}")
        assert snap_compare(make_app(path), terminal_size=(100, 40), run_before=keys(*["j"] * index, "enter"))


class TestDialogs:
    def test_share_dialog(self, snap_compare, snap_db):
        async def run_before(pilot: Any) -> None:
            await settle(pilot)
            await pilot.press("u")
            await settle(pilot)
            await type_text(pilot, "alice")
            await pilot.press("down", "space", "enter")
            await settle(pilot)
            await pilot.press("t", "3")
            await settle(pilot)
            await pilot.press("s")
            await settle(pilot)

        assert snap_compare(make_app(snap_db[0]), terminal_size=(100, 30), run_before=run_before)

    def test_help(self, snap_compare, snap_db):
        assert snap_compare(make_app(snap_db[0]), terminal_size=(100, 40), run_before=keys("question_mark"))
