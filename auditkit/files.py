"""Writing files that hold secrets (keys, signing secrets, account hashes): readable by their owner only, and never
seen half-written. A base module beside errors.py: every part of auditkit may import it, it imports nothing of
auditkit.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private(path: str | os.PathLike[str], data: str | bytes, *, exclusive: bool = False) -> None:
    """Write `data` (str as UTF-8) to `path` with mode 0600, atomically: into a temporary file made beside it with
    O_EXCL and that mode, flushed to disk, then renamed over `path`, so that a reader finds the old content or the
    new one, never a part, and the file is never readable by others even for a moment.

    exclusive=True never replaces an existing file: it raises FileExistsError when `path` exists (a secret made
    on first use, by whichever process comes first). The parent folder must exist."""
    target = Path(path)
    content = data.encode("utf-8") if isinstance(data, str) else data
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), PRIVATE_MODE)  # whatever the umask
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(temporary, target)  # fails with FileExistsError instead of replacing
        else:
            os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
