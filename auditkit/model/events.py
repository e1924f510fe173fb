"""The event model: Event, the closed lists of categories, actions, actor types and outcomes, canonical JSON,
the hash-chain rule and event ids.

Every part of auditkit (gateway, sync, store, TUI, Datasette plugin) builds and reads events through this module.
docs/event-format.md specifies the canonical form and the chain rule, with a golden vector.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import operator
import os
import random
import re
from typing import Any, Iterable, Mapping

from auditkit.errors import EventError

# The Console's eight categories, then Resources, Access (auditkit's own events) and Other (unknown writes).
CATEGORIES: tuple[str, ...] = (
    "Applications",
    "Builds",
    "Environment",
    "Releases",
    "Processes",
    "Infrastructure",
    "Security",
    "Registries",
    "Resources",
    "Access",
    "Other",
)

# Action verbs, as the Console's "action" filter means them.
ACTIONS: tuple[str, ...] = (
    "created",
    "deleted",
    "updated",
    "promoted",
    "scaled",
    "executed",
    "accessed",
    "terminated",
    "rotated",
    "added",
    "removed",
    "imported",
    "exported",
    "uploaded",
    "downloaded",
    "restarted",
    "started",
    "stopped",
    "cancelled",
    "locked",
    "unlocked",
    "enabled",
    "disabled",
    "renewed",
    "issued",
    "applied",
    "linked",
    "unlinked",
    "pushed",
    "reset",
    "dismissed",
    "simulated",
    "cleaned",
    "viewed",
    "revoked",
    "denied",
)

ACTOR_TYPES: tuple[str, ...] = ("user", "deploy_key", "system")
OUTCOMES: tuple[str, ...] = ("succeeded", "failed", "denied", "unknown")

# Events are keyed in the mirror by n = (ms since the epoch << KEY_SHIFT) + a tiebreak, so that the primary key
# orders events by time: keyset pages, time ranges and the full-text index all walk n (see docs/architecture.md).
KEY_SHIFT = 20
KEY_MIN = -(2**62)
KEY_MAX = 2**62

# The hash a chain's first event links to.
GENESIS_HASH = "0" * 64

# The fields that are hashed, in the order docs/event-format.md lists them (canonical JSON sorts keys anyway).
HASHED_FIELDS: tuple[str, ...] = (
    "id",
    "timestamp",
    "actor",
    "actor_type",
    "rack",
    "category",
    "action",
    "description",
    "app",
    "target",
    "outcome",
    "status",
    "method",
    "path",
    "source_ip",
    "user_agent",
    "request_id",
    "details",
    "session_id",
    "source",
    "source_seq",
    "prev_hash",
)
FIELDS: tuple[str, ...] = HASHED_FIELDS + ("hash",)

# Text fields may not hold NUL: it truncates text in the full-text index and in C-based tools, so an event could
# hide from search. Producers escape it (the gateway records "\\0").
_TEXT_FIELDS: tuple[str, ...] = (
    "id", "actor", "rack", "description", "app", "target", "method", "path", "source_ip", "user_agent",
    "request_id", "session_id", "source",
)
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One audited action. `source`, `source_seq`, `prev_hash` and `hash` are set when the event joins a chain."""

    timestamp: str
    actor: str
    actor_type: str
    rack: str
    category: str
    action: str
    description: str
    id: str = ""
    app: str | None = None
    target: str | None = None
    outcome: str = "succeeded"
    status: int | None = None
    method: str | None = None
    path: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    session_id: str | None = None
    source: str | None = None
    source_seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        """All fields, details as a dict (not a JSON string)."""
        return {name: getattr(self, name) for name in FIELDS}

    def replace(self, **changes: Any) -> "Event":
        return dataclasses.replace(self, **changes)

    @property
    def sealed(self) -> bool:
        return self.hash is not None

    def compute_hash(self) -> str:
        """The hash this event must carry: sha256(prev_hash ‖ canonical_json(event without hash))."""
        if self.prev_hash is None or self.source is None or self.source_seq is None:
            raise EventError("an event needs source, source_seq and prev_hash before it can be hashed")
        return chain_hash(self.prev_hash, canonical_json(self))


def from_dict(data: Mapping[str, Any]) -> Event:
    """Build an Event from a mapping (a feed row, a JSON line, a database row). Unknown keys are an error."""
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise EventError(f"unknown event field(s): {', '.join(sorted(unknown))}")
    values = dict(data)
    details = values.get("details")
    if isinstance(details, str):
        try:
            values["details"] = json.loads(details) if details else {}
        except json.JSONDecodeError as e:
            raise EventError(f"event details are not valid JSON: {e}") from None
    elif details is None:
        values["details"] = {}
    missing = [f for f in ("timestamp", "actor", "actor_type", "rack", "category", "action", "description")
               if values.get(f) in (None, "")]
    if missing:
        raise EventError(f"event is missing required field(s): {', '.join(missing)}")
    return Event(**values)


