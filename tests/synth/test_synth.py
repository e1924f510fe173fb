"""The synthetic history (auditkit/synth/history.py): chain-valid, deterministic, realistic in who, where, what and
when, and it never stores a secret value.

Most tests read one history of 5,000 events written once for the module; the secret values the generator made for it
are collected by wrapping synth._secret, so the test can look for them in the database file's bytes.
"""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditkit.model import events as ev
from auditkit import store
from auditkit.cli import main as cli_main
from auditkit.synth import history as synth
from auditkit.synth import requests as synth_requests
from auditkit.model.filters import parse

UTC = dt.timezone.utc
END = dt.datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
DAYS = 30
N = 5000
SEED = 1


def _rows(conn: sqlite3.Connection, where: str = "1", params: tuple = ()) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT * FROM events WHERE {where} ORDER BY n", params).fetchall()
    out = []
    for row in rows:
        data = dict(row)
        data["details"] = json.loads(data["details"])
        out.append(data)
    return out


class History:
    def __init__(self, path: Path, conn: sqlite3.Connection, summary: synth.Summary, secrets: list[tuple[str, str]],
                 progress: list[int]):
        self.path, self.conn, self.summary, self.secrets, self.progress = path, conn, summary, secrets, progress
        self.events = _rows(conn)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("synth") / "audit.db"
    secrets: list[tuple[str, str]] = []
    progress: list[int] = []
    real_secret = synth._secret

    def recording_secret(rng: Any, key: str) -> str:
        value = real_secret(rng, key)
        secrets.append((key, value))
        return value

    conn = store.open_db(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(synth, "_secret", recording_secret)
        summary = synth.write_history(conn, events=N, seed=SEED, days=DAYS, end=END, progress=progress.append,
                                      parallel=False)
    yield History(path, conn, summary, secrets, progress)
    conn.close()


# --- chains, counts, determinism --------------------------------------------------------------------------------------

def test_writes_exactly_the_requested_events_on_valid_chains(history):
    assert history.summary.events == N == len(history.events)
    report = store.verify(history.conn)
    assert report.ok, report.problems
    assert report.events == N
    assert report.sessions == history.summary.sessions == history.conn.execute(
        "SELECT count(*) FROM sessions").fetchone()[0]
    sources = {e["source"] for e in history.events}
    assert {"local"} < sources and len(sources) >= 3  # two or three regional gateways and the mirror's own chain
    assert all(s == "local" or s.startswith("gw-") for s in sources)
    # Progress was reported as the batches went in, ending at the total.
    assert history.progress and history.progress[-1] == N
    assert history.progress == sorted(history.progress)


def test_each_chain_is_in_time_order_and_inside_the_window(history):
    start = END - dt.timedelta(days=DAYS)
    by_source = collections.defaultdict(list)
    for e in history.events:
        by_source[e["source"]].append(e)
    for source, events in by_source.items():
        events.sort(key=lambda e: e["source_seq"])
        assert [e["source_seq"] for e in events] == list(range(1, len(events) + 1))
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps), f"{source} is not in time order"
    for e in history.events:
        moment = ev.parse_timestamp(e["timestamp"])
        assert start <= moment < END, e["timestamp"]
    # The history really spans the window, not just a corner of it.
    first = min(ev.parse_timestamp(e["timestamp"]) for e in history.events)
    last = max(ev.parse_timestamp(e["timestamp"]) for e in history.events)
    assert first - start < dt.timedelta(days=2) and END - last < dt.timedelta(days=1)


def _content(path: Path) -> list[tuple]:
    conn = store.open_db(path)
    try:
        return [tuple(r) for r in conn.execute(
            f"SELECT {', '.join(ev.FIELDS)} FROM events ORDER BY source, source_seq").fetchall()]
    finally:
        conn.close()


def _write(path: Path, **kwargs: Any) -> synth.Summary:
    conn = store.open_db(path)
    try:
        return synth.write_history(conn, **kwargs)
    finally:
        conn.close()


