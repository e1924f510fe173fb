"""An inverted range (since: at or after until:) is an error naming the until: token, everywhere a filter is made:
the text, a Filter's with_values (the TUI's time range), the CLI (issue 13)."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from auditkit import store
from auditkit.cli import main
from auditkit.errors import FilterError
from auditkit.model.filters import Filter, parse

DAY_MAX = dt.date(9000, 1, 1)


@pytest.mark.parametrize("text, column", [
    ("since:2026-11-20 until:2026-11-01", 17),
    ("app:web until:2026-11-01T10:00 since:2026-11-01T10:00:00.001", 8),
    ("since:2d until:7d", 9),
])
def test_an_inverted_range_is_refused_at_its_until_token(text, column):
    with pytest.raises(FilterError) as e:
        parse(text)
    assert e.value.position == column and "is not before" in str(e.value)


@given(st.dates(max_value=DAY_MAX), st.dates(max_value=DAY_MAX))  # year 9999's end is issue 13's other half
def test_a_range_of_dates_parses_exactly_when_since_is_not_after_until(a, b):
    text = f"since:{a.isoformat()} until:{b.isoformat()}"  # until: a date includes that whole day
    if a <= b:
        assert parse(text).since == a.isoformat()
    else:
        with pytest.raises(FilterError):
            parse(text)


def test_with_values_refuses_an_inverted_range_too():
    with pytest.raises(FilterError, match="is not before"):
        Filter.parse("until:2026-01-01").with_values("since", ["2026-02-01"])


def test_the_cli_says_so_in_one_line(tmp_path):
    path = tmp_path / "audit.db"
    store.open_db(path).close()
    result = CliRunner().invoke(main, ["events", "since:2026-11-20", "until:2026-11-01", "--db", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("Error: since:2026-11-20 is not before until:2026-11-01")
