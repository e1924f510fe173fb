"""`auditkit verify --online`: each mirrored source's live checkpoint, fetched from its feed as sync fetches it (the
Feed of mirror/sync.py with the source's pins and key, mirror/checkpoints.py's signature check), checked against
what the mirror stored: it must extend the newest stored checkpoint (a consistency proof) and the mirrored chain,
and how far the mirror is behind it is said, never left silent. Nothing is written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.mirror import checkpoints, sync, trust


def check(conn: sqlite3.Connection, report: store.VerifyReport, data_dir: Path, *,
          feed_for: Callable[[store.ChainHead], sync.Feed] | None = None) -> None:
    """Add to `report` what each source with a feed URL says now: a problem ("live", "forked") or a note."""
    for head in store.chain_heads(conn):
        if head.source == store.LOCAL_SOURCE:
            continue
        if not head.url:
            if head.last_seq:
                report.notes.append(f"{head.source}: no feed to ask (not a synced source), checked offline only")
            continue
        try:
            feed = feed_for(head) if feed_for else _feed(conn, head, data_dir)
        except AuditkitError as e:
            report.problems.append(store.Problem("live", head.source, None, None,
                                                 f"{head.source}: cannot ask its feed: {e}"))
            continue
        try:
            _check_one(conn, feed, head, report)
        finally:
            feed.close()


def _feed(conn: sqlite3.Connection, head: store.ChainHead, data_dir: Path) -> sync.Feed:
    pins = trust.load(conn, head.source)
    trust.check_url(head.url or "", pins)
    return sync.Feed(head.source, head.url or "", sync.read_key(head.source, data_dir), pins, retries=2)


def _check_one(conn: sqlite3.Connection, feed: sync.Feed, head: store.ChainHead, report: store.VerifyReport) -> None:
    name = feed.name
    try:
        signed = checkpoints.fetch(feed, feed.pins.checkpoint_key)
    except AuditkitError as e:
        report.problems.append(store.Problem("live", name, None, None, f"{name}: its live checkpoint: {e}"))
        return
    try:
        # refetch=True: a mirror cut below its stored checkpoint is the offline check's `truncated` finding; here
        # only the live checkpoint against the stored one and the mirror counts.
        checkpoints.check_against_mirror(conn, feed, signed, refetch=True)
    except checkpoints.CheckpointError as e:
        report.problems.append(store.Problem("forked", name, None, None,
                                             str(e).removesuffix("; nothing was committed")))
        return
    except AuditkitError as e:
        report.problems.append(store.Problem("live", name, None, None, f"{name}: {e}"))
        return
    when = f"signed {signed.signed_at}" if signed.signed_at else "signed"
    if signed.size > head.last_seq:
        report.notes.append(f"{name}: the mirror is {signed.size - head.last_seq:,} event(s) behind its gateway "
                            f"(seq {head.last_seq} of {signed.size}, {when}): run `auditkit sync {name}`")
    else:
        report.notes.append(f"{name}: up to date with its gateway's live checkpoint (size {signed.size}, {when})")
