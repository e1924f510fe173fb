"""The feed: the gateway's journal served to sync agents (docs/feed.md).

    GET /audit/v1/events?after=SEQ&limit=N&wait=S   → {"source", "events": [...], "next_after", "head", "more"}
    GET /audit/v1/sessions/ID.cast                  → the recording's asciicast v2 bytes
    GET /audit/v1/checkpoint                        → the chain's signed checkpoint (C2SP tlog-checkpoint note)
    GET /audit/v1/key                               → the verifier key that signs it
    GET /audit/v1/proof/inclusion?seq=N&size=S      → {"leaf_index", "tree_size", "hashes": [base64…]}
    GET /audit/v1/proof/consistency?from=S1&to=S2   → {"hashes": [base64…]}

Only keys with the admin or auditor role may read it. Pages are gzip-compressed when the client accepts gzip; with
`wait`, a request that finds nothing new waits up to S seconds (at most 60) for the next event.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auditkit import store
from auditkit.capture import keys
from auditkit.model.merkle import ProofError

if TYPE_CHECKING:  # pragma: no cover
    from auditkit.capture.proxy import Gateway

MAX_LIMIT = 5000
MAX_WAIT = 60.0


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


def _compressed(request: Request, body: bytes, media_type: str) -> Response:
    if "gzip" in request.headers.get("accept-encoding", "").lower() and len(body) > 512:
        return Response(gzip.compress(body, compresslevel=5), media_type=media_type,
                        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(body, media_type=media_type, headers={"Vary": "Accept-Encoding"})


def routes(gateway: "Gateway") -> list[Route]:
    def allowed(request: Request) -> Response | None:
        credentials = keys.parse_basic(request.headers.get("authorization"))
        principal = keys.authenticate(gateway.keys, credentials[1]) if credentials else None
        if principal is None:
            return gateway.refuse_credentials(request, None, JSONResponse({"error": "invalid authentication"}, 401))
        if not principal.may_read_feed:
            return JSONResponse({"error": f"{principal.name} may not read the audit feed (admin or auditor only)"},
                                status_code=403)
        return None

    async def events(request: Request) -> Response:
        refusal = allowed(request)
        if refusal:
            return refusal
        try:
            after = _int_param(request, "after", 0, 0, 2**62)
            limit = _int_param(request, "limit", 1000, 1, MAX_LIMIT)
            wait = float(request.query_params.get("wait", "0"))
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        wait = max(0.0, min(wait, MAX_WAIT))
        journal = gateway.journal
        rows = store.events_after(journal.reader(), journal.source, after, limit + 1)
        if not rows and wait:
            await journal.wait_for_new(after, wait)
            rows = store.events_after(journal.reader(), journal.source, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        head = store.chain_head(journal.reader(), journal.source)
        body: dict[str, Any] = {
            "source": journal.source,
            "events": rows,
            "next_after": rows[-1]["source_seq"] if rows else after,
            "head": {"seq": head.last_seq, "hash": head.last_hash},
            "more": more,
        }
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return _compressed(request, data, "application/json")

    async def session(request: Request) -> Response:
        refusal = allowed(request)
        if refusal:
            return refusal
        cast = store.recording(gateway.journal.reader(), request.path_params["id"])
        if cast is None:
            return JSONResponse({"error": "no such recording"}, status_code=404)
        return _compressed(request, cast, "application/x-asciicast")

    async def checkpoint(request: Request) -> Response:
        refusal = allowed(request)
        if refusal:
            return refusal
        signed = store.sign_checkpoint(gateway.journal.reader(), gateway.journal.source, gateway.signer)
        return Response(signed, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"})

    async def key(request: Request) -> Response:
        refusal = allowed(request)
        if refusal:
            return refusal
        return Response(f"{gateway.signer.verifier}\n", media_type="text/plain; charset=utf-8")

    def proof(request: Request, make: Any) -> Response:
        refusal = allowed(request)
        if refusal:
            return refusal
        journal = gateway.journal
        size = store.tree_size(journal.reader(), journal.source)
        try:
            body = make(journal.reader(), journal.source, size)
        except ValueError as e:  # a bad parameter, or ProofError: a proof that cannot exist
            return JSONResponse({"error": str(e)}, status_code=400)
        return JSONResponse(body)

    def _b64(hashes: list[bytes]) -> list[str]:
        return [base64.b64encode(h).decode() for h in hashes]

    async def inclusion(request: Request) -> Response:
        def make(conn: Any, source: str, head: int) -> dict[str, Any]:
            size = _int_param(request, "size", head, 1, head) if head else _no_tree(source)
            seq = _int_param(request, "seq", 0, 1, size) if "seq" in request.query_params else _required("seq")
            return {"leaf_index": seq - 1, "tree_size": size,
                    "hashes": _b64(store.inclusion_proof(conn, source, seq, size))}
        return proof(request, make)

    async def consistency(request: Request) -> Response:
        def make(conn: Any, source: str, head: int) -> dict[str, Any]:
            for name in ("from", "to"):
                if name not in request.query_params:
                    _required(name)
            new = _int_param(request, "to", head, 0, head)
            old = _int_param(request, "from", 0, 0, new)
            return {"hashes": _b64(store.consistency_proof(conn, source, old, new))}
        return proof(request, make)

    return [
        Route("/audit/v1/events", events, methods=["GET"]),
        Route("/audit/v1/sessions/{id}.cast", session, methods=["GET"]),
        Route("/audit/v1/checkpoint", checkpoint, methods=["GET"]),
        Route("/audit/v1/key", key, methods=["GET"]),
        Route("/audit/v1/proof/inclusion", inclusion, methods=["GET"]),
        Route("/audit/v1/proof/consistency", consistency, methods=["GET"]),
    ]


def _required(name: str) -> Any:
    raise ValueError(f"{name} is required")


def _no_tree(source: str) -> Any:
    raise ProofError(f"the chain {source} holds no events yet: no inclusion proof exists")
