"""The share pages and the admin pages in a real browser: headless Chromium (/usr/bin/chromium, the Debian package)
driven by Playwright, against `auditkit serve` running as its own process on a synthetic mirror.

- An auditor opens a link: the page states the filter, range and expiry, the token leaves the address bar, paging
  forward to the end and back shows exactly the link's events, the CSV download holds exactly them, and a recording
  among them replays in the asciinema player under the share pages' Content-Security-Policy.
- An expired link and a revoked link show their pages, saying when.
- An admin logs in at /-/login, creates a link from a filter in the share-links form, sees it listed, opens it in
  a fresh browser, revokes it in the form, and the fresh browser then sees the revoked page.

Every page a test opens is watched: a Content-Security-Policy violation or an uncaught script error fails the test.
Skipped when /usr/bin/chromium is missing, unless AUDITKIT_REQUIRE_BROWSER=1 (as .ci/run sets), which fails instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from auditkit import store
from auditkit.model import asciicast, export
from auditkit.share import links as sharing
from auditkit.share.site import pages as share_pages
from auditkit.share.site.responses import SHARE_CSP
from auditkit.synth import history as synth
from auditkit.model.filters import parse

from browser import CHROMIUM, CHROMIUM_ARGS, require_browser

require_browser()
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402

UTC = dt.timezone.utc
ADMIN = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
SEED, END, EVENTS = 7, dt.date(2026, 11, 1), 3000
SHARE_FILTER = "rack:acme/production"
SINCE, UNTIL = "2026-10-12", "2026-10-25"
WAIT_MS = 15_000
# Records, in every page the tests open, the Content-Security-Policy violations the page reports (the listener is
# added by the browser before the page's own scripts; it runs outside the page's CSP).
WATCH_CSP = ("window.__cspViolations = [];"
             "document.addEventListener('securitypolicyviolation', function (e) {"
             "  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI); });")


# --- the server ------------------------------------------------------------------------------------------------------

class Server:
    """A synthetic mirror with an admin account and three links, served by `auditkit serve` in its own process."""

    def __init__(self, root: Path):
        self.db = root / "data" / "audit.db"
        self.conn = store.open_db(self.db)
        synth.write_history(self.conn, events=EVENTS, seed=SEED, end=END, parallel=False)
        subprocess.run([sys.executable, "-m", "auditkit.cli", "serve", "admins", "add", ADMIN, "--db", str(self.db),
                        "--password-stdin"], input=ADMIN_PASSWORD + "\n", text=True, check=True,
                       capture_output=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        secret = sharing.secret_for(self.db)
        made = dict(secret=secret, created_by=ADMIN, base_url=self.base, since=SINCE, until=UNTIL)
        self.link, self.url = sharing.create(self.conn, parse(SHARE_FILTER), expires="7d",
                                             note="Q4 sample for the auditors", **made)
        long_ago = dt.datetime.now(UTC) - dt.timedelta(days=10)
        self.expired, self.expired_url = sharing.create(self.conn, parse(SHARE_FILTER), expires="1d",
                                                        now=long_ago, **made)
        revoked, self.revoked_url = sharing.create(self.conn, parse(SHARE_FILTER), expires="7d", **made)
        self.revoked = sharing.revoke(self.conn, revoked.id, ADMIN)
        self.proc: subprocess.Popen[str] | None = None
        self.login_url = ""

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("AUDITKIT_BASE_URL", "AUDITKIT_DB")}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditkit.cli", "serve", "--db", str(self.db), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines: list[str] = []
        while not self.login_url:
            line = self.proc.stdout.readline()
            assert line, "auditkit serve stopped:\n" + "".join(lines)
            lines.append(line)
            if line.startswith("one-time admin login: "):
                self.login_url = line.split(": ", 1)[1].strip()
        deadline = time.monotonic() + 20
        while True:  # the URL is printed just before uvicorn binds
            try:
                if httpx.get(self.base + "/robots.txt", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "auditkit serve did not start listening"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
        self.conn.close()

    def shared_ids(self, link: sharing.ShareLink) -> list[str]:
        """The link's events, newest first, as the store gives them."""
        return [row["id"] for row in store.iter_rows(self.conn, sharing.scope(link))]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("browser"))
    # The fixture must be able to show what the tests look for: several pages, and recordings among them.
    matching = s.shared_ids(s.link)
    assert len(matching) > 2 * share_pages.PAGE_SIZE, f"the link matches only {len(matching)} events"
    assert _recorded_events(s), "no event in the link's scope has a recording"
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """Opens fresh browser contexts (each a browser with no cookies) whose pages report CSP violations and
    uncaught script errors."""

    def __init__(self, browser: Browser):
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []
        self.problems: list[str] = []

    def page(self) -> Page:
        context = self.browser.new_context(accept_downloads=True)
        context.set_default_timeout(WAIT_MS)
        context.add_init_script(WATCH_CSP)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        page.on("console", lambda m: self.problems.append(f"console: {m.text}")
                if "Content Security Policy" in m.text else None)
        self.pages.append(page)
        return page

    def violations(self) -> list[str]:
        found = list(self.problems)
        for page in self.pages:
            if not page.is_closed():
                found += page.evaluate("() => window.__cspViolations || []")
        return found

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browse(browser: Browser) -> Iterator[Watched]:
    watched = Watched(browser)
    try:
        yield watched
        assert watched.violations() == []
    finally:
        watched.close()


