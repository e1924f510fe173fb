"""What of a request may be recorded, and how: the redaction, so that no other part of auditkit decides what is a
secret.

Recording is by allowlist: a route records in clear only the params its templates name plus its `clear` options
(clear_params), never a secret-looking name; every other param — registry passwords, config values, certificate
keys, names the route does not know — is recorded by name with an HMAC of its value; bracket and dotted forms of a
map the route takes (`parameters[K]`) are keys of that map.
URL userinfo is masked in every recorded value. Authorization, `Private-Key` and cookies are never recorded. An env
change is recorded as the keys added, changed and removed against the previous env plus an HMAC
(events.value_hmac) of each new value; map fields (`parameters`, `Environment`, …) are recorded as their keys plus
an HMAC of each value. Values the record keeps out (secret_values) are what an error echoed by the rack is scrubbed
of.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping

from auditkit.capture import wire
from auditkit.capture.catalog.routes import ENV_SPECIALS, PLACEHOLDER_RE, Route
from auditkit.model.events import value_hmac

REDACTED = "[redacted]"

# Headers that are never recorded, not even as "[redacted]".
REMOVED_HEADERS = frozenset({"authorization", "proxy-authorization", "private-key", "cookie", "set-cookie"})

# A name is secret-looking when one of its words (split on - _ . space and camelCase) is one of these, or when,
# lower-cased and without separators, it ends with one of SECRET_SUFFIXES (dbpassword, githubtoken, …).
SECRET_WORDS = frozenset({
    "password", "passwd", "pass", "pwd", "passphrase", "secret", "secrets", "token", "tokens", "key", "apikey",
    "privatekey", "private", "credential", "credentials", "auth", "authorization", "cookie", "session",
    "signature", "jwt", "bearer",
})
SECRET_SUFFIXES: tuple[str, ...] = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "credential", "credentials",
)

# Params that an env route summarises instead of recording.
_ENV_PARAM = "env"
_CLIP = 500  # longest param value kept in details
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,80}")  # a param name that can be recorded as it is


def plain_name(name: str) -> bool:
    """A param name the record can hold as it is: 1–80 of letters, digits, `_ . - [ ]`. The gateway refuses
    requests with any other name (canonical parse), so every param it forwards is recorded by name."""
    return _NAME_RE.fullmatch(name) is not None


def env_changes(old: Mapping[str, str] | None, new: Mapping[str, str], hmac_key: bytes | None) -> dict[str, Any]:
    """What an env write changes, without a value: {"added", "changed", "removed": sorted keys, "hmac": {key:
    value_hmac(new value)} for added and changed keys}. With `old` None (the previous env could not be read)
    every key is "set": {"set": keys, "hmac": …, "previous": "unknown"}. hmac_key None leaves "hmac" out (the
    gateway always passes its key)."""
    if old is None:
        keys = sorted(new)
        summary: dict[str, Any] = {"set": keys, "previous": "unknown"}
        hashed = keys
    else:
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed = sorted(k for k in set(new) & set(old) if new[k] != old[k])
        summary = {"added": added, "changed": changed, "removed": removed}
        hashed = sorted(added + changed)
    if hmac_key is not None:
        summary["hmac"] = {k: value_hmac(hmac_key, new[k]) for k in hashed}
    return summary


def is_secret_name(name: str) -> bool:
    """True for a param or header name that looks like it carries a secret (password, src-creds-pass, api_key,
    Private-Key, X-Auth-Token, dbPassword, secret, credentials, …)."""
    words = [w.lower() for w in re.split(r"[-_.\s]+|(?<=[a-z0-9])(?=[A-Z])", name) if w]
    if any(w in SECRET_WORDS for w in words):
        return True
    squashed = "".join(words)
    return squashed.endswith(SECRET_SUFFIXES)


def by_lower_name(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers by lower-cased name (the first of names that differ only in case wins)."""
    result: dict[str, str] = {}
    for name, value in (headers or {}).items():
        result.setdefault(name.lower(), value)
    return result


def clip(value: Any, limit: int = _CLIP) -> str:
    """A value as it may be kept in details: URL userinfo masked, NUL escaped, at most `limit` characters."""
    text = mask_userinfo(str(value)).replace("\x00", "\\0")
    return text if len(text) <= limit else text[:limit] + "…"


def _hashes(hmac_key: bytes | None, mapping: Mapping[str, str]) -> dict[str, str] | None:
    if hmac_key is None:
        return None
    return {k: value_hmac(hmac_key, mapping[k]) for k in sorted(mapping)}


