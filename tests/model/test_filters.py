"""The filter language, end to end: parsing, errors, round trips, and what a query returns from a real store.

Results are checked against a plain-Python reference written here from the documented semantics (filters.py's
module docstring), over the hand-built corpus of tests/conftest.py:

- the same key repeated is OR-ed, different keys are AND-ed, `-` negates (an event whose app/target is NULL is
  not equal to any value, so `-app:web` keeps it);
- free text is a case-insensitive literal substring of description, actor, app or target; terms are AND-ed;
- since: is inclusive, until: exclusive; an until: date includes that whole UTC day, an until: date-time includes
  that millisecond; relative spans count back from the `now` given to the store.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditkit.model import events as ev
from auditkit import store
from auditkit.model import filters
from auditkit.errors import FilterError
from auditkit.model.filters import Filter, Term, parse

from helpers import NOW, UTC, draft, raw_connect

# --- the reference ----------------------------------------------------------------------------------------------

QUALIFIER_FIELDS = {
    "user": "actor", "rack": "rack", "category": "category", "action": "action",
    "app": "app", "target": "target", "outcome": "outcome",
}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def epoch_ms(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1)


def event_ms(event: ev.Event) -> int:
    return epoch_ms(dt.datetime.strptime(event.timestamp, "%Y-%m-%dT%H:%M:%S.%f%z"))


def ref_lower_bound(value: str, now: dt.datetime) -> int:
    """since: — the first millisecond included."""
    if m := re.fullmatch(r"(\d+)([smhdw])", value):
        return epoch_ms(now) - int(m[1]) * UNITS[m[2]] * 1000
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return epoch_ms(dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC))
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def ref_upper_bound(value: str, now: dt.datetime) -> int:
    """until: — the first millisecond excluded."""
    if m := re.fullmatch(r"(\d+)([smhdw])", value):
        return epoch_ms(now) - int(m[1]) * UNITS[m[2]] * 1000
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):  # the whole day
        return epoch_ms(dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)) + 86400 * 1000
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC)) + 1  # that millisecond included


def ref_matches(event: ev.Event, f: Filter, now: dt.datetime) -> bool:
    for key, field in QUALIFIER_FIELDS.items():
        actual = getattr(event, field)
        wanted = [t.value for t in f.terms if t.key == key and not t.negated]
        unwanted = [t.value for t in f.terms if t.key == key and t.negated]
        if wanted and actual not in wanted:
            return False
        if actual is not None and actual in unwanted:
            return False
    ms = event_ms(event)
    for t in f.terms:
        if t.key == "since" and ms < ref_lower_bound(t.value, now):
            return False
        if t.key == "until" and ms >= ref_upper_bound(t.value, now):
            return False
    haystack = [(x or "").lower() for x in (event.description, event.actor, event.app, event.target)]
    for t in f.terms:
        if t.key == "text":
            found = any(t.value.lower() in h for h in haystack)
            if found == t.negated:
                return False
    return True


def ref_ids(events: list[ev.Event], f: Filter, now: dt.datetime = NOW) -> list[str]:
    """Matching ids, newest first; equal timestamps: the later appended first."""
    order = sorted(range(len(events)), key=lambda i: (event_ms(events[i]), i), reverse=True)
    return [events[i].id for i in order if ref_matches(events[i], f, now)]


def all_pages(conn: sqlite3.Connection, f: Filter, limit: int, fts: bool = True) -> list[str]:
    ids: list[str] = []
    before = None
    for _ in range(100_000):
        p = store.page(conn, f, limit=limit, before=before, now=NOW, fts=fts)
        assert len(p.events) <= limit
        ids += [e.id for e in p.events]
        if p.next_before is None:
            return ids
        assert p.keys == sorted(p.keys, reverse=True) and p.next_before == p.keys[-1]
        before = p.next_before
    raise AssertionError("paging did not end")


# (query, whether the corpus holds matching events: guards against a vacuous comparison)
QUERIES: list[tuple[str, bool]] = [
    ("", True),
    ("user:alice@example.com", True),
    ("user:alice@example.com user:bob@example.com", True),
    ("-user:ci-bot", True),
    ("-user:ci-bot -user:system -user:deploy-prod", True),
    ("rack:acme/production user:carol@example.org", True),
    ("category:Releases", True),
    ("category:releases action:PROMOTED", True),
    ("category:Releases category:Builds -action:uploaded", True),
    ("outcome:failed outcome:denied", True),
    ("-outcome:succeeded rack:beta/edge", True),
    ("app:web", True),
    ("-app:web", True),  # keeps events without an app
    ("app:web app:api -user:alice@example.com", True),
    ("target:RKZQXWVTSA", True),
    ("-target:RKZQXWVTSA", True),  # keeps events without a target
    ("-app:web -app:api -app:worker -app:billing", True),  # exactly the events without an app
    ("since:2026-10-01", True),
    ("until:2026-10-01", True),
    ("since:2026-09-30 until:2026-09-30", True),  # one whole UTC day, both edges held by the corpus
    ("since:2026-10-01T12:00 until:2026-10-09T06:30:15.250Z", True),
    ("since:2026-10-05T00:00:00+02:00 until:2026-10-05", True),
    ("until:2026-09-15T23:59:59.999Z", True),
    ("since:7d", True),
    ("since:2w until:3d", True),
    ("since:36h -user:system", True),
    ("since:50000m", True),
    ("promoted", True),
    ("PROMOTED release", True),
    ('"release R1"', True),
    ("we", True),  # shorter than a trigram: scanned
    ("WE -Ap", True),
    ("-we", True),
    ("-web", True),
    ("example.org", True),  # found in the actor
    ("dave.ops", True),  # actor written Dave.Ops@Example.com
    ("wor", True),  # found in the app
    ('"of app web" -user:bob@example.com', True),
    ("alice promoted since:30d", True),
    ("panic -user:alice@example.com", True),
    ('category:Security -outcome:succeeded "certificate"', True),
    ("100%", True),
    ('"path_with_"', True),
    ("-cache -Blue -payments", True),
    ("rack:beta/edge -app:api -cache", True),
    ("i-0 outcome:unknown", True),
    ("user:nobody@example.com", False),
    ("xyzzy", False),
    ("since:2026-12-01", False),
]


@pytest.fixture(scope="module")
def corpus_conn(corpus):
    c = corpus.connect()
    yield c
    c.close()


def test_corpus_is_what_the_comparison_needs(corpus, corpus_conn):
    assert store.count(corpus_conn) == len(corpus.events) > 300
    stamps = [e.timestamp for e in corpus.events]
    assert len(set(stamps)) < len(stamps) - 20, "the corpus needs runs of equal timestamps"
    assert stamps != sorted(stamps), "the corpus must be appended out of time order"
    assert {e.source for e in corpus.events} == {"local", "gw-eu"}
    assert store.verify(corpus_conn).ok


@pytest.mark.parametrize("query,nonempty", QUERIES, ids=[q or "<empty>" for q, _ in QUERIES])
def test_query_matches_reference(corpus, corpus_conn, query, nonempty):
    f = parse(query)
    expected = ref_ids(corpus.events, f)
    assert bool(expected) == nonempty
    if query:
        assert len(expected) < len(corpus.events), "a filter that keeps everything tests nothing"

    got_page = store.page(corpus_conn, f, limit=10_000, now=NOW)
    assert [e.id for e in got_page.events] == expected
    assert got_page.next_before is None
    assert [r["id"] for r in store.iter_rows(corpus_conn, f, now=NOW, batch=17)] == expected
    assert store.count(corpus_conn, f, now=NOW) == len(expected)
    # Free text without the index (the fallback for a database without FTS) means the same.
    assert [e.id for e in store.page(corpus_conn, f, limit=10_000, now=NOW, fts=False).events] == expected
    assert store.count(corpus_conn, f, now=NOW, fts=False) == len(expected)


@pytest.mark.parametrize("query", [
    "", "we", "promoted", "-user:ci-bot", "app:web since:30d", "-cache release", "-app:web e",
])
@pytest.mark.parametrize("limit", [1, 7, 50])
@pytest.mark.parametrize("fts", [True, False])
def test_keyset_paging_walks_the_full_ordered_list(corpus, corpus_conn, query, limit, fts):
    f = parse(query)
    expected = ref_ids(corpus.events, f)
    walked = all_pages(corpus_conn, f, limit, fts=fts)
    assert len(walked) == len(set(walked)), "a page repeated an event"
    assert walked == expected


def test_paging_splits_runs_of_equal_timestamps(corpus, corpus_conn):
    """A page boundary inside a run of events with the same timestamp loses and repeats nothing."""
    by_stamp: dict[str, list[ev.Event]] = {}
    for e in corpus.events:
        by_stamp.setdefault(e.timestamp, []).append(e)
    stamp, run = max(by_stamp.items(), key=lambda item: len(item[1]))
    assert len(run) >= 3
    # A filter that keeps only this run: since and until the same millisecond.
    f = parse(f"since:{stamp} until:{stamp}")
    expected = [e.id for e in reversed(run)]  # the later appended first
    assert [e.id for e in store.page(corpus_conn, f, limit=100, now=NOW).events] == expected
    assert all_pages(corpus_conn, f, 1) == expected
    assert all_pages(corpus_conn, f, 2) == expected


def test_a_full_last_page_is_followed_by_an_empty_one(corpus, corpus_conn):
    f = parse("user:alice@example.com")
    n = store.count(corpus_conn, f, now=NOW)
    p = store.page(corpus_conn, f, limit=n, now=NOW)
    assert len(p.events) == n
    assert p.next_before is not None
    rest = store.page(corpus_conn, f, limit=n, before=p.next_before, now=NOW)
    assert rest.events == [] and rest.next_before is None


def test_relative_times_are_read_against_the_given_now(corpus, corpus_conn):
    f = parse("since:7d")
    edge_ids = {e.description: e.id for e in corpus.events}
    got = {e.id for e in store.page(corpus_conn, f, limit=10_000, now=NOW).events}
    assert edge_ids["Exactly seven days before now"] in got
    assert edge_ids["One ms too old for 7d"] not in got
    # A day later the same text means a different window.
    later = {e.id for e in store.page(corpus_conn, f, limit=10_000, now=NOW + dt.timedelta(days=1)).events}
    assert edge_ids["Exactly seven days before now"] not in later
    assert later == set(ref_ids(corpus.events, f, NOW + dt.timedelta(days=1)))


def test_offsets_in_times_are_converted_to_utc(corpus, corpus_conn):
    ids = {e.description: e.id for e in corpus.events}
    got = [e.id for e in store.page(corpus_conn, parse("since:2026-10-05T00:00+02:00 app:api"), limit=10_000,
                                    now=NOW).events]
    assert ids["Midnight Oct 5 in +02:00"] in got
    assert ids["Midnight Oct 5 UTC"] in got
    assert ids["Just before midnight Oct 5 in +02:00"] not in got


# --- parsing ----------------------------------------------------------------------------------------------------

def test_parse_reads_the_documented_example():
    f = parse('user:alice@example.com rack:acme/production action:promoted category:Releases app:web '
              'since:2026-11-01 until:2026-11-20 -user:ci-bot "free text" word')
    assert f.values("user") == ("alice@example.com",)
    assert f.values("user", negated=True) == ("ci-bot",)
    assert f.values("rack") == ("acme/production",)
    assert f.values("action") == ("promoted",)
    assert f.values("category") == ("Releases",)
    assert f.values("app") == ("web",)
    assert f.since == "2026-11-01" and f.until == "2026-11-20"
    assert set(f.values("text")) == {"free text", "word"}


def test_filters_are_normalised_so_equal_meaning_compares_equal():
    assert parse("user:b user:a") == parse("user:a  user:b") == parse("user:a user:b user:a")
    assert parse("category:RELEASES action:Promoted outcome:FAILED") == parse(
        "category:Releases action:promoted outcome:failed")
    assert parse("USER:a") == parse("user:a")
    assert parse("user:a") != parse("-user:a")
    assert parse("user:a") != parse("user:A")  # qualifier values other than the closed lists are exact
    assert parse('"user:a"') != parse("user:a")  # quoted: free text, not a qualifier
    assert parse('"user:a"').values("text") == ("user:a",)


def test_quoted_values_and_escapes():
    f = parse(r'user:"a b" app:"x\"y" "back\\slash" -"not this"')
    assert f.values("user") == ("a b",)
    assert f.values("app") == ('x"y',)
    assert f.values("text") == ("back\\slash",)
    assert f.values("text", negated=True) == ("not this",)


def test_a_lone_dash_and_dashes_inside_words_are_text():
    f = parse("- a-b --x")
    assert set(f.values("text")) == {"-", "a-b"}
    assert f.values("text", negated=True) == ("-x",)


@pytest.mark.parametrize("text,position,token,mentions", [
    ("foo:bar", 0, "foo:bar", "foo"),
    ("user:a Foo:bar", 7, "Foo:bar", "Foo"),
    ("-foo:bar user:x", 0, "-foo:bar", "foo"),
    ("since:2026-13-45", 0, "since:2026-13-45", "2026-13-45"),
    ("user:a since:yesterdayish", 7, "since:yesterdayish", "yesterdayish"),
    ("until:2026-02-30T10:00", 0, "until:2026-02-30T10:00", "2026-02-30"),
    ('user:a "free text', 7, '"free text', "quote"),
    ('user:"unclosed', 0, 'user:"unclosed', "quote"),
    ("user:", 0, "user:", "user:"),
    ("rack:x user: alice", 7, "user:", "user:"),
    ('user:""', 0, 'user:""', "user:"),
    ('x ""', 2, '""', "empty"),
    ("category:Bogus", 0, "category:Bogus", "Bogus"),
    ("action:promote", 0, "action:promote", "promote"),
    ("app:web outcome:ok", 8, "outcome:ok", "ok"),
    ("-since:7d", 0, "-since:7d", "since"),
    ("user:a -until:2026-01-01", 7, "-until:2026-01-01", "until"),
    ("since:7d since:2026-01-01", 9, "since:2026-01-01", "since"),
    ("until:1d app:x until:2d", 15, "until:2d", "until"),
    ("SINCE:1d Since:2d", 9, "Since:2d", "since"),
])
def test_bad_input_names_the_token_and_its_position(text, position, token, mentions):
    with pytest.raises(FilterError) as info:
        parse(text)
    err = info.value
    assert err.position == position
    assert err.token == token
    message = str(err)
    assert token in message
    assert mentions in message
    assert f"column {position + 1}" in message
    assert "\n" not in message


def test_a_repeated_time_key_points_at_the_repeat_not_at_text_that_mentions_it():
    text = 'since:7d since:1d "about since:"'
    with pytest.raises(FilterError) as info:
        parse(text)
    assert info.value.position == text.index("since:1d")


def test_unknown_action_suggests_the_verb():
    with pytest.raises(FilterError, match="did you mean 'promoted'"):
        parse("action:promote")


def test_the_same_time_given_twice_is_not_an_error():
    assert parse("since:7d since:7d") == parse("since:7d")


def test_non_text_is_refused():
    with pytest.raises(FilterError):
        parse(None)  # type: ignore[arg-type]


# --- Filter editing ---------------------------------------------------------------------------------------------

def test_with_values_replaces_only_that_key_and_sign():
    f = parse("user:a user:b -user:c rack:r since:7d shipped")
    g = f.with_values("user", ["x", "y"])
    assert g.values("user") == ("x", "y")
    assert g.values("user", negated=True) == ("c",)
    assert g.values("rack") == ("r",) and g.since == "7d" and g.values("text") == ("shipped",)
    assert f.values("user") == ("a", "b"), "the original filter is unchanged"

    h = f.with_values("user", ["d", "e"], negated=True)
    assert h.values("user") == ("a", "b") and h.values("user", negated=True) == ("d", "e")
    assert f.with_values("user", []).values("user") == ()
    assert f.with_values("user", []).values("user", negated=True) == ("c",)
    assert parse("").with_values("app", ["web"]) == parse("app:web")
    assert f.with_values("user", ["b", "a", "b"]) == f.with_values("user", ["a", "b"]) == f


def test_with_values_validates_like_the_parser():
    f = parse("since:7d")
    assert f.with_values("category", ["security"]).values("category") == ("Security",)
    assert f.with_values("action", ["Promoted"]).values("action") == ("promoted",)
    assert f.with_values("since", ["2026-01-01"]).since == "2026-01-01"
    for key, values, negated in [
        ("action", ["bogus"], False),
        ("category", ["Nope"], False),
        ("outcome", ["fine"], False),
        ("since", ["soon"], False),
        ("since", ["1d", "2d"], False),
        ("until", ["1d"], True),
        ("user", [""], False),
        ("colour", ["red"], False),
    ]:
        with pytest.raises(FilterError):
            f.with_values(key, values, negated=negated)


def test_without_and_values():
    f = parse("user:a -user:b rack:r app:web since:7d hello -bye")
    assert f.without("user") == parse("rack:r app:web since:7d hello -bye")
    assert f.without("user", "rack", "since", "text") == parse("app:web")
    assert f.without() == f
    assert f.without("user", "rack", "app", "since", "text").is_empty
    assert f.values("text") == ("hello",) and f.values("text", negated=True) == ("bye",)
    assert f.values("outcome") == ()
    assert f.until is None and f.since == "7d"
    assert parse("").is_empty and not f.is_empty


# --- round trips ------------------------------------------------------------------------------------------------

WEIRD = st.sampled_from([
    '"', "'", "\\", '\\"', " ", "  lead", "trail ", "-", "--x", "-user:x", "user:x", "a:b", ":", "::", "x:",
    "\x00", "a\x00b", "\x1c", "\x1f", "\u2028", "\u3000", "\t", "\n", "\r\n", "\x7f", "é", "✓", "漢字",
    "'; DROP TABLE events; --", "%", "_", "*", "NEAR", "AND", "(", ")", "^", '""', '\\\\', '"quoted"',
])
VALUES = st.one_of(
    WEIRD,
    st.text(min_size=1, max_size=12),
    st.lists(st.one_of(WEIRD, st.text(max_size=4)), min_size=1, max_size=4).map("".join).filter(bool),
)
TIMES = st.one_of(
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 99_999), st.sampled_from("smhdw")),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(9998, 12, 31)).map(dt.date.isoformat),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(9998, 12, 31)).flatmap(
        lambda d: st.sampled_from([
            d.strftime("%Y-%m-%dT%H:%M"),
            d.strftime("%Y-%m-%dT%H:%M:%S"),
            d.strftime("%Y-%m-%dT%H:%M:%S") + f".{d.microsecond // 1000:03d}Z",
            d.strftime("%Y-%m-%dT%H:%M:%S") + f".{d.microsecond:06d}+05:30",
            d.strftime("%Y-%m-%dT%H:%M") + "-08:00",
        ])),
)
FREE_KEYS = ["user", "rack", "app", "target", "text"]


@st.composite
def filters_(draw) -> Filter:
    terms = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(FREE_KEYS + ["category", "action", "outcome"]))
        negated = draw(st.booleans())
        if kind in FREE_KEYS:
            value = draw(VALUES)
        else:
            value = draw(st.sampled_from({"category": ev.CATEGORIES, "action": ev.ACTIONS,
                                          "outcome": ev.OUTCOMES}[kind]))
        terms.append(Term(kind, value, negated))
    terms += [Term(key, draw(TIMES)) for key in ("since", "until") if draw(st.booleans())]
    return Filter(tuple(_without_inverted_range(terms)))  # tests/model/test_inverted_range.py


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filters_())
def test_text_round_trip(f):
    text = f.to_text()
    assert parse(text) == f
    assert parse(text).to_text() == text
    assert str(f) == text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filters_())
def test_json_round_trip(f):
    data = f.to_json()
    assert Filter.from_json(data) == f
    assert Filter.from_json(json.loads(data)) == f
    assert filters.from_json(data).to_json() == data


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_filter_error(text):
    try:
        f = parse(text)
    except FilterError as e:
        assert e.position is None or 0 <= e.position < max(len(text), 1)
        return
    assert parse(f.to_text()) == f


@pytest.mark.parametrize("data", [
    "not json",
    '{"version": 2, "terms": []}',
    '{"terms": []}',
    '{"version": 1}',
    '{"version": 1, "terms": [{"key": "user"}]}',
    '{"version": 1, "terms": [{"key": "user", "value": 5}]}',
    '{"version": 1, "terms": [{"key": "colour", "value": "red"}]}',
    '{"version": 1, "terms": [{"key": "text", "value": ""}]}',
    '{"version": 1, "terms": [{"key": "since", "value": "1d"}, {"key": "since", "value": "2d"}]}',
    '{"version": 1, "terms": [{"key": "since", "value": "1d", "negated": true}]}',
    '[1, 2]',
])
def test_bad_filter_json_is_a_filter_error(data):
    with pytest.raises(FilterError):
        Filter.from_json(data)


def quoted(value: str) -> str:
    """A value in double quotes, as the grammar documents them: \\" and \\\\ escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- hostile values ---------------------------------------------------------------------------------------------

