"""`GET /healthz`: whether this replica can take writes now, for a load balancer's health check.

200 `ok` only while (1) the journal's writer is not holding outcomes or recovering from a failed commit, (2) a probe
write of PROBE_BYTES beside the journal, fsynced, completes within the deadline (the journal's filesystem has room
and answers), and (3) every configured rack answers `GET /system` with the gateway's credentials within the
deadline. Otherwise 503 with one line saying which of these failed. It needs no key and says nothing else: no rack
names, paths, versions or counts (an unauthenticated caller learns only up or down, and the broad reason).

The journal's own state is looked at on every call (it costs nothing, and a failed commit must take the replica out
at the load balancer's next check); the probe write and the racks' answers at most every CACHE_SECONDS, callers in
between sharing the last answer (several load balancers probing every second cost one probe each 0.2 s).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from auditkit.capture.config import Rack

if TYPE_CHECKING:  # pragma: no cover
    from auditkit.capture.proxy import Gateway

log = logging.getLogger("auditkit.gateway.health")

PROBE_BYTES = 64 * 1024  # more than a journal commit of a few events needs: a filesystem without it is full
CACHE_SECONDS = 0.2


@dataclasses.dataclass(frozen=True)
class Health:
    ok: bool
    reason: str  # one line, for the 503's body and the log


def probe_path(journal: Path) -> Path:
    return journal.with_name(f".{journal.name}.healthz")


def probe_write(journal: Path) -> None:
    """Write PROBE_BYTES beside the journal, fsync, remove. Raises OSError when the filesystem cannot take it."""
    path = probe_path(journal)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        block = b"\0" * PROBE_BYTES
        written = 0
        while written < PROBE_BYTES:
            written += os.write(fd, block[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass


class Checker:
    """The checks, cached; one per Gateway."""

    def __init__(self, gateway: "Gateway"):
        self.gateway = gateway
        self._last: tuple[float, Health] | None = None
        self._state: Health | None = None
        self._probe: asyncio.Future[None] | None = None
        self._lock: asyncio.Lock | None = None

    async def check(self) -> Health:
        if not self.gateway.journal.writable:
            return self._note(Health(False, "journal: not writable (outcomes of earlier writes are waiting to be "
                                            "recorded)"))
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < CACHE_SECONDS:
                return self._last[1]
            health = await self._run()
            self._last = (time.monotonic(), health)
        return self._note(health)

    def _note(self, health: Health) -> Health:
        """Log a change of state (once), and keep the auditkit_healthy gauge."""
        if self._state is None or self._state.ok != health.ok:
            (log.info if health.ok else log.error)("health: %s", health.reason)
        self._state = health
        self.gateway.metrics.healthy.set(1 if health.ok else 0)
        return health

    async def _run(self) -> Health:
        gateway = self.gateway
        deadline = gateway.config.health_deadline
        started = time.monotonic()
        if self._probe is not None and not self._probe.done():
            # A probe stuck in fsync is not started again (threads would pile up on a hung disk).
            return Health(False, "journal: an earlier probe write has not finished")
        self._probe = asyncio.ensure_future(asyncio.to_thread(probe_write, gateway.journal.path))
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), deadline)
        except asyncio.TimeoutError:
            return Health(False, f"journal: the probe write and fsync took more than {deadline:g} s")
        except OSError as e:
            return Health(False, f"journal: the probe write failed ({e.strerror or type(e).__name__})")
        left = max(0.1, deadline - (time.monotonic() - started))
        results = await asyncio.gather(*(self._rack(rack, left) for rack in gateway.config.racks.values()))
        failed = [reason for reason in results if reason]
        if failed:
            return Health(False, f"racks: {len(failed)} of {len(results)} not usable ({failed[0]})")
        return Health(True, "ok")

    async def _rack(self, rack: Rack, timeout: float) -> str | None:
        """None when the rack answers GET /system with 200 to the gateway's credentials; else a reason without
        the rack's name or URL."""
        headers = {"Authorization": rack.authorization, "Accept": "application/json"}
        try:
            async with self.gateway.session().get(f"{rack.url}/system", headers=headers,
                                                  timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                if r.status == 200:
                    return None
                if r.status in (401, 403):
                    return "refuses the gateway's credentials"
                return f"answers {r.status}"
        except asyncio.TimeoutError:
            return "no answer in time"
        except (aiohttp.ClientError, OSError):
            return "unreachable"


async def endpoint(request: Request) -> Response:
    checker: Checker = request.app.state.gateway.health
    health = await checker.check()
    return PlainTextResponse(health.reason + "\n", status_code=200 if health.ok else 503,
                             headers={"Cache-Control": "no-store"})
