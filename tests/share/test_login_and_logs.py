"""`auditkit serve` against hostile requests (issue 13): admin password checks off the event loop with the same
work for unknown names, Basic credentials that do not decode (or are not ASCII), the per-IP failure limit on /-/login
and Basic auth (429, recorded once), and a log of one line per refused request, never headers, cookies or locals.

The limit and the Basic parsing go through the real Datasette app with the plugin (in-process, a chosen client IP
per request); the log, the timing and the event loop are measured on a real `auditkit serve` over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditkit import store
from auditkit.model.filters import parse
from auditkit.share import admins, links as sharing, serve
from auditkit.share.site import login
from convox_sim.servers import free_port, stop_process, wait_until_listening
from helpers import close_datasette, draft

ADMIN = "admin@example.com"
PASSWORD = "correct horse battery staple"
UNICODE_ADMIN = "zoë@example.com"
UNICODE_PASSWORD = "pässwörd-ünïcödé-ß"


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


class App:
    """The real Datasette app of a fresh mirror, called over ASGI with a chosen client IP."""

    def __init__(self, tmp: Path):
        self.path = tmp / "data" / "audit.db"
        conn = store.open_db(self.path)
        store.append(conn, [draft(description=f"INSCOPE event {i}") for i in range(3)], source="gw")
        admins.add_admin(self.path, ADMIN, PASSWORD)
        admins.add_admin(self.path, UNICODE_ADMIN, UNICODE_PASSWORD)
        self.secret = sharing.secret_for(self.path)
        _, url = sharing.create(conn, parse("app:web"), secret=self.secret, expires="7d", created_by=ADMIN,
                                base_url="http://localhost")
        self.token = url.rsplit("/", 1)[1]
        conn.close()
        self.ds = serve.make_datasette(self.path)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.ds.invoke_startup())

    def call(self, method: str, path: str, ip: str, headers: list[tuple[bytes, bytes]] = (),
             body: bytes = b"") -> tuple[int, dict[bytes, bytes], str]:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path.split("?")[0], "raw_path": path.split("?")[0].encode(),
                 "query_string": path.partition("?")[2].encode(), "root_path": "",
                 "headers": [(b"host", b"localhost"), *headers], "client": (ip, 40000), "server": ("localhost", 80)}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        self.loop.run_until_complete(self.ds.app()(scope, receive, send))
        start = next(m for m in sent if m["type"] == "http.response.start")
        text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode("utf-8",
                                                                                                     "replace")
        return start["status"], {bytes(k).lower(): bytes(v) for k, v in start["headers"]}, text

    def login(self, ip: str, username: str, password: str) -> tuple[int, dict[bytes, bytes], str]:
        status, headers, text = self.call("GET", "/-/login", ip)
        token = re.search(r'name="csrftoken" value="([^"]+)"', text).group(1)
        cookie = headers[b"set-cookie"].split(b";")[0]
        form = httpx.QueryParams({"username": username, "password": password, "csrftoken": token})
        return self.call("POST", "/-/login", ip, [(b"cookie", cookie),
                                                  (b"content-type", b"application/x-www-form-urlencoded")],
                         str(form).encode())

    def limit_events(self) -> list[Any]:
        conn = store.open_db(self.path, readonly=True)
        try:
            return store.page(conn, parse("category:Access action:denied rack:local"), limit=100).events
        finally:
            conn.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    a = App(tmp_path_factory.mktemp("hostile-serve"))
    yield a
    close_datasette(a.ds)
    a.loop.close()


@pytest.mark.parametrize("header", [
    b"Basic " + base64.b64encode("é:é".encode("latin-1")),  # not UTF-8: was a 500 (ascii decode)
    b"Basic " + base64.b64encode("ü:ö".encode()),  # UTF-8, no such admin
    b"Basic !!!not base64!!!",
    b"Basic " + base64.b64encode(b"no colon"),
    b"basic",
])
def test_garbled_or_non_ascii_basic_credentials_are_a_failed_check_not_a_500(app, header):
    status, _, _ = app.call("GET", "/audit/events.json", "198.51.100.1", [(b"authorization", header)])
    assert status == 403
    status, _, text = app.call("GET", "/-/shared", "198.51.100.1", [(b"authorization", header)])
    assert status in (200, 403) and "Internal server error" not in text


def test_an_admin_with_a_non_ascii_password_logs_in_with_basic_credentials(app):
    ok = [(b"authorization", basic(UNICODE_ADMIN, UNICODE_PASSWORD))]
    status, _, text = app.call("GET", "/audit/events.json", "198.51.100.2", ok)
    assert status == 200 and "INSCOPE" in text
    wrong = [(b"authorization", basic(UNICODE_ADMIN, UNICODE_PASSWORD + "x"))]
    assert app.call("GET", "/audit/events.json", "198.51.100.2", wrong)[0] == 403


def test_the_login_form_checks_names_case_insensitively_and_refuses_a_wrong_password(app):
    status, headers, _ = app.login("198.51.100.3", ADMIN.upper(), PASSWORD)
    assert status == 302 and headers[b"set-cookie"].startswith(b"ds_actor=")
    status, _, text = app.login("198.51.100.3", ADMIN, "wrong")
    assert status == 200 and "Invalid username or password" in text


@pytest.mark.parametrize("via", ["login", "basic"])
def test_twenty_failures_a_minute_from_one_ip_then_429_recorded_once(app, via):
    ip = {"login": "203.0.113.7", "basic": "203.0.113.8"}[via]
    before = len(app.limit_events())

    def attempt(password: str) -> tuple[int, dict[bytes, bytes], str]:
        if via == "login":
            return app.login(ip, ADMIN, password)
        return app.call("GET", "/-/shared", ip, [(b"authorization", basic(ADMIN, password))])

    for i in range(login.LIMIT):
        status, _, _ = attempt(f"guess {i}")
        assert status != 429, f"refused after {i} failures"
    for password in ("guess again", PASSWORD):  # past the limit even the right password waits
        status, headers, text = attempt(password)
        assert status == 429 and int(headers[b"retry-after"]) > 0 and "try again" in text
    events = app.limit_events()
    assert len(events) == before + 1
    event = events[0]
    assert (event.outcome, event.status, event.source_ip, event.details["via"]) == ("denied", 429, ip, via)
    assert "20 failed" in event.description
    # another address is not affected
    assert app.call("GET", "/audit/events.json", "203.0.113.99", [(b"authorization", basic(ADMIN, PASSWORD))])[0] \
        == 200


def test_the_limit_forgets_failures_older_than_its_window_and_counts_running_checks():
    now = [1000.0]
    limit = login.FailureLimit(limit=3, window_s=60, clock=lambda: now[0])

    def fail(ip: str = "a") -> bool:
        assert limit.start(ip) is None
        return limit.finish(ip, failed=True)

    assert [fail() for _ in range(3)] == [False, False, True]
    assert limit.retry_after("a") == 60 and limit.start("a") == 60 and limit.retry_after("b") is None
    now[0] += 30
    assert limit.retry_after("a") == 30
    now[0] += 30.5
    assert limit.retry_after("a") is None
    assert fail() is False  # the old failures are gone: one of three
    # checks still running hold their places: three at once from "b", a fourth waits
    assert [limit.start("b") for _ in range(4)] == [None, None, None, 1]
    assert limit.finish("b", failed=False) is False  # a success frees its place
    assert limit.start("b") is None


def test_concurrent_attempts_from_one_ip_get_at_most_the_limit_checked(app):
    ip = "203.0.113.50"

    async def attempt(i: int) -> int:
        sent: list[dict[str, Any]] = []
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/-/shared", "raw_path": b"/-/shared", "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"localhost"),
                                              (b"authorization", basic(ADMIN, f"guess {i}"))],
                 "client": (ip, 40000 + i), "server": ("localhost", 80)}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app.ds.app()(scope, receive, send)
        return next(m for m in sent if m["type"] == "http.response.start")["status"]

    async def all_at_once() -> list[int]:
        return await asyncio.gather(*(attempt(i) for i in range(3 * login.LIMIT)))

    statuses = app.loop.run_until_complete(all_at_once())
    assert statuses.count(429) == 2 * login.LIMIT, statuses
    assert len([e for e in app.limit_events() if e.source_ip == ip]) == 1


def test_unknown_names_cost_a_hash_of_the_same_work():
    from datasette_auth_passwords.utils import hash_password

    passwords = login.Passwords({ADMIN: hash_password(PASSWORD, iterations=100_000)})
    try:
        def timed(user: str) -> float:
            started = time.perf_counter()
            assert passwords.check(user, "wrong password") is None
            return time.perf_counter() - started

        known = statistics.median(timed(ADMIN) for _ in range(5))
        unknown = statistics.median(timed("nobody@example.com") for _ in range(5))
        assert unknown > 0.5 * known and known > 0.5 * unknown, (known, unknown)
        assert passwords.check(ADMIN, PASSWORD) == ADMIN
    finally:
        passwords.close()


# --- a real `auditkit serve` ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(app: App, tmp_path_factory: pytest.TempPathFactory) -> Any:
    port = free_port()
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "auditkit.cli", "serve", "--db", str(app.path), "--port",
                                 str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200"))
    try:
        wait_until_listening(port, proc)
        yield f"http://127.0.0.1:{port}", log, proc
    finally:
        stop_process(proc)


def test_a_refused_request_is_one_log_line_without_headers_cookies_or_locals(app, served):
    base, log, _ = served
    secrets = {"user-agent": "UA-SECRET-1", "cookie": f"ds_share={app.token}; other=COOKIE-SECRET-2",
               "authorization": basic(ADMIN, "PASSWORD-SECRET-3").decode()}
    before = log.read_bytes()
    with httpx.Client(base_url=base, timeout=10) as client:
        for path in ("/-/shared/x", "/-/shared/events.xml", "/-/shared/replay/nope/more"):
            assert client.get(path, headers=secrets).status_code == 404
    time.sleep(0.3)
    written = log.read_bytes()[len(before):].decode()
    lines = written.splitlines()
    assert lines == ["GET /-/shared/x: 404 NotFound", "GET /-/shared/events.xml: 404 NotFound",
                     "GET /-/shared/replay/nope/more: 404 NotFound"], written
    for secret in ("UA-SECRET-1", "COOKIE-SECRET-2", app.token, base64.b64encode(f"{ADMIN}:".encode()).decode()[:12],
                   "locals", "Traceback"):
        assert secret not in written


def test_login_takes_as_long_for_an_unknown_name_as_for_an_admin(app, served):
    base, _, _ = served
    with httpx.Client(base_url=base, timeout=30) as client:
        def timed(user: str, n: int) -> float:
            page = client.get("/-/login")
            token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
            started = time.perf_counter()
            answer = client.post("/-/login", data={"username": user, "password": "wrong", "csrftoken": token},
                                 headers={"x-forwarded-for": f"192.0.2.{n}"})
            assert answer.status_code == 200 and "Invalid username or password" in answer.text
            return time.perf_counter() - started

        pairs = [(timed(ADMIN, 2 * i), timed("nobody@example.com", 2 * i + 1)) for i in range(5)]  # interleaved
        known, unknown = statistics.median(k for k, _ in pairs), statistics.median(u for _, u in pairs)
    print(f"login: admin {known * 1000:.0f} ms, unknown name {unknown * 1000:.0f} ms")
    assert unknown > 0.5 * known and known > 0.5 * unknown, (known, unknown)


def test_wrong_basic_credentials_do_not_slow_the_share_pages(app, served):
    """Four clients sending wrong Basic credentials (each from its own forwarded address, so that the limit does not
    stop them): the event loop still answers share pages at about its idle speed."""
    base, _, _ = served
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get(f"/-/share/{app.token}").status_code == 302

        def page_ms(n: int) -> float:
            times = []
            for _ in range(n):
                started = time.perf_counter()
                assert client.get("/-/shared").status_code == 200
                times.append(time.perf_counter() - started)
            return statistics.median(times) * 1000

        idle = page_ms(15)
        stop = threading.Event()

        def attack(k: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as attacker:
                i = 0
                while not stop.is_set():
                    i += 1
                    attacker.get("/-/shared", headers={"authorization": basic(ADMIN, "guess").decode(),
                                                       "x-forwarded-for": f"10.{k}.{i // 250}.{i % 250}"})

        threads = [threading.Thread(target=attack, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            loaded = page_ms(15)
        finally:
            stop.set()
            for t in threads:
                t.join()
    print(f"share page p50: idle {idle:.1f} ms, with 4 clients sending wrong Basic credentials {loaded:.1f} ms")
    assert loaded < max(10 * idle, 150), (idle, loaded)


# --- the command line and the admin form on hostile input -----------------------------------------------------------

def test_share_views_and_list_show_a_visitors_user_agent_and_a_note_literally(tmp_path):
    from click.testing import CliRunner

    from auditkit.cli import main
    from auditkit.model.safe_text import is_printable

    db = tmp_path / "audit.db"
    conn = store.open_db(db)
    link, _ = sharing.create(conn, parse("app:web"), secret=sharing.secret_for(db), expires="7d", created_by=ADMIN,
                             base_url="http://localhost", note="[/] for \x1b]0;pwned\x07 the auditor")
    sharing.record_view(conn, link, what="page 1", ip="203.0.113.5", user_agent="[/]evil\x1b[2J[link=https://x]y")
    conn.close()
    for args in (["share", "views", link.id], ["share", "list"]):
        result = CliRunner().invoke(main, [*args, "--db", str(db)])
        assert result.exit_code == 0, result.output
        assert is_printable(result.output.replace("\n", "")), result.output
    views = CliRunner().invoke(main, ["share", "views", link.id, "--db", str(db)]).output
    assert "[/]evil\\x1b[2J[link=https://x]y" in views.replace("\n", "").replace(" ", "")
    listed = CliRunner().invoke(main, ["share", "list", "--db", str(db)]).output
    assert "[/]for\\x1b]0;pwned\\x07theauditor" in "".join(listed.split())


def test_share_create_until_and_expires_the_last_representable_day(tmp_path):
    from click.testing import CliRunner

    from auditkit.cli import main

    db = tmp_path / "audit.db"
    store.open_db(db).close()
    result = CliRunner().invoke(main, ["share", "create", "app:web", "--until", "9999-12-31", "--expires",
                                       "9999-12-31", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "through 9999-12-31, expires 9999-12-31 23:59:59 UTC" in result.output


def test_the_admin_form_takes_until_the_last_representable_day(app):
    cookie = {"ds_actor": app.ds.sign({"a": {"id": ADMIN}}, "actor")}
    jar = "; ".join(f"{k}={v}" for k, v in cookie.items()).encode()
    status, headers, text = app.call("GET", "/-/share-links", "198.51.100.9", [(b"cookie", jar)])
    assert status == 200
    token = re.search(r'name="csrftoken" value="([^"]+)"', text).group(1)
    jar += b"; " + headers[b"set-cookie"].split(b";")[0]
    form = httpx.QueryParams({"filter": "app:web", "since": "", "until": "9999-12-31", "expires": "9999-12-31",
                              "note": "", "csrftoken": token})
    status, headers, text = app.call("POST", "/-/share-links", "198.51.100.9",
                                     [(b"cookie", jar), (b"content-type", b"application/x-www-form-urlencoded")],
                                     str(form).encode())
    assert status == 302, text[:500]
    form = httpx.QueryParams({"filter": '"[/]" until:[/]', "since": "", "until": "", "expires": "7d",
                              "note": "", "csrftoken": token})
    status, _, text = app.call("POST", "/-/share-links", "198.51.100.9",
                               [(b"cookie", jar), (b"content-type", b"application/x-www-form-urlencoded")],
                               str(form).encode())
    assert status == 400 and "bad time &#39;[/]&#39;" in text