# --- helpers ---------------------------------------------------------------------------------------------------------

def _recorded_events(s: Server) -> list[dict[str, Any]]:
    """In-scope events of the main link whose recording the mirror holds, newest first."""
    rows = [r for r in store.iter_rows(s.conn, sharing.scope(s.link)) if r["session_id"]]
    held = store.held_sessions(s.conn, (r["session_id"] for r in rows))
    return [r for r in rows if r["session_id"] in held]


def _ids_on(page: Page) -> list[str]:
    return [row.get_attribute("data-event-id") for row in page.locator("table.auditkit-events tbody tr").all()]


_ESCAPES = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b.")


def _first_line_of(cast: bytes) -> str:
    """A line of text the recording prints (at least 12 visible characters), as a terminal would show it."""
    text = _ESCAPES.sub("", asciicast.parse(cast).output_text())
    for line in re.split(r"[\r\n]+", text):
        line = " ".join(line.split())
        if len(line) >= 12 and line.isprintable():
            return line
    raise AssertionError("the recording prints no line of text")


def _term(page: Page, name: str) -> Any:
    """What a page's list of terms says for `name` (Filter, Time range, This link, Status, …)."""
    return page.locator(f'dl.auditkit-terms > dt:text-is("{name}") + dd')


def _older(page: Page) -> None:
    """Follow "Older events »" and wait for that page."""
    older = page.locator("a[rel=next]")
    target = urllib.parse.urljoin(page.url, older.get_attribute("href"))
    older.click()
    expect(page).to_have_url(target)
    page.wait_for_load_state()


def _open_link(page: Page, url: str) -> None:
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/-/shared$"))


# --- the auditor ------------------------------------------------------------------------------------------------------

