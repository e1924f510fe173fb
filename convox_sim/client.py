"""A Convox client that speaks the Rack API wire exactly as the Convox CLI and SDK do (convox/convox pkg/cli and
sdk, convox/stdsdk): form-encoded params, doubly-encoded maps, option headers, `convox.go` user agent, basic auth
from RACK_URL, the throw-away GET before a websocket, stdin as TEXT frames, an empty BINARY frame for EOF, and the
exit-code marker; the wire's details (version, marker, map and env codecs, Basic credentials) are
auditkit.capture.wire's.

The demo's scripted users and the gateway's tests drive the gateway with it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import ssl
import urllib.parse
from typing import Any, Callable

import httpx
import websockets

from auditkit.capture import wire

@dataclasses.dataclass
class ExecResult:
    output: str
    exit_code: int | None


class RackClient:
    """One user's view of a rack: RACK_URL = scheme://USER:PASSWORD@host (direct mode), or Console mode with a
    `Rack` header (username `convox`)."""

    def __init__(self, base_url: str, username: str, password: str, *, rack_header: str | None = None,
                 actor: str | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.auth = (username, password)
        self.headers = {
            "User-Agent": wire.USER_AGENT,
            "Version": wire.CONVOX_VERSION,
            "Accept": "*/*",
            "Authorization": wire.basic_authorization(username, urllib.parse.quote(password, safe="")),
        }
        if rack_header:
            self.headers["Rack"] = rack_header
        if actor:
            self.headers["X-Convox-Actor"] = actor
        self.http = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout, verify=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "RackClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- HTTP -----------------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, params: dict[str, str] | None = None, *,
                headers: dict[str, str] | None = None, body: bytes | None = None,
                query: dict[str, str] | None = None) -> httpx.Response:
        extra = dict(headers or {})
        content: Any = None
        if body is not None:
            extra.setdefault("Content-Type", "application/octet-stream")
            content = body
        elif params is not None:
            extra["Content-Type"] = "application/x-www-form-urlencoded"
            content = urllib.parse.urlencode(params).encode()
        return self.http.request(method, path, content=content, headers=extra, params=query)

    def json(self, method: str, path: str, params: dict[str, str] | None = None, **kw: Any) -> Any:
        response = self.request(method, path, params, **kw)
        if response.status_code >= 400:
            raise RackError(response.status_code, _error_text(response))
        try:
            return response.json() if response.content else None
        except ValueError:  # some routes answer with an empty or plain-text body
            return response.text

    # Calls the CLI makes, one per command (as convox/convox pkg/cli sends them).
    def apps_create(self, name: str) -> Any:
        # AppCreateOptions.Generation defaults to "2" in the CLI; a v3 rack makes a generation 3 app all the same.
        return self.json("POST", "/apps", {"name": name, "generation": "2"})

    def apps_info(self, name: str) -> Any:
        return self.json("GET", f"/apps/{name}")

    def apps_delete(self, name: str) -> Any:
        return self.json("DELETE", f"/apps/{name}")

    def env_get(self, app: str) -> dict[str, str]:
        """The env of the newest release, as `convox env` reads it."""
        releases = self.json("GET", f"/apps/{app}/releases") or []
        if not releases:
            return {}
        newest = max(releases, key=lambda item: str(item.get("created") or ""))
        return wire.parse_env(newest.get("env") or "")

    def env_set(self, app: str, values: dict[str, str], *, unset: tuple[str, ...] = (),
                promote: bool = False) -> Any:
        env = self.env_get(app)
        env.update(values)
        for key in unset:
            env.pop(key, None)
        release = self.json("POST", f"/apps/{app}/releases", {"env": wire.format_env(env)})
        if promote:
            self.releases_promote(app, release["id"])
        return release

    def build(self, app: str, source: bytes, description: str = "") -> Any:
        import hashlib

        key = f"tmp/{hashlib.sha256(source).hexdigest()}.tgz"
        obj = self.json("POST", f"/apps/{app}/objects/{key}", body=source)
        return self.json("POST", f"/apps/{app}/builds", {"url": obj.get("url", f"object:///{key}"),
                                                         "description": description})

    def releases_promote(self, app: str, release: str) -> Any:
        return self.json("POST", f"/apps/{app}/releases/{release}/promote")

    def scale(self, app: str, service: str, **values: int) -> Any:
        return self.json("PUT", f"/apps/{app}/services/{service}", {k: str(v) for k, v in values.items()})

    def restart(self, app: str, service: str) -> Any:
        return self.json("POST", f"/apps/{app}/services/{service}/restart")

    def rack_params_set(self, values: dict[str, str]) -> Any:
        return self.json("PUT", "/system", {"parameters": wire.encode_map(values)})

    def certs_import(self, pub: str, key: str, chain: str = "") -> Any:
        return self.json("POST", "/certificates", {"pub": pub, "key": key, "chain": chain})

    def ssl_update(self, app: str, service: str, port: int, cert_id: str) -> Any:
        """`convox ssl update SERVICE:PORT CERT -a APP` (pkg/cli/ssl.go): AppGet first, and on a generation 2 app the
        CLI refuses before sending anything."""
        if str(self.apps_info(app).get("generation")) == "2":
            raise CommandError("command not valid for generation 2 applications")
        return self.json("PUT", f"/apps/{app}/ssl/{service}/{port}", {"id": cert_id})

    def certs_renew(self, app: str) -> Any:
        """`convox certs renew -a APP`: the CLI puts the app's name where the route says {id}."""
        return self.json("POST", f"/certificates/{app}/renew")

    def registries_add(self, server: str, username: str, password: str) -> Any:
        return self.json("POST", "/registries", {"server": server, "username": username, "password": password})

    def registries_remove(self, server: str) -> Any:
        return self.json("DELETE", f"/registries/{urllib.parse.quote(server, safe='')}")

    def instances_terminate(self, instance: str) -> Any:
        return self.json("DELETE", f"/instances/{instance}")

    def instances_keyroll(self) -> Any:
        return self.json("POST", "/instances/keyroll")

    def run_detached(self, app: str, service: str, command: str) -> Any:
        return self.json("POST", f"/apps/{app}/services/{service}/processes", headers={"Command": command})

    def process_stop(self, app: str, pid: str) -> Any:
        return self.json("DELETE", f"/apps/{app}/processes/{pid}")

    # --- websockets -----------------------------------------------------------------------------------------------
    async def _socket(self, path: str, headers: dict[str, str], stdin: list[str], *,
                      pause: float = 0.02, before_send: Callable[[str], None] | None = None) -> ExecResult:
        # The v3 SDK's throw-away GET "to trigger session authentication" (a direct rack answers 404).
        probe = "/machines" if path.startswith("/app") else "/racks"
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, verify=False) as client:
            await client.get(probe)
        scheme = "wss" if self.base_url.startswith("https") else "ws"
        url = scheme + self.base_url[self.base_url.index(":"):] + path
        context = None
        if scheme == "wss":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        output: list[str] = []
        exit_code: int | None = None
        async with websockets.connect(url, additional_headers={**self.headers, **headers}, ssl=context,
                                      max_size=None, compression=None, user_agent_header=None,
                                      proxy=None) as ws:
            async def pump() -> None:
                for chunk in stdin:
                    await asyncio.sleep(pause)
                    if before_send is not None:
                        before_send(chunk)  # the demo's clock moves on by a person's typing time
                    await ws.send(chunk)
                await asyncio.sleep(pause)
                await ws.send(b"")  # stdin EOF

            sender = asyncio.ensure_future(pump())
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        if not message:
                            break
                        output.append(message.decode("utf-8", "replace"))
                        continue
                    ended = wire.split_exit(message)
                    if ended:
                        before, exit_code = ended
                        output.append(before)
                    else:
                        output.append(message)
            finally:
                sender.cancel()
        return ExecResult("".join(output), exit_code)

    def exec(self, app: str, pid: str, command: str, stdin: list[str] | None = None, *, width: int = 100,
             height: int = 30, tty: bool = True, entrypoint: bool = False,
             before_send: Callable[[str], None] | None = None) -> ExecResult:
        headers = {"Command": command, "Height": str(height), "Width": str(width), "Tty": str(tty).lower()}
        if entrypoint:
            headers["Entrypoint"] = "true"
        return asyncio.run(self._socket(f"/apps/{app}/processes/{pid}/exec", headers, stdin or [],
                                        before_send=before_send))

    def run_attached(self, app: str, service: str, command: str, stdin: list[str] | None = None,
                     **kw: Any) -> ExecResult:
        """`convox run`: start `sleep 3600`, exec the real command in it, stop it (as the CLI does)."""
        process = self.run_detached(app, service, "sleep 3600")
        try:
            return self.exec(app, process["id"], command, stdin, entrypoint=True, **kw)
        finally:
            self.process_stop(app, process["id"])

    def resource_console(self, app: str, resource: str, stdin: list[str] | None = None, *, width: int = 100,
                         height: int = 30) -> ExecResult:
        """`convox resources console NAME -a APP`: the resource's own client (psql, redis-cli) on a TTY."""
        return asyncio.run(self._socket(f"/apps/{app}/resources/{resource}/console",
                                        {"Height": str(height), "Width": str(width)}, stdin or []))

    def instance_shell(self, instance: str, command: str = "", stdin: list[str] | None = None, *,
                       private_key: str | None = None, width: int = 100, height: int = 30,
                       before_send: Callable[[str], None] | None = None) -> ExecResult:
        headers = {"Command": command, "Height": str(height), "Width": str(width)}
        if private_key:
            headers["Private-Key"] = base64.b64encode(private_key.encode()).decode()
        return asyncio.run(self._socket(f"/instances/{instance}/shell", headers, stdin or [],
                                        before_send=before_send))


class RackError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class CommandError(Exception):
    """A command the CLI itself refuses, before sending the request (it prints `ERROR: <message>`)."""


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text.strip()
