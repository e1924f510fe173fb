"""Gateway users and deploy keys: create (the key is shown once), list, revoke, authenticate, and per-rack grants.

Keys are 256-bit random tokens; only their sha256 is stored (a slow KDF buys nothing for keys of that entropy and
would cost every request). Creating and revoking a key is an Access event on the journal's chain; the creation
event records the key's grants.

Grants: a key may be limited to some racks (`racks`, a JSON list of rack names as the gateway's config names them,
in the key's row); NULL means every rack, as keys made before grants existed. The role still decides whether racks
may be used at all (auditors may not).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import sqlite3
import urllib.parse
from typing import Iterable, Sequence

from auditkit import store
from auditkit.capture import wire
from auditkit.errors import AuditkitError
from auditkit.model.events import Event, new_event_id, now_timestamp

ROLES = ("admin", "member", "auditor")
KEY_PREFIX = "akg_"
ALL_RACKS = "all racks"  # how an unrestricted key's grants are shown


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a request comes from: a user (email) or a deploy key (its name), with the role it may act in."""

    key_id: str
    name: str
    kind: str  # user | deploy_key
    role: str  # admin | member | auditor | deploy
    racks: tuple[str, ...] | None = None  # the racks the key is granted; None: every rack

    @property
    def actor_type(self) -> str:
        return "deploy_key" if self.kind == "deploy_key" else "user"

    @property
    def may_use_racks(self) -> bool:
        """Whether the role may use racks at all (auditors read the feed only)."""
        return self.role in ("admin", "member", "deploy")

    def may_use_rack(self, name: str) -> bool:
        """Whether this key may use the rack the gateway's config names `name`: its role and its grants."""
        return self.may_use_racks and (self.racks is None or name in self.racks)

    @property
    def may_read_feed(self) -> bool:
        return self.role in ("admin", "auditor")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def grants_text(racks: Sequence[str] | None) -> str:
    """A key's grants for people: `all racks`, or the rack names."""
    return ALL_RACKS if racks is None else ", ".join(racks)


def normalise_grants(racks: Iterable[str] | None) -> tuple[str, ...] | None:
    """Rack names given for a grant, stripped, de-duplicated and sorted; None (or nothing given) is every rack."""
    if racks is None:
        return None
    names = set()
    for name in racks:
        name = name.strip()
        if not name or len(name) > 200 or not name.isprintable():
            raise AuditkitError(f"--rack wants a rack name as the gateway config names it, not {name!r}")
        names.add(name)
    return tuple(sorted(names)) or None


def _decode_grants(value: str | None) -> tuple[str, ...] | None:
    """The stored grants; a value that is not a JSON list of names grants nothing (fail closed), never everything."""
    if value is None:
        return None
    try:
        racks = json.loads(value)
    except ValueError:
        return ()
    if not isinstance(racks, list):
        return ()
    return tuple(r for r in racks if isinstance(r, str))


def _access_event(action: str, principal_name: str, kind: str, role: str, by: str, key_id: str,
                  at: str | None = None, racks: tuple[str, ...] | None = None) -> Event:
    what = "user" if kind == "user" else "deploy key"
    verb = {"created": "Created", "revoked": "Revoked"}[action]
    role_text = f" with role {role}" if kind == "user" and action == "created" else ""
    details: dict[str, object] = {"kind": kind, "role": role, "name": principal_name}
    if action == "created":
        details["racks"] = list(racks) if racks is not None else "all"
        if racks is not None:
            role_text += f", granted rack{'s' if len(racks) > 1 else ''} {', '.join(racks)}"
    return Event(
        id=new_event_id(),
        timestamp=at or now_timestamp(),
        actor=by,
        actor_type="system" if by == "system" else "user",
        rack="gateway",
        category="Access",
        action=action,
        description=f"{verb} gateway {what} {principal_name}{role_text}",
        target=key_id,
        details=details,
    )


