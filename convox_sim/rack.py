"""The simulated Convox rack: the far side of auditkit's capture gateway in tests and the embedded default in the demo.

It owns one in-memory rack (apps, builds, releases, services, processes, instances, certificates, registries,
resources, system parameters) and answers the Convox v3 Rack API on the wire as convox/convox 3.24.x does
(pkg/api/routes.go and its handlers): every route of the v3 route table, Basic auth (any username with the rack
password, or `jwt` with a token the rack issued), `Request-Id` on every response, stdapi's error rendering
(`{"error":"…"}` when Accept names application/json, else the message as text/plain), `r.Form` semantics for params
(form body of POST/PUT/PATCH, then the query string; map params URL-encoded twice), option structs in headers, raw
bodies streamed (counted and hashed, never held whole), JSON shaped like the Go structs (field names, RFC 3339
times, indented), and the websocket framing of stdsdk and stdapi (stdin in TEXT frames, an empty BINARY frame for
EOF, output in TEXT frames, the exit-code marker, `ERROR: …` for handler errors, then an empty BINARY frame).
Interactive sessions run convox_sim/shell.py.

The details the gateway reads the same way (the version, the exit-code marker, map params, env text, Basic
credentials) are auditkit.capture.wire's, the one module of auditkit this package imports.

`create_app()` makes the Starlette app; `serve()` runs it with uvicorn (`auditkit demo rack`). What the rack received
is kept for tests in `app.state.requests` (ReceivedRequest: method — "SOCKET" for websockets —, path, the actor the
rack attributes the request to, headers without Authorization, form params as received) and the rack itself in
`app.state.rack`. Same seed and same requests → same ids and the same terminal output.

Where the real rack answers a missing build, release or process with a Kubernetes error (500), this one answers 404 with
the v2-style text (`build not found: B…`), which is what a client can act on; app errors are the v3 texts
(`app not found: web`, `app already exists: web`, `app is locked: web`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import gzip
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import random
import re
import string
import tarfile
from typing import Any, AsyncIterator, Awaitable, Callable, NamedTuple

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from auditkit.capture import wire
from convox_sim import shell as sh

__all__ = ["create_app", "serve", "ReceivedRequest", "Rack", "RackError", "go_time", "parse_listen"]

BALANCER_PORT = 443  # every service with a port is behind the rack's balancer on 443
SORTABLE_TIME = "%Y%m%d.%H%M%S.%f"  # Go's 20060102.150405.000000000 (Python has 6 fraction digits; 3 zeros appended)
KEEP_OBJECT_BYTES = 256 * 1024  # objects up to this size are kept so ObjectFetch can answer them
UTC = dt.timezone.utc
ZERO_TIME = "0001-01-01T00:00:00Z"
_UPPER = string.ascii_uppercase
_K8S = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes generated names
_LOWER_ALNUM = string.ascii_lowercase + string.digits


# --- wire helpers ---------------------------------------------------------------------------------------------------

class RackError(Exception):
    """An error the rack answers with: HTTP status and the message stdapi renders."""

    def __init__(self, status: int, message: str, *, www_authenticate: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.www_authenticate = www_authenticate


def not_found(kind: str, name: str) -> RackError:
    return RackError(404, f"{kind} not found: {name}")


def go_time(moment: dt.datetime | None) -> str:
    """A time as Go's encoding/json writes time.Time (RFC 3339 with trimmed nanoseconds); None is the zero time."""
    if moment is None:
        return ZERO_TIME
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += ("." + f"{moment.microsecond:06d}").rstrip("0")
    return text + "Z"


def parse_sortable(text: str) -> dt.datetime:
    """Go's sortable time (`20060102.150405.000000000`), as the SDK sends times in params."""
    head, _, frac = text.rpartition(".")
    try:
        moment = dt.datetime.strptime(head, "%Y%m%d.%H%M%S").replace(tzinfo=UTC)
        return moment.replace(microsecond=int((frac + "000000")[:6]))
    except ValueError as exc:
        raise RackError(500, f'parsing time "{text}" as "20060102.150405.000000000": cannot parse') from exc


def format_sortable(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime(SORTABLE_TIME) + "000"


def _escape_html(text: str) -> str:
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def go_json(value: Any) -> bytes:
    """stdapi's RenderJSON: json.MarshalIndent(v, "", "  ") plus a newline, HTML-escaped like Go."""
    return (_escape_html(json.dumps(value, indent=2, ensure_ascii=False)) + "\n").encode()


def _go_float(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 6)


def _sorted_map(values: dict[str, str] | None) -> dict[str, str]:
    return {k: values[k] for k in sorted(values or {})}


def env_diff(old: str, new: str) -> str:
    """common.EnvDiff: `add:K change:K remove:K`, each group sorted."""
    a, b = wire.parse_env(old), wire.parse_env(new)
    parts = [f"add:{k}" for k in sorted(b) if k not in a]
    parts += [f"change:{k}" for k in sorted(b) if k in a and a[k] != b[k]]
    parts += [f"remove:{k}" for k in sorted(a) if k not in b]
    return " ".join(parts)


_ACTOR_STRIP = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def sanitize_actor(raw: str) -> str:
    """audit.SanitizeActor's effect: control, bidi and zero-width characters stripped, capped at 256 characters."""
    return _ACTOR_STRIP.sub("", raw).strip()[:256]


# --- the rack's state -----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class BuildRec:
    id: str
    app: str
    description: str = ""
    entrypoint: str = ""
    git_sha: str = ""
    logs: str = ""
    manifest: str = ""
    process: str = ""
    release: str = ""
    reason: str = ""
    repository: str = ""
    status: str = "created"
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    url: str = ""
    log_lines: list[str] = dataclasses.field(default_factory=list)
    size: int = 0
    sha256: str = ""

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "app": self.app, "description": self.description, "entrypoint": self.entrypoint,
                "git-sha": self.git_sha, "logs": self.logs, "manifest": self.manifest, "process": self.process,
                "release": self.release, "reason": self.reason, "repository": self.repository,
                "status": self.status, "started": go_time(self.started), "ended": go_time(self.ended)}


@dataclasses.dataclass
class ReleaseRec:
    id: str
    app: str
    build: str = ""
    env: str = ""
    manifest: str = ""
    description: str = ""
    created: dt.datetime | None = None

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "app": self.app, "build": self.build, "env": self.env, "manifest": self.manifest,
                "description": self.description, "created": go_time(self.created)}


@dataclasses.dataclass
class ServiceRec:
    name: str
    count: int = 1
    cpu: int = 256
    memory: int = 512
    gpu: int = 0
    gpu_vendor: str = ""
    min: int | None = None
    max: int | None = None
    port: int | None = None
    command: str = ""
    domain: str = ""
    hash: str = ""  # the pod-template hash of the current release's pods

    def json(self, certificate: str = "") -> dict[str, Any]:
        """`certificate`: the id applied to the balancer port (CertificateApply), as `convox ssl` lists it."""
        out: dict[str, Any] = {
            "count": self.count, "cpu": self.cpu, "domain": self.domain, "gpu": self.gpu,
            "gpu-vendor": self.gpu_vendor, "memory": self.memory, "name": self.name, "nlb": None,
            "ports": [{"balancer": BALANCER_PORT, "certificate": certificate, "container": self.port}]
            if self.port else None,
        }
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


@dataclasses.dataclass
class ProcessRec:
    id: str
    app: str
    name: str  # the service
    command: str = ""
    cpu: float = 0
    host: str = ""
    image: str = ""
    instance: str = ""
    memory: float = 0
    ports: list[str] | None = None
    release: str = ""
    started: dt.datetime | None = None
    status: str = "running"
    one_off: bool = False

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "app": self.app, "command": self.command, "cpu": _go_float(self.cpu),
                "host": self.host, "image": self.image, "instance": self.instance,
                "memory": _go_float(self.memory), "name": self.name, "ports": self.ports, "release": self.release,
                "started": go_time(self.started), "status": self.status}


@dataclasses.dataclass
class ObjectRec:
    key: str
    size: int
    sha256: str
    public: bool = False
    content: bytes | None = None  # kept only up to KEEP_OBJECT_BYTES


@dataclasses.dataclass
class ResourceRec:
    name: str
    type: str
    url: str = ""
    status: str = "running"
    parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    apps: list[str] = dataclasses.field(default_factory=list)
    imported_bytes: int = 0

    def json(self, rack: "Rack | None" = None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.parameters:
            out["parameters"] = _sorted_map(self.parameters)
        out["status"] = self.status
        out["type"] = self.type
        out["url"] = self.url
        if rack is not None and self.apps:
            out["apps"] = [rack.apps[a].json(rack) for a in sorted(self.apps) if a in rack.apps]
        return out


@dataclasses.dataclass
class AppRec:
    name: str
    generation: str = "3"  # a v3 rack reports every app as generation 3, whatever AppCreate was sent
    locked: bool = False
    release: str = ""
    status: str = "running"
    parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    stack: str = "rails"
    builds: dict[str, BuildRec] = dataclasses.field(default_factory=dict)
    releases: dict[str, ReleaseRec] = dataclasses.field(default_factory=dict)
    services: dict[str, ServiceRec] = dataclasses.field(default_factory=dict)
    processes: dict[str, ProcessRec] = dataclasses.field(default_factory=dict)
    objects: dict[str, ObjectRec] = dataclasses.field(default_factory=dict)
    resources: dict[str, ResourceRec] = dataclasses.field(default_factory=dict)
    configs: dict[str, bytes] = dataclasses.field(default_factory=dict)
    ssl: dict[str, str] = dataclasses.field(default_factory=dict)  # "service:port" → certificate id
    budget: dict[str, Any] | None = None
    budget_state: dict[str, Any] | None = None
    uploads: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # files copied into processes

    def json(self, rack: "Rack") -> dict[str, Any]:
        return {"generation": self.generation, "locked": self.locked, "name": self.name, "release": self.release,
                "router": f"router.{rack.domain}", "status": self.status,
                "parameters": _sorted_map(self.parameters)}


@dataclasses.dataclass
class InstanceRec:
    id: str
    private_ip: str
    public_ip: str = ""
    instance_type: str = "t3.large"
    status: str = "running"
    started: dt.datetime | None = None
    cpu: float = 0.2
    memory: float = 0.4

    def json(self, processes: int) -> dict[str, Any]:
        return {"agent": False, "cpu": _go_float(self.cpu), "cpu-capacity": 2000, "cpu-allocatable": 1930,
                "gpu-capacity": 0, "gpu-allocatable": 0, "id": self.id, "instance-type": self.instance_type,
                "memory": _go_float(self.memory), "memory-capacity": 7843, "memory-allocatable": 7053,
                "private-ip": self.private_ip, "processes": processes, "public-ip": self.public_ip,
                "status": self.status, "started": go_time(self.started)}


@dataclasses.dataclass
class CertRec:
    id: str
    domain: str
    domains: list[str]
    expiration: dt.datetime
    status: str = "issued"
    arn: str = ""  # json:"-" in structs.Certificate: never rendered
    key_sha256: str = ""  # what the rack keeps of the private key here: a digest, for tests

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "domain": self.domain, "domains": list(self.domains),
                "expiration": go_time(self.expiration), "status": self.status}


@dataclasses.dataclass
class RegistryRec:
    server: str
    username: str
    password_sha256: str  # the password itself is not kept, and never rendered

    def json(self) -> dict[str, Any]:
        return {"server": self.server, "username": self.username}


@dataclasses.dataclass
class SessionRec:
    """One websocket session the rack served (for tests and the demo's own checks)."""

    kind: str  # exec | shell | console | logs | proxy
    path: str
    command: str
    exit_code: int | None
    input_bytes: int = 0
    output_bytes: int = 0


class FilePart(NamedTuple):
    """A multipart file part as the rack received it (Go's r.MultipartForm.File): never in r.Form."""

    name: str
    filename: str  # after Go's filepath.Base
    size: int
    sha256: str  # hex


class ReceivedRequest(NamedTuple):
    """What the rack received: (method, path, actor, headers without Authorization, form params, and how it was
    routed and parsed).

    `route` is the matched route as (method, pattern) — method as registered (GET POST …, SOCKET, ANY), pattern with
    the `:regex` of `{var:regex}` removed, so it reads like catalog.Route.path (the var names are the rack's own);
    None when no route matched (404, 405, 400) — the rack did not act. `vars` are the decoded path vars, `form` every
    r.Form pair in Go's order (first value of a name wins: that is `params`), `files` the multipart file parts.
    """

    method: str  # the HTTP method, or "SOCKET" for a websocket
    path: str  # r.URL.Path: percent-decoded, not cleaned
    actor: str | None  # as the rack attributes it (Convox-Actor, X-Convox-Actor, "rack-password", JWT user); None if
    # the request was not authenticated (refused, or no route)
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    params: dict[str, str]  # r.Form, first value of each name (what FormValue returns), as received
    route: tuple[str, str] | None = None
    vars: dict[str, str] | None = None
    form: tuple[tuple[str, str], ...] = ()
    files: tuple[FilePart, ...] = ()


