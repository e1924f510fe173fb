"""The Rack API requests the synthetic history's gateway events stand for, and what the gateway records for them.

An event's category, action, description, app and target are never written by hand: render() gives the request to
capture.catalog — classify(), then describe_outcome() with the rack's answer (the ids it returned, a session's exit
code) once there is one — exactly as the gateway does, so the history cannot say what the gateway would not.

Classifying costs tens of µs, as much as building the rest of an event, so renderings are cached per request shape:
the request is classified once with a marker in place of each value that varies from event to event (path vars,
the rack's answer, the params named in `vary`), and the markers in what comes out are then filled with each event's
values. Every other param and header value is part of the shape, so the catalog's choices (which template, which
optional parts) are made on the real values. A value the catalog would alter (clip, mask, put on one line) is
rendered without the cache.
"""

from __future__ import annotations

import re
import string
import types
import urllib.parse
from typing import Mapping, NamedTuple

from auditkit.capture import catalog

# (category, action, description, app, target), as the gateway records them.
Rendered = tuple[str, str, str, str | None, str | None]

_NONE: Mapping = types.MappingProxyType({})
# What the history sends where the gateway records a name but never the value: a map field's values, a resource's
# parameters, a registry password.
UNRECORDED_VALUE = "value"
_MARK = "\x1e{}\x1f"
_MARK_RE = re.compile("\x1e(\\d+)\x1f")
_PLAIN_MAX = 120  # the catalog clips longer values in descriptions
# What the catalog changes in a value it shows: line breaks and NUL, and a URL's userinfo; the marker's own bytes.
_NOT_PLAIN = re.compile("[\r\n\t\x00\x1e\x1f]|://")


class Request(NamedTuple):
    """A request to a rack as the gateway sees it. `route` is the path with `{name}` fields filled from `slots`.
    A param maps to its value, or, for a map field (`parameters`, `data`), to the tuple of the map's keys: the
    gateway records a map by its keys, so the history makes up no values (it sends UNRECORDED_VALUE). `env` is an
    env write's (added, changed, removed) keys against `previous`, the keys of the app's env before it. `response`
    holds the values of the rack's answer the catalog reads (`id`, `pid`, `domain`), `exit_code` a session's."""

    method: str
    route: str
    slots: Mapping[str, str]
    params: Mapping[str, str | tuple[str, ...]] = _NONE
    headers: Mapping[str, str] = _NONE
    vary: tuple[str, ...] = ()
    response: Mapping[str, str] = _NONE
    websocket: bool = False
    exit_code: int | None = None
    env: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None
    previous: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.route.format_map(self.slots)


def render(request: Request, status: int | None) -> Rendered:
    """What the gateway records for `request` when the rack answered with `status` (None: no answer was recorded,
    so the event is the one the gateway wrote before forwarding)."""
    slots = request.slots
    values = [slots[name] for _, name in _SLOTS.get(request.route) or _slot_names(request.route)]
    vary, params, headers, response = request.vary, request.params, request.headers, request.response
    if vary:
        values.extend(params[n] if n in params else headers[n] for n in vary)  # type: ignore[misc]
        params = {n: v for n, v in params.items() if n not in vary}
        headers = {n: v for n, v in headers.items() if n not in vary}
    if response:
        values.extend(response.values())
    if values and (max(map(len, values)) > _PLAIN_MAX or _NOT_PLAIN.search(" ".join(values))):
        return render_directly(request, status)
    key = (request.method, request.route, request.websocket, -1 if status is None else status >= 400,
           request.exit_code, vary, tuple(response), tuple(map(bool, values)) if "" in values else None,
           tuple(params.items()) if params else None, tuple(headers.items()) if headers else None, request.env)
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES[key] = _shape(request, status, values)
    category, action, description, app, target = shape
    return (category, action, description.format(*values), app.format(*values) if app is not None else None,
            target.format(*values) if target is not None else None)


def render_directly(request: Request, status: int | None, *,
                    marks: Mapping[tuple[str, str], str] | None = None) -> Rendered:
    """render() without the cache: the catalog on this very request (`marks` replaces values, keyed by (where,
    name) as _variables() names them)."""
    marks = marks or {}
    slots = {name: marks.get(("slot", name), value) for name, value in request.slots.items()}
    params: dict[str, str] = {}
    for name, value in request.params.items():
        if isinstance(value, tuple):
            params[name] = urllib.parse.urlencode({key: UNRECORDED_VALUE for key in value})
        else:
            params[name] = marks.get(("param", name), value)
    previous_env = None
    if request.env is not None:
        added, changed, removed = request.env
        previous_env = {k: "previous" for k in request.previous}
        new = {k: v for k, v in previous_env.items() if k not in removed}
        new.update({k: "new" for k in (*added, *changed)})
        params["env"] = "\n".join(f"{k}={v}" for k, v in new.items())
    headers = {name: marks.get(("header", name), value) for name, value in request.headers.items()}
    c = catalog.classify(request.method, request.route.format_map(slots), params=params, headers=headers,
                         websocket=request.websocket, previous_env=previous_env)
    if c is None:
        raise ValueError(f"the gateway does not record {request.method} {request.route}")
    if status is not None:
        response = {name: marks.get(("response", name), value) for name, value in request.response.items()}
        c = catalog.describe_outcome(c, status, response or None, exit_code=request.exit_code)
    return c.category, c.action, c.description, c.app, c.target


_SHAPES: dict[tuple, Rendered] = {}


def _names(request: Request) -> list[tuple[str, str]]:
    """Where each value render() takes from a request comes from: ("slot" | "param" | "header" | "response", name),
    in its order: the path's slots, the params and headers named in `vary`, the rack's answer."""
    names = list(_slot_names(request.route))
    names.extend(("param" if n in request.params else "header", n) for n in request.vary)
    names.extend(("response", n) for n in request.response)
    return names


def _slot_names(route: str) -> list[tuple[str, str]]:
    found = _SLOTS.get(route)
    if found is None:
        found = _SLOTS[route] = [("slot", name) for _, name, _, _ in string.Formatter().parse(route) if name]
    return found


_SLOTS: dict[str, list[tuple[str, str]]] = {}


def _shape(request: Request, status: int | None, values: list[str]) -> Rendered:
    names = _names(request)
    marks = {name: (_MARK.format(i) if value else value) for i, (name, value) in enumerate(zip(names, values))}
    if len(marks) != len(names):
        raise ValueError(f"{request.route}: a value varies twice ({names})")
    category, action, description, app, target = render_directly(request, status, marks=marks)
    return category, action, _template(description), _template(app), _template(target)  # type: ignore[return-value]


def _template(text: str | None) -> str | None:
    """`text` as a format string over the variables: each marker becomes its positional field."""
    if text is None:
        return None
    return _MARK_RE.sub(r"{\1}", text.replace("{", "{{").replace("}", "}}"))
