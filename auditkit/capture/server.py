"""Running the gateway: its state beside the journal (HMAC key, TLS pair: configured or self-signed), uvicorn, and a
startup line that says what it serves.

uvicorn's access log is off: query strings can carry parameters the rack reads as form fields, so the gateway never
logs request lines. Refusals and journal errors are logged without values.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

import click
import uvicorn

from auditkit.errors import AuditkitError
from auditkit.capture.proxy import create_app
from auditkit.capture.config import GatewayConfig
from auditkit.capture import keys
from auditkit.capture.journal import Journal
from auditkit.capture.tls import ensure_self_signed, fingerprint, self_signed_paths


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_keys(config: GatewayConfig, journal: Journal) -> None:
    """Refuse to start on a keys file that cannot be used, or on a journal whose own keys (kept inside journals
    before the keys file) are not in it yet: every one of those users would be refused."""
    keys.read_rows(config.keys_path)  # raises KeysFileError with what to do
    left = keys.unmigrated(journal.reader(), config.keys_path)
    if left:
        journal.close()
        raise AuditkitError(
            f"journal {config.journal} keeps {len(left)} user(s) and key(s) inside it, which this gateway reads from "
            f"the keys file {config.keys_path} instead; copy them there first: auditkit gateway keys migrate "
            f"--journal {config.journal} --keys {config.keys_path}")


def serve(config: GatewayConfig) -> None:
    if not config.racks:
        raise AuditkitError("no racks configured: pass --rack NAME=URL or a config with [racks.NAME]")
    host, port = config.host_port
    if config.http and not _is_loopback(host):
        raise AuditkitError(f"plain HTTP is only allowed on loopback, not on {host}; drop --http to serve HTTPS")
    # State beside the journal (config.state_dir), checked before anything is made: the chain's HMAC key, then the
    # TLS pair; either refuses when an older gateway's copy waits in ./data to be moved.
    config.hmac_key()
    signer = config.checkpoint_signer()
    tls: dict[str, str] = {}
    if not config.http:
        cert, key = config.tls_cert, config.tls_key
        if cert is None or key is None:
            cert, key = self_signed_paths(config.state_dir, config.name)
            if not (cert.exists() and key.exists()):
                config.refuse_legacy(cert, what="the TLS certificate", also=(key,),
                                     why="a new certificate would change the fingerprint its clients pinned")
            cert, key = ensure_self_signed(config.state_dir, config.name, [host])
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    journal = Journal(config.journal, config.name)
    check_keys(config, journal)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # httpx logs every request line at INFO, query string included: the gateway never logs request lines.
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    scheme = "http" if config.http else "https"
    click.echo(f"auditkit gateway '{journal.source}' on {scheme}://{host}:{port} → "
               f"{', '.join(sorted(config.racks))}; journal {config.journal}; keys {config.keys_path}", err=True)
    pin = ""
    if tls:
        cert_path = Path(tls["ssl_certfile"])
        click.echo(f"TLS certificate {cert_path} (SHA-256 {fingerprint(cert_path)})", err=True)
        pin = f" --fingerprint {fingerprint(cert_path)}"
    click.echo(f"checkpoint key {signer.verifier}", err=True)
    click.echo(f"sync agents pin both: auditkit sync add {scheme}://{'HOST' if host in ('0.0.0.0', '::') else host}:"
               f"{port} --key-file AUDITOR_KEY{pin} --checkpoint-key {signer.verifier}", err=True)
    if journal.recovered:
        click.echo(f"recovered {len(journal.recovered)} write(s) left without an outcome; recorded as unknown",
                   err=True)
    sys.stderr.flush()
    app = create_app(config, journal)
    # proxy_headers=False: uvicorn would otherwise take the client address from X-Forwarded-For on connections from
    # 127.0.0.1; the gateway honours that header itself, and only from config.trusted_proxies.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning", ws="websockets-sansio"
                if _has_sansio() else "websockets", lifespan="on", proxy_headers=False,
                **tls)  # type: ignore[arg-type]


def _has_sansio() -> bool:
    try:
        import uvicorn.protocols.websockets.websockets_sansio_impl  # noqa: F401
    except ImportError:
        return False
    return True
