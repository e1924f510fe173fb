"""The company a synthetic history is about, from its seed alone: about 40 people at one or two company domains
(engineers, platform admins, a few read-only support and audit people, each in a time zone and with their own IPs
and CLI version), 5 deploy keys, and 3–12 racks named `org/rack` in two or three regions, each with its apps, their
services, and its resources. Each region's racks sit behind one gateway: the chain sources `gw-us`, `gw-eu`, `gw-ap`.
"""

from __future__ import annotations

import dataclasses
import random

from auditkit.capture.wire import CONVOX_VERSION as CLI_VERSION  # the Convox CLI the deploy keys run


@dataclasses.dataclass(frozen=True)
class Actor:
    name: str
    type: str  # user | deploy_key | system
    role: str  # admin | write | read (the gateway key's role)
    region: str  # us | eu | ap, or "" when it does not matter
    tz_minutes: int  # UTC offset of the actor's working day (fixed: no DST, so the history is machine-independent)
    weight: float  # how busy: a multiplier on every kind of activity the actor does
    ips: tuple[str, ...]  # the first is the usual one (the office, the CI runners)
    agent: str


@dataclasses.dataclass(frozen=True)
class App:
    name: str
    stack: str  # rails | node | python | go
    services: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Rack:
    name: str
    region: str
    source: str
    stage: str  # production | staging | other
    weight: float
    apps: tuple[App, ...]
    app_weights: tuple[float, ...]
    resources: tuple[tuple[str, str], ...]  # (name, kind)


@dataclasses.dataclass(frozen=True)
class World:
    seed: int
    org: str
    domains: tuple[str, ...]
    actors: tuple[Actor, ...]
    racks: tuple[Rack, ...]
    sources: tuple[str, ...]  # gateway sources, largest first


_FIRST = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
          "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "wendy", "amir", "beatriz", "chen",
          "dmitri", "emeka", "fatima", "gustavo", "hana", "ines", "jonas", "kenji", "leila", "marek", "noor",
          "oskar", "priya", "quentin", "rosa", "sanjay", "tomasz", "uma", "valentina", "yusuf", "zofia", "lars",
          "mei", "nadia", "pablo", "ravi", "sofia")
_LAST = ("smith", "garcia", "nguyen", "mueller", "kowalski", "rossi", "tanaka", "okafor", "silva", "dubois",
         "jensen", "novak", "haddad", "kim", "patel", "schmidt", "moreau", "lindqvist", "costa", "ivanova", "berg",
         "khan", "park", "weber", "ferreira", "martin", "sato", "adeyemi", "horvat", "larsen")

# (UTC offset in minutes, region, weight of people there)
_ZONES = ((-480, "us", 3), (-300, "us", 5), (0, "eu", 2), (60, "eu", 4), (120, "eu", 1), (330, "ap", 1))

# (name, region, stage, weight, app set)
_RACKS = (
    ("production", "us", "production", 1.0, "full"),
    ("staging", "us", "staging", 1.2, "full"),
    ("eu-west", "eu", "production", 0.7, "full"),
    ("eu-staging", "eu", "staging", 0.5, "full"),
    ("us-west", "us", "production", 0.4, "core"),
    ("sandbox", "us", "other", 0.25, "sandbox"),
    ("ap-southeast", "ap", "production", 0.35, "core"),
    ("data", "us", "other", 0.3, "data"),
    ("eu-central", "eu", "production", 0.3, "core"),
    ("internal", "eu", "other", 0.2, "internal"),
    ("perf", "us", "staging", 0.15, "core"),
    ("dr-us-east-2", "us", "production", 0.1, "core"),
)
_APPS = {
    "web": App("web", "rails", ("web", "worker")),
    "api": App("api", "rails", ("api", "worker", "scheduler")),
    "worker": App("worker", "python", ("worker", "cron")),
    "billing": App("billing", "rails", ("web", "worker")),
    "admin": App("admin", "node", ("web",)),
    "search": App("search", "go", ("api", "indexer")),
    "notifications": App("notifications", "node", ("worker", "smtp-relay")),
    "reports": App("reports", "python", ("web", "worker")),
    "playground": App("playground", "node", ("web",)),
    "etl": App("etl", "python", ("worker", "scheduler")),
    "airflow": App("airflow", "python", ("web", "scheduler", "worker")),
    "metabase": App("metabase", "go", ("web",)),
    "grafana": App("grafana", "go", ("web",)),
    "vault-ui": App("vault-ui", "node", ("web",)),
    "locust": App("locust", "python", ("master", "worker")),
}
_APP_SETS = {
    "full": ("web", "api", "worker", "billing", "admin", "search", "notifications", "reports"),
    "core": ("web", "api", "worker", "billing", "search"),
    "sandbox": ("playground", "web", "api"),
    "data": ("etl", "airflow", "metabase", "reports"),
    "internal": ("grafana", "vault-ui", "admin"),
}
_RESOURCES = {
    "full": (("pg-main", "postgres"), ("redis-cache", "redis"), ("pg-reports", "postgres"), ("memcache", "memcached")),
    "core": (("pg-main", "postgres"), ("redis-cache", "redis")),
    "sandbox": (("pg-sandbox", "postgres"),),
    "data": (("pg-warehouse", "postgres"), ("mysql-legacy", "mysql"), ("redis-queue", "redis")),
    "internal": (("pg-internal", "postgres"),),
}
_DEPLOY_KEYS = (
    # name, role, profile style, weight, ips
    ("ci-github-actions", "write", "ci", 9.0, ("192.0.2.41", "192.0.2.42", "192.0.2.43", "192.0.2.57")),
    ("release-bot", "write", "train", 1.5, ("192.0.2.10",)),
    ("review-apps", "write", "ci", 1.2, ("192.0.2.41", "192.0.2.42")),
    ("terraform-cloud", "admin", "ci", 1.0, ("192.0.2.88", "192.0.2.89")),
    ("nightly-scaler", "write", "scaler", 1.0, ("192.0.2.200",)),
)
_AGENTS = ("convox.go/3.24.9",) * 6 + ("convox.go/3.24.7",) * 3 + ("convox.go/3.23.4", "convox.go/3.21.1")
_OFFICE_IP = {"us": "198.51.100.23", "eu": "203.0.113.77", "ap": "203.0.113.140"}


