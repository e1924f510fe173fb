"""A stand-in for the mirror's own signing key (store.local_signer / store.local_verifier), installed only while the
store of this checkout lacks them: an Ed25519 key beside the mirror (`local-checkpoint.key`, 0600, key name
`local`), and a checkpoint of the local chain signed with it after every append to it, as the store's own does.
The export tests need both; once the store has its own, install() does nothing and the tests use the real one.

`python tests/share/mirror_key.py ARGS…` runs the auditkit command line with the stand-in installed (the browser
test's `auditkit serve`)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # the checkout's auditkit, as pytest's pythonpath gives it to the tests
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from auditkit import store  # noqa: E402
from auditkit.files import write_private  # noqa: E402
from auditkit.model import note  # noqa: E402

KEY_FILE = "local-checkpoint.key"


def _db_dir(conn: sqlite3.Connection) -> Path:
    row = next(r for r in conn.execute("PRAGMA database_list") if r[1] == "main")
    return Path(row[2]).parent


def _local_signer(conn: sqlite3.Connection) -> note.Signer:
    path = _db_dir(conn) / KEY_FILE
    if not path.exists():
        try:
            write_private(path, str(note.generate_signer("local")) + "\n", exclusive=True)
        except FileExistsError:
            pass
    return note.Signer.parse(path.read_text())


def install() -> bool:
    """Install the stand-in unless the store has its own; True when the stand-in is in use. Like the store's own,
    every append to the local chain then signs and stores a checkpoint of it with the mirror's key."""
    if hasattr(store, "local_signer"):
        return False
    store.local_signer = _local_signer  # type: ignore[attr-defined]
    store.local_verifier = lambda conn: _local_signer(conn).verifier  # type: ignore[attr-defined]
    append = store.append

    def append_and_checkpoint(conn: sqlite3.Connection, drafts: Any, source: str = store.LOCAL_SOURCE) -> Any:
        with store.transaction(conn):
            sealed = append(conn, drafts, source)
            if source == store.LOCAL_SOURCE:
                signer = _local_signer(conn)
                store.add_checkpoint(conn, source, store.sign_checkpoint(conn, source, signer), str(signer.verifier))
        return sealed

    store.append = append_and_checkpoint  # type: ignore[assignment]
    _installed.append(append)
    return True


_installed: list[Any] = []


def uninstall() -> None:
    """Undo install()."""
    if _installed:
        store.append = _installed.pop()  # type: ignore[assignment]
        del store.local_signer, store.local_verifier  # type: ignore[attr-defined]


if __name__ == "__main__":
    install()
    from auditkit.cli import main

    sys.argv[0] = "auditkit"
    main()
