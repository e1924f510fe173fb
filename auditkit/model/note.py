"""Signed notes and checkpoints: C2SP signed-note (Ed25519) and C2SP tlog-checkpoint, byte for byte.

A note is UTF-8 text of one or more lines, each ending in a newline, then a blank line, then one signature line per
signer: `— <key name> <base64(key ID ‖ signature)>`. An Ed25519 key ID is the first four bytes of
SHA-256(key name ‖ "\\n" ‖ 0x01 ‖ public key); a verifier key is written `<name>+<hex key ID>+<base64(0x01 ‖ public
key)>` and a signer key `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`, as golang.org/x/mod/sumdb/note
writes them, so any tool of that ecosystem (a witness, `tlog` clients) reads what auditkit signs.

A checkpoint is a note whose text is `<origin>\\n<tree size>\\n<base64 root hash>\\n` plus optional extension lines.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption

__all__ = ["NoteError", "Signer", "Verifier", "generate_signer", "key_id", "sign", "open_note", "Checkpoint",
           "parse_checkpoint"]

ED25519 = 0x01
_DASH = "\u2014 "
_NAME_RE = re.compile(r"^[^\s+]+$")  # a key name: no whitespace, no '+'
_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed or does not verify; the message says what."""


def _b64decode(text: str, what: str) -> bytes:
    if not _B64_RE.match(text) or len(text) % 4:
        raise NoteError(f"{what} is not standard padded base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not standard padded base64") from None


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or not _NAME_RE.fullmatch(name) or not name.isprintable():
        raise NoteError(f"key name {name!r} must be non-empty, printable, without spaces or '+'")


@dataclasses.dataclass(frozen=True)
class Verifier:
    name: str
    public: bytes  # 32 bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public)

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([ED25519]) + self.public).decode()}"

    @classmethod
    def parse(cls, text: str) -> "Verifier":
        name, sep, rest = text.strip().partition("+")
        id_hex, sep2, blob = rest.partition("+")
        if not sep or not sep2:
            raise NoteError("a verifier key is <name>+<hex key ID>+<base64 key>")
        _check_name(name)
        data = _b64decode(blob, "the verifier key")
        if len(data) != 33 or data[0] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
        verifier = cls(name, data[1:])
        if not re.fullmatch(r"[0-9a-f]{8}", id_hex) or bytes.fromhex(id_hex) != verifier.key_id:
            raise NoteError(f"the verifier key's ID {id_hex} does not match its name and key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclasses.dataclass(frozen=True, repr=False)
class Signer:
    name: str
    seed: bytes  # the 32-byte Ed25519 private key

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r})"  # never the key

    @property
    def verifier(self) -> Verifier:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes(Encoding.Raw,
                                                                                           PublicFormat.Raw)
        return Verifier(self.name, public)

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)

    def __str__(self) -> str:
        blob = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{blob}"

    @classmethod
    def parse(cls, text: str) -> "Signer":
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
        _, _, name, id_hex, blob = parts
        _check_name(name)
        data = _b64decode(blob, "the signer key")
        if len(data) != 33 or data[0] != ED25519:
            raise NoteError("the signer key is not an Ed25519 key (type 0x01, 32 bytes)")
        signer = cls(name, data[1:])
        if id_hex != signer.verifier.key_id.hex():
            raise NoteError("the signer key's ID does not match its name and key")
        return signer


def generate_signer(name: str) -> Signer:
    _check_name(name)
    seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return Signer(name, seed)


def _check_text(text: str) -> None:
    if not text or not text.endswith("\n"):
        raise NoteError("a note's text must be non-empty and end with a newline")
    if "\n\n" in text or text.startswith("\n"):
        raise NoteError("a note's text has no blank line")
    if any(ord(c) < 0x20 and c != "\n" or c == "\x7f" for c in text):
        raise NoteError("a note's text has a control character")


def sign(text: str, *signers: Signer) -> str:
    """The signed note: `text`, a blank line, one signature line per signer."""
    _check_text(text)
    message = text.encode("utf-8")
    lines = [f"{_DASH}{s.name} {base64.b64encode(s.verifier.key_id + s.sign(message)).decode()}\n" for s in signers]
    return text + "\n" + "".join(lines)


def open_note(note: str | bytes, verifiers: list[Verifier] | Verifier) -> tuple[str, list[Verifier]]:
    """(text, the verifiers whose signatures verified). Raises NoteError for a malformed note, a signature by a
    known key that does not verify, or a note no given key signed. Signatures by unknown keys are ignored."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("the note is not UTF-8") from None
    known = [verifiers] if isinstance(verifiers, Verifier) else list(verifiers)
    text, sep, block = note.rpartition("\n\n")
    if not sep:
        raise NoteError("the note has no signature block (a blank line, then signature lines)")
    text += "\n"
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("the note's last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    message = text.encode("utf-8")
    good: list[Verifier] = []
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError("a signature line must start with '— '")
        name, space, blob = line[len(_DASH):].partition(" ")
        if not space:
            raise NoteError("a signature line is '— <name> <base64>'")
        _check_name(name)
        data = _b64decode(blob, f"the signature of {name}")
        if len(data) < 5:
            raise NoteError(f"the signature of {name} is too short")
        for verifier in known:
            if verifier.name == name and verifier.key_id == data[:4]:
                if not verifier.verify(message, data[4:]):
                    raise NoteError(f"the signature of {name} ({data[:4].hex()}) does not verify")
                if verifier not in good:
                    good.append(verifier)
    if not good:
        names = ", ".join(str(v).split("+")[0] for v in known) or "no key"
        raise NoteError(f"the note is not signed by any expected key ({names})")
    return text, good


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the origin (the log's name), the tree size and its root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.origin or "\n" in self.origin or not self.origin.isprintable():
            raise NoteError("a checkpoint's origin is one printable, non-empty line")
        if self.size < 0 or len(self.root) != 32:
            raise NoteError("a checkpoint needs a size ≥ 0 and a 32-byte root")
        body = f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
        return body + "".join(f"{line}\n" for line in self.extensions)

    def sign(self, *signers: Signer) -> str:
        return sign(self.text(), *signers)


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint in a note's text (as open_note returns it)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint is at least three lines: origin, tree size, root")
    origin, size, root, *extensions = lines[:-1]
    if not origin:
        raise NoteError("the checkpoint's origin is empty")
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size):
        raise NoteError(f"the checkpoint's tree size {size!r} is not a decimal number")
    digest = _b64decode(root, "the checkpoint's root")
    if len(digest) != 32:
        raise NoteError("the checkpoint's root is not 32 bytes")
    if any(not line for line in extensions):
        raise NoteError("a checkpoint extension line is empty")
    return Checkpoint(origin, int(size), digest, tuple(extensions))
