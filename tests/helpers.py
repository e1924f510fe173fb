"""What the tests share besides fixtures (those are in conftest.py): an event factory, the hand-built corpus, raw
access to files and databases as an attacker would have it, the credentials and keys the Convox CLI sends, and the
paths of the checkout.

The corpus is what tests/model/test_filters.py compares the filter language against: several actors, racks, apps,
categories, actions and outcomes, timestamps spread over about 60 days (with runs of equal timestamps, events on
day edges and events appended out of time order), on two chains. Its text is ASCII so that Python's case folding and
SQLite's agree. `Corpus.events` keeps the append order, which is how ties of equal timestamps are broken.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import itertools
import os
import random
import sqlite3
import subprocess
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from auditkit.model import events as ev
from auditkit.model import note
from auditkit import store
from auditkit.capture.tls import make_certificate
from auditkit.capture.wire import basic_authorization
from convox_sim.servers import free_port  # noqa: F401  (the one free-port finder, re-exported for the tests)

ROOT = Path(__file__).resolve().parent.parent  # the checkout
FIXTURES = Path(__file__).resolve().parent / "fixtures"

UTC = dt.timezone.utc

# The fixed "now" the corpus and the relative filters (since:7d) are read against.
NOW = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
# The corpus spans [START, START + 60 days).
START = dt.datetime(2026, 9, 2, 0, 0, 0, tzinfo=UTC)


def ts(moment: dt.datetime) -> str:
    """A datetime as an event timestamp, written here without events.format_timestamp."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_ids = itertools.count(1)


def draft(**fields: Any) -> ev.Event:
    """An unsealed event with plausible defaults; any field can be given."""
    n = next(_ids)
    values: dict[str, Any] = dict(
        id=f"EV{n:024d}",
        timestamp="2026-10-01T10:00:00.000Z",
        actor="alice@example.com",
        actor_type="user",
        rack="acme/production",
        category="Releases",
        action="promoted",
        description=f"Promoted release R{n:06d} of app web",
        app="web",
        target=f"R{n:06d}",
        outcome="succeeded",
        status=200,
        method="POST",
        path="/apps/web/releases",
    )
    values.update(fields)
    return ev.Event(**values)


def raw_connect(path: Path) -> sqlite3.Connection:
    """The database file as an attacker (or an admin) sees it: plain sqlite3, autocommit, no auditkit."""
    c = sqlite3.connect(path, isolation_level=None)
    c.row_factory = sqlite3.Row
    return c


# --- the corpus -------------------------------------------------------------------------------------------------

ACTORS = [
    ("alice@example.com", "user"),
    ("bob@example.com", "user"),
    ("carol@example.org", "user"),
    ("Dave.Ops@Example.com", "user"),
    ("ci-bot", "deploy_key"),
    ("deploy-prod", "deploy_key"),
    ("system", "system"),
]
RACKS = ["acme/production", "acme/staging", "beta/edge"]
APPS = ["web", "api", "worker", "billing", None]

# (category, action, description template, target template); {app}, {id} and {word} are filled in.
TEMPLATES = [
    ("Releases", "promoted", "Promoted release {id} of app {app}", "{id}"),
    ("Releases", "promoted", "Rolled back: promoted release {id} of app {app}", "{id}"),
    ("Builds", "created", "Created build B{id} for app {app} ({word})", "B{id}"),
    ("Builds", "uploaded", "Uploaded source for build B{id}", "B{id}"),
    ("Environment", "updated", "Updated environment of app {app} (DATABASE_URL, {word})", "{id}"),
    ("Processes", "scaled", "Scaled {app} to 3 processes", None),
    ("Processes", "executed", "Ran exec session in {app}: bash", "p-{id}"),
    ("Processes", "terminated", "Stopped process p-{id} of {app}", "p-{id}"),
    ("Infrastructure", "terminated", "Terminated instance i-0{id}", "i-0{id}"),
    ("Infrastructure", "updated", "Updated rack params: NodeType=t3.large", None),
    ("Security", "imported", "Imported certificate for {word}.example.com", "cert-{id}"),
    ("Security", "rotated", "Rotated API key of the rack", None),
    ("Registries", "added", "Added registry quay.io/{word}", "quay.io/{word}"),
    ("Registries", "removed", "Removed registry docker.io/{word}", "docker.io/{word}"),
    ("Resources", "created", "Created resource {word}-db (postgres)", "{word}-db"),
    ("Applications", "created", "Created app {app}", None),
    ("Applications", "deleted", "Deleted app {app} after PANIC in cleanup", None),
    ("Access", "viewed", "Viewed share link L{id} (100% of scope)", "L{id}"),
    ("Other", "updated", "Unknown write: PUT /weird/path_with_underscores", None),
]
WORDS = ["SENTRY_DSN", "cache", "Blue", "green", "nightly", "hotfix", "canary", "payments", "web", "Quartz"]
OUTCOMES = ["succeeded"] * 6 + ["failed", "failed", "denied", "unknown"]


@dataclasses.dataclass
class Corpus:
    path: Path
    events: list[ev.Event]  # sealed, in the order they were appended

    def connect(self) -> sqlite3.Connection:
        return store.open_db(self.path, readonly=True)


