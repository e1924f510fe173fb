"""A scripted, realistic week of work driven through the real gateway to the simulated rack (the demo's journal).

Both servers run on loopback in this process; the users are RackClients that speak the wire exactly as the Convox
CLI does. A simulated clock walks the week (working hours, Monday to Friday, ending now), so the journal reads like
a real week: deploys by a deploy key, env changes, scaling, two exec sessions and an instance shell, a certificate
(imported, put on a port, renewed), a registry, rack parameters, an instance termination, a resource, a refused
write and a failed promote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import random
import secrets
import tarfile
import threading
from pathlib import Path
from typing import Callable

from auditkit import store
from auditkit.model.events import format_timestamp
from auditkit.capture import keys
from auditkit.capture.proxy import create_app
from auditkit.capture.config import GatewayConfig, Rack
from auditkit.capture.journal import Journal, journal_source
from auditkit.capture.tls import ensure_self_signed, fingerprint, make_certificate
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient, RackError
from convox_sim.servers import ServerThread

RACK_NAME = "acme/production"
USERS = {
    "alice@example.com": "admin",
    "bob@example.com": "member",
    "carol@example.com": "member",
    "dan@example.com": "member",
    "erin@example.com": "auditor",
}
DEPLOY_KEY = "ci-github-actions"


class SimClock:
    """The week's clock: set by the script, a millisecond further at every reading so events keep their order."""

    def __init__(self, start: dt.datetime):
        self._now = start
        self._lock = threading.Lock()

    def set(self, moment: dt.datetime) -> None:
        with self._lock:
            self._now = max(self._now, moment)

    def datetime(self) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(milliseconds=1)
            return self._now

    def timestamp(self) -> str:
        return format_timestamp(self.datetime())

    def seconds(self) -> float:
        """The clock as epoch seconds: the gateway times its recordings by it."""
        return self.datetime().timestamp()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)


class Typist:
    """A person at a terminal on the week's clock, called before each keystroke is sent: a keystroke takes
    60–250 ms; after Enter (and before the first key) they read the screen for 1.5–6 s. Seeded, so every demo
    types alike. Only the simulated clock moves; the demo itself does not wait."""

    def __init__(self, clock: SimClock, seed: str):
        self._clock = clock
        self._random = random.Random(seed)
        self._reading = True

    def __call__(self, key: str) -> None:
        low, high = (1.5, 6.0) if self._reading else (0.06, 0.25)
        self._clock.advance(self._random.uniform(low, high))
        self._reading = key == "\r"


def keystrokes(*lines: str) -> list[str]:
    """What a person types, one websocket frame per key as the Convox CLI sends them from a TTY (Enter is \\r)."""
    return [key for line in lines for key in line + "\r"]


@dataclasses.dataclass
class WeekSummary:
    journal: Path
    events: int
    sessions: int
    steps: int
    gateway_url: str = ""
    mirrored: int = 0


