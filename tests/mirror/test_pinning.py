"""Sync pins the gateway's TLS: a fingerprint or a CA file, checked in the handshake, against a real gateway over
HTTPS and a real man in the middle (a TLS proxy with a certificate of its own); `--insecure` only when asked, and
warned; a source is named by the feed it reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from auditkit import store
from auditkit.capture.tls import ensure_self_signed, fingerprint, parse_fingerprint
from auditkit.cli import main
from auditkit.errors import AuditkitError
from auditkit.mirror import trust
from auditkit.mirror.sync import Feed, SyncError, add_source, sync_once
from convox_sim.servers import ServerThread
from feeds import Mitm, forge_events, journal_with, serve_journal


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """The real gateway app over HTTPS on a self-signed certificate (chain 'gw', 40 events), and a MITM in front
    of it with a certificate of its own."""
    work = tmp_path_factory.mktemp("pinning")
    key = journal_with(work / "journal.db", "gw", 40)
    server = serve_journal(work / "journal.db", "gw", work, tls=True)
    mitm = Mitm(server.url, work)
    key_file = work / "auditor.key"
    key_file.write_text(key)
    yield {"url": server.url, "fingerprint": server.fingerprint, "cert": server.cert_path, "key": key,
           "checkpoint_key": server.checkpoint_key,
           "key_file": key_file, "mitm": mitm, "journal": work / "journal.db"}
    mitm.stop()
    server.stop()


def _cli(*args: str, db: Path) -> object:
    return CliRunner().invoke(main, [*args, "--db", str(db)])


def _mirrored(db: Path) -> int:
    conn = store.open_db(db)
    try:
        return store.count(conn)
    finally:
        conn.close()


def test_fingerprints_are_read_in_the_forms_people_paste():
    colons = "AB:" * 31 + "CD"
    assert parse_fingerprint(colons) == colons
    assert parse_fingerprint(colons.replace(":", "").lower()) == colons
    assert parse_fingerprint("SHA256:" + colons) == colons
    assert parse_fingerprint("sha256 Fingerprint=" + colons) == colons  # openssl x509 -fingerprint -sha256
    for bad in ("AB:" * 30 + "CD", "ZZ" * 32, colons + ":EF", "", "AB" * 31 + "C"):
        with pytest.raises(AuditkitError, match="not a SHA-256 certificate fingerprint"):
            parse_fingerprint(bad)


def test_a_pinned_fingerprint_syncs_and_the_name_is_learned_from_the_feed(gateway, tmp_path):
    db = tmp_path / "audit.db"
    plain_hex = gateway["fingerprint"].replace(":", "").lower()
    added = _cli("sync", "add", gateway["url"], "--key-file", str(gateway["key_file"]), "--fingerprint", plain_hex,
                 db=db)
    assert added.exit_code == 0, added.output
    assert f"source gw → {gateway['url']}" in added.output and gateway["fingerprint"] in added.output
    ran = _cli("sync", db=db)
    assert ran.exit_code == 0, ran.output
    assert "warning" not in ran.output
    assert _mirrored(db) == 41  # 40 events and the auditor key's Access event


def test_a_mitm_is_refused_in_the_handshake_before_the_key_is_sent(gateway, tmp_path):
    mitm: Mitm = gateway["mitm"]
    db = tmp_path / "audit.db"
    # At add time: the user pinned the real gateway's fingerprint, but the address leads to the MITM.
    added = _cli("sync", "add", "gw", mitm.url, "--key-file", str(gateway["key_file"]),
                 "--fingerprint", gateway["fingerprint"], db=db)
    assert added.exit_code != 0
    assert mitm.fingerprint in added.output and gateway["fingerprint"] in added.output
    assert "nothing was sent" in added.output
    # At sync time: a source pinned to the real gateway whose address now leads to the MITM.
    conn = store.open_db(db)
    trust.save(conn, "gw", mitm.url, trust.Pins(fingerprint=gateway["fingerprint"],
                                                checkpoint_key=gateway["checkpoint_key"]))
    with pytest.raises(trust.TrustError) as refused:
        sync_once(conn, Feed("gw", mitm.url, gateway["key"], trust.load(conn, "gw")))
    assert mitm.fingerprint in str(refused.value) and gateway["fingerprint"] in str(refused.value)
    assert store.count(conn) == 0 and store.chain_head(conn, "gw").last_seq == 0
    assert mitm.seen == []  # not one request reached the proxy, so neither did the key
    # The proxy does see what a client sends it: the same sync with --insecure hands it the key.
    sync_once(conn, Feed("gw", mitm.url, gateway["key"], trust.Pins(insecure=True,
                                                                   checkpoint_key=gateway["checkpoint_key"])))
    assert mitm.saw_authorization
    mitm.seen.clear()


def test_a_ca_file_verifies_the_gateway_and_refuses_the_mitm(gateway, tmp_path):
    db = tmp_path / "audit.db"
    # The gateway's self-signed certificate is its own CA; its names include 127.0.0.1, which is checked.
    added = _cli("sync", "add", "gw", gateway["url"], "--key-file", str(gateway["key_file"]),
                 "--ca-file", str(gateway["cert"]), db=db)
    assert added.exit_code == 0, added.output
    assert _cli("sync", db=db).exit_code == 0 and _mirrored(db) == 41
    refused = _cli("sync", "add", "gw", gateway["mitm"].url, "--key-file", str(gateway["key_file"]),
                   "--ca-file", str(gateway["cert"]), db=db)
    assert refused.exit_code != 0 and "is not trusted" in refused.output
    assert gateway["mitm"].fingerprint in refused.output and gateway["mitm"].seen == []


def test_without_a_pin_a_self_signed_gateway_is_refused_with_the_fingerprint_it_presents(gateway, tmp_path):
    refused = _cli("sync", "add", "gw", gateway["url"], "--key-file", str(gateway["key_file"]),
                   db=tmp_path / "audit.db")
    assert refused.exit_code != 0
    assert "is not trusted (self-signed certificate)" in refused.output
    assert gateway["fingerprint"] in refused.output and "--fingerprint" in refused.output


def test_insecure_is_explicit_and_warns_on_every_sync(gateway, tmp_path):
    db = tmp_path / "audit.db"
    added = _cli("sync", "add", "gw", gateway["url"], "--key-file", str(gateway["key_file"]), "--insecure", db=db)
    assert added.exit_code == 0, added.output
    assert "TLS NOT verified" in added.output
    assert "learned from the gateway over TLS that was NOT verified" in added.output  # the learned key is suspect too
    for _ in range(2):
        ran = CliRunner().invoke(main, ["sync", "--db", str(db)])
        assert ran.exit_code == 0, ran.output
        assert "warning: TLS to " + gateway["url"] + " is not verified (--insecure)" in ran.stderr
    assert _mirrored(db) == 41


@pytest.mark.parametrize("url,flags,message", [
    ("http://gateway.example:5443", [], "plain HTTP to another machine"),
    ("http://127.0.0.1:9", ["--fingerprint", "AB" * 32], "no certificate to pin"),
    ("https://127.0.0.1:9", ["--fingerprint", "AB" * 32, "--insecure"], "give it alone"),
    ("https://127.0.0.1:9", ["--fingerprint", "AB:CD"], "not a SHA-256 certificate fingerprint"),
])
def test_pins_that_cannot_protect_the_url_are_refused_before_any_contact(gateway, tmp_path, url, flags, message):
    db = tmp_path / "audit.db"
    refused = _cli("sync", "add", "gw", url, "--key-file", str(gateway["key_file"]), *flags, db=db)
    assert refused.exit_code != 0 and message in refused.output, refused.output
    assert store.chain_heads(store.open_db(db)) == []


def test_plain_http_on_loopback_is_accepted_and_says_so(tmp_path):
    key = journal_with(tmp_path / "journal.db", "gw-local", 3)
    server = serve_journal(tmp_path / "journal.db", "gw-local", tmp_path)
    try:
        conn = store.open_db(tmp_path / "audit.db")
        assert add_source(conn, None, server.url, key, tmp_path).name == "gw-local"
        assert trust.load(conn, "gw-local").describe(server.url) == "plain HTTP, not encrypted (loopback)"
    finally:
        server.stop()


def test_a_name_the_feed_would_refuse_is_refused_at_add_time(gateway, tmp_path):
    db = tmp_path / "audit.db"
    refused = _cli("sync", "add", "gateway", gateway["url"], "--key-file", str(gateway["key_file"]),
                   "--fingerprint", gateway["fingerprint"], db=db)
    assert refused.exit_code != 0
    assert "serves chain 'gw', not 'gateway'" in refused.output
    assert store.chain_heads(store.open_db(db)) == []  # nothing registered
    assert not (tmp_path / "sync-gateway.key").exists() and not (tmp_path / "sync-gw.key").exists()
    # Without --key-file the key comes from the source's variable, which needs NAME.
    no_key = _cli("sync", "add", gateway["url"], db=db)
    assert no_key.exit_code != 0 and "give --key-file" in no_key.output
    env = CliRunner(env={"AUDITKIT_SYNC_KEY_GW": gateway["key"]}).invoke(
        main, ["sync", "add", "gw", gateway["url"], "--fingerprint", gateway["fingerprint"], "--db", str(db)])
    assert env.exit_code == 0, env.output
    assert "key from $AUDITKIT_SYNC_KEY_GW" in env.output and not (tmp_path / "sync-gw.key").exists()


def test_a_wrong_key_at_add_time_is_a_clear_refusal(gateway, tmp_path):
    with pytest.raises(SyncError, match="refused the key \\(401\\)"):
        add_source(store.open_db(tmp_path / "audit.db"), "gw", gateway["url"], "akg_wrong", tmp_path,
                   trust.Pins(fingerprint=gateway["fingerprint"]))
    assert not (tmp_path / "sync-gw.key").exists()


def test_gateway_fingerprint_prints_what_the_handshake_presents(tmp_path):
    journal_with(tmp_path / "journal.db", "gw", 1)
    missing = CliRunner().invoke(main, ["gateway", "fingerprint", "--journal", str(tmp_path / "journal.db")])
    assert missing.exit_code != 0 and "makes it on its first start" in missing.output
    cert, key = ensure_self_signed(tmp_path, "gw", ["127.0.0.1"])  # what `gateway serve` makes beside the journal
    printed = CliRunner().invoke(main, ["gateway", "fingerprint", "--journal", str(tmp_path / "journal.db")])
    assert printed.exit_code == 0, printed.output
    with ServerThread(Starlette(), ssl_certfile=str(cert), ssl_keyfile=str(key)) as server:
        assert printed.output.strip() == fingerprint(cert) == trust.presented_fingerprint(server.url)


def test_a_mitm_that_rewrites_a_page_is_caught_by_the_checkpoint_even_with_insecure(gateway, tmp_path):
    forger = Mitm(gateway["url"], tmp_path, rewrite=forge_events(3, description="Viewed app web"))
    db = tmp_path / "audit.db"
    try:
        added = _cli("sync", "add", "gw", forger.url, "--key-file", str(gateway["key_file"]), "--insecure",
                     "--checkpoint-key", gateway["checkpoint_key"], db=db)
        assert added.exit_code == 0, added.output
        ran = CliRunner().invoke(main, ["sync", "--db", str(db)])
    finally:
        forger.stop()
    assert ran.exit_code != 0
    assert "warning: TLS to" in ran.stderr
    assert "the page ending at seq 41 is not part of the signed tree" in ran.output
    assert _mirrored(db) == 0
