"""The verifiable export against a real mirror: a gateway in front of the simulated rack records real traffic (app
creations, scaling, an exec session with its recording), `sync`, pinned to the gateway's checkpoint key, mirrors it
and stores the gateway's signed checkpoint, and share links on the mirror (whose own `local` chain is checkpointed with the mirror's
key) are exported with `auditkit share export` and checked with `auditkit verify-export`.

Each tampering an attacker with the file can do is caught, first by the signed manifest, and, for one who holds
the mirror's key and re-signs the manifest, by what the gateways signed (hashes, proofs, checkpoints, recordings)
and the scope; what such an attacker can still do (leave an event out and fix the counts) is reported as resting
on the mirror key when only the gateway keys are trusted.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from auditkit import store
from auditkit.cli import main
from auditkit.model import note
from auditkit.model.events import canonical_json, chain_hash, new_event_id
from auditkit.model.filters import matches, parse
from auditkit.share import export as exporting, export_check, links as sharing
from convox_sim.servers import free_port

from exports import SHARE_FILTER, gateway_mirror, served

def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return gateway_mirror(tmp_path_factory.mktemp("export"), SHARE_FILTER)


@pytest.fixture(scope="module")
def exported(mirror: dict[str, Any]) -> Path:
    out = mirror["work"] / "export.zip"
    mirror["rows"] = list(store.iter_rows(mirror["conn"], sharing.scope(mirror["link"])))  # before its own event
    done = _run("share", "export", mirror["link"].id, "-o", str(out), "--db", str(mirror["db"]), "--by",
                "admin@example.com")
    assert done.exit_code == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    return out


def _trusted(mirror: dict[str, Any]) -> list[str]:
    return ["--key", mirror["gateway_key"], "--key", mirror["mirror_key"]]


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _reseal(members: dict[str, bytes], signer: note.Signer) -> dict[str, bytes]:
    """What an attacker holding `signer` does after changing members: a new manifest over them, signed."""
    manifest = json.loads(members[exporting.MANIFEST])
    manifest["members"] = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                           for name, data in members.items()
                           if name not in (exporting.MANIFEST, exporting.MANIFEST_NOTE)}
    body = json.dumps(manifest).encode()
    text = exporting.manifest_note_text(manifest["link_id"], manifest["exported_at"],
                                        hashlib.sha256(body).hexdigest())
    return dict(members, **{exporting.MANIFEST: body, exporting.MANIFEST_NOTE: note.sign(text, signer).encode()})


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _events(members: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(members[exporting.EVENTS])]


# --- the export as made -------------------------------------------------------------------------------------------

def test_the_export_holds_exactly_the_links_events_with_their_proofs(mirror, exported):
    conn, link = mirror["conn"], mirror["link"]
    members = _members(exported)
    rows = mirror["rows"]
    sources = {r["source"] for r in rows}
    assert sources == {"gw", store.LOCAL_SOURCE}, "the scope must span a gateway chain and the mirror's own"
    assert any(r["session_id"] for r in rows), "the scope must hold a recorded session"
    # The same bytes as the share page's JSON download, one event a line.
    from auditkit.model import export as formats
    assert members[exporting.EVENTS] == "".join(formats.jsonl_chunks(rows)).encode()
    assert [json.loads(x)["id"] for x in _lines(members[exporting.EVENTS])] == [r["id"] for r in rows]
    scope = json.loads(members[exporting.SCOPE])
    assert scope["link"] == {"id": link.id, "filter": SHARE_FILTER, "since": None, "until": None,
                             "range": "all time", "expires_at": link.expires_at, "note": "Q4 <b>sample</b>",
                             "created_by": "admin@example.com", "created_at": link.created_at}
    assert scope["events"] == len(rows) and scope["exported_at"]
    chains = {c["source"]: c for c in json.loads(members[exporting.CHAINS])}
    for source in sources:
        seqs = sorted(r["source_seq"] for r in rows if r["source"] == source)
        assert chains[source]["seqs"] == seqs and chains[source]["count"] == len(seqs)
    recordings = json.loads(members[exporting.RECORDINGS])
    assert len(recordings) == 1
    cast = members[f"recordings/{recordings[0]['sha256']}.cast"]
    assert cast == store.recording(conn, recordings[0]["session_id"])
    assert hashlib.sha256(cast).hexdigest() == recordings[0]["sha256"]
    keys_doc = json.loads(members[exporting.KEYS])
    assert keys_doc == {"chains": {"gw": mirror["gateway_key"], "local": mirror["mirror_key"]},
                        "mirror": mirror["mirror_key"]}


def test_verify_export_accepts_it_with_the_trusted_keys_and_reports_each_chain(mirror, exported):
    done = _run("verify-export", str(exported), *_trusted(mirror))
    assert done.exit_code == 0, done.stderr
    rows = mirror["rows"]
    assert ": OK" in done.stdout and f"{len(rows):,} events on 2 chain(s)" in done.stdout
    gw = [r["source_seq"] for r in rows if r["source"] == "gw"]
    assert f"chain gw: seq {min(gw):,}–{max(gw):,}, {len(gw):,} events" in done.stdout
    assert "recordings: 1" in done.stdout
    assert "WARNING" not in done.stdout + done.stderr


def test_without_keys_it_says_loudly_that_the_keys_are_self_asserted(exported):
    done = _run("verify-export", str(exported))
    assert done.exit_code == 0
    assert "WARNING: no --key given" in done.stderr and "self-asserted" in done.stderr


def test_trusting_only_the_gateway_leaves_completeness_to_the_mirror_key_and_says_so(mirror, exported, tmp_path):
    done = _run("verify-export", str(exported), "--key", mirror["gateway_key"])
    assert done.exit_code == 0
    assert "not among the keys given with --key" in done.stderr
    # Which is exactly what someone with a key of their own can exploit: leave a gateway event out, fix the counts,
    # re-sign the mirror's own chain and the manifest with their key.
    members = _members(exported)
    lines, proofs = _lines(members[exporting.EVENTS]), _lines(members[exporting.PROOFS])
    i = next(i for i, x in enumerate(lines) if json.loads(x)["source"] == "gw")
    dropped = json.loads(lines[i])
    members[exporting.EVENTS] = b"".join(lines[:i] + lines[i + 1:])
    members[exporting.PROOFS] = b"".join(proofs[:i] + proofs[i + 1:])
    chains = json.loads(members[exporting.CHAINS])
    for chain in chains:
        if chain["source"] == "gw":
            chain["seqs"].remove(dropped["source_seq"])
            chain["count"] -= 1
            chain["first_seq"], chain["last_seq"] = min(chain["seqs"]), max(chain["seqs"])
    members[exporting.CHAINS] = json.dumps(chains).encode()
    scope = json.loads(members[exporting.SCOPE])
    scope["events"] -= 1
    members[exporting.SCOPE] = json.dumps(scope).encode()
    forger = note.generate_signer("local")
    checkpoints = json.loads(members[exporting.CHECKPOINTS])
    for item in checkpoints:
        if item["source"] == store.LOCAL_SOURCE:
            item["note"] = note.sign(item["note"].split("\n\n")[0] + "\n", forger)
    members[exporting.CHECKPOINTS] = json.dumps(checkpoints).encode()
    keys_doc = json.loads(members[exporting.KEYS])
    keys_doc["mirror"] = keys_doc["chains"][store.LOCAL_SOURCE] = str(forger.verifier)
    members[exporting.KEYS] = json.dumps(keys_doc).encode()
    forged = _write(tmp_path / "forged.zip", _reseal(members, forger))
    passed = _run("verify-export", str(forged), "--key", mirror["gateway_key"])
    assert passed.exit_code == 0 and "not among the keys given with --key" in passed.stderr
    refused = _run("verify-export", str(forged), *_trusted(mirror))
    assert refused.exit_code == 1 and "not signed by any expected key" in refused.stderr


def test_the_export_is_an_access_event_on_the_local_chain(mirror, exported):
    found = [e for e in store.iter_rows(mirror["conn"], parse("category:Access action:exported"))
             if e["target"] == mirror["link"].id]
    assert len(found) == 1
    event = found[0]
    assert event["source"] == store.LOCAL_SOURCE and event["actor"] == "admin@example.com"
    manifest = _members(exported)[exporting.MANIFEST]
    assert event["details"]["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()


def test_an_existing_output_file_is_not_replaced(mirror, exported):
    done = _run("share", "export", mirror["link"].id, "-o", str(exported), "--db", str(mirror["db"]))
    assert done.exit_code == 2 and "exists" in done.stderr


def test_a_chain_without_a_covering_checkpoint_is_refused_naming_it_and_saying_how(mirror, tmp_path):
    db = tmp_path / "audit.db"
    conn = store.open_db(db)
    events = [e for e in (store.get_event(mirror["conn"], r["id"]) for r in
                          store.iter_rows(mirror["conn"], parse("action:created app:app0")))]
    store.append(conn, [e.replace(source=None, source_seq=None, prev_hash=None, hash=None, id=e.id + "X")
                        for e in events], source="gw-unsynced")
    link, _ = sharing.create(conn, parse(""), secret=sharing.secret_for(db), expires="1d", created_by="a",
                             base_url="http://x")
    done = _run("share", "export", link.id, "-o", str(tmp_path / "x.zip"), "--db", str(db))
    assert done.exit_code == 2
    assert "chain 'gw-unsynced' has no signed checkpoint covering" in done.stderr
    assert "auditkit sync" in done.stderr
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.partial").exists()


# --- tampering ------------------------------------------------------------------------------------------------------

def _edit_event(members: dict[str, bytes]) -> None:
    lines = _lines(members[exporting.EVENTS])
    i = next(i for i, x in enumerate(lines) if json.loads(x)["source"] == "gw")
    event = json.loads(lines[i])
    event["description"] = "Viewed app web"
    lines[i] = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    members[exporting.EVENTS] = b"".join(lines)


def _rehash_event(members: dict[str, bytes]) -> None:
    lines = _lines(members[exporting.EVENTS])
    i = next(i for i, x in enumerate(lines) if json.loads(x)["source"] == "gw")
    event = json.loads(lines[i])
    event["description"] = "Viewed app web"
    event["hash"] = chain_hash(event["prev_hash"], canonical_json(event))
    lines[i] = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    members[exporting.EVENTS] = b"".join(lines)


def _drop_event(members: dict[str, bytes]) -> None:
    lines, proofs = _lines(members[exporting.EVENTS]), _lines(members[exporting.PROOFS])
    i = next(i for i, x in enumerate(lines) if json.loads(x)["source"] == "gw")
    members[exporting.EVENTS] = b"".join(lines[:i] + lines[i + 1:])
    members[exporting.PROOFS] = b"".join(proofs[:i] + proofs[i + 1:])


def _reorder(members: dict[str, bytes]) -> None:
    lines, proofs = _lines(members[exporting.EVENTS]), _lines(members[exporting.PROOFS])
    i = next(i for i in range(len(lines) - 1)
             if json.loads(lines[i])["timestamp"] != json.loads(lines[i + 1])["timestamp"])
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    proofs[i], proofs[i + 1] = proofs[i + 1], proofs[i]
    members[exporting.EVENTS], members[exporting.PROOFS] = b"".join(lines), b"".join(proofs)


def _forge_checkpoint(members: dict[str, bytes]) -> None:
    """A checkpoint of 'gw' with another root, signed by a key of the forger's named like the gateway's."""
    forger = note.generate_signer("gw")
    checkpoints = json.loads(members[exporting.CHECKPOINTS])
    for item in checkpoints:
        if item["source"] == "gw":
            old = note.parse_checkpoint(item["note"].split("\n\n")[0] + "\n")
            item["note"] = note.Checkpoint("gw", old.size, hashlib.sha256(b"forged").digest(),
                                           old.extensions).sign(forger)
    members[exporting.CHECKPOINTS] = json.dumps(checkpoints).encode()
    keys_doc = json.loads(members[exporting.KEYS])
    keys_doc["chains"]["gw"] = str(forger.verifier)
    members[exporting.KEYS] = json.dumps(keys_doc).encode()


def _edit_recording(members: dict[str, bytes]) -> None:
    """Another recording in place of the one recorded (renamed to its own digest, the listing updated)."""
    recordings = json.loads(members[exporting.RECORDINGS])
    old = f"recordings/{recordings[0]['sha256']}.cast"
    cast = members.pop(old).replace(b"exit", b"EXIT")
    digest = hashlib.sha256(cast).hexdigest()
    members[f"recordings/{digest}.cast"] = cast
    recordings[0].update(sha256=digest, size=len(cast))
    members[exporting.RECORDINGS] = json.dumps(recordings).encode()


def _swap_proofs(members: dict[str, bytes]) -> None:
    """The proof paths of two events of the same chain exchanged (each line still names its own event)."""
    proofs = [json.loads(x) for x in _lines(members[exporting.PROOFS])]
    a, b = [i for i, p in enumerate(proofs) if p["source"] == "gw"][:2]
    proofs[a]["hashes"], proofs[b]["hashes"] = proofs[b]["hashes"], proofs[a]["hashes"]
    members[exporting.PROOFS] = "".join(json.dumps(p) + "\n" for p in proofs).encode()


def _add_out_of_scope(members: dict[str, bytes], conn: Any) -> None:
    """A genuine event of the chain that the scope leaves out (a scaling), with its genuine proof."""
    row = next(iter(store.iter_rows(conn, parse("action:scaled"))))
    tree = json.loads(members[exporting.CHECKPOINTS])[0]["size"]
    proof = store.inclusion_proof(conn, "gw", row["source_seq"], tree)
    from auditkit.model import export as formats
    members[exporting.EVENTS] = "".join(formats.jsonl_chunks([row])).encode() + members[exporting.EVENTS]
    line = json.dumps({"id": row["id"], "source": "gw", "seq": row["source_seq"], "tree_size": tree,
                       "hashes": [base64.b64encode(h).decode() for h in proof]}) + "\n"
    members[exporting.PROOFS] = line.encode() + members[exporting.PROOFS]


def _edit_manifest(members: dict[str, bytes]) -> None:
    manifest = json.loads(members[exporting.MANIFEST])
    manifest["members"][exporting.SCOPE]["size"] += 0
    manifest["exported_at"] = "2030-01-01T00:00:00.000Z"
    members[exporting.MANIFEST] = json.dumps(manifest).encode()


def _extra_member(members: dict[str, bytes]) -> None:
    members["README.txt"] = b"trust me"


# (tampering, what verify-export names as is, what it names when the manifest is re-signed with the mirror's key)
TAMPERINGS: list[tuple[str, Callable[..., None], str, str | None]] = [
    ("edited event", _edit_event, "events.jsonl was changed", "was edited: its content hashes to"),
    ("edited and re-hashed event", _rehash_event, "events.jsonl was changed", "is not in the signed tree of chain gw"),
    ("dropped event", _drop_event, "events.jsonl was changed", "chain gw: chains.json lists"),
    ("reordered events", _reorder, "events.jsonl was changed", "out of order"),
    ("forged checkpoint", _forge_checkpoint, "checkpoints.json was changed",
     "the checkpoint of chain gw: the note is not signed by any expected key"),
    ("edited recording", _edit_recording, "is not in the manifest", "is not the one event"),
    ("swapped proofs", _swap_proofs, "proofs.jsonl was changed", "is not in the signed tree of chain gw"),
    ("extra event out of scope", _add_out_of_scope, "events.jsonl was changed", "is outside the scope"),
    ("edited manifest", _edit_manifest, "manifest.json does not match its signed note", None),
    ("extra member", _extra_member, "member README.txt is not in the manifest", None),
]
CASES = [(name, tamper, False, plain) for name, tamper, plain, _ in TAMPERINGS] + [
    (name, tamper, True, deeper) for name, tamper, _, deeper in TAMPERINGS if deeper]


@pytest.mark.parametrize("name,tamper,resealed,message", CASES,
                         ids=[f"{c[0]}{' (resealed with the mirror key)' if c[2] else ''}" for c in CASES])
def test_each_tampering_is_detected_and_named(mirror, exported, tmp_path, name, tamper, resealed, message):
    members = _members(exported)
    if tamper is _add_out_of_scope:
        tamper(members, mirror["conn"])
    else:
        tamper(members)
    if resealed:
        members = _reseal(members, store.local_signer(mirror["conn"]))  # type: ignore[attr-defined]
    done = _run("verify-export", str(_write(tmp_path / "tampered.zip", members)), *_trusted(mirror))
    assert done.exit_code == 1, done.stdout
    assert done.stderr.startswith("verify-export: FAILED: ")
    assert message in done.stderr, done.stderr
    assert "OK" not in done.stdout


def test_a_wrong_key_is_refused(mirror, exported):
    other = str(note.generate_signer("gw").verifier)
    done = _run("verify-export", str(exported), "--key", other, "--key", mirror["mirror_key"])
    assert done.exit_code == 1
    assert "the checkpoint of chain gw: the note is not signed by any expected key" in done.stderr


def test_a_file_that_is_not_an_export_is_refused_in_one_line(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK\x03\x04 not really")
    done = _run("verify-export", str(path))
    assert done.exit_code == 1 and "is not a readable zip file" in done.stderr
    hostile = _write(tmp_path / "h.zip", {"\x1b[31mred": b"x", "keys.json": b'{"chains": {}, "mirror": "\x1b]0;"}'})
    done = _run("verify-export", str(hostile))
    assert done.exit_code == 1 and "\x1b" not in done.stderr


def test_a_duplicated_member_is_refused(mirror, exported, tmp_path):
    members = _members(exported)
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning):
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr(exporting.EVENTS, b"")
    done = _run("verify-export", str(path), *_trusted(mirror))
    assert done.exit_code == 1 and "appears twice" in done.stderr


def test_the_checker_uses_the_one_filter_meaning(mirror, exported):
    """Every event of the export matches the scope by filters.matches, and a scope that excludes one is refused."""
    members = _members(exported)
    scope = parse(json.loads(members[exporting.SCOPE])["scope"])
    assert all(matches(scope, e) for e in _events(members))
    assert export_check.check_export(exported, [mirror["gateway_key"], mirror["mirror_key"]]).events == len(
        _events(members))


# --- the share site's download, over HTTP ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`auditkit serve` on a mirror of a real gateway, with a second chain that has no checkpoint (acme/staging)."""
    port = free_port()
    m = gateway_mirror(tmp_path_factory.mktemp("export-site"), "rack:acme/production",
                       base_url=f"http://127.0.0.1:{port}")
    conn = m["conn"]
    created = [store.get_event(conn, r["id"])
               for r in store.iter_rows(conn, parse("action:created rack:acme/production"))]
    store.append(conn, [e.replace(source=None, source_seq=None, prev_hash=None, hash=None, id=new_event_id(),
                                  rack="acme/staging") for e in created], source="gw-unsynced")
    secret = sharing.secret_for(m["db"])
    made = dict(secret=secret, created_by="admin@example.com", base_url=m["url"].split("/-/")[0])
    m["uncovered"], m["uncovered_url"] = sharing.create(conn, parse("rack:acme/staging"), expires="7d", **made)
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    m["expired"], m["expired_url"] = sharing.create(conn, parse(""), expires="1d", now=long_ago, **made)
    with served(m["db"], port, m["work"] / "serve.log") as base:
        yield dict(m, base=base)
    conn.close()