def corpus_drafts(seed: int = 20261101, count: int = 320) -> list[ev.Event]:
    rng = random.Random(seed)
    span_ms = 60 * 86400 * 1000
    start_ms = int(START.timestamp() * 1000)
    drafts: list[ev.Event] = []
    moments: list[dt.datetime] = []
    for i in range(count):
        roll = rng.random()
        if moments and roll < 0.12:
            moment = rng.choice(moments)  # an equal timestamp
        elif roll < 0.16:
            # day edges: the first and the last millisecond of a day
            day = START + dt.timedelta(days=rng.randrange(60))
            moment = day if rng.random() < 0.5 else day + dt.timedelta(days=1, milliseconds=-1)
        else:
            moment = dt.datetime.fromtimestamp((start_ms + rng.randrange(span_ms)) / 1000, tz=UTC)
        moments.append(moment)
        actor, actor_type = rng.choice(ACTORS)
        category, action, description, target = rng.choice(TEMPLATES)
        app = rng.choice(APPS)
        short = f"R{rng.randrange(16**5):05X}"
        word = rng.choice(WORDS)
        fill = dict(app=app or "none", id=short, word=word)
        drafts.append(draft(
            timestamp=ts(moment),
            actor=actor,
            actor_type=actor_type,
            rack=rng.choice(RACKS),
            category=category,
            action=action,
            description=description.format(**fill),
            app=app,
            target=target.format(**fill) if target else None,
            outcome=rng.choice(OUTCOMES),
        ))
    # A few fixed events the queries below rely on (exact edges around NOW and a known target).
    drafts += [
        draft(timestamp=ts(NOW - dt.timedelta(days=7)), description="Exactly seven days before now",
              target="RKZQXWVTSA", actor="bob@example.com"),
        draft(timestamp=ts(NOW - dt.timedelta(days=7, milliseconds=1)), description="One ms too old for 7d",
              target="RKZQXWVTSA", app=None),
        draft(timestamp="2026-10-05T00:00:00.000Z", description="Midnight Oct 5 UTC", app="api"),
        draft(timestamp="2026-10-04T22:00:00.000Z", description="Midnight Oct 5 in +02:00", app="api"),
        draft(timestamp="2026-10-04T21:59:59.999Z", description="Just before midnight Oct 5 in +02:00", app="api"),
        draft(timestamp=ts(NOW + dt.timedelta(hours=1)), description="An event after now (clock skew)"),
    ]
    return drafts


def build_corpus(path: Path) -> Corpus:
    conn = store.open_db(path)
    drafts = corpus_drafts()
    rng = random.Random(7)
    appended: list[ev.Event] = []
    # Appended in batches, alternately on two chains, so keys are assigned out of time order and ties cross chains.
    position = 0
    while position < len(drafts):
        size = rng.randrange(1, 40)
        batch = drafts[position:position + size]
        source = "gw-eu" if (position // 7) % 2 else store.LOCAL_SOURCE
        appended += store.append(conn, batch, source=source)
        position += size
    # gw-eu stands for a synced gateway chain: checkpointed by "its gateway", as sync stores a gateway's checkpoint
    store.checkpoint_chain(conn, "gw-eu", note.generate_signer("gw-eu"))
    conn.close()
    return Corpus(path, appended)


# A real self-signed certificate for shop.example.com and www.shop.example.com (the simulated rack parses it), made
# once per session and shared by the rack and gateway tests.
CERT = make_certificate(["shop.example.com", "www.shop.example.com"],
                        not_after=dt.datetime(2036, 11, 23, 7, 8, 12, tzinfo=UTC))[0].decode()


def private_key(marker: str) -> str:
    """An SSH private key as the CLI sends it in the Private-Key header (its body a marker to look for)."""
    return f"-----BEGIN PRIVATE KEY-----\n{marker}\n-----END PRIVATE KEY-----\n"


def basic(username: str, password: str, *, escape: Callable[[str], str] = lambda p: urllib.parse.quote(p, safe="")
          ) -> str:
    """The Authorization header the Convox SDK sends for RACK_URL userinfo (the password percent-escaped)."""
    return basic_authorization(username, escape(password))


def raw_bytes(db: Path | str) -> bytes:
    """The bytes of a SQLite database and its -wal and -shm files, read by another process: closing a descriptor
    of a database file in this process would drop the POSIX locks its live connections hold (sqlite.org/
    howtocorrupt.html §2.2) and let another process reset the WAL under them."""
    files = [f for f in (str(db), f"{db}-wal", f"{db}-shm") if Path(f).exists()]
    return subprocess.run(["cat", *files], capture_output=True, check=True).stdout


# --- Datasette -------------------------------------------------------------------------------------------------

def close_datasette(ds: Any) -> None:
    """Stop every thread an instance started: no thread may outlive these tests (later tests fork worker
    processes only when no other thread runs)."""
    from auditkit.share.site import instance

    site = instance.site_for(ds)
    if site is not None:
        site.close()
    ds.executor.shutdown(wait=True)
    # Datasette's write threads loop forever: end each with SystemExit, which Python's own thread excepthook
    # ignores (pytest's, in place during the test, would report it).
    hook, threading.excepthook = threading.excepthook, threading.__excepthook__
    try:
        for database in ds.databases.values():
            if database._write_thread is not None:
                database._write_queue.put(_Stop())
                database._write_thread.join(timeout=10)
    finally:
        threading.excepthook = hook


class _Stop:
    reply_queue = None

    @staticmethod
    def fn(conn: Any) -> None:
        raise SystemExit


FILL_CAP = 64 << 20  # never write more than this, whatever the filesystem (a guard: the test tmpfs holds a few MiB)


def fill(mount: Path) -> None:
    """Write mount/filler until the filesystem has no byte left; only on a mount point (a small tmpfs), never on the
    disk under it, and never more than FILL_CAP."""
    if not os.path.ismount(mount):
        raise RuntimeError(f"{mount} is not a mount point: not filling it")
    written = 0
    with open(mount / "filler", "ab", buffering=0) as f:
        for size in (1 << 20, 1 << 16, 4096, 512, 1):
            chunk = b"\0" * size
            try:
                while written < FILL_CAP:
                    written += f.write(chunk) or 0
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
