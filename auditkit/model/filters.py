"""The filter language: text ⇄ Filter ⇄ JSON, and Filter → SQL with bound parameters.

    user:alice@example.com rack:acme/production action:promoted category:Releases app:web target:RABC
    outcome:failed since:2026-11-01 until:2026-11-20 since:7d -user:ci-bot "free text" word

- The same key repeated is OR-ed; different keys are AND-ed; `-` negates a term (an excluded value, or text that
  must not appear). Free-text terms are AND-ed with each other.
- Free text matches, case-insensitively, as a literal substring of the description, actor, app or target.
- `since:`/`until:` take an ISO date (UTC day; `until:` a date includes that whole day), an ISO date-time (UTC unless
  it carries an offset) or a relative span back from now: `90s`, `90m`, `12h`, `7d`, `2w`.
- Every error names the offending token and its position.
- In double quotes, `\\"` and `\\\\` stand for `"` and `\\`, and `\\xNN` / `\\uNNNN` for that character: to_text writes
  control, bidi and zero-width characters so, which keeps a filter's text safe to show and exact to parse back.

One grammar everywhere: the TUI filter bar, `auditkit events`, share links and the Datasette plugin all go through
parse() and to_sql(). store.py turns the SQL parts into statements. matches() is the same meaning in memory, for
code that holds events but no database (`auditkit verify-export` checks an export's events against its filter).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any, Callable, Iterable, Mapping

from auditkit.errors import FilterError
from auditkit.model.events import ACTIONS, CATEGORIES, KEY_MAX, KEY_MIN, KEY_SHIFT, OUTCOMES, parse_timestamp
from auditkit.model.safe_text import is_printable, printable
from auditkit.model.times import in_utc, shifted

# Qualifier keys, in the order to_text() writes them, and the event column each one compares.
COLUMNS: dict[str, str] = {
    "user": "actor",
    "rack": "rack",
    "category": "category",
    "action": "action",
    "app": "app",
    "target": "target",
    "outcome": "outcome",
}
TIME_KEYS: tuple[str, ...] = ("since", "until")
KEYS: tuple[str, ...] = tuple(COLUMNS) + TIME_KEYS
TEXT = "text"  # the key free-text terms carry inside a Filter
_ORDER = {key: i for i, key in enumerate(KEYS + (TEXT,))}

# Columns free text searches (also the columns of the events_fts index, see store.py).
TEXT_COLUMNS: tuple[str, ...] = ("description", "actor", "app", "target")
# The trigram index cannot answer a substring shorter than this; shorter terms are scanned.
FTS_MIN_CHARS = 3

_KEY_RE = re.compile(r"([A-Za-z_]+):")
_RELATIVE_RE = re.compile(r"^(\d{1,7})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
)
_CATEGORY_BY_LOWER = {c.lower(): c for c in CATEGORIES}
_ESCAPE_RE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4}))")


@dataclasses.dataclass(frozen=True, order=True)
class Term:
    """One qualifier (`user:alice`, `-app:web`) or free-text term (key 'text')."""

    key: str
    value: str
    negated: bool = False

    def sort_key(self) -> tuple[int, bool, str]:
        return (_ORDER[self.key], self.negated, self.value)


@dataclasses.dataclass(frozen=True)
class Filter:
    """A parsed filter: a normalised (deduplicated, sorted) tuple of terms. Compare filters with ==."""

    terms: tuple[Term, ...] = ()

    def __post_init__(self) -> None:
        normal = tuple(sorted(set(self.terms), key=Term.sort_key))
        object.__setattr__(self, "terms", normal)

    # --- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> "Filter":
        return parse(text)

    @classmethod
    def from_json(cls, data: str | Mapping[str, Any]) -> "Filter":
        return from_json(data)

    def with_values(self, key: str, values: Iterable[str], negated: bool = False) -> "Filter":
        """This filter with the (positive or negated) values of `key` replaced by `values`."""
        kept = [t for t in self.terms if not (t.key == key and t.negated == negated)]
        added = [_checked_term(key, v, negated, token=f"{key}:{v}", position=None) for v in values]
        result = Filter(tuple(kept + added))
        _check_time_terms(result.terms)
        return result

    def without(self, *keys: str) -> "Filter":
        return Filter(tuple(t for t in self.terms if t.key not in keys))

    # --- reading --------------------------------------------------------------------------------------------------
    def values(self, key: str, negated: bool = False) -> tuple[str, ...]:
        return tuple(t.value for t in self.terms if t.key == key and t.negated == negated)

    @property
    def since(self) -> str | None:
        found = self.values("since")
        return found[0] if found else None

    @property
    def until(self) -> str | None:
        found = self.values("until")
        return found[0] if found else None

    @property
    def is_empty(self) -> bool:
        return not self.terms

    def to_text(self) -> str:
        return to_text(self)

    def to_json(self) -> str:
        return to_json(self)

    def __str__(self) -> str:
        return self.to_text()


# --- text → Filter --------------------------------------------------------------------------------------------------

def parse(text: str) -> Filter:
    """Parse filter text. Raises FilterError naming the bad token and its 0-based position."""
    if not isinstance(text, str):
        raise FilterError("a filter must be text")
    terms: list[Term] = []
    pos, end = 0, len(text)
    while pos < end:
        if text[pos].isspace():
            pos += 1
            continue
        start = pos
        negated = False
        if text[pos] == "-" and pos + 1 < end and not text[pos + 1].isspace():
            negated = True
            pos += 1
        key_match = _KEY_RE.match(text, pos)
        if key_match:
            key = key_match.group(1).lower()
            if key not in KEYS:
                raise FilterError(
                    f"unknown key '{key_match.group(1)}:' (keys are {', '.join(k + ':' for k in KEYS)};"
                    " put text with a colon in double quotes)",
                    _token_at(text, start),
                    start,
                )
            pos = key_match.end()
            value, pos = _read_value(text, pos, start)
            if value == "":
                raise FilterError(f"empty value after '{key}:'", text[start:pos], start)
            term = _checked_term(key, value, negated, text[start:pos], start)
            if key in TIME_KEYS and any(t.key == key and t.value != term.value for t in terms):
                raise FilterError(f"'{key}:' given more than once", text[start:pos], start)
            terms.append(term)
        else:
            value, pos = _read_value(text, pos, start)
            if value == "":
                raise FilterError("empty quoted text", text[start:pos], start)
            terms.append(Term(TEXT, value, negated))
    _check_time_terms(terms, text)
    return Filter(tuple(terms))


def _read_value(text: str, pos: int, start: int) -> tuple[str, int]:
    """A quoted ("…" with \\" and \\\\ escapes) or bare (up to whitespace) value starting at pos."""
    end = len(text)
    if pos < end and text[pos] == '"':
        out: list[str] = []
        pos += 1
        while pos < end:
            ch = text[pos]
            if ch == "\\" and pos + 1 < end:
                escaped = _ESCAPE_RE.match(text, pos)
                if escaped:  # \xNN or \uNNNN: how to_text writes a control, bidi or zero-width character
                    out.append(chr(int(escaped.group(1) or escaped.group(2), 16)))
                    pos = escaped.end()
                    continue
                out.append(text[pos + 1])
                pos += 2
                continue
            if ch == '"':
                return "".join(out), pos + 1
            out.append(ch)
            pos += 1
        raise FilterError("unclosed double quote", text[start:], start)
    begin = pos
    while pos < end and not text[pos].isspace():
        pos += 1
    return text[begin:pos], pos


def _token_at(text: str, start: int) -> str:
    stop = start
    while stop < len(text) and not text[stop].isspace():
        stop += 1
    return text[start:stop]


def _checked_term(key: str, value: str, negated: bool, token: str, position: int | None) -> Term:
    """Validate and normalise one qualifier's value."""
    if key not in KEYS and key != TEXT:
        raise FilterError(f"unknown key '{key}:'", token, position)
    if value == "":
        raise FilterError(f"empty value after '{key}:'", token, position)
    if key == "category":
        canonical = _CATEGORY_BY_LOWER.get(value.lower())
        if canonical is None:
            raise FilterError(f"unknown category '{value}' (one of {', '.join(CATEGORIES)})", token, position)
        value = canonical
    elif key == "action":
        if value.lower() not in ACTIONS:
            hint = _suggest(value.lower(), ACTIONS)
            raise FilterError(f"unknown action '{value}'{hint}", token, position)
        value = value.lower()
    elif key == "outcome":
        if value.lower() not in OUTCOMES:
            raise FilterError(f"unknown outcome '{value}' (one of {', '.join(OUTCOMES)})", token, position)
        value = value.lower()
    elif key in TIME_KEYS:
        if negated:
            raise FilterError(f"'{key}:' cannot be negated", token, position)
        try:
            resolve_time(key, value, dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
        except ValueError as e:
            raise FilterError(str(e), token, position) from None
    return Term(key, value, negated)


def _suggest(value: str, choices: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_time_terms(terms: Iterable[Term], text: str | None = None) -> None:
    terms = list(terms)
    for key in TIME_KEYS:
        found = [t for t in terms if t.key == key]
        if len({t.value for t in found}) > 1:
            token = f"{key}:{found[-1].value}"
            position = text.rfind(f"{key}:") if text else None
            raise FilterError(f"'{key}:' given more than once", token, position)
    _check_range(terms, text)


def _check_range(terms: list[Term], text: str | None) -> None:
    """An inverted range (since: at or after until:) matches nothing by construction: refused, not run."""
    since = next((t.value for t in terms if t.key == "since"), None)
    until = next((t.value for t in terms if t.key == "until"), None)
    if since is None or until is None:
        return
    now = dt.datetime.now(dt.timezone.utc)
    try:
        low, high = resolve_time("since", since, now), resolve_time("until", until, now)
    except (ValueError, OverflowError):
        return  # each bound's own error is reported where it is parsed
    if low >= high:
        position = text.rfind("until:") if text else None
        raise FilterError(f"since:{since} is not before until:{until} (an empty range; swap them?)",
                          f"until:{until}", position)


# --- Filter → text and JSON -----------------------------------------------------------------------------------------

def to_text(f: Filter) -> str:
    """The canonical text of a filter; parse(to_text(f)) == f for every filter."""
    parts = []
    for term in f.terms:
        prefix = "-" if term.negated else ""
        if term.key == TEXT:
            parts.append(prefix + _quote_text(term.value))
        else:
            parts.append(f"{prefix}{term.key}:{_quote_value(term.value)}")
    return " ".join(parts)


def _needs_quotes(value: str) -> bool:
    return (value == "" or value[0] == '"' or any(ch.isspace() or ch in '"\\' for ch in value)
            or not is_printable(value))


def _quoted(value: str) -> str:
    """A value in double quotes: `"` and `\\` escaped, and control, bidi and zero-width characters written as \\xNN
    or \\uNNNN (safe_text.printable), so that the text of a filter is safe to show and parses back to the same."""
    return '"' + printable(value.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _quote_value(value: str) -> str:
    return _quoted(value) if _needs_quotes(value) else value


def _quote_text(value: str) -> str:
    if _needs_quotes(value) or value.startswith("-") or _KEY_RE.match(value):
        return _quoted(value)
    return value


def to_json(f: Filter) -> str:
    return json.dumps(
        {"version": 1, "terms": [{"key": t.key, "value": t.value, "negated": t.negated} for t in f.terms]},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def from_json(data: str | Mapping[str, Any]) -> Filter:
    try:
        obj = json.loads(data) if isinstance(data, str) else dict(data)
        if obj.get("version") != 1:
            raise FilterError(f"unsupported filter JSON version {obj.get('version')!r}")
        terms = []
        for item in obj["terms"]:
            key, value, negated = item["key"], item["value"], bool(item.get("negated", False))
            if not isinstance(key, str) or not isinstance(value, str):
                raise FilterError("filter JSON terms need string key and value")
            term = Term(TEXT, value, negated) if key == TEXT else _checked_term(key, value, negated, "", None)
            if key == TEXT and value == "":
                raise FilterError("empty free-text term in filter JSON")
            terms.append(term)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise FilterError(f"malformed filter JSON: {e}") from None
    _check_time_terms(terms)
    return Filter(tuple(terms))


# --- times ----------------------------------------------------------------------------------------------------------

def relative_seconds(value: str) -> int | None:
    """How far back (or ahead) a relative time like 7d, 90m or 2w reaches, in seconds; None for anything else."""
    rel = _RELATIVE_RE.match(value)
    return int(rel.group(1)) * _UNIT_SECONDS[rel.group(2)] if rel else None


def is_date(value: str) -> bool:
    """Whether `value` is written as a bare date (YYYY-MM-DD)."""
    return bool(_DATE_RE.match(value))


def resolve_time(key: str, value: str, now: dt.datetime) -> dt.datetime:
    """The instant a since:/until: value names. until: is exclusive: a date means the end of that UTC day."""
    seconds = relative_seconds(value)
    if seconds is not None:
        try:
            return now - dt.timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"'{value}' reaches too far back") from None
    if _DATE_RE.match(value):
        try:
            day = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise ValueError(f"'{value}' is not a real date") from None
        return shifted(day, dt.timedelta(days=1)) if key == "until" else day
    if _DATETIME_RE.match(value):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a real date and time") from None
        moment = in_utc(moment)
        # until: a date-time includes events in that same millisecond.
        return shifted(moment, dt.timedelta(milliseconds=1)) if key == "until" else moment
    raise ValueError(
        f"bad time '{value}' for {key}: (use 2026-11-01, 2026-11-01T09:30, 2026-11-01T09:30:00Z or 90m, 12h, 7d, 2w)"
    )


def time_range(f: Filter, now: dt.datetime | None = None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(since, until) as instants, until exclusive; None where the filter leaves the range open."""
    now = now or dt.datetime.now(dt.timezone.utc)
    since = resolve_time("since", f.since, now) if f.since else None
    until = resolve_time("until", f.until, now) if f.until else None
    return since, until


# --- Filter → a test on one event ----------------------------------------------------------------------------------

def matches(f: Filter, event: Any, now: dt.datetime | None = None) -> bool:
    """Whether one event (an Event, or a mapping of its fields) is among those to_sql(f, now) selects."""
    return matcher(f, now)(event)


def matcher(f: Filter, now: dt.datetime | None = None) -> Callable[[Any], bool]:
    """matches(f, ·, now) with the filter read once, for testing many events.

    The same meaning as the SQL: a qualifier's values compare exactly, a negated one keeps events without that
    field; since:/until: compare the event's millisecond with the bounds' (the SQL compares keys, ms << KEY_SHIFT);
    free text is a case-insensitive substring of one of TEXT_COLUMNS. Case folding is Python's str.lower, which is
    the index's and the scan's exactly on ASCII (tests/model/test_filter_matcher.py checks it against SQLite); a
    non-ASCII term can fold differently from SQLite's (lower() in a scan folds ASCII only)."""
    qualifiers = [(column, frozenset(f.values(key)), frozenset(f.values(key, negated=True)))
                  for key, column in COLUMNS.items() if f.values(key) or f.values(key, negated=True)]
    since, until = time_range(f, now)
    low = _clamped_ms(since) if since is not None else None
    high = _clamped_ms(until) if until is not None else None
    texts = [(t.value.lower(), t.negated) for t in f.terms if t.key == TEXT]

    def test(event: Any) -> bool:
        get = event.get if isinstance(event, Mapping) else lambda name: getattr(event, name)
        for column, wanted, unwanted in qualifiers:
            actual = get(column)
            if wanted and actual not in wanted:
                return False
            if actual is not None and actual in unwanted:
                return False
        if low is not None or high is not None:
            ms = _ms(parse_timestamp(get("timestamp")))
            if low is not None and ms < low:
                return False
            if high is not None and ms >= high:
                return False
        if texts:
            haystack = [(get(column) or "").lower() for column in TEXT_COLUMNS]
            for value, negated in texts:
                if any(value in text for text in haystack) == negated:
                    return False
        return True

    return test


def _ms(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _clamped_ms(moment: dt.datetime) -> int:
    """A bound's millisecond as _key clamps it (absurd dates), so matches() and to_sql() agree at the edges too."""
    return _key(moment) >> KEY_SHIFT


# --- Filter → SQL ---------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SqlFilter:
    """The SQL a Filter means, for store.py to compose into statements.

    `match` (with `match_params`) is the FTS5 query that must drive the statement when set; `where` is a boolean
    expression over the events table aliased `e` with `?` placeholders bound by `params`. Values never enter SQL.
    """

    where: str
    params: tuple[Any, ...]
    match: str | None = None


def fts_phrase(value: str) -> str:
    """A value as one FTS5 phrase: every character literal, operators and quotes inert."""
    return '"' + value.replace('"', '""') + '"'


def _indexable(value: str) -> bool:
    return len(value) >= FTS_MIN_CHARS and "\x00" not in value


def to_sql(f: Filter, now: dt.datetime | None = None, *, fts: bool = True) -> SqlFilter:
    """Compile a filter. Times become bounds on the events' time-ordered key `n` (ms << KEY_SHIFT).

    With fts=False free text is compiled to scans (for a database without the full-text index, and the baseline
    of bench/query.py); with the index, terms of FTS_MIN_CHARS or more use it.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for key, column in COLUMNS.items():
        wanted = f.values(key)
        if wanted:
            clauses.append(f"e.{column} IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        unwanted = f.values(key, negated=True)
        if unwanted:
            clauses.append(f"(e.{column} IS NULL OR e.{column} NOT IN ({', '.join('?' * len(unwanted))}))")
            params.extend(unwanted)
    since, until = time_range(f, now)
    if since is not None:
        clauses.append("e.n >= ?")
        params.append(_key(since))
    if until is not None:
        clauses.append("e.n < ?")
        params.append(_key(until))

    positive = f.values(TEXT)
    negative = f.values(TEXT, negated=True)
    match_parts = [fts_phrase(v) for v in positive if fts and _indexable(v)]
    for value in positive:
        if not (fts and _indexable(value)):
            clauses.append(_scan_clause(value, params))
    for value in negative:
        if fts and _indexable(value):
            clauses.append("e.n NOT IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)")
            params.append(fts_phrase(value))
        else:
            clauses.append("NOT " + _scan_clause(value, params))
    return SqlFilter(
        where=" AND ".join(clauses) if clauses else "1",
        params=tuple(params),
        match=" AND ".join(match_parts) if match_parts else None,
    )


def _scan_clause(value: str, params: list[Any]) -> str:
    """Substring test without the index (terms too short for trigrams): ASCII case-insensitive."""
    tests = []
    for column in TEXT_COLUMNS:
        tests.append(f"instr(lower(coalesce(e.{column}, '')), lower(?)) > 0")
        params.append(value)
    return "(" + " OR ".join(tests) + ")"


def _key(moment: dt.datetime) -> int:
    """The smallest event key at `moment`, clamped to SQLite's integer range for absurd dates."""
    return max(KEY_MIN, min(KEY_MAX, _ms(moment) << KEY_SHIFT))
