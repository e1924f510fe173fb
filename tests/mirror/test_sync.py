"""The sync agent against a real gateway feed on loopback: mirror, resume, refusals and faults."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from auditkit import store
from auditkit.cli import main
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread
from auditkit.model.filters import parse
from auditkit.capture import keys
from auditkit.capture.proxy import create_app
from auditkit.capture.config import GatewayConfig, Rack
from auditkit.capture.journal import journal_source
from auditkit.mirror.sync import Feed, SyncError, sync_once
from auditkit.mirror.trust import Pins
from feeds import journal_with, serve_journal
from helpers import ROOT


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A gateway (chain 'gw') with a journal of real traffic, one recorded session, and an auditor key."""
    work = tmp_path_factory.mktemp("sync")
    journal = work / "journal.db"
    conn = store.open_db(journal)
    source = journal_source(conn, "gw")
    _, member = keys.add(conn, "bob@example.com", kind="user", role="member", source=source)
    _, auditor = keys.add(conn, "audrey@example.com", kind="user", role="auditor", source=source)
    conn.close()
    with ServerThread(rack_mod.create_app("rackpw")) as rack_server:
        config = GatewayConfig(racks={"acme/production": Rack("acme/production", rack_server.url, "convox", "rackpw")},
                               journal=journal, name="gw", http=True, data_dir=work)
        with ServerThread(create_app(config)) as server:
            client = RackClient(server.url, "acme/production", member)
            for i in range(25):
                client.scale("web", "web", count=1 + i % 4)
            process = client.json("GET", "/apps/web/processes")[0]["id"]
            client.exec("web", process, "bash", ["ls --color\r", "exit 2\r"])
            pins = Pins(checkpoint_key=str(config.checkpoint_signer().verifier))
            yield {"url": server.url, "auditor": auditor, "member": member, "journal": journal, "client": client,
                   "pins": pins}
            client.close()


def _rows(path: Path) -> list[tuple]:
    conn = store.open_db(path)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT source, source_seq, hash, id FROM events WHERE source = 'gw' ORDER BY source_seq")]
    finally:
        conn.close()


def test_a_mirror_equals_the_journal_with_its_recordings(gateway, tmp_path):
    mirror = store.open_db(tmp_path / "audit.db")
    feed = Feed("gw", gateway["url"], gateway["auditor"], gateway["pins"])
    done = sync_once(mirror, feed, page=7)  # several pages
    assert done.synced == len(_rows(gateway["journal"])) > 25
    assert _rows(tmp_path / "audit.db") == _rows(gateway["journal"])
    assert mirror.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
    # the recorded size, as the gateway's own sessions row has it (was NULL in the mirror: "size unknown")
    assert tuple(mirror.execute("SELECT width, height FROM sessions").fetchone()) == (100, 30)
    assert store.verify(mirror).ok
    # Idempotent and resumable: running again adds nothing; new events are picked up from the cursor.
    assert sync_once(mirror, feed).synced == 0
    gateway["client"].scale("web", "web", count=2)
    # The outcome is journaled just after the answer: a long-poll picks it up as soon as it lands.
    assert sync_once(mirror, feed, wait=5).synced == 1
    assert _rows(tmp_path / "audit.db") == _rows(gateway["journal"])
    feed.close()


def test_a_member_key_is_refused_with_a_clear_error(gateway, tmp_path):
    mirror = store.open_db(tmp_path / "audit.db")
    with pytest.raises(SyncError, match="refused the key \\(403\\)"):
        sync_once(mirror, Feed("gw", gateway["url"], gateway["member"], gateway["pins"]))
    with pytest.raises(SyncError, match="refused the key \\(401\\)"):
        sync_once(mirror, Feed("gw", gateway["url"], "akg_not-a-key", gateway["pins"]))
    assert store.count(mirror) == 0


def _tampering_transport(gateway, change):
    real = httpx.Client(verify=False)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = real.get(str(request.url), headers={"authorization": request.headers["authorization"]})
        body = answer.json() if request.url.path.endswith("/events") else None
        if body is not None:
            change(body)
            return httpx.Response(answer.status_code, json=body)
        return httpx.Response(answer.status_code, content=answer.content)

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("what,change,message", [
    ("tampered event", lambda b: b["events"][3].update(actor="mallory@example.com"), "carries hash"),
    ("skipped seq", lambda b: b["events"].pop(2), "a gap in the feed"),
    ("repeated event", lambda b: b["events"].insert(2, b["events"][1]), "a repeat in the feed"),
    ("broken link", lambda b: b["events"][0].update(prev_hash="f" * 64), "broken chain at seq 1"),
    ("missing field", lambda b: b["events"][1].pop("rack"), "malformed event"),
])
def test_a_bad_page_stops_sync_and_commits_nothing_of_it(gateway, tmp_path, what, change, message):
    mirror = store.open_db(tmp_path / "audit.db")
    feed = Feed("gw", gateway["url"], gateway["auditor"], gateway["pins"], client=_tampering_transport(gateway, change))
    with pytest.raises(SyncError, match=message):
        sync_once(mirror, feed, page=10)
    assert store.count(mirror) == 0 and store.chain_head(mirror, "gw").last_seq == 0


