"""How the share site answers: HTML pages rendered from the plugin's templates (with the URLs of its static files
and, on pages a link holder sees, the Content-Security-Policy), recordings, the small refusals (405), and every
request that raised (error_response: Datasette's error page, and one log line without headers, cookies or locals).

The static files are served by Datasette from the plugin's static/ directory at /-/static-plugins/auditkit/.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from auditkit.model.safe_text import printable

log = logging.getLogger("auditkit.serve")

STATIC = "/-/static-plugins/auditkit"
PLAYER_JS = f"{STATIC}/asciinema-player/asciinema-player.min.js"
PLAYER_CSS = f"{STATIC}/asciinema-player/asciinema-player.css"
REPLAY_JS = f"{STATIC}/auditkit-replay.js"
SHARE_CSS = f"{STATIC}/auditkit-share.css"

# Share pages load nothing from elsewhere, and only what they use from here. The player (3.18) compiles its
# WebAssembly terminal from bytes inside its bundle ('wasm-unsafe-eval') and fetches the recording (connect-src); it
# sets styles through the CSSOM, so no 'unsafe-inline'; no page loads images, fonts or workers.
# tests/share/test_browser.py replays a recording under this policy in Chromium and fails on any violation.
SHARE_CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def response() -> Any:
    """Datasette's Response class."""
    from datasette.utils.asgi import Response

    return Response


async def html(datasette: Any, request: Any, template: str, context: dict[str, Any], status: int = 200,
               share: bool = False) -> Any:
    """A page from one of the plugin's templates; `share` adds SHARE_CSP (every page a link holder may see)."""
    context = dict(context, player_js=datasette.urls.path(PLAYER_JS), player_css=datasette.urls.path(PLAYER_CSS),
                   replay_js=datasette.urls.path(REPLAY_JS), share_css=datasette.urls.path(SHARE_CSS))
    body = await datasette.render_template(template, context, request=request)
    headers = {"content-security-policy": SHARE_CSP} if share else {}
    return response().html(body, status=status, headers=headers)


def cast_response(session_id: str, cast: bytes) -> Any:
    """A recording (asciicast v2), inline."""
    return response()(cast, content_type="application/x-asciicast", headers={
        "content-disposition": f'inline; filename="{session_id}.cast"', "content-security-policy": SHARE_CSP})


def client(request: Any) -> tuple[str | None, str | None]:
    """(IP, user agent) of a request."""
    peer = request.scope.get("client")
    return (peer[0] if peer else None), request.headers.get("user-agent")


def methods(request: Any, *allowed: str) -> Any:
    """A 405 response unless the request's method is one of `allowed` (then None)."""
    if request.method not in allowed:
        return response().text("Method not allowed", status=405, headers={"allow": ", ".join(allowed)})
    return None


def error_response(datasette: Any, request: Any, exception: Exception) -> Any:
    """What answers a request that raised: Datasette's error page (JSON for .json paths) with the status and message
    Datasette would give, but "Internal server error" for anything else, and one log line: method, path (a share
    token masked), status, the exception's type and, for a 500, where it was raised. Never a header, a cookie, a query
    string, a message or a local variable: those can hold an admin's password or a share token."""
    from datasette.utils.asgi import Base400
    from datasette.views.base import DatasetteError
    from markupsafe import Markup

    async def answer() -> Any:
        title = None
        if isinstance(exception, Base400):
            status, message = exception.status, str(exception.args[0]) if exception.args else ""
        elif isinstance(exception, DatasetteError):
            status, message, title = exception.status, exception.message, exception.title
            if exception.message_is_html:
                message = Markup(message)
        else:
            status, message = 500, "Internal server error"
        where = ""
        if status >= 500:
            frames = traceback.extract_tb(exception.__traceback__)
            if frames:
                where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"
        log.warning("%s %s: %d %s%s", printable(request.method)[:16], log_path(request.path), status,
                    type(exception).__name__, where)
        info = {"ok": False, "error": message, "status": status, "title": title}
        if request.path.endswith(".json"):
            return response().json(info, status=status)
        template = datasette.jinja_env.select_template([f"{status}.html", "error.html"])
        return response().html(await template.render_async(dict(
            info, urls=datasette.urls, app_css_hash=datasette.app_css_hash(), menu_links=lambda: [])), status=status)

    return answer


def log_path(path: str) -> str:
    """A request path as a log may show it: printable, bounded, with the token of a share URL masked."""
    return printable(re.sub(r"/-/share/[^/]*", "/-/share/…", path))[:300]
