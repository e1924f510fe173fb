"""The verifiable export of a share link: one zip holding exactly the link's events, each with its inclusion proof
against a signed checkpoint of its chain, those checkpoints and keys, the recordings in scope, per-chain counts,
and a manifest of every member signed with the mirror's own key. Built here for `auditkit share export` and for the
share page's download; `auditkit verify-export` (export_check.py) checks it offline.

Members (docs/sharing.md, "The verifiable export", describes each field):

    scope.json         the link (id, filter, range, expiry, note, created by/at), the scope filter, the export time
    events.jsonl       the link's events, newest first, each line as the share page's JSON download writes it
    proofs.jsonl       line i: the inclusion proof of event i (RFC 9162) in the tree of its chain's checkpoint
    checkpoints.json   per chain, the newest stored signed checkpoint covering its events (the note as signed)
    keys.json          the verifier key each checkpoint was checked with when stored, and the mirror's key
    chains.json        per chain: first and last seq, count, every seq, the checkpoint's tree size
    recordings.json    the recordings in scope: session id, sha256, size, the events naming them
    recordings/<sha256>.cast   each recording (named by its digest: a hostile session id never becomes a path)
    manifest.json      sha256 and size of every member above
    manifest.note      a C2SP signed note, by the mirror's key, over the sha256 of manifest.json

Each chain's checkpoint is the newest the mirror stored for it that covers the chain's newest event in scope (sync
stores every gateway checkpoint it verified; the store signs the mirror's own `local` chain with the mirror's key
at every append); without one the export is refused, naming the chain.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import sqlite3
import zipfile
from typing import Any, BinaryIO, Iterable

from auditkit import store
from auditkit.errors import ShareError
from auditkit.model import export, note
from auditkit.model.events import format_timestamp
from auditkit.share import links as sharing

FORMAT = "auditkit-export/1"
SCOPE, EVENTS, PROOFS = "scope.json", "events.jsonl", "proofs.jsonl"
CHECKPOINTS, KEYS, CHAINS, RECORDINGS = "checkpoints.json", "keys.json", "chains.json", "recordings.json"
RECORDING_DIR = "recordings/"
MANIFEST, MANIFEST_NOTE = "manifest.json", "manifest.note"
MEMBERS = (SCOPE, EVENTS, PROOFS, CHECKPOINTS, KEYS, CHAINS, RECORDINGS)
MANIFEST_SHA_PREFIX = "manifest.json sha256:"
LOCAL_SOURCE = store.LOCAL_SOURCE  # the mirror's own chain, signed by the mirror's key


class ExportRefused(ShareError):
    """An export that cannot be made verifiable (a chain without a signed checkpoint covering its events)."""


@dataclasses.dataclass(frozen=True)
class ChainProof:
    """What one chain of an export is proven against."""

    source: str
    size: int
    root: bytes
    signed_at: str | None
    key: str
    note: str

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode()


@dataclasses.dataclass(frozen=True)
class ExportSummary:
    link_id: str
    exported_at: str
    events: int
    chains: dict[str, tuple[int, int, int]]  # source → (first seq, last seq, count)
    recordings: int
    manifest_sha256: str


def mirror_signer(conn: sqlite3.Connection) -> note.Signer:
    """The mirror's own checkpoint key (store.local_signer, which signs the `local` chain's checkpoints)."""
    local_signer = getattr(store, "local_signer", None)
    if local_signer is None:  # the store of this checkout predates the mirror's key
        raise ExportRefused("this mirror has no signing key of its own (store.local_signer), so its exports "
                            "cannot be signed")
    return local_signer(conn)


def manifest_note_text(link_id: str, exported_at: str, manifest_sha256: str) -> str:
    """The text the mirror signs: the format, the link, the export time and the manifest's digest."""
    return f"{FORMAT}\n{link_id}\n{exported_at}\n{MANIFEST_SHA_PREFIX}{manifest_sha256}\n"


# --- which checkpoint proves a chain --------------------------------------------------------------------------------