HOSTILE = [
    "it's",
    'say "hi"',
    "100%",
    "%",
    "_",
    "a_b",
    "*",
    "x*",
    "'; DROP TABLE events; --",
    "\"; DROP TABLE events; --",
    "AND",
    "OR NOT",
    "NEAR(a b)",
    "col:umn",
    "^start",
    "(paren)",
    "a)",
    "back\\slash",
    "caf\u00e9 \u2713",
    "\u6f22\u5b57",
    "nul\x00byte",
    "\x00",
    "-dash",
    "  spaced  ",
    "tab\there",
    "\x1c",
]


def build_hostile_store(path: Path, values: list[str]) -> tuple[Path, list[ev.Event]]:
    conn = store.open_db(path)
    plain = [draft(actor="plain@example.com", app="plainapp", target="plaintarget", description=f"ordinary event {i}",
                   timestamp=f"2026-10-01T10:00:{i:02d}.000Z") for i in range(20)]
    plain.append(draft(actor="noapp@example.com", app=None, target=None, description="no app, no target",
                       timestamp="2026-10-01T11:00:00.000Z"))
    planted = []
    for i, value in enumerate(values):
        # One event per value and column, so a qualifier must find exactly one.
        stamp = f"2026-10-02T10:{i:02d}:"
        planted += [
            draft(actor=value, app="a", target="t", description=f"hostile actor {i}", timestamp=stamp + "01.000Z"),
            draft(actor="u@example.com", app=value, target="t", description=f"hostile app {i}",
                  timestamp=stamp + "02.000Z"),
            draft(actor="u@example.com", app="a", target=value, description=f"hostile target {i}",
                  timestamp=stamp + "03.000Z"),
            draft(actor="u@example.com", app="a", target="t", description=f"says {value} here",
                  timestamp=stamp + "04.000Z"),
        ]
    events = store.append(conn, plain + planted)
    conn.close()
    return path, events


