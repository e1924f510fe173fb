"""The gateway's ASGI app and its state (Gateway): authenticate, classify (catalog), journal the intent, forward
HTTP (streaming large answers), journal the outcome; admit websockets the same way and hand them to sessions.py
for the relay and the recording; answer `/auth` and `/racks` as the Console; journal refusals; mount the feed
(feed.py).

Fail closed: an audited request is forwarded only after its intent is durable; if the journal cannot be written
the client gets 503 and the rack gets nothing. Secrets never reach the journal, the logs or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import signal
import time
import urllib.parse
from typing import Any, AsyncIterator, Callable

import aiohttp
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import yarl

from auditkit.capture import catalog
from auditkit.model.events import Event, new_event_id, now_timestamp
from auditkit.capture import canonical, feed, health, keys, metrics, refusals, sessions, wire
from auditkit.errors import AuditkitError
from auditkit.capture.canonical import Parsed, Refused
from auditkit.capture.config import GatewayConfig, Rack
from auditkit.capture.journal import Journal, JournalUnavailable

log = logging.getLogger("auditkit.gateway")

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
# Never forwarded from the client as-is: the gateway sets them.
CLIENT_ONLY = {"authorization", "convox-actor", "x-convox-actor", "rack", "session", "cookie"}
MAX_FORM_BYTES = 16 * 1024 * 1024  # the largest body read to classify (forms, multipart, JSON, classic env)
MAX_CAPTURE = 256 * 1024
SMALL_RESPONSE = 1024 * 1024  # answers up to this size are read whole; larger or unsized ones stream
FAULT_ENV = "AUDITKIT_GATEWAY_FAULT"  # test hook: "kill-after-forward" kills the process before the outcome
# Basic-auth usernames of Console mode (the rack is named by a Rack header); any other username names the rack.
CONSOLE_USERNAMES = ("convox", "jwt", "")


def error(status: int, message: str) -> JSONResponse:
    """An error in the rack's own format."""
    return JSONResponse({"error": message}, status_code=status)


