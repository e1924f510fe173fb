"""What sync checks against the gateway's signed checkpoints (docs/feed.md): each sync fetches the checkpoint,
verifies its signature with the source's pinned key and a consistency proof from the last checkpoint the mirror
stored, and every page is proven part of that signed tree before it is committed. A fork, a rollback or a page that
is not in the signed tree stops sync with both tree sizes and both roots named.

A page is proven by the mirror's own tree: a CompactRange of the mirrored chain (store.compact_range) takes each
page's leaves on the fetch thread, and the root it gives for size k (the page's last seq) must be consistent with
the signed root of size S (`/proof/consistency?from=k&to=S`, or equal to it when k = S).
"""

from __future__ import annotations

import base64
import dataclasses
import sqlite3
from typing import TYPE_CHECKING, Any, Sequence

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.model import merkle, note
from auditkit.store.trees import signed_at as signed_at_of

if TYPE_CHECKING:  # pragma: no cover
    from auditkit.mirror.sync import Feed

MAX_NOTE = 16 * 1024  # a checkpoint note is a few hundred bytes
MAX_PROOF = 2 * 64  # hashes: a consistency proof has at most about 2·log2(size) of them


class CheckpointError(AuditkitError):
    """The gateway's checkpoint or a proof does not verify: a forged or forked history, a rollback, a hidden tail."""


@dataclasses.dataclass(frozen=True)
class Signed:
    """A checkpoint fetched from the feed whose signature verified with the pinned key."""

    note: str
    key: str
    size: int
    root: bytes
    signed_at: str | None


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _head(size: int, root: bytes, where: str) -> str:
    return f"size {size} (root {b64(root)}, {where})"


def verifier(name: str, key: str | None) -> note.Verifier:
    if not key:
        raise CheckpointError(f"{name}: no checkpoint key is pinned for this source: run `auditkit sync add {name} "
                              f"URL …` again (it learns the key from the gateway and prints it, or takes "
                              f"--checkpoint-key)")
    try:
        return note.Verifier.parse(key)
    except note.NoteError as e:
        raise CheckpointError(f"{name}: the pinned checkpoint key is not a verifier key: {e}") from None


def open_checkpoint(name: str, key: str, body: bytes) -> Signed:
    """The checkpoint in `body` (a signed note), verified with `key`, whose origin must be the chain `name`."""
    if len(body) > MAX_NOTE:
        raise CheckpointError(f"{name}: the gateway's checkpoint is {len(body):,} bytes, not a checkpoint")
    try:
        text, _ = note.open_note(body, verifier(name, key))
        checkpoint = note.parse_checkpoint(text)
    except note.NoteError as e:
        raise CheckpointError(f"{name}: the gateway's checkpoint does not verify with the pinned key: {e}; "
                              f"nothing was committed") from None
    if checkpoint.origin != name:
        raise CheckpointError(f"{name}: the gateway's checkpoint is of log {checkpoint.origin!r}, not {name!r}")
    return Signed(body.decode("utf-8"), key, checkpoint.size, checkpoint.root, signed_at_of(checkpoint))


def _hashes(name: str, body: Any, what: str) -> list[bytes]:
    hashes = body.get("hashes") if isinstance(body, dict) else None
    if not isinstance(hashes, list) or len(hashes) > MAX_PROOF or not all(isinstance(h, str) for h in hashes):
        raise CheckpointError(f"{name}: malformed {what}: no list of base64 hashes")
    out = []
    for text in hashes:
        try:
            digest = base64.b64decode(text, validate=True)
        except ValueError:
            digest = b""
        if len(digest) != merkle.HASH_SIZE:
            raise CheckpointError(f"{name}: malformed {what}: a hash that is not 32 bytes of base64")
        out.append(digest)
    return out


def consistency_proof(feed: "Feed", old: int, new: int) -> list[bytes]:
    response = feed.get("/audit/v1/proof/consistency", {"from": old, "to": new})
    try:
        body = response.json()
    except ValueError:
        body = None
    return _hashes(feed.name, body, f"consistency proof from {old} to {new}")


def served_key(feed: "Feed") -> str:
    """The verifier key the gateway serves (GET /audit/v1/key), checked to be one, named after the chain."""
    text = feed.get("/audit/v1/key").content[:MAX_NOTE].decode("utf-8", "replace").strip()
    if not text:
        raise CheckpointError(f"{feed.name}: the gateway serves no checkpoint key (GET /audit/v1/key is empty)")
    key = verifier(feed.name, text)
    if key.name != feed.name:
        raise CheckpointError(f"{feed.name}: the gateway's checkpoint key is named {key.name!r}, not after its "
                              f"chain {feed.name!r}")
    return str(key)