# Events refuse NUL in their text fields (it would hide them from the full-text index), so NUL values are planted
# nowhere; as filter values they must still parse, run and match nothing.
STORABLE = [v for v in HOSTILE if "\x00" not in v]
NUL_VALUES = [v for v in HOSTILE if "\x00" in v]


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    return build_hostile_store(tmp_path_factory.mktemp("hostile") / "hostile.db", STORABLE)


hostile_store_without_nul = hostile_store


@pytest.mark.parametrize("value", STORABLE, ids=[repr(v) for v in STORABLE])
def test_hostile_values_match_literally(hostile_store, value):
    path, events = hostile_store
    conn = store.open_db(path)
    try:
        for key, field in (("user", "actor"), ("app", "app"), ("target", "target")):
            for f in (parse(f"{key}:{quoted(value)}"), Filter().with_values(key, [value])):
                expected = ref_ids(events, f)
                assert len(expected) == 1 and getattr(next(e for e in events if e.id == expected[0]), field) == value
                assert [e.id for e in store.page(conn, f, limit=1000, now=NOW).events] == expected
                assert store.count(conn, f, now=NOW) == 1
                negated = f.with_values(key, []).with_values(key, [value], negated=True)
                expected_neg = ref_ids(events, negated)
                assert len(expected_neg) == len(events) - 1
                assert [r["id"] for r in store.iter_rows(conn, negated, now=NOW)] == expected_neg
        for f in (Filter((Term("text", value),)), parse(filters.to_text(Filter((Term("text", value),))))):
            expected = ref_ids(events, f)
            planted = {e.id for e in events if value in (e.actor, e.app, e.target) or f"says {value} here" ==
                       e.description}
            assert planted <= set(expected), "the events holding the value are found"
            assert len(expected) < len(events) - 20, "the value is not matched loosely"
            for fts in (True, False):
                assert [e.id for e in store.page(conn, f, limit=1000, now=NOW, fts=fts).events] == expected
                assert store.count(conn, f, now=NOW, fts=fts) == len(expected)
            neg = Filter((Term("text", value, negated=True),))
            assert [e.id for e in store.page(conn, neg, limit=1000, now=NOW).events] == ref_ids(events, neg)
    finally:
        conn.close()
    raw = raw_connect(path)
    assert raw.execute("SELECT count(*) FROM events").fetchone()[0] == len(events)
    raw.close()


