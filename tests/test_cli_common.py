"""The commands that take filter words (`events`, `tui`, `share create`) refuse a mistyped option instead of
filtering by it (issue 13): a word starting with `--` is a filter word only after `--`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from auditkit import store
from auditkit.cli import main
from auditkit.share import links as sharing
from helpers import draft


@pytest.fixture
def mirror(tmp_path):
    path = tmp_path / "audit.db"
    conn = store.open_db(path)
    store.append(conn, [draft(app="shop", description="Promoted release R1 of app shop"),
                        draft(app="web", description="Scaled --weird of app web")])
    conn.close()
    return path


@pytest.mark.parametrize("args, wrong, meant", [
    (["events", "--limt", "5"], "--limt", "--limit"),
    (["events", "app:shop", "--fromat=csv"], "--fromat", "--format"),
    (["tui", "--utcc"], "--utcc", "--utc"),
    (["share", "create", "app:shop", "--expires", "7d", "--nots", "for auditor"], "--nots", "--note"),
])
def test_a_mistyped_option_is_an_error_naming_the_option_it_may_mean(mirror, args, wrong, meant):
    result = CliRunner().invoke(main, args + ["--db", str(mirror)])
    assert result.exit_code == 2
    assert f"no such option: {wrong} (did you mean {meant}?)" in result.output
    assert "after `--`" in result.output
    conn = store.open_db(mirror)
    assert sharing.list_links(conn) == []  # share create made no link
    conn.close()


def test_a_word_starting_with_two_dashes_is_a_filter_word_after_the_double_dash(mirror):
    # after `--` the word reaches the filter language as typed (quoted: the literal text "--weird")
    result = CliRunner().invoke(main, ["events", "--db", str(mirror), "--format", "jsonl", "--", '"--weird"'])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [json.loads(line)["description"] for line in lines] == ["Scaled --weird of app web"]


def test_negated_qualifiers_and_known_options_still_work(mirror):
    result = CliRunner().invoke(main, ["events", "-app:web", "--limit", "5", "--format=jsonl", "--db", str(mirror)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [json.loads(line)["app"] for line in lines] == ["shop"]


def test_an_options_value_may_start_with_two_dashes(mirror):
    made = CliRunner().invoke(main, ["share", "create", "app:shop", "--expires", "7d", "--note", "--for Q4--",
                                     "--by", "alice", "--db", str(mirror)])
    assert made.exit_code == 0, made.output
    conn = store.open_db(mirror)
    assert [link.note for link in sharing.list_links(conn)] == ["--for Q4--"]
    conn.close()


def test_counts_are_written_in_the_singular_for_one(mirror):
    result = CliRunner().invoke(main, ["events", "app:shop", "--db", str(mirror)])
    assert result.exit_code == 0, result.output
    assert "1 newest of 1 event matching app:shop" in result.output
    made = CliRunner().invoke(main, ["share", "create", "app:shop", "--expires", "7d", "--by", "alice",
                                     "--db", str(mirror)])
    assert made.exit_code == 0, made.output
    assert ": 1 event matches app:shop" in made.output
    link_id = made.output.split()[2].rstrip(":")
    views = CliRunner().invoke(main, ["share", "views", link_id, "--db", str(mirror)])
    assert f"0 views of {link_id}" in views.output
    revoked = CliRunner().invoke(main, ["share", "revoke", link_id, "--by", "alice", "--db", str(mirror)])
    assert revoked.output.strip() == f"revoked {link_id} (0 views)"


def test_sync_help_leads_with_its_main_use():
    result = CliRunner().invoke(main, ["sync", "--help"], prog_name="auditkit")
    assert result.exit_code == 0
    usage = result.output.splitlines()[0]
    assert usage == "Usage: auditkit sync [NAME…] [--follow] [--db PATH]"
    assert "--follow" in result.output.split("Commands:")[0] and "add" in result.output.split("Commands:")[1]


def test_demo_help_describes_the_demo():
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    for words in ("through the real gateway", "exec and SSH sessions", "synthetic month", "share link", "TUI"):
        assert words in " ".join(result.output.split()), words
