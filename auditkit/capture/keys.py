"""Gateway users and deploy keys: the keys file every replica reads (hashed keys, 0600), create (the key is shown
once), list, revoke, authenticate, per-rack grants, and the migration of keys kept inside older journals.

The keys file is JSON, `{"format": "auditkit-gateway-keys/1", "keys": [row, …]}`, one row per key ever made (revoked
ones too): id, name, kind, role, key_hash, created_at, created_by, revoked_at, revoked_by, racks. It lives beside the
journal (`<journal>-keys.json`: data/gateway-keys.json for data/gateway.db) unless `--keys FILE` names another, so
several replicas, each with its own journal, read one file only when told to. Writers take an exclusive lock (a flock on its folder) for the read-modify-write and replace the
file atomically (files.write_private: 0600, fsynced, renamed), so a reader sees the old rows or the new ones. A
running gateway stats the file on every authentication (a stat costs microseconds; the rename gives it a new inode)
and reloads it when it changed, so a new key works and a revoked one stops working on the next request, on every
replica. A file that is unreadable, not a keys file, or readable by
other users authenticates nobody (fail closed) until it is fixed.

Keys are 256-bit random tokens; only their sha256 is stored (a slow KDF buys nothing for keys of that entropy and
would cost every request). Creating and revoking a key is an Access event on the chain of the journal the command
was given; the creation event records the key's grants.

Grants: a key may be limited to some racks (`racks`, a list of rack names as the gateway's config names them); null
means every rack, as keys made before grants existed. The role still decides whether racks may be used at all
(auditors may not).

Journals made before the keys file kept their keys in a `gateway_keys` table; `auditkit gateway keys migrate`
copies them into the keys file (migrate_from_journal), and a gateway refuses to start on such a journal until
they are there, rather than refusing every user.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import stat
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from auditkit import store
from auditkit.capture import wire
from auditkit.errors import AuditkitError
from auditkit.files import write_private
from auditkit.model.events import Event, new_event_id, now_timestamp

log = logging.getLogger("auditkit.gateway.keys")

ROLES = ("admin", "member", "auditor")
KINDS = ("user", "deploy_key")
KEY_PREFIX = "akg_"
ALL_RACKS = "all racks"  # how an unrestricted key's grants are shown
FORMAT = "auditkit-gateway-keys/1"
KEYS_SUFFIX = "-keys.json"  # the default keys file: <journal stem>-keys.json beside the journal
ROW_FIELDS = ("id", "name", "kind", "role", "key_hash", "created_at", "created_by", "revoked_at", "revoked_by",
              "racks")


class KeysFileError(AuditkitError):
    """The keys file cannot be used (unreadable, not a keys file, readable by others)."""


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


def _decode_grants(value: Any) -> tuple[str, ...] | None:
    """Stored grants (a list, or a JSON text of one in older journals); anything else grants nothing (fail closed),
    never everything."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return ()
    if not isinstance(value, list):
        return ()
    return tuple(r for r in value if isinstance(r, str))


# --- the keys file --------------------------------------------------------------------------------------------------

def default_keys_path(journal: Path | str) -> Path:
    """Where the keys file is when no --keys names it: beside the journal, named after it (two journals in one
    folder do not share users unless --keys says so)."""
    journal = Path(journal)
    return journal.with_name(journal.stem + KEYS_SUFFIX)


def _journal_path(conn: sqlite3.Connection) -> Path:
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main" and row[2]:
            return Path(row[2])
    raise AuditkitError("this journal has no file, so it has no keys file beside it; name one with --keys")