def test_negated_qualifiers_keep_events_without_that_column(hostile_store):
    path, events = hostile_store
    conn = store.open_db(path, readonly=True)
    got = [e.id for e in store.page(conn, parse("-app:a -target:t"), limit=1000, now=NOW).events]
    no_app = next(e for e in events if e.actor == "noapp@example.com")
    assert no_app.id in got
    assert got == ref_ids(events, parse("-app:a -target:t"))
    conn.close()


def _folds_like_ascii(value: str) -> bool:
    """SQLite's lower() folds ASCII only; keep generated text where Python's folding agrees."""
    return all(c.isascii() or c.lower() == c for c in value)


@st.composite
def store_filters(draw, events: list[ev.Event]) -> Filter:
    """Filters over values the hostile store holds (whole, in part, in another case) and weird ones."""
    columns = {"user": "actor", "rack": "rack", "app": "app", "target": "target"}
    terms = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["user", "app", "target", "text", "text", "category", "outcome"]))
        negated = draw(st.booleans())
        if kind == "text":
            e = draw(st.sampled_from(events))
            source = draw(st.sampled_from([e.description, e.actor, e.app or "x", e.target or "y"]))
            start = draw(st.integers(0, max(len(source) - 1, 0)))
            piece = source[start:start + draw(st.integers(1, 6))] or "z"
            value = draw(st.one_of(st.just(piece), st.just(piece.upper()), WEIRD))
            if not _folds_like_ascii(value):
                value = piece
        elif kind in columns:
            value = draw(st.one_of(
                st.sampled_from([getattr(e, columns[kind]) or "none" for e in events]), WEIRD))
        elif kind == "category":
            value = draw(st.sampled_from(["Releases", "Security"]))
        else:
            value = draw(st.sampled_from(ev.OUTCOMES))
        terms.append(Term(kind, value, negated))
    if draw(st.booleans()):
        terms.append(Term("since", draw(st.sampled_from(["2026-10-02", "2026-10-02T10:05:02.000Z", "30d"]))))
    if draw(st.booleans()):
        terms.append(Term("until", draw(st.sampled_from(["2026-10-01", "2026-10-02T10:07:03.000Z", "29d"]))))
    return Filter(tuple(_without_inverted_range(terms)))