def test_server_errors_are_retried_then_sync_recovers(gateway, tmp_path):
    failures = {"left": 3}
    real = httpx.Client(verify=False)
    waits: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503, headers={"Retry-After": "1"}, json={"error": "busy"})
        answer = real.get(str(request.url), headers={"authorization": request.headers["authorization"]})
        return httpx.Response(answer.status_code, content=answer.content,
                              headers={"content-type": answer.headers.get("content-type", "")})

    mirror = store.open_db(tmp_path / "audit.db")
    feed = Feed("gw", gateway["url"], gateway["auditor"], gateway["pins"], client=httpx.Client(transport=httpx.MockTransport(handler)),
                sleep=waits.append)
    assert sync_once(mirror, feed).synced == len(_rows(gateway["journal"]))
    assert len(waits) == 3 and all(w >= 0.5 for w in waits)  # Retry-After honoured, with jitter


def test_cli_add_list_and_run(gateway, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(gateway["auditor"])
    db = tmp_path / "data" / "audit.db"
    runner = CliRunner()
    added = runner.invoke(main, ["sync", "add", "gw", gateway["url"], "--key-file", str(key_file), "--db", str(db)])
    assert added.exit_code == 0, added.output
    stored = tmp_path / "data" / "sync-gw.key"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert gateway["auditor"].encode() not in db.read_bytes()
    ran = runner.invoke(main, ["sync", "--db", str(db)])
    assert ran.exit_code == 0, ran.output
    assert "sync gw: +" in ran.output
    assert _rows(db) == _rows(gateway["journal"])
    listed = runner.invoke(main, ["sync", "list", "--db", str(db)])
    assert "gw" in listed.output and str(len(_rows(db))) in listed.output
    missing = runner.invoke(main, ["sync", "nosuch", "--db", str(db)])
    assert missing.exit_code == 2 and "no such source: nosuch" in missing.output


def test_two_sources_mirror_into_one_file_and_interleave_by_time(tmp_path):
    keys_by_source = {"gw-us": journal_with(tmp_path / "us.db", "gw-us", 300, 0),
                      "gw-eu": journal_with(tmp_path / "eu.db", "gw-eu", 200, 1)}
    servers = {s: serve_journal(tmp_path / f"{s[3:]}.db", s, tmp_path) for s in keys_by_source}
    try:
        mirror = store.open_db(tmp_path / "audit.db")
        for source, key in keys_by_source.items():
            sync_once(mirror, Feed(source, servers[source].url, key, Pins(checkpoint_key=servers[source].checkpoint_key)))
        assert store.verify(mirror).ok and store.count(mirror) == 300 + 200 + 2
        times = [e.timestamp for e in store.page(mirror, None, limit=1000).events]
        assert times == sorted(times, reverse=True)
        sources = [e.source for e in store.page(mirror, parse("since:2026-11-01T00:00 until:2026-11-01T00:10"),
                                                limit=50).events]
        assert {"gw-us", "gw-eu"} <= set(sources)
    finally:
        for server in servers.values():
            server.stop()


def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path):
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    key = journal_with(tmp_path / "journal.db", "gw", 60_000)
    server = serve_journal(tmp_path / "journal.db", "gw", tmp_path)
    db = tmp_path / "data" / "audit.db"
    try:
        store.open_db(db).close()
        from auditkit.mirror.sync import add_source

        conn = store.open_db(db)
        add_source(conn, "gw", server.url, key, db.parent)
        conn.close()
        rng = random.Random(7)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # Kill points spread over the whole run: each process is killed once the mirror passes its target seq,
        # after a random extra moment (mid-page, mid-commit, between pages).
        targets = sorted(rng.sample(range(1, 60_000), 20))
        killed = 0
        reader = store.open_db(db)
        for target in targets:
            proc = subprocess.Popen([sys.executable, "-m", "auditkit.cli", "sync", "--db", str(db)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while proc.poll() is None and store.chain_head(reader, "gw").last_seq < target:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait()
        reader.close()
        final = subprocess.run([sys.executable, "-m", "auditkit.cli", "sync", "--db", str(db)], env=env,
                               capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        assert killed >= 18, killed  # (the last targets may fall in the final page)
        assert _rows(db) == _rows(tmp_path / "journal.db")
        mirror = store.open_db(db)
        assert store.verify(mirror).ok
        # The first run caught up an empty mirror with its indexes deferred and was killed: a later run built them.
        assert not store.indexes_deferred(mirror)
        assert _index_names(mirror) == _index_names(store.open_db(tmp_path / "fresh.db"))
        assert store.count(mirror, parse("\"count=3\"")) == store.count(mirror, parse("\"count=3\""), fts=False) > 0
    finally:
        server.stop()


def _index_names(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")}


def _flaky_client(gateway, fail):
    """An httpx client whose transport passes requests to the real feed unless `fail(n, request)` answers first."""
    real = httpx.Client(verify=False)
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        answer = fail(calls["n"], request)
        if answer is not None:
            return answer
        got = real.get(str(request.url), headers={"authorization": request.headers["authorization"]})
        return httpx.Response(got.status_code, content=got.content,
                              headers={"content-type": got.headers.get("content-type", "")})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_time_outs_are_retried(gateway, tmp_path):
    def fail(n, request):
        if n <= 2:
            raise httpx.ReadTimeout("slow feed", request=request)
        return None

    waits: list[float] = []
    mirror = store.open_db(tmp_path / "audit.db")
    feed = Feed("gw", gateway["url"], gateway["auditor"], gateway["pins"], client=_flaky_client(gateway, fail), sleep=waits.append)
    assert sync_once(mirror, feed).synced == len(_rows(gateway["journal"]))
    assert len(waits) == 2 and waits[1] > waits[0] * 0.9  # backing off


def test_a_truncated_page_stops_with_a_clear_error_and_commits_nothing(gateway, tmp_path):
    real = httpx.Client(verify=False)

    def fail(n, request):
        if not request.url.path.endswith("/events"):
            return None
        got = real.get(str(request.url), headers={"authorization": request.headers["authorization"]})
        return httpx.Response(200, content=got.content[: len(got.content) // 2],
                              headers={"content-type": "application/json"})

    mirror = store.open_db(tmp_path / "audit.db")
    with pytest.raises(SyncError, match="malformed page after seq 0: not JSON"):
        sync_once(mirror, Feed("gw", gateway["url"], gateway["auditor"], gateway["pins"], client=_flaky_client(gateway, fail)))
    assert store.count(mirror) == 0


def test_a_repeated_page_is_refused(gateway, tmp_path):
    real = httpx.Client(verify=False)

    def fail(n, request):
        url = httpx.URL(str(request.url)).copy_set_param("after", "0")  # always the first page again
        got = real.get(str(url), headers={"authorization": request.headers["authorization"]})
        return httpx.Response(got.status_code, content=got.content, headers={"content-type": "application/json"})

    mirror = store.open_db(tmp_path / "audit.db")
    feed = Feed("gw", gateway["url"], gateway["auditor"], gateway["pins"], client=_flaky_client(gateway, fail))
    with pytest.raises(SyncError, match="a repeat in the feed: expected seq 6, got 1"):
        sync_once(mirror, feed, page=5)
    assert store.chain_head(mirror, "gw").last_seq == 5  # the good first page stays; nothing of the repeat


def test_follow_mirrors_a_new_event_within_a_second(gateway, tmp_path):
    import os
    import subprocess
    import sys
    import time

    db = tmp_path / "data" / "audit.db"
    key_file = tmp_path / "key"
    key_file.write_text(gateway["auditor"])
    assert CliRunner().invoke(main, ["sync", "add", "gw", gateway["url"], "--key-file", str(key_file),
                                     "--db", str(db)]).exit_code == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "auditkit.cli", "sync", "--follow", "--db", str(db)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        conn = store.open_db(db)
        deadline = time.monotonic() + 30
        while store.chain_head(conn, "gw").last_seq < len(_rows(gateway["journal"])):
            assert time.monotonic() < deadline and proc.poll() is None, "the first catch-up did not finish"
            time.sleep(0.05)
        delays = []
        for count in (3, 4, 5):
            gateway["client"].scale("web", "web", count=count)
            journal = store.open_db(gateway["journal"])
            while True:  # the moment the gateway journals the outcome
                head = store.chain_head(journal, "gw").last_seq
                if head == store.chain_head(conn, "gw").last_seq + 1 or \
                        journal.execute("SELECT 1 FROM intents").fetchone() is None:
                    break
                time.sleep(0.002)
            journaled = time.monotonic()
            while store.chain_head(conn, "gw").last_seq < head:
                assert time.monotonic() - journaled < 5, "follow did not pick the event up"
                time.sleep(0.005)
            delays.append(time.monotonic() - journaled)
            journal.close()
        assert max(delays) < 1.0, delays
    finally:
        proc.kill()
        proc.wait()