def _parse(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        raise KeysFileError(f"{path} is not a gateway keys file (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("keys"), list):
        raise KeysFileError(f"{path} is not a gateway keys file (format {FORMAT} expected)")
    rows = []
    for row in data["keys"]:
        if not (isinstance(row, dict) and all(isinstance(row.get(f), str) for f in ("id", "name", "kind", "role",
                                                                                     "key_hash"))):
            raise KeysFileError(f"{path} holds a key row without id, name, kind, role and key_hash")
        rows.append({f: row.get(f) for f in ROW_FIELDS})
    return rows


def read_rows(path: Path | str) -> list[dict[str, Any]]:
    """Every row of the keys file at `path` (none when there is no file yet). Raises KeysFileError for a file
    other users may read or write, or one that is not a keys file."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise KeysFileError(f"cannot read the keys file {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & 0o077:
            raise KeysFileError(f"the keys file {path} may be read or written by other users (mode "
                                f"{stat.S_IMODE(mode):04o}); run chmod 600 {path}")
        text = f.read().decode("utf-8", "replace")
    return _parse(path, text)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """The keys file's writers' lock, held for a read-modify-write: a flock on its folder (the file itself is
    replaced by each write, so a lock on it would not exclude the next writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update(path: Path | str, change: Callable[[list[dict[str, Any]]], Any]) -> Any:
    """Apply `change` to the rows of the keys file under its lock and write the result atomically (0600); returns
    what `change` returns. Nothing is written when it raises."""
    path = Path(path)
    with _locked(path):
        rows = read_rows(path)
        result = change(rows)
        body = json.dumps({"format": FORMAT, "keys": rows}, indent=1, ensure_ascii=False) + "\n"
        write_private(path, body)
        with contextlib.suppress(OSError):  # the rename is durable once the folder is synced
            dirfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
    return result


class KeyStore:
    """The keys file as a running gateway reads it: rows by hash, reloaded when the file changes (a stat on every
    look-up). While the file cannot be used, nobody is authenticated and `error` says why."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._by_hash: dict[str, dict[str, Any]] = {}
        self.error: str | None = None
        self._load(force=True)

    def _file_stamp(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError:
            return (-1, -1, -1, -1)
        return (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)

    def _load(self, force: bool = False) -> None:
        with self._lock:
            stamp = self._file_stamp()
            if not force and stamp == self._stamp:
                return
            try:
                rows = read_rows(self.path)
            except KeysFileError as e:
                if self.error != str(e):
                    log.error("%s; no key is accepted until it is fixed", e)
                self._by_hash, self.error, self._stamp = {}, str(e), stamp
                return
            self._by_hash = {row["key_hash"]: row for row in rows}
            self._stamp, self.error = stamp, None

    def row_for(self, digest: str) -> dict[str, Any] | None:
        self._load()
        return self._by_hash.get(digest)

    def rows(self) -> list[dict[str, Any]]:
        self._load()
        return list(self._by_hash.values())


_stores: dict[Path, KeyStore] = {}
_stores_lock = threading.Lock()


def _store_for(keys: "KeyStore | sqlite3.Connection") -> KeyStore:
    """A KeyStore as given, or, for a journal's connection, the one of the keys file beside that journal."""
    if isinstance(keys, KeyStore):
        return keys
    path = default_keys_path(_journal_path(keys)).resolve()
    with _stores_lock:
        found = _stores.get(path)
        if found is None:
            found = _stores[path] = KeyStore(path)
        return found


# --- Access events --------------------------------------------------------------------------------------------------

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


def _keys_path(conn: sqlite3.Connection, keys_path: Path | str | None) -> Path:
    return Path(keys_path) if keys_path is not None else default_keys_path(_journal_path(conn))


def add(conn: sqlite3.Connection, name: str, *, kind: str, role: str, source: str, by: str = "system",
        at: str | None = None, racks: Iterable[str] | None = None,
        keys_path: Path | str | None = None) -> tuple[str, str]:
    """Create a user (kind 'user', role admin|member|auditor) or a deploy key (kind 'deploy_key') in the keys file
    (`keys_path`, default: beside the journal `conn` is open on), and its Access event on the journal's chain
    `source`; returns (key_id, key). The key is never stored and cannot be shown again. `racks` limits the key to
    those racks (None or empty: every rack)."""
    grants = normalise_grants(racks)
    name = name.strip()
    if not name or not name.isprintable() or len(name) > 200:
        raise AuditkitError("a user or key needs a name (printable, at most 200 characters)")
    if kind == "user":
        if role not in ROLES:
            raise AuditkitError(f"unknown role '{role}' (one of {', '.join(ROLES)})")
        if "@" not in name:
            raise AuditkitError(f"'{name}' is not an email address")
    else:
        kind, role = "deploy_key", "deploy"
    if grants is not None and role == "auditor":
        raise AuditkitError("an auditor may not use racks, so it cannot be granted any (drop --rack)")
    key_id = "key_" + secrets.token_hex(6)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = {"id": key_id, "name": name, "kind": kind, "role": role, "key_hash": key_hash(key),
           "created_at": at or now_timestamp(), "created_by": by, "revoked_at": None, "revoked_by": None,
           "racks": None if grants is None else list(grants)}

    def insert(rows: list[dict[str, Any]]) -> None:
        if any(r["name"] == name and r["revoked_at"] is None for r in rows):
            raise AuditkitError(f"'{name}' already has an active key; revoke it first")
        rows.append(row)

    # The event commits only once the key is in the file: a key never works without its Access event being written
    # in the same step (if the commit itself fails after the file was written, the command fails and says so).
    with store.transaction(conn):
        store.append(conn, [_access_event("created", name, kind, role, by, key_id, at, grants)], source=source)
        update(_keys_path(conn, keys_path), insert)
    return key_id, key


def revoke(conn: sqlite3.Connection, name_or_id: str, *, source: str, by: str = "system",
           keys_path: Path | str | None = None) -> list[str]:
    """Revoke the active key(s) of a user or deploy key, by name or key id; returns the revoked key ids. Running
    gateways reading the keys file refuse them within a second."""
    revoked: list[dict[str, Any]] = []

    def mark(rows: list[dict[str, Any]]) -> None:
        at = now_timestamp()
        for r in rows:
            if (r["id"] == name_or_id or r["name"] == name_or_id) and r["revoked_at"] is None:
                r["revoked_at"], r["revoked_by"] = at, by
                revoked.append(r)
        if not revoked:
            raise AuditkitError(f"no active user or key named '{name_or_id}'")

    with store.transaction(conn):
        update(_keys_path(conn, keys_path), mark)
        store.append(conn, [_access_event("revoked", r["name"], r["kind"], r["role"], by, r["id"])
                            for r in revoked], source=source)
    return [r["id"] for r in revoked]


def list_keys(keys: "KeyStore | sqlite3.Connection | Path | str") -> list[dict]:
    """Every key row (revoked ones too), oldest first, without hashes; `racks` is a list of rack names, or None for
    every rack. `keys` is the keys file (a path or a KeyStore), or a journal with its keys file beside it."""
    rows = read_rows(keys) if isinstance(keys, (Path, str)) else read_rows(_store_for(keys).path)
    out = []
    for r in sorted(rows, key=lambda r: (r["created_at"] or "", r["id"])):
        row = {f: r[f] for f in ROW_FIELDS if f != "key_hash"}
        grants = _decode_grants(r["racks"])
        row["racks"] = list(grants) if grants is not None else None
        out.append(row)
    return out


# --- migration of keys kept inside a journal ------------------------------------------------------------------------

def journal_key_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The keys an older journal kept in its own gateway_keys table."""
    rows = conn.execute("SELECT id, name, kind, role, key_hash, created_at, created_by, revoked_at, revoked_by, racks "
                        "FROM gateway_keys ORDER BY created_at, id").fetchall()
    return [{f: row[f] for f in ROW_FIELDS} for row in rows]


def unmigrated(conn: sqlite3.Connection, keys_path: Path | str) -> list[dict[str, Any]]:
    """The journal's own key rows that the keys file does not hold (by id)."""
    have = {r["id"] for r in read_rows(keys_path)}
    return [r for r in journal_key_rows(conn) if r["id"] not in have]


def migrate_from_journal(conn: sqlite3.Connection, keys_path: Path | str) -> tuple[int, int]:
    """Copy the journal's gateway_keys rows into the keys file (hashes, grants and revocations as they are);
    returns (copied, already there). Re-running copies nothing twice. A row whose id is in the file with another
    hash is refused: two different keys under one id."""
    source_rows = journal_key_rows(conn)

    def merge(rows: list[dict[str, Any]]) -> tuple[int, int]:
        by_id = {r["id"]: r for r in rows}
        copied = 0
        for r in source_rows:
            there = by_id.get(r["id"])
            if there is not None:
                if there["key_hash"] != r["key_hash"]:
                    raise AuditkitError(f"key {r['id']} is in {keys_path} with another hash; nothing was copied")
                if r["revoked_at"] and not there["revoked_at"]:
                    there["revoked_at"], there["revoked_by"] = r["revoked_at"], r["revoked_by"]
                continue
            grants = _decode_grants(r["racks"])
            rows.append({**r, "racks": list(grants) if grants is not None else None})
            copied += 1
        return copied, len(source_rows) - copied

    return update(Path(keys_path), merge)


# --- authentication ------------------------------------------------------------------------------------------------

def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) of a Basic Authorization header (the password percent-decoded, as the Convox SDK
    escapes it), or None for anything else: no header, another scheme, bad base64 or non-ASCII in it, text that is
    not UTF-8, no colon."""
    credentials = wire.parse_basic(header)
    if credentials is None:
        return None
    username, password = credentials
    return username, urllib.parse.unquote(password)


def authenticate(keys: "KeyStore | sqlite3.Connection", key: str) -> Principal | None:
    """The active principal a presented key belongs to, or None. `keys` is the gateway's KeyStore, or a journal's
    connection (its keys file beside it)."""
    if not key or not key.startswith(KEY_PREFIX):
        return None
    digest = key_hash(key)
    row = _store_for(keys).row_for(digest)
    if row is None or row["revoked_at"] is not None or not hmac.compare_digest(row["key_hash"], digest):
        return None
    if row["kind"] not in KINDS or row["role"] not in (*ROLES, "deploy"):
        return None
    return Principal(row["id"], row["name"], row["kind"], row["role"], _decode_grants(row["racks"]))


def diagnose(keys: "KeyStore | sqlite3.Connection", header: str | None) -> tuple[str, str | None]:
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
    found = _store_for(keys)
    row = found.row_for(key_hash(key))
    if row is None:
        return ("keys file unusable" if found.error else "unknown key"), None
    if row["revoked_at"] is not None:
        return "revoked key", row["id"]
    return "unknown key", None  # (active: refused for another reason; not expected)
