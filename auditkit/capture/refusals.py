"""Refused requests, coalesced so that a flood of them cannot fill the journal.

A refusal the gateway cannot pin on a principal (bad credentials: one event per source IP) and a refused read of a
principal on a rack it may not use (one event per source IP, principal and rack) open a *window*: the first refusal
is kept as the event's draft, later ones in the same window only count. When the window has been open for
`window` seconds, a background task writes one event for it (its details hold the count, the first and last times
and the reasons); at shutdown every open window is written. At most `max_open` windows are open at once; refusals
beyond that share one overflow window, so memory and the journal stay bounded whatever the number of sources.

Nothing of a request but its method, path, source IP and user agent reaches these events (the caller's drafts hold
no header value but the user agent, and no part of a presented key).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any, Awaitable, Callable, Hashable

from auditkit.errors import AuditkitError
from auditkit.model.events import Event

log = logging.getLogger("auditkit.gateway")

MIN_WINDOW = 0.1  # seconds; a shorter configured window would be one event per refusal
MAX_KEY_IDS = 20  # revoked key ids named in one event
OVERFLOW: tuple[str] = ("overflow",)


@dataclasses.dataclass
class _Window:
    draft: Event
    describe: Callable[[int], str]
    opened: float  # monotonic
    last_at: str
    count: int = 1
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    key_ids: list[str] = dataclasses.field(default_factory=list)

    def add(self, reason: str, key_id: str | None) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if key_id is not None and key_id not in self.key_ids and len(self.key_ids) < MAX_KEY_IDS:
            self.key_ids.append(key_id)


def requests(count: int) -> str:
    """`a request`, `5 requests`: for descriptions of coalesced refusals."""
    return "a request" if count == 1 else f"{count} requests"


def _overflow_text(count: int) -> str:
    return f"Refused {requests(count)} from many sources (too many at once to count each source apart)"


class Coalescer:
    """Open windows of refusals, written by a background task as they close, and all of them by aclose()."""

    def __init__(self, window: float, write: Callable[[Event], Awaitable[Any]], *, max_open: int = 4096,
                 monotonic: Callable[[], float] = time.monotonic):
        self.window = max(float(window), MIN_WINDOW)
        self.write = write
        self.max_open = max_open
        self.monotonic = monotonic
        self.windows: dict[Hashable, _Window] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def note(self, key: Hashable, draft: Event, describe: Callable[[int], str], *, reason: str,
             key_id: str | None = None) -> None:
        """Count a refusal under `key`; `draft` (the event as if it were the only one) and `describe` (the
        description for a count) are used only when it opens a window. Call from the event loop's thread."""
        window = self.windows.get(key)
        if window is None and len(self.windows) >= self.max_open:
            key = OVERFLOW
            window = self.windows.get(key)
            draft = draft.replace(source_ip=None, user_agent=None, target=None)
            describe = _overflow_text
        if window is None:
            window = self.windows[key] = _Window(draft, describe, self.monotonic(), draft.timestamp, count=0)
        window.count += 1
        window.last_at = draft.timestamp
        window.add(reason, key_id)
        if self._task is None and not self._closing.is_set():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def event(self, window: _Window) -> Event:
        """The one event a window becomes."""
        details = dict(window.draft.details)
        details.update({"count": window.count, "first_at": window.draft.timestamp, "last_at": window.last_at,
                        "window_ms": int(self.window * 1000), "reasons": dict(sorted(window.reasons.items()))})
        if window.key_ids:
            details["key_ids"] = list(window.key_ids)
        target = window.draft.target
        if target is None and len(window.key_ids) == 1:
            target = window.key_ids[0]
        return window.draft.replace(description=window.describe(window.count), target=target, details=details)

    async def flush(self, *, everything: bool = False) -> int:
        """Write the windows that have closed (or all of them); returns how many events were written."""
        now = self.monotonic()
        due = [k for k, w in self.windows.items() if everything or now - w.opened >= self.window]
        events = [self.event(self.windows.pop(k)) for k in due]
        if not events:
            return 0
        results = await asyncio.gather(*(self.write(e) for e in events), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for problem in failed:
            if not isinstance(problem, (AuditkitError, OSError)):
                raise problem
        if failed:
            # (Nothing was forwarded for these requests; the count is lost with the event, and the log says so.)
            log.error("%d refusal event(s) not recorded: %s", len(failed), type(failed[0]).__name__)
        return len(events) - len(failed)

    async def _run(self) -> None:
        # Never cancelled while it writes (a cancelled write could leave the journal's writer a cancelled future):
        # aclose() wakes it and waits for it to finish.
        try:
            while self.windows and not self._closing.is_set():
                oldest = min(w.opened for w in self.windows.values())
                delay = max(0.0, oldest + self.window - self.monotonic()) + 0.01
                try:
                    await asyncio.wait_for(self._closing.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                if self._closing.is_set():
                    break
                try:
                    await self.flush()
                except Exception:  # noqa: BLE001 — those windows are lost (logged); the task keeps serving the rest
                    log.exception("writing refusal events failed")
        finally:
            self._task = None

    async def aclose(self) -> None:
        """Stop the background task and write every open window (gateway shutdown)."""
        self._closing.set()
        if self._task is not None:
            await self._task
        await self.flush(everything=True)