def _record_map(safe: dict[str, Any], name: str, mapping: Mapping[str, str], hmac_key: bytes | None) -> None:
    """A map option (rack parameters, a run's Environment …) recorded as its sorted keys plus an HMAC per value."""
    safe[name] = sorted(mapping)
    hashes = _hashes(hmac_key, mapping)
    if hashes is not None:
        safe[f"{name}_hmac"] = hashes


# Placeholders a template may name that are computed, not params (they never make a param clear).
_COMPUTED = frozenset({"keys", "settings", "method", "shell", "code", "parameters"})


def clear_params(route: Route) -> frozenset[str]:
    """The params of `route` recorded in clear: those its templates name (beyond path vars, the rack's answer and
    computed values) plus `route.clear`, never a route secret or a secret-looking name. Every other param is
    recorded by name with an HMAC of its value (redact)."""
    named = set(PLACEHOLDER_RE.findall(route.description + " " + (route.target or "")))
    named -= set(route.vars) | set(route.response) | _COMPUTED | {h for h in route.headers}
    named |= set(route.clear)
    secrets = {s.lower() for s in route.secrets}
    return frozenset(n for n in named if n.lower() not in secrets and not is_secret_name(n) and n != _ENV_PARAM)


_CLEAR: dict[int, frozenset[str]] = {}


def _clear_of(route: Route) -> frozenset[str]:
    found = _CLEAR.get(id(route))
    if found is None:
        found = _CLEAR[id(route)] = clear_params(route)
    return found


_SCHEME_RE = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://")
_PLAIN_USER_RE = re.compile(r"[A-Za-z0-9._~\-]+")


def mask_userinfo(text: str) -> str:
    """Every URL's userinfo masked: `https://user:pw@host` → `https://user:***@host`, `https://token@host` →
    `https://***@host` (a lone user part is often the token itself).

    A password may hold anything a client puts there (`/`, `?`, `#`, a space), so the userinfo of a URL is taken
    to run from its `://` to the last `@` before the next URL of the text: an `@` further on (in a path) masks
    more than the userinfo, which is the safe side."""
    if "@" not in text or "://" not in text:
        return text
    starts = [m.end() for m in _SCHEME_RE.finditer(text)]
    if not starts:
        return text
    out = [text[:starts[0]]]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        segment = text[start:end]
        next_scheme = _SCHEME_RE.search(segment)  # the scheme of the next URL ends this one's span
        limit = next_scheme.start() if next_scheme and i + 1 < len(starts) else len(segment)
        at = segment.rfind("@", 0, limit)
        if at < 0:
            out.append(segment)
            continue
        user, colon, _ = segment[:at].partition(":")
        masked = f"{user}:***" if colon and _PLAIN_USER_RE.fullmatch(user) else (":***" if colon and not user
                                                                                 else "***")
        out.append(masked + segment[at:])
    return "".join(out)


def hmac_of(hmac_key: bytes | None, value: str) -> str:
    """The HMAC recorded for a value (events.value_hmac), or "[redacted]" without a key."""
    return value_hmac(hmac_key, value) if hmac_key is not None else REDACTED


_MAP_FORM_RE = re.compile(r"(?P<map>[^\[\].]+)(?:\[(?P<k1>[^\[\]]*)\]|\.(?P<k2>[^\[\]]+))(?P<rest>.*)")