def test_same_seed_and_end_give_byte_identical_events_and_another_seed_does_not(tmp_path):
    args = dict(events=1500, days=10, end=END)
    _write(tmp_path / "a.db", seed=5, **args)
    _write(tmp_path / "b.db", seed=5, **args)
    _write(tmp_path / "c.db", seed=6, **args)
    a, b, c = (_content(tmp_path / f"{x}.db") for x in "abc")
    assert len(a) == 1500 and a == b
    assert a != c
    ca = sqlite3.connect(tmp_path / "a.db").execute("SELECT id, sha256 FROM sessions ORDER BY id").fetchall()
    cb = sqlite3.connect(tmp_path / "b.db").execute("SELECT id, sha256 FROM sessions ORDER BY id").fetchall()
    assert ca and ca == cb


def test_worker_processes_write_the_same_history_as_one_process(tmp_path, monkeypatch):
    if synth._fork_context() is None:
        pytest.skip("no fork start method here (or other threads run), so write_history stays in-process")
    started = []
    real_remote = synth._Remote

    class SpyRemote(real_remote):  # type: ignore[misc, valid-type]
        def __init__(self, ctx: Any, args: tuple, seq: int):
            started.append(args[1])
            super().__init__(ctx, args, seq)

    monkeypatch.setattr(synth, "_Remote", SpyRemote)
    monkeypatch.setattr(synth, "BATCH_EVENTS", 1500)  # several time windows, each source handing over each one
    args = dict(events=12_000, seed=3, days=20, end=END)
    _write(tmp_path / "one.db", parallel=False, **args)
    assert not started
    summary = _write(tmp_path / "many.db", parallel=True, **args)
    assert started and "local" not in started  # every gateway chain came from a worker
    assert summary.events == 12_000
    assert _content(tmp_path / "one.db") == _content(tmp_path / "many.db")
    conn = store.open_db(tmp_path / "many.db")
    assert store.verify(conn).ok
    for text in ("worker", '"promoted release"', "zz-nothing"):
        f = parse(text)  # the full-text index, filled batch by batch, finds exactly what a scan finds
        assert store.count(conn, f, now=END) == store.count(conn, f, now=END, fts=False)
        assert len(list(store.iter_rows(conn, f, now=END))) == store.count(conn, f, now=END)
    assert store.count(conn, parse("worker"), now=END) > 0
    conn.close()


def test_continues_chains_already_in_the_store(tmp_path):
    path = tmp_path / "audit.db"
    _write(path, events=800, seed=2, days=5, end=END)
    _write(path, events=700, seed=2, days=5, end=END + dt.timedelta(days=5))
    conn = store.open_db(path)
    report = store.verify(conn)
    assert report.ok, report.problems
    assert report.events == 1500


def test_every_gateway_event_is_what_the_catalog_records_for_its_request(history, tmp_path, monkeypatch):
    # The history renders through capture.catalog with a cache per request shape; without the cache (the catalog
    # on every single request) it must come out byte for byte the same.
    monkeypatch.setattr(synth, "render", synth_requests.render_directly)
    _write(tmp_path / "direct.db", events=N, seed=SEED, days=DAYS, end=END, parallel=False)
    assert _content(tmp_path / "direct.db") == _content(history.path)
    gateway = [e for e in history.events if e["method"] is not None]
    assert len(gateway) > 0.9 * N
    kinds = {(e["category"], e["action"]) for e in gateway}
    assert len(kinds) >= 40  # most of the catalog's routes, not a handful


# --- who and where ---------------------------------------------------------------------------------------------------

