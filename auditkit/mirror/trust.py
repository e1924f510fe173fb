"""How sync trusts a gateway: a source's pins (its TLS certificate's SHA-256 fingerprint or a CA file, or an explicit
`--insecure`; its checkpoint key), kept in sync_state, and the TLS context that enforces them during the handshake.

The fingerprint is checked inside the handshake (the context's socket class checks the peer certificate as soon as
the handshake completes and closes the socket on a mismatch), so a gateway that is not the pinned one never receives
a byte of a request, and so never the feed key. Without a pin, a CA file or `--insecure`, the system's trust store
verifies the certificate and its host name, as any HTTPS client does.

Plain http:// is accepted only to a loopback address (the gateway serves `--http` only there) and, elsewhere, only
with `--insecure`, which warns on every sync.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import sqlite3
import ssl
from pathlib import Path
from typing import Any

import httpx

from auditkit import store
from auditkit.capture.tls import fingerprint_of
from auditkit.errors import AuditkitError


class TrustError(AuditkitError):
    """A gateway that is not the pinned one, pins that contradict each other, or a URL they cannot protect."""


@dataclasses.dataclass(frozen=True)
class Pins:
    """What a source trusts: `fingerprint` (as capture.tls.fingerprint_of gives it) and/or `ca_file`, or
    `insecure`; and the gateway's checkpoint verifier key (`checkpoint_key`, C2SP `<name>+<id>+<key>`)."""

    fingerprint: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    checkpoint_key: str | None = None

    def describe(self, url: str) -> str:
        """How the TLS of `url` is checked, in a few words."""
        if not url.startswith("https://"):
            return "plain HTTP, not encrypted" + (" (--insecure)" if self.insecure else " (loopback)")
        if self.insecure:
            return "TLS NOT verified (--insecure)"
        parts = [f"certificate SHA-256 {self.fingerprint}"] if self.fingerprint else []
        if self.ca_file:
            parts.append(f"CA file {self.ca_file}")
        return "TLS pinned to " + " and ".join(parts) if parts else "TLS verified by the system's trust store"


class CertificateMismatch(ssl.SSLError):
    """The peer's certificate is not the pinned one (raised inside the handshake, before any request byte)."""

    def __init__(self, expected: str, presented: str):
        super().__init__(f"certificate SHA-256 {presented} is not the pinned {expected}")
        self.expected, self.presented = expected, presented


class _PinnedSocket(ssl.SSLSocket):
    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        expected = getattr(self.context, "pin", None)
        der = self.getpeercert(binary_form=True)
        presented = fingerprint_of(der) if der else "(no certificate)"
        if expected is not None and presented != expected:
            raise CertificateMismatch(expected, presented)  # SSLSocket closes the socket on the way out


class _PinnedContext(ssl.SSLContext):
    sslsocket_class = _PinnedSocket
    pin: str | None = None


def ssl_context(pins: Pins) -> ssl.SSLContext:
    """The client context that enforces `pins` (TLS 1.2 or later)."""
    context = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if pins.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif pins.ca_file:
        context.load_verify_locations(cafile=pins.ca_file)  # CERT_REQUIRED and host names checked: the defaults
    elif pins.fingerprint:
        context.check_hostname = False  # the pin names the certificate itself; a self-signed one has no CA
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_default_certs()
    if pins.fingerprint and not pins.insecure:
        context.pin = pins.fingerprint
    return context


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, pins: Pins) -> None:
    """Refuse pins that contradict each other or cannot protect `url` (TrustError)."""
    parsed = httpx.URL(url)
    if pins.insecure and (pins.fingerprint or pins.ca_file):
        raise TrustError("--insecure turns certificate checks off: give it alone, or drop it and keep "
                         "--fingerprint / --ca-file")
    if parsed.scheme == "http":
        if pins.fingerprint or pins.ca_file:
            raise TrustError(f"{url} is plain HTTP: there is no certificate to pin; use the gateway's https:// URL")
        if not is_loopback(parsed.host) and not pins.insecure:
            raise TrustError(f"{url} is plain HTTP to another machine: the feed key and every event would cross the "
                             f"network in clear; use the gateway's https:// URL with --fingerprint (or --ca-file), "
                             f"or accept the risk explicitly with --insecure")
    if pins.ca_file and not Path(pins.ca_file).is_file():
        raise TrustError(f"no CA file at {pins.ca_file}")


def warning(url: str, pins: Pins) -> str | None:
    """The warning an unprotected source earns on every sync, if any."""
    if pins.insecure and url.startswith("https://"):
        return (f"warning: TLS to {url} is not verified (--insecure): anyone on the path can read the feed key and "
                f"the events; only the signed checkpoints still catch an edited history")
    if pins.insecure:
        return f"warning: {url} is plain HTTP to another machine (--insecure): the feed key crosses it in clear"
    return None


def presented_fingerprint(url: str, timeout: float = 10.0) -> str | None:
    """The SHA-256 fingerprint of the certificate the server at `url` presents, read in a handshake of its own
    (nothing is sent after it), or None when it cannot be read."""
    parsed = httpx.URL(url)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((parsed.host, parsed.port or 443), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=parsed.host) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return fingerprint_of(der) if der else None


def tls_refusal(error: BaseException, name: str, url: str) -> TrustError | None:
    """The TrustError that a failed connection to `url` means, if it failed on the certificate (a mismatch with the
    pin, or a certificate the trust store or CA file does not vouch for); None for any other transport error."""
    cause: Any = error
    while cause is not None:
        if isinstance(cause, CertificateMismatch):
            return TrustError(
                f"{name}: the gateway at {url} presented a certificate with SHA-256 {cause.presented}, not the pinned "
                f"{cause.expected}; nothing was sent to it (not the feed key). If the gateway's certificate changed on "
                f"purpose, compare with what `auditkit gateway fingerprint` prints on the gateway's machine and run "
                f"`auditkit sync add {url} --fingerprint NEW` again")
        if isinstance(cause, ssl.SSLCertVerificationError):
            presented = presented_fingerprint(url)
            seen = f"; it presents SHA-256 {presented}" if presented else ""
            return TrustError(
                f"{name}: the certificate of {url} is not trusted ({cause.verify_message}){seen}. Nothing was sent. "
                f"Pin the gateway's own certificate with --fingerprint (the SHA-256 `auditkit gateway serve` prints; "
                f"compare it, do not copy it from here) or give its CA with --ca-file")
        cause = cause.__cause__ or cause.__context__
    return None


# --- the pins in sync_state (columns of migration v6: tls_fingerprint, ca_file, insecure, checkpoint_key) -----------

def save(conn: sqlite3.Connection, source: str, url: str, pins: Pins) -> None:
    """Register `source` at `url` with `pins`, in one transaction (re-adding a source re-pins it)."""
    with store.transaction(conn):
        store.set_source_url(conn, source, url)
        conn.execute("UPDATE sync_state SET tls_fingerprint = ?, ca_file = ?, insecure = ?, checkpoint_key = ? "
                     "WHERE source = ?", (pins.fingerprint, pins.ca_file, int(pins.insecure), pins.checkpoint_key,
                                          source))


def load(conn: sqlite3.Connection, source: str) -> Pins:
    row = conn.execute("SELECT tls_fingerprint, ca_file, insecure, checkpoint_key FROM sync_state WHERE source = ?",
                       (source,)).fetchone()
    if row is None:
        return Pins()
    return Pins(row["tls_fingerprint"], row["ca_file"], bool(row["insecure"]), row["checkpoint_key"])