def fetch(feed: "Feed", key: str | None) -> Signed:
    """The gateway's current checkpoint, its signature verified with `key` (the source's pinned key)."""
    verifier(feed.name, key)
    return open_checkpoint(feed.name, key or "", feed.get("/audit/v1/checkpoint").content)


class TruncatedMirror(CheckpointError):
    """The mirror holds fewer events of a chain than a checkpoint it stored signs: events were removed from it."""


def check_against_mirror(conn: sqlite3.Connection, feed: "Feed", signed: Signed, *, refetch: bool = False) -> None:
    """Raise CheckpointError unless `signed` extends the newest checkpoint this mirror stored for the source
    (a consistency proof from it) and does not sign less than the mirror already holds. A mirror that holds less
    than its own newest stored checkpoint lost events after they were mirrored: TruncatedMirror, unless `refetch`
    (sync fetches them again, and says so on the local chain)."""
    name = feed.name
    served = _head(signed.size, signed.root, f"signed at {signed.signed_at or 'an unknown time'}, served now")
    last = store.latest_checkpoint(conn, name)
    held_now = store.chain_head(conn, name).last_seq
    if last is not None and held_now < last.size and not refetch:
        raise TruncatedMirror(
            f"{name}: this mirror holds {held_now:,} events of the chain, but it stored a checkpoint signing "
            f"{last.size:,} (signed at {last.signed_at or 'an unknown time'}): events were removed from the mirror "
            f"after they were mirrored. Nothing was fetched; run `auditkit verify` to see what is missing, and "
            f"`auditkit sync {name} --refetch` to fetch them again (recorded on the mirror's local chain)")
    if last is not None:
        stored = _head(last.size, last.root, f"signed at {last.signed_at or 'an unknown time'}, stored by this mirror")
        if signed.size < last.size:
            raise CheckpointError(f"{name}: the gateway rolled back: its checkpoint signs {served}, but this mirror "
                                  f"stored {stored}; nothing was committed")
        if signed.size == last.size and signed.root != last.root:
            raise CheckpointError(f"{name}: a forked history: the gateway's checkpoint signs {served}, but this "
                                  f"mirror stored {stored}; nothing was committed")
        if signed.size > last.size:
            proof = consistency_proof(feed, last.size, signed.size)
            try:
                merkle.verify_consistency(last.size, signed.size, last.root, signed.root, proof)
            except merkle.ProofError as e:
                raise CheckpointError(f"{name}: a forked history: the gateway's checkpoint {served} does not extend "
                                      f"{stored} ({e}); nothing was committed") from None
    held = store.chain_head(conn, name).last_seq
    if held > signed.size:
        mine = _head(held, store.tree_root(conn, name, held), "mirrored")
        raise CheckpointError(f"{name}: the gateway rolled back: its checkpoint signs {served}, but this mirror "
                              f"already holds {mine}; nothing was committed")
    if held == signed.size and store.tree_root(conn, name, held) != signed.root:
        mine = _head(held, store.tree_root(conn, name, held), "mirrored")
        raise CheckpointError(f"{name}: a forked history: the gateway's checkpoint signs {served}, but the mirrored "
                              f"chain is {mine}; nothing was committed")


def check_page(feed: "Feed", tree: merkle.CompactRange, hashes: Sequence[str], signed: Signed) -> None:
    """Extend `tree` (the mirrored chain's compact range) by a page's event hashes and prove the result a prefix of
    the signed tree; CheckpointError, naming both heads, when it is not. Runs on the fetch thread."""
    for digest in hashes:
        tree.append(merkle.leaf_hash(bytes.fromhex(digest)))
    size, root = tree.size, tree.root()
    when = f"signed at {signed.signed_at or 'an unknown time'}"
    if size > signed.size:
        raise CheckpointError(f"{feed.name}: the feed served events up to seq {size}, beyond its checkpoint's size "
                              f"{signed.size}; nothing of this page was committed")
    proof = consistency_proof(feed, size, signed.size) if size < signed.size else []
    try:
        merkle.verify_consistency(size, signed.size, root, signed.root, proof)
    except merkle.ProofError as e:
        raise CheckpointError(
            f"{feed.name}: the page ending at seq {size} is not part of the signed tree: the mirrored chain would be "
            f"{_head(size, root, 'computed from the pages')}, the gateway signed "
            f"{_head(signed.size, signed.root, when)} ({e}); nothing of this "
            f"page was committed") from None
