"""Feeds for the sync tests, all real servers on loopback: a gateway journal of N events served by the real gateway
app (over HTTP or TLS); a man in the middle: a TLS proxy with a certificate of its own that terminates TLS, records
every request it receives (headers included) and forwards it to the real gateway, optionally rewriting the answers;
and a signed feed served from a second store (a forked or rolled-back history under the gateway's key)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from auditkit import store
from auditkit.capture import keys
from auditkit.capture.config import GatewayConfig, Rack
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.capture.tls import fingerprint, make_certificate
from auditkit.model import note
from auditkit.model.events import Event, from_dict, new_event_id, seal
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
    fingerprint is then `server.fingerprint`); `server.checkpoint_key` is its checkpoint verifier key."""
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
    server.checkpoint_key = str(config.checkpoint_signer().verifier)  # type: ignore[attr-defined]
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
        self.server.server.force_exit = True  # a client's keep-alive connection must not hold the test up
        self.server.stop()


class SignedFeed:
    """A feed served from a store of our choosing, signed with `signer`: the feed protocol's reads (events,
    checkpoint, key, consistency proofs; docs/feed.md) over HTTP on loopback, reading `path` afresh on every request.
    Pointed at a second store (a forked or rolled-back copy of a journal) under the real gateway's key, it is the
    gateway an attacker who holds that key would run. Any key is accepted; `seen` keeps the requests' paths."""

    def __init__(self, path: Path, source: str, signer: note.Signer):
        self.path, self.source, self.signer = path, source, signer
        self.seen: list[str] = []
        self.server = ServerThread(Starlette(routes=[
            Route("/audit/v1/events", self._events), Route("/audit/v1/checkpoint", self._checkpoint),
            Route("/audit/v1/key", self._key), Route("/audit/v1/proof/consistency", self._consistency),
        ])).start()
        self.url = self.server.url

    def _read(self, request: Request, answer: Callable[[Any], Response]) -> Response:
        self.seen.append(request.url.path)
        conn = store.open_db(self.path)
        try:
            return answer(conn)
        finally:
            conn.close()

    async def _events(self, request: Request) -> Response:
        after, limit = int(request.query_params.get("after", 0)), int(request.query_params.get("limit", 1000))

        def answer(conn: Any) -> Response:
            rows = store.events_after(conn, self.source, after, limit + 1)
            head = store.chain_head(conn, self.source)
            return JSONResponse({"source": self.source, "events": rows[:limit], "more": len(rows) > limit,
                                 "next_after": rows[:limit][-1]["source_seq"] if rows else after,
                                 "head": {"seq": head.last_seq, "hash": head.last_hash}})
        return self._read(request, answer)

    async def _checkpoint(self, request: Request) -> Response:
        return self._read(request, lambda conn: PlainTextResponse(
            store.sign_checkpoint(conn, self.source, self.signer)))

    async def _key(self, request: Request) -> Response:
        return PlainTextResponse(str(self.signer.verifier) + "\n")

    async def _consistency(self, request: Request) -> Response:
        old, new = int(request.query_params["from"]), int(request.query_params["to"])
        return self._read(request, lambda conn: JSONResponse({"hashes": [
            base64.b64encode(h).decode() for h in store.consistency_proof(conn, self.source, old, new)]}))

    def stop(self) -> None:
        self.server.stop()


def forge_events(index: int, **changes: Any) -> Callable[[str, bytes], bytes]:
    """A MITM rewrite: the `index`th event of every events page gets `changes`, and it and every later event of the
    page are re-hashed, so the page is a well-formed chain that continues the mirror's."""

    def rewrite(path: str, body: bytes) -> bytes:
        if not path.endswith("/events"):
            return body
        page = json.loads(body)
        events = [from_dict(item) for item in page["events"]]
        if len(events) <= index:
            return body
        prev = events[index].prev_hash or ""
        for i in range(index, len(events)):
            event = events[i].replace(**changes) if i == index else events[i]
            events[i] = seal(event, source=event.source or "", seq=event.source_seq or 0, prev_hash=prev)
            prev = events[i].hash or ""
        page["events"] = [event.to_dict() for event in events]
        return json.dumps(page).encode()

    return rewrite


def hide_after(seq: int) -> Callable[[str, bytes], bytes]:
    """A MITM rewrite: events pages stop at `seq` (the newest events hidden)."""

    def rewrite(path: str, body: bytes) -> bytes:
        if not path.endswith("/events"):
            return body
        page = json.loads(body)
        page["events"] = [item for item in page["events"] if item["source_seq"] <= seq]
        page["more"] = False
        return json.dumps(page).encode()

    return rewrite
