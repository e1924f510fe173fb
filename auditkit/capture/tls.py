"""TLS for the gateway: the configured certificate, or a self-signed one made beside the journal (or in --data-dir)
on first start, named after the journal's chain; the one maker of self-signed certificates (make_certificate),
which the demo and the tests use too; and the one form of a certificate's SHA-256 fingerprint, which `gateway serve`
prints and `sync add --fingerprint` pins (fingerprint_of, parse_fingerprint).

The Convox CLI does not verify the rack's certificate (stdsdk sets InsecureSkipVerify), so a self-signed
certificate works for it; sync pins the printed fingerprint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auditkit.errors import AuditkitError
from auditkit.files import write_private


def make_certificate(names: list[str], *, common_name: str | None = None, not_before: dt.datetime | None = None,
                     not_after: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed certificate for `names` (host names, IP addresses: its subject alternative names, in order,
    duplicates dropped) on a new P-256 key, as PEM (certificate, PKCS#8 key). The subject's common name is
    `common_name`, else the first name; valid from `not_before` (default: five minutes ago) to `not_after`
    (default: 825 days from now)."""
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives: list[x509.GeneralName] = []
    for host in dict.fromkeys(names):
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternatives.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or names[0])])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def self_signed_paths(state_dir: Path, name: str) -> tuple[Path, Path]:
    """Where chain `name`'s self-signed (cert, key) live."""
    return state_dir / f"{name}-tls.crt", state_dir / f"{name}-tls.key"


def ensure_self_signed(state_dir: Path, name: str, hosts: list[str]) -> tuple[Path, Path]:
    """(cert, key) paths under state_dir, creating a self-signed pair for `hosts`, localhost and 127.0.0.1 (key
    mode 0600) if none exists yet."""
    cert_path, key_path = self_signed_paths(state_dir, name)
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    state_dir.mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate(hosts + ["localhost", "127.0.0.1"], common_name=f"auditkit gateway {name}")
    write_private(key_path, key)
    cert_path.write_bytes(cert)
    return cert_path, key_path


def fingerprint(cert_path: Path) -> str:
    """The SHA-256 fingerprint of the PEM certificate at `cert_path`, as `AB:CD:…`."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return fingerprint_of(cert.public_bytes(serialization.Encoding.DER))


def fingerprint_of(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, as `AB:CD:…` (32 upper-case hex pairs)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


_FINGERPRINT_RE = re.compile(r"(?:sha-?256[:=]?)?([0-9a-f]{2}(?::?[0-9a-f]{2}){31})", re.IGNORECASE)


def parse_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint given as `AB:CD:…` (what `gateway serve` and `openssl x509 -fingerprint -sha256` print,
    with an optional `SHA256:` / `sha256 Fingerprint=` prefix) or as 64 plain hex digits, in the form
    fingerprint_of gives; AuditkitError for anything else."""
    cleaned = text.strip().replace(" Fingerprint=", ":").replace(" fingerprint=", ":")
    match = _FINGERPRINT_RE.fullmatch(cleaned)
    if match is None:
        raise AuditkitError(f"{text!r} is not a SHA-256 certificate fingerprint: give 64 hex digits, plain or as "
                            f"AB:CD:… pairs (what `auditkit gateway serve` prints)")
    digits = match.group(1).replace(":", "").upper()
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))