def test_about_forty_people_five_deploy_keys_and_a_few_system_events(history):
    people = {e["actor"] for e in history.events if e["actor_type"] == "user" and "@" in e["actor"]}
    assert 36 <= len(people) <= 42
    domains = {p.split("@")[1] for p in people}
    assert 1 <= len(domains) <= 2
    assert all(re.fullmatch(r"[a-z]+(\.[a-z]+)?@example\.(com|net)", p) for p in people)
    keys = {e["actor"] for e in history.events if e["actor_type"] == "deploy_key"}
    assert len(keys) == 5 and "ci-github-actions" in keys
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)+", k) for k in keys)
    system = [e for e in history.events if e["actor_type"] == "system"]
    assert system and len(system) < 0.02 * N
    assert all(e["actor"] == "system" for e in system)
    # Deploys are often a deploy key's (CI), often a person's.
    uploads = [e for e in history.events if (e["category"], e["action"]) == ("Builds", "uploaded")]
    assert 0.35 < sum(e["actor_type"] == "deploy_key" for e in uploads) / len(uploads) < 0.8


def test_racks_are_org_slash_rack_and_their_number_follows_the_seed(history):
    racks = {e["rack"] for e in history.events if e["source"] != "local"}
    # the mirror's own events (share links, as auditkit.sharing records them) are on rack 'local'
    assert {e["rack"] for e in history.events if e["source"] == "local"} == {"local"}
    assert 3 <= len(racks) <= 12
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*/[a-z][a-z0-9-]*", r) for r in racks)
    assert {"acme/production", "acme/staging"} <= racks
    counts = {len(synth.build_world(seed).racks) for seed in range(1, 30)}
    assert min(counts) >= 3 and max(counts) <= 12 and len(counts) >= 5
    apps = {e["app"] for e in history.events if e["app"]}
    assert {"web", "api", "worker", "billing"} <= apps


# --- what ------------------------------------------------------------------------------------------------------------

def test_every_category_appears_in_realistic_proportions(history):
    by_category = collections.Counter(e["category"] for e in history.events)
    assert set(by_category) == set(ev.CATEGORIES)
    share = {c: n / N for c, n in by_category.items()}
    assert share["Releases"] + share["Builds"] + share["Environment"] + share["Processes"] > 0.8
    for busy in ("Releases", "Builds", "Environment", "Processes"):
        assert share[busy] > 0.05, busy
    for rare in ("Security", "Infrastructure", "Registries", "Other", "Access", "Resources"):
        assert share[rare] < 0.04, rare
    actions = collections.Counter(e["action"] for e in history.events)
    assert set(actions) <= set(ev.ACTIONS)
    assert len(actions) >= 25
    access = {e["action"] for e in history.events if e["category"] == "Access"}
    assert {"viewed", "created", "revoked"} <= access


# The rack's answer names a new build or release: without one (an error, no answer) the catalog leaves the id out.
TEMPLATES = {
    ("Releases", "promoted"): r"Promoted release (R[A-Z]{9}) of app ([a-z0-9-]+)",
    ("Releases", "created"): r"Created release( R[A-Z]{9})? of app ([a-z0-9-]+) from build B[A-Z]{9}",
    ("Builds", "created"): r"Created build( B[A-Z]{9})? of app ([a-z0-9-]+) \(.+\)",
    ("Builds", "uploaded"): r"Uploaded source object (tmp/[0-9a-f]{64}\.tgz) for app ([a-z0-9-]+)",
    ("Processes", "scaled"): r"Scaled service ([a-z-]+) of app ([a-z0-9-]+) \(((count|cpu|memory|min|max)=\d+ ?)+\)",
    ("Infrastructure", "terminated"): r"Terminated instance (i-0[0-9a-f]{16})",
}
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
PATHS = {
    ("Releases", "promoted"): "/apps/{app}/releases/{target}/promote",
    ("Releases", "created"): "/apps/{app}/releases",
    ("Builds", "created"): "/apps/{app}/builds",
    ("Builds", "uploaded"): "/apps/{app}/objects/{target}",
    ("Processes", "scaled"): "/apps/{app}/services/{target}",
    ("Infrastructure", "terminated"): "/instances/{target}",
}


