"""The TUI's flows, driven with Textual's pilot over a fixed mirror (tests/review/test_tui_snapshots.py shares it):
filtering narrows the list to exactly the expected events, pickers and time presets build the filter, the detail
shows the chain status, new events written by another process appear without moving the selection, follow mode
keeps the newest selected, and far jumps (G, the scrollbar) show exactly the rows of the store's own listing.

Each test runs its scenario with asyncio.run (no pytest plugin needed); waits are polls on app state, not sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from click.testing import CliRunner
from rich.console import Console

from auditkit.model import events as ev
from auditkit import store
from auditkit.cli import main
from auditkit.errors import StoreError
from auditkit.model.filters import Filter, parse
from auditkit.review.tui import mirror as mirror_mod
from auditkit.review.tui.app import KEY_SECTIONS, AuditApp
from auditkit.review.tui.keys import keys_text, listing
from auditkit.review.tui.mirror import Cancelled, Mirror
from auditkit.review.tui.screens.events import EventsScreen
from auditkit.review.tui.widgets.event_list import EventList
from auditkit.synth import history as synth

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
USERS = [("alice@example.com", "user"), ("bob@example.com", "user"), ("carol@example.org", "user"),
         ("ci-bot", "deploy_key")]
RACKS = ["acme/production", "acme/staging"]
KINDS = [
    ("Releases", "promoted", "Promoted release {t} of app {app}"),
    ("Builds", "created", "Created build {t} of app {app}"),
    ("Environment", "updated", "Updated environment of app {app} (DATABASE_URL)"),
    ("Processes", "scaled", "Scaled service web of app {app} to 3"),
    ("Security", "rotated", "Rotated the rack's API key"),
    ("Infrastructure", "terminated", "Terminated instance i-0{t}"),
]
OUTCOMES = ["succeeded"] * 5 + ["failed", "denied", "unknown"]
SESSION = "ses_FIXTURE0000000000000000"
CAST = (b'{"version": 2, "width": 80, "height": 24, "timestamp": 1793534400}\n'
        b'[0.25, "o", "$ ls\\r\\n"]\n[0.5, "o", "Gemfile  app  config\\r\\n$ exit\\r\\n"]\n')


def fixture_drafts() -> list[ev.Event]:
    """60 events 97 minutes apart back from NOW (4 days), 4 more 12–40 days back; one exec with a recording."""
    rng = random.Random(20261101)
    drafts = []
    moments = [NOW - dt.timedelta(minutes=97 * i + 3) for i in range(60)]
    moments += [NOW - dt.timedelta(days=d) for d in (12, 20, 33, 40)]
    for i, moment in enumerate(moments):
        actor, actor_type = USERS[rng.randrange(len(USERS))]
        category, action, text = KINDS[rng.randrange(len(KINDS))]
        app = rng.choice(["web", "api", "worker"])
        target = f"R{i:05d}"
        fields: dict[str, Any] = dict(
            id=f"EV{i:024d}", timestamp=ev.format_timestamp(moment), actor=actor, actor_type=actor_type,
            rack=RACKS[rng.randrange(len(RACKS))], category=category, action=action,
            description=text.format(t=target, app=app), app=app, target=target,
            outcome=OUTCOMES[rng.randrange(len(OUTCOMES))], status=200, method="POST", path=f"/apps/{app}",
            source_ip="198.51.100.7", user_agent="convox.go/3.24.9", request_id=f"req-{i:04d}",
            details={"release": target, "keys": ["DATABASE_URL"]} if category == "Environment" else {},
        )
        if i == 2:
            fields.update(category="Processes", action="executed", outcome="succeeded", status=101,
                          description="Executed `bash` in process web-1 of app web (exit 0)", session_id=SESSION,
                          details={"command": "bash", "exit_code": 0,
                                   "recording_sha256": store.recording_sha256(CAST)})
        drafts.append(ev.Event(**fields))
    return drafts


def build_fixture(path: Path) -> list[ev.Event]:
    """The fixed mirror: the drafts appended oldest first, alternately on two chains, and the recording."""
    conn = store.open_db(path)
    store.add_session(conn, {"id": SESSION, "source": "gw-eu", "rack": "acme/production", "app": "web",
                             "actor": "alice@example.com", "command": "bash",
                             "started_at": fixture_drafts()[2].timestamp, "duration_ms": 2000, "exit_code": 0,
                             "width": 80, "height": 24}, CAST)
    sealed = []
    drafts = list(reversed(fixture_drafts()))
    for start in range(0, len(drafts), 8):
        sealed += store.append(conn, drafts[start:start + 8], source="gw-eu" if start % 16 else "gw-us")
    conn.close()
    return sealed


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ev.Event]]:
    path = tmp_path_factory.mktemp("tui") / "audit.db"
    return path, build_fixture(path)


@pytest.fixture
def live_db(tmp_path: Path) -> tuple[Path, list[ev.Event]]:
    path = tmp_path / "audit.db"
    return path, build_fixture(path)


def make_app(path: Path, **options: Any) -> AuditApp:
    settings: dict[str, Any] = dict(clock=lambda: NOW, utc=True, poll_interval=None, cursor_blink=False)
    settings.update(options)
    return AuditApp(path, **settings)


async def settle(pilot: Any) -> None:
    """Until no worker runs and every message they posted is handled."""
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def wait_until(pilot: Any, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


def run(app: AuditApp, scenario: Callable[[Any], Awaitable[None]], size: tuple[int, int] = (100, 30)) -> None:
    async def go() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await scenario(pilot)

    asyncio.run(go())


def events_list(pilot: Any) -> EventList:
    return pilot.app.screen.query_one(EventList)


def shown(pilot: Any) -> list[str]:
    """The ids of every row of the list (the list must be small enough to be held whole)."""
    events = events_list(pilot)
    assert events.total is not None
    return [events._rows[i].event.id for i in range(events.total)]


def newest_first(events: list[ev.Event]) -> list[ev.Event]:
    return sorted(events, key=lambda e: e.timestamp, reverse=True)


async def all_shown(pilot: Any) -> list[str]:
    """Every row's id, scrolling the list (not its selection) over them so that each gets fetched."""
    listing = events_list(pilot)
    start = round(listing.scroll_offset.y)
    for y in range(0, listing.total or 0, 10):
        listing.scroll_to(y=y, animate=False)
        await settle(pilot)
    listing.scroll_to(y=start, animate=False)
    await settle(pilot)
    return shown(pilot)


