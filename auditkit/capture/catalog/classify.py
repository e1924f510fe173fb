"""What the gateway records for a request (classify) and, once the rack has answered, the finished record
(describe_outcome): the event's category, action, description, target, app and details, rendered from the route's
templates with only what redact() let through.

What is recorded:
- A request that matches an audited route. Most are writes; the audited reads are build-log, exec, shell, proxy and
  console websockets (GETs on the wire), the resource data export, the build .tgz export and file downloads.
- A write (any method but GET, HEAD and OPTIONS) that matches no route: category Other, action "deleted" for DELETE
  and "updated" for every other method (no verb says "unknown"), description "Unknown write METHOD /path", details
  hold the method, the path and the *names* of the params, never their values. Never dropped.
- A websocket upgrade that matches no route: Other / "accessed", "Unknown websocket /path" (an interactive channel
  is never passed through silently).
Not recorded (classify() returns None): reads that match no route (`GET /apps`, `GET /auth`, the throw-away
`GET /machines` and `GET /racks` the v3 SDK sends before each websocket, …) and routes listed with audited=False
(log streams, docker pulls through `/v2/`).

Templates use `{name}` placeholders, filled from (in this order) path vars, computed values (`{keys}`,
`{settings}`, `{method}`, …), the params and declared headers as they are recorded (so a secret can only ever show
as "[redacted]"), and, once the rack has answered, fields of the response JSON (`{id}`, `{domain}`) or
the `Release-Id` response header. `[ … ]` is an optional part, left out while one of its placeholders has no value;
a placeholder outside one renders as "?" until it has a value.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Any, Iterable, Mapping

from auditkit.capture.catalog.match import match
from auditkit.capture.catalog.redact import (
    REDACTED, by_lower_name, carries_secrets, clip, file_record, hmac_of, mask_userinfo, plain_name, redact,
    secret_values)
from auditkit.capture.catalog.routes import ENV_SPECIALS, PLACEHOLDER_RE, READ_METHODS, Route

_CLIP_TEXT = 120  # longest value shown in a description
_KEYS_SHOWN = 10  # keys listed in a description before "+N more"
_OPTIONAL_RE = re.compile(r"\[([^\[\]]*)\]")


# --- templates --------------------------------------------------------------------------------------------------

def clean_text(value: str) -> str:
    """Any text as it may be recorded in a description or a field: userinfo masked, one line, NUL escaped,
    clipped."""
    return _text(value)


def _text(value: str) -> str:
    """A value as shown in a description: one line, clipped."""
    text = re.sub(r"[\r\n\t]+", " ", mask_userinfo(value)).replace("\x00", "\\0")
    return text if len(text) <= _CLIP_TEXT else text[:_CLIP_TEXT] + "…"


def _render(template: str, values: Mapping[str, str]) -> str:
    def fill(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        return _text(value) if value else "?"

    def optional(m: re.Match[str]) -> str:
        inner = m.group(1)
        if all(values.get(name) for name in PLACEHOLDER_RE.findall(inner)):
            return PLACEHOLDER_RE.sub(fill, inner)
        return ""

    return PLACEHOLDER_RE.sub(fill, _OPTIONAL_RE.sub(optional, template))


def _render_target(template: str | None, values: Mapping[str, str]) -> str | None:
    if not template:
        return None
    names = PLACEHOLDER_RE.findall(template)
    if not all(values.get(name) for name in names):
        return None
    return clip(PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template))


def _key_list(keys: Iterable[str]) -> str:
    keys = list(keys)
    if not keys:
        return "no changes"
    shown = ", ".join(keys[:_KEYS_SHOWN])
    return shown if len(keys) <= _KEYS_SHOWN else f"{shown} +{len(keys) - _KEYS_SHOWN} more"


# --- classification ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Classification:
    """What the gateway records for one request. `details` and `values` hold only what redact() let through."""

    category: str
    action: str
    description: str
    app: str | None
    target: str | None
    details: dict[str, Any]
    session: bool
    route: Route | None  # None for an unknown write or websocket
    method: str
    path: str  # without the query string
    template: str = ""  # the description template chosen (describe_outcome re-renders it)
    values: dict[str, str] = dataclasses.field(default_factory=dict)  # the safe values behind the template
    link: str | None = None  # "process:<app>/<pid>": equal links join a run, its exec websocket and its stop
    carries_secrets: bool = False  # the request held values that were redacted

    @property
    def raw_body(self) -> bool:
        """Stream the body: never parse or buffer it (uploads, imports, registry and HTTP proxies)."""
        return self.route.raw_body if self.route else False


def _unknown(method: str, path: str, params: Mapping[str, str], websocket: bool, hmac_key: bytes | None = None,
             files: Mapping[str, Any] | None = None) -> Classification:
    names = sorted(n for n in params if plain_name(n))
    details: dict[str, Any] = {"method": method, "path": clip(path)}
    if names:
        details["params"] = names
        details["params_hmac"] = {n: hmac_of(hmac_key, params[n]) for n in names}
    if len(names) != len(params):
        details["unnamed_params"] = len(params) - len(names)
    if files:
        details["file_parts"] = {n: file_record(p) for n, p in sorted(files.items()) if plain_name(n)}
    segments = path.split("/")
    app = segments[2] if len(segments) > 2 and segments[1] == "apps" and segments[2] else None
    if websocket:
        category, action, description = "Other", "accessed", f"Unknown websocket {_text(path)}"
        details["websocket"] = True
    else:
        action = "deleted" if method == "DELETE" else "updated"
        category, description = "Other", f"Unknown write {method} {_text(path)}"
    return Classification(category, action, description, app, None, details, websocket, None, method, path,
                          template=description, carries_secrets=bool(params) or bool(files))


def classify(method: str, path: str, *, params: Mapping[str, str] | None = None,
             headers: Mapping[str, str] | None = None, websocket: bool = False, body: bytes | str | None = None,
             hmac_key: bytes | None = None, previous_env: Mapping[str, str] | None = None,
             files: Mapping[str, Any] | None = None) -> Classification | None:
    """What to record for a request, or None when it is not recorded.

    `params` are the request's params (capture/canonical.py reads them; query-string values in `path` are merged
    in, the given ones win),
    `headers` the request headers (any case), `files` a multipart body's file parts (capture/canonical.py).
    `body` is read only by the classic env route. `previous_env` is the
    app's env before an env write (None: unknown, every key is then "set"); `hmac_key` keys the value hashes.
    Response-derived parts (build, release and certificate ids, a run's pid, an exit code) are filled in by
    describe_outcome().
    """
    method = method.upper()
    bare, _, query = path.partition("?")
    merged = dict(params or {})
    if query:
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            merged.setdefault(name, value)
    found = match(method, bare, websocket)
    if found is None:
        if websocket or method not in READ_METHODS:
            return _unknown(method, bare, merged, websocket, hmac_key, files)
        return None
    route, path_vars = found
    if not route.audited:
        return None
    assert route.category is not None and route.action is not None

    safe = redact(route, merged, headers, hmac_key=hmac_key, previous_env=previous_env, body=body, files=files)
    values: dict[str, str] = {}
    for name, value in safe.items():
        if isinstance(value, str):
            values[name] = value
        elif isinstance(value, list):
            values[name] = _key_list(value)
    for header in route.headers:
        value = safe.get(header.lower())
        if isinstance(value, str):
            values[header] = value
    for name in route.response:  # only the rack's answer may fill these
        values.pop(name, None)
    values.update(path_vars)
    values["method"] = method

    category, action, template = route.category, route.action, route.description
    details = {k: v for k, v in safe.items()}
    special = route.special
    if special == "env":
        env = details.pop("env", None)
        if "build" in merged and merged["build"]:
            if env is not None:
                details["env"] = env
        elif env is not None:
            category, action = "Environment", "updated"
            template = "Updated environment of app {app} ({keys})[ as release {id}]"
            details = {**env, **details}
            values["keys"] = _env_keys(env)
    elif special == "env_body":
        env = details.pop("env")
        details = {**env, **details}
        values["keys"] = _env_keys(env) if env.get("note") is None else "?"
    elif special == "env_unset":
        details = {"added": [], "changed": [], "removed": [path_vars["name"]], **details}
    elif special == "app_update":
        category, action, template = _app_update(merged)
    elif special == "system_update":
        action, template = _system_update(merged)
    elif special == "scale":
        settings = [f"{k}={_text(merged[k])}" for k in ("count", "cpu", "memory", "gpu", "gpu-vendor", "min", "max")
                    if merged.get(k)]
        if settings:
            values["settings"] = " ".join(settings)
    elif special == "shell":
        values["shell"] = values.get("Command") or "interactive"
    elif special == "registry_proxy" and method == "DELETE":
        action, template = "deleted", "Deleted {path} from rack registry"

    app = values.get(route.app) if route.app else None
    link = None
    if app and "pid" in path_vars:
        link = f"process:{app}/{path_vars['pid']}"
    return Classification(
        category=category, action=action, description=_render(template, values), app=app,
        target=_render_target(route.target, values), details=details, session=route.session, route=route,
        method=method, path=bare, template=template, values=values, link=link,
        carries_secrets=carries_secrets(route, safe))


def _env_keys(env: Mapping[str, Any]) -> str:
    if "set" in env:
        return _key_list(env["set"])
    return _key_list(sorted(env.get("added", []) + env.get("changed", []) + env.get("removed", [])))


def _app_update(params: Mapping[str, str]) -> tuple[str, str, str]:
    lock = params.get("lock", "").lower()
    parts: list[str] = []
    if "parameters" in params:
        parts.append("Updated parameters {parameters} of app {name}")
    if lock in ("true", "1"):
        if not parts:
            return "Applications", "locked", "Locked app {name}"
        parts.append("locked it")
    elif lock in ("false", "0"):
        if not parts:
            return "Applications", "unlocked", "Unlocked app {name}"
        parts.append("unlocked it")
    return "Applications", "updated", "; ".join(parts) if parts else "Updated app {name}"


def _system_update(params: Mapping[str, str]) -> tuple[str, str]:
    parts: list[str] = []
    if "parameters" in params:
        parts.append("Updated rack parameters {parameters}")
    if params.get("version"):
        parts.append("Updated rack to version {version}")
    count, kind = params.get("count"), params.get("type")
    scale = None
    if count and kind:
        scale = "Scaled rack to {count}×{type}"
    elif count:
        scale = "Scaled rack to {count} instances"
    elif kind:
        scale = "Scaled rack to instance type {type}"
    if scale:
        parts.append(scale)
    if not parts:
        return "updated", "Updated rack"
    action = "scaled" if scale and len(parts) == 1 else "updated"
    return action, "; ".join(parts)


def _response_value(response: Mapping[str, Any], name: str) -> str | None:
    value = response.get(name)
    if value is None:
        lowered = name.lower()
        for key, item in response.items():
            if isinstance(key, str) and key.lower() == lowered:
                value = item
                break
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return clip(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return clip(",".join(value))
    return None


def describe_outcome(classification: Classification, status: int, response_json: Mapping[str, Any] | None = None,
                     *, response_headers: Mapping[str, str] | None = None, exit_code: int | None = None,
                     params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                     body: bytes | str | None = None) -> Classification:
    """The classification once the rack has answered: response-derived placeholders filled (`{id}` of a build,
    release or certificate, `{domain}`, the classic `Release-Id` header, a run's pid, `{code}` from a session's
    exit code), the target set, and on an error status the rack's `error` text in details["error"].

    Only fields the templates name are read from the response, so a secret in it (keyroll's private key, an
    access token) is never copied. The error text is scrubbed of the request's secret values: pass the request's
    `params` / `headers` (/ `body`) for that; without them, the error of a request that carried secrets is
    withheld. A plain-text error can be passed as response_json={"error": text}.
    """
    c = classification
    response = response_json if isinstance(response_json, Mapping) else {}
    values = dict(c.values)
    details = dict(c.details)
    link = c.link
    route = c.route
    if route is not None and status < 400:
        for name in route.response:
            found = _response_value(response, name)
            if name == "pid" and not found:
                found = _response_value(response, "id")  # v3 / v2 answer with the Process, whose id is the pid
            if name == "id" and not found:
                release_id = by_lower_name(response_headers).get("release-id")  # classic env routes
                found = clip(release_id) if release_id else None
            if found:
                values[name] = found
        if route.special == "run" and values.get("pid"):
            details["pid"] = values["pid"]
            if c.app:
                link = f"process:{c.app}/{values['pid']}"
        if route.special in ENV_SPECIALS and c.category == "Environment" and values.get("id"):
            details["release"] = values["id"]
    if exit_code is not None:
        values["code"] = str(exit_code)
        details["exit_code"] = exit_code
    if status >= 400:
        error = response.get("error") if response else None
        if isinstance(error, str) and error:
            if params is None and headers is None and c.carries_secrets:
                details["error"] = "[withheld: the request carried secret values]"
            else:
                scrubbed = error
                for secret in secret_values(route, params or {}, headers, body):
                    scrubbed = scrubbed.replace(secret, REDACTED)
                details["error"] = clip(scrubbed)
    return dataclasses.replace(
        c, description=_render(c.template, values),
        target=_render_target(route.target, values) if route else c.target,
        values=values, details=details, link=link)