def _cookie(url: str) -> dict[str, str]:
    return {"ds_share": url.rsplit("/", 1)[1]}


def _downloads(conn: Any, link_id: str, outcome: str = "succeeded") -> list[Any]:
    return [e for e in sharing.views(conn, link_id)
            if e.details.get("what", "").startswith("download of the verifiable export") and e.outcome == outcome]


def test_the_share_sites_download_is_the_export_and_a_view_of_the_link(site, tmp_path):
    with httpx.Client(base_url=site["base"], cookies=_cookie(site["url"])) as http:
        head = http.head("/-/shared/export.zip")
        assert head.status_code == 200 and head.headers["content-type"] == "application/zip"
        assert _downloads(site["conn"], site["link"].id) == []  # a HEAD builds and records nothing
        got = http.get("/-/shared/export.zip")
    assert got.status_code == 200
    assert got.headers["content-disposition"] == f'attachment; filename="auditkit-{site["link"].id}.zip"'
    assert got.headers["content-security-policy"]
    path = tmp_path / "download.zip"
    path.write_bytes(got.content)
    done = _run("verify-export", str(path), *_trusted(site))
    assert done.exit_code == 0, done.stderr
    (view,) = _downloads(site["conn"], site["link"].id)
    assert view.source == store.LOCAL_SOURCE and view.category == "Access" and view.action == "viewed"
    assert view.details["manifest_sha256"] == hashlib.sha256(_members(path)[exporting.MANIFEST]).hexdigest()


