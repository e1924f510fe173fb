"""docs/routes.md, rendered from the catalog (ROUTES, the redaction rules, the specials) so that the page never
drifts from the table; scripts/gen_routes_doc.py writes it and a test checks it is current."""

from __future__ import annotations

from auditkit.capture.catalog.redact import REMOVED_HEADERS, SECRET_SUFFIXES, SECRET_WORDS, clear_params
from auditkit.capture.catalog.routes import ENV_SPECIALS, ROUTES, SPECIALS, Route


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"``{text}``"


def _redacted_cell(route: Route) -> str:
    parts = [f"{name} (removed)" if name.lower() in REMOVED_HEADERS else f"{name} 🔒" for name in route.secrets]
    parts += [f"{name} (keys + HMAC)" for name in route.maps]
    parts += [f"{name} (sha256)" for name in route.digests]
    if route.special in ENV_SPECIALS:
        parts.append("env (keys + HMAC)")
    if route.inline_params:
        parts.append("parameters (keys + HMAC)")
    return ", ".join(dict.fromkeys(parts))


def _flags_cell(route: Route) -> str:
    flags = []
    if route.session:
        flags.append("session")
    if route.raw_body:
        flags.append("raw body")
    if route.json_body:
        flags.append("JSON body")
    if route.special:
        flags.append(f"special: {route.special}")
    return ", ".join(flags)


def render_markdown() -> str:
    """docs/routes.md: the catalog as tables (generated; edit catalog/routes.py, then run
    scripts/gen_routes_doc.py)."""
    lines = [
        "# Rack API routes: what the gateway records",
        "",
        "<!-- Generated from auditkit/capture/catalog/ by scripts/gen_routes_doc.py. Do not edit by hand. -->",
        "",
        "Every request that reaches a rack through the gateway is looked up in `ROUTES`",
        "(`auditkit/capture/catalog/routes.py`). Versions: `v3` (convox/convox `pkg/api/routes.go`), `v2` (modern",
        "convox/rack `pkg/api/routes.go`), `classic` (convox/rack `api/controllers/routes.go`, racks before mid-2018).",
        "SOCKET is a websocket upgrade (a GET on the wire); ANY matches every method. `{var}` is a path var (`{key}`,",
        "`{path}` and `{server}` may hold slashes).",
        "",
        "## Rules",
        "",
        "- A request matching a recorded route below becomes an event with that category, action, description and",
        "  target. The most specific pattern wins; at equal specificity an exact method beats ANY.",
        "- A write (any method but GET, HEAD, OPTIONS) matching no route is recorded as **Other**: action `deleted`",
        "  for DELETE, `updated` otherwise; description `Unknown write METHOD /path`; details hold the method, the",
        "  path and the param *names* (never values). A websocket matching no route is recorded as Other /",
        "  `accessed` (`Unknown websocket /path`).",
        "- A read matching no route (`GET /apps`, `GET /apps/{app}/releases`, …) and the routes in the last table",
        "  are passed through and not recorded.",
        "- Descriptions: `{name}` comes from path vars, params and declared headers as recorded (a secret only",
        "  ever shows as `[redacted]`), computed values and, after the answer, the response JSON (`{id}`,",
        "  `{domain}`) or the `Release-Id` header; `[…]` is left out while a placeholder in it has no value;",
        "  any other missing value shows as `?`.",
        "",
        "## Secrets",
        "",
        f"- Never recorded: the headers {', '.join(_code(h.title()) for h in sorted(REMOVED_HEADERS))}; headers"
        " a route does not declare; response bodies (only the fields a template names are read).",
        "- Params are recorded by allowlist: a route records in clear only the params in its **In clear** column",
        "  (those its templates name, plus a few public options). Every other param — the ones marked 🔒, any",
        "  name the route does not know — is recorded by name under `params_hmac` with `hmac-sha256` of its value,",
        "  never the value. On a route that takes a map, its bracket and dotted forms (`parameters[DbPassword]`,",
        "  `parameters.DbPassword`) are keys of that map (keys + HMAC), their names listed in `map_forms`. A request",
        "  with a name that is not a plain identifier is refused. Multipart file parts: `file_parts` {name: filename,",
        "  size, sha256}.",
        "- No name is ever clear if it looks secret: one of the words"
        f" {', '.join(_code(w) for w in sorted(SECRET_WORDS))}, or ending in",
        f"  {', '.join(_code(s) for s in SECRET_SUFFIXES)} (`src-creds-pass`, `api_key`, `Private-Key`,"
        " `dbPassword`); a declared header with such a name is recorded as `[redacted]`.",
        "- URL userinfo in any recorded value or description is masked: `https://user:***@host`, `https://***@host`.",
        "- Environment: the keys added, changed and removed against the previous env (or, when it cannot be read,",
        "  the keys set, with `previous: unknown`), and `hmac-sha256` of each new value keyed with the gateway's",
        "  secret (`events.value_hmac`). Map fields and inline parameters: their keys, and an HMAC of each value.",
        "- An error text echoed by the rack is scrubbed of the request's secret values before it is recorded.",
        "",
        "## Special handling",
        "",
    ]
    for name, text in SPECIALS.items():
        lines.append(f"- `{name}`: {text}")
    lines += [
        "",
        "## Recorded",
        "",
        "| Method | Path | Handler | Versions | Category | Action | Description | Target | In clear | Redacted | Flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for route in ROUTES:
        if not route.audited:
            continue
        description = _code(route.description)
        if route.response:
            description += f" (from the answer: {', '.join(_code(n) for n in route.response)})"
        if route.note:
            description += f" — {route.note}"
        lines.append("| " + " | ".join(_cell(cell) for cell in (
            route.method, _code(route.path), route.sdk, " ".join(route.versions), route.category or "",
            route.action or "", description, _code(route.target) if route.target else "",
            ", ".join(sorted(clear_params(route))), _redacted_cell(route), _flags_cell(route))) + " |")
    lines += [
        "",
        "## Matched and not recorded",
        "",
        "| Method | Path | Handler | Versions | What it is |",
        "|---|---|---|---|---|",
    ]
    for route in ROUTES:
        if route.audited:
            continue
        lines.append("| " + " | ".join(_cell(cell) for cell in (
            route.method, _code(route.path), route.sdk, " ".join(route.versions), route.description)) + " |")
    counts = sum(1 for r in ROUTES if r.audited), sum(1 for r in ROUTES if not r.audited)
    lines += ["", f"{counts[0]} recorded routes, {counts[1]} matched and passed through.", ""]
    return "\n".join(lines)