# Demo apps (aligned with auditkit/synth/history.py's "core" rack): name → (stack, services, app resources).
# A service is (name, count, cpu, memory, port, command).
ServiceTemplate = tuple[str, int, int, int, "int | None", str]
APP_TEMPLATES: dict[str, tuple[str, tuple[ServiceTemplate, ...], tuple[tuple[str, str], ...]]] = {
    "web": ("rails", (("web", 2, 256, 512, 3000, "bin/rails server -b 0.0.0.0 -p 3000"),
                      ("worker", 1, 256, 1024, None, "bundle exec sidekiq")),
            (("database", "postgres"), ("cache", "redis"))),
    "api": ("rails", (("api", 3, 512, 1024, 4000, "bundle exec puma -C config/puma.rb"),
                      ("worker", 2, 256, 1024, None, "bundle exec sidekiq"),
                      ("scheduler", 1, 128, 256, None, "bundle exec clockwork clock.rb")),
            (("database", "postgres"),)),
    "worker": ("python", (("worker", 2, 512, 1024, None, "celery -A tasks worker --loglevel=info"),
                          ("cron", 1, 128, 256, None, "celery -A tasks beat")),
               (("queue", "redis"),)),
    "billing": ("rails", (("web", 2, 256, 512, 3000, "bin/rails server -b 0.0.0.0 -p 3000"),
                          ("worker", 1, 256, 1024, None, "bundle exec sidekiq")),
                (("database", "postgres"),)),
    "search": ("go", (("api", 2, 512, 1024, 8080, "/app/search serve"),
                      ("indexer", 1, 1024, 2048, None, "/app/search index --watch")),
               ()),
}
RACK_RESOURCES = (("pg-main", "postgres"), ("redis-cache", "redis"))
APP_PARAMETERS = ("BuildArch", "BuildCpu", "BuildLabels", "BuildMem")  # v3's AppParameters(); others are skipped
RESOURCE_TYPES = {
    "memcached": (("nodes", "1", "number of nodes"), ("version", "1.6", "memcached version")),
    "mysql": (("class", "db.t3.micro", "instance class"), ("storage", "20", "storage in GB"),
              ("version", "8.0", "mysql version")),
    "postgres": (("class", "db.t3.micro", "instance class"), ("storage", "20", "storage in GB"),
                 ("version", "15", "postgres version")),
    "redis": (("class", "cache.t3.micro", "node class"), ("version", "7.1", "redis version")),
}


def _manifest(services: list[ServiceRec] | tuple, resources: list[tuple[str, str]]) -> str:
    lines = []
    if resources:
        lines.append("resources:")
        for name, kind in resources:
            lines += [f"  {name}:", f"    type: {kind}"]
    lines.append("services:")
    for s in services:
        name, port, command = (s.name, s.port, s.command) if isinstance(s, ServiceRec) else (s[0], s[4], s[5])
        lines += [f"  {name}:", "    build: ."]
        if command:
            lines.append(f"    command: {command}")
        if port:
            lines += [f"    port: {port}", "    health: /healthz"]
        if resources and name in ("web", "api", "worker"):
            lines.append("    resources:")
            lines += [f"      - {r}" for r, _ in resources]
    return "\n".join(lines) + "\n"


def _manifest_services(manifest: str) -> list[tuple[str, int | None, str]]:
    """(name, port, command) of each service of a convox.yml, read the simple way the demo writes them."""
    out: list[tuple[str, int | None, str]] = []
    section = ""
    for line in manifest.splitlines():
        if re.match(r"^\S", line):
            section = line.strip().rstrip(":")
            continue
        if section != "services":
            continue
        m = re.match(r"^  ([A-Za-z0-9][A-Za-z0-9_-]*):\s*$", line)
        if m:
            out.append((m.group(1), None, ""))
            continue
        m = re.match(r"^    (port|command):\s*(.+)$", line)
        if m and out:
            name, port, command = out[-1]
            if m.group(1) == "port":
                digits = re.match(r"\d+", m.group(2).split(":")[-1].strip())
                port = int(digits.group(0)) if digits else port
            else:
                command = m.group(2).strip()
            out[-1] = (name, port, command)
    return out