def redact(route: Route, params: Mapping[str, str], headers: Mapping[str, str] | None = None, *,
           hmac_key: bytes | None = None, previous_env: Mapping[str, str] | None = None,
           body: bytes | str | None = None, files: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The params, file parts and declared headers of a request to `route`, safe to record. By allowlist:

    - the params clear_params(route) names → their value (URL userinfo masked, clipped to 500 characters);
    - the ReleaseCreate `env` → env_changes() against `previous_env` (classic env routes read `body`);
    - map fields and inline parameters → their sorted keys, plus "<name>_hmac" with an HMAC of each value; the
      bracket and dotted forms of a map the route takes (`parameters[K]`, `parameters.K`, `parameters[K][L]`) are
      keys of that map, their names listed in "map_forms";
    - certificate bodies → "sha256:<hex>";
    - every other param → its name in "params_hmac" with an HMAC of its value (events.value_hmac), never the
      value; a name that is not a plain identifier is not recorded: "unnamed_params" counts them;
    - multipart file parts → "file_parts": {name: {filename, size, sha256}};
    - headers not declared by the route are never recorded (user agent and source IP are event fields);
      Authorization, Private-Key and Cookie never; declared secret-looking headers as "[redacted]".
    Header names are recorded lower-cased (`command`, `entrypoint`).
    """
    safe: dict[str, Any] = {}
    inline: dict[str, str] = {}
    hashed: dict[str, str] = {}
    maps: dict[str, dict[str, str]] = {}  # map param → its keys and values, as sent and as bracket or dotted forms
    forms: list[str] = []
    unnamed = 0
    clear = _clear_of(route)
    map_names = {m.lower(): m for m in route.maps}
    for name, value in params.items():
        lowered = name.lower()
        form = _MAP_FORM_RE.fullmatch(name)
        if not plain_name(name):
            unnamed += 1
        elif route.special == "env" and name == _ENV_PARAM:
            safe["env"] = env_changes(previous_env, wire.parse_env(value), hmac_key)
        elif lowered in map_names:
            maps[name] = {**maps.get(name, {}), **wire.decode_map(value)}  # the map's own value wins
        elif form and form.group("map").lower() in map_names and (form.group("k1") or form.group("k2")):
            # parameters[DbPassword]=… or parameters.DbPassword=…: some SDKs encode maps so; a key of the map
            target = map_names[form.group("map").lower()]
            key = (form.group("k1") or form.group("k2")) + (form.group("rest") or "")
            maps[target] = {key: value, **maps.get(target, {})}
            forms.append(name)
        elif route.inline_params and name not in route.fields:
            inline[name] = value
        elif name in route.digests:
            safe[name] = "sha256:" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()
        elif name in clear:
            safe[name] = clip(value)
        else:
            hashed[name] = value
    if inline:
        # Inline parameters join a `parameters` map sent beside them (the map's value wins for a key in both).
        maps["parameters"] = {**inline, **maps.get("parameters", {})}
    for name, mapping in maps.items():
        _record_map(safe, name, mapping, hmac_key)
    if forms:
        safe["map_forms"] = sorted(forms)
    if hashed:
        safe["params_hmac"] = {name: hmac_of(hmac_key, hashed[name]) for name in sorted(hashed)}
    if unnamed:
        safe["unnamed_params"] = unnamed
    if files:
        safe["file_parts"] = {name: file_record(part) for name, part in sorted(files.items()) if plain_name(name)}
    if route.special == "env_body":
        safe["env"] = (env_changes(previous_env, wire.parse_env(body), hmac_key) if body is not None
                       else {"previous": "unknown", "set": [], "note": "body not read"})
    lowered_headers = by_lower_name(headers)
    secret_names = {s.lower() for s in route.secrets}
    for header in route.headers:
        key = header.lower()
        if key not in lowered_headers or key in REMOVED_HEADERS:
            continue
        value = lowered_headers[key]
        if key in safe:
            continue  # a param of the same name was recorded already
        if key in secret_names or is_secret_name(header):
            safe[key] = REDACTED
        elif key in map_names:
            _record_map(safe, key, wire.decode_map(value), hmac_key)
        else:
            safe[key] = clip(value)
    return safe


def file_record(part: Any) -> dict[str, Any]:
    """A multipart file part as recorded: {filename (clipped), size, sha256}."""
    record = dict(part.record()) if hasattr(part, "record") else dict(part)
    record["filename"] = clip(record.get("filename", ""), 200)
    return record


def secret_values(route: Route | None, params: Mapping[str, str],
                  headers: Mapping[str, str] | None = None, body: bytes | str | None = None) -> list[str]:
    """Every value of a request that redact() keeps out of the record (longest first), so that text echoed back
    by the rack (an error message) can be scrubbed of them: every param not recorded in clear, env and map
    values, and secret headers."""
    found: set[str] = set()
    clear = _clear_of(route) if route else frozenset()
    map_names = {m.lower() for m in route.maps} if route else set()
    for name, value in params.items():
        if route is not None and name == _ENV_PARAM and route.special == "env":
            found.update(wire.parse_env(value).values())
        elif name.lower() in map_names:
            found.update(wire.decode_map(value).values())
        elif name not in clear or not plain_name(name):
            found.add(value)
    if route is not None and route.special == "env_body" and body is not None:
        found.update(wire.parse_env(body).values())
    secret_names = {s.lower() for s in route.secrets} if route else set()
    for key, value in by_lower_name(headers).items():
        if key in REMOVED_HEADERS or key in secret_names or is_secret_name(key):
            found.add(value)
            if key in ("authorization", "proxy-authorization") and " " in value:
                found.add(value.split(" ", 1)[1])
        elif key in map_names:
            found.update(wire.decode_map(value).values())
    return sorted((v for v in found if v and len(v) >= 4), key=len, reverse=True)


def carries_secrets(route: Route, safe: Mapping[str, Any]) -> bool:
    """Whether a request to `route` held values that redact() kept out of `safe` (its recorded form)."""
    if route.special in ENV_SPECIALS or route.inline_params or route.secrets or route.maps:
        return True
    for name, value in safe.items():
        if value == REDACTED or name.endswith("_hmac") or name in ("unnamed_params", "file_parts"):
            return True
    return False
