"""An auditor in headless Chromium (Debian's /usr/bin/chromium, Playwright) against a real `auditkit serve` on a real
mirror of a real gateway: the share page shows the signed checkpoints its events are proven against and how to
check the download, the auditor downloads the verifiable export, `auditkit verify-export` accepts it with the
gateway's and the mirror's keys, and the download is an Access event on the local chain. A chain with a hostile
name is shown as text, not markup.

Skipped when /usr/bin/chromium is missing, unless AUDITKIT_REQUIRE_BROWSER=1 (as .ci/run sets), which fails instead.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from auditkit import store
from auditkit.cli import main
from auditkit.model import note
from auditkit.model.events import new_event_id
from auditkit.model.filters import parse
from auditkit.share import links as sharing
from auditkit.share.site.views import readable_time
from convox_sim.servers import free_port

from browser import CHROMIUM, CHROMIUM_ARGS, require_browser
from exports import gateway_mirror, served

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

HOSTILE_CHAIN = '<img src=x onerror="document.title=1">'
WATCH_CSP = ("window.__cspViolations = [];"
             "document.addEventListener('securitypolicyviolation', function (e) {"
             "  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI); });")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    m = gateway_mirror(tmp_path_factory.mktemp("export-browser"), "", base_url=base)
    m["base"] = base
    conn = m["conn"]
    # A second gateway chain with a hostile name, checkpointed with its own key.
    hostile = note.generate_signer("hostile-gw")
    events = [store.get_event(conn, r["id"]) for r in store.iter_rows(conn, parse("action:created app:app1"))]
    store.append(conn, [e.replace(source=None, source_seq=None, prev_hash=None, hash=None, id=new_event_id())
                        for e in events], source=HOSTILE_CHAIN)
    store.add_checkpoint(conn, HOSTILE_CHAIN, store.sign_checkpoint(conn, HOSTILE_CHAIN, hostile),
                         str(hostile.verifier))
    m["hostile_key"] = str(hostile.verifier)
    try:
        with served(m["db"], port, m["work"] / "serve.log") as url:
            assert url == base
            yield m
    finally:
        conn.close()


def test_an_auditor_downloads_the_export_from_the_share_page_and_verify_export_accepts_it(site, tmp_path):
    conn, link = site["conn"], site["link"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(accept_downloads=True)
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(site["url"])
        expect(page).to_have_url(site["base"] + "/-/shared")

        # The checkpoints the page's events are proven against, as stored, and how to check the download.
        table = page.locator("table.auditkit-checkpoints")
        expect(table).to_be_visible()
        rows = {r.locator("td").nth(0).inner_text(): r for r in table.locator("tbody tr").all()}
        # The local chain (the link's own creation) is checkpointed with the mirror's key when the page needs it.
        assert set(rows) == {"gw", HOSTILE_CHAIN, store.LOCAL_SOURCE}  # the hostile name as text, not markup
        for source in rows:
            stored = store.latest_checkpoint(conn, source)
            row = rows[source]
            expect(row.locator("td").nth(1)).to_have_text(f"{stored.size:,}")
            expect(row.locator("td").nth(2)).to_have_text(base64.b64encode(stored.root).decode())
            expect(row.locator("td").nth(3)).to_have_text(readable_time(stored.signed_at))
        assert table.locator("img").count() == 0 and page.title() != "1"
        help_text = page.locator(".auditkit-verify-help").inner_text()
        assert "proof of inclusion" in help_text and "rather than from this page" in help_text
        command = page.locator(".auditkit-verify-command").inner_text()
        assert command.startswith(f"auditkit verify-export auditkit-{link.id}.zip --key ")
        keys = command.split(" --key ")[1:]
        assert sorted(keys) == sorted({site["gateway_key"], site["hostile_key"], site["mirror_key"]})

        with page.expect_download() as download:
            page.get_by_role("link", name="Verifiable export (zip)").click()
        assert download.value.suggested_filename == f"auditkit-{link.id}.zip"
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        violations = page.evaluate("() => window.__cspViolations")
        browser.close()
    assert errors == [] and violations == []

    done = CliRunner().invoke(main, ["verify-export", str(saved), "--key", site["gateway_key"],
                                     "--key", site["hostile_key"], "--key", site["mirror_key"]])
    assert done.exit_code == 0, done.stderr
    assert "OK" in done.stdout and "on 3 chain(s)" in done.stdout and "WARNING" not in done.stderr
    assert "<img src=x" in done.stdout  # shown as the text it is

    with zipfile.ZipFile(saved) as archive:
        manifest_sha = hashlib.sha256(archive.read("manifest.json")).hexdigest()
    views = [e for e in sharing.views(conn, link.id) if e.details.get("download") == "export"]
    assert len(views) == 1
    assert views[0].source == store.LOCAL_SOURCE and views[0].outcome == "succeeded"
    assert views[0].details["manifest_sha256"] == manifest_sha
    assert views[0].user_agent and "Chrome" in views[0].user_agent
