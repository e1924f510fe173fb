"""Gateway configuration: racks (name → URL and the rack's real credentials), where to listen, the journal, TLS,
trusted proxies, session recording, the keys file, health and metrics. Built from a TOML file, from command-line flags, or both (flags win).

    name = "gw"                       # the journal's chain name (its `source` once mirrored); default: the chain
                                      # the journal holds, else "gateway"; another name than the journal's is refused
    journal = "data/gateway.db"
    listen = "127.0.0.1:5443"
    http = false                      # plain HTTP: only for loopback
    tls_cert = "…"  tls_key = "…"     # else a self-signed pair <name>-tls.crt/.key is made beside the journal
    hmac_key_file = "…"               # else <name>-hmac.key beside the journal, made on first start
    checkpoint_key_file = "…"         # else <name>-checkpoint.key beside the journal (Ed25519, made on first start)
    data_dir = "…"                    # where the TLS pair and the HMAC key go instead of the journal's folder
    keys_file = "…"                   # the users and deploy keys every replica reads; else <journal>-keys.json
                                      # beside the journal (data/gateway-keys.json)
    health_deadline = 1.0             # GET /healthz: seconds the probe write + fsync and the racks' answers may take
    metrics_token_file = "…"          # GET /metrics also accepts `Authorization: Bearer <this file's token>`
    trusted_proxies = ["10.0.0.0/8"]  # X-Forwarded-For is honoured only from these
    record_input = false              # keystrokes are recorded only when true
    recording_cap_bytes = 8388608
    refusal_window = 60.0             # refused credentials: one event per source IP per this many seconds

    [racks."acme/production"]
    url = "https://api.acme.example"  # the rack's API
    password = "…"                    # or password_env = "ACME_PROD_RACK_PASSWORD"

Gateway state lives beside its journal: the HMAC key and the checkpoint signing key are named after the journal's chain, so a journal and its key
travel together and a gateway can never switch keys within one chain. Gateways before this rule kept both in
./data of their working directory; a key or pair found there, and not beside the journal, is refused with a message
saying how to move it (a new key would make new HMACs disagree with older ones; a new pair would change the
fingerprint clients pinned).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

from auditkit.errors import AuditkitError
from auditkit.files import write_private
from auditkit.capture import wire
from auditkit.capture.journal import DEFAULT_NAME, chain_name
from auditkit.model import note
from auditkit.capture.keys import default_keys_path

LEGACY_DATA_DIR = Path("data")  # where gateways kept their state before it moved beside the journal (cwd-relative)


@dataclasses.dataclass(frozen=True)
class Rack:
    name: str
    url: str
    username: str = "convox"
    password: str = dataclasses.field(default="", repr=False)  # never printed

    def __repr__(self) -> str:
        return f"Rack(name={self.name!r}, url={self.url!r})"

    @property
    def authorization(self) -> str:
        """The Authorization header the rack itself expects: its own credentials, never a user's key."""
        return wire.basic_authorization(self.username, self.password)


