"""The admin accounts that may log in to `auditkit serve`: `<db dir>/admins.json` (mode 0600), email → a
pbkdf2-sha256 hash made with datasette-auth-passwords' own hash function, which serves the /-/login page.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from auditkit.errors import AuditkitError
from auditkit.files import write_private

ADMINS_FILE = "admins.json"
MIN_PASSWORD = 12
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def admins_path(db_path: str | os.PathLike[str]) -> Path:
    return Path(db_path).parent / ADMINS_FILE


def load_admins(db_path: str | os.PathLike[str]) -> dict[str, str]:
    """email → password hash (empty when no account was made)."""
    path = admins_path(db_path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        accounts = data["accounts"]
        if not isinstance(accounts, dict) or not all(isinstance(v, str) for v in accounts.values()):
            raise ValueError("accounts must map emails to hashes")
    except (ValueError, KeyError, TypeError) as e:
        raise AuditkitError(f"{path} is not an auditkit admins file ({e})") from None
    return dict(accounts)


def _write_admins(db_path: str | os.PathLike[str], accounts: dict[str, str]) -> None:
    path = admins_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps({"accounts": dict(sorted(accounts.items()))}, indent=2) + "\n")


def add_admin(db_path: str | os.PathLike[str], email: str, password: str) -> bool:
    """Add an admin account (or set a new password for an existing one); True when it is new."""
    from datasette_auth_passwords.utils import hash_password

    email = email.strip().lower()
    if not _EMAIL_RE.match(email):
        raise AuditkitError(f"'{email}' is not an email address")
    if len(password) < MIN_PASSWORD:
        raise AuditkitError(f"the password must be at least {MIN_PASSWORD} characters long")
    accounts = load_admins(db_path)
    new = email not in accounts
    accounts[email] = hash_password(password)
    _write_admins(db_path, accounts)
    return new


def remove_admin(db_path: str | os.PathLike[str], email: str) -> None:
    accounts = load_admins(db_path)
    email = email.strip().lower()
    if email not in accounts:
        raise AuditkitError(f"no admin account '{email}'")
    del accounts[email]
    _write_admins(db_path, accounts)
