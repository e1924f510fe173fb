"""Synthetic history: a realistic, deterministic stretch of Convox rack activity written into a store.

`auditkit synth`, `auditkit demo` and bench/query.py call write_history(). From the seed it builds a small company
(synth/world.py: about 40 people, 5 deploy keys, 3–12 racks in two or three regions with their apps, services and
resources), then plans activities over `days` days in each actor's working rhythm (weekday business hours dominate,
some nights and weekends, scheduled jobs at fixed hours) and expands every activity into the Rack API requests it
takes and the events the capture gateway records for them: a deploy is a burst of object upload → build created →
build logs → release created → release promoted within minutes, an env change records which keys were added,
changed or removed and an HMAC of each new value (never the value), a few exec / SSH / resource-console sessions
carry real-looking asciicast v2 recordings (synth/sessions.py), and some requests fail, are denied or never got an
answer. Each gateway event's category, action, description, app and target are the catalog's for its request
(synth/requests.py); share links are described as share/links.py describes them.

Each region's gateway is one chain source (`gw-us`, `gw-eu`, `gw-ap`); share-link events are on the mirror's own
`local` chain. Events are written with store.append() in time windows of about BATCH_EVENTS events (each window's
events of every source, so the store's time-ordered keys mostly grow), recordings with store.add_session() before
the batch that holds their event, and an empty store is filled inside store.bulk_load(). Same seed and end →
byte-identical events (and chains, when the store starts empty). After writing, each synthetic gateway signs a
checkpoint of its chain with its own key (synthetic_signer: a key file beside the mirror, named "synthetic"), pinned
as sync pins a real gateway's, so that verify and exports work on a synthetic mirror as on a synced one; the local
chain is checkpointed by store.append itself. Runs of PARALLEL_MIN events or more plan, expand
and build each gateway's events in its own process, which also makes each event's canonical JSON
(events.seal_halves); this one chains the hashes, writes, and fills the full-text index while it waits.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import heapq
import multiprocessing
import operator
import queue as queue_mod
import random
import sqlite3
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.model import note
from auditkit.model.events import FIELDS, Event, dumps, new_event_id, seal_halves, timestamp_ms, value_hmac
from auditkit.model.filters import Filter
from auditkit.share.links import LOCAL_RACK, ShareLink
from auditkit.share.links import describe as describe_link
from auditkit.synth.requests import UNRECORDED_VALUE, Request, render
from auditkit.synth.sessions import SCENARIOS, psql_session, redis_session, ssh_session
from auditkit.synth.world import Actor, App, Rack, World, build_world

__all__ = ["Summary", "write_history", "build_world", "hmac_key", "PARALLEL_MIN"]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
BATCH_EVENTS = 20_000  # about this many events per time window (one store.append call per source and window)
PARALLEL_MIN = 100_000  # from this many events, each gateway's chain is generated in its own process
LOCAL_SHARE = 0.012  # share of events on the mirror's own chain (share links created, viewed, revoked)
P_UNKNOWN = 0.0012  # a write whose answer the gateway never saw (it restarted): outcome unknown
P_RACK_ERROR = 0.012  # a write the rack answered with a server error
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Summary:
    events: int
    sessions: int


# --- time: working rhythm per time zone ----------------------------------------------------------------------------

_WEEKDAY_HOURS = (0.15, 0.12, 0.1, 0.1, 0.1, 0.15, 0.4, 1.5, 4.0, 9.0, 10.0, 10.0, 6.0, 9.0, 10.0, 10.0, 9.0, 7.0,
                  4.0, 2.0, 1.5, 1.0, 0.6, 0.3)
_WEEKEND_HOURS = (0.15, 0.1, 0.08, 0.08, 0.08, 0.08, 0.15, 0.3, 0.6, 1.0, 1.2, 1.2, 1.0, 1.0, 1.2, 1.2, 1.0, 0.9,
                  0.8, 0.8, 0.8, 0.6, 0.45, 0.3)


class Clock:
    """Samples activity start times in [start_ms, end_ms) from per-profile weights over the window's hours."""

    def __init__(self, start_ms: int, end_ms: int):
        self.start_ms, self.end_ms = start_ms, end_ms
        self.hours = max(1, -(-(end_ms - start_ms) // HOUR_MS))
        self._cum: list[list[float]] = []
        self._offset: list[tuple[int, int]] = []  # (base ms into the hour, jitter ms)
        self._keys: dict[tuple, int] = {}

    def profile(self, style: str, tz_minutes: int) -> int:
        key = (style, tz_minutes)
        if key in self._keys:
            return self._keys[key]
        weights = []
        for i in range(self.hours):
            mid = self.start_ms + i * HOUR_MS + HOUR_MS // 2 + tz_minutes * MINUTE_MS
            hour = (mid // HOUR_MS) % 24
            weekday = (mid // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
            weights.append(_style_weight(style, hour, weekday))
        if not any(weights):
            weights = [1.0] * self.hours
        cum, total = [], 0.0
        for w in weights:
            total += w
            cum.append(total)
        # Scheduled jobs start a few minutes past their hour (the scaler at :30); people anywhere in the hour.
        offset = {"scaler": (30 * MINUTE_MS, 2 * MINUTE_MS), "train": (0, 4 * MINUTE_MS),
                  "nightly": (5 * MINUTE_MS, 20 * MINUTE_MS)}.get(style, (0, HOUR_MS))
        self._cum.append(cum)
        self._offset.append(offset)
        self._keys[key] = len(self._cum) - 1
        return self._keys[key]

    def sample(self, profile: int, rng: random.Random, span_ms: int) -> int:
        cum = self._cum[profile]
        i = bisect.bisect_right(cum, rng.random() * cum[-1])
        if i >= len(cum):
            i = len(cum) - 1
        base, jitter = self._offset[profile]
        ms = self.start_ms + i * HOUR_MS + base + int(rng.random() * jitter)
        latest = self.end_ms - 1 - span_ms
        if ms > latest:
            ms = max(self.start_ms, latest)
        return ms


def _style_weight(style: str, hour: int, weekday: int) -> float:
    weekend = weekday >= 5
    if style == "office":
        return (_WEEKEND_HOURS if weekend else _WEEKDAY_HOURS)[hour]
    if style == "ci":  # merges follow the engineers' day on both sides of the Atlantic, plus scheduled builds
        us = (_WEEKEND_HOURS if weekend else _WEEKDAY_HOURS)[(hour - 5) % 24]
        eu = (_WEEKEND_HOURS if weekend else _WEEKDAY_HOURS)[(hour + 1) % 24]
        return us + eu + 0.3
    if style == "scaler":  # staging scaled up at 07:30 and down at 19:30 on weekdays
        return 1.0 if not weekend and hour in (7, 19) else 0.0
    if style == "train":  # the release train leaves at 10:00 and 15:00 on weekdays
        return 1.0 if not weekend and hour in (10, 15) else 0.0
    if style == "nightly":  # rack housekeeping
        return 1.0 if hour in (2, 3) else 0.05
    return 1.0


def _format_ms(ms: int, cache: dict[int, str]) -> str:
    day, rem = divmod(ms, DAY_MS)
    prefix = cache.get(day)
    if prefix is None:
        prefix = (_EPOCH + dt.timedelta(days=day)).strftime("%Y-%m-%dT")
        cache[day] = prefix
    h, rem = divmod(rem, HOUR_MS)
    m, rem = divmod(rem, MINUTE_MS)
    s, milli = divmod(rem, 1000)
    return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


def _end_ms(end: dt.datetime | dt.date | None) -> int:
    """The history's exclusive end. A naive datetime is UTC; a bare date (or naive midnight, which is how the CLI's
    --end DATE arrives) names the history's last day, so the history runs to the end of that day."""
    if end is None:
        end = dt.datetime.now(dt.timezone.utc)
    elif not isinstance(end, dt.datetime):
        end = dt.datetime(end.year, end.month, end.day) + dt.timedelta(days=1)
        end = end.replace(tzinfo=dt.timezone.utc)
    elif end.tzinfo is None:
        if end.time() == dt.time(0):
            end = end + dt.timedelta(days=1)
        end = end.replace(tzinfo=dt.timezone.utc)
    return (end - _EPOCH) // dt.timedelta(milliseconds=1)


# --- secrets (generated, hashed, never stored) ---------------------------------------------------------------------

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ENV_KEYS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY_BASE", "SENTRY_DSN", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SENDGRID_API_KEY", "JWT_SECRET", "GITHUB_TOKEN",
             "SLACK_WEBHOOK_URL", "DATADOG_API_KEY", "ENCRYPTION_KEY", "SESSION_SECRET", "OAUTH_CLIENT_SECRET",
             "ELASTICSEARCH_URL", "TWILIO_AUTH_TOKEN", "ALGOLIA_API_KEY", "SEGMENT_WRITE_KEY", "MAPBOX_TOKEN",
             "PUSHER_SECRET", "RECAPTCHA_SECRET", "OPENAI_API_KEY")


def hmac_key(seed: int, source: str) -> bytes:
    """The key the synthetic gateway `source` hashes new values with (a real gateway keeps its own secret)."""
    return hashlib.sha256(f"auditkit-synth:{seed}:{source}:hmac".encode()).digest()


def _secret(rng: random.Random, key: str) -> str:
    """A new secret value for `key`. It only ever reaches value_hmac(); tests wrap this to collect the values."""
    token = "".join(rng.choices(_ALNUM, k=32))
    if key == "DATABASE_URL":
        return f"postgres://app:{token}@pg-main.internal.example.com:5432/app"
    if key == "REDIS_URL":
        return f"rediss://:{token}@redis-cache.internal.example.com:6379/0"
    if key == "ELASTICSEARCH_URL":
        return f"https://elastic:{token}@search.internal.example.com:9243"
    if key == "SLACK_WEBHOOK_URL":
        return f"https://hooks.example.com/services/T024BE7LD/B08F3Q2RS/{token}"
    if key == "STRIPE_SECRET_KEY":
        return "sk_live_" + token
    if key == "STRIPE_WEBHOOK_SECRET":
        return "whsec_" + token
    return token


# --- planning ------------------------------------------------------------------------------------------------------

# kind: (base weight, span of its burst in ms) — the span keeps a burst inside the window.
_KINDS: dict[str, tuple[float, int]] = {
    "deploy": (17.0, 20 * MINUTE_MS),
    "env": (12.0, MINUTE_MS),
    "config": (0.8, 0),
    "rollback": (1.0, MINUTE_MS),
    "scale": (6.0, 2 * MINUTE_MS),
    "restart": (3.0, MINUTE_MS),
    "exec": (9.0, 30 * MINUTE_MS),
    "run": (5.0, 30 * MINUTE_MS),
    "ps_stop": (1.5, 0),
    "files": (1.2, 0),
    "triggers": (0.5, 0),
    "app_admin": (2.2, 0),
    "review_app": (1.2, 15 * MINUTE_MS),
    "infra": (1.5, 30 * MINUTE_MS),
    "security": (0.6, 0),
    "registry": (0.35, 10 * MINUTE_MS),
    "resources": (1.6, 30 * MINUTE_MS),
    "keys": (0.25, 0),
    "other": (0.5, 0),
    "system": (0.6, 0),
    "denied": (1.0, 0),
    "logs": (1.8, 0),
}
_KIND_NAMES = tuple(_KINDS)

# Who does what: a multiplier on the actor's weight per kind, by role (users) or by name (deploy keys).
_ROLE_KINDS: dict[str, dict[str, float]] = {
    "write": {"deploy": 0.5, "env": 1, "config": 1, "rollback": 0.6, "scale": 0.8, "restart": 1, "exec": 1, "run": 1,
              "ps_stop": 1, "files": 1, "triggers": 0.3, "app_admin": 0.8, "resources": 0.3, "other": 0.3,
              "logs": 0.8, "infra": 0.08, "security": 0.03},
    "admin": {"deploy": 0.4, "env": 1, "config": 1, "rollback": 1, "scale": 1.5, "restart": 1.2, "exec": 1, "run": 1,
              "ps_stop": 1, "files": 0.6, "triggers": 1, "app_admin": 1.2, "infra": 6, "security": 6, "registry": 6,
              "resources": 4, "keys": 6, "other": 0.5, "logs": 0.5},
    "read": {"denied": 3, "logs": 2, "files": 0.3},
}
_KEY_KINDS: dict[str, dict[str, float]] = {
    "ci-github-actions": {"deploy": 5, "run": 0.3, "other": 1, "registry": 0.5},
    "release-bot": {"deploy": 4, "rollback": 1},
    "review-apps": {"review_app": 8},
    "terraform-cloud": {"env": 2, "app_admin": 2, "resources": 2, "config": 1, "registry": 1},
    "nightly-scaler": {"scale": 6},
}


@dataclasses.dataclass
class AppState:
    release: str
    build: str
    releases: list[str]
    builds: list[str]
    env: list[str]
    counts: dict[str, int]
    pods: dict[str, str]  # service → the pod-template hash of the current release


class Generator:
    """One chain source: plans its activities and expands them into event drafts, in time order."""

    def __init__(self, world: World, source: str, start_ms: int, end_ms: int, count: int, sessions: int):
        self.world, self.source, self.count = world, source, count
        self.start_ms, self.end_ms = start_ms, end_ms
        self.sessions_wanted = sessions
        tag = f"auditkit-synth:{world.seed}:{source}"
        self.rng = random.Random(tag + ":expand")
        self.plan_rng = random.Random(tag + ":plan")
        self.id_rng = random.Random(tag + ":ids")
        self.hmac_key = hmac_key(world.seed, source)
        self.clock = Clock(start_ms, end_ms)
        self.racks = [i for i, r in enumerate(world.racks) if r.source == source] if source != "local" \
            else list(range(len(world.racks)))
        self.region = world.racks[self.racks[0]].region if source != "local" else ""
        self.state: dict[tuple[int, int], AppState] = {}
        self.ts_cache: dict[int, str] = {}
        self.recorded: set[int] = set()
        self.review_seq = 1000 + self.rng.randrange(400)
        self.profiles = [self._profile(a) for a in world.actors]
        self.app_cum = [_cumulative(list(r.app_weights), list(range(len(r.apps))))[0] for r in world.racks]

    # --- planning --------------------------------------------------------------------------------------------------
    def _profile(self, actor: Actor) -> int:
        if actor.type == "user":
            return self.clock.profile("office", actor.tz_minutes)
        if actor.type == "system":
            return self.clock.profile("nightly", 0)
        style = {"release-bot": "train", "nightly-scaler": "scaler"}.get(actor.name, "ci")
        return self.clock.profile(style, actor.tz_minutes)

    def _kind_tables(self) -> tuple[list[float], list[str], dict[str, tuple[list[float], list[int]]],
                                    dict[tuple[str, int], tuple[list[float], list[int]]]]:
        world = self.world
        actor_tables: dict[str, tuple[list[float], list[int]]] = {}
        rack_tables: dict[tuple[str, int], tuple[list[float], list[int]]] = {}
        kinds, kind_cum, total = [], [], 0.0
        for kind in _KIND_NAMES:
            weights = []
            for i, actor in enumerate(world.actors):
                if actor.type == "user":
                    w = actor.weight * _ROLE_KINDS[actor.role].get(kind, 0.0)
                    if self.region and actor.region == self.region:
                        w *= 3.0
                elif actor.type == "deploy_key":
                    w = actor.weight * _KEY_KINDS.get(actor.name, {}).get(kind, 0.0)
                else:
                    w = 1.0 if kind == "system" else 0.0
                weights.append(w)
            if not any(weights):
                continue
            ok_any = False
            for a in range(len(world.actors)):
                if not weights[a]:
                    continue
                rw = [self._rack_weight(kind, world.actors[a], world.racks[r]) for r in self.racks]
                if any(rw):
                    rack_tables[(kind, a)] = _cumulative(rw, self.racks)
                    ok_any = True
                else:
                    weights[a] = 0.0
            if not ok_any:
                continue
            actor_tables[kind] = _cumulative(weights, list(range(len(world.actors))))
            total += _KINDS[kind][0]
            kinds.append(kind)
            kind_cum.append(total)
        return kind_cum, kinds, actor_tables, rack_tables

    @staticmethod
    def _rack_weight(kind: str, actor: Actor, rack: Rack) -> float:
        w = rack.weight
        if actor.type == "user" and actor.region and actor.region != rack.region:
            w *= 0.4
        if kind == "review_app":
            return w if rack.stage == "staging" else 0.0
        if actor.name == "nightly-scaler":
            return w if rack.stage != "production" else 0.0
        if actor.name == "release-bot":
            return w if rack.stage == "production" else 0.0
        if kind in ("exec", "run", "scale", "denied") and rack.stage == "production":
            w *= 1.6
        return w

    def plan(self) -> list[tuple[int, int, str, int, int, int, int, int]]:
        """(start_ms, order, kind, actor, rack, app, r, size) for exactly `count` events, sorted by time."""
        rng = self.plan_rng
        acts: list[tuple[int, int, str, int, int, int, int, int]] = []
        total = 0
        if self.source == "local":
            admins = [i for i, a in enumerate(self.world.actors) if a.type == "user" and a.role != "read"]
            admin_w = [self.world.actors[i].weight * (4 if self.world.actors[i].role == "admin" else 0.3)
                       for i in admins]
            admin_cum, _ = _cumulative(admin_w, admins)
            while total < self.count:
                actor = admins[_pick(admin_cum, rng)]
                rack = self.racks[rng.randrange(len(self.racks))]
                r = rng.getrandbits(30)
                size = min(_shape("share_link", r), self.count - total)
                start = self.clock.sample(self.profiles[actor], rng, 0)
                acts.append((start, len(acts), "share_link", actor, rack, 0, r, size))
                total += size
            acts.sort()
            return acts
        kind_cum, kinds, actor_tables, rack_tables = self._kind_tables()
        while total < self.count:
            kind = kinds[_pick(kind_cum, rng)]
            a_cum, a_idx = actor_tables[kind]
            actor = a_idx[_pick(a_cum, rng)]
            r_cum, r_idx = rack_tables[(kind, actor)]
            rack = r_idx[_pick(r_cum, rng)]
            app = _pick(self.app_cum[rack], rng)
            r = rng.getrandbits(30)
            size = min(_shape(kind, r), self.count - total)
            start = self.clock.sample(self.profiles[actor], rng, _KINDS[kind][1])
            acts.append((start, len(acts), kind, actor, rack, app, r, size))
            total += size
        acts.sort()
        # A few interactive sessions carry recordings, spread over the history.
        interactive = [i for i, act in enumerate(acts) if act[2] in _INTERACTIVE
                       and self.world.actors[act[3]].role != "read"]
        if interactive and self.sessions_wanted:
            k = min(self.sessions_wanted, len(interactive))
            self.recorded = {acts[i][1] for i in sorted(rng.sample(interactive, k))}
        return acts

    # --- expansion -------------------------------------------------------------------------------------------------
    def batches(self, windows: list[int]) -> Iterator[tuple[int, list[dict], list[tuple[dict, bytes]]]]:
        """(window index, event drafts as dicts, recordings) for every window (ends in `windows`), in time order.

        Drafts are plain dicts of Event fields (cheap to hand between processes); the writer makes them Events and
        store.append() seals them onto this source's chain."""
        acts = self.plan()
        heap: list[tuple[int, int, dict, Any]] = []
        counter = 0
        w = 0
        last = self.end_ms - 1
        batch: list[dict] = []
        recordings: list[tuple[dict, bytes]] = []
        for act in acts:
            start = act[0]
            while heap and heap[0][0] <= start:
                ms, _, d, rec = heapq.heappop(heap)
                ms = min(ms, last)  # a burst that ran past the end (popped in order, so order is kept)
                while ms >= windows[w]:
                    yield w, batch, recordings
                    batch, recordings, w = [], [], w + 1
                batch.append(self._draft(ms, d))
                if rec is not None:
                    recordings.append(rec)
            out = getattr(self, "_x_" + act[2])(act)
            if len(out) < act[7]:
                raise AssertionError(f"{act[2]} expanded to {len(out)} events, planned {act[7]}")
            for ms, d, *rest in out[:act[7]]:
                heapq.heappush(heap, (ms, counter, d, rest[0] if rest else None))
                counter += 1
        while heap:
            ms, _, d, rec = heapq.heappop(heap)
            ms = min(ms, last)
            while ms >= windows[w]:
                yield w, batch, recordings
                batch, recordings, w = [], [], w + 1
            batch.append(self._draft(ms, d))
            if rec is not None:
                recordings.append(rec)
        while w < len(windows):
            yield w, batch, recordings
            batch, recordings, w = [], [], w + 1

    def _draft(self, ms: int, d: dict) -> dict:
        d["id"] = new_event_id(ms, self.id_rng)
        d["timestamp"] = _format_ms(ms, self.ts_cache)
        return d

    def _ev(self, ms: int, actor: int, rack: int, request: Request, status: int | None = 200,
            details: dict | None = None, session_id: str | None = None, ip: str | None = None,
            agent: str | None = None) -> tuple[int, dict]:
        """The event the gateway records for `request` (rendered through the catalog, requests.render) once the
        rack answered `status`. A write sometimes got no answer (unknown) or a server error instead."""
        rng = self.rng
        details = details if details is not None else {}
        if status is not None and status < 400 and request.method != "GET" and self.source != "local":
            roll = rng.random()
            if roll < P_UNKNOWN:
                status = None
                details = dict(details, error="no answer from the rack: the gateway restarted before the response")
            elif roll < P_UNKNOWN + P_RACK_ERROR:
                status, error = rng.choice(_RACK_ERRORS)
                details = dict(details, error=error)
        if status is None:
            outcome = "unknown"
        elif status < 400:
            outcome = "succeeded"
        elif status in (401, 403):
            outcome = "denied"
        else:
            outcome = "failed"
        category, action, description, app, target = render(request, status)
        return self._event(ms, actor, rack, category, action, description, app, target, outcome, status,
                           request.method, request.path, details, session_id, ip, agent)

    def _access(self, ms: int, actor: int, rack: int, action: str, description: str, target: str | None,
                details: dict | None = None, ip: str | None = None, agent: str | None = None) -> tuple[int, dict]:
        """An Access event that auditkit writes itself (gateway keys, share links): no request to a rack."""
        return self._event(ms, actor, rack, "Access", action, description, None, target, "succeeded", None, None,
                           None, details if details is not None else {}, None, ip, agent)

    def _event(self, ms: int, actor: int, rack: int, category: str, action: str, description: str, app: str | None,
               target: str | None, outcome: str, status: int | None, method: str | None, path: str | None,
               details: dict, session_id: str | None, ip: str | None, agent: str | None) -> tuple[int, dict]:
        a = self.world.actors[actor]
        rng = self.rng
        if ip is None and a.ips:
            ip = a.ips[0] if (len(a.ips) == 1 or rng.random() < 0.7) else a.ips[1 + rng.randrange(len(a.ips) - 1)]
        bits = rng.getrandbits(128)
        h = f"{bits:032x}"
        return ms, {
            "actor": a.name, "actor_type": a.type, "rack": self.world.racks[rack].name, "category": category,
            "action": action, "description": description, "app": app, "target": target, "outcome": outcome,
            "status": status, "method": method, "path": path, "source_ip": ip,
            "user_agent": agent if agent is not None else (a.agent or None),
            "request_id": f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[bits & 3]}{h[17:20]}-{h[20:]}",
            "details": details, "session_id": session_id,
        }

    def _app(self, rack: int, app: int) -> tuple[App, AppState]:
        a = self.world.racks[rack].apps[app]
        st = self.state.get((rack, app))
        if st is None:
            rng = self.rng
            rel, bld = _rid(rng, "R"), _rid(rng, "B")
            env = sorted(rng.sample(_ENV_KEYS, rng.randint(5, 9)), key=_ENV_KEYS.index)
            counts = {s: rng.choice((2, 3, 4, 6) if s in ("web", "api") else (1, 2, 3)) for s in a.services}
            st = AppState(rel, bld, [rel], [bld], env, counts, {s: _hex(rng, 10) for s in a.services})
            self.state[(rack, app)] = st
        return a, st

    def _pid(self, st: AppState, service: str) -> str:
        return f"{service}-{st.pods[service]}-{''.join(self.rng.choices('bcdfghjklmnpqrstvwxz2456789', k=5))}"

    def _roll_pods(self, st: AppState, app: App) -> None:
        """A promoted release replaces every pod: new pod-template hashes, so new process ids."""
        st.pods = {s: _hex(self.rng, 10) for s in app.services}

    # deploy: upload → build → (logs) → release → (migration) → promote (a failed promote is retried)
    def _x_deploy(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        logs, build_fails, promote_fails, migrate = _deploy_shape(r)
        a = self.world.actors[actor]
        out = []
        sha = _hex(rng, 64)
        key = f"tmp/{sha}.tgz"
        out.append(self._ev(t, actor, rack, _upload(app.name, key),
                            details={"size": rng.randrange(180_000, 48_000_000)}))
        build = _rid(rng, "B")
        git = _hex(rng, 40)
        if a.type == "deploy_key":
            desc = f"{rng.choice(('main', 'main', 'main', 'release', 'hotfix'))}@{git[:7]}"
        else:
            desc = rng.choice(("deploy", f"manual deploy {git[:7]}", f"{a.name.split('@')[0].split('.')[0]}/"
                               f"{rng.choice(('fix', 'feat', 'chore'))}-{rng.randrange(100, 999)}@{git[:7]}"))
        t += rng.randrange(2_000, 9_000)
        out.append(self._ev(t, actor, rack, _build(app.name, build, desc),
                            details={"description": desc, "git_sha": git, "manifest": "convox.yml",
                                     "no_cache": rng.random() < 0.05, "url": f"object://{app.name}/{key}"}))
        if logs:
            t += rng.randrange(500, 3_000)
            out.append(self._ev(t, actor, rack, _build_logs(app.name, build), 101))
        if build_fails:
            return out
        st.builds.append(build)
        del st.builds[:-8]
        t += rng.randrange(60_000, 540_000)  # the build
        release = _rid(rng, "R")
        out.append(self._ev(t, actor, rack, _release(app.name, release, build), details={"build": build}))
        st.releases.append(release)
        del st.releases[:-8]
        if migrate:
            t += rng.randrange(5_000, 20_000)
            service = app.services[0]
            pid = f"{service}-run-{''.join(rng.choices('bcdfghjklmnpqrstvwxz2456789', k=5))}"
            cmd = _MIGRATE[app.stack]
            out.append(self._ev(t, actor, rack, _process_run(app.name, service, pid, cmd),
                                details={"command": cmd, "release": release}))
            t += rng.randrange(20_000, 120_000)
        t += rng.randrange(1_000, 25_000)
        if promote_fails:
            status, error = rng.choice(_PROMOTE_ERRORS)
            out.append(self._ev(t, actor, rack, _promote(app.name, release), status, details={"error": error}))
            t += rng.randrange(60_000, 480_000)
        out.append(self._ev(t, actor, rack, _promote(app.name, release),
                            details={"force": False} if rng.random() < 0.9 else {"force": True}))
        st.release, st.build = release, build
        self._roll_pods(st, app)
        return out

    def _x_review_app(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        base = self.world.racks[rack].apps[app_i % 2].name  # web or api
        self.review_seq += rng.randrange(1, 6)
        name = f"{base}-pr-{self.review_seq}"
        out = [self._ev(t, actor, rack, Request("POST", "/apps", {}, {"name": name, "generation": "3"}, vary=("name",)),
                        details={"generation": "3"})]
        sha = _hex(rng, 64)
        key = f"tmp/{sha}.tgz"
        t += rng.randrange(3_000, 20_000)
        out.append(self._ev(t, actor, rack, _upload(name, key), details={"size": rng.randrange(180_000, 48_000_000)}))
        build, release, git = _rid(rng, "B"), _rid(rng, "R"), _hex(rng, 40)
        desc = f"pr-{self.review_seq}@{git[:7]}"
        t += rng.randrange(2_000, 9_000)
        out.append(self._ev(t, actor, rack, _build(name, build, desc),
                            details={"description": desc, "git_sha": git, "manifest": "convox.yml", "no_cache": False,
                                     "url": f"object://{name}/{key}"}))
        t += rng.randrange(60_000, 400_000)
        out.append(self._ev(t, actor, rack, _release(name, release, build), details={"build": build}))
        t += rng.randrange(2_000, 20_000)
        out.append(self._ev(t, actor, rack, _promote(name, release), details={"force": False}))
        # The pull request is merged or closed a few hours to days later (always inside the window).
        room = self.end_ms - 1 - t - 1_000
        lo = max(1, min(2 * HOUR_MS, room // 2))
        life = rng.randrange(lo, max(lo + 1, min(4 * DAY_MS, room)))
        out.append(self._ev(t + 1_000 + life, actor, rack, Request("DELETE", "/apps/{name}", {"name": name})))
        return out

    def _x_env(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        added, changed, removed = [], [], []
        roll = rng.random()
        if roll < 0.55 or len(st.env) < 3:
            changed = rng.sample(st.env, min(len(st.env), rng.choice((1, 1, 1, 2, 3))))
        elif roll < 0.85:
            missing = [k for k in _ENV_KEYS if k not in st.env]
            added = rng.sample(missing, min(len(missing), rng.choice((1, 1, 2)))) if missing else []
            if not added:
                changed = [rng.choice(st.env)]
        else:
            removed = [rng.choice(st.env)]
            if rng.random() < 0.3:
                changed = [k for k in rng.sample(st.env, 1) if k not in removed]
        release = _rid(rng, "R")
        hmacs = {k: value_hmac(self.hmac_key, _secret(rng, k)) for k in sorted(added + changed)}
        failed = rng.random() < 0.015
        details = {"added": sorted(added), "changed": sorted(changed), "removed": sorted(removed), "hmac": hmacs}
        request = Request("POST", "/apps/{app}/releases", {"app": app.name}, response={"id": release},
                          env=(tuple(added), tuple(changed), tuple(removed)), previous=tuple(st.env))
        if failed:
            details["error"] = rng.choice(("invalid environment line: must be KEY=VALUE",
                                           "parent release is not the current release of this app"))
            out = [self._ev(t, actor, rack, request, 422, details=details)]
        else:
            out = [self._ev(t, actor, rack, request, details=details)]
            st.env = sorted((set(st.env) | set(added)) - set(removed), key=_ENV_KEYS.index)
            st.releases.append(release)
            del st.releases[:-8]
        if r & 1:  # env set --promote
            t += rng.randrange(1_500, 9_000)
            if failed:
                release = st.release
            out.append(self._ev(t, actor, rack, _promote(app.name, release), details={"force": False}))
            st.release = release
            self._roll_pods(st, app)
        return out

    def _x_config(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        app, _ = self._app(rack, app_i)
        name = ("cli-env-mask", "feature-flags", "nginx-conf", "cli-env-mask")[r % 4]
        return [self._ev(t, actor, rack, Request("PUT", "/apps/{app}/configs/{name}", {"app": app.name, "name": name},
                                                 {"value": "[the config]"}), details={"value": "[redacted]"})]

    def _x_rollback(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        old = st.builds[-2] if len(st.builds) > 1 else st.build
        previous = st.releases[-2] if len(st.releases) > 1 else st.release
        release = _rid(rng, "R")
        out = [self._ev(t, actor, rack, _release(app.name, release, old),
                        details={"build": old, "rollback_to": previous})]
        t += rng.randrange(1_000, 6_000)
        out.append(self._ev(t, actor, rack, _promote(app.name, release),
                            details={"force": rng.random() < 0.3, "rollback": True}))
        st.releases.append(release)
        st.release, st.build = release, old
        self._roll_pods(st, app)
        return out

    def _x_scale(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, size = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        a = self.world.actors[actor]
        out = []
        for i in range(size):
            service = app.services[(r + i) % len(app.services)]
            params: dict[str, int] = {}
            if a.name == "nightly-scaler":
                local_hour = ((t + a.tz_minutes * MINUTE_MS) // HOUR_MS) % 24
                params["count"] = 0 if local_hour >= 12 else max(1, st.counts[service])
            else:
                cur = st.counts[service]
                new = min(12, max(1, cur + rng.choice((-2, -1, 1, 1, 2, 3, 4))))
                if rng.random() < 0.9:
                    params["count"] = new
                if rng.random() < 0.3 or not params:
                    params["cpu"] = rng.choice((128, 256, 512, 1024, 2048))
                if rng.random() < 0.35 or "cpu" in params:
                    params["memory"] = rng.choice((256, 512, 1024, 2048, 4096))
                if rng.random() < 0.08:
                    params["min"], params["max"] = 1, max(params.get("count", cur), rng.choice((6, 8, 12, 20)))
            status, error = 200, None
            if rng.random() < 0.03:
                status, error = rng.choice(_SCALE_ERRORS)
            details: dict[str, Any] = dict(params)
            if error:
                details["error"] = error
            elif "count" in params:
                st.counts[service] = params["count"] or st.counts[service]
            out.append(self._ev(t, actor, rack, _scale(app.name, service, params), status, details=details))
            t += rng.randrange(3_000, 40_000)
        return out

    def _x_restart(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, size = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        out = []
        for service in (list(app.services) * 2)[r % len(app.services):][:size]:
            out.append(self._ev(t, actor, rack, _restart(app.name, service)))
            t += rng.randrange(1_000, 5_000)
        st.pods.update({s: _hex(rng, 10) for s in app.services})
        return out

    def _x_exec(self, act: tuple) -> list:
        t, order, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        service = app.services[r % len(app.services)]
        pid = self._pid(st, service)
        if order in self.recorded:
            scenario = SCENARIOS[app.stack][(r >> 4) % len(SCENARIOS[app.stack])]
            return [self._session(t, actor, rack, app, pid, scenario,
                                  lambda command, code: _exec(app.name, pid, command, code))]
        cmd = rng.choice(_EXEC_COMMANDS[app.stack])
        if rng.random() < 0.02:
            return [self._ev(t, actor, rack, _exec(app.name, pid, cmd, None), 404,
                             details={"command": cmd, "error": f"no such process: {pid}"})]
        code = rng.choices((0, 1, 2, 127, 130, 137), (84, 8, 1, 1, 5, 1))[0]
        duration = min(int(rng.expovariate(1 / 90_000)) + 800, 4 * HOUR_MS)
        return [self._ev(t, actor, rack, _exec(app.name, pid, cmd, code), 101,
                         details={"command": cmd, "exit_code": code, "duration_ms": duration, "tty": cmd in _TTY})]

    def _session(self, t: int, actor: int, rack: int, app: App | None, target: str, scenario: Callable,
                 request: Callable[[str, int], Request], extra: dict | None = None) -> tuple:
        """A recorded interactive session: the scenario's recording, and the event of `request(command, exit code)`
        that references it."""
        rng = self.rng
        a = self.world.actors[actor]
        command, cast, duration, code, width, height = scenario(rng, t, target, a)
        digest = store.recording_sha256(cast)
        session_id = "ses_" + new_event_id(t, rng)
        meta = {"id": session_id, "source": self.source, "rack": self.world.racks[rack].name,
                "app": app.name if app else None, "actor": a.name, "command": command,
                "started_at": _format_ms(t, self.ts_cache), "ended_at": _format_ms(t + duration, self.ts_cache),
                "duration_ms": duration, "exit_code": code, "width": width, "height": height}
        details = {"command": command, "exit_code": code, "duration_ms": duration, "tty": True,
                   "recording_sha256": digest, **(extra or {})}
        ms, d = self._ev(t, actor, rack, request(command, code), 101, details=details, session_id=session_id)
        d["status"], d["outcome"] = 101, "succeeded"  # a recorded session always got its answer
        d["details"].pop("error", None)
        return ms, d, (meta, cast)

    def _x_run(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        service = app.services[(r >> 2) % len(app.services)]
        pid = f"{service}-run-{''.join(rng.choices('bcdfghjklmnpqrstvwxz2456789', k=5))}"
        attached = r & 1
        cmd = rng.choice(_RUN_COMMANDS[app.stack])
        first = "sleep 3600" if attached else cmd  # an attached run starts a sleeper, then execs the command in it
        out = [self._ev(t, actor, rack, _process_run(app.name, service, pid, first),
                        details={"command": first, "release": st.release})]
        if attached:
            t += rng.randrange(4_000, 25_000)
            code = rng.choices((0, 1, 130), (88, 9, 3))[0]
            duration = min(int(rng.expovariate(1 / 120_000)) + 2_000, 20 * MINUTE_MS)
            out.append(self._ev(t, actor, rack, _exec(app.name, pid, cmd, code), 101,
                                details={"command": cmd, "exit_code": code, "duration_ms": duration, "tty": True,
                                         "entrypoint": True}))
            t += duration + rng.randrange(200, 2_000)
            out.append(self._ev(t, actor, rack, _stop(app.name, pid)))
        return out

    def _x_ps_stop(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        app, st = self._app(rack, app_i)
        pid = self._pid(st, app.services[r % len(app.services)])
        status, details = 200, {}
        if self.rng.random() < 0.04:
            status, details = 404, {"error": f"no such process: {pid}"}
        return [self._ev(t, actor, rack, _stop(app.name, pid), status, details=details)]

    def _x_files(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        pid = self._pid(st, app.services[r % len(app.services)])
        route, slots = "/apps/{app}/processes/{pid}/files", {"app": app.name, "pid": pid}
        if self.world.actors[actor].role == "read" or r & 2:
            files = [rng.choice(("/app/log/production.log", "/tmp/export.csv", "/app/tmp/heapdump.hprof",
                                 "/var/log/nginx/error.log", "/app/storage/report-2026.pdf"))]
            return [self._ev(t, actor, rack, Request("GET", route, slots, {"file": files[0]}),
                             details={"files": files})]
        files = [rng.choice(("./fix_orders.rb", "./seed.sql", "./debug.py", "./patch.tar", "./backfill.js"))]
        return [self._ev(t, actor, rack, Request("POST", route, slots), details={"files": files})]

    def _x_triggers(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        app, _ = self._app(rack, app_i)
        slots = {"app": app.name, "service": app.services[0]}
        variant = r % 3
        if variant == 0:
            return [self._ev(t, actor, rack, Request("POST", "/apps/{app}/services/{service}/triggers/enable", slots))]
        if variant == 1:
            return [self._ev(t, actor, rack, Request("POST", "/apps/{app}/services/{service}/triggers/disable", slots))]
        cpu = self.rng.choice((50, 60, 70, 80))
        return [self._ev(t, actor, rack, Request("POST", "/apps/{app}/services/{service}/triggers/threshold", slots,
                                                 {"cpu": str(cpu)}), details={"cpu": cpu})]

    def _x_app_admin(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, _ = self._app(rack, app_i)
        name = app.name
        v = r % 20
        if v < 7:
            keys = sorted(rng.sample(("Internal", "Timeout", "Rolling", "Sticky", "Cpu", "Memory", "Fargate"),
                                     rng.choice((1, 1, 2))))
            return [self._ev(t, actor, rack, Request("PUT", "/apps/{name}", {"name": name},
                                                     {"parameters": tuple(keys)}),
                             details={"parameters": keys})]
        if v < 10:
            return [self._ev(t, actor, rack, Request("PUT", "/apps/{name}", {"name": name}, {"lock": "true"}),
                             details={"lock": True})]
        if v < 13:
            return [self._ev(t, actor, rack, Request("PUT", "/apps/{name}", {"name": name}, {"lock": "false"}),
                             details={"lock": False})]
        if v < 15:
            status = 200 if rng.random() < 0.85 else 400
            return [self._ev(t, actor, rack, Request("POST", "/apps/{name}/cancel", {"name": name}), status,
                             details={} if status == 200 else {"error": "app is not updating"})]
        if v < 17:
            cap = rng.choice((200, 500, 1000, 2500))
            budget = {"monthly-cap-usd": str(cap), "alert-threshold-percent": "80", "at-cap-action": "alert-only"}
            return [self._ev(t, actor, rack, Request("POST", "/apps/{app}/budget", {"app": name}, budget),
                             details={"monthly-cap-usd": cap, "alert-threshold-percent": 80,
                                      "at-cap-action": "alert-only"})]
        route = ("/apps/{app}/budget/reset", "/apps/{app}/budget/dismiss-recovery",
                 "/apps/{app}/budget/simulate-shutdown")[v - 17]
        return [self._ev(t, actor, rack, Request("POST", route, {"app": name}))]

    def _x_infra(self, act: tuple) -> list:
        t, order, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        v = r % 20
        instance = _instance(rng)
        if order in self.recorded:
            return [self._session(t, actor, rack, None, instance, ssh_session,
                                  lambda command, code: _shell(instance, "interactive"))]
        # The gateway lets only admins change the rack itself; others are refused before the rack sees it.
        admin = self.world.actors[actor].role == "admin"
        refused = {"error": "forbidden: changing the rack needs the admin role on this gateway"}
        if v < 6:
            status, details = (200, {}) if admin else (403, refused)
            if admin and rng.random() < 0.05:
                status, details = 404, {"error": f"instance not found: {instance}"}
            return [self._ev(t, actor, rack, Request("DELETE", "/instances/{id}", {"id": instance}), status,
                             details=details)]
        if v < 10:
            cmd = rng.choice(("interactive", "interactive", "uptime", "df -h", "sudo journalctl -u kubelet -n 50"))
            return [self._ev(t, actor, rack, _shell(instance, cmd), 101,
                             details={"command": None if cmd == "interactive" else cmd,
                                      "exit_code": 0, "duration_ms": rng.randrange(5_000, 900_000)})]
        if v < 13:
            host, port = rng.choice((("pg-main.acme.internal", 5432), ("redis-cache.acme.internal", 6379),
                                     ("10.0.14.22", 9200), ("pg-reports.acme.internal", 5432)))
            return [self._ev(t, actor, rack, Request("GET", "/proxy/{host}/{port}", {"host": host, "port": str(port)},
                                                     websocket=True), 101,
                             details={"duration_ms": rng.randrange(20_000, 3_600_000)})]
        if v < 16:
            keys = sorted(rng.sample(_RACK_PARAMS, rng.choice((1, 1, 2))))
            parameters = {"parameters": tuple(keys)}
            return [self._ev(t, actor, rack, Request("PUT", "/system", {}, parameters), 200 if admin else 403,
                             details={"parameters": keys, **({} if admin else refused)})]
        if v < 18:
            version = rng.choice(("3.24.7", "3.24.8", "3.24.9"))
            status, details = 200, {"version": version, "force": False}
            if not admin:
                status, details = 403, {**details, **refused}
            elif rng.random() < 0.1:
                status, details["error"] = 409, "rack is currently updating"
            return [self._ev(t, actor, rack, Request("PUT", "/system", {}, {"version": version, "force": "false"}),
                             status, details=details)]
        if v < 19:
            count, kind = rng.choice((3, 4, 6, 8)), rng.choice(("t3.large", "t3.xlarge", "m6i.large", "c6i.xlarge"))
            return [self._ev(t, actor, rack, Request("PUT", "/system", {}, {"count": str(count), "type": kind}),
                             200 if admin else 403,
                             details={"count": count, "type": kind, **({} if admin else refused)})]
        return [self._ev(t, actor, rack, Request("POST", "/system/karpenter/cleanup", {}))]

    def _x_security(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        a = self.world.actors[actor]
        app, _ = self._app(rack, app_i)
        domain = rng.choice(_CERT_DOMAINS)
        cert = "cert-" + _hex(rng, 10)
        v = r % 18
        if v < 4:
            return [self._ev(t, actor, rack, Request("POST", "/certificates", {},
                                                     response={"id": cert, "domain": domain}),
                             details={"domain": domain, "chain": True})]
        if v < 6:
            domains = sorted({domain, rng.choice(_CERT_DOMAINS)})
            return [self._ev(t, actor, rack, Request("POST", "/certificates/generate", {},
                                                     {"domains": ",".join(domains)}, response={"id": cert}),
                             details={"domains": domains})]
        if v < 8:
            return [self._ev(t, actor, rack, Request("DELETE", "/certificates/{id}", {"id": cert}))]
        if v < 10:
            return [self._ev(t, actor, rack, _renew(app.name))]
        if v < 12:
            service = app.services[0]
            return [self._ev(t, actor, rack, Request("PUT", "/apps/{app}/ssl/{service}/{port}",
                                                     {"app": app.name, "service": service, "port": "443"},
                                                     {"id": cert}, vary=("id",)),
                             details={"certificate": cert, "service": service, "port": 443})]
        if v < 13:
            return [self._ev(t, actor, rack, Request("PUT", "/letsencrypt/config", {}),
                             details={"solvers": ["route53"]})]
        if v < 14:
            return [self._ev(t, actor, rack, Request("POST", "/instances/keyroll", {}))]
        if v < 16:
            status = 200 if a.role == "admin" else 403
            details = {} if status == 200 else {"error": "forbidden: rotating the signing key needs the admin role"}
            return [self._ev(t, actor, rack, Request("PUT", "/system/jwt/rotate", {}), status, details=details)]
        role, hours = rng.choice((("read", 8), ("read", 24), ("write", 1), ("write", 4), ("admin", 1)))
        return [self._ev(t, actor, rack, Request("POST", "/system/jwt/token", {},
                                                 {"role": role, "durationInHour": str(hours)}),
                         details={"role": role, "duration_hours": hours})]

    def _x_registry(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, size = act
        rng = self.rng
        v = r % 10
        server = rng.choice(_REGISTRIES)
        if v < 3:
            user = rng.choice(("AWS", "ci-pull", "acme-bot", "_json_key"))
            _secret(rng, "REGISTRY_PASSWORD")  # sent to the rack, never recorded
            login = {"server": server, "username": user, "password": UNRECORDED_VALUE}
            return [self._ev(t, actor, rack, Request("POST", "/registries", {}, login),
                             details={"server": server, "username": user})]
        if v < 4:
            return [self._ev(t, actor, rack, Request("DELETE", "/registries/{server}", {"server": server}))]
        app, _ = self._app(rack, app_i)
        out = []
        for i in range(size):
            if i == size - 1:
                ref = f"{app.name}/manifests/{rng.choice(('latest', 'main', 'v' + str(rng.randrange(100, 400))))}"
            else:
                ref = f"{app.name}/blobs/uploads/{_hex(rng, 8)}-{_hex(rng, 4)}"
            out.append(self._ev(t, actor, rack, Request("PUT", "/v2/{path}", {"path": ref}), 201))
            t += rng.randrange(1_000, 30_000)
        return out

    def _x_resources(self, act: tuple) -> list:
        t, order, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, _ = self._app(rack, app_i)
        resources = self.world.racks[rack].resources
        name, kind = resources[(r >> 5) % len(resources)]
        if order in self.recorded and kind in ("postgres", "redis"):
            scenario = psql_session if kind == "postgres" else redis_session
            return [self._session(t, actor, rack, app, name, scenario,
                                  lambda command, code: _console(app.name, name))]
        v = r % 20
        if v < 2:
            prefix = {"postgres": "pg", "memcached": "memcache"}.get(kind, kind)
            new = f"{prefix}-{rng.choice(('audit', 'events', 'sessions', 'queue', 'cache2'))}"
            return [self._ev(t, actor, rack, Request("POST", "/resources", {},
                                                     {"name": new, "kind": kind, "class": UNRECORDED_VALUE,
                                                      "storage": UNRECORDED_VALUE, "version": UNRECORDED_VALUE}),
                             details={"kind": kind, "parameters": ["class", "storage", "version"]})]
        if v < 5:
            parameter = rng.choice(("class", "storage", "version", "durable"))
            return [self._ev(t, actor, rack, Request("PUT", "/resources/{name}", {"name": name},
                                                     {"parameters": (parameter,)}),
                             details={"parameters": [parameter]})]
        if v < 6:
            return [self._ev(t, actor, rack, Request("DELETE", "/resources/{name}", {"name": name}),
                             200 if rng.random() < 0.7 else 409)]
        if v < 9:
            return [self._ev(t, actor, rack, Request("POST", "/resources/{name}/links", {"name": name},
                                                     {"app": app.name}))]
        if v < 11:
            return [self._ev(t, actor, rack, Request("DELETE", "/resources/{name}/links/{app}",
                                                     {"name": name, "app": app.name}))]
        data = {"app": app.name, "name": name}
        if v < 12:
            return [self._ev(t, actor, rack, Request("PUT", "/apps/{app}/resources/{name}/data", data),
                             details={"size": rng.randrange(1_000_000, 900_000_000)})]
        if v < 17:
            return [self._ev(t, actor, rack, _console(app.name, name), 101,
                             details={"duration_ms": rng.randrange(10_000, 1_800_000)})]
        return [self._ev(t, actor, rack, Request("GET", "/apps/{app}/resources/{name}/data", data),
                         details={"size": rng.randrange(1_000_000, 2_000_000_000)})]

    def _x_keys(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        people = [a for a in self.world.actors if a.type == "user"]
        keys = [a for a in self.world.actors if a.type == "deploy_key"]
        v = r % 5
        if v < 2:
            who = rng.choice(people)
            return [self._access(t, actor, rack, "created", f"Created gateway key for {who.name} (role {who.role})",
                                 who.name, {"role": who.role}, agent="auditkit/0.1.0")]
        if v < 3:
            who = rng.choice(people)
            return [self._access(t, actor, rack, "revoked", f"Revoked gateway key of {who.name}", who.name,
                                 agent="auditkit/0.1.0")]
        key = rng.choice(keys)
        if v < 4:
            return [self._access(t, actor, rack, "rotated", f"Rotated deploy key {key.name}", key.name,
                                 {"role": key.role}, agent="auditkit/0.1.0")]
        return [self._access(t, actor, rack, "created", f"Created deploy key {key.name} (role {key.role})", key.name,
                             {"role": key.role}, agent="auditkit/0.1.0")]

    def _x_other(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, _ = self._app(rack, app_i)
        if r % 3:
            key = f"tmp/{_hex(rng, 64)}.tgz"
            return [self._ev(t, actor, rack, Request("DELETE", "/apps/{app}/objects/{key}",
                                                     {"app": app.name, "key": key}))]
        method, suffix = rng.choice((("PATCH", ""), ("POST", "/diagnose/run"), ("PUT", "/balancers/web")))
        path = f"/apps/{app.name}{suffix}"
        # A write the catalog does not know: recorded as Other, "Unknown write METHOD /path".
        return [self._ev(t, actor, rack, Request(method, "/apps/{app}" + suffix, {"app": app.name}),
                         rng.choice((200, 404, 404)), details={"method": method, "path": path})]

    def _x_system(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        app, _ = self._app(rack, app_i)
        v = r % 3
        if v == 0:
            return [self._ev(t, actor, rack, Request("POST", "/system/karpenter/cleanup", {}),
                             details={"nodes": self.rng.randrange(0, 4), "scheduled": True})]
        if v == 1:
            return [self._ev(t, actor, rack, _renew(app.name), details={"issuer": "letsencrypt", "scheduled": True})]
        event = self.rng.choice(("release:promote", "build:create", "app:create", "resource:create"))
        return [self._ev(t, actor, rack, Request("POST", "/events", {},
                                                 {"action": event, "status": "success",
                                                  "data": ("app",)}),
                         details={"action": event, "status": "success"})]

    def _x_denied(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        rng = self.rng
        app, st = self._app(rack, app_i)
        a = self.world.actors[actor]
        error = {"error": f"forbidden: gateway key of {a.name} has role {a.role} and may not write"}
        v = r % 5
        if v == 0:
            pid = self._pid(st, app.services[0])
            cmd = rng.choice(_EXEC_COMMANDS[app.stack])
            return [self._ev(t, actor, rack, _exec(app.name, pid, cmd, None), 403, details={"command": cmd, **error})]
        if v == 1:
            key = rng.choice(st.env)
            return [self._ev(t, actor, rack, Request("POST", "/apps/{app}/releases", {"app": app.name},
                                                     env=((), (key,), ()), previous=tuple(st.env)), 403,
                             details={"added": [], "changed": [key], "removed": [],
                                      "hmac": {key: value_hmac(self.hmac_key, _secret(rng, key))}, **error})]
        if v == 2:
            service = app.services[0]
            count = rng.choice((0, 1, 5, 10))
            return [self._ev(t, actor, rack, _scale(app.name, service, {"count": count}), 403,
                             details={"count": count, **error})]
        if v == 3:
            service = app.services[0]
            return [self._ev(t, actor, rack, _restart(app.name, service), 403, details=error)]
        return [self._ev(t, actor, rack, _promote(app.name, st.release), 403, details=error)]

    def _x_logs(self, act: tuple) -> list:
        t, _, _, actor, rack, app_i, r, _ = act
        app, st = self._app(rack, app_i)
        build = st.builds[-1 - (r % len(st.builds))]
        return [self._ev(t, actor, rack, _build_logs(app.name, build), 101)]

    def _x_share_link(self, act: tuple) -> list:
        """A share link's life as share/links.py records it on the mirror's local chain (its description of the link
        included): created by an admin, viewed by an auditor (pages, a download), sometimes revoked."""
        t, _, _, actor, rack, _, r, size = act
        rng = self.rng
        views, revoked = _share_shape(r)
        rack_name = self.world.racks[rack].name
        link = "sl_" + _hex(rng, 16)
        since = _format_ms(max(self.start_ms, t - rng.choice((7, 30, 90)) * DAY_MS), self.ts_cache)[:10]
        flt = rng.choice((f"rack:{rack_name}", f"rack:{rack_name} category:Environment",
                          f"rack:{rack_name} action:promoted", f"rack:{rack_name} outcome:denied"))
        expires = rng.choice((None, 7, 30))
        expires_at = _format_ms(t + expires * DAY_MS, self.ts_cache) if expires else None
        note = rng.choice(("SOC 2 evidence", "quarterly access review", "incident review", "ISO 27001 audit",
                           "customer security questionnaire"))
        created = ShareLink(link, Filter.parse(flt), since, None, expires_at, note, self.world.actors[actor].name,
                            _format_ms(t, self.ts_cache))
        out = [self._local(t, actor, rack, "created", f"Created share link {link}: {describe_link(created)}",
                           link, None, None,
                           {"filter": flt, "since": since, "until": None, "expires_at": expires_at, "note": note})]
        span = max(1, self.end_ms - 1 - t)
        horizon = min(span, (expires or 60) * DAY_MS)
        times = sorted(self._view_time(t, horizon) for _ in range(views))
        ip = f"198.51.100.{rng.randrange(2, 20)}"
        agent = rng.choice(_BROWSERS)
        for i, vt in enumerate(times):
            what = ("download of every event as CSV" if i and rng.random() < 0.2
                    else f"page of events {100 * i + 1}–{100 * i + 100}")
            out.append(self._local(vt, None, rack, "viewed", f"Viewed share link {link}: {what}", link, ip, agent,
                                   {"what": what}))
        if revoked:
            after = times[-1] if times else t
            rt = after + 1 + int(rng.random() * max(1, min(DAY_MS, self.end_ms - 2 - after)))
            out.append(self._local(rt, actor, rack, "revoked", f"Revoked share link {link} (audit complete)", link,
                                   None, None, {"reason": "audit complete"}))
        return out

    def _local(self, ms: int, actor: int | None, rack: int, action: str, text: str, link: str, ip: str | None,
               agent: str | None, details: dict) -> tuple[int, dict]:
        """An Access event as share/links.py writes it: rack 'local', the link as target, viewers as share:ID."""
        ms, d = self._access(ms, actor if actor is not None else 0, rack, action, text, link, details, ip, agent)
        d["rack"] = LOCAL_RACK
        if actor is None:
            d["actor"], d["actor_type"] = f"share:{link}", "user"
        return ms, d

    def _view_time(self, t: int, horizon: int) -> int:
        """When an auditor opens the link: in office hours (theirs, UTC+0) within `horizon` after it was made."""
        if horizon <= 2_000:
            return t + 1
        profile = self.clock.profile("office", 0)
        for _ in range(30):
            ms = self.clock.sample(profile, self.rng, 0)
            if t < ms < t + horizon:
                return ms
        return t + 1_000 + int(self.rng.random() * (horizon - 1_000))


# --- the requests behind the gateway's events (rendered through the catalog by requests.render) -----------------------

def _upload(app: str, key: str) -> Request:
    return Request("POST", "/apps/{app}/objects/{key}", {"app": app, "key": key})


def _build(app: str, build: str, description: str) -> Request:
    return Request("POST", "/apps/{app}/builds", {"app": app}, {"description": description}, vary=("description",),
                   response={"id": build})


def _build_logs(app: str, build: str) -> Request:
    return Request("GET", "/apps/{app}/builds/{id}/logs", {"app": app, "id": build}, websocket=True)


def _release(app: str, release: str, build: str) -> Request:
    return Request("POST", "/apps/{app}/releases", {"app": app}, {"build": build}, vary=("build",),
                   response={"id": release})


def _promote(app: str, release: str) -> Request:
    return Request("POST", "/apps/{app}/releases/{id}/promote", {"app": app, "id": release})


def _process_run(app: str, service: str, pid: str, command: str) -> Request:
    return Request("POST", "/apps/{app}/services/{service}/processes", {"app": app, "service": service},
                   headers={"Command": command}, vary=("Command",), response={"pid": pid})


def _exec(app: str, pid: str, command: str, exit_code: int | None) -> Request:
    return Request("GET", "/apps/{app}/processes/{pid}/exec", {"app": app, "pid": pid}, headers={"Command": command},
                   vary=("Command",), websocket=True, exit_code=exit_code)


def _stop(app: str, pid: str) -> Request:
    return Request("DELETE", "/apps/{app}/processes/{pid}", {"app": app, "pid": pid})


def _scale(app: str, service: str, settings: dict[str, int]) -> Request:
    return Request("PUT", "/apps/{app}/services/{name}", {"app": app, "name": service},
                   {k: str(v) for k, v in settings.items()}, vary=tuple(settings))


def _restart(app: str, service: str) -> Request:
    return Request("POST", "/apps/{app}/services/{name}/restart", {"app": app, "name": service})


def _shell(instance: str, command: str) -> Request:
    return Request("GET", "/instances/{id}/shell", {"id": instance},
                   headers={} if command == "interactive" else {"Command": command}, websocket=True)


def _console(app: str, resource: str) -> Request:
    return Request("GET", "/apps/{app}/resources/{name}/console", {"app": app, "name": resource}, websocket=True)


def _renew(app: str) -> Request:
    return Request("POST", "/certificates/{id}/renew", {"id": app})


def _cumulative(weights: list[float], items: list[int]) -> tuple[list[float], list[int]]:
    cum, total, kept = [], 0.0, []
    for w, item in zip(weights, items):
        if w > 0:
            total += w
            cum.append(total)
            kept.append(item)
    return cum, kept


def _pick(cum: list[float], rng: random.Random) -> int:
    i = bisect.bisect_right(cum, rng.random() * cum[-1])
    return i if i < len(cum) else len(cum) - 1


def _rid(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choices(_UPPER, k=9))


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _instance(rng: random.Random) -> str:
    return "i-0" + _hex(rng, 16)


def _deploy_shape(r: int) -> tuple[bool, bool, bool, bool]:
    logs = (r & 3) != 0
    build_fails = (r >> 2) % 100 < 6
    promote_fails = (r >> 9) % 100 < 5
    migrate = (r >> 16) % 100 < 15
    return logs, build_fails, promote_fails, migrate


def _share_shape(r: int) -> tuple[int, bool]:
    return 1 + (r >> 1) % 9, bool(r & 1) and (r >> 8) % 3 == 0


def _shape(kind: str, r: int) -> int:
    """How many events an activity of `kind` with variant bits `r` expands to (its expander agrees)."""
    if kind == "deploy":
        logs, build_fails, promote_fails, migrate = _deploy_shape(r)
        return 2 + logs + (0 if build_fails else 2 + migrate + promote_fails)
    if kind == "env":
        return 1 + (r & 1)
    if kind == "rollback":
        return 2
    if kind == "scale":
        return 1 + (r % 4 == 0)
    if kind == "restart":
        return 1 + (r % 3 == 0)
    if kind == "run":
        return 1 + 2 * (r & 1)
    if kind == "review_app":
        return 6
    if kind == "registry":
        return (r >> 4) % 3 + 2 if r % 10 >= 4 else 1
    if kind == "share_link":
        views, revoked = _share_shape(r)
        return 1 + views + revoked
    return 1


# Activities that can carry a recording: exec into a process, SSH to an instance, a resource console.
_INTERACTIVE = frozenset({"exec", "infra", "resources"})


# The browsers auditors open share links in.
_BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
)
_MIGRATE = {"rails": "bin/rails db:migrate", "node": "npm run migrate", "python": "python manage.py migrate",
            "go": "./bin/migrate up"}
_PROMOTE_ERRORS = ((409, "app is currently updating"), (500, "timeout waiting for rollout of service web"),
                   (422, "release is still building"), (500, "deployment failed: health check timeout"))
_RACK_ERRORS = ((500, "internal server error"), (502, "bad gateway: the rack API did not answer"),
                (503, "rack is updating, try again in a few minutes"), (504, "gateway timeout after 60s"),
                (500, "context deadline exceeded"))
_SCALE_ERRORS = ((400, "memory must be at least 64"), (400, "invalid cpu: must be greater than 0"),
                 (409, "app is currently updating"), (500, "timeout waiting for scale"))
_EXEC_COMMANDS = {
    "rails": ("bin/rails console", "bash", "bin/rails console", "bin/rake db:migrate:status",
              "bin/rails runner 'Order.stuck.count'", "tail -n 200 log/production.log", "bundle exec rake cache:clear",
              "sh"),
    "node": ("sh", "node", "npm run repl", "cat /app/package.json", "node scripts/reindex.js"),
    "python": ("bash", "python manage.py shell", "python", "celery -A app inspect active", "pip list"),
    "go": ("sh", "/app/bin/healthcheck", "cat /etc/resolv.conf", "ls -la /app"),
}
_TTY = {"bin/rails console", "bash", "sh", "node", "npm run repl", "python manage.py shell", "python"}
_RUN_COMMANDS = {
    "rails": ("bin/rails db:migrate", "bin/rake orders:reconcile", "bin/rails runner scripts/backfill_invoices.rb",
              "bin/rake search:reindex"),
    "node": ("npm run migrate", "node scripts/send_digest.js", "npm run seed"),
    "python": ("python manage.py migrate", "python manage.py backfill_events", "python -m jobs.rebuild_reports"),
    "go": ("./bin/migrate up", "./bin/reindex --all", "./bin/compact"),
}
_RACK_PARAMS = ("node_type", "high_availability", "build_node_type", "node_disk", "max_on_demand_count", "idle_timeout",
                "internal_router", "syslog")
_CERT_DOMAINS = ("api.example.com", "www.example.com", "admin.example.com", "billing.example.com", "*.example.com",
                 "status.example.com", "eu.api.example.com")
_REGISTRIES = ("ghcr.io", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "registry.gitlab.com", "quay.io",
               "index.docker.io")


# --- writing ---------------------------------------------------------------------------------------------------------

def _plan_counts(world: World, events: int) -> dict[str, int]:
    """How many events each source gets: the mirror's own chain a small share, the gateways by their racks' weight."""
    local = round(events * LOCAL_SHARE) if events >= 200 else 0
    rest = events - local
    weights = {s: sum(r.weight for r in world.racks if r.source == s) for s in world.sources}
    total = sum(weights.values())
    counts = {s: int(rest * w / total) for s, w in weights.items()}
    remainder = rest - sum(counts.values())
    for s in sorted(world.sources, key=lambda s: -(rest * weights[s] / total - counts[s]))[:remainder]:
        counts[s] += 1
    counts["local"] = local
    return {s: n for s, n in counts.items() if n > 0}


def _generate(world_seed: int, source: str, start_ms: int, end_ms: int, count: int, sessions: int,
              windows: list[int]) -> Iterator[tuple[int, list[Event], list[tuple[dict, bytes]]]]:
    """One source's windows as validated, unsealed Events. In a worker process this is where they are built (and
    so validated); the writer chains and inserts them (store.append_halves; in-process, store.append seals them)."""
    for w, drafts, recordings in Generator(build_world(world_seed), source, start_ms, end_ms, count,
                                           sessions).batches(windows):
        yield w, [Event(**d) for d in drafts], recordings


# Events cross from a worker to the writer as (ms, values, before, after): plain values pickle through C, and the
# worker has already made each event's canonical JSON (events.seal_halves), the costly part of sealing, so the
# writer only chains the hashes (store.append_halves).
_fields_of = operator.attrgetter(*FIELDS)
_SOURCE_AT, _SEQ_AT, _DETAILS_AT = FIELDS.index("source"), FIELDS.index("source_seq"), FIELDS.index("details")


def _halves(batch: list[Event], source: str, seq: int) -> list[tuple[int, list, bytes, bytes]]:
    out = []
    for event in batch:
        seq += 1
        values = list(_fields_of(event))
        values[_SOURCE_AT], values[_SEQ_AT] = source, seq
        values[_DETAILS_AT] = dumps(event.details)
        out.append((timestamp_ms(event.timestamp), values, *seal_halves(event, source=source, seq=seq)))
    return out


def _worker(out: Any, args: tuple, seq: int) -> None:
    """A child process: generate one source's batches, cut each event's seal (no one else writes that chain, which
    stands at `seq`), and hand them over in order; errors travel as text."""
    try:
        source = args[1]
        for w, batch, recordings in _generate(*args):
            out.put((w, _halves(batch, source, seq), recordings))
            seq += len(batch)
        out.put(None)
    except BaseException:  # pragma: no cover - reported by the parent
        out.put(("error", traceback.format_exc()))


class _Remote:
    """The parent's end of a worker: an iterator over its batches that notices a worker that died."""

    def __init__(self, ctx: Any, args: tuple, seq: int):
        self.queue = ctx.Queue(maxsize=8)
        self.process = ctx.Process(target=_worker, args=(self.queue, args, seq), daemon=True)
        self.process.start()

    def __iter__(self) -> "_Remote":
        return self

    def __next__(self) -> Any:
        while True:
            try:
                item = self.queue.get(timeout=2.0)
            except queue_mod.Empty:
                if not self.process.is_alive():
                    raise RuntimeError(f"synth worker exited with status {self.process.exitcode}") from None
                continue
            if item is None:
                raise StopIteration
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "error":
                raise RuntimeError("synth worker failed:\n" + item[1])
            return item

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)


def _fork_context() -> Any:
    """fork, when it is safe: it neither re-imports the caller's main module (as spawn does, which breaks scripts
    without a __main__ guard) nor copies a process that runs other threads. Otherwise None: generate in-process."""
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return None
    return multiprocessing.get_context("fork")


def write_history(conn: sqlite3.Connection, *, events: int, seed: int = 1, days: int = 30,
                  end: dt.datetime | None = None, progress: Callable[[int], None] | None = None,
                  parallel: bool | None = None) -> Summary:
    """Write `events` synthetic events (and a few recordings) spread over `days` days ending at `end` (default now).

    Chains continue from whatever the store already holds. `parallel` forces (True) or forbids (False) generating
    the gateway chains in worker processes; by default runs of PARALLEL_MIN events or more use them.
    """
    if events < 1:
        raise ValueError("events must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    end_ms = _end_ms(end)
    start_ms = end_ms - days * DAY_MS
    world = build_world(seed)
    counts = _plan_counts(world, events)
    wanted = max(4, min(200, events // 1000)) if events >= 500 else (1 if events >= 50 else 0)
    gateway_total = sum(n for s, n in counts.items() if s != "local") or 1
    session_split = {s: (round(wanted * n / gateway_total) if s != "local" else 0) for s, n in counts.items()}
    n_windows = max(1, -(-events // BATCH_EVENTS))
    windows = [start_ms + (end_ms - start_ms) * (i + 1) // n_windows for i in range(n_windows)]
    windows[-1] = end_ms
    order = sorted(counts, key=lambda s: (-counts[s], s))
    for source in order:  # a chain a real gateway signs is not one to write synthetic events onto
        pinned = store.pinned_key(conn, source)
        if source != store.LOCAL_SOURCE and pinned and pinned != str(synthetic_signer(conn, source).verifier):
            raise AuditkitError(f"{source} is a chain whose checkpoints its gateway signs (key {pinned}): synth "
                             f"writes only onto synthetic chains")
    if parallel is None:
        parallel = events >= PARALLEL_MIN
    streams: dict[str, Any] = {}
    remotes: list[_Remote] = []
    ctx = _fork_context() if parallel else None
    try:
        for source in order:
            args = (seed, source, start_ms, end_ms, counts[source], session_split[source], windows)
            if ctx is not None and source != "local":
                remote = _Remote(ctx, args, store.chain_head(conn, source).last_seq)
                remotes.append(remote)
                streams[source] = remote
            else:
                streams[source] = _generate(*args)
        written = sessions = 0
        with store.bulk_load(conn):
            for w in range(n_windows):
                for source in order:
                    got_w, batch, recordings = next(streams[source])
                    if got_w != w:  # pragma: no cover - every generator yields every window, in order
                        raise RuntimeError(f"synth: {source} handed over window {got_w} when {w} was due")
                    for meta, cast in recordings:
                        store.add_session(conn, meta, cast)
                        sessions += 1
                    if batch and isinstance(streams[source], _Remote):
                        written += store.append_halves(conn, source, batch)
                    elif batch:
                        store.append(conn, batch, source)
                        written += len(batch)
                if progress is not None:
                    progress(written)
    finally:
        for remote in remotes:
            remote.close()
    for source in order:
        if source != store.LOCAL_SOURCE:
            store.checkpoint_chain(conn, source, synthetic_signer(conn, source))
    return Summary(written, sessions)


SYNTHETIC_KEY_SUFFIX = ".synthetic-{source}.checkpoint.key"


def synthetic_key_path(conn: sqlite3.Connection, source: str) -> Path:
    """Where the synthetic gateway `source` keeps its checkpoint key: beside the mirror, as
    `<db file>.synthetic-<source>.checkpoint.key` (a real gateway's is beside its journal)."""
    return store.beside(conn, SYNTHETIC_KEY_SUFFIX.format(source=source))


def synthetic_signer(conn: sqlite3.Connection, source: str) -> note.Signer:
    """The synthetic gateway `source`'s Ed25519 checkpoint key (key name = the chain), made on first need."""
    return store.load_signer(synthetic_key_path(conn, source), source)
