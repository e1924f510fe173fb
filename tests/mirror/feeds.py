"""Feeds for the sync tests, all real servers on loopback: a gateway journal of N events served by the real gateway
app (over HTTP or TLS), and a man in the middle: a TLS proxy with a certificate of its own that terminates TLS,
records every request it receives (headers included) and forwards it to the real gateway, optionally rewriting
the answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auditkit import store
from auditkit.capture import keys
from auditkit.capture.config import GatewayConfig, Rack
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.capture.tls import fingerprint, make_certificate
from auditkit.model.events import Event, new_event_id
from convox_sim.servers import ServerThread


def journal_with(path: Path, source: str, count: int, start_minute: int = 0) -> str:
    """A gateway journal holding `count` events on chain `source`; returns an auditor key."""
    conn = store.open_db(path)
    journal_source(conn, source)
    append_to(conn, source, count, start_minute)
    _, auditor = keys.add(conn, "audrey@example.com", kind="user", role="auditor", source=source)
    conn.close()
    return auditor


def append_to(conn: Any, source: str, count: int, start_minute: int = 0, actor: str = "u") -> None:
    drafts = [Event(id=new_event_id(), timestamp=f"2026-11-{1 + (start_minute + i) // 1440 % 28:02d}T"
                    f"{(start_minute + i) // 60 % 24:02d}:{(start_minute + i) % 60:02d}:00.000Z",
                    actor=f"{actor}{i % 7}@example.com", actor_type="user", rack="acme/production",
                    category="Processes", action="scaled", description=f"Scaled service web of app web (count={i % 9})",
                    app="web", target="web", status=200) for i in range(count)]
    for i in range(0, count, 5000):
        store.append(conn, drafts[i:i + 5000], source=source)


def certificate_pair(work: Path, stem: str) -> tuple[Path, Path]:
    """A new self-signed pair for 127.0.0.1 and localhost, written under `work`."""
    cert, key = make_certificate(["127.0.0.1", "localhost"], common_name=f"test {stem}")
    cert_path, key_path = work / f"{stem}.crt", work / f"{stem}.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    return cert_path, key_path


def serve_journal(path: Path, source: str, work: Path, *, tls: bool = False) -> ServerThread:
    """The real gateway app on `path`'s journal, on loopback (HTTPS on a new self-signed pair when `tls`; its
    fingerprint is then `server.fingerprint`)."""
    config = GatewayConfig(racks={"acme/production": Rack("acme/production", "http://127.0.0.1:9", "convox", "x")},
                           journal=path, name=source, http=not tls, data_dir=work)
    options: dict[str, Any] = {}
    cert = None
    if tls:
        cert, key = certificate_pair(work, f"{source}-gateway")
        options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    server = ServerThread(create_app(config), **options).start()
    server.fingerprint = fingerprint(cert) if cert else None  # type: ignore[attr-defined]
    server.cert_path = cert  # type: ignore[attr-defined]
    return server


class Mitm:
    """A TLS-terminating proxy on a certificate of its own in front of `upstream`: every request it receives is kept
    in `seen` (path, headers) before it is forwarded; `rewrite(path, body)` may change an answer's body."""

    def __init__(self, upstream: str, work: Path, rewrite: Callable[[str, bytes], bytes] | None = None):
        self.upstream, self.rewrite = upstream, rewrite
        self.seen: list[tuple[str, dict[str, str]]] = []
        cert, key = certificate_pair(work, "mitm")
        self.fingerprint = fingerprint(cert)
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET"])])
        self.server = ServerThread(app, ssl_certfile=str(cert), ssl_keyfile=str(key)).start()
        self.url = self.server.url

    async def _forward(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append((request.url.path, headers))
        forwarded = {k: v for k, v in headers.items() if k == "authorization"}
        async with httpx.AsyncClient(verify=False, timeout=30) as client:
            answer = await client.get(self.upstream + request.url.path, params=request.query_params,
                                      headers=forwarded)
        body = answer.content
        if self.rewrite is not None:
            body = self.rewrite(request.url.path, body)
        return Response(body, status_code=answer.status_code,
                        media_type=answer.headers.get("content-type", "application/octet-stream"))

    @property
    def saw_authorization(self) -> bool:
        return any("authorization" in headers for _, headers in self.seen)

    def stop(self) -> None:
        self.server.stop()