def _without_inverted_range(terms: list[Term]) -> list[Term]:
    """The terms, less until: when it is not after since: (an inverted range is an error, not a filter)."""
    bounds = {t.key: t.value for t in terms if t.key in ("since", "until")}
    if len(bounds) == 2:
        now = dt.datetime.now(dt.timezone.utc)
        if filters.resolve_time("since", bounds["since"], now) >= filters.resolve_time("until", bounds["until"], now):
            return [t for t in terms if t.key != "until"]
    return terms


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_filters_match_reference(hostile_store_without_nul, data):
    path, events = hostile_store_without_nul
    f = data.draw(store_filters(events))
    f = parse(f.to_text())  # what a user would type
    expected = ref_ids(events, f)
    conn = store.open_db(path, readonly=True)
    try:
        for fts in (True, False):
            assert [e.id for e in store.page(conn, f, limit=1000, now=NOW, fts=fts).events] == expected, fts
            assert store.count(conn, f, now=NOW, fts=fts) == len(expected)
        assert all_pages(conn, f, 9) == expected
    finally:
        conn.close()


@pytest.mark.parametrize("value", NUL_VALUES, ids=[repr(v) for v in NUL_VALUES])
def test_nul_values_run_and_match_nothing(hostile_store, value):
    path, events = hostile_store
    conn = store.open_db(path, readonly=True)
    try:
        for f in (parse(f"user:{quoted(value)}"), parse(f"app:{quoted(value)}"), Filter((Term("text", value),))):
            for fts in (True, False):
                assert store.page(conn, f, limit=1000, now=NOW, fts=fts).events == []
                assert store.count(conn, f, now=NOW, fts=fts) == 0
        negated = Filter((Term("text", value, negated=True),))
        assert store.count(conn, negated, now=NOW) == len(events)
    finally:
        conn.close()


@pytest.mark.parametrize("field", ["description", "actor", "app", "target", "rack", "user_agent"])
def test_events_refuse_nul_in_text_so_nothing_hides_from_search(field):
    with pytest.raises(ev.EventError, match=f"{field} must be text without NUL"):
        draft(**{field: "says nul\x00byte here"})
