"""Admin password checks for `auditkit serve`: the /-/login page and HTTP Basic credentials, parsed once here.

- A check runs on its own small thread pool, never on the event loop (a pbkdf2 hash costs ~0.1 s of CPU), and does
  the same work for an unknown name as for an admin's (a hash of the same cost against a dummy), so its time does not
  say which admins exist.
- Basic credentials are parsed once (base64, then UTF-8, which RFC 7617 allows) by the gate, which then takes the
  Authorization header out of the scope: nothing downstream (Datasette, other plugins) sees or re-parses it. A
  malformed header is a failed check, not an error.
- Failures are limited per source IP (FailureLimit): after LIMIT failures within WINDOW_S seconds, login attempts and
  Basic credentials from that IP answer 429 until the window has room again. The moment an IP reaches the limit is
  recorded once, as an Access event (action and outcome `denied`, status 429) on the mirror's local chain.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import dataclasses
import datetime as dt
import math
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

from auditkit import store
from auditkit.model.events import Event, format_timestamp, new_event_id
from auditkit.model.safe_text import printable

LIMIT = 20  # failed checks from one IP …
WINDOW_S = 60.0  # … within this many seconds, and further attempts answer 429
SCOPE_ACTOR = "auditkit.basic_actor"  # where the gate leaves the actor that valid Basic credentials name
LOCAL_RACK = "local"
_TRACKED_IPS = 10_000  # at most this many IPs' failures are remembered (the oldest are forgotten first)


class FailureLimit:
    """Failed password checks per source IP within a sliding window, counting the checks still running as failures
    until they end, so that concurrent attempts cannot pass the limit either. Thread-safe."""

    def __init__(self, limit: int = LIMIT, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._running: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def _recent(self, ip: str, now: float) -> collections.deque[float]:
        times = self._failures.get(ip)
        if times is None:
            return collections.deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _wait(self, ip: str, now: float) -> int | None:
        times = self._recent(ip, now)
        if len(times) + self._running[ip] < self.limit:
            return None
        if len(times) < self.limit:
            return 1  # full of checks still running: one of them may free a place
        return max(1, math.ceil(times[-self.limit] + self.window_s - now))

    def retry_after(self, ip: str | None) -> int | None:
        """Seconds until `ip` may try again, or None when it may try now."""
        with self._lock:
            return self._wait(ip or "", self.clock())

    def start(self, ip: str | None) -> int | None:
        """Take a place for one check from `ip`: None when taken (call finish), else the seconds to wait."""
        key = ip or ""
        with self._lock:
            wait = self._wait(key, self.clock())
            if wait is None:
                self._running[key] += 1
            return wait

    def finish(self, ip: str | None, failed: bool) -> bool:
        """End a check started with start(); True when its failure brings `ip` to the limit (the moment to record,
        once)."""
        key = ip or ""
        with self._lock:
            self._running[key] -= 1
            if self._running[key] <= 0:
                del self._running[key]
            if not failed:
                return False
            times = self._recent(key, self.clock())
            times.append(self.clock())
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > _TRACKED_IPS:
                self._failures.popitem(last=False)
            return len(times) == self.limit


class Limited(Exception):
    """Too many failed checks from this IP: answer 429 with Retry-After."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class Credentials:
    username: str
    password: str


MALFORMED = Credentials("", "")  # a Basic header that does not decode: checked (and failed) like any other


def basic_credentials(scope: Mapping[str, Any]) -> Credentials | None:
    """The Basic credentials of a request (MALFORMED when they do not decode), or None when it carries none."""
    for name, value in scope.get("headers") or ():
        if bytes(name).lower() != b"authorization":
            continue
        scheme, _, encoded = bytes(value).strip().partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return MALFORMED
        username, sep, password = decoded.partition(":")
        return Credentials(username, password) if sep else MALFORMED
    return None


