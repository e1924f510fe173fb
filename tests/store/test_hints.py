"""Hints for qualifiers that match nothing (issue 13): `user:alice`, `rack:production`, `target:RKZQ` find nothing,
since qualifiers match whole values; the store says which values are near, the CLI and share create say so, and
finding them never scans the events table."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from auditkit import store
from auditkit.cli import main
from auditkit.model.filters import parse
from auditkit.store import hints as hints_mod
from helpers import draft


@pytest.fixture
def mirror(tmp_path):
    path = tmp_path / "audit.db"
    conn = store.open_db(path)
    drafts = [draft(actor="alice@example.com", rack="acme/production", target="RKZQ7H2M"),
              draft(actor="alicia@example.org", rack="acme/staging", target="RKZQ9ABC"),
              draft(actor="bob@example.com", rack="acme/production", target="RXY1")]
    store.append(conn, drafts)
    yield path, conn
    conn.close()


def test_a_value_no_event_has_gets_the_values_near_it(mirror):
    _, conn = mirror
    found = store.hints_for(conn, parse("user:alice rack:production target:RKZQ app:web"))
    assert [h.text() for h in found] == [
        "no event has user:alice; did you mean user:alice@example.com?",
        "no event has rack:production; did you mean rack:acme/production?",
        "no event has target:RKZQ; did you mean target:RKZQ7H2M or target:RKZQ9ABC?",
    ]  # app:web exists (the drafts' default), so it gets no hint


def test_misspellings_and_values_with_nothing_near(mirror):
    _, conn = mirror
    assert [h.text() for h in store.hints_for(conn, parse("user:bob@exmaple.com"))] == [
        "no event has user:bob@exmaple.com; did you mean user:bob@example.com?"]
    assert [h.text() for h in store.hints_for(conn, parse('user:zzz app:"my app"'))] == [
        "no event has user:zzz", 'no event has app:"my app"']
    assert store.hints_for(conn, parse("-user:nobody")) == []  # an exclusion that excludes nothing is not a mistake


def test_finding_hints_seeks_the_indexes_and_never_scans_the_table(mirror):
    _, conn = mirror
    statements = []
    conn.set_trace_callback(statements.append)
    store.hints_for(conn, parse("user:alice rack:production target:RKZQ"))
    conn.set_trace_callback(None)
    assert statements
    for sql in {s for s in statements if "FROM events" in s}:
        plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "INDEX" in plan and "SCAN events" not in plan, (sql, plan)


def test_distinct_values_stops_at_its_limit(mirror):
    _, conn = mirror
    assert hints_mod.distinct_values(conn, "actor") == ["alice@example.com", "alicia@example.org", "bob@example.com"]
    assert hints_mod.distinct_values(conn, "actor", limit=2) == ["alice@example.com", "alicia@example.org"]


def test_events_says_did_you_mean_on_stderr_and_keeps_exports_clean(mirror):
    path, _ = mirror
    table = CliRunner().invoke(main, ["events", "user:alice", "--db", str(path)])
    assert table.exit_code == 0
    assert "0 newest of 0 events" in table.stdout
    assert "did you mean user:alice@example.com" in table.stderr
    export = CliRunner().invoke(main, ["events", "target:RKZQ", "--format", "csv", "--db", str(path)])
    assert export.exit_code == 0 and "did you mean target:RKZQ7H2M" in export.stderr
    assert "did you mean" not in export.stdout
    found = CliRunner().invoke(main, ["events", "user:alice@example.com", "--db", str(path)])
    assert "did you mean" not in found.output


def test_share_create_warns_before_the_url(mirror):
    path, _ = mirror
    result = CliRunner().invoke(main, ["share", "create", "rack:production", "--expires", "7d", "--by", "alice",
                                       "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: no event has rack:production; did you mean rack:acme/production?" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("http")  # the URL alone on the last line