def plain(renderable: Any) -> str:
    """A rich renderable (a Static's content) as plain text."""
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def static_text(pilot: Any, selector: str = "Static") -> str:
    return "\n".join(plain(w.content) for w in pilot.app.screen.query(selector))


async def type_text(pilot: Any, text: str, *, key_by_key: bool = False) -> None:
    """Type into the focused input: key by key, or (faster) all at once at the cursor, as a paste would."""
    if not key_by_key:
        pilot.app.focused.insert_text_at_cursor(text)
        await pilot.pause()
        return
    for ch in text:
        await pilot.press({" ": "space", ":": "colon", "-": "minus", "/": "slash", "@": "at",
                           ".": "full_stop", '"': "quotation_mark"}.get(ch, ch))


# --- the list and filtering -------------------------------------------------------------------------------------

def test_the_list_is_every_event_newest_first(fixture_db):
    path, events = fixture_db

    async def scenario(pilot: Any) -> None:
        assert shown(pilot) == [e.id for e in newest_first(events)]
        assert "64 matches for all events" in str(pilot.app.screen.status_text())

    run(make_app(path), scenario)


@pytest.mark.parametrize("text", [
    "user:alice@example.com action:promoted",
    "-outcome:succeeded rack:acme/staging",
    "since:24h -user:ci-bot",
    "DATABASE_URL",
])
def test_a_typed_filter_narrows_the_list_to_exactly_its_events(fixture_db, text):
    path, events = fixture_db
    f = parse(text)
    conn = store.open_db(path, readonly=True)
    expected = [e.id for e in store.page(conn, f, limit=1000, now=NOW).events]
    conn.close()
    assert 0 < len(expected) < len(events)

    async def scenario(pilot: Any) -> None:
        await pilot.press("slash")
        await type_text(pilot, text)
        await pilot.press("enter")
        await settle(pilot)
        assert events_list(pilot).filter == f
        assert shown(pilot) == expected
        assert f"{len(expected)} match" in str(pilot.app.screen.status_text())
        assert pilot.app.focused is events_list(pilot)
        await pilot.press("c")  # clears back to everything
        await settle(pilot)
        assert len(shown(pilot)) == len(events) and events_list(pilot).filter == Filter()

    run(make_app(path), scenario)


