"""The mirror's own signing key and the checkpoints it signs of the mirror's `local` chain.

A mirror's key is an Ed25519 key (a C2SP signed-note signer, key name LOCAL_KEY_NAME) kept beside the database file
as `<db file>.checkpoint.key` (for data/audit.db: data/audit.db.checkpoint.key), mode 0600, made on first need. Its
verifier key (`local+<hex key id>+<base64 key>`, `auditkit mirror-key`) is what an auditor pins to check the mirror's
local chain and the exports it makes.

chains.append calls checkpoint_local() in the transaction of every append to the local chain, so the newest stored
checkpoint of `local` always covers all of it. Besides the C2SP lines (origin `local`, size, root) and the
`timestamp …` extension, a local checkpoint carries one extension line per other chain of the mirror at that moment,
`chain <source> <size> <base64 root>`: the mirror's signed word for what it held, so that a chain dropped or cut
after that moment is still known to verify (verify.py).
"""

from __future__ import annotations

import base64
import re
import sqlite3
from pathlib import Path

from auditkit.errors import StoreError
from auditkit.files import write_private
from auditkit.model import note
from auditkit.model.events import now_timestamp
from auditkit.store import trees
from auditkit.store.db import transaction

LOCAL_SOURCE = "local"  # the mirror's own chain (re-exported by chains and the store)
LOCAL_KEY_NAME = "local"
KEY_SUFFIX = ".checkpoint.key"
CHAIN_EXTENSION = "chain "
_LISTABLE = re.compile(r"[!-~]{1,200}")  # a source name that fits one extension word (printable ASCII, no space)

_signers: dict[tuple[str, int], note.Signer] = {}  # (path, mtime_ns) → parsed signer: parsing costs a key derivation


def database_path(conn: sqlite3.Connection) -> Path:
    """The file of the connection's main database; StoreError for an in-memory or temporary one."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            if not row[2]:
                raise StoreError("this database has no file, so it has no place for a signing key beside it")
            return Path(row[2])
    raise StoreError("no main database")  # pragma: no cover - SQLite always lists it


def beside(conn: sqlite3.Connection, suffix: str) -> Path:
    """A file beside the database, named after it: `<db file><suffix>`."""
    path = database_path(conn)
    return path.with_name(path.name + suffix)


def key_path(conn: sqlite3.Connection) -> Path:
    """Where the mirror's signing key is: `<db file>.checkpoint.key`."""
    return beside(conn, KEY_SUFFIX)


def load_signer(path: Path, name: str, *, create: bool = True) -> note.Signer:
    """The Ed25519 signer in `path` (named `name`), made there (0600) on first need when `create`."""
    if not path.exists():
        if not create:
            raise StoreError(f"no signing key at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_private(path, str(note.generate_signer(name)) + "\n", exclusive=True)
        except FileExistsError:
            pass  # another process made it first: use theirs
    stat = path.stat()
    cached = _signers.get((str(path), stat.st_mtime_ns))
    if cached is not None:
        return cached
    try:
        signer = note.Signer.parse(path.read_text())
    except (note.NoteError, UnicodeDecodeError) as e:
        raise StoreError(f"{path} does not hold a signing key: {e}") from None
    if signer.name != name:
        raise StoreError(f"{path} signs as '{signer.name}', not as '{name}'")
    _signers[(str(path), stat.st_mtime_ns)] = signer
    return signer


def local_signer(conn: sqlite3.Connection, *, create: bool = True) -> note.Signer:
    """The mirror's own signing key (made beside the database on first need unless create=False)."""
    return load_signer(key_path(conn), LOCAL_KEY_NAME, create=create)


def local_verifier(conn: sqlite3.Connection) -> note.Verifier:
    """The mirror's verifier key, the one its local checkpoints verify with. StoreError when there is no key file."""
    return local_signer(conn, create=False).verifier


def chain_line(source: str, size: int, root: bytes) -> str:
    return f"{CHAIN_EXTENSION}{source} {size} {base64.b64encode(root).decode()}"


def parse_chain_line(line: str) -> tuple[str, int, bytes] | None:
    """(source, size, root) of a `chain …` extension line; None for any other line or a malformed one."""
    if not line.startswith(CHAIN_EXTENSION):
        return None
    parts = line[len(CHAIN_EXTENSION):].split(" ")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    try:
        root = base64.b64decode(parts[2], validate=True)
    except ValueError:
        return None
    return (parts[0], int(parts[1]), root) if len(root) == 32 else None


def checkpoint_local(conn: sqlite3.Connection) -> trees.StoredCheckpoint:
    """Sign and store a checkpoint of the whole local chain, naming every other chain's size and root. Runs inside
    the caller's transaction (chains.append)."""
    signer = local_signer(conn)
    size = trees.tree_size(conn, LOCAL_SOURCE)
    lines = [trees.TIMESTAMP_EXTENSION + now_timestamp()]
    for source, last_seq in conn.execute(
            "SELECT source, last_seq FROM sync_state WHERE source != ? AND last_seq > 0 ORDER BY source",
            (LOCAL_SOURCE,)).fetchall():
        if _LISTABLE.fullmatch(source):
            lines.append(chain_line(source, last_seq, trees.tree_root(conn, source, last_seq)))
    text = note.Checkpoint(LOCAL_SOURCE, size, trees.tree_root(conn, LOCAL_SOURCE, size), tuple(lines)).sign(signer)
    return trees.add_checkpoint(conn, LOCAL_SOURCE, text, str(signer.verifier))



def pinned_key(conn: sqlite3.Connection, source: str) -> str | None:
    """The checkpoint key pinned for `source` (sync_state.checkpoint_key), if any."""
    row = conn.execute("SELECT checkpoint_key FROM sync_state WHERE source = ?", (source,)).fetchone()
    return row[0] if row else None


def checkpoint_chain(conn: sqlite3.Connection, source: str, signer: note.Signer) -> trees.StoredCheckpoint:
    """Sign and store a checkpoint of all of `source`'s chain with `signer`, the chain's gateway key held by the
    caller (the synthetic history's), and pin that key as sync pins a gateway's (sync_state.checkpoint_key). A
    chain pinned to another key is refused: its checkpoints are its gateway's to sign."""
    verifier = str(signer.verifier)
    with transaction(conn):
        row = conn.execute("SELECT checkpoint_key FROM sync_state WHERE source = ?", (source,)).fetchone()
        if row is None:
            raise StoreError(f"{source}: no such chain")
        if row[0] and row[0] != verifier:
            raise StoreError(f"{source}: its checkpoints are signed by the pinned key {row[0]}, not {verifier}")
        conn.execute("UPDATE sync_state SET checkpoint_key = ? WHERE source = ?", (verifier, source))
        text = trees.sign_checkpoint(conn, source, signer)
        return trees.add_checkpoint(conn, source, text, verifier)


def rebuild_and_sign(conn: sqlite3.Connection) -> None:
    """The v6 migration's step: build every chain's tree from its events (trees.rebuild_all), then sign the local
    chain as the mirror finds it, so that an upgraded mirror's own chain is vouched for from then on (what it held
    before the upgrade is taken on trust, once). Other chains wait for their gateway's checkpoint (the next sync)."""
    trees.rebuild_all(conn)
    if trees.tree_size(conn, LOCAL_SOURCE):
        checkpoint_local(conn)