def test_descriptions_and_request_lines_follow_the_convox_routes(history):
    seen = collections.Counter()
    for e in history.events:
        key = (e["category"], e["action"])
        if key in TEMPLATES:
            assert re.fullmatch(TEMPLATES[key], e["description"]), e["description"]
            assert e["path"] == PATHS[key].format(app=e["app"], target=e["target"]), e
            if key in (("Releases", "created"), ("Builds", "created")):
                answered = e["outcome"] == "succeeded"
                assert (f" {e['target']} of app " in e["description"]) == answered, e
                assert (e["target"] is not None) == answered, e
            seen[key] += 1
        if e["method"] is not None:
            assert e["method"] in ("GET", "POST", "PUT", "DELETE", "PATCH")
            assert re.fullmatch(UUID4, e["request_id"] or "")
        if e["actor_type"] != "system" and e["source"] != "local":
            assert e["source_ip"] and e["user_agent"]
        if e["source"] != "local" and e["actor_type"] != "system":
            assert e["user_agent"].startswith("convox.go/") or e["category"] == "Access"
    assert all(seen[k] for k in TEMPLATES if k != ("Infrastructure", "terminated"))
    exec_events = [e for e in history.events if e["action"] == "executed" and e["outcome"] == "succeeded"]
    assert exec_events
    for e in exec_events:
        assert re.fullmatch(r"Executed `[^`]+` in process \S+ of app [a-z0-9-]+ \(exit \d+\)", e["description"])
        assert e["path"] == f"/apps/{e['app']}/processes/{e['target']}/exec" and e["status"] == 101


def test_deploys_come_as_bursts_upload_build_release_promote(history):
    events = history.events
    by_release: dict[str, dict] = {}
    for e in events:
        if (e["category"], e["action"]) == ("Releases", "created") and "from build" in e["description"]:
            by_release[e["target"]] = e
    uploads = collections.defaultdict(list)
    builds = {}
    for e in events:
        if (e["category"], e["action"]) == ("Builds", "uploaded"):
            uploads[(e["rack"], e["app"], e["actor"])].append(e)
        if (e["category"], e["action"]) == ("Builds", "created"):
            builds[e["target"]] = e
    bursts = 0
    promotes = [e for e in events if e["action"] == "promoted" and e["outcome"] == "succeeded"
                and e["target"] in by_release and by_release[e["target"]]["details"].get("rollback_to") is None]
    assert len(promotes) > 200
    for promote in promotes:
        release = by_release[promote["target"]]
        build = builds.get(release["details"]["build"])
        if build is None:
            continue
        t_promote = ev.parse_timestamp(promote["timestamp"])
        t_build = ev.parse_timestamp(build["timestamp"])
        same = (build["rack"], build["app"], build["actor"]) == (promote["rack"], promote["app"], promote["actor"])
        upload_before = any(dt.timedelta(0) <= t_build - ev.parse_timestamp(u["timestamp"]) <= dt.timedelta(minutes=1)
                            for u in uploads[(build["rack"], build["app"], build["actor"])])
        if same and upload_before and dt.timedelta(0) < t_promote - t_build <= dt.timedelta(minutes=25):
            bursts += 1
    assert bursts > 0.9 * len(promotes)


def test_some_requests_fail_some_are_denied_a_few_never_got_an_answer(history):
    outcomes = collections.Counter(e["outcome"] for e in history.events)
    assert outcomes["failed"] > 0.01 * N
    assert outcomes["denied"] > 0.002 * N
    assert 0 < outcomes["unknown"] < 0.01 * N
    assert outcomes["succeeded"] > 0.9 * N
    for e in history.events:
        if e["outcome"] == "failed":
            assert e["status"] >= 400 and e["status"] != 403 and e["details"].get("error")
        elif e["outcome"] == "denied":
            assert e["status"] == 403 and "forbidden" in e["details"]["error"]
        elif e["outcome"] == "unknown":
            assert e["status"] is None and e["method"] is not None
    # Denials come from people whose role may not do it, mostly read-only ones.
    world = synth.build_world(SEED)
    roles = {a.name: a.role for a in world.actors}
    denied = [e for e in history.events if e["outcome"] == "denied"]
    assert all(roles[e["actor"]] != "admin" for e in denied)
    assert sum(roles[e["actor"]] == "read" for e in denied) > 0.5 * len(denied)


