"""How the share site answers: HTML pages rendered from the plugin's templates (with the URLs of its static files
and, on pages a link holder sees, the Content-Security-Policy), recordings, and the small refusals (405).

The static files are served by Datasette from the plugin's static/ directory at /-/static-plugins/auditkit/.
"""

from __future__ import annotations

from typing import Any

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