def proving_checkpoint(conn: sqlite3.Connection, source: str, last_seq: int) -> ChainProof | None:
    """The newest stored checkpoint of `source` that covers seq `last_seq` and whose tree the mirror holds (a
    checkpoint stored ahead of the mirrored events cannot prove anything yet); None when there is none."""
    held = store.tree_size(conn, source)
    usable = [c for c in store.checkpoints(conn, source) if last_seq <= c.size <= held]
    if not usable:
        return None
    stored = max(usable, key=lambda c: (c.size, c.stored_at))
    return ChainProof(source, stored.size, stored.root, stored.signed_at, stored.key, stored.note)


def page_checkpoints(conn: sqlite3.Connection, events: Iterable[Any]) -> list[dict[str, Any]]:
    """For the share page: per chain of these events, the checkpoint the download proves them against (or that
    there is none yet). Reads only. Values are plain text for the template, which escapes them."""
    newest: dict[str, int] = {}
    for e in events:
        newest[e.source] = max(newest.get(e.source, 0), e.source_seq)
    found = []
    for source in sorted(newest):
        proof = proving_checkpoint(conn, source, newest[source])
        found.append({"source": source, "covered": proof is not None,
                      "size": proof.size if proof else None, "root": proof.root_b64 if proof else None,
                      "signed_at": proof.signed_at if proof else None, "key": proof.key if proof else None})
    return found


def _refusal(source: str) -> ExportRefused:
    if source == store.LOCAL_SOURCE:
        return ExportRefused(f"chain {source!r} (this mirror's own) has no signed checkpoint covering the link's "
                             "events: the mirror signs it at every append, so run `auditkit verify` to see why")
    return ExportRefused(f"chain {source!r} has no signed checkpoint covering the link's events: run "
                         f"`auditkit sync` (it stores the gateway's checkpoint of every page it mirrors), then "
                         "export again")


# --- building -------------------------------------------------------------------------------------------------------

def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


class _Members:
    """The zip being written: each member deflated as it is written, its sha256 and size kept for the manifest."""

    def __init__(self, out: BinaryIO):
        self.archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.digests: dict[str, dict[str, Any]] = {}

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def write(self, name: str, chunks: Iterable[bytes]) -> None:
        h, size = hashlib.sha256(), 0
        with self.archive.open(self._info(name), "w", force_zip64=True) as member:
            for chunk in chunks:
                h.update(chunk)
                size += len(chunk)
                member.write(chunk)
        self.digests[name] = {"sha256": h.hexdigest(), "size": size}

    def write_unlisted(self, name: str, data: bytes) -> None:
        self.archive.writestr(self._info(name), data)

    def close(self) -> None:
        self.archive.close()


def write_export(conn: sqlite3.Connection, link: sharing.ShareLink, out: BinaryIO,
                 now: dt.datetime | None = None) -> ExportSummary:
    """Write the verifiable export of `link` (a zip) to `out`. ExportRefused when a chain in scope has no signed
    checkpoint covering its events.

    The events are streamed into the zip as they are read (one pass; what is kept is (id, chain, seq, session) per
    event), then the checkpoints are chosen and the proofs written: events that arrive meanwhile are simply not in
    it, and memory stays small for a link of millions of events."""
    exported_at = format_timestamp(now or dt.datetime.now(dt.timezone.utc))
    f = sharing.scope(link)
    members = _Members(out)
    try:
        kept: list[tuple[str, str, int, str | None]] = []

        def event_lines() -> Iterable[bytes]:
            def rows() -> Iterable[dict[str, Any]]:
                for row in store.iter_rows(conn, f):
                    kept.append((row["id"], row["source"], row["source_seq"], row["session_id"]))
                    yield row
            for chunk in export.jsonl_chunks(rows()):
                yield chunk.encode("utf-8")

        snapshot = not conn.in_transaction
        if snapshot:  # one read transaction: the events of one moment, even while sync writes
            conn.execute("BEGIN")
        try:
            members.write(EVENTS, event_lines())
        finally:
            if snapshot:
                conn.execute("COMMIT")
        summary = _finish(conn, link, f, exported_at, kept, members)
    finally:
        members.close()
    return summary