def test_an_auditor_opens_the_link_and_pages_through_exactly_its_events(server, browse):
    expected = server.shared_ids(server.link)
    page = browse.page()
    page.goto(server.url)
    assert page.url == server.base + "/-/shared"  # the token is gone from the address bar
    token = server.url.rsplit("/", 1)[1]
    assert token not in page.url
    expect(_term(page, "Filter")).to_have_text(SHARE_FILTER)
    expect(_term(page, "Time range")).to_have_text(f"from {SINCE} through {UNTIL}")
    expect(_term(page, "This link")).to_have_text(sharing.expiry_text(server.link))
    assert sharing.expiry_text(server.link).startswith("expires 20")
    expect(_term(page, "Note")).to_have_text("Q4 sample for the auditors")
    expect(_term(page, "Matching events")).to_have_text(f"{len(expected):,}")
    cookie = next(c for c in page.context.cookies() if c["name"] == share_pages.COOKIE)
    assert cookie["httpOnly"] and cookie["path"] == "/-/shared"

    pages: list[list[str]] = []
    while True:
        start = sum(len(p) for p in pages) + 1
        expect(page.locator(".auditkit-position")).to_contain_text(f"Events {start:,}–")
        ids = _ids_on(page)
        expect(page.locator(".auditkit-position")).to_have_text(
            f"Events {start:,}–{start + len(ids) - 1:,} of {len(expected):,}, newest first.")
        pages.append(ids)
        older = page.locator("a[rel=next]")
        if older.count() == 0:
            break
        _older(page)
    assert len(pages) == -(-len(expected) // share_pages.PAGE_SIZE) >= 3
    assert all(len(p) == share_pages.PAGE_SIZE for p in pages[:-1])
    seen = [event_id for p in pages for event_id in p]
    assert seen == expected  # every matching event exactly once, newest first
    assert set(seen) == set(expected) and len(set(seen)) == len(seen)

    for ids in reversed(pages[:-1]):  # and back, page by page
        page.go_back()
        assert _ids_on(page) == ids
    assert page.url == server.base + "/-/shared"
    for _ in pages[1:]:
        page.go_forward()
    assert _ids_on(page) == pages[-1]
    page.get_by_role("link", name="« Newest").click()
    expect(page).to_have_url(server.base + "/-/shared")
    page.wait_for_load_state()
    assert _ids_on(page) == pages[0]


def test_the_csv_download_holds_exactly_the_links_events(server, browse):
    page = browse.page()
    _open_link(page, server.url)
    with page.expect_download() as download:
        page.locator(".auditkit-downloads").get_by_role("link", name="CSV").click()
    assert download.value.suggested_filename == f"auditkit-{server.link.id}.csv"
    body = Path(download.value.path()).read_bytes()
    rows = list(store.iter_rows(server.conn, sharing.scope(server.link)))
    assert body == "".join(export.FORMATS["csv"](rows)).encode()  # the same bytes as `auditkit events --format csv`
    parsed = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["id"] for r in parsed] == server.shared_ids(server.link)
    assert {r["rack"] for r in parsed} == {"acme/production"}
    assert all(SINCE <= r["timestamp"][:10] <= UNTIL for r in parsed)
    assert {(r["id"], r["actor"], r["action"], r["hash"]) for r in parsed} == {
        (r["id"], r["actor"], r["action"], r["hash"]) for r in rows}


def test_a_recording_replays_in_the_player_under_the_pages_csp(server, browse):
    event = _recorded_events(server)[0]
    session_id = event["session_id"]
    line = _first_line_of(store.recording(server.conn, session_id))
    page = browse.page()
    _open_link(page, server.url)
    replay = page.locator(f'a[href="/-/shared/replay/{urllib.parse.quote(session_id)}"]')
    while replay.count() == 0:  # page on until the event's row, as an auditor would
        _older(page)
    with page.expect_response(lambda r: r.url.endswith(f"/-/shared/cast/{session_id}")) as cast, \
            page.expect_response(lambda r: r.url.endswith(f"/-/shared/replay/{session_id}")) as shown:
        replay.click()
    assert shown.value.status == 200 and shown.value.headers["content-security-policy"] == SHARE_CSP
    assert cast.value.status == 200 and cast.value.body() == store.recording(server.conn, session_id)
    expect(page.locator("h1")).to_have_text(f"Recording {session_id}")
    page.locator("#player .ap-play-button").click()
    expect(page.locator("#player .ap-term-text")).to_contain_text(line, timeout=WAIT_MS)


# --- links that no longer work ---------------------------------------------------------------------------------------

def test_an_expired_link_says_when_it_expired(server, browse):
    page = browse.page()
    response = page.goto(server.expired_url)
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("This link has expired")
    expect(page.locator(".auditkit-refusal")).to_have_text(
        f"This share link expired on {sharing.human_time(server.expired.expires_at)}.")
    assert not any(c["name"] == share_pages.COOKIE and c["value"] for c in page.context.cookies())
    assert page.locator("table.auditkit-events").count() == 0


