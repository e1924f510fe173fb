"""The exceptions auditkit raises on bad input or a broken invariant; the CLI prints them as one line."""

from __future__ import annotations


class AuditkitError(Exception):
    """Base of every error meant for a person: its message is complete and needs no traceback."""


class EventError(AuditkitError, ValueError):
    """An event that does not fit the model (unknown category, bad timestamp, float in details, …)."""


class ChainError(AuditkitError):
    """A batch that does not continue its chain, or an event whose hash is not the one its content implies."""


class StoreError(AuditkitError):
    """The database cannot be opened, is newer than this auditkit, or refused a write."""


class FilterError(AuditkitError, ValueError):
    """A filter that cannot be parsed; `position` is the 0-based offset of the offending token in the text."""

    def __init__(self, message: str, token: str = "", position: int | None = None):
        self.reason = message
        self.token = token
        self.position = position
        where = f" at column {position + 1}" if position is not None else ""
        shown = f" in {token!r}" if token else ""
        super().__init__(f"{message}{shown}{where}")


class ShareError(AuditkitError):
    """A share link cannot be made, found, used or revoked; the subclasses say why a link cannot be opened."""


class ShareTokenError(ShareError):
    """A token that does not carry a valid signature under this mirror's secret (tampered, foreign, malformed)."""


class ShareLinkUnknown(ShareError):
    """A validly signed token, or an id, naming no link in this mirror."""


class ShareLinkExpired(ShareError):
    """The link's expiry has passed; `expired_at` says when (UTC timestamp)."""

    def __init__(self, message: str, expired_at: str):
        self.expired_at = expired_at
        super().__init__(message)


class ShareLinkRevoked(ShareError):
    """The link was revoked; `revoked_at` says when and `revoked_by` by whom."""

    def __init__(self, message: str, revoked_at: str, revoked_by: str | None):
        self.revoked_at = revoked_at
        self.revoked_by = revoked_by
        super().__init__(message)
