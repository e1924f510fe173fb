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