def add(conn: sqlite3.Connection, name: str, *, kind: str, role: str, source: str, by: str = "system",
        at: str | None = None, racks: Iterable[str] | None = None) -> tuple[str, str]:
    """Create a user (kind 'user', role admin|member|auditor) or a deploy key (kind 'deploy_key'); returns
    (key_id, key). The key is never stored and cannot be shown again. `racks` limits the key to those racks (None
    or empty: every rack)."""
    grants = normalise_grants(racks)
    name = name.strip()
    if not name:
        raise AuditkitError("a user or key needs a name")
    if kind == "user":
        if role not in ROLES:
            raise AuditkitError(f"unknown role '{role}' (one of {', '.join(ROLES)})")
        if "@" not in name:
            raise AuditkitError(f"'{name}' is not an email address")
    else:
        role = "deploy"
    if grants is not None and role == "auditor":
        raise AuditkitError("an auditor may not use racks, so it cannot be granted any (drop --rack)")
    active = conn.execute("SELECT 1 FROM gateway_keys WHERE name = ? AND revoked_at IS NULL", (name,)).fetchone()
    if active:
        raise AuditkitError(f"'{name}' already has an active key; revoke it first")
    key_id = "key_" + secrets.token_hex(6)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with store.transaction(conn):
        conn.execute(
            "INSERT INTO gateway_keys(id, name, kind, role, key_hash, created_at, created_by, racks) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (key_id, name, kind, role, key_hash(key), at or now_timestamp(), by,
             None if grants is None else json.dumps(list(grants))),
        )
        store.append(conn, [_access_event("created", name, kind, role, by, key_id, at, grants)], source=source)
    return key_id, key


def revoke(conn: sqlite3.Connection, name_or_id: str, *, source: str, by: str = "system") -> list[str]:
    """Revoke the active key(s) of a user or deploy key, by name or key id; returns the revoked key ids."""
    rows = conn.execute(
        "SELECT id, name, kind, role FROM gateway_keys WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
        (name_or_id, name_or_id),
    ).fetchall()
    if not rows:
        raise AuditkitError(f"no active user or key named '{name_or_id}'")
    with store.transaction(conn):
        for row in rows:
            conn.execute("UPDATE gateway_keys SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                         (now_timestamp(), by, row["id"]))
        store.append(conn, [_access_event("revoked", r["name"], r["kind"], r["role"], by, r["id"]) for r in rows],
                     source=source)
    return [r["id"] for r in rows]


def list_keys(conn: sqlite3.Connection) -> list[dict]:
    """Every key row (revoked ones too); `racks` is a list of rack names, or None for every rack."""
    rows = conn.execute(
        "SELECT id, name, kind, role, created_at, created_by, revoked_at, racks FROM gateway_keys "
        "ORDER BY created_at, id"
    ).fetchall()
    out = []
    for r in rows:
        row = dict(r)
        grants = _decode_grants(row["racks"])
        row["racks"] = list(grants) if grants is not None else None
        out.append(row)
    return out


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) of a Basic Authorization header (the password percent-decoded, as the Convox SDK
    escapes it), or None for anything else: no header, another scheme, bad base64 or non-ASCII in it, text that is
    not UTF-8, no colon."""
    credentials = wire.parse_basic(header)
    if credentials is None:
        return None
    username, password = credentials
    return username, urllib.parse.unquote(password)


def authenticate(conn: sqlite3.Connection, key: str) -> Principal | None:
    """The active principal a presented key belongs to, or None."""
    if not key or not key.startswith(KEY_PREFIX):
        return None
    digest = key_hash(key)
    row = conn.execute(
        "SELECT id, name, kind, role, key_hash, racks FROM gateway_keys WHERE key_hash = ? AND revoked_at IS NULL",
        (digest,),
    ).fetchone()
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        return None
    return Principal(row["id"], row["name"], row["kind"], row["role"], _decode_grants(row["racks"]))


def diagnose(conn: sqlite3.Connection, header: str | None) -> tuple[str, str | None]:
    """Why an Authorization header was refused, for the refusal's event: (reason, key id). The key id is given only
    when the presented key is a revoked key of this gateway (its hash matches); nothing of the presented secret is
    returned, not even a prefix."""
    if not (header or "").strip():
        return "no credentials", None
    credentials = parse_basic(header)
    if credentials is None:
        return "malformed credentials", None
    key = credentials[1]
    if not key.startswith(KEY_PREFIX):
        return "not a gateway key", None
    row = conn.execute("SELECT id, revoked_at FROM gateway_keys WHERE key_hash = ?", (key_hash(key),)).fetchone()
    if row is None:
        return "unknown key", None
    if row["revoked_at"] is not None:
        return "revoked key", row["id"]
    return "unknown key", None  # (active: refused for another reason; not expected)
