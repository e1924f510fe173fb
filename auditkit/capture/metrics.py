"""`GET /metrics`: the gateway's Prometheus metrics (prometheus_client, a registry per gateway), and the ASGI
middleware that counts feed requests and open sessions.

    auditkit_audited_requests_total{category,outcome,rack}   events the journal sealed (writes, sessions, refusals)
    auditkit_journal_commit_seconds                          histogram of the journal's commit (fsync included)
    auditkit_journal_failures_total                          commits (and retries) the journal could not write
    auditkit_journal_pending_intents                         intents on disk awaiting their outcome
    auditkit_open_sessions                                   websocket sessions open now
    auditkit_feed_requests_total{code}                       requests to /audit/v1/ by status class (2xx, 4xx, …)
    auditkit_healthy                                         1 when the last /healthz check passed, else 0

Readable with an admin key (Basic, as the feed) or `Authorization: Bearer TOKEN` where TOKEN is the content of
metrics_token_file (--metrics-token-file). Label values are the journal's own vocabularies (category, outcome) and the
configured rack names; nothing a client chose becomes a label (an unknown rack is refused before it is journaled, and
refusals are journaled under rack `gateway`), so a client cannot make the label set grow.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from auditkit.capture import keys
from auditkit.capture.journal import Journal
from auditkit.model.events import Event

if TYPE_CHECKING:  # pragma: no cover
    from auditkit.capture.proxy import Gateway

FEED_PREFIX = "/audit/v1/"
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The gateway's metrics in a registry of their own (several gateways may share a process: the tests)."""

    def __init__(self, journal: Journal):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.audited = Counter("auditkit_audited_requests", "Events the journal sealed, by category, outcome and rack.",
                               ["category", "outcome", "rack"], registry=r)
        self.commit_seconds = Histogram("auditkit_journal_commit_seconds",
                                        "Time a journal commit took (one transaction, fsync included).",
                                        buckets=COMMIT_BUCKETS, registry=r)
        self.failures = Counter("auditkit_journal_failures", "Journal commits (and retries) that could not be written.",
                                registry=r)
        self.pending = Gauge("auditkit_journal_pending_intents", "Intents on disk awaiting their outcome.", registry=r)
        self.pending.set_function(lambda: journal.pending)
        self.sessions = Gauge("auditkit_open_sessions", "Websocket sessions open now.", registry=r)
        self.feed = Counter("auditkit_feed_requests", "Requests to the feed (/audit/v1/), by status class.", ["code"],
                            registry=r)
        self.healthy = Gauge("auditkit_healthy", "1 when the last /healthz check passed, else 0.", registry=r)
        journal.on_commit = self.committed
        journal.on_failure = self.failures.inc

    def committed(self, seconds: float | None, sealed: list[Event]) -> None:
        if seconds is not None:
            self.commit_seconds.observe(seconds)
        for event in sealed:
            self.audited.labels(event.category, event.outcome, event.rack).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def read_token(path: Path | None) -> str | None:
    """The metrics token (the file's content, stripped), or None without a file; a file other users may read, or
    with a token shorter than 16 characters, is refused."""
    if path is None:
        return None
    mode = path.stat().st_mode
    if mode & 0o077:
        raise ValueError(f"{path} may be read by other users (mode {mode & 0o777:04o}); run chmod 600 {path}")
    token = path.read_text().strip()
    if len(token) < 16:
        raise ValueError(f"{path} holds no metrics token of 16 characters or more")
    return token


class Middleware:
    """ASGI middleware: counts feed requests by status class and keeps the open-session gauge (a websocket counts
    from its accept to the end of its connection)."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind, metrics = scope.get("type"), self.metrics
        if kind == "http" and str(scope.get("path", "")).startswith(FEED_PREFIX):
            async def counting_send(message: dict[str, Any]) -> None:
                if message.get("type") == "http.response.start":
                    metrics.feed.labels(f"{int(message.get('status', 0)) // 100}xx").inc()
                await send(message)
            await self.app(scope, receive, counting_send)
            return
        if kind == "websocket":
            opened = False

            async def session_send(message: dict[str, Any]) -> None:
                nonlocal opened
                if message.get("type") == "websocket.accept" and not opened:
                    opened = True
                    metrics.sessions.inc()
                await send(message)
            try:
                await self.app(scope, receive, session_send)
            finally:
                if opened:
                    metrics.sessions.dec()
            return
        await self.app(scope, receive, send)


async def endpoint(request: Request) -> Response:
    """GET /metrics for an admin key or the metrics token; 401 (journaled as refused credentials) otherwise."""
    gateway: "Gateway" = request.app.state.gateway
    header = request.headers.get("authorization") or ""
    token = gateway.metrics_token
    scheme, _, value = header.partition(" ")
    if token is not None and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
        return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
    credentials = keys.parse_basic(header)
    principal = keys.authenticate(gateway.keys, credentials[1]) if credentials else None
    if principal is None:
        return gateway.refuse_credentials(request, None, JSONResponse({"error": "invalid authentication"}, 401))
    if principal.role != "admin":
        return JSONResponse({"error": f"{principal.name} may not read the metrics (admin only)"}, status_code=403)
    return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