@dataclasses.dataclass
class GatewayConfig:
    racks: dict[str, Rack]
    journal: Path = Path("data/gateway.db")
    name: str = DEFAULT_NAME  # load() sets it to the chain the journal holds
    listen: str = "127.0.0.1:5443"
    http: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    data_dir: Path | None = None  # None: the journal's folder
    hmac_key_file: Path | None = None
    checkpoint_key_file: Path | None = None
    keys_file: Path | None = None  # None: <journal>-keys.json beside the journal
    health_deadline: float = 1.0
    metrics_token_file: Path | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    record_input: bool = False
    recording_cap_bytes: int = 8 * 1024 * 1024
    upstream_timeout: float = 300.0
    refusal_window: float = 60.0

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit():
            raise AuditkitError(f"--listen wants HOST:PORT, not '{self.listen}'")
        return host.strip("[]"), int(port)

    @property
    def state_dir(self) -> Path:
        """Where the gateway keeps its TLS pair and HMAC key: data_dir when set, else the journal's folder."""
        return self.data_dir if self.data_dir is not None else self.journal.parent

    @property
    def keys_path(self) -> Path:
        """The keys file (users, deploy keys, grants) this gateway reads: keys_file, else beside the journal."""
        return self.keys_file if self.keys_file is not None else default_keys_path(self.journal)

    @property
    def hmac_key_path(self) -> Path:
        return self.hmac_key_file or self.state_dir / f"{self.name}-hmac.key"

    def hmac_key(self, *, create: bool = True) -> bytes:
        """The chain's key for HMACs of secret values, made (mode 0600) on first use; never a new one while an
        older gateway's key for this chain is waiting to be moved beside the journal."""
        path = self.hmac_key_path
        if not path.exists():
            if self.hmac_key_file is None:
                self.refuse_legacy(path, what="the HMAC key", why="the HMACs of new events would not match those of "
                                                                  "older ones")
            if not create:
                raise AuditkitError(f"no HMAC key at {path}: this gateway has not started on this journal yet")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private(path, secrets.token_hex(32) + "\n", exclusive=True)
        try:
            return bytes.fromhex(path.read_text().strip())
        except ValueError:
            raise AuditkitError(f"{path} does not hold an HMAC key (64 hex digits)") from None

    @property
    def checkpoint_key_path(self) -> Path:
        return self.checkpoint_key_file or self.state_dir / f"{self.name}-checkpoint.key"

    def checkpoint_signer(self, *, create: bool = True) -> note.Signer:
        """The chain's Ed25519 key for signing checkpoints (C2SP signed notes, key name = the chain name), made
        (mode 0600) on first use. Its verifier key is what sync agents and auditors pin."""
        path = self.checkpoint_key_path
        if not path.exists():
            if not create:
                raise AuditkitError(f"no checkpoint key at {path}: this gateway has not started on this journal yet")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private(path, str(note.generate_signer(self.name)) + "\n", exclusive=True)
        try:
            signer = note.Signer.parse(path.read_text().strip())
        except note.NoteError as e:
            raise AuditkitError(f"{path} does not hold a checkpoint signing key: {e}") from None
        if signer.name != self.name:
            raise AuditkitError(f"{path} signs as '{signer.name}', not as this journal's chain '{self.name}'")
        return signer

    def refuse_legacy(self, path: Path, *, what: str, why: str, also: tuple[Path, ...] = ()) -> None:
        """Refuse to make `path` (and `also`) when a file of that name waits in ./data, where gateways kept their
        state before it moved beside the journal; say how to move it. Nothing to refuse with data_dir set."""
        if self.data_dir is not None:
            return
        old = LEGACY_DATA_DIR / path.name
        if not old.exists() or old.resolve() == path.resolve():
            return
        moves = " && ".join(f"mv {LEGACY_DATA_DIR / p.name} {p}" for p in (path, *also))
        raise AuditkitError(
            f"{what} of chain '{self.name}' is at {old} (where gateways before this version kept it, under the "
            f"working directory), not beside the journal {self.journal}; it is not made anew, since {why}. "
            f"Move it beside the journal ({moves}) or keep it where it is with --data-dir "
            f"{LEGACY_DATA_DIR.resolve()}")

    def is_trusted_proxy(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)


def parse_rack_flag(text: str) -> Rack:
    """NAME=URL, where URL may carry the rack's credentials: acme/production=https://convox:PW@api.example."""
    name, sep, url = text.partition("=")
    if not sep or not name or not url:
        raise AuditkitError(f"--rack wants NAME=URL, not '{_without_password(text)}'")
    return _rack(name, {"url": url})


def _rack(name: str, data: dict[str, Any]) -> Rack:
    url = data.get("url")
    if not isinstance(url, str):
        raise AuditkitError(f"rack '{name}' needs a url")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AuditkitError(f"rack '{name}': '{_without_password(url)}' is not an http(s) URL")
    username = urllib.parse.unquote(parts.username or data.get("username") or "convox")
    password = urllib.parse.unquote(parts.password or "") or data.get("password") or ""
    if not password and data.get("password_env"):
        password = os.environ.get(data["password_env"], "")
        if not password:
            raise AuditkitError(f"rack '{name}': environment variable {data['password_env']} is not set")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return Rack(name=name, url=clean, username=username, password=password)


def _without_password(text: str) -> str:
    """Text safe for an error message: any URL password in it replaced by ****."""
    try:
        password = urllib.parse.urlsplit(text.partition("=")[2] or text).password
    except ValueError:
        return "<unparseable>"
    return text.replace(password, "****") if password else text


def load(path: Path | None = None, **overrides: Any) -> GatewayConfig:
    """Read a TOML config (if given) and apply command-line overrides (None values are ignored)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise AuditkitError(f"cannot read gateway config {path}: {e}") from None
    racks = {name: _rack(name, spec) for name, spec in (data.pop("racks", None) or {}).items()}
    for rack in overrides.pop("racks", None) or []:
        racks[rack.name] = rack
    values = {k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(GatewayConfig)}}
    unknown = set(data) - set(values)
    if unknown:
        raise AuditkitError(f"unknown gateway config key(s): {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("journal", "tls_cert", "tls_key", "data_dir", "hmac_key_file", "checkpoint_key_file", "keys_file",
                "metrics_token_file"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    # The chain name is the journal's own: read (never created) here, so a different --name is refused before the
    # gateway makes or reads any key.
    values["name"] = chain_name(values.get("journal", GatewayConfig.journal), values.get("name"))
    if "trusted_proxies" in values:
        try:
            values["trusted_proxies"] = tuple(ipaddress.ip_network(p, strict=False)
                                              for p in values["trusted_proxies"])
        except ValueError as e:
            raise AuditkitError(f"trusted_proxies: {e}") from None
    return GatewayConfig(racks=racks, **values)