def test_a_bad_filter_shows_the_error_at_its_token_and_keeps_the_list(fixture_db):
    path, events = fixture_db

    async def scenario(pilot: Any) -> None:
        await pilot.press("slash")
        await type_text(pilot, "user:bob ")
        await type_text(pilot, "actoin:promoted", key_by_key=True)
        await pilot.press("enter")
        await settle(pilot)
        bar = pilot.app.screen.filter_bar
        assert bar.error is not None and bar.error.position == len("user:bob ")
        error = str(pilot.app.screen.query_one("#filter-error").render())
        assert "^^^^^^^" in error and "unknown key 'actoin:'" in error
        assert events_list(pilot).filter == Filter() and len(shown(pilot)) == len(events)
        await pilot.press("escape")  # reverts the text and goes back to the list
        await settle(pilot)
        assert bar.input.value == "" and bar.error is None and pilot.app.focused is events_list(pilot)

    run(make_app(path), scenario)


def test_a_qualifier_that_matches_nothing_says_which_values_are_near(fixture_db):
    path, _ = fixture_db

    async def scenario(pilot: Any) -> None:
        pilot.app.screen.apply_filter(parse("user:alice rack:production"))
        await settle(pilot)
        listing = events_list(pilot)
        assert listing.total == 0
        lines = [listing.render_line(y).text.strip() for y in range(1, 4)]
        assert lines == ["No events match this filter.",
                         "no event has user:alice; did you mean user:alice@example.com?",
                         "no event has rack:production; did you mean rack:acme/production?"]
        pilot.app.screen.apply_filter(parse("user:alice@example.com"))
        await settle(pilot)
        assert listing.total and listing.hints == ()

    run(make_app(path), scenario)


def test_a_picker_counts_within_the_filter_and_picks_several(fixture_db):
    path, events = fixture_db
    staging = [e for e in events if e.rack == "acme/staging"]

    async def scenario(pilot: Any) -> None:
        pilot.app.screen.apply_filter(parse("rack:acme/staging user:carol@example.org"))
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        picker = pilot.app.screen
        # Counts within the filter without its own key: every user's events on staging.
        assert dict(picker.counts) == {u: sum(1 for e in staging if e.actor == u) for u in {e.actor for e in staging}}
        assert picker.chosen == {"carol@example.org"}
        await type_text(pilot, "bob")
        await pilot.press("down", "space", "enter")
        await settle(pilot)
        f = events_list(pilot).filter
        assert f == parse("rack:acme/staging user:carol@example.org user:bob@example.com")
        assert shown(pilot) == [e.id for e in newest_first(staging) if e.actor in ("carol@example.org",
                                                                                     "bob@example.com")]

    run(make_app(path), scenario)


@pytest.mark.parametrize("key,kind", [("r", "rack"), ("a", "action"), ("C", "category")])
def test_each_picker_replaces_its_key_and_escape_changes_nothing(fixture_db, key, kind):
    path, events = fixture_db

    async def scenario(pilot: Any) -> None:
        await pilot.press(key)
        await settle(pilot)
        picker = pilot.app.screen
        column = {"rack": "rack", "action": "action", "category": "category"}[kind]
        values = [getattr(e, column) for e in events]
        assert dict(picker.counts) == {v: values.count(v) for v in set(values)}
        first = picker.counts[0][0]
        await pilot.press("down", "space", "enter")
        await settle(pilot)
        assert events_list(pilot).filter == Filter().with_values(kind, [first])
        assert len(shown(pilot)) == values.count(first)
        await pilot.press(key)
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert events_list(pilot).filter == Filter().with_values(kind, [first])

    run(make_app(path), scenario)


@pytest.mark.parametrize("key,since", [("1", "1h"), ("2", "24h"), ("3", "7d"), ("4", "30d")])
def test_time_presets_set_since(fixture_db, key, since):
    path, events = fixture_db
    start = NOW - {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1), "7d": dt.timedelta(days=7),
                   "30d": dt.timedelta(days=30)}[since]

    async def scenario(pilot: Any) -> None:
        pilot.app.screen.apply_filter(parse("since:2026-01-01 until:2026-12-31 -user:ci-bot"))
        await settle(pilot)
        await pilot.press("t", key)
        await settle(pilot)
        assert events_list(pilot).filter == parse(f"since:{since} -user:ci-bot")
        assert shown(pilot) == [e.id for e in newest_first(events)
                                if ev.parse_timestamp(e.timestamp) >= start and e.actor != "ci-bot"]
        await pilot.press("t", "0")
        await settle(pilot)
        assert events_list(pilot).filter == parse("-user:ci-bot")

    run(make_app(path), scenario)