def _finish(conn: sqlite3.Connection, link: sharing.ShareLink, f: Any, exported_at: str,
            kept: list[tuple[str, str, int, str | None]], members: _Members) -> ExportSummary:
    seqs: dict[str, list[int]] = {}
    for _, source, seq, _ in kept:
        seqs.setdefault(source, []).append(seq)
    proofs_by_chain: dict[str, ChainProof] = {}
    for source in sorted(seqs):
        last = max(seqs[source])
        proof = proving_checkpoint(conn, source, last)
        if proof is None:
            raise _refusal(source)
        if store.tree_root(conn, source, proof.size) != proof.root:
            raise ExportRefused(f"chain {source!r}: the mirror's tree of size {proof.size} does not have the root "
                                "its signed checkpoint names (run `auditkit verify`)")
        proofs_by_chain[source] = proof
    signer = mirror_signer(conn)

    def proof_lines() -> Iterable[bytes]:
        batch: list[str] = []
        for event_id, source, seq, _ in kept:
            size = proofs_by_chain[source].size
            hashes = store.inclusion_proof(conn, source, seq, size)
            batch.append(json.dumps({"id": event_id, "source": source, "seq": seq, "tree_size": size,
                                     "hashes": [base64.b64encode(h).decode() for h in hashes]},
                                    ensure_ascii=False, separators=(",", ":")) + "\n")
            if len(batch) == 500:
                yield "".join(batch).encode("utf-8")
                batch = []
        yield "".join(batch).encode("utf-8")

    members.write(PROOFS, proof_lines())
    members.write(SCOPE, [_json_bytes({
        "format": FORMAT,
        "exported_at": exported_at,
        "link": {"id": link.id, "filter": link.filter_text, "since": link.since, "until": link.until,
                 "range": sharing.range_text(link), "expires_at": link.expires_at, "note": link.note,
                 "created_by": link.created_by, "created_at": link.created_at},
        "scope": f.to_text(),
        "events": len(kept),
    })])
    members.write(CHECKPOINTS, [_json_bytes([{"source": p.source, "size": p.size, "note": p.note}
                                             for p in proofs_by_chain.values()])])
    members.write(KEYS, [_json_bytes({"chains": {p.source: p.key for p in proofs_by_chain.values()},
                                      "mirror": str(signer.verifier)})])
    members.write(CHAINS, [_json_bytes([
        {"source": source, "first_seq": min(found), "last_seq": max(found), "count": len(found),
         "seqs": sorted(found), "tree_size": proofs_by_chain[source].size}
        for source, found in sorted(seqs.items())])])

    named: dict[str, list[str]] = {}
    for event_id, _, _, session_id in kept:
        if session_id:
            named.setdefault(session_id, []).append(event_id)
    recordings = []
    for session_id in sorted(store.held_sessions(conn, named)):
        cast = store.recording(conn, session_id)
        if cast is None:
            continue
        digest = hashlib.sha256(cast).hexdigest()
        name = f"{RECORDING_DIR}{digest}.cast"
        if name not in members.digests:  # two sessions with the same bytes share one member
            members.write(name, [cast])
        recordings.append({"session_id": session_id, "sha256": digest, "size": len(cast),
                           "events": named[session_id]})
    members.write(RECORDINGS, [_json_bytes(recordings)])

    manifest = _json_bytes({"format": FORMAT, "link_id": link.id, "exported_at": exported_at,
                            "members": members.digests})
    manifest_sha = hashlib.sha256(manifest).hexdigest()
    members.write_unlisted(MANIFEST, manifest)
    members.write_unlisted(MANIFEST_NOTE, note.sign(manifest_note_text(link.id, exported_at, manifest_sha),
                                                    signer).encode("utf-8"))
    return ExportSummary(link.id, exported_at, len(kept),
                         {s: (min(v), max(v), len(v)) for s, v in sorted(seqs.items())}, len(recordings),
                         manifest_sha)


def export_details(summary: ExportSummary) -> dict[str, Any]:
    """What the Access event of an export records about it."""
    return {"export": FORMAT, "events": summary.events, "manifest_sha256": summary.manifest_sha256,
            "chains": {s: {"first_seq": a, "last_seq": b, "count": c} for s, (a, b, c) in summary.chains.items()}}