def validate(event: Event) -> None:
    """Raise EventError naming the first field that breaks the model."""
    if not isinstance(event.timestamp, str) or not _TIMESTAMP_RE.match(event.timestamp):
        raise EventError(f"timestamp {event.timestamp!r} is not UTC YYYY-MM-DDTHH:MM:SS.mmmZ")
    try:
        parse_timestamp(event.timestamp)
    except ValueError:
        raise EventError(f"timestamp {event.timestamp!r} is not a real date and time") from None
    for name in ("actor", "rack", "description"):
        value = getattr(event, name)
        if not isinstance(value, str) or not value:
            raise EventError(f"{name} must be a non-empty string")
    for name in _TEXT_FIELDS:
        value = getattr(event, name)
        if value is not None and (type(value) is not str or "\x00" in value):
            raise EventError(f"{name} must be text without NUL characters (escape them before recording)")
    if event.actor_type not in ACTOR_TYPES:
        raise EventError(f"actor_type {event.actor_type!r} is not one of {', '.join(ACTOR_TYPES)}")
    if event.category not in CATEGORIES:
        raise EventError(f"category {event.category!r} is not one of {', '.join(CATEGORIES)}")
    if event.action not in ACTIONS:
        raise EventError(f"action {event.action!r} is not a known verb")
    if event.outcome not in OUTCOMES:
        raise EventError(f"outcome {event.outcome!r} is not one of {', '.join(OUTCOMES)}")
    if event.status is not None and (not isinstance(event.status, int) or isinstance(event.status, bool)):
        raise EventError("status must be an integer HTTP status or null")
    if event.source_seq is not None and (not isinstance(event.source_seq, int) or event.source_seq < 1):
        raise EventError("source_seq must be a positive integer")
    for name in ("prev_hash", "hash"):
        value = getattr(event, name)
        if value is not None and not (isinstance(value, str) and _HASH_RE.match(value)):
            raise EventError(f"{name} must be 64 lowercase hex digits")
    if type(event.details) is not dict and not isinstance(event.details, Mapping):
        raise EventError("details must be a JSON object")
    _check_json_value(event.details, "details")