def test_the_page_says_when_a_chain_has_no_checkpoint_and_the_download_names_it(site):
    with httpx.Client(base_url=site["base"], cookies=_cookie(site["uncovered_url"])) as http:
        page = http.get("/-/shared")
        refused = http.get("/-/shared/export.zip")
    assert page.status_code == 200
    assert "<code>gw-unsynced</code>" in page.text and "no signed checkpoint covers these events yet" in page.text
    assert refused.status_code == 409
    assert "chain &#39;gw-unsynced&#39; has no signed checkpoint covering" in refused.text
    assert "auditkit sync" in refused.text


def test_without_a_link_or_with_an_expired_one_there_is_no_export(site):
    assert httpx.get(site["base"] + "/-/shared/export.zip").status_code == 403
    expired = httpx.get(site["base"] + "/-/shared/export.zip", cookies=_cookie(site["expired_url"]))
    assert expired.status_code == 403 and "This link has expired" in expired.text
    assert len(_downloads(site["conn"], site["expired"].id, outcome="denied")) == 1
    assert b"PK" not in expired.content[:2]


def test_a_bad_key_is_a_usage_error(exported):
    done = _run("verify-export", str(exported), "--key", "gw+00000000+AAAA")
    assert done.exit_code == 2 and "--key" in done.stderr and "is not a verifier key" in done.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_is_refused_or_changes_nothing_an_export_says(mirror, exported, tmp_path, data):
    """One byte of the file changed anywhere: verify-export refuses it with ExportInvalid (never another
    exception), unless the change left every member's content as it was (zip metadata such as a date)."""
    original = exported.read_bytes()
    position = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != original[position]))
    path = tmp_path / "flipped.zip"
    path.write_bytes(original[:position] + bytes([value]) + original[position + 1:])
    try:
        same = _members(path) == _members(exported)
    except Exception:  # noqa: BLE001 - any way zipfile fails to read it counts as changed
        same = False
    try:
        export_check.check_export(path, [mirror["gateway_key"], mirror["mirror_key"]])
    except export_check.ExportInvalid:
        return
    assert same, f"byte {position} changed to {value} and the export was accepted"
