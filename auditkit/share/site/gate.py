"""The lock-down around Datasette: every permission denied to anyone but an admin, the ASGI gate that answers 403 to
every path but the public ones, and the headers every response carries.

- `denies` is what the plugin's permission hook wrapper applies over every other plugin's answer.
- `asgi_wrapper` lets through the share pages, the login page and static files (PUBLIC_PATHS, matched on the raw
  path: no percent-encoding, no dot segments); anything else needs an admin actor.
- HTTP Basic credentials are read here, once (login.basic_credentials), checked off the event loop and limited per
  IP (429 past the limit); the Authorization header is then taken out of the scope, so Datasette and other plugins
  never see it, and valid credentials leave their actor in the scope (hooks.actor_from_request returns it).
- Every response gets SECURITY_HEADERS (Referrer-Policy: no-referrer, X-Robots-Tag: noindex, Cache-Control: private,
  no-store, …), and an admin login's ds_actor cookie is re-signed to expire and made HttpOnly.
"""

from __future__ import annotations

import functools
import re
import time
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable

from auditkit.share.site import login
from auditkit.share.site.instance import site_for

ADMIN_SESSION_S = 12 * 3600  # admin logins (ds_actor) end after this

# Paths anyone may reach (after the base_url prefix); everything else is for admins only. No percent-encoding and
# no dot segments: such a path never names a share page, so it is refused here rather than reinterpreted later.
_SEG = r"[A-Za-z0-9_-][A-Za-z0-9_.:-]*"
PUBLIC_PATHS = re.compile(
    rf"^(?:/-/share/{_SEG}|/-/shared(?:/{_SEG})*|/-/login|/-/logout|/-/auth-token"
    rf"|/-/static(?:/{_SEG})+|/-/static-plugins/auditkit(?:/{_SEG})+|/robots\.txt|/favicon\.ico)$"
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"referrer-policy", b"no-referrer"),
    (b"x-robots-tag", b"noindex, nofollow, noarchive"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"private, no-store"),
)


def denies(datasette: Any, actor: Any) -> bool:
    """Whether every permission check of this actor must answer no: anyone but an admin, on a configured instance.
    The plugin applies it as a hook wrapper around every other permission_allowed implementation (see
    datasette_auditkit.hooks), so no other plugin, however it is ordered, can widen it."""
    site = site_for(datasette)
    return site is not None and not site.is_admin(actor)


def route_path(datasette: Any, scope: dict[str, Any]) -> str | None:
    """The path Datasette's router matches (raw, still percent-encoded, without the base_url prefix)."""
    raw = scope.get("raw_path")
    try:
        path = raw.decode("ascii") if raw else scope["path"]
    except UnicodeDecodeError:
        return None
    path = path.partition("?")[0]
    base = datasette.setting("base_url")
    if base != "/" and path.startswith(base):
        path = "/" + path[len(base):]
    return path


async def actor_of(datasette: Any, scope: dict[str, Any], receive: Any) -> Any:
    """The actor Datasette will see for this request (the same hooks, in the same order)."""
    from datasette.plugins import pm
    from datasette.utils import await_me_maybe
    from datasette.utils.asgi import Request

    request = Request(scope, receive)
    for result in pm.hook.actor_from_request(datasette=datasette, request=request):
        actor = await await_me_maybe(result)
        if actor:
            return actor
    return None


def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    def wrap(app: Any) -> Any:
        @functools.wraps(app)
        async def gate(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            site = site_for(datasette)
            if site is None:
                return await app(scope, receive, send)
            secure = scope.get("scheme") == "https" or (site.base_url or "").startswith("https:")

            async def send_with_headers(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message = dict(message, headers=_with_headers(datasette, message.get("headers") or [], secure))
                await send(message)

            credentials = login.basic_credentials(scope)
            if credentials is not None:
                scope = login.without_authorization(scope)
                peer = scope.get("client")
                ip = peer[0] if peer else None
                agent = next((bytes(v).decode("latin-1") for n, v in scope.get("headers") or ()
                              if bytes(n).lower() == b"user-agent"), None)
                try:
                    email = await site.passwords.verify(site, credentials, ip, agent, via="basic")
                except login.Limited as e:
                    return await login.send_too_many(send_with_headers, e.retry_after)
                if email is not None:
                    scope = dict(scope, **{login.SCOPE_ACTOR: {"id": email}})
            path = route_path(datasette, scope)
            if path is None or not PUBLIC_PATHS.match(path):
                if not site.is_admin(await actor_of(datasette, scope, receive)):
                    return await _send_forbidden(send_with_headers)
            await app(scope, receive, send_with_headers)

        return gate

    return wrap


def _with_headers(datasette: Any, headers: list[Any], secure: bool) -> list[tuple[bytes, bytes]]:
    names = {name for name, _ in SECURITY_HEADERS}
    kept = []
    for name, value in headers:
        name, value = bytes(name), bytes(value)
        lower = name.lower()
        if lower in names:
            continue
        if lower == b"set-cookie" and value.startswith(b"ds_actor="):
            value = _harden_actor_cookie(datasette, value, secure)
        kept.append((name, value))
    return kept + list(SECURITY_HEADERS)


def _harden_actor_cookie(datasette: Any, header: bytes, secure: bool) -> bytes:
    """Admin logins (datasette-auth-passwords' /-/login, Datasette's /-/auth-token) set a ds_actor cookie with no
    expiry and readable by scripts: re-sign it with an expiry Datasette enforces, and make it HttpOnly."""
    from datasette.utils import baseconv
    from itsdangerous import BadSignature

    cookie = SimpleCookie()
    try:
        cookie.load(header.decode("latin-1"))
    except CookieError:
        return header
    morsel = cookie.get("ds_actor")
    if morsel is None or not morsel.value:
        return header  # logging out
    try:
        data = datasette.unsign(morsel.value, "actor")
    except BadSignature:
        return header
    if not isinstance(data, dict) or "a" not in data:
        return header
    expires = int(time.time()) + ADMIN_SESSION_S
    value = datasette.sign({"a": data["a"], "e": baseconv.base62.encode(expires)}, "actor")
    parts = [f"ds_actor={value}", "Path=/", f"Max-Age={ADMIN_SESSION_S}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


async def _send_forbidden(send: Any) -> None:
    body = (b"<!DOCTYPE html><html><head><title>Forbidden</title></head><body><h1>Forbidden</h1>"
            b"<p>This page is for auditkit admins. <a href=\"/-/login\">Log in</a>.</p></body></html>")
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
