"""Which route a request reaches: the most specific pattern of ROUTES that matches its method and decoded path,
and the path vars it binds."""

from __future__ import annotations

import re

from auditkit.capture.catalog.routes import GREEDY_VARS, ROUTES, Route


def _compile(route: Route) -> tuple[re.Pattern[str], tuple[int, int, int]]:
    """The route's regex over the decoded path, and its specificity."""
    regex, literal_segments, literal_chars, greedy = "", 0, 0, 0
    for segment in route.path.strip("/").split("/") if route.path != "/" else []:
        regex += "/"
        pieces = re.split(r"(\{[A-Za-z0-9_]+\})", segment)
        if len(pieces) == 1:
            literal_segments += 1
        for piece in pieces:
            if piece.startswith("{") and piece.endswith("}"):
                name = piece[1:-1]
                if name in GREEDY_VARS:
                    greedy += 1
                    regex += f"(?P<{name}>.*)"
                else:
                    regex += f"(?P<{name}>[^/]+)"
            elif piece:
                literal_chars += len(piece)
                regex += re.escape(piece)
    return re.compile(regex), (literal_segments, literal_chars, -greedy)


_INDEX: tuple[tuple[Route, re.Pattern[str], tuple[int, int, int]], ...] = tuple(
    (route, *_compile(route)) for route in ROUTES)


def match(method: str, path: str, websocket: bool = False) -> tuple[Route, dict[str, str]] | None:
    """The route a request reaches, with its path vars, or None.

    `path` is the decoded path the rack routes on (capture/canonical.py makes it from the path as sent); it is
    matched as it is, so a var holds exactly the characters the rack's router gives its handler.

    A websocket upgrade matches SOCKET and ANY routes; any other request matches routes of its method and ANY
    routes. The most specific pattern wins (more literal segments, then more literal characters, then fewer
    greedy vars), and at equal specificity a route of the exact method beats ANY. A query string is ignored.
    """
    method = method.upper()
    path = path.split("?", 1)[0].split("#", 1)[0]
    best: tuple[tuple[int, int, int], int] | None = None
    found: tuple[Route, dict[str, str]] | None = None
    for route, regex, score in _INDEX:
        if websocket:
            if route.method not in ("SOCKET", "ANY"):
                continue
        elif route.method not in (method, "ANY"):
            continue
        m = regex.fullmatch(path)
        if m is None:
            continue
        rank = (score, 0 if route.method == "ANY" else 1)
        if best is None or rank > best:
            best = rank
            found = (route, dict(m.groupdict()))
    return found