def build_world(seed: int) -> World:
    """The company the history is about, from the seed alone."""
    rng = random.Random(f"auditkit-synth:{seed}:world")
    org = "acme"
    domains = ("example.com", "example.net") if rng.random() < 0.6 else ("example.com",)
    n_racks = rng.randint(3, 12)
    chosen = list(_RACKS[:3]) + sorted(rng.sample(_RACKS[3:], n_racks - 3), key=_RACKS.index)
    region_source = {"us": "gw-us", "eu": "gw-eu", "ap": "gw-ap"}
    racks = []
    for name, region, stage, weight, app_set in chosen:
        apps = tuple(_APPS[a] for a in _APP_SETS[app_set])
        app_weights = tuple(1.0 / (1 + 0.45 * i) for i in range(len(apps)))
        racks.append(Rack(f"{org}/{name}", region, region_source[region], stage, weight, apps, app_weights,
                          _RESOURCES[app_set]))

    zone_table = [z for z in _ZONES for _ in range(z[2])]
    pairs = rng.sample([(f, l) for f in _FIRST for l in _LAST], 400)
    seen_first: set[str] = set()
    people: list[tuple[str, str]] = []
    for first, last in pairs:
        if len(people) == 40:
            break
        if first in seen_first:
            continue
        seen_first.add(first)
        people.append((first, last))
    if not any(first == "alice" for first, _ in people):
        people[0] = ("alice", people[0][1])  # the README's examples use alice@example.com
        people.sort(key=lambda p: p[0] != "alice")
    roles = ["admin"] * 6 + ["read"] * 5 + ["write"] * 29
    rng.shuffle(roles)
    actors: list[Actor] = []
    for i, (first, last) in enumerate(people):
        role = "admin" if first == "alice" else roles[i]
        if len(domains) > 1 and i % 4 == 3:
            email = f"{first}.{last}@{domains[1]}"
        else:
            email = f"{first}@{domains[0]}"
        tz, region, _ = zone_table[rng.randrange(len(zone_table))]
        weight = rng.lognormvariate(0.0, 0.7) * (0.5 if role == "read" else 1.0)
        if rng.random() < 0.8:
            home = f"198.51.100.{rng.randrange(30, 250)}"
        else:
            home = f"2001:db8:{rng.randrange(16**4):x}::{rng.randrange(1, 255):x}"
        actors.append(Actor(email, "user", role, region, tz, weight, (_OFFICE_IP[region], home),
                            _AGENTS[rng.randrange(len(_AGENTS))]))
    for name, role, style, weight, ips in _DEPLOY_KEYS:
        # Scheduled keys keep US-East hours; CI follows merges on both sides of the Atlantic (its profile says so).
        actors.append(Actor(name, "deploy_key", role, "", -300 if style != "ci" else 0, weight, ips,
                            f"convox.go/{CLI_VERSION}"))
    actors.append(Actor("system", "system", "admin", "", 0, 1.0, (), ""))
    sources_present = sorted({r.source for r in racks}, key=lambda s: -sum(r.weight for r in racks if r.source == s))
    return World(seed, org, domains, tuple(actors), tuple(racks), tuple(sources_present))
