"""The real mirror the export tests export from: a gateway (chain 'gw') in front of the simulated rack records real
traffic (app creations, scaling, an exec session with its recording), `sync` mirrors it over the feed, and the
sync, pinned to the gateway's checkpoint key, stores the gateway's signed checkpoint of it; then a share link.
And `auditkit serve` on such a mirror, as its own process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx

from auditkit import store
from auditkit.capture import keys
from auditkit.capture.config import GatewayConfig, Rack
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from auditkit.mirror.sync import Feed, sync_once
from auditkit.mirror.trust import Pins
from auditkit.model.filters import parse
from auditkit.share import links as sharing
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread

SHARE_FILTER = "-action:scaled"  # keeps the scalings out, so that an event out of scope exists on the chain


def gateway_mirror(work: Path, share_filter: str = SHARE_FILTER, base_url: str = "http://127.0.0.1:1"
                   ) -> dict[str, Any]:
    """{db, conn, link, url, gateway_key, mirror_key, work}: the mirror at work/data/audit.db, synced from a real
    gateway, and the verifier keys of the gateway and of the mirror."""
    journal = work / "gateway" / "journal.db"
    journal.parent.mkdir(parents=True)
    conn = store.open_db(journal)
    source = journal_source(conn, "gw")
    _, member = keys.add(conn, "bob@example.com", kind="user", role="member", source=source)
    _, auditor = keys.add(conn, "audrey@example.com", kind="user", role="auditor", source=source)
    conn.close()
    db = work / "data" / "audit.db"
    db.parent.mkdir(parents=True)
    with ServerThread(rack_mod.create_app("rackpw")) as rack_server:
        config = GatewayConfig(racks={"acme/production": Rack("acme/production", rack_server.url, "convox",
                                                              "rackpw")},
                               journal=journal, name="gw", http=True, data_dir=journal.parent)
        with ServerThread(create_app(config)) as server:
            with RackClient(server.url, "acme/production", member) as client:
                for i in range(6):
                    client.apps_create(f"app{i}")
                for i in range(4):
                    client.scale("web", "web", count=1 + i)
                process = client.json("GET", "/apps/web/processes")[0]["id"]
                client.exec("web", process, "bash", ["ls --color\r", "exit 2\r"])
                client.apps_create("last")
            mirror = store.open_db(db)
            gateway_key = config.checkpoint_signer(create=False).verifier
            feed = Feed("gw", server.url, auditor, Pins(checkpoint_key=str(gateway_key)))
            sync_once(mirror, feed)  # stores the gateway's checkpoint of what it mirrored, verified
            feed.close()
    stored = store.latest_checkpoint(mirror, "gw")
    assert stored is not None and stored.size == store.tree_size(mirror, "gw"), "sync stored no covering checkpoint"
    link, url = sharing.create(mirror, parse(share_filter), secret=sharing.secret_for(db), expires="7d",
                               note="Q4 <b>sample</b>", created_by="admin@example.com", base_url=base_url)
    return {"db": db, "conn": mirror, "link": link, "url": url, "gateway_key": str(gateway_key),
            "mirror_key": str(store.local_verifier(mirror)), "work": work}


@contextlib.contextmanager
def served(db: Path, port: int, log: Path) -> Iterator[str]:
    """`auditkit serve --db DB --port PORT` as its own process, its output in `log`; yields its base URL."""
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("AUDITKIT_BASE_URL", "AUDITKIT_DB")}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "auditkit.cli", "serve", "--db", str(db),
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/robots.txt", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, \
                    "auditkit serve did not start:\n" + log.read_text()
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
