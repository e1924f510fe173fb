"""Verifiable-export benchmark: the size of a share link's export of N events (default 10,000) and the time to make
and to verify it, beside baselines measured in the same run on the same events: the share page's JSON download of
them (size, time to write) and recomputing every event's hash from that download (the least any check does).

    .venv/bin/python bench/export.py [--events 10000] [--runs 3] [--work /tmp/bench-export]

The mirror is a synthetic history (`auditkit synth`'s, with its recordings) whose gateway chains are checkpointed
with a bench key, as sync stores a gateway's checkpoints; the link shares every event (the mirror's own link
creation too). When the store has no mirror key of its own yet (store.local_signer), a bench key stands in for it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import statistics
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditkit import store  # noqa: E402
from auditkit.model import export as formats, note  # noqa: E402
from auditkit.model.events import from_dict  # noqa: E402
from auditkit.model.filters import parse  # noqa: E402
from auditkit.share import export as exporting, export_check, links as sharing  # noqa: E402
from auditkit.synth import history as synth  # noqa: E402


def build(work: Path, events: int) -> tuple[sharing.ShareLink, list[str]]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    db = work / "audit.db"
    conn = store.open_db(db)
    synth.write_history(conn, events=events, seed=5, parallel=False)
    keys = []
    for head in store.chain_heads(conn):
        if head.source == store.LOCAL_SOURCE:
            continue
        stored = store.latest_checkpoint(conn, head.source)
        if stored is None or stored.size < head.last_seq:  # synth signs its chains itself once the store can
            signer = note.generate_signer(head.source.replace("/", "-"))
            with store.transaction(conn):
                store.add_checkpoint(conn, head.source,
                                     store.sign_checkpoint(conn, head.source, signer), str(signer.verifier))
            stored = store.latest_checkpoint(conn, head.source)
        keys.append(stored.key)
    stand_in = not hasattr(store, "local_signer")
    if stand_in:
        mirror = note.generate_signer("local")
        store.local_signer = lambda c: mirror  # type: ignore[attr-defined]
    keys.append(str(store.local_signer(conn).verifier))  # type: ignore[attr-defined]
    link, _ = sharing.create(conn, parse(""), secret=sharing.secret_for(db), expires="1d",
                             created_by="bench", base_url="http://127.0.0.1:1")
    if stand_in:  # the store's own signs its local chain at every append
        with store.transaction(conn):
            store.add_checkpoint(conn, store.LOCAL_SOURCE, store.sign_checkpoint(conn, store.LOCAL_SOURCE, mirror),
                                 str(mirror.verifier))
    conn.close()
    return link, keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-export"))
    args = parser.parse_args()
    link, keys = build(args.work, args.events)
    conn = store.open_db(args.work / "audit.db")
    scope = sharing.scope(link)

    make_s, json_s, zip_bytes = [], [], b""
    for _ in range(args.runs):
        started = time.perf_counter()
        rows = list(store.iter_rows(conn, scope))
        download = "".join(formats.json_chunks(rows)).encode()
        json_s.append(time.perf_counter() - started)
        out = io.BytesIO()
        started = time.perf_counter()
        summary = exporting.write_export(conn, link, out)
        make_s.append(time.perf_counter() - started)
        zip_bytes = out.getvalue()
    path = args.work / "export.zip"
    path.write_bytes(zip_bytes)

    verify_s, hash_s = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        report = export_check.check_export(path, keys)
        verify_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        for row in json.loads(download):
            event = from_dict(row)
            assert event.compute_hash() == event.hash
        hash_s.append(time.perf_counter() - started)
    assert report.events == summary.events and not report.warnings, report.warnings

    members = exporting.MEMBERS
    with zipfile.ZipFile(path) as archive:
        sizes = {i.filename: (i.file_size, i.compress_size) for i in archive.infolist()}
    recordings = sum(u for n, (u, _) in sizes.items() if n.startswith(exporting.RECORDING_DIR))
    med = statistics.median
    print(f"export of {summary.events:,} events on {len(summary.chains)} chains, {summary.recordings} recordings "
          f"(median of {args.runs} runs)")
    print(f"  zip: {len(zip_bytes):,} bytes ({len(zip_bytes) / summary.events:,.0f} B/event); the JSON download of "
          f"the same events: {len(download):,} bytes; ratio {len(zip_bytes) / len(download):.2f}")
    print("  members (uncompressed / in the zip): " + ", ".join(
        f"{n} {sizes[n][0]:,}/{sizes[n][1]:,}" for n in members) + f", recordings {recordings:,}")
    print(f"  make: {med(make_s) * 1000:,.0f} ms; writing the JSON download: {med(json_s) * 1000:,.0f} ms; "
          f"ratio {med(make_s) / med(json_s):.1f}")
    print(f"  verify-export: {med(verify_s) * 1000:,.0f} ms; recomputing every hash of the download: "
          f"{med(hash_s) * 1000:,.0f} ms; ratio {med(verify_s) / med(hash_s):.1f}")
    print(f"  manifest sha256 {hashlib.sha256(zipfile.ZipFile(path).read('manifest.json')).hexdigest()}")


if __name__ == "__main__":
    main()
