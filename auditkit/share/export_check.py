"""Checking a verifiable export (export.py's zip) offline, for `auditkit verify-export`: the signatures, every
inclusion proof, every hash and chain link, the recordings' digests, that every event matches the stated scope, the
manifest and the counts. The first problem found is raised as ExportInvalid, naming the member and the part.

Reads only the file and the model (no mirror, no network). Every byte of the file is hostile: members are read
with size limits, a member name appears once, nothing outside the manifest is accepted, JSON is parsed once and
checked field by field, and text from the file is shown escaped (_shown), never as terminal control sequences.

Trust: keys given with --key are the only trusted ones. Without --key the keys inside the file are used and the
report says loudly that they are self-asserted (whoever edits the file can replace them). A gateway chain's
checkpoint must be signed by a trusted key. The manifest, and the checkpoint of the mirror's own `local` chain,
are signed by the mirror's key: when no key given signs them and every given key signs some gateway chain's
checkpoint (the auditor gave gateway keys only), the file's copy of the mirror's key is used and the report warns
that completeness (no event dropped, added or reordered; the counts) and the local chain rest on the file's own
claim. A given key that signs no gateway chain is taken as the mirror's, and then nothing falls back. An auditor who trusts only the gateway keys can check that every gateway event is genuine, proven in its
gateway's signed tree and within the scope, but not that the mirror left none out.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Iterator

from auditkit.errors import AuditkitError, EventError, FilterError
from auditkit.model import merkle, note
from auditkit.model.events import GENESIS_HASH, from_dict, parse_timestamp
from auditkit.model.filters import matcher, parse
from auditkit.model.safe_text import printable
from auditkit.share.export import (
    LOCAL_SOURCE, CHAINS, CHECKPOINTS, EVENTS, FORMAT, KEYS, MANIFEST, MANIFEST_NOTE, MEMBERS, PROOFS,
    RECORDING_DIR, RECORDINGS, SCOPE, manifest_note_text,
)

MAX_MEMBER_BYTES = 2 << 30
MAX_TOTAL_BYTES = 8 << 30
MAX_MEMBERS = 200_000
MAX_JSON_BYTES = 256 << 20  # the small JSON members (scope, checkpoints, keys, chains, recordings, manifest)
MAX_LINE_BYTES = 16 << 20  # one event or proof line
# What zipfile raises on a damaged file: bad headers, bad deflate data, a CRC mismatch, a version or compression it
# does not support, encryption.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError)
_RECORDING_RE = re.compile(re.escape(RECORDING_DIR) + r"[0-9a-f]{64}\.cast")


class ExportInvalid(AuditkitError):
    """The export fails a check; the message names the first problem."""


@dataclasses.dataclass(frozen=True)
class ChainReport:
    source: str
    first_seq: int
    last_seq: int
    count: int
    tree_size: int
    root_b64: str
    signed_at: str | None
    signed_by: str


@dataclasses.dataclass
class ExportReport:
    link_id: str
    exported_at: str
    scope: str
    events: int
    chains: list[ChainReport]
    recordings: int
    manifest_signed_by: str
    self_asserted: bool
    warnings: list[str]

    def lines(self) -> list[str]:
        out = [f"export of share link {_shown(self.link_id)}, made {_shown(self.exported_at)}: OK",
               f"  scope: {_shown(self.scope) or '(every event)'}",
               f"  {self.events:,} events on {len(self.chains)} chain(s): every hash recomputed, every inclusion "
               "proof verified against its chain's signed checkpoint, every event within the scope"]
        for c in self.chains:
            signed = f", signed {_shown(c.signed_at)}" if c.signed_at else ""
            out.append(f"  chain {_shown(c.source)}: seq {c.first_seq:,}–{c.last_seq:,}, {c.count:,} events, "
                       f"checkpoint tree size {c.tree_size:,} root {c.root_b64}{signed} by {_shown(c.signed_by)}")
        out.append(f"  recordings: {self.recordings}, each sha256 checked against its event")
        out.append(f"  manifest: every member's sha256 and size checked; signed by {_shown(self.manifest_signed_by)}")
        out += [f"WARNING: {w}" for w in self.warnings]
        return out


def _shown(text: Any, limit: int = 200) -> str:
    """File-supplied text for a terminal: safe_text.printable (control, bidi and zero-width characters escaped),
    length bounded."""
    escaped = printable(str(text))
    return escaped if len(escaped) <= limit else escaped[:limit] + "…"


def _fail(message: str) -> ExportInvalid:
    return ExportInvalid(message)


# --- reading the zip ------------------------------------------------------------------------------------------------

class _Archive:
    def __init__(self, path: Path):
        try:
            self.zip = zipfile.ZipFile(path)
        except _READ_ERRORS as e:
            raise _fail(f"{_shown(path)} is not a readable zip file ({_shown(e)})") from None
        infos = self.zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _fail(f"the file has {len(infos):,} members; an export has at most {MAX_MEMBERS:,}")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            if info.filename in self.infos:
                raise _fail(f"member {_shown(info.filename)} appears twice in the zip")
            if info.file_size > MAX_MEMBER_BYTES:
                raise _fail(f"member {_shown(info.filename)} is larger than {MAX_MEMBER_BYTES:,} bytes")
            total += info.file_size
            self.infos[info.filename] = info
        if total > MAX_TOTAL_BYTES:
            raise _fail(f"the members add up to more than {MAX_TOTAL_BYTES:,} bytes")

    def open(self, name: str) -> IO[bytes]:
        if name not in self.infos:
            raise _fail(f"the export has no {_shown(name)}")
        with _reading(name):
            return self.zip.open(self.infos[name])

    def read(self, name: str, limit: int = MAX_JSON_BYTES) -> bytes:
        with self.open(name) as member, _reading(name):
            data = member.read(limit + 1)
        if len(data) > limit:
            raise _fail(f"{_shown(name)} is larger than {limit:,} bytes")
        return data

    def digest(self, name: str) -> tuple[str, int]:
        h, size = hashlib.sha256(), 0
        with self.open(name) as member, _reading(name):
            while chunk := member.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
                if size > MAX_MEMBER_BYTES:
                    raise _fail(f"{_shown(name)} is larger than {MAX_MEMBER_BYTES:,} bytes")
        return h.hexdigest(), size

    def lines(self, name: str) -> Iterator[tuple[int, bytes]]:
        with self.open(name) as member:
            number = 0
            while True:
                with _reading(name):
                    line = member.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return
                number += 1
                if len(line) > MAX_LINE_BYTES or not line.endswith(b"\n"):
                    raise _fail(f"{name} line {number} is not a complete line of at most {MAX_LINE_BYTES:,} bytes")
                yield number, line


@contextlib.contextmanager
def _reading(name: str) -> Iterator[None]:
    """Every way reading a damaged member can fail (_READ_ERRORS), as the one ExportInvalid."""
    try:
        yield
    except _READ_ERRORS as e:
        raise _fail(f"{_shown(name)} cannot be read from the zip ({_shown(e)})") from None


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _fail(f"{what} is not valid UTF-8 JSON ({_shown(e)})") from None


def _field(obj: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _fail(f"{what} has no {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(f"{what}: {key!r} has the wrong type")
    return value


# --- the checks -----------------------------------------------------------------------------------------------------

def _verifiers(texts: list[str], what: str) -> list[note.Verifier]:
    found = []
    for text in texts:
        try:
            found.append(note.Verifier.parse(text))
        except note.NoteError as e:
            raise ExportInvalid(f"{what}: {_shown(text)} is not a verifier key ({e})") from None
    return found


def _open_note(text: str, keys: list[note.Verifier], what: str) -> tuple[str, note.Verifier]:
    try:
        body, good = note.open_note(text, keys)
    except note.NoteError as e:
        raise _fail(f"{what}: {_shown(e)}") from None
    return body, good[0]


def check_export(path: str | Path, trusted: list[str] | None = None) -> ExportReport:
    """Check the export at `path`; `trusted` are verifier keys (--key). Raises ExportInvalid on the first problem."""
    given = _verifiers(list(trusted or []), "--key")
    archive = _Archive(Path(path))
    warnings: list[str] = []

    # Keys the file brings (self-asserted): used only when none are given, and for the manifest's signer.
    keys_doc = _json(archive.read(KEYS), KEYS)
    chain_keys = _field(keys_doc, "chains", dict, KEYS)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in chain_keys.items()):
        raise _fail(f"{KEYS}: 'chains' maps chain names to key texts")
    mirror_key = _verifiers([_field(keys_doc, "mirror", str, KEYS)], KEYS)[0]
    file_chain_keys = {source: _verifiers([text], f"{KEYS} chain {_shown(source)}")[0]
                       for source, text in chain_keys.items()}
    if not given:
        warnings.append("no --key given: every signature was checked against keys inside the file, which whoever "
                        "edits the file can replace (self-asserted). Get each gateway's key (`auditkit gateway key`) "
                        "and the mirror's key from their owners and pass them with --key.")

    # A given key that signs no gateway chain's checkpoint is taken as the mirror's: then the manifest and the
    # local chain must be signed by given keys, and the file's own mirror key is never a fallback.
    mirror_given = bool(given) and any(not _signs_a_gateway_chain(archive, key) for key in given)

    # The manifest and its signature.
    try:
        signed_manifest = archive.read(MANIFEST_NOTE, 64 << 10).decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(f"{MANIFEST_NOTE} is not UTF-8") from None
    signer_pool = given if given else [mirror_key]
    try:
        body, manifest_signer = _open_note(signed_manifest, signer_pool, MANIFEST_NOTE)
        signer_trusted = bool(given)
    except ExportInvalid:
        if not given or mirror_given:
            raise
        body, manifest_signer = _open_note(signed_manifest, [mirror_key], MANIFEST_NOTE)
        signer_trusted = False
        warnings.append(f"the manifest is signed by the mirror's key {_shown(manifest_signer)}, which is not among "
                        "the keys given with --key: every event above is genuine (proven in its gateway's signed "
                        "tree) and within the scope, but that none was left out, added or reordered rests on the "
                        "file's own key. Pass the mirror's key with --key to check completeness too.")
    manifest = archive.read(MANIFEST)
    manifest_sha = hashlib.sha256(manifest).hexdigest()
    manifest_doc = _json(manifest, MANIFEST)
    link_id = _field(manifest_doc, "link_id", str, MANIFEST)
    exported_at = _field(manifest_doc, "exported_at", str, MANIFEST)
    if _field(manifest_doc, "format", str, MANIFEST) != FORMAT:
        raise _fail(f"{MANIFEST}: format is not {FORMAT}")
    if body != manifest_note_text(link_id, exported_at, manifest_sha):
        raise _fail(f"{MANIFEST} does not match its signed note {MANIFEST_NOTE} (the manifest was edited, or the "
                    "note is of another export)")
    listed = _field(manifest_doc, "members", dict, MANIFEST)
    for name in MEMBERS:
        if name not in listed:
            raise _fail(f"{MANIFEST} does not list {name}")
    expected_names = set(listed) | {MANIFEST, MANIFEST_NOTE}
    for name in archive.infos:
        if name not in expected_names:
            raise _fail(f"member {_shown(name)} is not in the manifest")
    for name, entry in listed.items():
        want_sha = _field(entry, "sha256", str, f"{MANIFEST} {_shown(name)}")
        want_size = _field(entry, "size", int, f"{MANIFEST} {_shown(name)}")
        if name not in MEMBERS and not _RECORDING_RE.fullmatch(name):
            raise _fail(f"{MANIFEST} lists {_shown(name)}, which is not a member an export has")
        digest, size = archive.digest(name)
        if (digest, size) != (want_sha, want_size):
            raise _fail(f"{_shown(name)} was changed: its sha256 is {digest} ({size:,} bytes), the manifest says "
                        f"{_shown(want_sha)} ({want_size:,} bytes)")

    # The scope.
    scope_doc = _json(archive.read(SCOPE), SCOPE)
    if _field(scope_doc, "format", str, SCOPE) != FORMAT:
        raise _fail(f"{SCOPE}: format is not {FORMAT}")
    link = _field(scope_doc, "link", dict, SCOPE)
    if _field(link, "id", str, f"{SCOPE} link") != link_id or _field(scope_doc, "exported_at", str,
                                                                     SCOPE) != exported_at:
        raise _fail(f"{SCOPE} names another link or export time than the manifest")
    try:
        now = parse_timestamp(exported_at)
        scope = parse(_field(scope_doc, "scope", str, SCOPE))
        stated = parse(_field(link, "filter", str, f"{SCOPE} link"))
        for key in ("since", "until"):
            value = link.get(key)
            if value is not None:
                stated = stated.with_values(key, [_field(link, key, str, f"{SCOPE} link")])
    except (FilterError, ValueError) as e:
        raise _fail(f"{SCOPE}: the scope is not a filter ({_shown(e)})") from None
    if stated != scope:
        raise _fail(f"{SCOPE}: the scope {_shown(scope)} is not the link's filter and range {_shown(stated)}")

    # The checkpoints.
    checkpoints: dict[str, tuple[note.Checkpoint, str]] = {}
    for i, item in enumerate(_checked_list(_json(archive.read(CHECKPOINTS), CHECKPOINTS), CHECKPOINTS)):
        what = f"{CHECKPOINTS}[{i}]"
        source = _field(item, "source", str, what)
        if source in checkpoints:
            raise _fail(f"{CHECKPOINTS}: two checkpoints of chain {_shown(source)}")
        pool = given if given else [file_chain_keys[source]] if source in file_chain_keys else []
        if not pool:
            raise _fail(f"{CHECKPOINTS}: no key for chain {_shown(source)} in {KEYS}")
        signed = _field(item, "note", str, what)
        try:
            text, by = _open_note(signed, pool, f"the checkpoint of chain {_shown(source)}")
        except ExportInvalid:
            # The mirror's own chain is signed by the mirror's key alone: trusted as far as the manifest is.
            if not given or mirror_given or source != LOCAL_SOURCE or file_chain_keys.get(source) != mirror_key:
                raise
            text, by = _open_note(signed, [mirror_key], f"the checkpoint of chain {_shown(source)}")
            warnings.append(f"chain {_shown(source)} is the mirror's own: its checkpoint is signed by the mirror's "
                            f"key {_shown(mirror_key)}, taken from the file, as no key given with --key signs it.")
        try:
            checkpoint = note.parse_checkpoint(text)
        except note.NoteError as e:
            raise _fail(f"the checkpoint of chain {_shown(source)}: {_shown(e)}") from None
        if checkpoint.origin != source:
            raise _fail(f"the checkpoint of chain {_shown(source)} is of {_shown(checkpoint.origin)}")
        if _field(item, "size", int, what) != checkpoint.size:
            raise _fail(f"{what}: the stated size is not the signed one ({checkpoint.size})")
        checkpoints[source] = (checkpoint, str(by))

    # Events and their proofs, line by line.
    in_scope = matcher(scope, now)
    seen_ids: set[str] = set()
    hashes: dict[str, dict[int, tuple[str, str]]] = {}  # source → seq → (hash, prev_hash)
    sessions: dict[str, list[tuple[str, Any]]] = {}  # session id → [(event id, details.recording_sha256)]
    previous_ts: str | None = None
    count = 0
    proof_lines = archive.lines(PROOFS)
    for number, line in archive.lines(EVENTS):
        where = f"{EVENTS} line {number}"
        data = _json(line, where)
        if not isinstance(data, dict):
            raise _fail(f"{where} is not an event object")
        try:
            event = from_dict(data)
        except (EventError, TypeError) as e:
            raise _fail(f"{where} is not a valid event ({_shown(e)})") from None
        label = f"{where} (event {_shown(event.id)})"
        if event.hash is None or event.source is None or event.source_seq is None or event.prev_hash is None:
            raise _fail(f"{label} is not sealed on a chain")
        if event.compute_hash() != event.hash:
            raise _fail(f"{label} was edited: its content hashes to {event.compute_hash()}, not its hash "
                        f"{event.hash}")
        if event.id in seen_ids:
            raise _fail(f"{label} appears twice")
        seen_ids.add(event.id)
        if event.source not in checkpoints:
            raise _fail(f"{label} is on chain {_shown(event.source)}, which has no checkpoint in the export")
        if not in_scope(event):
            raise _fail(f"{label} is outside the scope {_shown(scope)}")
        if previous_ts is not None and event.timestamp > previous_ts:
            raise _fail(f"{label} is out of order (the events are newest first)")
        previous_ts = event.timestamp
        chain = hashes.setdefault(event.source, {})
        if event.source_seq in chain:
            raise _fail(f"{label}: chain {_shown(event.source)} has two events of seq {event.source_seq}")
        chain[event.source_seq] = (event.hash, event.prev_hash)
        if event.session_id:
            sessions.setdefault(event.session_id, []).append((event.id, event.details.get("recording_sha256")))

        proof_number, proof_line = next(proof_lines, (number, None))
        if proof_line is None:
            raise _fail(f"{PROOFS} has no proof for {label}")
        _check_proof(_json(proof_line, f"{PROOFS} line {proof_number}"), event, checkpoints[event.source][0],
                     f"{PROOFS} line {proof_number}", label)
        count += 1
    for number, _ in proof_lines:
        raise _fail(f"{PROOFS} line {number} proves no event of {EVENTS}")

    # Chain links where consecutive, and the per-chain counts.
    for source, chain in hashes.items():
        for seq, (_, prev_hash) in chain.items():
            if seq == 1 and prev_hash != GENESIS_HASH:
                raise _fail(f"chain {_shown(source)} seq 1 does not start from the genesis hash")
            if seq - 1 in chain and chain[seq - 1][0] != prev_hash:
                raise _fail(f"chain {_shown(source)}: seq {seq} does not link to seq {seq - 1}")
    chains_doc = _checked_list(_json(archive.read(CHAINS), CHAINS), CHAINS)
    reports = []
    stated_sources = set()
    for i, item in enumerate(chains_doc):
        what = f"{CHAINS}[{i}]"
        source = _field(item, "source", str, what)
        stated_sources.add(source)
        seqs = _field(item, "seqs", list, what)
        have = sorted(hashes.get(source, {}))
        if not have:
            raise _fail(f"{CHAINS} lists chain {_shown(source)}, which has no event in {EVENTS}")
        if seqs != have:
            missing = sorted(set(s for s in seqs if isinstance(s, int)) - set(have))[:5]
            raise _fail(f"chain {_shown(source)}: {CHAINS} lists {len(seqs):,} events, {EVENTS} holds {len(have):,}"
                        + (f" (missing seq {', '.join(map(str, missing))})" if missing else ""))
        if (_field(item, "count", int, what), _field(item, "first_seq", int, what),
                _field(item, "last_seq", int, what)) != (len(have), have[0] if have else 0, have[-1] if have else 0):
            raise _fail(f"chain {_shown(source)}: the counts in {CHAINS} are not those of {EVENTS}")
        if source not in checkpoints or _field(item, "tree_size", int, what) != checkpoints[source][0].size:
            raise _fail(f"chain {_shown(source)}: {CHAINS} names another tree than its checkpoint")
        checkpoint, by = checkpoints[source]
        signed_at = next((x[len("timestamp "):] for x in checkpoint.extensions if x.startswith("timestamp ")), None)
        reports.append(ChainReport(source, have[0], have[-1], len(have), checkpoint.size,
                                   base64.b64encode(checkpoint.root).decode(), signed_at, by))
    if stated_sources != set(hashes) or set(checkpoints) != set(hashes):
        raise _fail(f"the chains of {EVENTS}, {CHAINS} and {CHECKPOINTS} differ")
    if _field(scope_doc, "events", int, SCOPE) != count:
        raise _fail(f"{SCOPE} says {scope_doc['events']:,} events, {EVENTS} holds {count:,}")

    # Recordings.
    recordings = _checked_list(_json(archive.read(RECORDINGS), RECORDINGS), RECORDINGS)
    casts = {name for name in listed if name.startswith(RECORDING_DIR)}
    used = set()
    for i, item in enumerate(recordings):
        what = f"{RECORDINGS}[{i}]"
        session_id = _field(item, "session_id", str, what)
        digest = _field(item, "sha256", str, what)
        name = f"{RECORDING_DIR}{digest}.cast"
        if name not in casts:
            raise _fail(f"recording {_shown(session_id)}: the export has no {_shown(name)}")
        actual, size = archive.digest(name)
        if actual != digest or size != _field(item, "size", int, what):
            raise _fail(f"recording {_shown(session_id)} was changed: its sha256 is {actual}")
        used.add(name)
        naming = sessions.get(session_id, [])
        if not naming or sorted(e for e, _ in naming) != sorted(_field(item, "events", list, what)):
            raise _fail(f"recording {_shown(session_id)}: the events naming it are not those in {EVENTS}")
        for event_id, recorded in naming:
            if recorded is not None and recorded != digest:
                raise _fail(f"recording {_shown(session_id)} is not the one event {_shown(event_id)} recorded: "
                            f"its sha256 is {digest}, the event's details.recording_sha256 {_shown(recorded)}")
    if used != casts:
        raise _fail(f"{_shown(sorted(casts - used)[0])} is in no entry of {RECORDINGS}")

    reports.sort(key=lambda c: c.source)
    return ExportReport(link_id, exported_at, scope.to_text(), count, reports, len(recordings),
                        str(manifest_signer) + ("" if signer_trusted else " (taken from the file)"),
                        not given, warnings)


def _signs_a_gateway_chain(archive: _Archive, key: note.Verifier) -> bool:
    """Whether `key` signs the checkpoint of a chain other than the mirror's own (read leniently: the checks proper
    come later and name any problem)."""
    try:
        items = json.loads(archive.read(CHECKPOINTS))
    except (ExportInvalid, ValueError, RecursionError):
        return False
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("source") != LOCAL_SOURCE and isinstance(item.get("note"), str):
            try:
                note.open_note(item["note"], key)
                return True
            except note.NoteError:
                pass
    return False


def _checked_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{what} is not a JSON list")
    return value


def _check_proof(proof: Any, event: Any, checkpoint: note.Checkpoint, where: str, label: str) -> None:
    if (_field(proof, "id", str, where), _field(proof, "source", str, where), _field(proof, "seq", int, where)) != (
            event.id, event.source, event.source_seq):
        raise _fail(f"{where} is the proof of another event than {label}")
    if _field(proof, "tree_size", int, where) != checkpoint.size:
        raise _fail(f"{where}: the proof is for tree size {proof['tree_size']}, the checkpoint's is {checkpoint.size}")
    try:
        path = [base64.b64decode(h, validate=True) for h in _field(proof, "hashes", list, where)]
    except (TypeError, ValueError):
        raise _fail(f"{where}: a proof hash is not base64") from None
    leaf = merkle.leaf_hash(bytes.fromhex(event.hash))
    try:
        merkle.verify_inclusion(event.source_seq - 1, checkpoint.size, leaf, path, checkpoint.root)
    except merkle.ProofError as e:
        raise _fail(f"{label} is not in the signed tree of chain {_shown(event.source)} (size {checkpoint.size}): "
                    f"{e}") from None
