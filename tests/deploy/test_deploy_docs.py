"""docs/deploy.md is the configuration the tests run: the files under docs/deploy/ appear in it verbatim, HAProxy
accepts its configuration, systemd accepts the units, and every metric the example alert rules name is one a real
gateway exposes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from auditkit import store
from auditkit.capture import config as cfg
from auditkit.capture import keys
from auditkit.capture.journal import journal_source
from auditkit.capture.proxy import create_app
from convox_sim import rack as rack_mod
from convox_sim.servers import ServerThread
from helpers import ROOT

DEPLOY = ROOT / "docs" / "deploy"
DOC = ROOT / "docs" / "deploy.md"


@pytest.mark.parametrize("name", sorted(p.name for p in DEPLOY.iterdir()))
def test_each_deploy_file_is_in_deploy_md_verbatim(name):
    assert (DEPLOY / name).read_text() in DOC.read_text(), f"docs/deploy/{name} is not in docs/deploy.md as it is"


def test_haproxy_accepts_the_configuration(tmp_path):
    from test_haproxy import haproxy_binary  # skips, or fails with AUDITKIT_REQUIRE_HAPROXY=1, without haproxy

    env = {**os.environ, "AUDITKIT_LISTEN": "127.0.0.1:5443", "AUDITKIT_GW_A": "127.0.0.1:5444",
           "AUDITKIT_GW_B": "127.0.0.1:5445", "AUDITKIT_HAPROXY_SOCKET": str(tmp_path / "admin.sock")}
    checked = subprocess.run([haproxy_binary(), "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True,
                             text=True, env=env)
    assert checked.returncode == 0 and "Configuration file is valid" in checked.stdout + checked.stderr, checked


def test_systemd_accepts_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    auditkit = Path(sys.executable).with_name("auditkit")
    units = []
    for unit in ("auditkit-gateway@.service", "auditkit-sync.service"):
        text = (DEPLOY / unit).read_text().replace("/opt/auditkit/bin/auditkit", str(auditkit))
        target = tmp_path / unit.replace("@.", "@gw-a.")
        target.write_text(text)
        units.append(str(target))
    checked = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True,
                             env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr


def test_every_metric_the_alert_rules_name_is_exposed_by_a_gateway(tmp_path):
    rules = yaml.safe_load((DEPLOY / "prometheus-rules.yml").read_text())
    named = {m for group in rules["groups"] for rule in group["rules"]
             for m in re.findall(r"\bauditkit_\w+", rule["expr"])}
    assert len(named) >= 6
    journal = tmp_path / "gw.db"
    conn = store.open_db(journal)
    _, admin = keys.add(conn, "admin@example.com", kind="user", role="admin", source=journal_source(conn, "gw"))
    conn.close()
    with ServerThread(rack_mod.create_app("pw")) as rack:
        config = cfg.load(None, racks=[cfg.parse_rack_flag(f"acme/production=http://convox:pw@127.0.0.1:{rack.port}")],
                          journal=journal, http=True)
        with ServerThread(create_app(config)) as gateway:
            httpx.post(f"{gateway.url}/apps/web/services/web/restart", auth=("acme/production", admin))
            httpx.get(f"{gateway.url}/audit/v1/events", auth=("x", admin))
            exposed = httpx.get(f"{gateway.url}/metrics", auth=("x", admin)).text
    names = {line.split("{")[0].split(" ")[0] for line in exposed.splitlines() if line and not line.startswith("#")}
    assert named <= names, named - names
