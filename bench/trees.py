"""What keeping each chain's Merkle tree costs: µs per appended event, at 1M events, against the append it rides on.

Seals --events events in pages of --page (as sync commits a feed's pages) onto one chain of a fresh mirror with
store.append_sealed, timing the part spent in trees.extend (the tree's share: leaf hashes, node hashes, node rows)
and the whole append; then the cost of a tree head, an inclusion and a consistency proof at the final size.

    .venv/bin/python bench/trees.py --events 1000000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from auditkit import store
from auditkit.model import events as ev
from auditkit.store import trees


def _drafts(n: int, start: int) -> list[ev.Event]:
    return [ev.Event(id=f"EV{start + i:024d}", timestamp=f"2026-10-01T10:{(start + i) // 60000 % 60:02d}:"
                     f"{(start + i) // 1000 % 60:02d}.{(start + i) % 1000:03d}Z",
                     actor="alice@example.com", actor_type="user", rack="acme/production", category="Releases",
                     action="promoted", description=f"Promoted release R{start + i} of app web", app="web",
                     target=f"R{start + i}", outcome="succeeded") for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=5000)
    args = parser.parse_args()
    spent = [0.0]
    real_extend = trees.extend

    def timed_extend(*a, **k):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return real_extend(*a, **k)
        finally:
            spent[0] += time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        conn = store.open_db(path)
        seq, prev, total = 0, ev.GENESIS_HASH, 0.0
        trees.extend = timed_extend  # type: ignore[assignment]
        import auditkit.store.chains as chains
        chains.trees.extend = timed_extend  # type: ignore[attr-defined]
        try:
            while seq < args.events:
                n = min(args.page, args.events - seq)
                sealed = ev.seal_all(_drafts(n, seq), source="gw", after_seq=seq, after_hash=prev)
                t = time.perf_counter()
                store.append_sealed(conn, sealed, check_hashes=False)
                total += time.perf_counter() - t
                seq, prev = sealed[-1].source_seq, sealed[-1].hash
        finally:
            trees.extend = real_extend  # type: ignore[assignment]
            chains.trees.extend = real_extend  # type: ignore[attr-defined]
        nodes = conn.execute("SELECT count(*) FROM merkle_nodes").fetchone()[0]
        tree_bytes = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE '%merkle_nodes%'").fetchone()[0] \
            if _has_dbstat(conn) else None
        t = time.perf_counter()
        for _ in range(100):
            store.tree_root(conn, "gw")
        head_ms = (time.perf_counter() - t) * 10
        t = time.perf_counter()
        for i in range(100):
            store.inclusion_proof(conn, "gw", 1 + i * (seq // 100), seq)
        inclusion_ms = (time.perf_counter() - t) * 10
        t = time.perf_counter()
        for i in range(100):
            store.consistency_proof(conn, "gw", 1 + i * (seq // 100), seq)
        consistency_ms = (time.perf_counter() - t) * 10
        conn.close()
        size = os.path.getsize(path)
    per_event = spent[0] / seq * 1e6
    print(f"{seq:,} events in pages of {args.page}: append {total:.1f} s ({total / seq * 1e6:.1f} µs/event), "
          f"of which the tree {spent[0]:.2f} s ({per_event:.2f} µs/event, {spent[0] / total:.1%})")
    print(f"merkle_nodes: {nodes:,} rows" + (f", {tree_bytes / seq:.0f} bytes/event on disk" if tree_bytes else "")
          + f"; file {size / 2**20:.0f} MiB")
    print(f"tree head {head_ms:.2f} ms, inclusion proof {inclusion_ms:.2f} ms, consistency proof "
          f"{consistency_ms:.2f} ms (mean of 100, at size {seq:,})")
    print(f"tree-share-of-append: {spent[0] / total:.1%} (target <= 15%) {'ok' if spent[0] / total <= 0.15 else 'MISSED'}")


def _has_dbstat(conn) -> bool:  # type: ignore[no-untyped-def]
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1").fetchone()
        return True
    except Exception:  # noqa: BLE001 — SQLite built without DBSTAT
        return False


if __name__ == "__main__":
    main()