def _source_tarball(app: str, version: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in {"convox.yml": "services:\n  web:\n    build: .\n    port: 3000\n",
                           "VERSION": f"{app} {version}\n"}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _certificate(domain: str) -> tuple[str, str]:
    """A certificate for `domain` valid for 90 days from now, and its key (PEM)."""
    now = dt.datetime.now(dt.timezone.utc)
    cert, key = make_certificate([domain], not_before=now, not_after=now + dt.timedelta(days=90))
    return cert.decode(), key.decode()


def week_start(end: dt.datetime) -> dt.datetime:
    """Monday 00:00 UTC of the last full working week before `end`."""
    day = (end - dt.timedelta(days=7)).date()
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime.combine(monday, dt.time(), tzinfo=dt.timezone.utc)


def run_week(journal_path: Path, data_dir: Path, *, end: dt.datetime | None = None,
             say: Callable[[str], None] = lambda line: None, mirror_path: Path | None = None) -> WeekSummary:
    """Drive the week; with `mirror_path`, the sync agent then mirrors the journal there over the gateway's feed
    (as the auditor)."""
    end = end or dt.datetime.now(dt.timezone.utc)
    monday = week_start(end)
    clock = SimClock(monday)
    rack_password = secrets.token_urlsafe(24)
    rack_app = rack_mod.create_app(rack_password, rack_name=RACK_NAME, clock=clock.datetime)
    conn = store.open_db(journal_path)
    source = journal_source(conn, "gw-demo")
    user_keys: dict[str, str] = {}
    setup = format_timestamp(monday + dt.timedelta(hours=8))
    existing = {row["name"] for row in keys.list_keys(conn) if not row["revoked_at"]}
    for email, role in USERS.items():
        if email in existing:
            keys.revoke(conn, email, source=source, by="alice@example.com")
        user_keys[email] = keys.add(conn, email, kind="user", role=role, source=source, by="system", at=setup)[1]
    if DEPLOY_KEY in existing:
        keys.revoke(conn, DEPLOY_KEY, source=source, by="alice@example.com")
    user_keys[DEPLOY_KEY] = keys.add(conn, DEPLOY_KEY, kind="deploy_key", role="deploy", source=source,
                                     by="alice@example.com", at=setup)[1]
    conn.close()
    steps = 0
    with ServerThread(rack_app) as rack_server:
        config = GatewayConfig(racks={RACK_NAME: Rack(RACK_NAME, rack_server.url, "convox", rack_password)},
                               journal=journal_path, name=source, data_dir=data_dir)
        journal = Journal(journal_path, source)
        # HTTPS on the self-signed pair `gateway serve` would make beside the journal: the Convox CLI does not verify
        # it (neither does RackClient); the sync agent pins its fingerprint.
        cert, tls_key = ensure_self_signed(data_dir, source, ["127.0.0.1"])
        with ServerThread(create_app(config, journal, clock=clock.timestamp,
                                     session_clock=clock.seconds), ssl_certfile=str(cert),
                          ssl_keyfile=str(tls_key)) as gateway:
            people = {name: RackClient(gateway.url, RACK_NAME, key) for name, key in user_keys.items()}

            def at(day: int, hour: int, minute: int, who: str, what: str, action: Callable[[RackClient], object]) -> None:
                nonlocal steps
                clock.set(monday + dt.timedelta(days=day, hours=hour, minutes=minute))
                try:
                    action(people[who])
                except RackError as e:  # refusals and failures are part of the story; the journal has them
                    what += f" → {e.status}"
                steps += 1
                say(f"  {format_timestamp(clock.datetime())[:16].replace('T', ' ')}  {who:22} {what}")

            ci = DEPLOY_KEY

            def deploy(client: RackClient, app: str, version: int) -> None:
                build = client.build(app, _source_tarball(app, version), f"{app} v{version}")
                release = build.get("release") or client.json("GET", f"/apps/{app}/builds/{build['id']}")["release"]
                client.releases_promote(app, release)

            pub, private = _certificate("shop.example.com")
            # Monday
            at(0, 9, 12, "alice@example.com", "convox apps create shop", lambda c: c.apps_create("shop"))
            at(0, 9, 20, "alice@example.com", "convox env set (shop)", lambda c: c.env_set(
                "shop", {"DATABASE_URL": "postgres://shop:" + secrets.token_hex(8) + "@pg-main/shop",
                         "RAILS_ENV": "production", "STRIPE_SECRET_KEY": "sk_live_" + secrets.token_hex(12)}))
            at(0, 10, 5, ci, "convox deploy shop", lambda c: deploy(c, "shop", 1))
            at(0, 14, 30, "bob@example.com", "convox scale web --count 3", lambda c: c.scale("web", "web", count=3,
                                                                                            cpu=256, memory=512))
            # Tuesday
            at(1, 10, 2, "carol@example.com", "convox exec (web) bash", lambda c: c.exec(
                "web", c.json("GET", "/apps/web/processes")[0]["id"], "bash",
                keystrokes("ls --color", "echo $RAILS_ENV", "cat config/database.yml", "ps", "env | grep RAILS",
                           "exit"), before_send=Typist(clock, "carol-exec")))
            at(1, 11, 40, ci, "convox deploy web", lambda c: deploy(c, "web", 42))
            at(1, 15, 15, "bob@example.com", "convox run web bin/rails db:migrate", lambda c: c.run_attached(
                "web", "web", "bin/rails db:migrate", keystrokes("exit"), before_send=Typist(clock, "bob-run")))
            # Wednesday
            at(2, 9, 45, "dan@example.com", "convox instances ssh", lambda c: c.instance_shell(
                c.json("GET", "/instances")[0]["id"], "", keystrokes("uptime", "df -h", "free -m", "ps", "exit"),
                private_key="-----BEGIN OPENSSH PRIVATE KEY-----\n" + secrets.token_hex(32) + "\n-----END",
                before_send=Typist(clock, "dan-ssh")))
            at(2, 10, 30, "alice@example.com", "convox rack params set", lambda c: c.rack_params_set(
                {"node_type": "t3.large", "high_availability": "true"}))
            at(2, 16, 0, "dan@example.com", "convox instances terminate",
               lambda c: c.instances_terminate(c.json("GET", "/instances")[-1]["id"]))
            # Thursday
            imported: dict[str, str] = {}
            at(3, 9, 5, "alice@example.com", "convox certs import", lambda c: imported.update(
                c.certs_import(pub, private)))
            # A v3 rack's apps are generation 3, so the CLI sends the update (it refuses generation 2 apps).
            at(3, 9, 20, "alice@example.com", "convox ssl update web:443", lambda c: c.ssl_update(
                "web", "web", 443, imported["id"]))
            at(3, 9, 22, "alice@example.com", "convox certs renew -a web", lambda c: c.certs_renew("web"))
            at(3, 11, 0, "carol@example.com", "convox registries add", lambda c: c.registries_add(
                "registry.example.com", "deploy-bot", "rp_" + secrets.token_hex(10)))
            at(3, 13, 10, "erin@example.com", "convox apps delete web (auditor)", lambda c: c.apps_delete("web"))
            at(3, 15, 45, "carol@example.com", "convox env unset STRIPE_SECRET_KEY", lambda c: c.env_set(
                "shop", {}, unset=("STRIPE_SECRET_KEY",), promote=True))
            # Friday
            at(4, 9, 30, "bob@example.com", "convox resources create postgres",
               lambda c: c.json("POST", "/resources", {"kind": "postgres", "name": "reports-db"}))
            at(4, 9, 35, "bob@example.com", "convox resources link", lambda c: c.json(
                "POST", "/resources/reports-db/links", {"app": "shop"}))
            at(4, 11, 0, "carol@example.com", "convox exec (shop) bin/rails console", lambda c: c.exec(
                "web", c.json("GET", "/apps/web/processes")[0]["id"], "bin/rails console",
                keystrokes("User.count", "Order.where(status: 'failed').count", "exit"),
                before_send=Typist(clock, "carol-console")))
            at(4, 14, 20, "alice@example.com", "convox releases promote RNOSUCHREL", lambda c: c.releases_promote(
                "shop", "RNOSUCHREL"))
            at(4, 16, 5, "alice@example.com", "convox instances keyroll", lambda c: c.instances_keyroll())
            at(4, 16, 40, "carol@example.com", "convox registries remove", lambda c: c.registries_remove(
                "registry.example.com"))
            at(4, 17, 10, ci, "convox deploy shop", lambda c: deploy(c, "shop", 2))
            for client in people.values():
                client.close()
            summary_url = gateway.url
            synced = 0
            if mirror_path is not None:
                from auditkit.mirror.sync import Feed, sync_once
                from auditkit.mirror.trust import Pins

                mirror = store.open_db(mirror_path)
                # What `sync add --fingerprint … --checkpoint-key …` pins: what `gateway serve` and `gateway key` print.
                pins = Pins(fingerprint=fingerprint(cert), checkpoint_key=str(config.checkpoint_signer().verifier))
                say(f"  sync pins the gateway: certificate SHA-256 {pins.fingerprint}, checkpoint key "
                    f"{pins.checkpoint_key}")
                feed = Feed(source, gateway.url, user_keys["erin@example.com"], pins)
                deadline = 50
                while store.chain_head(mirror, source).last_seq < journal.head_seq() and deadline:
                    synced += sync_once(mirror, feed, wait=0.1).synced  # outcomes land just after each answer
                    deadline -= 1
                feed.close()
                mirror.close()
    conn = store.open_db(journal_path)
    events = store.count(conn)
    sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    conn.close()
    return WeekSummary(journal_path, events, sessions, steps, summary_url, synced)