class Gateway:
    def __init__(self, config: GatewayConfig, journal: Journal | None = None,
                 clock: Callable[[], str] | None = None, session_clock: Callable[[], float] | None = None):
        self.config = config
        self.now = clock or now_timestamp  # the demo runs a simulated week through a clock of its own
        self.session_clock = session_clock  # and times its recordings by it (epoch seconds); default: real time
        # Everything that can refuse to start is read before the journal's writer thread starts.
        try:
            self.metrics_token = metrics.read_token(config.metrics_token_file)
        except (OSError, ValueError) as e:
            raise AuditkitError(f"metrics token: {e}") from None
        self.hmac_key = config.hmac_key()
        self.signer = config.checkpoint_signer()
        self.keys = keys.KeyStore(config.keys_path)  # shared by every replica; reloaded when it changes
        self.journal = journal or Journal(config.journal, config.name)
        self.metrics = metrics.Metrics(self.journal)
        self.health = health.Checker(self)
        # (rack, "process:<app>/<pid>") → (event id of the `convox run` that started it, when): the exec websocket
        # that follows carries the real command and is linked to that event.
        self.runs: dict[tuple[str, str], tuple[str, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # aiohttp, not httpx, for the upstream: httpcore's pool re-polls every pooled socket for every request, which
        # costs throughput under concurrent clients (bench/gateway.py; bench/RESULTS.md).
        self._session: aiohttp.ClientSession | None = None

    # --- who and where --------------------------------------------------------------------------------------------
    def authenticate(self, headers: Any) -> tuple[Rack | None, keys.Principal | None, Response | None]:
        """(rack, principal, None) or (…, error response). Direct mode: the basic-auth username names the rack
        (plain, percent-encoded or base64); Console mode: username `convox` and a `Rack` header, which may also
        name a rack as `/racks` lists it (`<chain>/<name>` for a configured name without a slash). A 401 comes
        with principal None; the caller hands it to refuse_credentials() so that it is journaled."""
        credentials = keys.parse_basic(headers.get("authorization"))
        if credentials is None:
            return None, None, error(401, "invalid authentication")
        username, password = credentials
        principal = keys.authenticate(self.keys, password)
        if principal is None:
            return None, None, error(401, "invalid authentication")
        console = username in CONSOLE_USERNAMES
        rack_name = headers.get("rack") if console else self._rack_name(username)
        if not rack_name:
            if console:
                return None, principal, error(400, "no rack named: send a Rack header or use the rack as username")
            rack_name = username
        rack = self._find_rack(rack_name)
        if rack is None:
            return None, principal, error(404, f"rack not found: {rack_name}")
        return rack, principal, None

    def _rack_name(self, username: str) -> str:
        name = urllib.parse.unquote(username)
        if self._find_rack(name) is not None:
            return name
        try:
            decoded = base64.b64decode(name + "=" * (-len(name) % 4), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text (a plain ValueError)
            return name
        return decoded if self._find_rack(decoded) is not None else name

    def _find_rack(self, name: str) -> Rack | None:
        """The configured rack `name` names: its configured name, or the `org/name` that `/racks` shows for it."""
        rack = self.config.racks.get(name)
        if rack is not None:
            return rack
        for configured, rack in self.config.racks.items():
            if "/".join(self.console_rack_name(configured)) == name:
                return rack
        return None

    def source_ip(self, client_host: str | None, headers: Any) -> str | None:
        ip = client_host
        forwarded = headers.get("x-forwarded-for")
        if ip and forwarded and self.config.is_trusted_proxy(ip):
            # The right-most address not itself a trusted proxy is the client.
            for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
                ip = hop
                if not self.config.is_trusted_proxy(hop):
                    break
        return ip

    # --- events ---------------------------------------------------------------------------------------------------
    def draft(self, cls: catalog.Classification, principal: keys.Principal, rack: Rack, *, method: str, path: str,
              source_ip: str | None, user_agent: str | None, request_id: str | None, outcome: str = "unknown",
              status: int | None = None, details: dict[str, Any] | None = None) -> Event:
        return Event(
            id=new_event_id(),
            timestamp=self.now(),
            actor=principal.name,
            actor_type=principal.actor_type,
            rack=rack.name,
            category=cls.category,
            action=cls.action,
            description=cls.description,
            app=cls.app,
            target=cls.target,
            outcome=outcome,
            status=status,
            method=method,
            path=catalog.mask_userinfo(path),
            source_ip=source_ip,
            user_agent=user_agent,
            request_id=request_id,
            details={**cls.details, **(details or {})},
        )

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def session(self) -> aiohttp.ClientSession:
        """The upstream HTTP client, made on first use inside the server's event loop. Racks commonly present
        self-signed certificates and the Convox CLI does not verify them either (stdsdk's InsecureSkipVerify)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False, limit=256),
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=self.config.upstream_timeout),
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
        return self._session

    def upstream_headers(self, headers: Any, rack: Rack, principal: keys.Principal,
                         parsed: Parsed | None = None) -> dict[str, str]:
        """The headers the rack gets. On a recorded request only those it was classified by: the few every
        client sends and the route's declared option headers (stdapi's c.Value falls back to a header of a
        param's name, so an undeclared header could carry a param the record never saw); a proxy route, and a
        read that is not recorded, get the client's headers as they came."""
        route = parsed.matched[0] if parsed is not None and parsed.matched else None
        allowed: set[str] | None = None
        if parsed is not None and parsed.recorded and not (route is not None and route.passes_headers):
            allowed = canonical.FORWARDED_HEADERS | ({h.lower() for h in route.headers} if route else set())
        out = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP | CLIENT_ONLY
               and (allowed is None or k.lower() in allowed)}
        out["Authorization"] = rack.authorization
        out["Convox-Actor"] = principal.name
        return out

    async def current_env(self, rack: Rack, app: str) -> dict[str, str] | None:
        """The app's environment as the CLI sees it (the newest release's env), read from the rack; None when it
        cannot be known."""
        headers = {"Authorization": rack.authorization, "Accept": "application/json"}
        quoted = urllib.parse.quote(app, safe="")
        try:
            async with self.session().get(f"{rack.url}/apps/{quoted}/releases", headers=headers) as r:
                if r.status != 200:
                    return None
                releases = await r.json(content_type=None)
            if not releases:
                return {}
            newest = max(releases, key=lambda item: str(item.get("created") or ""))
            return wire.parse_env(newest.get("env") or "")
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, AttributeError, TypeError):
            return None

    async def rack_json(self, rack: Rack, path: str) -> Any:
        """A read of the rack with its credentials (`path` already quoted): its JSON, or None when it fails."""
        headers = {"Authorization": rack.authorization, "Accept": "application/json"}
        try:
            async with self.session().get(f"{rack.url}{path}", headers=headers) as r:
                return await r.json(content_type=None) if r.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None

    # --- HTTP -----------------------------------------------------------------------------------------------------
    async def parse(self, scope: dict[str, Any], headers: Any, method: str, *, websocket: bool,
                    receive_body: Callable[[], Any] | None = None) -> Parsed:
        """The one parse of a request (canonical.py): its decoded path, the route it reaches, its parameters and
        file parts as the rack reads them, and the body that will be forwarded. Raises Refused."""
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        raw_path = raw_path.split(b"?", 1)[0]
        raw_query = scope.get("query_string") or b""
        path = canonical.canonical_path(raw_path)
        matched = catalog.match(method, path, websocket=websocket)
        route = matched[0] if matched else None
        recorded = (route.audited if route is not None else (websocket or method not in catalog.READ_METHODS))
        parsed = Parsed(path=path, target=raw_path.decode("ascii") + (f"?{raw_query.decode('latin-1')}"
                                                                       if raw_query else ""),
                        matched=matched, recorded=recorded)
        has_body = "content-length" in headers or "transfer-encoding" in headers
        if not recorded:
            parsed.stream = has_body
            return parsed  # a read that is not recorded: forwarded as it came, nothing of it is kept
        seen: set[str] = set()
        for name, _ in headers.items():
            if name.lower() in seen:
                raise Refused(400, f"the header {canonical.shown(name)} is given more than once (the rack and the "
                                   "record could read different copies)")
            seen.add(name.lower())
        query = canonical.parse_pairs(raw_query, "query")
        body_pairs: list[tuple[str, str]] = []
        multipart = False
        content_type = headers.get("content-type")
        if route is not None and route.raw_body:
            if content_type and canonical.parse_media_type(content_type)[0] in (canonical.FORM_TYPE,
                                                                                canonical.MULTIPART_TYPE):
                raise Refused(415, "this route takes a raw upload; a form body would be read by the rack as a form")
            parsed.stream = has_body
        elif has_body and receive_body is not None:
            body = await receive_body()
            if body is None:
                raise Refused(413, "request body too large for an audited write")
            parsed.body = body
            if body:
                if headers.get("content-encoding", "identity").strip().lower() != "identity":
                    raise Refused(415, "an encoded (compressed) body is not read as a form by the rack")
                if method not in canonical.BODY_METHODS:
                    raise Refused(400, f"a {method} request carries no body the rack reads")
                if not content_type:
                    if route is None or route.special != "env_body":
                        raise Refused(415, "a body without a Content-Type is not read by the rack")
                else:
                    kind, options = canonical.parse_media_type(content_type)
                    if kind == canonical.FORM_TYPE:
                        if len(body) > canonical.MAX_FORM_BODY:
                            raise Refused(413, "a form body over 10 MiB, which the rack would not read")
                        body_pairs = canonical.parse_pairs(body, "form")
                    elif kind == canonical.MULTIPART_TYPE:
                        body_pairs, parsed.files = canonical.parse_multipart(body, options.get("boundary", ""))
                        multipart = True
                    elif route is not None and route.json_body and kind == "application/json":
                        parsed.body_record = canonical.FilePart("", len(body), hashlib.sha256(body).hexdigest())
                    elif route is not None and route.special == "env_body":
                        pass  # the classic env route: the body is the env text itself
                    elif route is None:
                        parsed.body_record = canonical.FilePart(kind, len(body), hashlib.sha256(body).hexdigest())
                    else:
                        raise Refused(415, f"this route reads a form: {kind} bodies are refused")
        # r.Form's order: an urlencoded body before the query, a multipart body after it.
        order = (query, body_pairs) if multipart else (body_pairs, query)
        parsed.params = canonical.combine(*order, files=parsed.files)
        for name in [*parsed.params, *parsed.files]:
            if not catalog.plain_name(name):
                raise Refused(400, f"the parameter name {canonical.shown(name)} is not a plain name "
                                   "(1–80 letters, digits, _ . - [ ]), so it could not be recorded as sent")
        if route is not None:
            declared = {h.lower() for h in route.headers}
            for name in catalog.clear_params(route):
                if name.lower() not in declared and name.lower() not in canonical.HTTP_HEADERS and name in headers:
                    raise Refused(400, f"the parameter '{name}' is sent as a header, which the rack may read")
        return parsed

    async def http(self, request: Request) -> Response:
        rack, principal, refusal = self.authenticate(request.headers)
        if refusal is not None:
            return self.refuse_credentials(request, principal, refusal)
        assert rack is not None and principal is not None
        method = request.method
        ip = self.source_ip(request.client.host if request.client else None, request.headers)
        agent = request.headers.get("user-agent")
        try:
            parsed = await self.parse(request.scope, request.headers, method, websocket=False,
                                      receive_body=lambda: _read_limited(request, MAX_FORM_BYTES))
        except Refused as e:
            await self._refuse_malformed(e, principal, rack, method, request.scope, ip, agent)
            return error(e.status, f"auditkit gateway: {e.reason}")
        path, params, body, matched = parsed.path, parsed.params, parsed.body, parsed.matched
        request_headers = dict(request.headers)
        previous_env = None
        if matched is not None and matched[0].special in catalog.ENV_SPECIALS and "app" in matched[1]:
            if principal.may_use_rack(rack.name):
                previous_env = await self.current_env(rack, matched[1]["app"])
        cls = None
        if parsed.recorded:
            cls = catalog.classify(method, path, params=params, headers=request_headers, body=body,
                                   websocket=False, hmac_key=self.hmac_key, previous_env=previous_env,
                                   files=parsed.files)
            if cls is not None and parsed.body_record is not None:
                cls = dataclasses.replace(cls, details={**cls.details, "body": parsed.body_record.record()})
        if not principal.may_use_rack(rack.name):
            return await self.refuse_rack(cls, principal, rack, method, path, ip, agent)
        intent_id = None
        draft = None
        if cls is not None:
            draft = self.draft(cls, principal, rack, method=method, path=path, source_ip=ip, user_agent=agent,
                               request_id=None)
            try:
                intent_id = await self.journal.intent(draft)
            except JournalUnavailable as e:
                log.error("refusing %s %s: %s", method, catalog.mask_userinfo(path), e)
                return error(503, "auditkit gateway: the audit journal cannot be written, so the request was not "
                                  "forwarded; try again later")
        # Forwarded byte for byte as it was sent and parsed: yarl must neither re-encode nor resolve dot segments.
        url = yarl.URL(f"{rack.url}{parsed.target}", encoded=True)
        # A request without a body (a GET, a DELETE) is forwarded without one, not as an empty chunked body.
        content: Any = body if body is not None else request.stream() if parsed.stream else None
        try:
            upstream = await self.session().request(method, url, headers=self.upstream_headers(
                request.headers, rack, principal, parsed), data=content, allow_redirects=False)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            if draft is not None and intent_id is not None:
                failed = draft.replace(outcome="failed", status=502, details={**draft.details,
                                                                              "error": type(e).__name__})
                self.spawn(self.journal.outcome(intent_id, failed))
            return error(502, f"rack {rack.name} is unreachable")
        if os.environ.get(FAULT_ENV) == "kill-after-forward" and cls is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        response_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        if "content-length" in upstream.headers and "content-encoding" not in upstream.headers:
            response_headers.append(("content-length", upstream.headers["content-length"]))
        status = upstream.status
        request_id = upstream.headers.get("request-id")

        length = upstream.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) <= SMALL_RESPONSE:
            # Most Rack API answers are small JSON: read them whole and answer without a streaming task group.
            try:
                answer = await upstream.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                answer = None
            finally:
                upstream.release()
            if answer is not None:
                if cls is not None and draft is not None and intent_id is not None:
                    self.spawn(self._finish(cls, draft, intent_id, status, request_id, answer[:MAX_CAPTURE],
                                            dict(upstream.headers), params, request_headers, body))
                plain = Response(answer, status_code=status)
                plain.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response_headers]
                return plain
            if cls is not None and draft is not None and intent_id is not None:
                self.spawn(self._finish(cls, draft, intent_id, 502, request_id, b"", {}, params, request_headers,
                                        body))
            return error(502, f"rack {rack.name} broke off its answer")

        async def relay() -> AsyncIterator[bytes]:
            captured = bytearray()
            try:
                async for chunk in upstream.content.iter_any():
                    if cls is not None and len(captured) < MAX_CAPTURE:
                        captured.extend(chunk[: MAX_CAPTURE - len(captured)])
                    yield chunk
            finally:
                upstream.release()
                if cls is not None and draft is not None and intent_id is not None:
                    self.spawn(self._finish(cls, draft, intent_id, status, request_id, bytes(captured),
                                            dict(upstream.headers), params, request_headers, body))

        response = StreamingResponse(relay(), status_code=status)
        response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response_headers]
        return response

    async def _finish(self, cls: catalog.Classification, draft: Event, intent_id: str, status: int,
                      request_id: str | None, body: bytes, headers: dict[str, str], params: dict[str, str],
                      request_headers: dict[str, str], request_body: bytes | None) -> None:
        answer: Any = None
        if body:
            try:
                answer = json.loads(body)
            except ValueError:
                answer = {"error": body.decode("utf-8", "replace").strip()} if status >= 400 else None
        done = catalog.describe_outcome(cls, status, answer if isinstance(answer, dict) else None,
                                        response_headers=headers, params=params, headers=request_headers,
                                        body=request_body)
        outcome = "succeeded" if status < 400 else ("denied" if status in (401, 403) else "failed")
        event = draft.replace(description=done.description, target=done.target, app=done.app, outcome=outcome,
                              status=status, request_id=request_id or draft.request_id,
                              details={**draft.details, **done.details})
        if done.link and outcome == "succeeded" and cls.route is not None and cls.route.special == "run":
            self.runs[(draft.rack, done.link)] = (event.id, time.monotonic())
        try:
            await self.journal.outcome(intent_id, event)
        except JournalUnavailable as e:  # held by the journal and sealed once it can be written (journal.py)
            log.error("outcome of %s %s not recorded: %s", draft.method, draft.path, e)

    async def _refuse(self, cls: catalog.Classification, principal: keys.Principal, rack: Rack, method: str,
                      path: str, ip: str | None, agent: str | None, reason: str | None = None) -> None:
        event = self.draft(cls, principal, rack, method=method, path=path, source_ip=ip, user_agent=agent,
                           request_id=None, outcome="denied", status=403,
                           details={"reason": reason or f"role {principal.role} may not use racks"})
        try:
            await self.journal.record(event)
        except JournalUnavailable as e:
            log.error("denied request not recorded: %s", e)

    async def _refuse_malformed(self, refusal: Refused, principal: keys.Principal, rack: Rack, method: str,
                                scope: dict[str, Any], ip: str | None, agent: str | None) -> None:
        """Journal a request refused before anything was forwarded because it could not be parsed as the rack
        would read it: outcome denied, action denied, the reason, the path as sent (escaped)."""
        raw = (scope.get("raw_path") or scope["path"].encode("utf-8")).split(b"?", 1)[0]
        # as sent, but decoded for masking: a password in a %2F%2F-encoded URL is still a password
        shown = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}",
                       catalog.mask_userinfo(urllib.parse.unquote(canonical.shown_target(raw))))
        try:
            path = canonical.canonical_path(raw)
            matched = catalog.match(method, path)
        except Refused:
            path, matched = shown, None
        route = matched[0] if matched else None
        app = None
        if route is not None and route.app in matched[1]:  # type: ignore[index]
            app = matched[1][route.app]  # type: ignore[index]
        event = Event(
            id=new_event_id(), timestamp=self.now(), actor=principal.name, actor_type=principal.actor_type,
            rack=rack.name, category=(route.category if route is not None and route.category else "Other"),
            action="denied", description=f"Refused {method} {catalog.clean_text(shown)}: {refusal.reason}",
            app=app, target=None, outcome="denied", status=refusal.status, method=method,
            path=catalog.mask_userinfo(path), source_ip=ip, user_agent=agent,
            details={"reason": refusal.reason, "path_sent": shown, **({"route": route.sdk} if route else {})})
        try:
            await self.journal.record(event)
        except JournalUnavailable as e:
            log.error("refused request not recorded: %s", e)

    # --- access: refused credentials, racks a key may not use, Console mode --------------------------------------
    @functools.cached_property
    def refusal_windows(self) -> refusals.Coalescer:
        """Refusals counted into windows and journaled as they close (refusals.py); made on first use, in the
        server's event loop."""
        return refusals.Coalescer(self.config.refusal_window, self.journal.record)

    def refuse_credentials(self, connection: HTTPConnection, principal: keys.Principal | None,
                           refusal: Response) -> Response:
        """The refusal branch of http(), websocket() and the feed: returns `refusal` as it is, and when it refuses
        the credentials (a 401: no or garbled Authorization, not a gateway key, an unknown or a revoked key) counts
        it toward its source IP's refusal event.

        That event (written when the window closes, config.refusal_window, and at shutdown) is category Access,
        action and outcome `denied`, status 401, actor `unknown`, rack `gateway`, with the source IP, user agent,
        method and path of the window's first refusal, and in details the count, first and last times and reasons.
        Nothing of the presented key is recorded, not even a prefix; a revoked key of this gateway is named by its
        key id (target and `key_ids`). No header value but the user agent is recorded (not the rack asked for)."""
        if principal is not None or refusal.status_code != 401:
            return refusal
        reason, key_id = keys.diagnose(self.keys, connection.headers.get("authorization"))
        ip = self.source_ip(connection.client.host if connection.client else None, connection.headers)
        where = ip or "an unknown address"

        def describe(count: int) -> str:
            return f"Refused {refusals.requests(count)} with invalid credentials from {where}"

        draft = Event(id=new_event_id(), timestamp=self.now(), actor="unknown", actor_type="user", rack="gateway",
                      category="Access", action="denied", description=describe(1), outcome="denied", status=401,
                      method=_method(connection), path=_printable(connection.url.path, 1000), source_ip=ip,
                      user_agent=_printable(connection.headers.get("user-agent"), 300))
        self.refusal_windows.note(("credentials", ip), draft, describe, reason=reason, key_id=key_id)
        return refusal

    async def refuse_rack(self, cls: catalog.Classification | None, principal: keys.Principal, rack: Rack,
                          method: str, path: str, ip: str | None, agent: str | None) -> Response:
        """Refuse a principal a rack it may not use — its role may use none (an auditor), or the key is not granted
        this rack — with 403 in the rack's format, and journal the denial.

        An audited request (a write, a session, a sensitive read) is journaled at once in its own category and
        action, with the rack and the request's description, as it would have been recorded had it gone through,
        but with outcome `denied`, status 403 and the reason in details: a `category:Releases` filter shows the
        attempted promotion beside the real ones, `outcome:denied` every refusal. A read the gateway does not audit
        is journaled as an Access/denied event coalesced per source IP, principal and rack (one per window, with a
        count), so that a valid key cannot fill the journal with refused reads."""
        if principal.may_use_racks:
            reason, short = f"not granted rack {rack.name}", "not granted"
            message = f"{principal.name} is not granted rack {rack.name}"
        else:
            reason = short = f"role {principal.role} may not use racks"
            message = f"{principal.name} has role {principal.role}, which may not use racks"
        if cls is not None:
            await self._refuse(cls, principal, rack, method, path, ip, agent, reason=reason)
            return error(403, message)

        def describe(count: int) -> str:
            reads = "a read" if count == 1 else f"{count} reads"
            return f"Refused {reads} of rack {rack.name} to {principal.name} ({short})"

        draft = Event(id=new_event_id(), timestamp=self.now(), actor=principal.name,
                      actor_type=principal.actor_type, rack=rack.name, category="Access", action="denied",
                      description=describe(1), outcome="denied", status=403, method=method,
                      path=_printable(path, 1000), source_ip=ip, user_agent=_printable(agent, 300),
                      details={"reason": reason, "key_id": principal.key_id})
        self.refusal_windows.note(("rack", ip, principal.key_id, rack.name), draft, describe, reason=reason)
        return error(403, message)

    def console_rack_name(self, name: str) -> tuple[str, str]:
        """(organization, name) of a configured rack as the Console's `/racks` shows it: `acme/production` is
        organization acme, rack production; a name without a slash belongs to the gateway's chain name."""
        organization, sep, short = name.partition("/")
        if sep and organization and short:
            return organization, short
        return self.journal.source, name

    def asks_the_console(self, request: Request) -> bool:
        """Whether a `/auth` or `/racks` request is for the gateway as the Console (no Rack header, and a Console
        username or no usable credentials) rather than for a rack (a Rack header, or a direct-mode username naming
        one): those are forwarded as any request, as the v3 SDK's throw-away `GET /racks` before websockets must."""
        if request.headers.get("rack"):
            return False
        credentials = keys.parse_basic(request.headers.get("authorization"))
        return credentials is None or credentials[0] in CONSOLE_USERNAMES

    def console_principal(self, request: Request) -> tuple[keys.Principal | None, Response | None]:
        credentials = keys.parse_basic(request.headers.get("authorization"))
        principal = keys.authenticate(self.keys, credentials[1]) if credentials else None
        if principal is None:
            return None, self.refuse_credentials(request, None, error(401, "invalid authentication"))
        return principal, None

    async def console_auth(self, request: Request) -> Response:
        """`GET /auth` as the Console answers it for `convox login GATEWAY -t KEY`: 200 with the key's id for a
        valid key (of any role), 401 in the rack's format otherwise (journaled as refused credentials). A read:
        not journaled."""
        if not self.asks_the_console(request):
            return await self.http(request)
        principal, refusal = self.console_principal(request)
        if principal is None:
            return refusal  # type: ignore[return-value]
        return JSONResponse({"id": principal.key_id})

    async def console_racks(self, request: Request) -> Response:
        """`GET /racks` as the Console answers it for `convox racks` and `convox switch ORG/NAME`: the racks the
        key may use, in the Console's JSON (an auditor's list is empty). A read: not journaled."""
        if not self.asks_the_console(request):
            return await self.http(request)
        principal, refusal = self.console_principal(request)
        if principal is None:
            return refusal  # type: ignore[return-value]
        listed = []
        for name in sorted(self.config.racks):
            if principal.may_use_rack(name):
                organization, short = self.console_rack_name(name)
                listed.append({"name": short, "organization": {"name": organization}, "provider": "convox",
                               "status": "running"})
        return JSONResponse(listed)

    # --- websockets -----------------------------------------------------------------------------------------------
    async def websocket(self, ws: WebSocket) -> None:
        """Admit a websocket as http() admits a request (credentials, the one parse, the rack grant, the intent
        journaled first; each refusal answered with an HTTP status before the upgrade), open the rack's side, then
        relay and record the session (sessions.py)."""
        rack, principal, refusal = self.authenticate(ws.headers)
        if refusal is not None:
            await _deny(ws, self.refuse_credentials(ws, principal, refusal))
            return
        assert rack is not None and principal is not None
        ip = self.source_ip(ws.client.host if ws.client else None, ws.headers)
        agent = ws.headers.get("user-agent")
        try:
            parsed = await self.parse(ws.scope, ws.headers, "GET", websocket=True)
        except Refused as e:
            await self._refuse_malformed(e, principal, rack, "GET", ws.scope, ip, agent)
            await _deny(ws, error(e.status, f"auditkit gateway: {e.reason}"))
            return
        path, query = parsed.path, parsed.params
        cls = None
        if parsed.recorded:
            cls = catalog.classify("GET", path, params=query, headers=dict(ws.headers), websocket=True,
                                   hmac_key=self.hmac_key)
        if not principal.may_use_rack(rack.name):
            await _deny(ws, await self.refuse_rack(cls, principal, rack, "GET", path, ip, agent))
            return
        draft = intent_id = None
        run_link = None
        masked = None
        if cls is not None and cls.session:
            # What to mask (masking.py), read before the intent so that its command line is masked too.
            try:
                masked = await sessions.read_secrets(cls, query, dict(ws.headers),
                                                     lambda path: self.rack_json(rack, path))
            except Exception:  # noqa: BLE001 — not knowing what to mask withholds the recording (fail closed)
                masked = None
            cls = sessions.masked_classification(cls, masked)
        if cls is not None:
            if cls.link:
                run_link = self.runs.pop((rack.name, cls.link), None)
            extra = {"run_event": run_link[0]} if run_link else {}
            draft = self.draft(cls, principal, rack, method="GET", path=path, source_ip=ip, user_agent=agent,
                               request_id=None, details=extra)
            try:
                intent_id = await self.journal.intent(draft)
            except JournalUnavailable:
                await _deny(ws, error(503, "auditkit gateway: the audit journal cannot be written, so the session "
                                           "was not opened"))
                return
        try:
            upstream = await sessions.connect(rack.url, parsed.target,
                                              self.upstream_headers(ws.headers, rack, principal, parsed))
        except sessions.CONNECT_ERRORS as e:
            status = getattr(getattr(e, "response", None), "status_code", 502)
            if draft is not None and intent_id is not None:
                outcome = "denied" if status in (401, 403) else "failed"
                self.spawn(self.journal.outcome(intent_id, draft.replace(outcome=outcome, status=status)))
            await _deny(ws, error(status if status >= 400 else 502, f"rack {rack.name} refused the session"))
            return
        await ws.accept()
        recording = None
        if cls is not None and draft is not None and intent_id is not None:
            recorder = sessions.recorder_for(cls, ws.headers, record_input=self.config.record_input,
                                             cap=self.config.recording_cap_bytes, clock=self.session_clock,
                                             secrets=masked)
            recording = sessions.Recording(self.journal, self.config.name, self.now, cls, draft, intent_id,
                                           rack.name, query, dict(ws.headers), recorder, masked)
        await sessions.relay(ws, upstream, recording)

    async def aclose(self) -> None:
        await self.refusal_windows.aclose()  # refusal windows still open are journaled before the journal closes
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self.journal.close()