# --- secrets ---------------------------------------------------------------------------------------------------------

def test_env_changes_record_key_names_and_hmacs(history):
    env = [e for e in history.events if e["category"] == "Environment" and e["description"].startswith("Updated env")]
    assert len(env) > 50
    for e in env:
        d = e["details"]
        keys = d["added"] + d["changed"] + d["removed"]
        assert keys and all(re.fullmatch(r"[A-Z][A-Z0-9_]+", k) for k in keys)
        assert re.search(r"\(" + re.escape(", ".join(sorted(keys))) + r"\)", e["description"])
        assert sorted(d["hmac"]) == sorted(d["added"] + d["changed"])
        assert all(re.fullmatch(r"hmac-sha256:[0-9a-f]{64}", h) for h in d["hmac"].values())
    assert any(e["details"]["added"] for e in env) and any(e["details"]["removed"] for e in env)
    # Each recorded HMAC is the keyed hash of a value the generator really made (so an auditor can confirm it).
    candidates = {ev.value_hmac(synth.hmac_key(SEED, source), value)
                  for source in {e["source"] for e in env} for _, value in history.secrets}
    recorded = {h for e in env for h in e["details"]["hmac"].values()}
    assert recorded and recorded <= candidates


def test_no_secret_value_is_anywhere_in_the_database_files(history):
    assert len(history.secrets) > 50
    history.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    blobs = []
    for suffix in ("", "-wal"):
        f = Path(str(history.path) + suffix)
        if f.exists():
            blobs.append(f.read_bytes())
    assert blobs and sum(map(len, blobs)) > 100_000
    for (cast_gz,) in history.conn.execute("SELECT cast_gz FROM sessions"):
        blobs.append(gzip.decompress(cast_gz))  # recordings are stored gzipped: look inside them too
    for key, value in history.secrets:
        needle = value.encode()
        assert len(needle) >= 32
        for blob in blobs:
            assert needle not in blob, f"the value of {key} was stored"
    # The scan does see what the events hold: the HMACs recorded in their place are in the same bytes.
    files = b"".join(blobs[:2])
    hmacs = [h for e in history.events if e["category"] == "Environment" for h in e["details"].get("hmac", {}).values()]
    assert hmacs and all(h.encode() in files for h in hmacs)


# --- recordings ------------------------------------------------------------------------------------------------------

def test_sessions_are_asciicast_v2_linked_to_their_events(history):
    sessions = history.conn.execute("SELECT * FROM sessions").fetchall()
    assert len(sessions) >= 4
    for s in sessions:
        cast = store.recording(history.conn, s["id"])
        assert hashlib.sha256(cast).hexdigest() == s["sha256"]
        lines = cast.decode("utf-8").splitlines()
        header = json.loads(lines[0])
        assert header["version"] == 2
        assert header["width"] == s["width"] and header["height"] == s["height"] and header["width"] >= 80
        assert isinstance(header["timestamp"], int) and header["command"] == s["command"]
        frames = [json.loads(line) for line in lines[1:]]
        assert len(frames) > 20
        assert all(len(f) == 3 and f[1] == "o" and isinstance(f[2], str) for f in frames)
        times = [f[0] for f in frames]
        assert times == sorted(times) and times[-1] > 5
        output = "".join(f[2] for f in frames)
        typed = "".join(f[2] for f in frames if len(f[2]) == 1)  # keystrokes echo one character at a time
        assert "exit" in typed
        assert "\x1b[" in output and "\r\n" in output
        linked = _rows(history.conn, "session_id = ?", (s["id"],))
        assert len(linked) == 1
        event = linked[0]
        assert event["details"]["recording_sha256"] == s["sha256"]
        assert event["actor"] == s["actor"] and event["rack"] == s["rack"]
        assert event["timestamp"] == s["started_at"] and event["status"] == 101
        assert s["duration_ms"] == event["details"]["duration_ms"] > 0
    # Somewhere a colourful `ls --color`: blue directories.
    casts = [store.recording(history.conn, s["id"]).decode() for s in sessions]
    assert any("ls --color" in "".join(json.loads(x)[2] for x in c.splitlines()[1:] if len(json.loads(x)[2]) == 1)
               and "\\u001b[01;34m" in c for c in casts)