def without_authorization(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope without its Authorization header (once the gate has read it)."""
    headers = [(n, v) for n, v in scope.get("headers") or () if bytes(n).lower() != b"authorization"]
    return dict(scope, headers=headers)


class Passwords:
    """The admins' password hashes and the checks against them (off the event loop, constant work), with the
    failure limit."""

    def __init__(self, hashes: Mapping[str, str], limit: FailureLimit | None = None):
        self.hashes = {email.strip().lower(): h for email, h in hashes.items() if isinstance(h, str) and h}
        self.limit = limit or FailureLimit()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="auditkit-passwords")
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _dummy_hash(self) -> str:
        """A hash as costly to check as the admins' (their largest iteration count), of a password nobody knows."""
        from datasette_auth_passwords.utils import hash_password

        with self._dummy_lock:
            if self._dummy is None:
                iterations = max((_iterations(h) for h in self.hashes.values()), default=480_000)
                self._dummy = hash_password(secrets.token_hex(16), iterations=iterations)
            return self._dummy

    def check(self, username: str, password: str) -> str | None:
        """The admin's id when `password` is theirs, else None; the same work whether or not the name exists."""
        from datasette_auth_passwords.utils import verify_password

        email = username.strip().lower()
        stored = self.hashes.get(email)
        try:
            ok = verify_password(password, stored or self._dummy_hash())
        except (AssertionError, ValueError):  # a hash of another algorithm: never matches
            ok = False
        return email if ok and stored is not None else None

    async def verify(self, site: Any, credentials: Credentials, ip: str | None, user_agent: str | None,
                     via: str) -> str | None:
        """check() on the password pool: the admin's id, or None. Raises Limited when `ip` has no place left; a
        failure counts against `ip`, and the one that reaches the limit is recorded."""
        wait = self.limit.start(ip)
        if wait is not None:
            raise Limited(wait)
        email = None
        try:
            loop = asyncio.get_running_loop()
            email = await loop.run_in_executor(self._pool, self.check, credentials.username, credentials.password)
        finally:
            reached = self.limit.finish(ip, failed=email is None)
        if reached:
            await site.run(lambda conn: record_limit(conn, ip, user_agent, via))
        return email


def _iterations(password_hash: str) -> int:
    try:
        return int(password_hash.split("$")[1])
    except (IndexError, ValueError):
        return 0


def record_limit(conn: Any, ip: str | None, user_agent: str | None, via: str,
                 now: dt.datetime | None = None) -> Event:
    """The Access event for an IP reaching the failure limit (once per time it reaches it)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    where = ip or "an unknown address"
    draft = Event(
        id=new_event_id(int(now.timestamp() * 1000)), timestamp=format_timestamp(now), actor="unknown",
        actor_type="user", rack=LOCAL_RACK, category="Access", action="denied",
        description=f"Refused admin password checks from {where} for a while: {LIMIT} failed within "
                    f"{WINDOW_S:.0f} s (via {via})",
        outcome="denied", status=429, source_ip=_field(ip, 64), user_agent=_field(user_agent, 300),
        details={"failures": LIMIT, "window_s": int(WINDOW_S), "via": via},
    )
    return store.append(conn, [draft])[0]


def _field(value: str | None, limit: int) -> str | None:
    return printable(value)[:limit] if value else None


def too_many_text(retry_after: int) -> str:
    return f"Too many failed password checks from this address: try again in {retry_after} s."


async def send_too_many(send: Any, retry_after: int) -> None:
    """429 with Retry-After, as a bare ASGI response (the gate answers it before Datasette routes anything)."""
    body = (too_many_text(retry_after) + "\n").encode()
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"retry-after", str(retry_after).encode())]})
    await send({"type": "http.response.body", "body": body})


# --- the /-/login page ----------------------------------------------------------------------------------------------

async def login_page(request: Any, datasette: Any) -> Any:
    """/-/login: datasette-auth-passwords' form, checked here (off the loop, limited per IP)."""
    from auditkit.share.site.instance import site_for
    from auditkit.share.site.responses import client, methods, response

    site = site_for(datasette)
    if (refused := methods(request, "GET", "HEAD", "POST")) is not None:
        return refused
    error = None if site.passwords.hashes else "This instance does not have any configured accounts"
    if request.method == "POST":
        ip, agent = client(request)
        posted = await request.post_vars()
        credentials = Credentials(posted.get("username") or "", posted.get("password") or "")
        try:
            email = await site.passwords.verify(site, credentials, ip, agent, via="login")
        except Limited as e:
            return response().text(too_many_text(e.retry_after), status=429,
                                   headers={"retry-after": str(e.retry_after)})
        if email is not None:
            done = response().redirect(datasette.urls.path("/"))
            done.set_cookie("ds_actor", datasette.sign({"a": {"id": email}}, "actor"))
            return done
        error = "Invalid username or password"
    body = await datasette.render_template("password_login.html", {"error": error}, request=request)
    return response().html(body)