class Rack:
    """The simulated rack's state and its operations (the part convox calls the provider)."""

    def __init__(self, name: str = "acme/production", seed: int = 1,
                 clock: Callable[[], dt.datetime] | None = None, populate: bool = True):
        self.full_name = name
        self.name = name.rsplit("/", 1)[-1]
        self.seed = seed
        self.rng = random.Random(f"auditkit-demo-rack:{seed}:{name}")
        self._request_rng = random.Random(f"auditkit-demo-rack:{seed}:{name}:request-ids")
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.domain = f"{self._hex(10)}.convox.cloud"
        self.apps: dict[str, AppRec] = {}
        self.instances: dict[str, InstanceRec] = {}
        self.certificates: dict[str, CertRec] = {}
        self.registries: dict[str, RegistryRec] = {}
        self.resources: dict[str, ResourceRec] = {}
        self.sessions: list[SessionRec] = []
        self.events: list[dict[str, str]] = []
        self.letsencrypt: Any = {"solvers": []}
        self.jwt_key = hashlib.sha256(f"jwt:{seed}:{name}".encode()).digest()
        self.keypairs = 0
        self.system: dict[str, Any] = {
            "count": 3, "domain": self.domain, "name": self.name, "provider": "aws",
            "rack-domain": f"api.{self.domain}", "region": "us-east-1", "status": "running",
            "type": "t3.large", "version": wire.CONVOX_VERSION,
            "parameters": {"build_node_enabled": "false", "high_availability": "true", "idle_timeout": "3600",
                           "internal_router": "false", "node_disk": "20", "node_type": "t3.large",
                           "private": "true", "region": "us-east-1", "syslog": "", "tags": ""},
        }
        self.system_releases = [(wire.CONVOX_VERSION, 3), ("3.24.7", 24), ("3.23.4", 61)]
        if populate:
            self._populate()

    # -- ids and names

    def now(self) -> dt.datetime:
        return self.clock().astimezone(UTC)

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def convox_id(self, prefix: str, taken: Any = ()) -> str:
        while True:
            value = prefix + "".join(self.rng.choice(_UPPER) for _ in range(10))
            if value not in taken:
                return value

    def k8s_suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice(_K8S) for _ in range(n))

    def request_id(self) -> str:
        return "".join(self._request_rng.choice(_LOWER_ALNUM) for _ in range(12))

    def instance_id(self) -> str:
        while True:
            value = "i-0" + self._hex(16)
            if value not in self.instances:
                return value

    # -- the seeded world

    def _populate(self) -> None:
        now = self.now()
        for i in range(3):
            self._add_instance(started=now - dt.timedelta(days=12 + 9 * i, hours=i * 5), subnet=i + 1)
        for name, kind in RACK_RESOURCES:
            self.resources[name] = ResourceRec(name, kind, url=self._resource_url(kind, name, "rack"),
                                               parameters={"class": RESOURCE_TYPES[kind][0][1]})
        self.resources["pg-main"].apps = ["api", "web"]
        self.resources["redis-cache"].apps = ["web"]
        cert_domain = "acme.example.com"
        cid = "cert-" + self._k8s_lower(10)
        self.certificates[cid] = CertRec(
            id=cid, domain=cert_domain, domains=[cert_domain, f"*.{cert_domain}"],
            expiration=(now + dt.timedelta(days=47)).replace(microsecond=0),
            arn=f"arn:aws:acm:us-east-1:123456789012:certificate/{self._hex(8)}")
        self.registries["quay.io"] = RegistryRec("quay.io", "acme+deploy", hashlib.sha256(b"demo").hexdigest())
        for app_name, (stack, services, resources) in APP_TEMPLATES.items():
            self._populate_app(app_name, stack, services, resources, now)

    def _k8s_lower(self, n: int) -> str:
        return "".join(self.rng.choice(_LOWER_ALNUM) for _ in range(n))

    def _resource_url(self, kind: str, name: str, owner: str) -> str:
        password = self._hex(24)
        host = f"{owner}-{name}.{self._hex(12)}.us-east-1.rds.amazonaws.com"
        if kind == "postgres":
            return f"postgres://app:{password}@{host}:5432/app"
        if kind == "mysql":
            return f"mysql://app:{password}@{host}:3306/app"
        if kind == "redis":
            return f"redis://:{password}@{owner}-{name}.{self._hex(6)}.cache.amazonaws.com:6379/0"
        return f"{kind}://{owner}-{name}.{self._hex(6)}.cache.amazonaws.com:11211"

    def _populate_app(self, name: str, stack: str, services, resources, now: dt.datetime) -> None:
        app = AppRec(name=name, stack=stack)
        self.apps[name] = app
        for rname, kind in resources:
            app.resources[rname] = ResourceRec(rname, kind, url=self._resource_url(kind, rname, name))
        for sname, count, cpu, memory, port, command in services:
            app.services[sname] = ServiceRec(sname, count=count, cpu=cpu, memory=memory, port=port, command=command,
                                             domain=f"{sname}.{name}.{self.domain}" if port else "")
        manifest = _manifest(services, list(resources))
        env = self._initial_env(app)
        # history: two builds and three releases, the last one an environment change
        b1 = self._seed_build(app, manifest, now - dt.timedelta(days=9, hours=3), "v1.41.0")
        r1 = self._seed_release(app, b1.id, wire.format_env(env), manifest, b1.description,
                                now - dt.timedelta(days=9, hours=2, minutes=57))
        b1.release = r1.id
        b2 = self._seed_build(app, manifest, now - dt.timedelta(days=2, hours=6), "v1.42.0")
        r2 = self._seed_release(app, b2.id, wire.format_env(env), manifest, b2.description,
                                now - dt.timedelta(days=2, hours=5, minutes=56))
        b2.release = r2.id
        env2 = dict(env)
        env2["LOG_LEVEL"] = "info"
        env2_text = wire.format_env(env2)
        r3 = self._seed_release(app, b2.id, env2_text, manifest, env_diff(r2.env, env2_text),
                                now - dt.timedelta(days=1, hours=1, minutes=12))
        r3.description = "env " + r3.description
        app.release = r3.id
        self._roll_pods(app, started=now - dt.timedelta(days=1, hours=1, minutes=11))

    def _initial_env(self, app: AppRec) -> dict[str, str]:
        env: dict[str, str] = {"LOG_LEVEL": "debug"}
        for rname, res in app.resources.items():
            env[f"{rname.upper()}_URL"] = res.url
        if app.stack == "rails":
            env.update({"RAILS_ENV": "production", "RAILS_LOG_TO_STDOUT": "enabled", "RAILS_MAX_THREADS": "5",
                        "SECRET_KEY_BASE": self._hex(64), "WEB_CONCURRENCY": "2",
                        "SENTRY_DSN": f"https://{self._hex(32)}@o4504.ingest.sentry.io/"
                                      f"{self.rng.randint(10**6, 10**7)}"})
        elif app.stack == "python":
            env.update({"PYTHONUNBUFFERED": "1", "CELERY_CONCURRENCY": "4", "API_TOKEN": self._hex(40)})
        else:
            env.update({"GOMAXPROCS": "2", "ELASTICSEARCH_URL": f"https://search:{self._hex(20)}@es.internal:9200"})
        return env

    def _seed_build(self, app: AppRec, manifest: str, started: dt.datetime, tag: str) -> BuildRec:
        bid = self.convox_id("B", app.builds)
        build = BuildRec(id=bid, app=app.name, description=f"{tag} ({self._hex(7)})", manifest=manifest,
                         process=f"{app.name}-build-{bid.lower()}-{self.k8s_suffix()}", status="complete",
                         started=started, ended=started + dt.timedelta(seconds=self.rng.randint(70, 240)),
                         repository=f"{self.name}/{app.name}", git_sha=self._hex(40))
        build.logs = f"object:///{app.name}/build/{bid}/logs"
        build.log_lines = self._build_log(app, build)
        app.builds[bid] = build
        return build

    def _seed_release(self, app: AppRec, build: str, env: str, manifest: str, description: str,
                      created: dt.datetime) -> ReleaseRec:
        rid = self.convox_id("R", app.releases)
        release = ReleaseRec(id=rid, app=app.name, build=build, env=env, manifest=manifest, description=description,
                             created=created)
        app.releases[rid] = release
        return release

    def _add_instance(self, started: dt.datetime, subnet: int | None = None) -> InstanceRec:
        iid = self.instance_id()
        subnet = subnet or self.rng.randint(1, 3)
        ip = f"10.0.{subnet}.{self.rng.randint(10, 250)}"
        inst = InstanceRec(id=iid, private_ip=ip, started=started, cpu=round(self.rng.uniform(0.1, 0.6), 3),
                           memory=round(self.rng.uniform(0.2, 0.7), 3))
        self.instances[iid] = inst
        return inst

    # -- pods

    def _new_pod(self, app: AppRec, svc: ServiceRec, started: dt.datetime) -> ProcessRec:
        while True:
            pid = f"{svc.name}-{svc.hash}-{self.k8s_suffix()}"
            if pid not in app.processes:
                break
        inst = self.rng.choice(sorted(self.instances.values(), key=lambda i: i.id)) if self.instances else None
        release = app.releases.get(app.release)
        build = release.build if release else ""
        return ProcessRec(id=pid, app=app.name, name=svc.name, command=svc.command,
                          host=inst.private_ip if inst else "", instance=inst.id if inst else "",
                          image=f"{self.name}/{app.name}:{svc.name}.{build}" if build else "",
                          ports=[str(svc.port)] if svc.port else None, release=app.release,
                          started=started, status="running")

    def _roll_pods(self, app: AppRec, started: dt.datetime | None = None, only: str | None = None) -> None:
        """New pods (a new pod-template hash) for every service, or for `only`, as a rollout makes them."""
        started = started or self.now()
        for svc in app.services.values():
            if only and svc.name != only:
                continue
            svc.hash = "".join(self.rng.choice(_K8S) for _ in range(10))
            for pid in [p.id for p in app.processes.values() if p.name == svc.name and not p.one_off]:
                del app.processes[pid]
            for _ in range(svc.count):
                pod = self._new_pod(app, svc, started)
                app.processes[pod.id] = pod

    def _scale_pods(self, app: AppRec, svc: ServiceRec) -> None:
        pods = sorted((p for p in app.processes.values() if p.name == svc.name and not p.one_off),
                      key=lambda p: p.id)
        if not svc.hash:
            svc.hash = "".join(self.rng.choice(_K8S) for _ in range(10))
        while len(pods) > svc.count:
            victim = pods.pop()
            del app.processes[victim.id]
        while len(pods) < svc.count:
            pod = self._new_pod(app, svc, self.now())
            app.processes[pod.id] = pod
            pods.append(pod)

    def processes_on(self, instance: str) -> int:
        return sum(1 for a in self.apps.values() for p in a.processes.values() if p.instance == instance)

    # -- lookups

    def app(self, name: str) -> AppRec:
        app = self.apps.get(name)
        if app is None:
            raise not_found("app", name)
        return app

    def build(self, app: AppRec, bid: str) -> BuildRec:
        build = app.builds.get(bid.upper())
        if build is None:
            raise not_found("build", bid)
        return build

    def release(self, app: AppRec, rid: str) -> ReleaseRec:
        release = app.releases.get(rid.upper())
        if release is None:
            raise not_found("release", rid)
        return release

    def process(self, app: AppRec, pid: str, *, service_ok: bool = False) -> ProcessRec:
        proc = app.processes.get(pid)
        if proc is None and service_ok:
            pods = sorted((p for p in app.processes.values() if p.name == pid and p.status == "running"),
                          key=lambda p: p.id)
            if pods:
                proc = pods[self.rng.randrange(len(pods))]
        if proc is None:
            raise not_found("process", pid)
        return proc

    def service(self, app: AppRec, name: str) -> ServiceRec:
        svc = app.services.get(name)
        if svc is None:
            raise not_found("service", name)
        return svc

    def latest_release(self, app: AppRec) -> ReleaseRec | None:
        if not app.releases:
            return None
        return max(app.releases.values(), key=lambda r: (r.created or dt.datetime.min.replace(tzinfo=UTC), r.id))

    # -- operations used by more than one route

    def create_release(self, app: AppRec, *, build: str | None = None, env: str | None = None,
                       description: str | None = None, parent: str | None = None) -> ReleaseRec:
        """ReleaseCreate as provider/k8s does it: fork the parent (or latest) release, then apply build and env."""
        base = self.release(app, parent) if parent else self.latest_release(app)
        release = ReleaseRec(id=self.convox_id("R", app.releases), app=app.name, created=self.now(),
                             build=base.build if base else "", env=base.env if base else "",
                             manifest=base.manifest if base else "")
        if build is not None and build != "":
            release.build = build
        if release.build:
            b = self.build(app, release.build)
            release.build = b.id
            release.description = b.description
            release.manifest = b.manifest
        if env is not None:
            diff = env_diff(release.env, env)
            if diff.strip():
                release.description = f"env {diff}"
            release.env = env
        if description is not None:
            release.description = description
        app.releases[release.id] = release
        self.events.append({"action": "release:create", "app": app.name, "id": release.id})
        return release

    def promote(self, app: AppRec, release: ReleaseRec) -> None:
        app.release = release.id
        app.status = "running"
        if release.manifest:
            for name, port, command in _manifest_services(release.manifest):
                svc = app.services.get(name)
                if svc is None:
                    app.services[name] = ServiceRec(name, count=1, port=port, command=command,
                                                    domain=f"{name}.{app.name}.{self.domain}" if port else "")
                else:
                    svc.port, svc.command = port if port else svc.port, command or svc.command
        self._roll_pods(app)
        self.events.append({"action": "release:promote", "app": app.name, "id": release.id})

    def new_build(self, app: AppRec, *, description: str = "", manifest: str = "", url: str = "",
                  git_sha: str = "") -> BuildRec:
        bid = self.convox_id("B", app.builds)
        previous = max(app.builds.values(), key=lambda b: (b.started or dt.datetime.min.replace(tzinfo=UTC), b.id),
                       default=None)
        if not manifest or manifest in ("convox.yml", "convox.yaml") or "\n" not in manifest:
            manifest = previous.manifest if previous else _manifest(
                [ServiceRec("web", port=3000, command="")], [])
        build = BuildRec(id=bid, app=app.name, description=description, manifest=manifest, url=url,
                         git_sha=git_sha, process=f"{app.name}-build-{bid.lower()}-{self.k8s_suffix()}",
                         repository=f"{self.name}/{app.name}", status="created", started=self.now())
        build.logs = f"object:///{app.name}/build/{bid}/logs"
        app.builds[bid] = build
        return build

    def finish_build(self, app: AppRec, build: BuildRec) -> None:
        """The build pod's work, done at once: the build completes and its release exists."""
        if build.url.startswith("object://"):
            key = build.url[len("object://"):].split("/", 1)[-1]
            if key not in app.objects:
                build.status, build.reason, build.ended = "failed", f"object not found: {key}", self.now()
                build.log_lines = [f"Fetching source: {build.url}\n", f"ERROR: object not found: {key}\n"]
                return
        release = self.create_release(app, build=build.id)
        build.release = release.id
        build.status = "complete"
        build.ended = self.now()
        build.log_lines = self._build_log(app, build)

    def _build_log(self, app: AppRec, build: BuildRec) -> list[str]:
        services = [name for name, _, _ in _manifest_services(build.manifest)] or ["web"]
        image = {"rails": "ruby:3.2-slim", "python": "python:3.11-slim", "go": "golang:1.22"}.get(app.stack,
                                                                                                  "ruby:3.2-slim")
        lines = ["Authenticating registry: Login Succeeded\n", "Building: .\n",
                 f"Step 1/6 : FROM {image}\n", f" ---> {self._hex(12)}\n", "Step 2/6 : WORKDIR /app\n",
                 f" ---> Using cache\n ---> {self._hex(12)}\n", "Step 3/6 : COPY . /app\n",
                 f" ---> {self._hex(12)}\n", "Step 6/6 : CMD [\"bin/web\"]\n",
                 f"Successfully built {self._hex(12)}\n"]
        for s in services:
            lines.append(f"Running: docker tag {self.name}/{app.name}:{s}.{build.id}\n")
            lines.append(f"Running: docker push {self.name}/{app.name}:{s}.{build.id}\n")
        lines.append(f"Build: {build.id}\n")
        if build.release:
            lines.append(f"Release: {build.release}\n")
        return lines

    def jwt_token(self, role: str, user: str, hours: int) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        exp = int((self.now() + dt.timedelta(hours=hours)).timestamp())
        payload = b64(json.dumps({"user": user, "role": role, "exp": exp}, separators=(",", ":")).encode())
        sig = b64(hmac.new(self.jwt_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{sig}"

    def jwt_verify(self, token: str) -> dict[str, Any]:
        parts = token.split(".")
        if len(parts) != 3:
            raise RackError(401, "invalid authentication: token contains an invalid number of segments")

        def unb64(text: str) -> bytes:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

        try:
            expected = hmac.new(self.jwt_key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, unb64(parts[2])):
                raise RackError(401, "invalid authentication: signature is invalid")
            claims = json.loads(unb64(parts[1]))
        except (ValueError, TypeError) as exc:
            raise RackError(401, "invalid authentication: token is malformed") from exc
        if not isinstance(claims, dict):
            raise RackError(401, "invalid authentication: token is malformed")
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp < self.now().timestamp():
            late = int(self.now().timestamp() - exp)
            raise RackError(401, f"invalid authentication: token is expired by {late // 3600}h{late % 3600 // 60}m"
                                 f"{late % 60}s")
        return claims


# --- request context --------------------------------------------------------------------------------------------------

_INT_RE = re.compile(r"^[+-]?\d+$")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class Ctx:
    """One request as a handler sees it: path vars, r.Form, headers, the principal, the request id."""

    def __init__(self, *, method: str, path: str, vars: dict[str, str], form: list[tuple[str, str]],
                 headers: Headers, request_id: str, request: Request | None = None):
        self.method = method
        self.path = path
        self.vars = vars
        self.form_items = form
        self.form: dict[str, str] = {}
        for key, value in form:
            self.form.setdefault(key, value)
        self.headers = headers
        self.request_id = request_id
        self.request = request
        self.actor: str | None = None
        self.role = ""

    def var(self, name: str) -> str:
        return self.vars.get(name, "")

    def param(self, name: str) -> str:
        return self.form.get(name, "")

    def has_param(self, name: str) -> bool:
        return name in self.form

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def value(self, name: str) -> str:
        """stdapi Context.Value: the form value, else the header."""
        return self.param(name) or self.header(name)

    def query(self, name: str) -> str:
        if self.request is None:
            return self.param(name)
        return self.request.query_params.get(name, "")

    def _raw(self, name: str, source: str) -> str:
        return self.header(name) if source == "header" else self.query(name) if source == "query" else \
            self.param(name)

    def opt_int(self, name: str, source: str = "param") -> int | None:
        raw = self._raw(name, source)
        if raw == "":
            return None
        if not _INT_RE.match(raw):
            raise RackError(500, f'strconv.Atoi: parsing "{raw}": invalid syntax')
        return int(raw)

    def opt_float(self, name: str, source: str = "param") -> float | None:
        raw = self._raw(name, source)
        if raw == "":
            return None
        try:
            return float(raw)
        except ValueError as exc:
            raise RackError(500, f'strconv.ParseFloat: parsing "{raw}": invalid syntax') from exc

    def opt_bool(self, name: str, source: str = "param") -> bool | None:
        raw = self._raw(name, source)
        if raw == "":
            return None
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise RackError(500, f'strconv.ParseBool: parsing "{raw}": invalid syntax')

    def opt_str(self, name: str, source: str = "param") -> str | None:
        raw = self._raw(name, source)
        return raw if raw != "" else None

    def opt_map(self, name: str, source: str = "param") -> dict[str, str] | None:
        raw = self._raw(name, source)
        return wire.decode_map(raw) if raw != "" else None

    def opt_time(self, name: str) -> dt.datetime | None:
        raw = self.param(name)
        return parse_sortable(raw) if raw else None

    def require_write(self) -> None:
        if "w" not in self.role:
            raise RackError(401, "you are unauthorized to access this")


# --- responses --------------------------------------------------------------------------------------------------------

def render_json(value: Any, status: int = 200) -> Response:
    return Response(go_json(value), status_code=status, media_type="application/json")


def render_ok() -> Response:
    return Response(b"ok\n", headers={"Content-Type": "text/plain; charset=utf-8"})


def _accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        if part.split(";", 1)[0].strip() == "application/json":
            return True
    return False


def error_response(status: int, message: str, accept: str) -> Response:
    """stdapi's writeErrorResponse: JSON when Accept lists application/json, else net/http's http.Error."""
    if _accepts_json(accept):
        body = _escape_html(json.dumps({"error": message}, separators=(",", ":"), ensure_ascii=False)) + "\n"
        return Response(body.encode(), status_code=status, media_type="application/json")
    return Response((message + "\n").encode(), status_code=status,
                    headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"})


# --- routing ----------------------------------------------------------------------------------------------------------

Handler = Callable[[Rack, Ctx], Awaitable[Response]]
SocketHandler = Callable[[Rack, Ctx, WebSocket], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class RouteDef:
    method: str  # GET POST PUT DELETE HEAD OPTIONS, SOCKET, or ANY
    pattern: str
    regex: re.Pattern[str]
    handler: Callable[..., Awaitable[Any]]
    body: str  # form | raw


ROUTES: list[RouteDef] = []


def _compile(pattern: str) -> re.Pattern[str]:
    out, pos = "", 0
    for m in re.finditer(r"\{([a-z_]+)(?::([^}]+))?\}", pattern):
        out += re.escape(pattern[pos:m.start()])
        out += f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})"
        pos = m.end()
    out += re.escape(pattern[pos:])
    return re.compile("^" + out + "$")


def route(method: str, pattern: str, body: str = "form") -> Callable[[Callable], Callable]:
    def register(fn: Callable) -> Callable:
        ROUTES.append(RouteDef(method, pattern, _compile(pattern), fn, body))
        return fn
    return register


def route_pattern(r: RouteDef) -> str:
    """The route's pattern as catalog.Route.path writes patterns: `{key:.*}` → `{key}`."""
    return re.sub(r"\{([a-z_]+):[^}]+\}", r"{\1}", r.pattern)


def match_route(method: str, path: str, websocket: bool) -> tuple[RouteDef | None, dict[str, str], bool]:
    """gorilla/mux's choice (stdapi router.go): the first registered route that matches wins; else whether some
    route matched the path with another method (405).

    `path` is Go's r.URL.Path: percent-decoded (`%2F` is a `/`), never cleaned of dot segments or `//` (SkipClean),
    and mux matches it case-sensitively against `^pattern$` with no trailing-slash tolerance; Go's `$` is the very
    end of the text, so the match is a fullmatch (Python's `$` also matches before a final newline). A SOCKET route
    is GET plus the header matcher `Upgrade: websocket`: a request without the upgrade fails that matcher, which
    gives no 405. An ANY route has no method matcher (the simulated rack serves it over HTTP only).
    """
    mismatch = False
    for r in ROUTES:
        m = r.regex.fullmatch(path)
        if not m:
            continue
        if r.method == "ANY":
            if not websocket:
                return r, m.groupdict(), False
            continue
        if r.method == "SOCKET":
            if websocket:
                return r, m.groupdict(), False
            continue
        if websocket:
            continue
        if r.method == method:
            return r, m.groupdict(), False
        mismatch = True
    return None, {}, mismatch


async def _stream_count(chunks: AsyncIterator[bytes], keep: int = 0) -> tuple[int, str, bytes | None]:
    """Consume a body: (bytes, sha256 hex, the content if it fits in `keep` bytes)."""
    digest = hashlib.sha256()
    size = 0
    kept: bytearray | None = bytearray() if keep else None
    async for chunk in chunks:
        if not chunk:
            continue
        size += len(chunk)
        digest.update(chunk)
        if kept is not None:
            if len(kept) + len(chunk) <= keep:
                kept += chunk
            else:
                kept = None
    return size, digest.hexdigest(), bytes(kept) if kept is not None else None


def _body(c: Ctx) -> AsyncIterator[bytes]:
    assert c.request is not None
    return c.request.stream()


# --- HTTP handlers: apps ----------------------------------------------------------------------------------------------

_APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@route("GET", "/auth")
async def auth_check(rack: Rack, c: Ctx) -> Response:
    return render_ok()


@route("POST", "/apps/{app}/cancel")
async def app_cancel(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    app.status = "running"
    return render_ok()


@route("POST", "/apps")
async def app_create(rack: Rack, c: Ctx) -> Response:
    name = c.value("name")
    c.opt_str("generation")  # the CLI sends 2 by default; a v3 rack reads it and makes a generation 3 app anyway
    c.opt_int("timeout")
    if not name:
        raise RackError(400, "app name is required")
    if not _APP_NAME.match(name) or len(name) > 40:
        raise RackError(400, f"invalid app name: {name}")
    if name in ("system", "rack"):
        raise RackError(400, "app name is reserved")
    if name in rack.apps:
        raise RackError(409, f"app already exists: {name}")
    app = AppRec(name=name, stack="rails")
    rack.apps[name] = app
    rack.events.append({"action": "app:create", "name": name})
    return render_json(app.json(rack))


@route("DELETE", "/apps/{app}")
async def app_delete(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    if app.locked:
        raise RackError(409, f"app is locked: {app.name}")
    del rack.apps[app.name]
    for res in rack.resources.values():
        if app.name in res.apps:
            res.apps.remove(app.name)
    return render_ok()


@route("GET", "/apps/{app}/diagnose")
async def app_diagnose(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    checks = [{"name": f"service/{s.name}", "status": "ok",
               "message": f"{sum(1 for p in app.processes.values() if p.name == s.name)}/{s.count} running"}
              for s in sorted(app.services.values(), key=lambda s: s.name)]
    return render_json({"app": app.name, "release": app.release, "checks": checks})


@route("GET", "/apps/{app}")
async def app_get(rack: Rack, c: Ctx) -> Response:
    return render_json(rack.app(c.var("app")).json(rack))


@route("GET", "/apps")
async def app_list(rack: Rack, c: Ctx) -> Response:
    return render_json([rack.apps[n].json(rack) for n in sorted(rack.apps)])


@route("GET", "/apps/{app}/manifest/services/{service}")
async def app_manifest_service(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    svc = app.services.get(c.var("service"))
    if svc is None:
        raise RackError(500, f"service {c.var('service')} not found in manifest for app {app.name}")
    release = app.releases.get(app.release)
    env = sorted(wire.parse_env(release.env)) if release else []
    return render_json({"name": svc.name, "environment": env})


@route("GET", "/apps/{app}/metrics")
async def app_metrics(rack: Rack, c: Ctx) -> Response:
    rack.app(c.var("app"))
    raise RackError(501, "unimplemented")


@route("GET", "/apps/{app}/metrics-by-service")
async def app_metrics_by_service(rack: Rack, c: Ctx) -> Response:
    rack.app(c.var("app"))
    names = [s for s in c.query("services").split(",") if s]
    return render_json([{"name": s, "metrics": []} for s in names])


@route("PUT", "/apps/{app}")
async def app_update(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    lock = c.opt_bool("lock")
    params = c.opt_map("parameters")
    if lock is not None:
        app.locked = lock
    if params is not None:
        for key, value in params.items():
            if key in APP_PARAMETERS:  # v3 skips unsupported parameters silently
                if value:
                    app.parameters[key] = value
                else:
                    app.parameters.pop(key, None)
    return render_ok()


# budget

def _budget_config(c: Ctx) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    for name in ("monthly-cap-usd", "pricing-adjustment"):
        value = c.opt_float(name)
        if value is not None:
            cfg[name] = _go_float(value)
    value = c.opt_int("alert-threshold-percent")
    if value is not None:
        cfg["alert-threshold-percent"] = value
    action = c.opt_str("at-cap-action")
    if action is not None:
        if action not in ("alert-only", "auto-shutdown"):
            raise RackError(400, f"invalid at-cap-action: {action}")
        cfg["at-cap-action"] = action
    return cfg


@route("GET", "/apps/{app}/budget")
async def app_budget_get(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    return render_json({"config": app.budget, "state": app.budget_state})


@route("POST", "/apps/{app}/budget")
async def app_budget_set(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    cfg = dict(app.budget or {"alert-threshold-percent": 80, "at-cap-action": "alert-only"})
    cfg.update(_budget_config(c))
    if "monthly-cap-usd" not in cfg:
        raise RackError(400, "monthly-cap-usd is required")
    app.budget = cfg
    app.budget_state = app.budget_state or {"month-to-date-usd": 0, "breaker-tripped": False}
    return render_ok()


@route("DELETE", "/apps/{app}/budget")
async def app_budget_clear(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    app.budget, app.budget_state = None, None
    return render_ok()


@route("POST", "/apps/{app}/budget/reset")
async def app_budget_reset(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    if app.budget_state:
        app.budget_state["breaker-tripped"] = False
    return render_ok()


@route("GET", "/apps/{app}/budget/shutdown-state")
async def app_budget_shutdown_state(rack: Rack, c: Ctx) -> Response:
    rack.app(c.var("app"))
    return render_json({"active": False, "services": []})


@route("POST", "/apps/{app}/budget/simulate-shutdown")
async def app_budget_simulate(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    services = [{"name": s.name, "count": s.count, "target": 0} for s in
                sorted(app.services.values(), key=lambda s: s.name)]
    return render_json({"app": app.name, "dry-run": True, "services": services})


@route("POST", "/apps/{app}/budget/dismiss-recovery")
async def app_budget_dismiss(rack: Rack, c: Ctx) -> Response:
    rack.app(c.var("app"))
    return render_ok()


@route("GET", "/apps/{app}/cost")
async def app_cost(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    total = sum(s.count * (s.cpu / 1024 * 30 + s.memory / 1024 * 4) for s in app.services.values())
    return render_json({"app": app.name, "month-to-date-usd": round(total * 0.6, 2), "projected-usd": round(total, 2)})


@route("GET", "/apps/{app}/balancers")
async def balancer_list(rack: Rack, c: Ctx) -> Response:
    rack.app(c.var("app"))
    return render_json([])


# --- builds -----------------------------------------------------------------------------------------------------------

@route("POST", "/apps/{app}/builds/{id}/cancel")
async def build_cancel(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    build = rack.build(app, c.var("id"))
    if build.status in ("created", "running"):
        build.status, build.ended = "failed", rack.now()
        build.reason = "cancelled"
    return render_ok()


@route("POST", "/apps/{app}/builds")
async def build_create(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    url = c.value("url")
    c.opt_bool("development")
    c.opt_bool("external")
    c.opt_bool("no-cache")
    c.opt_bool("wildcard-domain")
    build = rack.new_build(app, description=c.param("description"), manifest=c.param("manifest"), url=url,
                           git_sha=c.param("git-sha"))
    answer = build.json()  # as created; the build then runs to completion at once
    rack.finish_build(app, build)
    rack.events.append({"action": "build:create", "app": app.name, "id": build.id})
    return render_json(answer)


@route("GET", "/apps/{app}/builds/{id}.tgz")
async def build_export(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    build = rack.build(app, c.var("id"))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = json.dumps(build.json(), indent=2).encode()
        info = tarfile.TarInfo("build.json")
        info.size, info.mtime, info.mode = len(data), int((build.started or rack.now()).timestamp()), 0o600
        tar.addfile(info, io.BytesIO(data))
    return Response(gzip.compress(raw.getvalue(), mtime=0), media_type="application/x-gzip")


@route("GET", "/apps/{app}/builds/{id}")
async def build_get(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    return render_json(rack.build(app, c.var("id")).json())


@route("POST", "/apps/{app}/builds/import", body="raw")
async def build_import(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    size, digest, _ = await _stream_count(_body(c))
    if size == 0:
        raise RackError(500, "EOF")
    build = rack.new_build(app, description="imported")
    build.size, build.sha256 = size, digest
    rack.finish_build(app, build)
    return render_json(build.json())


@route("POST", "/apps/{app}/builds/{id}/image")
async def build_import_image(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    build = rack.build(app, c.var("id"))
    image = c.value("image")
    if not image:
        raise RackError(422, "image param required")
    build.repository = image
    return Response(b"", status_code=202)


@route("GET", "/apps/{app}/builds")
async def build_list(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    limit = c.opt_int("limit", "query") or 10
    builds = sorted(app.builds.values(), key=lambda b: (b.started or dt.datetime.min.replace(tzinfo=UTC), b.id),
                    reverse=True)
    return render_json([b.json() for b in builds[:limit]])


@route("PUT", "/apps/{app}/builds/{id}")
async def build_update(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    build = rack.build(app, c.var("id"))
    started, ended = c.opt_time("started"), c.opt_time("ended")
    if started:
        build.started = started
    if ended:
        build.ended = ended
    for name, attr in (("entrypoint", "entrypoint"), ("logs", "logs"), ("manifest", "manifest"),
                       ("release", "release"), ("status", "status")):
        value = c.opt_str(name)
        if value is not None:
            setattr(build, attr, value)
    return render_json(build.json())


# --- configs, capacity, certificates ----------------------------------------------------------------------------------

@route("GET", "/apps/{app}/configs")
async def app_config_list(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    return render_json([{"name": n, "value": app.configs[n].decode(errors="replace")} for n in sorted(app.configs)])


@route("GET", "/apps/{app}/configs/{name}")
async def app_config_get(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    name = c.var("name")
    if name not in app.configs:
        raise not_found("app config", name)
    return render_json({"name": name, "value": app.configs[name].decode(errors="replace")})


@route("PUT", "/apps/{app}/configs/{name}")
async def app_config_set(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    try:
        data = base64.b64decode(c.value("value"), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise RackError(400, "failed to parse base 64 value: illegal base64 data at input byte 0") from exc
    app.configs[c.var("name")] = data
    return render_ok()


@route("GET", "/system/capacity")
async def capacity_get(rack: Rack, c: Ctx) -> Response:
    procs = [p for a in rack.apps.values() for p in a.processes.values()]
    svcs = [s for a in rack.apps.values() for s in a.services.values()]
    return render_json({"cluster-cpu": 2000 * len(rack.instances), "cluster-memory": 7843 * len(rack.instances),
                        "process-count": len(procs), "process-cpu": sum(s.cpu * s.count for s in svcs),
                        "process-memory": sum(s.memory * s.count for s in svcs),
                        "process-width": max((s.memory for s in svcs), default=0)})


@route("PUT", "/apps/{app}/ssl/{service}/{port}")
async def certificate_apply(rack: Rack, c: Ctx) -> Response:
    """`convox ssl update SERVICE:PORT CERT`: the certificate on a service's balancer port (443 here), listed then
    by GET /apps/{app}/services. A service without a port has no balancer to put it on."""
    app = rack.app(c.var("app"))
    port = c.var("port")
    if not _INT_RE.match(port):
        raise RackError(500, f'strconv.Atoi: parsing "{port}": invalid syntax')
    service = rack.service(app, c.var("service"))
    cid = c.value("id")
    if cid not in rack.certificates:
        raise not_found("certificate", cid)
    if service.port is None or int(port) != BALANCER_PORT:
        raise RackError(400, f"no balancer port {int(port)} on service {service.name}")
    app.ssl[f"{service.name}:{int(port)}"] = cid
    return render_ok()


def _der_items(data: bytes, pos: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, start of content, end of content) of each DER element in data[pos:end]."""
    items = []
    while pos < end:
        tag = data[pos]
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[pos:pos + n], "big")
            pos += n
        items.append((tag, pos, pos + length))
        pos += length
    return items


def parse_certificate(pem: str) -> tuple[list[str], dt.datetime]:
    """The DNS names (subject CN first, then SANs) and notAfter of a PEM certificate, with no dependency."""
    m = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    if not m:
        raise RackError(500, "invalid certificate")
    try:
        der = base64.b64decode("".join(m.group(1).split()))
        (_, cs, ce), = _der_items(der, 0, len(der))[:1]
        tbs = _der_items(der, cs, ce)[0]
        fields = _der_items(der, tbs[1], tbs[2])
        if fields[0][0] == 0xA0:  # explicit version
            fields = fields[1:]
        validity, subject = fields[3], fields[4]
        not_after = _der_items(der, validity[1], validity[2])[1]
        text = der[not_after[1]:not_after[2]].decode()
        fmt = "%y%m%d%H%M%SZ" if not_after[0] == 0x17 else "%Y%m%d%H%M%SZ"
        expires = dt.datetime.strptime(text, fmt).replace(tzinfo=UTC)
        names: list[str] = []
        cn_oid = bytes([0x55, 0x04, 0x03])
        for rdn in _der_items(der, subject[1], subject[2]):
            for atv in _der_items(der, rdn[1], rdn[2]):
                oid, value = _der_items(der, atv[1], atv[2])[:2]
                if der[oid[1]:oid[2]] == cn_oid:
                    names.append(der[value[1]:value[2]].decode())
        for f in fields[5:]:
            if f[0] != 0xA3:
                continue
            for ext in _der_items(der, *_der_items(der, f[1], f[2])[0][1:]):
                parts = _der_items(der, ext[1], ext[2])
                if der[parts[0][1]:parts[0][2]] == bytes([0x55, 0x1D, 0x11]):
                    octets = parts[-1]
                    san_seq = _der_items(der, octets[1], octets[2])[0]
                    for gn in _der_items(der, san_seq[1], san_seq[2]):
                        if gn[0] == 0x82:
                            name = der[gn[1]:gn[2]].decode()
                            if name not in names:
                                names.append(name)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise RackError(500, "x509: malformed certificate") from exc
    if not names:
        names = ["unknown"]
    return names, expires


@route("POST", "/certificates")
async def certificate_create(rack: Rack, c: Ctx) -> Response:
    pub, key = c.value("pub"), c.value("key")
    c.opt_str("chain")
    names, expires = parse_certificate(pub)
    if "PRIVATE KEY-----" not in key:
        raise RackError(500, "invalid private key")
    cid = "cert-" + rack._k8s_lower(10)
    cert = CertRec(id=cid, domain=names[0], domains=names, expiration=expires,
                   arn=f"arn:aws:acm:us-east-1:123456789012:certificate/{rack._hex(8)}",
                   key_sha256=hashlib.sha256(key.encode()).hexdigest())
    rack.certificates[cid] = cert
    return render_json(cert.json())


@route("DELETE", "/certificates/{id}")
async def certificate_delete(rack: Rack, c: Ctx) -> Response:
    cid = c.var("id")
    if cid not in rack.certificates:
        raise not_found("certificate", cid)
    del rack.certificates[cid]
    return render_ok()


@route("POST", "/certificates/{id}/renew")
async def certificate_renew(rack: Rack, c: Ctx) -> Response:
    """`convox certs renew -a APP` sends the app's name as {id}: the certificates on its ports are renewed (a
    certificate id is accepted too)."""
    target = c.var("id")
    if target in rack.certificates:
        renewed = [target]
    elif target in rack.apps:
        renewed = sorted({cid for cid in rack.apps[target].ssl.values() if cid in rack.certificates})
    else:
        raise not_found("certificate", target)
    for cid in renewed:
        rack.certificates[cid].expiration = (rack.now() + dt.timedelta(days=90)).replace(microsecond=0)
    return render_ok()


@route("POST", "/certificates/generate")
async def certificate_generate(rack: Rack, c: Ctx) -> Response:
    domains = [d for d in c.value("domains").split(",") if d]
    if not domains:
        raise RackError(400, "domains required")
    duration = c.opt_str("duration") or "2160h"
    c.opt_str("issuer")
    m = re.fullmatch(r"(\d+)h", duration)
    hours = int(m.group(1)) if m else 2160
    cid = "cert-" + rack._k8s_lower(10)
    cert = CertRec(id=cid, domain=domains[0], domains=domains,
                   expiration=(rack.now() + dt.timedelta(hours=hours)).replace(microsecond=0), status="pending")
    rack.certificates[cid] = cert
    answer = cert.json()
    cert.status = "issued"
    return render_json(answer)


@route("GET", "/certificates")
async def certificate_list(rack: Rack, c: Ctx) -> Response:
    return render_json([rack.certificates[k].json() for k in sorted(rack.certificates, key=str.upper)])


@route("GET", "/letsencrypt/config")
async def letsencrypt_get(rack: Rack, c: Ctx) -> Response:
    return render_json(rack.letsencrypt)


@route("PUT", "/letsencrypt/config", body="raw")
async def letsencrypt_apply(rack: Rack, c: Ctx) -> Response:
    assert c.request is not None
    data = b""
    async for chunk in c.request.stream():
        data += chunk
        if len(data) > 1 << 20:
            raise RackError(500, "http: request body too large")
    try:
        rack.letsencrypt = json.loads(data or b"null")
    except ValueError as exc:
        raise RackError(500, f"invalid character in JSON: {exc.msg}") from exc
    return render_ok()


@route("POST", "/events")
async def event_send(rack: Rack, c: Ctx) -> Response:
    rack.events.append({"action": c.value("action"), "status": c.param("status"), "error": c.param("error"),
                        **{f"data.{k}": v for k, v in (c.opt_map("data") or {}).items()}})
    return render_ok()


# --- files, instances, objects ----------------------------------------------------------------------------------------

@route("DELETE", "/apps/{app}/processes/{pid}/files")
async def files_delete(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    rack.process(app, c.var("pid"))
    app.uploads.append({"pid": c.var("pid"), "deleted": [f for f in c.value("files").split(",") if f]})
    return render_ok()


@route("GET", "/apps/{app}/processes/{pid}/files")
async def files_download(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    proc = rack.process(app, c.var("pid"))
    wanted = c.value("file")
    profile = _process_profile(rack, app, proc)
    session = sh.Session(profile, tty=False)
    path = session._abs(wanted or ".")
    node = profile.files.get(path)
    if node is None or node.kind == "dir":
        raise RackError(500, f"tar: {wanted.lstrip('/')}: Cannot stat: No such file or directory")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = node.content.encode() if node.content else b"\0" * min(node.size, 4096)
        info = tarfile.TarInfo(path.rsplit("/", 1)[-1])
        info.size, info.mtime, info.mode = len(data), int(rack.now().timestamp()), 0o644
        tar.addfile(info, io.BytesIO(data))
    return Response(raw.getvalue(), media_type="application/octet-stream")


@route("POST", "/apps/{app}/processes/{pid}/files", body="raw")
async def files_upload(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    rack.process(app, c.var("pid"))
    size, digest, _ = await _stream_count(_body(c))
    app.uploads.append({"pid": c.var("pid"), "bytes": size, "sha256": digest, "tar-extra": c.query("tar-extra")})
    return render_ok()


@route("POST", "/instances/keyroll")
async def instance_keyroll(rack: Rack, c: Ctx) -> Response:
    rack.keypairs += 1
    body = base64.b64encode(bytes(rack.rng.randrange(256) for _ in range(1190))).decode()
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----\n"
    return render_json({"name": f"{rack.name}-keypair-{rack.keypairs}", "private-key": key})


@route("GET", "/instances")
async def instance_list(rack: Rack, c: Ctx) -> Response:
    return render_json([rack.instances[i].json(rack.processes_on(i)) for i in sorted(rack.instances)])


@route("DELETE", "/instances/{id}")
async def instance_terminate(rack: Rack, c: Ctx) -> Response:
    iid = c.var("id")
    if iid not in rack.instances:
        raise not_found("instance", iid)
    gone = rack.instances.pop(iid)
    replacement = rack._add_instance(started=rack.now(), subnet=int(gone.private_ip.split(".")[2]))
    for app in rack.apps.values():  # the scheduler moves the pods of the terminated node
        for proc in list(app.processes.values()):
            if proc.instance == iid:
                svc = app.services.get(proc.name)
                del app.processes[proc.id]
                if svc and not proc.one_off:
                    pod = rack._new_pod(app, svc, rack.now())
                    pod.instance, pod.host = replacement.id, replacement.private_ip
                    app.processes[pod.id] = pod
    return render_ok()


@route("DELETE", "/apps/{app}/objects/{key:.*}")
async def object_delete(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    key = c.var("key")
    if key not in app.objects:
        raise not_found("object", key)
    del app.objects[key]
    return render_ok()


@route("HEAD", "/apps/{app}/objects/{key:.*}")
async def object_exists(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    return render_json(c.var("key") in app.objects)


@route("GET", "/apps/{app}/objects/{key:.*}")
async def object_fetch(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    obj = app.objects.get(c.var("key"))
    if obj is None:
        raise not_found("object", c.var("key"))
    if obj.content is None:
        raise RackError(500, f"object too large for the simulated rack: {obj.key} ({obj.size} bytes)")
    return Response(obj.content, media_type="application/octet-stream")


@route("GET", "/apps/{app}/objects")
async def object_list(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    prefix = c.value("prefix")
    return render_json(sorted(k for k in app.objects if k.startswith(prefix)))


@route("POST", "/apps/{app}/objects/{key:.*}", body="raw")
async def object_store(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    key = c.var("key")
    public = c.opt_bool("Public", "header") or False
    size, digest, content = await _stream_count(_body(c), keep=KEEP_OBJECT_BYTES)
    app.objects[key] = ObjectRec(key=key, size=size, sha256=digest, public=public, content=content)
    return render_json({"url": f"object://{app.name}/{key}"})


# --- processes --------------------------------------------------------------------------------------------------------

@route("SOCKET", "/apps/{app}/processes/{pid}/exec")
async def process_exec(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    app = rack.app(c.var("app"))
    c.require_write()
    proc = rack.process(app, c.var("pid"), service_ok=True)
    command = c.value("command")
    tty = c.opt_bool("Tty", "header")
    height, width = c.opt_int("Height", "header"), c.opt_int("Width", "header")
    c.opt_bool("Entrypoint", "header")
    profile = _process_profile(rack, app, proc)
    code = await _run_session(rack, ws, c, "exec", profile, sh.split_command(command), tty is not False,
                              width, height)
    if code is not None:
        await ws.send_text(wire.exit_frame(code))


@route("GET", "/apps/{app}/processes/{pid}")
async def process_get(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    return render_json(rack.process(app, c.var("pid")).json())


@route("GET", "/apps/{app}/processes")
async def process_list(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    service, release = c.query("service"), c.query("release")
    procs = [p for p in app.processes.values()
             if (not service or p.name == service) and (not release or p.release == release)]
    procs.sort(key=lambda p: f"{p.app}-{p.name}-{p.id}")
    return render_json([p.json() for p in procs])


@route("SOCKET", "/apps/{app}/processes/{pid}/logs")
async def process_logs(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    app = rack.app(c.var("app"))
    proc = rack.process(app, c.var("pid"))
    await _send_logs(rack, ws, c, _app_log_lines(rack, app, c, only_pid=proc.id))


@route("POST", "/apps/{app}/services/{service}/processes")
async def process_run(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    svc = rack.service(app, c.var("service"))
    command = c.header("Command")
    for name in ("Cpu", "Cpu-Limit", "Memory", "Memory-Limit", "Height", "Width", "Gpu"):
        c.opt_int(name, "header")
    c.opt_bool("Privileged", "header")
    c.opt_map("Environment", "header")
    c.opt_map("Volumes", "header")
    release_id = c.header("Release") or app.release
    if release_id:
        release = rack.release(app, release_id)
        release_id = release.id
    while True:
        pid = f"{svc.name}-run-{rack.k8s_suffix()}"
        if pid not in app.processes:
            break
    inst = rack.rng.choice(sorted(rack.instances.values(), key=lambda i: i.id)) if rack.instances else None
    build = app.releases[release_id].build if release_id else ""
    proc = ProcessRec(id=pid, app=app.name, name=svc.name, command=command or svc.command,
                      host=inst.private_ip if inst else "", instance=inst.id if inst else "",
                      image=c.header("Image") or (f"{rack.name}/{app.name}:{svc.name}.{build}" if build else ""),
                      release=release_id, started=rack.now(), status="pending", one_off=True)
    answer = proc.json()
    proc.status = "running"
    app.processes[pid] = proc
    return render_json(answer)


@route("SOCKET", "/apps/{app}/services/{service}/logs")
async def service_logs(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    app = rack.app(c.var("app"))
    rack.service(app, c.var("service"))
    await _send_logs(rack, ws, c, _app_log_lines(rack, app, c, only_service=c.var("service")))


@route("DELETE", "/apps/{app}/processes/{pid}")
async def process_stop(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    proc = rack.process(app, c.var("pid"))
    del app.processes[proc.id]
    svc = app.services.get(proc.name)
    if svc and not proc.one_off:  # the deployment replaces a stopped replica
        pod = rack._new_pod(app, svc, rack.now())
        app.processes[pod.id] = pod
    return render_ok()


@route("SOCKET", "/proxy/{host}/{port}")
async def proxy(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    c.require_write()
    port = c.var("port")
    if not _INT_RE.match(port):
        raise RackError(500, f'strconv.Atoi: parsing "{port}": invalid syntax')
    record = SessionRec("proxy", c.path, f"{c.var('host')}:{port}", None)
    rack.sessions.append(record)
    while True:
        text = await _read_input(ws)
        if text is None:
            return
        record.input_bytes += len(text.encode())
        record.output_bytes += len(text.encode())
        await ws.send_text(text)


# --- registries -------------------------------------------------------------------------------------------------------

@route("POST", "/registries")
async def registry_add(rack: Rack, c: Ctx) -> Response:
    server, username, password = c.value("server"), c.value("username"), c.value("password")
    if not server:
        raise RackError(400, "server required")
    reg = RegistryRec(server, username, hashlib.sha256(password.encode()).hexdigest())
    rack.registries[server] = reg
    return render_json(reg.json())


@route("GET", "/registries")
async def registry_list(rack: Rack, c: Ctx) -> Response:
    return render_json([rack.registries[s].json() for s in sorted(rack.registries)])


@route("ANY", "/v2/{path:.*}", body="raw")
async def registry_proxy(rack: Rack, c: Ctx) -> Response:
    headers = {"Docker-Distribution-Api-Version": "registry/2.0"}
    path = c.var("path")
    if c.method in ("GET", "HEAD"):
        if path == "":
            return Response(b"{}", headers=headers, media_type="application/json")
        body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                                       "detail": path}]}).encode()
        return Response(body, status_code=404, headers=headers, media_type="application/json")
    c.require_write()
    size, digest, _ = await _stream_count(_body(c))
    if c.method == "POST":
        upload = rack._hex(32)
        headers.update({"Location": f"/v2/{path.rstrip('/')}/{upload}", "Docker-Upload-UUID": upload,
                        "Range": "0-0"})
        return Response(b"", status_code=202, headers=headers)
    if c.method == "PATCH":
        headers.update({"Range": f"0-{max(size - 1, 0)}"})
        return Response(b"", status_code=202, headers=headers)
    if c.method == "PUT":
        headers["Docker-Content-Digest"] = f"sha256:{digest}"
        return Response(b"", status_code=201, headers=headers)
    return Response(b"", status_code=202, headers=headers)


@route("DELETE", "/registries/{server:.*}")
async def registry_remove(rack: Rack, c: Ctx) -> Response:
    server = c.var("server")
    if server not in rack.registries:
        raise not_found("registry", server)
    del rack.registries[server]
    return render_ok()


# --- releases ---------------------------------------------------------------------------------------------------------

@route("POST", "/apps/{app}/releases")
async def release_create(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    release = rack.create_release(
        app,
        build=c.param("build") if c.has_param("build") else None,
        env=c.param("env") if c.has_param("env") else None,
        description=c.param("description") if c.has_param("description") and c.param("description") else None,
        parent=c.param("parent-release") or None,
    )
    return render_json(release.json())


@route("GET", "/apps/{app}/releases/{id}")
async def release_get(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    return render_json(rack.release(app, c.var("id")).json())


@route("GET", "/apps/{app}/releases")
async def release_list(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    limit = c.opt_int("limit", "query") or 10
    releases = sorted(app.releases.values(),
                      key=lambda r: (r.created or dt.datetime.min.replace(tzinfo=UTC), r.id), reverse=True)
    return render_json([r.json() for r in releases[:limit]])


@route("POST", "/apps/{app}/releases/{id}/promote")
async def release_promote(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    for name in ("development", "force", "idle"):
        c.opt_bool(name)
    for name in ("min", "max", "timeout"):
        c.opt_int(name)
    if app.budget_state and app.budget_state.get("breaker-tripped"):
        raise RackError(409, f"budget circuit breaker tripped for app: {app.name}")
    rack.promote(app, rack.release(app, c.var("id")))
    return render_ok()


# --- app resources ----------------------------------------------------------------------------------------------------

@route("SOCKET", "/apps/{app}/resources/{name}/console")
async def resource_console(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    app = rack.app(c.var("app"))
    c.require_write()
    res = app.resources.get(c.var("name"))
    if res is None:
        raise not_found("resource", c.var("name"))
    height, width = c.opt_int("Height", "header"), c.opt_int("Width", "header")
    profile = sh.resource_profile(app=app.name, resource=res.name, kind=res.type, url=res.url, seed=rack.seed,
                                  now=rack.now)
    argv = ["redis-cli"] if res.type == "redis" else ["psql"]
    await _run_session(rack, ws, c, "console", profile, argv, True, width, height)


@route("GET", "/apps/{app}/resources/{name}/data")
async def resource_export(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    res = app.resources.get(c.var("name"))
    if res is None:
        raise not_found("resource", c.var("name"))
    if res.type not in ("postgres", "mysql"):
        raise RackError(400, f"export not supported for resource type: {res.type}")
    dump = ("--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.4\n\n"
            "SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n\n"
            "CREATE TABLE public.accounts (\n    id bigint NOT NULL,\n    name character varying\n);\n\n"
            "COPY public.accounts (id, name) FROM stdin;\n1\tAcme\n2\tGlobex\n\\.\n\n"
            "--\n-- PostgreSQL database dump complete\n--\n")
    return Response(dump.encode(), media_type="text/plain; charset=utf-8")


@route("GET", "/apps/{app}/resources/{name}")
async def resource_get(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    res = app.resources.get(c.var("name"))
    if res is None:
        raise not_found("resource", c.var("name"))
    return render_json(res.json())


@route("PUT", "/apps/{app}/resources/{name}/data", body="raw")
async def resource_import(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    res = app.resources.get(c.var("name"))
    if res is None:
        raise not_found("resource", c.var("name"))
    size, _, _ = await _stream_count(_body(c))
    res.imported_bytes += size
    return render_ok()


@route("GET", "/apps/{app}/resources")
async def resource_list(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    return render_json([app.resources[n].json() for n in sorted(app.resources)])


# --- services ---------------------------------------------------------------------------------------------------------

@route("GET", "/apps/{app}/services")
async def service_list(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    return render_json([app.services[n].json(app.ssl.get(f"{n}:{BALANCER_PORT}", "")) for n in sorted(app.services)])


@route("GET", "/apps/{app}/services/{service}/metrics")
async def service_metrics(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    rack.service(app, c.var("service"))
    return render_json([])


@route("POST", "/apps/{app}/services/{name}/restart")
async def service_restart(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    rack.service(app, c.var("name"))
    rack._roll_pods(app, only=c.var("name"))
    return render_ok()


@route("POST", "/apps/{app}/services/{service}/scale-override")
async def service_scale_override(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    rack.service(app, c.var("service"))
    c.opt_int("count")
    return render_ok()


@route("POST", "/apps/{app}/services/{service}/triggers/disable")
async def service_triggers_disable(rack: Rack, c: Ctx) -> Response:
    rack.service(rack.app(c.var("app")), c.var("service"))
    return render_ok()


@route("POST", "/apps/{app}/services/{service}/triggers/enable")
async def service_triggers_enable(rack: Rack, c: Ctx) -> Response:
    rack.service(rack.app(c.var("app")), c.var("service"))
    return render_ok()


@route("POST", "/apps/{app}/services/{service}/triggers/threshold")
async def service_triggers_threshold(rack: Rack, c: Ctx) -> Response:
    rack.service(rack.app(c.var("app")), c.var("service"))
    return render_ok()


@route("PUT", "/apps/{app}/services/{name}")
async def service_update(rack: Rack, c: Ctx) -> Response:
    app = rack.app(c.var("app"))
    svc = rack.service(app, c.var("name"))
    count, cpu, memory = c.opt_int("count"), c.opt_int("cpu"), c.opt_int("memory")
    gpu, vendor = c.opt_int("gpu"), c.opt_str("gpu-vendor")
    low, high = c.opt_int("min"), c.opt_int("max")
    for name, value in (("count", count), ("cpu", cpu), ("memory", memory), ("gpu", gpu), ("min", low),
                        ("max", high)):
        if value is not None and value < 0:
            raise RackError(400, f"{name} must be 0 or greater")
    if cpu is not None:
        svc.cpu = cpu
    if memory is not None:
        svc.memory = memory
    if gpu is not None:
        svc.gpu = gpu
    if vendor is not None:
        svc.gpu_vendor = vendor
    if low is not None:
        svc.min = low
    if high is not None:
        svc.max = high
    if count is not None:
        svc.count = count
        rack._scale_pods(app, svc)
    elif cpu is not None or memory is not None or gpu is not None:
        rack._roll_pods(app, only=svc.name)
    return render_ok()


# --- system -----------------------------------------------------------------------------------------------------------

@route("GET", "/system")
async def system_get(rack: Rack, c: Ctx) -> Response:
    s = rack.system
    out = {k: s[k] for k in ("count", "domain", "name")}
    if s["parameters"]:
        out["parameters"] = _sorted_map(s["parameters"])
    out.update({k: s[k] for k in ("provider", "rack-domain", "region", "status", "type", "version")})
    return render_json(out)


@route("SOCKET", "/system/logs")
async def system_logs(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    now = rack.now()
    lines = []
    components = [("system/k8s/api", "api"), ("system/k8s/atom", "atom"), ("system/k8s/router", "router")]
    for i in range(12):
        path, comp = components[i % 3]
        pod = f"{comp}-{hashlib.sha256(f'{rack.seed}{comp}'.encode()).hexdigest()[:10]}-" \
              f"{hashlib.sha256(f'{comp}{rack.seed}'.encode()).hexdigest()[:5]}"
        when = go_time((now - dt.timedelta(seconds=(12 - i) * 7)).replace(microsecond=0))
        message = {"api": f"ns=api id={rack.request_id()} method=\"GET\" path=\"/apps\" response=200",
                   "atom": "ns=atom at=check app=web status=Running",
                   "router": "ns=router at=request host=web.web status=200 elapsed=4ms"}[comp]
        lines.append(f"{when} {path}/{pod} {message}\n")
    await _send_logs(rack, ws, c, _filter_lines(lines, c))


@route("GET", "/system/metrics")
async def system_metrics(rack: Rack, c: Ctx) -> Response:
    return render_json([])


@route("PUT", "/system/jwt/rotate")
async def system_jwt_rotate(rack: Rack, c: Ctx) -> Response:
    if "a" not in c.role:
        raise RackError(401, "you are unauthorized to access this")
    rack.jwt_key = hashlib.sha256(rack.jwt_key + b"rotated").digest()
    return render_ok()


@route("POST", "/system/jwt/token")
async def system_jwt_token(rack: Rack, c: Ctx) -> Response:
    role = c.value("role")
    raw = c.value("durationInHour")
    if not _INT_RE.match(raw or ""):
        raise RackError(400, "invalid duration")
    token = ""
    if role == "read":
        token = rack.jwt_token("r", c.actor or "", int(raw))
    elif role == "write":
        token = rack.jwt_token("rw", c.actor or "", int(raw))
    return render_json({"token": token})


@route("GET", "/system/processes")
async def system_processes(rack: Rack, c: Ctx) -> Response:
    insts = sorted(rack.instances.values(), key=lambda i: i.id)
    out = []
    for i, comp in enumerate(("api", "atom", "resolver", "router")):
        inst = insts[i % len(insts)] if insts else None
        h = hashlib.sha256(f"{rack.seed}{comp}".encode()).hexdigest()
        out.append(ProcessRec(id=f"{comp}-{h[:10]}-{h[10:15]}", app="system", name=comp, host=inst.private_ip
                              if inst else "", instance=inst.id if inst else "",
                              image=f"convox/convox:{rack.system['version']}", release=rack.system["version"],
                              started=inst.started if inst else None).json())
    return render_json(out)


@route("GET", "/system/releases")
async def system_releases(rack: Rack, c: Ctx) -> Response:
    now = rack.now()
    return render_json([ReleaseRec(id=v, app="system", created=(now - dt.timedelta(days=d)).replace(microsecond=0))
                        .json() for v, d in rack.system_releases])


@route("POST", "/resources")
async def system_resource_create(rack: Rack, c: Ctx) -> Response:
    kind, name = c.value("kind"), c.value("name")
    params = c.opt_map("parameters") or {}
    if kind not in RESOURCE_TYPES:
        raise RackError(400, f"invalid resource type: {kind}")
    if not name:
        name = f"{kind}-{rack.k8s_suffix(4)}"
    if name in rack.resources:
        raise RackError(409, f"resource already exists: {name}")
    res = ResourceRec(name, kind, url=rack._resource_url(kind, name, "rack"), status="running",
                      parameters=dict(params))
    rack.resources[name] = res
    answer = res.json(rack)
    answer["status"] = "creating"
    return render_json(answer)


@route("DELETE", "/resources/{name}")
async def system_resource_delete(rack: Rack, c: Ctx) -> Response:
    name = c.var("name")
    if name not in rack.resources:
        raise not_found("resource", name)
    del rack.resources[name]
    return render_ok()


@route("GET", "/resources/{name}")
async def system_resource_get(rack: Rack, c: Ctx) -> Response:
    res = rack.resources.get(c.var("name"))
    if res is None:
        raise not_found("resource", c.var("name"))
    return render_json(res.json(rack))


@route("POST", "/resources/{name}/links")
async def system_resource_link(rack: Rack, c: Ctx) -> Response:
    res = rack.resources.get(c.var("name"))
    if res is None:
        raise not_found("resource", c.var("name"))
    app = rack.app(c.value("app"))
    if app.name not in res.apps:
        res.apps.append(app.name)
    return render_json(res.json(rack))


@route("GET", "/resources")
async def system_resource_list(rack: Rack, c: Ctx) -> Response:
    return render_json([rack.resources[n].json(rack) for n in sorted(rack.resources)])


@route("OPTIONS", "/resources")
async def system_resource_types(rack: Rack, c: Ctx) -> Response:
    return render_json([{"name": kind, "parameters": [{"default": d, "description": desc, "name": n}
                                                     for n, d, desc in params]}
                        for kind, params in sorted(RESOURCE_TYPES.items())])


@route("DELETE", "/resources/{name}/links/{app}")
async def system_resource_unlink(rack: Rack, c: Ctx) -> Response:
    res = rack.resources.get(c.var("name"))
    if res is None:
        raise not_found("resource", c.var("name"))
    app = c.var("app")
    if app not in res.apps:
        raise RackError(404, f"resource {res.name} is not linked to app: {app}")
    res.apps.remove(app)
    return render_json(res.json(rack))


@route("PUT", "/resources/{name}")
async def system_resource_update(rack: Rack, c: Ctx) -> Response:
    res = rack.resources.get(c.var("name"))
    if res is None:
        raise not_found("resource", c.var("name"))
    for key, value in (c.opt_map("parameters") or {}).items():
        res.parameters[key] = value
    return render_json(res.json(rack))


@route("PUT", "/system")
async def system_update(rack: Rack, c: Ctx) -> Response:
    count, force = c.opt_int("count"), c.opt_bool("force")
    params, kind, version = c.opt_map("parameters"), c.opt_str("type"), c.opt_str("version")
    s = rack.system
    if count is not None:
        if count < 1:
            raise RackError(400, "count must be 1 or greater")
        s["count"] = count
        while len(rack.instances) < count:
            rack._add_instance(started=rack.now())
        while len(rack.instances) > count:
            rack.instances.pop(sorted(rack.instances)[-1])
    if kind is not None:
        s["type"] = kind
        s["parameters"]["node_type"] = kind
        for inst in rack.instances.values():
            inst.instance_type = kind
    if params is not None:
        for key, value in params.items():
            s["parameters"][key] = value
    if version is not None:
        if not re.fullmatch(r"\d+\.\d+\.\d+", version):
            raise RackError(400, f"invalid version: {version}")
        s["version"] = version
        rack.system_releases.insert(0, (version, 0))
    if force is not None:
        s["status"] = "updating" if version else s["status"]
        s["status"] = "running"  # the simulated update is instant
    return render_ok()


@route("POST", "/system/karpenter/cleanup")
async def karpenter_cleanup(rack: Rack, c: Ctx) -> Response:
    return render_ok()


@route("ANY", "/custom/http/proxy/{path:.*}", body="raw")
async def proxy_http_service(rack: Rack, c: Ctx) -> Response:
    c.require_write()
    host, port = c.header("X-Host"), c.header("X-Port")
    if not _INT_RE.match(port or ""):
        raise RackError(500, f'strconv.Atoi: parsing "{port}": invalid syntax')
    size, _, _ = await _stream_count(_body(c))
    body = json.dumps({"method": c.method, "host": host, "port": int(port), "path": "/" + c.var("path"),
                       "bytes": size}) + "\n"
    return Response(body.encode(), media_type="application/json")


# --- sockets: shells, logs --------------------------------------------------------------------------------------------

@route("SOCKET", "/instances/{id}/shell")
async def instance_shell(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    c.require_write()
    iid = c.var("id")
    inst = rack.instances.get(iid)
    if inst is None:
        raise not_found("instance", iid)
    key = c.header("Private-Key")
    if key:
        try:
            base64.b64decode(key, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise RackError(500, "illegal base64 data at input byte 0") from exc
    height, width = c.opt_int("Height", "header"), c.opt_int("Width", "header")
    profile = sh.instance_profile(instance=inst.id, private_ip=inst.private_ip, seed=rack.seed, now=rack.now)
    code = await _run_session(rack, ws, c, "shell", profile, sh.split_command(c.header("Command")), True,
                              width, height)
    if code is not None:
        await ws.send_text(wire.exit_frame(code))


@route("SOCKET", "/apps/{app}/logs")
async def app_logs(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    app = rack.app(c.var("app"))
    await _send_logs(rack, ws, c, _app_log_lines(rack, app, c))


@route("SOCKET", "/apps/{app}/builds/{id}/logs")
async def build_logs(rack: Rack, c: Ctx, ws: WebSocket) -> None:
    app = rack.app(c.var("app"))
    build = rack.build(app, c.var("id"))
    await _send_logs(rack, ws, c, _filter_lines(build.log_lines, c))


def _filter_lines(lines: list[str], c: Ctx) -> list[str]:
    needle = c.header("Filter")
    tail = c.opt_int("Tail", "header")
    lines = [ln for ln in lines if needle in ln] if needle else list(lines)
    return lines[-tail:] if tail else lines


def _app_log_lines(rack: Rack, app: AppRec, c: Ctx, only_service: str = "", only_pid: str = "") -> list[str]:
    now = rack.now()
    procs = sorted((p for p in app.processes.values()
                    if (not only_service or p.name == only_service) and (not only_pid or p.id == only_pid)),
                   key=lambda p: p.id)
    lines = []
    paths = ["/", "/healthz", "/api/v1/orders", "/login", "/api/v1/accounts/42"]
    for i in range(10 if procs else 0):
        proc = procs[i % len(procs)]
        when = go_time((now - dt.timedelta(seconds=(10 - i) * 3)).replace(microsecond=0))
        if proc.ports:
            path = paths[(i * 7 + len(proc.id)) % len(paths)]
            msg = (f'Started GET "{path}" for 10.0.{i % 3 + 1}.{40 + i} at {when[:19].replace("T", " ")} +0000'
                   if i % 2 == 0 else f"Completed 200 OK in {3 + (i * 13) % 40}ms (Views: 1.2ms | "
                                      f"ActiveRecord: 0.{i}ms)")
        else:
            msg = f"INFO: done: OrderMailerJob jid={hashlib.sha256(f'{proc.id}{i}'.encode()).hexdigest()[:24]} " \
                  f"elapsed=0.{(i * 37) % 900 + 100}"
        prefix = f"{when} service/{proc.name}/{proc.id} " if c.header("Prefix") != "false" else ""
        lines.append(prefix + msg + "\n")
    return _filter_lines(lines, c)


async def _send_logs(rack: Rack, ws: WebSocket, c: Ctx, lines: list[str]) -> None:
    record = SessionRec("logs", c.path, "", None)
    rack.sessions.append(record)
    for line in lines:
        record.output_bytes += len(line.encode())
        await ws.send_text(line)


def _process_profile(rack: Rack, app: AppRec, proc: ProcessRec) -> sh.Profile:
    release = app.releases.get(proc.release) or app.releases.get(app.release)
    env = wire.parse_env(release.env) if release else {}
    return sh.process_profile(app=app.name, service=proc.name, pid=proc.id, release=proc.release, rack=rack.name,
                              env=env, seed=rack.seed, now=rack.now)


async def _read_input(ws: WebSocket) -> str | None:
    """The next stdin chunk: the text of a TEXT frame; None for a BINARY frame (EOF)."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is not None:
        return text
    return None


async def _send_output(ws: WebSocket, text: str, record: SessionRec) -> None:
    if not text:
        return
    record.output_bytes += len(text.encode())
    for i in range(0, len(text), 8192):
        await ws.send_text(text[i:i + 8192])


async def _run_session(rack: Rack, ws: WebSocket, c: Ctx, kind: str, profile: sh.Profile, argv: list[str],
                       tty: bool, width: int | None, height: int | None) -> int:
    """Run a command or an interactive session on the websocket; returns the exit code."""
    record = SessionRec(kind, c.path, " ".join(argv), None)
    rack.sessions.append(record)
    if not sh.Session.is_interactive(argv):
        session = sh.Session(profile, tty=tty, width=width or 80, height=height or 24)
        out, code = session.run(argv)
        await _send_output(ws, out, record)
        record.exit_code = code
        return code
    session = sh.Session(profile, tty=tty, width=width or 80, height=height or 24, start=argv or None)
    await _send_output(ws, session.start(), record)
    while session.exit_code is None:
        text = await _read_input(ws)
        if text is None:
            await _send_output(ws, session.eof(), record)
            break
        record.input_bytes += len(text.encode())
        await _send_output(ws, session.feed(text), record)
    record.exit_code = session.exit_code if session.exit_code is not None else 0
    return record.exit_code


# --- authentication and dispatch --------------------------------------------------------------------------------------

def _utf8(value: str) -> str:
    """A header value as Go sees it (bytes read as UTF-8); ASGI servers hand them over as latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8", errors="replace")
    except UnicodeEncodeError:
        return value


def authenticate(rack: Rack, password: str, headers: Headers) -> tuple[str, str]:
    """pkg/api authenticate: (actor, role) or RackError 401."""
    creds = wire.parse_basic(headers.get("authorization"), errors="replace")  # Go compares bytes
    user, given = creds if creds else ("", "")
    if user == "jwt":
        claims = rack.jwt_verify(given)
        return str(claims.get("user") or "unknown"), str(claims.get("role") or "")
    if password and not hmac.compare_digest(password.encode(), given.encode()):
        raise RackError(401, "invalid authentication", www_authenticate=True)
    actor = ""
    for name in ("convox-actor", "x-convox-actor"):
        raw = _utf8(headers.get(name, ""))
        if raw.strip():
            actor = sanitize_actor(raw)
            if actor:
                break
    return actor or "rack-password", "rwa"


def _header_dict(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        key = key.lower()
        if key == "authorization":
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


# --- r.URL.Path and r.Form, as Go's net/http builds them ----------------------------------------------------------
# The real rack is Go (stdapi on gorilla/mux, net/http): these helpers are ports of url.PathUnescape /
# url.ParseQuery, mime.ParseMediaType, Request.ParseForm / ParseMultipartForm and mime/multipart's reader (Go 1.23),
# so that what the simulated rack acts on is what a real rack would act on, byte for byte. Bytes that are not UTF-8
# are read with U+FFFD (Go would keep the raw bytes).

_HEX = frozenset(b"0123456789abcdefABCDEF")
MAX_URLENCODED_BODY = 10 << 20  # net/http parsePostForm: "10 MB is a lot of text"


def _go_unescape(raw: bytes, *, plus: bool) -> bytes | None:
    """url.QueryUnescape (plus=True: `+` is a space) or url.PathUnescape; None on a bad `%` escape."""
    if b"%" not in raw:
        return raw.replace(b"+", b" ") if plus else raw
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25:  # %
            if i + 2 >= n or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                return None
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
            continue
        out.append(0x20 if plus and c == 0x2B else c)
        i += 1
    return bytes(out)


def _go_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def go_request_path(raw_path: bytes) -> str | None:
    """r.URL.Path for a request target's path: percent-decoded once, nothing else (no dot-segment removal, `//` kept,
    `%2F` becomes `/`); None when an escape is malformed, which Go's server answers with 400 before any routing."""
    decoded = _go_unescape(raw_path, plus=False)
    return None if decoded is None else _go_text(decoded)


def go_parse_query(raw: bytes | str) -> list[tuple[str, str]]:
    """url.ParseQuery, pairs in order: split on `&`; a pair holding `;` or a bad escape is dropped (Go reports an error
    that FormValue ignores); empty pairs are skipped; `k` alone is `k=`; `+` is a space."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="surrogateescape")
    pairs: list[tuple[str, str]] = []
    for chunk in raw.split(b"&"):
        if not chunk or b";" in chunk:
            continue
        key, _, value = chunk.partition(b"=")
        k, v = _go_unescape(key, plus=True), _go_unescape(value, plus=True)
        if k is None or v is None:
            continue
        pairs.append((_go_text(k), _go_text(v)))
    return pairs


_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')
_GO_SPACE = " \t\n\v\f\r\x85\xa0"  # unicode.IsSpace over what a latin-1 header can hold


def _is_token_char(ch: str) -> bool:
    return 0x20 < ord(ch) < 0x7F and ch not in _TSPECIALS


def _consume_token(v: str) -> tuple[str, str]:
    for i, ch in enumerate(v):
        if not _is_token_char(ch):
            return v[:i], v[i:]
    return v, ""


def _consume_value(v: str) -> tuple[str, str]:
    if not v:
        return "", v
    if v[0] != '"':
        return _consume_token(v)
    out: list[str] = []
    i = 1
    while i < len(v):
        ch = v[i]
        if ch == '"':
            return "".join(out), v[i + 1:]
        if ch == "\\" and i + 1 < len(v) and v[i + 1] in _TSPECIALS:
            out.append(v[i + 1])
            i += 2
            continue
        if ch in "\r\n":
            return "", v
        out.append(ch)
        i += 1
    return "", v


def _consume_media_param(v: str) -> tuple[str, str, str]:
    rest = v.lstrip(_GO_SPACE)
    if not rest.startswith(";"):
        return "", "", v
    rest = rest[1:].lstrip(_GO_SPACE)
    param, rest = _consume_token(rest)
    param = param.lower()
    if not param:
        return "", "", v
    rest = rest.lstrip(_GO_SPACE)
    if not rest.startswith("="):
        return "", "", v
    rest = rest[1:].lstrip(_GO_SPACE)
    value, rest2 = _consume_value(rest)
    if value == "" and rest2 == rest:
        return "", "", v
    return param, value, rest2


def _percent_hex_unescape(s: str) -> str | None:
    decoded = _go_unescape(s.encode("latin-1", errors="replace"), plus=False)
    return None if decoded is None else _go_text(decoded)


def go_parse_media_type(v: str) -> tuple[str, dict[str, str], str | None]:
    """mime.ParseMediaType: (lower-case media type, params with lower-case names, error). On a bad parameter the
    media type is still returned (with the error, no params); on a bad type or a conflicting duplicate parameter the
    media type is ""."""
    base = v.split(";", 1)[0]
    mediatype = base.lower().strip(_GO_SPACE)
    kind, rest = _consume_token(mediatype)
    if not kind:
        return "", {}, "mime: no media type"
    if rest:
        if not rest.startswith("/"):
            return "", {}, "mime: expected slash after first token"
        subtype, rest = _consume_token(rest[1:])
        if not subtype:
            return "", {}, "mime: expected token after slash"
        if rest:
            return "", {}, "mime: unexpected content after media subtype"
    params: dict[str, str] = {}
    continuation: dict[str, dict[str, str]] = {}
    v = v[len(base):]
    while v:
        v = v.lstrip(_GO_SPACE)
        if not v:
            break
        key, value, rest = _consume_media_param(v)
        if not key:
            if rest.strip(_GO_SPACE) == ";":
                break
            return mediatype, {}, "mime: invalid media parameter"
        pmap = params
        if "*" in key:
            pmap = continuation.setdefault(key.split("*", 1)[0], {})
        if key in pmap and pmap[key] != value:
            return "", {}, "mime: duplicate parameter name"
        pmap[key] = value
        v = rest
    for key, pieces in continuation.items():
        if key + "*" in pieces:
            decoded = _decode_2231(pieces[key + "*"])
            if decoded is not None:
                params[key] = decoded
            continue
        buf, valid, n = "", False, 0
        while True:
            simple = f"{key}*{n}"
            if simple in pieces:
                valid, buf = True, buf + pieces[simple]
            elif simple + "*" in pieces:
                valid = True
                piece = _decode_2231(pieces[simple + "*"]) if n == 0 else _percent_hex_unescape(pieces[simple + "*"])
                buf += piece or ""
            else:
                break
            n += 1
        if valid:
            params[key] = buf
    return mediatype, params, None


def _decode_2231(v: str) -> str | None:
    parts = v.split("'", 2)
    if len(parts) != 3 or parts[0].lower() not in ("us-ascii", "utf-8"):
        return None
    return _percent_hex_unescape(parts[2])


def _go_base(path: str) -> str:
    """filepath.Base on Linux."""
    if path == "":
        return "."
    path = path.rstrip("/")
    if path == "":
        return "/"
    return path.rsplit("/", 1)[-1]


def _canonical_header_key(key: bytes) -> str | None:
    """textproto.CanonicalMIMEHeaderKey's check: None when the name holds a byte that is not a token byte."""
    if not key or any(not _is_token_char(chr(b)) for b in key):
        return None
    return key.decode("ascii").lower()


def _read_part_headers(body: bytes, pos: int) -> tuple[dict[str, str], int] | None:
    """textproto.ReadMIMEHeader from `pos`: {lower-case name: first value}, and where the part's body starts; None
    on a malformed header block (Go's NextPart then fails)."""
    lines: list[list[str]] = []
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            return None
        line = body[pos:end]
        pos = end + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            break
        if line[:1] in (b" ", b"\t"):  # a continuation line
            if not lines:
                return None  # "malformed MIME header initial line"
            lines[-1][1] = (lines[-1][1] + " " + _go_text(line.strip(b" \t"))).strip(" \t")
            continue
        key, colon, value = line.partition(b":")
        name = _canonical_header_key(key) if colon else None
        if name is None or any((b < 0x20 and b != 0x09) or b == 0x7F for b in value):
            return None  # "malformed MIME header line"
        lines.append([name, _go_text(value.strip(b" \t"))])
    headers: dict[str, str] = {}
    for name, value in lines:
        headers.setdefault(name, value)
    return headers, pos


def _quoted_printable(data: bytes) -> bytes | None:
    """mime/quotedprintable's Reader: `=XX` (hex in either case), `=` before anything that is not hex kept as is,
    soft line breaks, blanks at line ends dropped; None on what it reports as an error (a control byte, bytes after a
    soft break)."""
    out = bytearray()
    pieces = data.split(b"\n")
    chunks = [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    for index, whole in enumerate(chunks):
        line = whole.rstrip(b" \t\r\n")
        if line.endswith(b"="):
            after = whole[len(line):]
            line = line[:-1]
            if not (after.startswith(b"\n") or after.startswith(b"\r\n")
                    or (not after and line and index == len(chunks) - 1)):
                return None  # "invalid bytes after ="
        elif whole.endswith(b"\n"):
            line += b"\r\n" if whole.endswith(b"\r\n") else b"\n"
        i = 0
        while i < len(line):
            b = line[i]
            if b == 0x3D:
                pair = line[i + 1:i + 3]
                if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                    out.append(int(pair, 16))
                    i += 3
                    continue
                if len(line) - i < 2 or line[i + 1] in (0x0D, 0x0A):
                    return None
            elif b not in (0x09, 0x0D, 0x0A) and b < 0x80 and (b < 0x20 or b > 0x7E):
                return None  # "invalid unescaped byte"
            out.append(b)
            i += 1
    return bytes(out)


def _multipart_boundary_end(body: bytes, start: int, nl_dash: bytes, dash: bytes) -> int | None:
    """Where the part body starting at `start` ends (scanUntilBoundary / matchAfterPrefix): at the first
    newline + `--boundary` followed by a dash, a blank, a line end or the end of input; right away when the body
    starts with such a `--boundary` (an empty part). None: no boundary before the end (unexpected EOF)."""
    def matches(at: int, prefix: bytes) -> bool:
        after = at + len(prefix)
        return after >= len(body) or body[after:after + 1] in (b" ", b"\t", b"\r", b"\n", b"-")

    if body.startswith(dash, start) and matches(start, dash):
        return start
    i = body.find(nl_dash, start)
    while i >= 0:
        if matches(i, nl_dash):
            return i
        i = body.find(nl_dash, i + 1)
    return None


def go_read_multipart(body: bytes, boundary: str) -> tuple[list[tuple[str, str]], list[FilePart]] | None:
    """multipart.Reader.ReadForm: (value pairs, file parts) in part order, or None when the body does not parse
    (Go's ReadForm then fails and r.Form gets no multipart value at all). A part without a form-data disposition or
    a name is skipped; one with a (non-empty) filename is a file; quoted-printable parts are decoded."""
    if not boundary:
        return None
    dash = b"--" + boundary.encode("utf-8", errors="replace")
    nl = b"\r\n"
    values: list[tuple[str, str]] = []
    files: list[FilePart] = []
    pos, parts_read, expect_new = 0, 0, False
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            line = body[pos:]
            if line.startswith(dash + b"--") and not line[len(dash) + 2:].lstrip(b" \t"):
                return values, files
            return None  # "multipart: NextPart: EOF"
        line = body[pos:end + 1]
        pos = end + 1
        rest = line[len(dash):].lstrip(b" \t") if line.startswith(dash) else None
        if rest is not None and not line.startswith(dash + b"--"):
            if parts_read == 0 and rest == b"\n":
                nl = b"\n"
            if rest == nl:
                parts_read += 1
                expect_new = False
                parsed = _read_part_headers(body, pos)
                if parsed is None:
                    return None
                headers, pos = parsed
                data_end = _multipart_boundary_end(body, pos, nl + dash, dash)
                if data_end is None:
                    return None
                data = body[pos:data_end]
                pos = data_end
                if headers.get("content-transfer-encoding", "").lower() == "quoted-printable":
                    decoded = _quoted_printable(data)
                    if decoded is None:
                        return None
                    data = decoded
                disposition, dparams, _ = go_parse_media_type(headers.get("content-disposition", ""))
                name = dparams.get("name", "") if disposition == "form-data" else ""
                if not name:
                    continue
                filename = dparams.get("filename", "")
                if filename:
                    files.append(FilePart(name, _go_base(filename), len(data), hashlib.sha256(data).hexdigest()))
                else:
                    values.append((name, _go_text(data)))
                continue
        if line.startswith(dash + b"--"):
            tail = line[len(dash) + 2:].lstrip(b" \t")
            if tail in (b"", nl):
                return values, files
        if expect_new:
            return None  # "multipart: expecting a new Part"
        if parts_read == 0:
            continue  # preamble
        if line == nl:
            expect_new = True
            continue
        return None  # "multipart: unexpected line in Next()"


async def _read_form(request: Request) -> tuple[list[tuple[str, str]], list[FilePart]]:
    """r.Form as FormValue builds it (Request.ParseMultipartForm → ParseForm), every pair in Go's order, and the
    multipart file parts:

    - POST/PUT/PATCH with a body of media type application/x-www-form-urlencoded (mime.ParseMediaType: any case,
      parameters ignored even when malformed): the body's pairs, then the query's;
    - media type multipart/form-data with a valid `boundary` parameter, whatever the method (ParseMultipartForm does
      not look at it): the query's pairs, then the parts' values; a body that does not parse adds nothing;
    - anything else (no Content-Type, text/plain, JSON, multipart without a boundary, a DELETE's urlencoded body):
      the query's pairs only, the body unread.
    url.ParseQuery drops pairs holding `;` and pairs with a bad escape, in the query and in the body.
    """
    query = go_parse_query(request.scope.get("query_string", b""))
    content_type = request.headers.get("content-type", "")
    mediatype, params, error = go_parse_media_type(content_type) if content_type else ("", {}, "no type")
    if request.method in ("POST", "PUT", "PATCH") and mediatype == "application/x-www-form-urlencoded":
        body = await request.body()
        pairs = go_parse_query(body) if len(body) <= MAX_URLENCODED_BODY else []
        return pairs + query, []
    if mediatype == "multipart/form-data" and error is None and "boundary" in params:
        parsed = go_read_multipart(await request.body(), params["boundary"])
        if parsed is not None:
            return query + parsed[0], parsed[1]
    return query, []


def create_app(password: str, *, rack_name: str = "acme/production", seed: int = 1,
               clock: Callable[[], dt.datetime] | None = None) -> Starlette:
    """The simulated rack as an ASGI app. `clock` (default: the wall clock) stamps everything it creates."""
    rack = Rack(rack_name, seed, clock)
    received: list[ReceivedRequest] = []

    def record(method: str, path: str, actor: str | None, headers: Headers, params: list[tuple[str, str]],
               matched: RouteDef | None = None, path_vars: dict[str, str] | None = None,
               files: list[FilePart] = ()) -> None:
        first: dict[str, str] = {}
        for key, value in params:
            first.setdefault(key, value)
        route_id = (matched.method, route_pattern(matched)) if matched is not None else None
        received.append(ReceivedRequest(method, path, actor, _header_dict(headers), first, route_id,
                                        dict(path_vars or {}), tuple(params), tuple(files)))

    async def http_endpoint(request: Request) -> Response:
        request_id = rack.request_id()
        method = request.method
        # r.URL.Path: decoded from the raw target once, as Go does (uvicorn's scope["path"] is the same text, but
        # keeps a malformed escape where Go's server refuses the request).
        path = go_request_path(request.scope.get("raw_path") or request.scope["path"].encode())
        accept = request.headers.get("accept", "")
        if path is None:
            record(method, request.scope["path"], None, request.headers, [])
            return Response(b"400 Bad Request", status_code=400, headers={
                "Content-Type": "text/plain; charset=utf-8", "Connection": "close"})
        r, path_vars, mismatch = match_route(method, path, websocket=False)
        if r is None:
            record(method, path, None, request.headers, go_parse_query(request.scope.get("query_string", b"")))
            if mismatch:
                response = Response(b"", status_code=405)
            else:
                response = Response(b"404 page not found\n", status_code=404,
                                    headers={"Content-Type": "text/plain; charset=utf-8",
                                             "X-Content-Type-Options": "nosniff"})
            response.headers["Request-Id"] = request_id
            return response
        files: list[FilePart] = []
        if r.body == "raw":
            form = go_parse_query(request.scope.get("query_string", b""))
        else:
            form, files = await _read_form(request)
        c = Ctx(method=method, path=path, vars=path_vars, form=form, headers=request.headers,
                request_id=request_id, request=request)
        try:
            try:
                c.actor, c.role = authenticate(rack, password, request.headers)
            except RackError:
                record(method, path, None, request.headers, form, r, path_vars, files)
                raise
            record(method, path, c.actor, request.headers, form, r, path_vars, files)
            if (method == "GET" and "r" not in c.role) or (method != "GET" and "w" not in c.role):
                raise RackError(401, "you are unauthorized to access this")
            response = await r.handler(rack, c)
        except RackError as exc:
            response = error_response(exc.status, exc.message, accept)
            if exc.www_authenticate:
                response.headers["WWW-Authenticate"] = 'Basic realm="convox"'
        except Exception as exc:  # stdapi answers any other error with 500 and its text
            logging.getLogger(__name__).exception("simulated rack: %s %s", method, path)
            response = error_response(500, str(exc) or type(exc).__name__, accept)
        response.headers["Request-Id"] = request_id
        return response

    async def ws_endpoint(websocket: WebSocket) -> None:
        request_id = rack.request_id()
        path = go_request_path(websocket.scope.get("raw_path") or websocket.scope["path"].encode())
        r, path_vars, _ = match_route("GET", path, websocket=True) if path is not None else (None, {}, False)
        query = go_parse_query(websocket.scope.get("query_string", b""))
        if r is None:
            record("SOCKET", path if path is not None else websocket.scope["path"], None, websocket.headers, query)
            try:
                await websocket.send_denial_response(Response(
                    b"404 page not found\n" if path is not None else b"400 Bad Request",
                    status_code=404 if path is not None else 400,
                    headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff",
                             "Request-Id": request_id}))
            except RuntimeError:  # a server without the denial-response extension: a plain refusal (403)
                await websocket.close(1008)
            return
        await websocket.accept(headers=[(b"request-id", request_id.encode())])
        c = Ctx(method="GET", path=path, vars=path_vars, form=query, headers=websocket.headers,
                request_id=request_id)
        try:
            try:
                try:
                    c.actor, c.role = authenticate(rack, password, websocket.headers)
                except RackError:
                    record("SOCKET", path, None, websocket.headers, query, r, path_vars)
                    raise
                record("SOCKET", path, c.actor, websocket.headers, query, r, path_vars)
                if "r" not in c.role:
                    raise RackError(401, "you are unauthorized to access this")
                await r.handler(rack, c, websocket)
            except RackError as exc:
                await websocket.send_text(f"ERROR: {exc.message}\n")
            # the empty binary message signals EOF (stdapi router.websocket)
            await websocket.send_bytes(b"")
            await websocket.close(1000)
        except (WebSocketDisconnect, RuntimeError, OSError):
            if websocket.application_state != WebSocketState.DISCONNECTED:
                try:
                    await websocket.close(1000)
                except (RuntimeError, OSError):
                    pass

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    routes = [Route("/{path:path}", http_endpoint, methods=methods), WebSocketRoute("/{path:path}", ws_endpoint)]
    for catch_all in routes:
        # Starlette's `path` convertor is `.*`, which stops at a newline; the Go rack routes any decoded byte.
        catch_all.path_regex = re.compile(catch_all.path_regex.pattern, re.DOTALL)
    app = Starlette(routes=routes)
    app.state.rack = rack
    app.state.requests = received
    app.state.rack_name = rack_name
    return app


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `[::1]:PORT` → (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be HOST:PORT, not {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass  # a host name: uvicorn resolves it
    return host, int(port)


def serve(listen: str, password: str, *, rack_name: str = "acme/production", seed: int = 1,
          certfile: str | None = None, keyfile: str | None = None, log_level: str = "info") -> None:
    """Run the simulated rack with uvicorn until interrupted (`auditkit demo rack --listen HOST:PORT`).
    With `certfile`/`keyfile` it serves HTTPS/WSS, as a real rack does on :5443."""
    import uvicorn

    host, port = parse_listen(listen)
    app = create_app(password, rack_name=rack_name, seed=seed)
    uvicorn.run(app, host=host, port=port, log_level=log_level, ssl_certfile=certfile, ssl_keyfile=keyfile,
                ws_ping_interval=None, proxy_headers=False, server_header=False, date_header=True)