def test_a_revoked_link_says_when_it_was_revoked(server, browse):
    page = browse.page()
    response = page.goto(server.revoked_url)
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("This link was revoked")
    expect(page.locator(".auditkit-refusal")).to_have_text(
        f"This share link was revoked on {sharing.human_time(server.revoked.revoked_at)}.")
    assert page.locator("table.auditkit-events").count() == 0


# --- the admin ----------------------------------------------------------------------------------------------------

def test_an_admin_creates_a_link_in_the_form_and_revokes_it_while_an_auditor_watches(server, browse):
    admin = browse.page()
    admin.goto(server.base + "/-/login")
    admin.get_by_label("Username").fill(ADMIN)
    admin.get_by_label("Password").fill(ADMIN_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    expect(admin).to_have_url(server.base + "/")

    wanted = "rack:acme/eu-west category:Processes"
    admin.goto(server.base + "/-/share-links?" + urllib.parse.urlencode({"filter": wanted}))
    expect(admin.locator("#filter")).to_have_value(wanted)  # pre-filled from the filter
    admin.locator("#since").fill("2026-10-20")
    admin.locator("#until").fill("2026-10-31")
    admin.locator("#expires").fill("2d")
    admin.locator("#note").fill("made in the browser")
    admin.get_by_role("button", name="Create share link").click()
    expect(admin).to_have_url(re.compile(r"/-/share-links/sl_[0-9a-f]{16}$"))
    link_id = admin.url.rsplit("/", 1)[1]
    expect(admin.locator("body")).to_contain_text(f"Share link {link_id} created")
    url = admin.locator("input.auditkit-url").input_value()
    assert url.startswith(server.base + "/-/share/")
    link = sharing.get(server.conn, link_id)
    assert (link.filter_text, link.since, link.until, link.note, link.created_by) == (
        wanted, "2026-10-20", "2026-10-31", "made in the browser", ADMIN)

    admin.get_by_role("link", name="← Share links").click()
    row = admin.locator("table.auditkit-links tr", has_text=link_id)
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("made in the browser")
    expect(row).to_contain_text(wanted)

    auditor = browse.page()  # another browser: no admin cookie
    _open_link(auditor, url)
    expect(_term(auditor, "Filter")).to_have_text(wanted)
    expected = server.shared_ids(link)
    assert 0 < len(expected) <= share_pages.PAGE_SIZE
    assert _ids_on(auditor) == expected

    admin.goto(f"{server.base}/-/share-links/{link_id}")
    expect(admin.locator("table.auditkit-views")).to_contain_text(f"page of events 1–{len(expected)}")
    admin.get_by_role("button", name="Revoke this link").click()
    expect(admin.locator("body")).to_contain_text(f"Share link {link_id} revoked")
    expect(_term(admin, "Status")).to_contain_text("revoked")
    assert sharing.get(server.conn, link_id).revoked_by == ADMIN

    response = auditor.reload()  # the auditor's next click
    assert response.status == 403
    expect(auditor.locator("h1")).to_have_text("This link was revoked")
    expect(auditor.locator(".auditkit-events")).to_have_count(0)


def test_the_one_time_login_url_logs_a_browser_in_once_and_the_admin_replays_from_the_events_table(server, browse):
    session_id = _recorded_events(server)[-1]["session_id"]
    line = _first_line_of(store.recording(server.conn, session_id))
    admin = browse.page()
    admin.goto(server.login_url)
    admin.goto(server.base + "/-/share-links")
    expect(admin.locator("h1")).to_have_text("Share links")
    admin.goto(server.base + "/audit/events?" + urllib.parse.urlencode({"session_id": session_id}))
    admin.locator(f'a[href="/-/replay/{session_id}"]').first.click()
    expect(admin).to_have_url(f"{server.base}/-/replay/{session_id}")
    admin.locator("#player .ap-play-button").click()
    expect(admin.locator("#player .ap-term-text")).to_contain_text(line, timeout=WAIT_MS)
    again = browse.page()
    assert again.goto(server.login_url).status == 403
    assert again.goto(server.base + "/-/share-links").status == 403