def _method(connection: HTTPConnection) -> str:
    """The request's method; a websocket handshake is a GET."""
    return str(connection.scope.get("method") or "GET")[:16]


def _printable(text: str | None, limit: int) -> str | None:
    """Client-chosen text made safe for an event: at most `limit` characters, NUL as `\\0` (the gateway's way),
    other control characters escaped."""
    if text is None:
        return None
    return "".join(ch if ch.isprintable() else "\\0" if ch == "\x00" else ascii(ch)[1:-1]
                   for ch in text[:limit])


async def _read_limited(request: Request, limit: int) -> bytes | None:
    chunks = bytearray()
    async for chunk in request.stream():
        chunks.extend(chunk)
        if len(chunks) > limit:
            return None
    return bytes(chunks)


async def _deny(ws: WebSocket, response: Response) -> None:
    """Refuse a websocket handshake with an HTTP response (status and the rack's JSON error)."""
    try:
        await ws.send_denial_response(response)
    except RuntimeError:
        await ws.close(code=1008)


def create_app(config: GatewayConfig, journal: Journal | None = None,
               clock: Callable[[], str] | None = None, session_clock: Callable[[], float] | None = None) -> Starlette:
    gateway = Gateway(config, journal, clock, session_clock)

    async def http_endpoint(request: Request) -> Response:
        return await gateway.http(request)

    async def ws_endpoint(ws: WebSocket) -> None:
        await gateway.websocket(ws)

    # Console mode (as `convox login` and `convox racks` drive it): `/auth` and `/racks` without a Rack header are
    # answered by the gateway itself; with one (or a direct-mode username) they are forwarded like any request.
    routes = [Route("/healthz", health.endpoint, methods=["GET"]),
              Route("/metrics", metrics.endpoint, methods=["GET"])] + feed.routes(gateway) + [
        Route("/auth", gateway.console_auth, methods=["GET"]),
        Route("/racks", gateway.console_racks, methods=["GET"]),
        Route("/{path:path}", http_endpoint, methods=["GET"]),
        WebSocketRoute("/{path:path}", ws_endpoint),
    ]
    routes[-2].methods = None  # type: ignore[union-attr]  # every method: an odd one is recorded, never a bare 405
    for route in routes[-2:]:
        # Starlette's `.*` stops at a newline: such a path would be answered 404 unrecorded instead of reaching
        # the one parse, which refuses it and journals the refusal.
        route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)  # type: ignore[union-attr]

    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await gateway.aclose()

    app = Starlette(routes=routes, lifespan=contextlib.asynccontextmanager(lifespan),
                    middleware=[Middleware(metrics.Middleware, metrics=gateway.metrics)])
    app.state.gateway = gateway
    return app