def test_a_custom_time_range_is_checked_before_it_applies(fixture_db):
    path, events = fixture_db
    expected = [e.id for e in newest_first(events) if "2026-10-30" <= e.timestamp < "2026-11-01"]

    async def scenario(pilot: Any) -> None:
        await pilot.press("t", "c")
        await type_text(pilot, "2026-13-01")
        await pilot.press("enter")
        await settle(pilot)
        assert "not a real date" in str(pilot.app.screen.query_one("#time-error").render())
        for _ in range(10):
            await pilot.press("backspace")
        await type_text(pilot, "2026-10-30")
        await pilot.press("tab")
        await type_text(pilot, "2026-10-31")
        await pilot.press("enter")
        await settle(pilot)
        assert events_list(pilot).filter == parse("since:2026-10-30 until:2026-10-31")
        assert shown(pilot) == expected

    run(make_app(path), scenario)


def test_utc_and_local_times_toggle(fixture_db, monkeypatch):
    path, events = fixture_db
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    newest = newest_first(events)[0]
    local = ev.parse_timestamp(newest.timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert local[11:19] != newest.timestamp[11:19]

    async def scenario(pilot: Any) -> None:
        listing = events_list(pilot)
        assert "Time (UTC)" in listing.render_line(0).text
        assert f"{newest.timestamp[:10]} {newest.timestamp[11:19]}" in listing.render_line(1).text
        await pilot.press("z")
        assert listing.utc is False and "Time (local)" in listing.render_line(0).text
        assert local in listing.render_line(1).text
        assert "local time (EST)" in str(pilot.app.screen.status_text())

    try:
        run(make_app(path), scenario, size=(120, 30))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# --- detail -------------------------------------------------------------------------------------------------------

def test_enter_opens_the_detail_with_every_field_and_the_chain_status(fixture_db):
    path, events = fixture_db
    target = newest_first(events)[4]

    async def scenario(pilot: Any) -> None:
        await pilot.press("j", "j", "j", "j", "enter")
        await settle(pilot)
        screen = pilot.app.screen
        assert type(screen).__name__ == "DetailScreen" and screen.event.id == target.id
        assert screen.facts.chain.ok
        text = static_text(pilot)
        for name in ev.FIELDS:
            value = getattr(target, name)
            if name != "details" and value is not None:
                assert str(value) in text, name
        assert "✓ intact" in text and f"seq {target.source_seq}" in text
        await pilot.press("r")  # no recording: says so
        await settle(pilot)
        assert any("no recorded session" in n.message for n in pilot.app._notifications)
        await pilot.press("escape")
        await settle(pilot)
        assert type(pilot.app.screen).__name__ == "EventsScreen" and events_list(pilot).cursor == 4

    run(make_app(path), scenario)


def test_r_replays_the_recording_or_says_replay_is_missing(fixture_db):
    path, events = fixture_db
    index = [e.id for e in newest_first(events)].index(f"EV{2:024d}")

    async def scenario(pilot: Any) -> None:
        await pilot.press(*["j"] * index, "enter")
        await settle(pilot)
        screen = pilot.app.screen
        assert screen.event.session_id == SESSION and screen.facts.session["id"] == SESSION
        assert screen.facts.markers == [(0.0, "Processes/executed: " + screen.event.description)]
        await pilot.press("r")
        await settle(pilot)
        assert type(pilot.app.screen).__name__ == "ReplayScreen"
        slot = pilot.app.screen.recording.index_cache  # checked against the mirror's sha256, cached under it
        assert slot is not None and slot.folder == Path(path).parent / "replay-cache"
        assert slot.sha256 == screen.facts.session["sha256"]

    run(make_app(path), scenario)


# --- live updates -------------------------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    from auditkit import store
    from auditkit.model import events as ev
    conn = store.open_db(sys.argv[1])
    store.append(conn, [ev.Event(id=sys.argv[2], timestamp=sys.argv[3], actor="dave@example.com",
                                 actor_type="user", rack="acme/production", category="Releases", action="promoted",
                                 description=sys.argv[4])], source="gw-live")
    conn.close()
""")


def write_from_another_process(path: Path, event_id: str, timestamp: str, description: str) -> None:
    subprocess.run([sys.executable, "-c", WRITER, str(path), event_id, timestamp, description], check=True,
                   timeout=60)


def test_events_written_by_another_process_appear_without_moving_the_selection(live_db):
    path, events = live_db
    order = newest_first(events)

    async def scenario(pilot: Any) -> None:
        listing = events_list(pilot)
        await pilot.press("j", "j", "j")
        selected = listing.selected().event.id
        assert selected == order[3].id
        # A new newest event: it appears at the top, the selection stays on the same event.
        write_from_another_process(path, "EVNEW1", ev.format_timestamp(NOW), "Promoted a brand new release")
        await wait_until(pilot, lambda: listing.total == len(events) + 1)
        await settle(pilot)
        assert listing.selected().event.id == selected and listing.cursor == 4
        assert shown(pilot)[0] == "EVNEW1"
        # An event older than the selected one (a sync backfilling another source): still the same selection.
        write_from_another_process(path, "EVOLD1", order[10].timestamp[:-4] + "001Z", "A backfilled event")
        await wait_until(pilot, lambda: listing.total == len(events) + 2)
        await settle(pilot)
        assert listing.selected().event.id == selected
        ids = await all_shown(pilot)
        assert ids.index("EVOLD1") == ids.index(order[10].id) - 1 and ids[0] == "EVNEW1"
        # A new event that the filter does not match changes nothing.
        pilot.app.screen.apply_filter(parse("-user:dave@example.com"))
        await settle(pilot)
        before = shown(pilot)
        write_from_another_process(path, "EVNEW2", ev.format_timestamp(NOW + dt.timedelta(seconds=1)), "Another")
        await wait_until(pilot, lambda: pilot.app.mirror.changed() is False)
        await pilot.pause(0.3)
        await settle(pilot)
        assert shown(pilot) == before

    run(make_app(path, poll_interval=0.05), scenario)


def test_follow_mode_keeps_the_newest_selected(live_db):
    path, events = live_db

    async def scenario(pilot: Any) -> None:
        listing = events_list(pilot)
        await pilot.press("j", "j", "F")
        assert listing.follow and listing.cursor == 0
        write_from_another_process(path, "EVNEW1", ev.format_timestamp(NOW), "Promoted a brand new release")
        await wait_until(pilot, lambda: listing.total == len(events) + 1)
        await settle(pilot)
        assert listing.cursor == 0 and listing.selected().event.id == "EVNEW1"
        assert "following newest" in str(pilot.app.screen.status_text())
        await pilot.press("j")  # moving away stops following
        assert not listing.follow

    run(make_app(path, poll_interval=0.05), scenario)


# --- scale: far jumps ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synth_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui-synth") / "audit.db"
    conn = store.open_db(path)
    synth.write_history(conn, events=3000, seed=5, days=20, end=NOW, parallel=False)
    conn.close()
    return path


def test_far_jumps_show_exactly_the_stores_rows(synth_db):
    conn = store.open_db(synth_db, readonly=True)
    f = parse("-outcome:failed")
    keys = store.page(conn, f, limit=10_000, now=NOW).keys
    conn.close()

    def check(listing: EventList) -> None:
        assert listing.total == len(keys)
        for r, row in listing._rows.items():
            assert row.key == keys[r], r
        top = round(listing.scroll_offset.y)
        assert all(r in listing._rows for r in range(top, min(len(keys), top + 25)))

    async def scenario(pilot: Any) -> None:
        listing = events_list(pilot)
        pilot.app.screen.apply_filter(f)
        await settle(pilot)
        check(listing)
        await pilot.press("G")  # the oldest, counted from the old end
        await settle(pilot)
        assert listing.cursor == len(keys) - 1 and listing.selected().key == keys[-1]
        check(listing)
        await pilot.press("pageup", "pageup", "k")  # scrolling up from there: pages just above known rows
        await settle(pilot)
        check(listing)
        for y in (1200, 1180, 900, 2000, 40):  # the scrollbar dragged around
            listing.scroll_to(y=y, animate=False)
            await settle(pilot)
            check(listing)
        await pilot.press("g")
        await settle(pilot)
        assert listing.cursor == 0 and listing.selected().key == keys[0]

    run(make_app(synth_db), scenario, size=(100, 28))


# --- help, palette, CLI --------------------------------------------------------------------------------------------

def test_help_lists_every_key_and_the_palette_finds_every_action(fixture_db):
    path, _ = fixture_db

    async def scenario(pilot: Any) -> None:
        await pilot.press("question_mark")
        await settle(pilot)
        text = plain(pilot.app.screen.query_one("#help-body").content)
        listed = {keys for _, entries in listing(KEY_SECTIONS) for keys, _ in entries}
        for owner in (EventsScreen, EventList):
            for binding in owner.BINDINGS:
                assert binding.tooltip, binding  # every key says what it does
                assert keys_text(binding) in listed
                assert " ".join(binding.tooltip.split()) in " ".join(text.split())
        await pilot.press("escape")
        await settle(pilot)
        titles = {c.title for c in pilot.app.get_system_commands(pilot.app.screen)}
        for owner in (EventsScreen, EventList):
            for binding in owner.BINDINGS:
                assert binding.tooltip in titles
        assert "Quit" in titles
        # A palette command runs its action.
        last = next(b for b in EventList.BINDINGS if b.action == "last")
        command = next(c for c in pilot.app.get_system_commands(pilot.app.screen) if c.title == last.tooltip)
        await command.callback()
        await settle(pilot)
        assert events_list(pilot).cursor == 63

    run(make_app(path), scenario)


def test_cli_refuses_a_missing_mirror_and_a_bad_filter_in_one_line(tmp_path, fixture_db):
    runner = CliRunner()
    result = runner.invoke(main, ["tui", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "no database at" in result.output
    result = runner.invoke(main, ["tui", "--db", str(fixture_db[0]), "actoin:promoted"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "unknown key 'actoin:'" in result.output


# --- the mirror layer without Textual -------------------------------------------------------------------------------

def test_fetch_anchored_up_down_and_by_offset_matches_the_listing(synth_db):
    m = Mirror(synth_db)
    with m.reading() as conn:
        user = store.value_counts(conn, "user")[3][0]
        f = Filter().with_values("user", [user]).with_values("outcome", ["failed"], negated=True)
        snapshot, first = mirror_mod.first_page(conn, f, NOW, 10)
        total = mirror_mod.count(conn, snapshot)
        keys = store.page(conn, f, limit=10_000, now=NOW).keys
        assert [r.key for r in first] == keys[:10] and total == len(keys) > 60
        for start in (0, 7, 31, total - 5):
            assert [r.key for r in mirror_mod.fetch(conn, snapshot, start, 9, total=total)] == keys[start:start + 9]
            if start:
                assert [r.key for r in mirror_mod.fetch(conn, snapshot, start, 9, after_row=keys[start - 1])] == \
                    keys[start:start + 9]
            if start + 9 < total:
                assert [r.key for r in mirror_mod.fetch(conn, snapshot, start, 9, before_row=keys[start + 9])] == \
                    keys[start:start + 9]
    m.close()


def test_changes_tell_new_rows_above_from_rows_inserted_among_them(live_db):
    path, events = live_db
    m = Mirror(path)
    with m.reading() as conn:
        snapshot, _ = mirror_mod.first_page(conn, Filter(), NOW, 10)
        total = mirror_mod.count(conn, snapshot)
        selected = store.page(conn, limit=5, now=NOW).keys[4]
        assert mirror_mod.changes(conn, snapshot, total, selected) is None
    assert m.changed() is False
    write_from_another_process(path, "EVNEW1", ev.format_timestamp(NOW), "new")
    assert m.changed() is True and m.changed() is False
    with m.reading() as conn:
        change = mirror_mod.changes(conn, snapshot, total, selected)
    assert (change.total, change.added_above, change.in_place) == (total + 1, 1, True)
    write_from_another_process(path, "EVOLD1", "2026-10-01T00:00:00.000Z", "old")
    with m.reading() as conn:
        change = mirror_mod.changes(conn, change.snapshot, change.total, selected)
    assert (change.total, change.added_above, change.in_place, change.selected_offset) == (total + 2, 0, False, 5)
    m.close()


def test_a_cancelled_query_aborts(synth_db):
    m = Mirror(synth_db)
    calls = iter(range(10**9))
    # Cancelled from the start: the first look aborts the statement.
    with pytest.raises(Cancelled):
        with m.reading(lambda: next(calls) >= 0) as conn:
            store.count(conn, parse("xyzzy-not-there"), now=NOW, fts=False)
    with m.reading() as conn:  # the connection is fine afterwards
        assert store.count(conn, now=NOW) == 3000
    m.close()


# --- share ----------------------------------------------------------------------------------------------------------

def test_the_share_dialog_makes_a_link_for_the_filter_and_time_range(live_db):
    path, _ = live_db

    async def scenario(pilot: Any) -> None:
        pilot.app.screen.apply_filter(parse("rack:acme/staging since:7d"))
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        dialog = pilot.app.screen
        assert "from 2026-10-25 12:00:00.000 UTC on" in static_text(pilot, "#share-range")
        expected = store.count(store.open_db(path, readonly=True), parse("rack:acme/staging since:7d"), now=NOW)
        assert expected > 1 and static_text(pilot, "#share-count").strip() == f"Matches {expected:,} events"
        await pilot.click("#expiry-30d")
        pilot.app.screen.query_one("#share-note").value = "for the Q4 audit"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert dialog.url is not None and dialog.url.startswith("https://audit.example/-/share/")
        assert dialog.url in static_text(pilot, "#share-result")
        await pilot.press("ctrl+y")
        assert pilot.app.clipboard == dialog.url
        first = dialog.url
        await pilot.press("ctrl+s")  # a second Ctrl+S makes no second link (checked below) and keeps the URL
        await settle(pilot)
        assert dialog.url == first and first in static_text(pilot, "#share-result")

    run(make_app(path, base_url="https://audit.example"), scenario)
    conn = store.open_db(path, readonly=True)
    assert conn.execute("SELECT count(*) FROM share_links").fetchone()[0] == 1
    link = dict(conn.execute("SELECT * FROM share_links").fetchone())
    conn.close()
    assert (link["filter_text"], link["since"], link["until"], link["note"]) == (
        "rack:acme/staging", "2026-10-25T12:00:00.000Z", None, "for the Q4 audit")
    assert link["expires_at"] == "2026-12-01T12:00:00.000Z" and link["created_by"]


def test_the_share_dialog_refuses_a_bad_expiry_and_creates_nothing(live_db):
    path, _ = live_db

    async def scenario(pilot: Any) -> None:
        await pilot.press("s")
        await settle(pilot)
        await pilot.click("#expiry-date")
        await settle(pilot)
        assert pilot.app.focused.id == "share-date"
        await type_text(pilot, "2026-10-01")  # in the past of the app's clock
        await pilot.press("enter")
        await settle(pilot)
        assert "not in the future" in static_text(pilot, "#share-result")
        assert pilot.app.screen.url is None

    run(make_app(path), scenario)
    conn = store.open_db(path, readonly=True)
    assert conn.execute("SELECT count(*) FROM share_links").fetchone()[0] == 0
    conn.close()


def test_a_click_selects_a_row_and_a_double_click_opens_it(fixture_db):
    path, events = fixture_db
    order = newest_first(events)

    async def scenario(pilot: Any) -> None:
        await pilot.click(EventList, offset=(30, 3))  # line 0 is the header: line 3 is the third event
        assert events_list(pilot).selected().event.id == order[2].id
        await pilot.click(EventList, offset=(30, 5), times=2)
        await settle(pilot)
        assert pilot.app.screen.event.id == order[4].id

    run(make_app(path), scenario)


def test_a_failing_query_is_reported_not_fatal(fixture_db, monkeypatch):
    path, _ = fixture_db

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the disk is on fire")

    async def scenario(pilot: Any) -> None:
        monkeypatch.setattr(mirror_mod, "first_page", broken)
        pilot.app.screen.apply_filter(parse("user:bob@example.com"))
        await settle(pilot)
        assert any("Reading the mirror failed: the disk is on fire" in n.message for n in pilot.app._notifications)
        monkeypatch.undo()
        await pilot.press("R")  # reload works again
        await settle(pilot)
        assert events_list(pilot).total == sum(1 for e in fixture_db[1] if e.actor == "bob@example.com")

    run(make_app(path), scenario)
