"""Share links (auditkit.share.links and `auditkit share …`): the secret, tokens, expiry, scope, verify's refusals,
revocation, views and their Access events, rotation, and the CLI's output and errors."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from itsdangerous import URLSafeSerializer

from auditkit import store
from auditkit.share import links as sharing
from auditkit.cli import main
from auditkit.errors import (
    FilterError,
    ShareError,
    ShareLinkExpired,
    ShareLinkRevoked,
    ShareLinkUnknown,
    ShareTokenError,
)
from auditkit.model.events import format_timestamp
from auditkit.model.filters import Filter, parse
from auditkit.model import note

from helpers import NOW, draft, ts

BASE = "https://audit.example.com"


@pytest.fixture
def mirror(tmp_path: Path):
    """A small mirror: production and staging events over ten days before NOW, plus one exactly at a day edge."""
    path = tmp_path / "data" / "audit.db"
    conn = store.open_db(path)
    drafts = []
    for day in range(10):
        for rack in ("acme/production", "acme/staging"):
            moment = NOW - dt.timedelta(days=day, hours=1)
            drafts.append(draft(timestamp=ts(moment), rack=rack, description=f"{rack} day {day}"))
    drafts.append(draft(timestamp=ts(NOW - dt.timedelta(days=3)), rack="acme/production",
                        description="exactly three days before now"))
    store.append(conn, drafts, source="gw")
    store.checkpoint_chain(conn, "gw", note.generate_signer("gw"))  # as its gateway signs it and sync stores it
    yield path, conn
    conn.close()


def make(conn, path, text="rack:acme/production", **kw):
    kw.setdefault("expires", "7d")
    kw.setdefault("created_by", "alice@example.com")
    kw.setdefault("base_url", BASE)
    kw.setdefault("now", NOW)
    return sharing.create(conn, parse(text), secret=sharing.secret_for(path), **kw)


def descriptions(conn, f):
    return [e.description for e in store.page(conn, f, limit=1000, now=NOW).events]


# --- the secret and tokens ------------------------------------------------------------------------------------------

def test_the_secret_is_made_once_beside_the_mirror_with_mode_0600(tmp_path):
    db = tmp_path / "data" / "audit.db"
    first = sharing.secret_for(db)
    assert (tmp_path / "data" / "share-secret").exists()
    assert stat.S_IMODE(os.stat(tmp_path / "data" / "share-secret").st_mode) == 0o600
    assert sharing.secret_for(db) == first and len(first) == 64


def test_a_secret_others_can_read_is_refused(tmp_path):
    db = tmp_path / "audit.db"
    sharing.secret_for(db)
    os.chmod(tmp_path / "share-secret", 0o644)
    with pytest.raises(ShareError, match="readable by other users"):
        sharing.secret_for(db)


def test_the_token_is_datasettes_signature_of_the_link_id():
    from datasette.app import Datasette

    ds = Datasette(secret="s" * 64)
    assert sharing.token_for("s" * 64, "sl_0123456789abcdef") == ds.sign("sl_0123456789abcdef", "share-link")
    assert sharing.link_id_from_token("s" * 64, ds.sign("sl_0123456789abcdef", "share-link")) == "sl_0123456789abcdef"


@pytest.mark.parametrize("token", [
    "",
    "x" * 300,
    "InNsXzAxMjM0NTY3ODlhYmNkZWYi.AAAAAAAAAAAAAAAAAAAAAAAAAAA",  # right payload, wrong signature
    URLSafeSerializer("other-secret-" * 4, "share-link").dumps("sl_0123456789abcdef"),
    URLSafeSerializer("s" * 64, "actor").dumps("sl_0123456789abcdef"),  # another namespace (e.g. ds_actor)
    URLSafeSerializer("s" * 64, "share-link").dumps({"a": {"id": "root"}}),  # signed, but not a link id
    URLSafeSerializer("s" * 64, "share-link").dumps("../etc"),
])
def test_tokens_not_signed_for_a_link_by_this_secret_are_refused(token):
    with pytest.raises(ShareTokenError):
        sharing.link_id_from_token("s" * 64, token)


# --- expiry ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("7d", "2026-11-08T12:00:00.000Z"),
    ("24h", "2026-11-02T12:00:00.000Z"),
    ("90m", "2026-11-01T13:30:00.000Z"),
    ("2w", "2026-11-15T12:00:00.000Z"),
    ("2026-12-31", "2027-01-01T00:00:00.000Z"),  # the whole day included
    ("2026-12-31T18:00Z", "2026-12-31T18:00:00.000Z"),
    ("2026-12-31T18:00:00+02:00", "2026-12-31T16:00:00.000Z"),
    ("never", None),
    ("NEVER", None),
])
def test_parse_expiry(text, expected):
    assert sharing.parse_expiry(text, NOW) == expected


@pytest.mark.parametrize("text, message", [
    ("", "bad expiry"),
    ("soon", "bad expiry"),
    ("7 days", "bad expiry"),
    ("-7d", "bad expiry"),
    ("2026-13-01", "bad expiry"),
    ("9999999999d", "bad expiry"),
    ("0d", "not in the future"),
    ("2026-10-31", "not in the future"),
    ("2026-11-01T11:00Z", "not in the future"),
])
def test_bad_or_past_expiry_is_refused(text, message):
    with pytest.raises(ShareError, match=message):
        sharing.parse_expiry(text, NOW)


# --- create and scope -----------------------------------------------------------------------------------------------

def test_create_stores_the_link_records_an_access_event_and_returns_its_url(mirror):
    path, conn = mirror
    link, url = make(conn, path, "rack:acme/production", since="2026-10-28", note="SOC 2 sample")
    assert url.startswith(BASE + "/-/share/")
    token = url.rsplit("/", 1)[1]
    assert sharing.link_id_from_token(sharing.secret_for(path), token) == link.id
    assert link.expires_at == "2026-11-08T12:00:00.000Z" and link.since == "2026-10-28" and link.until is None
    assert sharing.get(conn, link.id) == link
    created = store.page(conn, parse("category:Access action:created"), now=NOW).events
    assert [(e.target, e.actor, e.rack, e.source) for e in created] == [(link.id, "alice@example.com", "local",
                                                                         "local")]
    assert "rack:acme/production" in created[0].description and created[0].details["note"] == "SOC 2 sample"
    assert store.verify(conn).ok


def test_the_scope_is_the_filter_and_the_time_range(mirror):
    path, conn = mirror
    link, _ = make(conn, path, "rack:acme/production", since="2026-10-28", until="2026-10-30")
    assert descriptions(conn, sharing.scope(link)) == [
        "acme/production day 2", "exactly three days before now", "acme/production day 3", "acme/production day 4"]


def test_relative_times_are_frozen_when_the_link_is_made(mirror):
    path, conn = mirror
    link, _ = make(conn, path, "rack:acme/production since:3d")
    assert link.since == "2026-10-29T12:00:00.000Z" and link.filter == parse("rack:acme/production")
    at_creation = descriptions(conn, parse("rack:acme/production since:3d"))
    # A week later the link still shows what "the last three days" meant when it was made.
    later = NOW + dt.timedelta(days=7)
    assert [e.description for e in store.page(conn, sharing.scope(link), limit=1000, now=later).events] == at_creation
    assert "exactly three days before now" in at_creation


def test_a_relative_until_keeps_its_exclusive_edge(mirror):
    path, conn = mirror
    link, _ = make(conn, path, "rack:acme/production", until="3d")
    shown = descriptions(conn, sharing.scope(link))
    assert shown == descriptions(conn, parse("rack:acme/production until:3d"))
    assert "exactly three days before now" not in shown and "acme/production day 3" in shown


@pytest.mark.parametrize("text, kw, error, message", [
    ("since:2026-10-01", {"since": "2026-10-02"}, ShareError, "given both"),
    ("", {"since": "2026-11-20", "until": "2026-11-01"}, ShareError, "is empty"),
    ("", {"since": "yesterday"}, FilterError, "bad time"),
    ("", {"expires": "soon"}, ShareError, "bad expiry"),
    ("", {"created_by": "  "}, ShareError, "who creates it"),
    ("", {"base_url": "ftp://x"}, ShareError, "base URL"),
    ("", {"note": "x" * 501}, ShareError, "at most 500"),
])
def test_bad_input_is_refused_and_creates_nothing(mirror, text, kw, error, message):
    path, conn = mirror
    with pytest.raises(error, match=message):
        make(conn, path, text, **kw)
    assert sharing.list_links(conn) == []
    assert store.count(conn, parse("category:Access")) == 0


# --- verify, revoke -------------------------------------------------------------------------------------------------

def test_verify_accepts_an_open_link_and_names_each_refusal(mirror):
    path, conn = mirror
    secret = sharing.secret_for(path)
    link, url = make(conn, path)
    token = url.rsplit("/", 1)[1]
    assert sharing.verify(conn, secret, token, now=NOW).id == link.id

    with pytest.raises(ShareLinkExpired) as expired:
        sharing.verify(conn, secret, token, now=NOW + dt.timedelta(days=7))
    assert expired.value.expired_at == "2026-11-08T12:00:00.000Z"
    assert "expired on 2026-11-08 12:00 UTC" in str(expired.value)

    with pytest.raises(ShareTokenError):
        sharing.verify(conn, secret, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), now=NOW)
    with pytest.raises(ShareTokenError):
        sharing.verify(conn, "another secret entirely, 32+ chars long", token, now=NOW)
    with pytest.raises(ShareLinkUnknown):
        sharing.verify(conn, secret, sharing.token_for(secret, "sl_0000000000000000"), now=NOW)

    sharing.revoke(conn, link.id, "bob@example.com", now=NOW + dt.timedelta(hours=1))
    with pytest.raises(ShareLinkRevoked) as revoked:
        sharing.verify(conn, secret, token, now=NOW + dt.timedelta(days=30))  # revoked wins over expired
    assert revoked.value.revoked_at == "2026-11-01T13:00:00.000Z" and revoked.value.revoked_by == "bob@example.com"


def test_revoke_records_who_and_refuses_twice_and_unknown_ids(mirror):
    path, conn = mirror
    link, _ = make(conn, path)
    done = sharing.revoke(conn, link.id, "bob@example.com", now=NOW)
    assert done.status(NOW) == "revoked" and sharing.get(conn, link.id).revoked_by == "bob@example.com"
    with pytest.raises(ShareError, match="already revoked"):
        sharing.revoke(conn, link.id, "bob@example.com", now=NOW)
    with pytest.raises(ShareLinkUnknown, match="no share link 'sl_nope'"):
        sharing.revoke(conn, "sl_nope", "bob@example.com")
    revoked = store.page(conn, parse("category:Access action:revoked"), now=NOW).events
    assert [(e.target, e.actor) for e in revoked] == [(link.id, "bob@example.com")]


def test_status_of_a_link():
    link = sharing.ShareLink("sl_0123456789abcdef", Filter(), None, None, "2026-11-02T00:00:00.000Z", None, "a",
                             "2026-11-01T00:00:00.000Z")
    assert link.status(NOW) == "active"
    assert link.status(NOW + dt.timedelta(days=1)) == "expired"


# --- views ----------------------------------------------------------------------------------------------------------

def test_views_are_access_events_counted_per_link(mirror):
    path, conn = mirror
    first, _ = make(conn, path)
    second, _ = make(conn, path, "rack:acme/staging")
    sharing.record_view(conn, first, what="page 1", ip="203.0.113.9", user_agent="Mozilla/5.0 (auditor)")
    sharing.record_view(conn, first, what="events.csv", ip="203.0.113.9", user_agent="curl/8\x00evil",
                        details={"format": "csv"})
    sharing.record_view(conn, second, what="page 1", ip="198.51.100.1", user_agent=None)
    sharing.record_view(conn, first, what="page 1", ip="192.0.2.1", user_agent="x", outcome="denied")
    counts = {link.id: link.views for link in sharing.list_links(conn)}
    assert counts == {first.id: 2, second.id: 1}  # a refused attempt is recorded but is not a view
    seen = sharing.views(conn, first.id)
    assert [(e.details["what"], e.source_ip, e.outcome) for e in seen] == [
        ("page 1", "192.0.2.1", "denied"), ("events.csv", "203.0.113.9", "succeeded"),
        ("page 1", "203.0.113.9", "succeeded")]
    assert seen[1].user_agent == "curl/8\\0evil" and seen[1].details["format"] == "csv"
    assert all(e.category == "Access" and e.action == "viewed" and e.source == "local" and e.actor ==
               f"share:{first.id}" for e in seen)
    with pytest.raises(ShareLinkUnknown):
        sharing.views(conn, "sl_nope")
    assert store.verify(conn).ok


def test_rotating_the_secret_revokes_every_open_link(mirror):
    path, conn = mirror
    kept, url = make(conn, path)
    gone, _ = make(conn, path, "rack:acme/staging")
    sharing.revoke(conn, gone.id, "bob@example.com", now=NOW)
    old = sharing.secret_for(path)
    revoked = sharing.rotate_secret(conn, path, "carol@example.com")
    assert [link.id for link in revoked] == [kept.id]
    new = sharing.secret_for(path)
    assert new != old and stat.S_IMODE(os.stat(sharing.secret_path(path)).st_mode) == 0o600
    with pytest.raises(ShareTokenError):
        sharing.verify(conn, new, url.rsplit("/", 1)[1])
    assert sharing.get(conn, kept.id).revoked_by == "carol@example.com"
    assert sharing.get(conn, gone.id).revoked_by == "bob@example.com"


# --- the CLI --------------------------------------------------------------------------------------------------------

def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_cli_create_prints_the_url_alone_on_the_last_line(mirror, monkeypatch):
    path, conn = mirror
    monkeypatch.setenv("AUDITKIT_USER", "dana@example.com")
    result = run("share", "create", "rack:acme/production", "-user:ci-bot", "--since", "2026-10-01",
                 "--expires", "never", "--note", "Q4 audit", "--base-url", BASE + "/", "--db", path)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(BASE + "/-/share/") and " " not in lines[-1]
    link = sharing.verify(conn, sharing.secret_for(path), lines[-1].rsplit("/", 1)[1])
    assert link.filter == parse("rack:acme/production -user:ci-bot") and link.expires_at is None
    assert link.created_by == "dana@example.com" and link.note == "Q4 audit"
    assert "11 events match" in lines[0] and "never expires" in lines[0]


@pytest.mark.parametrize("args, message", [
    (["share", "create", "rack:x", "--expires", "soon"], "bad expiry 'soon'"),
    (["share", "create", "rack:x"], "Missing option '--expires'"),
    (["share", "create", "foo:bar", "--expires", "7d"], "unknown key 'foo:'"),
    (["share", "revoke", "sl_nope"], "no share link 'sl_nope'"),
    (["share", "views", "sl_nope"], "no share link 'sl_nope'"),
])
def test_cli_bad_input_is_one_line_and_exit_2(mirror, args, message):
    path, conn = mirror
    result = run(*args, "--db", path)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert sharing.list_links(conn) == []


def test_cli_list_revoke_twice_and_views(mirror):
    path, conn = mirror
    link, _ = make(conn, path, note="for the auditors", expires="never")
    sharing.record_view(conn, link, what="page 1", ip="203.0.113.9", user_agent="Mozilla/5.0 (auditor)")
    listed = run("share", "list", "--db", path)
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if link.id in line)
    assert " 1 " in row and "active" in row and "rack:acme/production" in row and "for the auditors" in row
    views = run("share", "views", link.id, "--db", path)
    assert views.exit_code == 0 and "203.0.113.9" in views.output and "page 1" in views.output
    assert "1 view of" in views.output
    first = run("share", "revoke", link.id, "--by", "bob@example.com", "--db", path)
    assert first.exit_code == 0 and f"revoked {link.id}" in first.output
    second = run("share", "revoke", link.id, "--db", path)
    assert second.exit_code == 2 and "already revoked" in second.output
    assert "revoked" in run("share", "list", "--db", path).output


def test_cli_rotate_secret_asks_first(mirror):
    path, conn = mirror
    make(conn, path)
    old = sharing.secret_for(path)
    refused = run("share", "rotate-secret", "--db", path, input="n\n")
    assert refused.exit_code != 0 and sharing.secret_for(path) == old
    done = run("share", "rotate-secret", "--db", path, "--yes")
    assert done.exit_code == 0 and "1 open link revoked" in done.output and sharing.secret_for(path) != old


def test_format_of_times_in_words():
    assert sharing.human_time("2026-12-03T10:00:00.000Z") == "2026-12-03 10:00 UTC"
    assert sharing.human_time(format_timestamp(NOW + dt.timedelta(seconds=5))) == "2026-11-01 12:00:05 UTC"


@pytest.mark.parametrize("text, since, until, words", [
    ("rack:acme/production", None, None, "all time"),
    ("since:2026-10-01", None, None, "from 2026-10-01 on"),
    ("", "2026-10-01", "2026-10-31", "from 2026-10-01 through 2026-10-31"),
    ("until:2026-10-31T18:00:00Z", None, None, "through 2026-10-31 18:00:00 UTC"),
    ("since:3d", None, None, "from 2026-10-29 12:00:00.000 UTC on"),
])
def test_the_range_in_words_is_one_wording_before_and_after_the_link_is_made(mirror, text, since, until, words):
    path, conn = mirror
    f = parse(text)
    if since or until:
        f = f.with_values("since", [since]).with_values("until", [until])
    assert sharing.filter_range_text(f, NOW) == words
    link, _ = make(conn, path, text, since=since, until=until)
    assert sharing.range_text(link) == words == sharing.bounds_text(link.since, link.until)


def test_the_default_creator_is_auditkit_user_else_the_login_name(monkeypatch):
    import getpass

    monkeypatch.setenv("AUDITKIT_USER", "dana@example.com")
    assert sharing.default_creator() == "dana@example.com"
    monkeypatch.delenv("AUDITKIT_USER")
    monkeypatch.setattr(getpass, "getuser", lambda: "ops")
    assert sharing.default_creator() == "ops"

    def no_user() -> str:
        raise KeyError("no such user")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert sharing.default_creator() == "system"
