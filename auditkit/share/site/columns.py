"""The admin pages' column order: Datasette shows a table's columns in schema order (for `events`: n, id, and the
hash chain's fields among the ones people read), and has no setting for another order. An admin's plain visit to
a table named in the plugin config's `reading_columns` (metadata.yml) is redirected to the same page with
`?_col=` in that order; Datasette keeps the primary key first, and every other column stays one `_col` away.
A visit that names its own columns (`_col`, `_nocol`) or asks for JSON or CSV is left as it is.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Any, Callable

from auditkit.share.site.gate import route_path
from auditkit.share.site.instance import CONFIG

CONFIG_KEY = "reading_columns"
_TABLE_PATH = re.compile(r"^/(?P<db>[A-Za-z0-9_-]+)/(?P<table>[A-Za-z0-9_]+)$")  # no .json, .csv: HTML pages only


def reading_order(datasette: Any) -> Callable[[Any], Any]:
    """An ASGI wrapper: GET /<mirror>/<table> of a configured table without `_col`/`_nocol` → 302 to it with them."""

    def wrap(app: Any) -> Any:
        @functools.wraps(app)
        async def reorder(scope: dict[str, Any], receive: Any, send: Any) -> None:
            config = datasette.plugin_config(CONFIG) or {}
            order = {str(table): [str(c) for c in columns] for table, columns in (config.get(CONFIG_KEY) or {}).items()}
            target = _redirect_target(datasette, scope, order, config.get("database"))
            if target is None:
                return await app(scope, receive, send)
            await send({"type": "http.response.start", "status": 302,
                        "headers": [(b"location", target.encode("ascii")), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})

        return reorder

    return wrap


def _redirect_target(datasette: Any, scope: dict[str, Any], order: dict[str, list[str]],
                     database: str | None) -> str | None:
    if scope["type"] != "http" or scope.get("method") != "GET":
        return None
    path = route_path(datasette, scope)
    match = _TABLE_PATH.match(path or "")
    if not match or match["db"] != database or match["table"] not in order:
        return None
    query = urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if any(name in ("_col", "_nocol") for name, _ in query):
        return None
    query += [("_col", column) for column in order[match["table"]]]
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    prefix = raw.decode("ascii", "replace").partition("?")[0]
    return f"{prefix}?{urllib.parse.urlencode(query)}"
