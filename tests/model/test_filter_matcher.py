"""filters.matches, the in-memory meaning of a filter, against SQLite's: for filters hypothesis draws from the
corpus's own values (whole, in part, in another case, negated, with time bounds on day edges and relative forms),
the events matches() keeps are exactly those store.iter_rows returns, with and without the full-text index."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from auditkit import store
from auditkit.errors import FilterError
from auditkit.model import events as ev
from auditkit.model.filters import Filter, Term, matches, parse

from helpers import NOW, START


@pytest.fixture(scope="module")
def corpus_conn(corpus):
    c = corpus.connect()
    yield c
    c.close()


_EDGES = [START + dt.timedelta(days=d, hours=h) for d in (0, 9, 30, 59) for h in (0, 13)]


@st.composite
def corpus_filters(draw, events: list[ev.Event]) -> Filter:
    columns = {"user": "actor", "rack": "rack", "app": "app", "target": "target", "category": "category",
               "action": "action", "outcome": "outcome"}
    terms = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(list(columns) + ["text", "text"]))
        negated = draw(st.booleans())
        e = draw(st.sampled_from(events))
        if kind == "text":
            source = draw(st.sampled_from([e.description, e.actor, e.app or "web", e.target or "R0"]))
            start = draw(st.integers(0, max(len(source) - 1, 0)))
            piece = source[start:start + draw(st.integers(1, 8))] or "e"
            value = draw(st.sampled_from([piece, piece.upper(), piece.lower()]))
        else:
            value = getattr(e, columns[kind]) or "none"
            if kind in ("user", "app", "target") and draw(st.booleans()):
                value = value.upper()  # qualifiers compare exactly: another case matches nothing
        terms.append(Term(kind, value, negated))
    if draw(st.booleans()):
        moment = draw(st.sampled_from(_EDGES))
        terms.append(Term("since", draw(st.sampled_from([moment.strftime("%Y-%m-%d"),
                                                         moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "30d"]))))
    if draw(st.booleans()):
        moment = draw(st.sampled_from(_EDGES))
        terms.append(Term("until", draw(st.sampled_from([moment.strftime("%Y-%m-%d"),
                                                         moment.strftime("%Y-%m-%dT%H:%M+02:00"), "10d"]))))
    try:
        return parse(Filter(tuple(terms)).to_text())
    except FilterError:  # an inverted range is an error, not a filter (tests/model/test_inverted_range.py)
        return parse(Filter(tuple(t for t in terms if t.key != "until")).to_text())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_matches_keeps_exactly_what_the_sql_selects(corpus, corpus_conn, data):
    f = data.draw(corpus_filters(corpus.events))
    in_memory = {e.id for e in corpus.events if matches(f, e, now=NOW)}
    for fts in (True, False):
        selected = {e.id for e in store.page(corpus_conn, f, limit=10_000, now=NOW, fts=fts).events}
        assert in_memory == selected, (f.to_text(), fts)
    # A row as the downloads serialise it (a mapping) means the same as the Event.
    rows = list(store.iter_rows(corpus_conn, f, now=NOW))
    assert all(matches(f, row, now=NOW) for row in rows)


@pytest.mark.parametrize("text,keeps", [
    ("until:2026-10-04", {"Just before midnight Oct 5 in +02:00", "Midnight Oct 5 in +02:00"}),
    ("since:2026-10-05T00:00:00+02:00 until:2026-10-05T00:00:00Z", {"Midnight Oct 5 in +02:00",
                                                                    "Midnight Oct 5 UTC"}),
    ("since:2026-10-05T00:00:00+02:00 until:2026-10-04T23:59:59.999Z", {"Midnight Oct 5 in +02:00"}),
    ("since:7d", {"Exactly seven days before now"}),
])
def test_time_edges_are_those_of_the_sql(corpus, corpus_conn, text, keeps):
    f = parse(text)
    edge = {e.description for e in corpus.events if e.description in {
        "Just before midnight Oct 5 in +02:00", "Midnight Oct 5 in +02:00", "Midnight Oct 5 UTC",
        "Exactly seven days before now", "One ms too old for 7d"}}
    assert len(edge) == 5
    kept = {e.description for e in corpus.events if e.description in edge and matches(f, e, now=NOW)}
    assert kept == keeps
    assert {e.description for e in store.page(corpus_conn, f, limit=10_000, now=NOW).events} & edge == kept