def _check_json_value(value: Any, where: str) -> None:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise EventError(f"{where} has a non-string key {key!r}")
            _check_json_value(item, f"{where}.{key}")
        return
    if kind is list:
        for i, item in enumerate(value):
            _check_json_value(item, f"{where}[{i}]")
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise EventError(f"{where} holds a float; canonical JSON allows only integers (use ms or strings)")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json_value(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EventError(f"{where} has a non-string key {key!r}")
            _check_json_value(item, f"{where}.{key}")
        return
    raise EventError(f"{where} holds a {type(value).__name__}, which is not JSON")


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_QUOTE = json.encoder.encode_basestring  # the encoder's own string quoting (C), ensure_ascii=False
# Canonical JSON of an event, written field by field in sorted-key order: the same bytes as _ENCODE of the whole
# body (docs/event-format.md; the golden vectors check it), about twice as fast, and sealing is every writer's hot
# path.
_SORTED_FIELDS: tuple[str, ...] = tuple(sorted(HASHED_FIELDS))
_SORTED_VALUES = operator.attrgetter(*_SORTED_FIELDS)
_KEYS = tuple(("{" if i == 0 else ",") + _QUOTE(name) + ":" for i, name in enumerate(_SORTED_FIELDS))
_DETAILS_KEY = _SORTED_FIELDS.index("details")
_PREV_KEY = _SORTED_FIELDS.index("prev_hash")
_SOURCE_KEY, _SEQ_KEY = _SORTED_FIELDS.index("source"), _SORTED_FIELDS.index("source_seq")


def _canonical_text(values: list[Any]) -> str:
    """`values` in _SORTED_FIELDS order → canonical JSON text."""
    details = values[_DETAILS_KEY]
    values[_DETAILS_KEY] = details if type(details) is dict else dict(details or {})
    parts = []
    for key, value in zip(_KEYS, values):
        kind = type(value)
        if kind is str:
            parts.append(key + _QUOTE(value))
        elif value is None:
            parts.append(key + "null")
        elif kind is int:
            parts.append(key + int.__repr__(value))
        else:
            parts.append(key + _ENCODE(value))
    parts.append("}")
    return "".join(parts)


def canonical_json(event: Event | Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: every field but `hash`, keys sorted, no spaces, UTF-8, no ASCII escaping."""
    if isinstance(event, Event):
        values = list(_SORTED_VALUES(event))
    else:
        values = [event.get(name) for name in _SORTED_FIELDS]
    return _canonical_text(values).encode("utf-8")


def dumps(value: Any) -> str:
    """Canonical JSON text of any JSON value (used for details too, so stored details are byte-stable)."""
    return _ENCODE(value)


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """hash = sha256(prev_hash as 64 ASCII hex digits ‖ canonical JSON bytes), as lowercase hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def seal(event: Event, *, source: str, seq: int, prev_hash: str) -> Event:
    """Put `event` on a chain: set source, source_seq, prev_hash and the hash they imply."""
    if not isinstance(source, str) or not source:
        raise EventError("source must be a non-empty string")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise EventError("source_seq must be a positive integer")
    if not isinstance(prev_hash, str) or not _HASH_RE.match(prev_hash):
        raise EventError("prev_hash must be 64 lowercase hex digits")
    # The draft was validated when it was made; copy it without validating again (sealing is the hot path of
    # every append).
    sealed = object.__new__(Event)
    for name in FIELDS:
        object.__setattr__(sealed, name, getattr(event, name))
    object.__setattr__(sealed, "source", source)
    object.__setattr__(sealed, "source_seq", seq)
    object.__setattr__(sealed, "prev_hash", prev_hash)
    object.__setattr__(sealed, "hash", chain_hash(prev_hash, canonical_json(sealed)))
    return sealed


def seal_all(events: Iterable[Event], *, source: str, after_seq: int, after_hash: str) -> list[Event]:
    """Seal a batch so that it continues a chain whose head is (after_seq, after_hash)."""
    sealed: list[Event] = []
    seq, prev = after_seq, after_hash
    for event in events:
        seq += 1
        event = seal(event, source=source, seq=seq, prev_hash=prev)
        prev = event.hash  # type: ignore[assignment]
        sealed.append(event)
    return sealed


_PREV_HASH_KEY = b'"prev_hash":"'
_HOLE = "0" * 64


def seal_halves(event: Event, *, source: str, seq: int) -> tuple[bytes, bytes]:
    """The canonical JSON of `event` sealed at (source, seq), cut where prev_hash's 64 digits go.

    Making the JSON is the costly part of sealing and needs no previous hash, so a process that owns a chain's
    events can make it ahead; whoever knows each previous hash then seals with splice_hash() in about a
    microsecond. splice_hash(prev, *seal_halves(e, ...)) == seal(e, ..., prev_hash=prev).hash."""
    values = list(_SORTED_VALUES(event))
    values[_SOURCE_KEY], values[_SEQ_KEY], values[_PREV_KEY] = source, seq, _HOLE
    data = _canonical_text(values).encode("utf-8")
    # The last '"prev_hash":"' is the top-level key: keys sort, and every key after it holds a scalar.
    cut = data.rindex(_PREV_HASH_KEY) + len(_PREV_HASH_KEY)
    return data[:cut], data[cut + 64:]


def splice_hash(prev_hash: str, before: bytes, after: bytes) -> str:
    """chain_hash(prev_hash, before + prev_hash + after): the seal of an event cut by seal_halves()."""
    prev = prev_hash.encode("ascii")
    return hashlib.sha256(prev + before + prev + after).hexdigest()


# --- time -------------------------------------------------------------------------------------------------------

def format_timestamp(moment: dt.datetime) -> str:
    """A datetime as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> dt.datetime:
    """An event timestamp as an aware UTC datetime (ValueError when it is not one)."""
    if not _TIMESTAMP_RE.match(text):
        raise ValueError(f"{text!r} is not UTC YYYY-MM-DDTHH:MM:SS.mmmZ")
    return dt.datetime.fromisoformat(text)


def now_timestamp() -> str:
    return format_timestamp(dt.datetime.now(dt.timezone.utc))


def timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch of an event timestamp."""
    moment = dt.datetime.fromisoformat(text)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


# --- ids and value hashes -----------------------------------------------------------------------------------------

# Every 10-bit value as its two Crockford digits: 13 lookups spell the 26 digits of a 130-bit (left-padded) id.
_DIGIT_PAIRS: tuple[str, ...] = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def new_event_id(ms: int | None = None, rng: random.Random | None = None) -> str:
    """A 26-character, time-ordered id (ULID layout: 48-bit ms + 80 random bits, Crockford base32)."""
    if ms is None:
        ms = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    rand = rng.getrandbits(80) if rng is not None else int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | rand
    pairs = _DIGIT_PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


def value_hmac(key: bytes, value: str) -> str:
    """The keyed hash recorded instead of a secret value: 'hmac-sha256:<hex>'."""
    return "hmac-sha256:" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