# --- when ------------------------------------------------------------------------------------------------------------

def test_working_hours_dominate_with_some_nights_and_weekends(history):
    world = synth.build_world(SEED)
    tz = {a.name: a.tz_minutes for a in world.actors if a.type == "user"}
    local = [ev.parse_timestamp(e["timestamp"]) + dt.timedelta(minutes=tz[e["actor"]])
             for e in history.events if e["actor"] in tz]
    assert len(local) > 0.4 * N
    office = sum(t.weekday() < 5 and 8 <= t.hour < 19 for t in local) / len(local)
    assert 0.75 < office < 0.97  # uniform time would give about 0.33
    weekend = sum(t.weekday() >= 5 for t in local) / len(local)
    assert 0.01 < weekend < 0.15  # uniform would give 0.29
    night = sum(t.hour < 6 or t.hour >= 22 for t in local) / len(local)
    assert 0.0 < night < 0.08
    utc_weekdays = sum(ev.parse_timestamp(e["timestamp"]).weekday() < 5 for e in history.events) / N
    assert utc_weekdays > 0.85


def test_a_bare_end_date_means_the_whole_of_that_day(tmp_path):
    path = tmp_path / "audit.db"
    _write(path, events=1200, seed=4, days=3, end=dt.datetime(2026, 11, 20))  # what `--end 2026-11-20` passes
    stamps = [r[0] for r in sqlite3.connect(path).execute("SELECT timestamp FROM events")]
    assert min(stamps) >= "2026-11-18T00:00:00.000Z"
    assert max(stamps) < "2026-11-21T00:00:00.000Z"
    assert any(s.startswith("2026-11-20T") for s in stamps)


def test_cli_synth_writes_a_verified_history(tmp_path):
    path = tmp_path / "cli.db"
    result = CliRunner().invoke(cli_main, ["synth", "--events", "2000", "--db", str(path), "--seed", "9",
                                           "--days", "7", "--end", "2026-11-20"])
    assert result.exit_code == 0, result.output
    assert "wrote 2,000 events" in result.output
    conn = store.open_db(path)
    assert store.verify(conn).ok
    hits = conn.execute("SELECT count(*) FROM events_fts WHERE events_fts MATCH ?", ('"Promoted release"',))
    assert hits.fetchone()[0] > 0  # the full-text index was built


def test_each_synthetic_gateway_signs_its_chain_and_synth_keeps_off_real_gateways_chains(tmp_path):
    from auditkit.errors import AuditkitError
    from auditkit.model import note

    conn = store.open_db(tmp_path / "audit.db")
    synth.write_history(conn, events=600, seed=3, days=3, end=END, parallel=False)
    synth.write_history(conn, events=300, seed=4, days=1, end=END, parallel=False)  # continued, signed again
    report = store.verify(conn)
    assert report.ok, report.problems
    gateways = [h.source for h in store.chain_heads(conn) if h.source != store.LOCAL_SOURCE]
    for source in gateways:
        signer = synth.synthetic_signer(conn, source)
        assert synth.synthetic_key_path(conn, source) == tmp_path / f"audit.db.synthetic-{source}.checkpoint.key"
        assert report.signatures[source].key == str(signer.verifier) == store.pinned_key(conn, source)
        assert report.signatures[source].size == store.tree_size(conn, source)
    # A chain pinned to a real gateway's key is refused before anything is written.
    conn.execute("UPDATE sync_state SET checkpoint_key = ? WHERE source = ?",
                 (str(note.generate_signer(gateways[0]).verifier), gateways[0]))
    before = store.count(conn)
    with pytest.raises(AuditkitError, match="synth writes only onto synthetic chains"):
        synth.write_history(conn, events=300, seed=5, days=1, end=END, parallel=False)
    assert store.count(conn) == before
