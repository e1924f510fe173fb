"""The route catalog: what a request to a rack is recorded as, and that no secret ever reaches the record.

Requests are written as the convox CLI sends them (convox/convox sdk/ and stdsdk): form params, headers,
websocket upgrades. Every classification made here is also turned into a real events.Event, so a catalog output
that the event model would refuse (unknown verb, a float in details) fails here, not in the gateway.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkit.capture import catalog
from auditkit.model import events as ev
from auditkit.capture.catalog import ROUTES, Classification, classify, describe_outcome
from auditkit.capture.wire import USER_AGENT
from helpers import ROOT

HMAC_KEY = b"test-gateway-secret-0123456789ab"
DOC = ROOT / "docs" / "routes.md"

# One distinctive sample per path var, so a description can be searched for it.
SAMPLES = {
    "app": "billing", "name": "nm-ledger", "id": "ID4711", "pid": "web-5f7d9-x2k4q", "key": "tmp/0a1b2c.tgz",
    "service": "worker", "port": "8443", "host": "pg.internal", "server": "quay.io", "path": "acme/blobs/77",
    "process": "clock", "resource": "pg-main", "snapshot": "snap-42", "action": "app:create",
}


def as_event(c: Classification, status: int = 200) -> ev.Event:
    """The event the gateway would journal: proves the classification fits the event model."""
    return ev.Event(
        timestamp="2026-11-02T10:00:00.000Z", actor="alice@example.com", actor_type="user", rack="acme/prod",
        category=c.category, action=c.action, description=c.description, app=c.app, target=c.target,
        status=status, method=c.method, path=c.path, details=c.details)


def cls(method: str, path: str, **kw: Any) -> Classification | None:
    kw.setdefault("hmac_key", HMAC_KEY)
    c = classify(method, path, **kw)
    if c is not None:
        assert c.category in ev.CATEGORIES and c.action in ev.ACTIONS
        as_event(c)
    return c


def recorded(c: Classification) -> str:
    """Everything of a classification that could end up in the journal, as text."""
    return repr(c) + json.dumps(c.details, ensure_ascii=False) + json.dumps(c.values, ensure_ascii=False)


def sample_path(route: catalog.Route) -> str:
    path = route.path
    for var in route.vars:
        path = path.replace("{" + var + "}", urllib.parse.quote(SAMPLES[var], safe="/:"))
    return path


def request_of(route: catalog.Route) -> tuple[str, bool]:
    if route.method == "SOCKET":
        return "GET", True
    if route.method == "ANY":
        return "PUT", False
    return route.method, False


# --- the table itself -------------------------------------------------------------------------------------------

def test_table_uses_only_the_closed_lists_and_known_versions():
    audited = [r for r in ROUTES if r.audited]
    assert len(audited) >= 70
    for route in audited:
        assert route.category in ev.CATEGORIES, route
        assert route.action in ev.ACTIONS, route
    for route in ROUTES:
        assert set(route.versions) <= {"v3", "v2", "classic"}
        for var in route.vars:
            assert var in SAMPLES, f"add a sample for {{{var}}}"
        if route.app is not None:
            assert route.app in route.vars or route.app in ("name", "app"), route


def test_no_two_routes_share_method_and_path():
    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys))


def test_no_template_shows_a_secret_param():
    for route in ROUTES:
        names = set(re.findall(r"\{([^}]+)\}", route.description + (route.target or "")))
        names -= set(route.vars)  # path vars are not secrets ({key} of an object is its name)
        assert not {n for n in names if catalog.is_secret_name(n) or n in route.secrets or n == "env"}, route


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_matches_its_own_pattern_and_classifies_as_listed(route):
    method, websocket = request_of(route)
    path = sample_path(route)
    found = catalog.match(method, path, websocket)
    assert found is not None and found[0] is route
    assert found[1] == {var: SAMPLES[var] for var in route.vars}
    c = cls(method, path, websocket=websocket)
    if not route.audited:
        assert c is None
        return
    assert c is not None and c.route is route
    assert (c.category, c.action) == (route.category, route.action)
    assert c.session == route.session
    for var in route.vars:
        if "{" + var + "}" in route.description:
            assert SAMPLES[var] in c.description, (c.description, var)
    if route.app in route.vars:
        assert c.app == SAMPLES[route.app]
    assert "{" not in c.description


def test_docs_routes_md_is_generated_from_the_table():
    assert DOC.read_text(encoding="utf-8") == catalog.render_markdown(), \
        "docs/routes.md is stale: run python scripts/gen_routes_doc.py"
    text = DOC.read_text(encoding="utf-8")
    for route in ROUTES:
        assert f"`{route.path}`" in text


# --- what is recorded and what is not ---------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("GET", "/apps"), ("GET", "/apps/web"), ("GET", "/machines"), ("GET", "/racks"), ("GET", "/auth"),
    ("GET", "/apps/web/releases"), ("GET", "/apps/web/releases/RABC"), ("GET", "/apps/web/builds/B1"),
    ("GET", "/apps/web/processes/web-1"), ("GET", "/system"), ("GET", "/instances"), ("GET", "/registries"),
    ("HEAD", "/apps/web/objects/tmp/x.tgz"), ("OPTIONS", "/resources"), ("GET", "/v2/"),
    ("GET", "/v2/web/manifests/latest"), ("HEAD", "/v2/web/blobs/sha256:ab"), ("GET", "/apps/web/configs/x"),
])
def test_reads_are_not_recorded(method, path):
    assert cls(method, path) is None


@pytest.mark.parametrize("path", ["/apps/web/logs", "/apps/web/services/web/logs", "/system/logs",
                                  "/apps/web/processes/web-1/logs"])
def test_log_streams_are_passed_through(path):
    assert cls("GET", path, websocket=True) is None


@pytest.mark.parametrize("method,path,websocket,category,action,needle", [
    ("GET", "/apps/web/builds/BXYZ/logs", True, "Builds", "accessed", "Accessed logs of build BXYZ of app web"),
    ("GET", "/apps/web/processes/web-1/exec", True, "Processes", "executed", "in process web-1 of app web"),
    ("GET", "/instances/i-0abc/shell", True, "Infrastructure", "accessed", "Opened SSH session on instance i-0abc"),
    ("GET", "/instances/i-0abc/ssh", True, "Infrastructure", "accessed", "Opened SSH session on instance i-0abc"),
    ("GET", "/proxy/pg.internal/5432", True, "Infrastructure", "accessed", "Opened tunnel to pg.internal:5432"),
    ("GET", "/apps/web/resources/db/console", True, "Resources", "accessed", "Opened console on resource db"),
    ("GET", "/apps/web/resources/db/data", False, "Resources", "exported", "Exported data of resource db"),
    ("GET", "/apps/web/builds/B1.tgz", False, "Builds", "exported", "Exported build B1 of app web"),
    ("GET", "/apps/web/processes/web-1/files?file=/etc/passwd", False, "Processes", "downloaded",
     "Downloaded /etc/passwd from process web-1"),
    ("GET", "/apps/web/processes/clock/run", True, "Processes", "executed", "one-off clock process of app web"),
])
def test_audited_reads_and_websockets_are_recorded(method, path, websocket, category, action, needle):
    c = cls(method, path, websocket=websocket, headers={"Command": "bash"})
    assert c is not None
    assert (c.category, c.action) == (category, action)
    assert needle in c.description


def test_interactive_sockets_are_sessions_and_the_rest_are_not():
    assert cls("GET", "/apps/web/processes/web-1/exec", websocket=True).session
    assert cls("GET", "/instances/i-1/shell", websocket=True).session
    assert cls("GET", "/apps/web/resources/db/console", websocket=True).session
    assert cls("GET", "/apps/web/processes/web/run", websocket=True).session
    assert not cls("GET", "/proxy/h/1", websocket=True).session
    assert not cls("GET", "/apps/web/builds/B1/logs", websocket=True).session


@pytest.mark.parametrize("method,action", [("POST", "updated"), ("PUT", "updated"), ("PATCH", "updated"),
                                           ("DELETE", "deleted")])
def test_unknown_writes_are_recorded_as_other_with_method_and_path(method, action):
    c = cls(method, "/apps/web/balancers/web?dry=1", params={"weight": "10", "api_token": "tok-s3cr3t-value"})
    assert (c.category, c.action) == ("Other", action)
    assert c.description == f"Unknown write {method} /apps/web/balancers/web"
    assert c.details["method"] == method and c.details["path"] == "/apps/web/balancers/web"
    assert c.details["params"] == ["api_token", "dry", "weight"]
    assert c.app == "web" and c.route is None
    assert "tok-s3cr3t-value" not in recorded(c) and "10" not in json.dumps(c.details)


def test_unknown_write_outside_apps_and_unknown_websocket():
    c = cls("POST", "/foo/bar")
    assert (c.category, c.action, c.description, c.app) == ("Other", "updated", "Unknown write POST /foo/bar", None)
    w = cls("GET", "/apps/web/debug", websocket=True)
    assert (w.category, w.action) == ("Other", "accessed") and "/apps/web/debug" in w.description


# --- matching ---------------------------------------------------------------------------------------------------

def test_most_specific_route_wins():
    assert catalog.match("POST", "/apps/web/builds/import", False)[0].sdk == "BuildImport"
    assert catalog.match("POST", "/apps/web/builds/B1/image", False)[0].sdk == "BuildImportImage"
    assert catalog.match("PUT", "/apps/web/builds/B1", False)[0].sdk == "BuildUpdate"
    assert catalog.match("GET", "/apps/web/builds/B1.tgz", False)[0].sdk == "BuildExport"
    assert catalog.match("GET", "/apps/web/builds/B1", False) is None
    assert catalog.match("POST", "/certificates/generate", False)[0].sdk == "CertificateGenerate"
    assert catalog.match("POST", "/instances/keyroll", False)[0].sdk == "InstanceKeyroll"
    assert catalog.match("DELETE", "/instances/keyroll", False)[0].sdk == "InstanceTerminate"
    # GET on the registry proxy is a pull (passed through); a PUT is a push
    assert catalog.match("GET", "/v2/web/manifests/1", False)[0].audited is False
    assert catalog.match("PUT", "/v2/web/manifests/1", False)[0].method == "ANY"


def test_path_vars_are_taken_from_the_decoded_path_as_they_are_and_greedy_vars_keep_slashes():
    # The gateway decodes the path once (capture/canonical.py); match() must not decode it a second time.
    route, found = catalog.match("POST", "/apps/my app/objects/tmp/a+b%41.tgz?x=1", False)
    assert route.sdk == "ObjectStore" and found == {"app": "my app", "key": "tmp/a+b%41.tgz"}
    route, found = catalog.match("DELETE", "/registries/registry.example.com:5000", False)
    assert route.sdk == "RegistryRemove" and found == {"server": "registry.example.com:5000"}
    assert catalog.match("GET", "/apps/web/processes/web-1/exec", False) is None  # exec is only a websocket


# --- wire parsing -----------------------------------------------------------------------------------------------

def test_env_changes_added_changed_removed_and_hmac():
    old = {"A": "1", "B": "2", "C": "3"}
    new = {"A": "1", "B": "two", "D": "4"}
    assert catalog.env_changes(old, new, HMAC_KEY) == {
        "added": ["D"], "changed": ["B"], "removed": ["C"],
        "hmac": {"B": ev.value_hmac(HMAC_KEY, "two"), "D": ev.value_hmac(HMAC_KEY, "4")},
    }
    assert catalog.env_changes(None, new, HMAC_KEY) == {
        "set": ["A", "B", "D"], "previous": "unknown",
        "hmac": {k: ev.value_hmac(HMAC_KEY, v) for k, v in new.items()},
    }


def test_secret_looking_names():
    for name in ("password", "src-creds-pass", "Private-Key", "api_key", "X-Auth-Token", "dbPassword",
                 "client_secret", "AWS_CREDENTIALS", "githubtoken", "key", "private"):
        assert catalog.is_secret_name(name), name
    for name in ("name", "count", "keys", "monkey", "server", "username", "src-creds-user", "description",
                 "durationInHour", "Public", "passenger", "tokenizer", "url", "manifest"):
        assert not catalog.is_secret_name(name), name


# --- ReleaseCreate and the environment --------------------------------------------------------------------------

ENV_OLD = {"DATABASE_URL": "postgres://app:Wr0ngHorse@db:5432/app", "SENTRY_DSN": "https://k3y@sentry.io/1",
           "WORKERS": "4"}
ENV_NEW = {"DATABASE_URL": "postgres://app:C0rrectHorseBattery@db:5432/app", "WORKERS": "4",
           "STRIPE_KEY": "sk_live_51HxQ2bRealLookingKey"}


def env_text(env: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(env.items()))


def test_release_create_with_only_env_is_an_environment_update():
    c = cls("POST", "/apps/web/releases", params={"env": env_text(ENV_NEW), "parent-release": "RPREV"},
            previous_env=ENV_OLD)
    assert (c.category, c.action) == ("Environment", "updated")
    assert c.description == "Updated environment of app web (DATABASE_URL, SENTRY_DSN, STRIPE_KEY)"
    assert c.details["added"] == ["STRIPE_KEY"]
    assert c.details["changed"] == ["DATABASE_URL"]
    assert c.details["removed"] == ["SENTRY_DSN"]
    assert c.details["hmac"] == {k: ev.value_hmac(HMAC_KEY, ENV_NEW[k]) for k in ("DATABASE_URL", "STRIPE_KEY")}
    assert c.details["parent-release"] == "RPREV"
    text = recorded(c)
    for value in list(ENV_NEW.values()) + list(ENV_OLD.values()):
        if value != "4":
            assert value not in text
    done = describe_outcome(c, 200, {"id": "RNEW1", "build": "B1"})
    assert done.description.endswith("as release RNEW1") and done.target == "RNEW1"
    assert done.details["release"] == "RNEW1"


def test_release_create_with_build_is_a_release():
    c = cls("POST", "/apps/web/releases", params={"build": "BOLD", "env": env_text(ENV_NEW)}, previous_env=ENV_OLD)
    assert (c.category, c.action) == ("Releases", "created")
    assert c.description == "Created release of app web from build BOLD"
    assert c.details["build"] == "BOLD" and c.details["env"]["changed"] == ["DATABASE_URL"]
    assert describe_outcome(c, 200, {"id": "RROLL"}).description == \
        "Created release RROLL of app web from build BOLD"
    assert ENV_NEW["STRIPE_KEY"] not in recorded(c)


def test_env_set_with_unknown_previous_env_lists_every_key_as_set():
    c = cls("POST", "/apps/web/releases", params={"env": env_text(ENV_NEW)})
    assert c.details["previous"] == "unknown" and c.details["set"] == sorted(ENV_NEW)
    assert "DATABASE_URL" in c.description
    assert ENV_NEW["DATABASE_URL"] not in recorded(c)


def test_classic_environment_routes():
    c = cls("POST", "/apps/web/environment", body=env_text(ENV_NEW).encode(), previous_env=ENV_OLD)
    assert (c.category, c.action, c.details["added"]) == ("Environment", "updated", ["STRIPE_KEY"])
    done = describe_outcome(c, 200, None, response_headers={"Release-Id": "RCL1"})
    assert done.description.endswith("as release RCL1") and done.target == "RCL1"
    assert ENV_NEW["STRIPE_KEY"] not in recorded(done)
    u = cls("DELETE", "/apps/web/environment/SENTRY_DSN")
    assert u.details["removed"] == ["SENTRY_DSN"] and "SENTRY_DSN" in u.description


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True),
                       st.text(alphabet="qzxjQZXJ0987#@!% ", min_size=10, max_size=40), max_size=8),
       st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True),
                       st.text(alphabet="qzxjQZXJ0987#@!% ", min_size=10, max_size=40), max_size=8))
def test_no_env_value_is_ever_recorded(old, new):
    new = {k: v for k, v in new.items() if v.strip() == v}  # the rack keeps values as they are; keep them exact
    c = cls("POST", "/apps/web/releases", params={"env": env_text(new)}, previous_env=old)
    text = recorded(describe_outcome(c, 422, {"error": "bad env: " + " ".join(new.values())},
                                     params={"env": env_text(new)}))
    for value in new.values():
        assert value not in text
    assert set(c.details["added"]) == set(new) - set(old)
    assert set(c.details["removed"]) == set(old) - set(new)


# --- secrets on other routes ------------------------------------------------------------------------------------

SECRET = "hunter2-Sup3rS3cret!"


@pytest.mark.parametrize("method,path,params,headers,websocket", [
    ("POST", "/registries", {"server": "quay.io", "username": "bot", "password": SECRET}, {}, False),
    ("POST", "/certificates", {"pub": "-----BEGIN CERTIFICATE-----", "key": SECRET, "chain": ""}, {}, False),
    ("POST", "/certificates", {"public": "-----BEGIN CERTIFICATE-----", "private": SECRET}, {}, False),
    ("POST", "/apps/web/builds/B1/image", {"image": "nginx:1", "src-creds-user": "u", "src-creds-pass": SECRET},
     {}, False),
    ("GET", "/instances/i-1/shell", {}, {"Private-Key": SECRET, "Command": "uptime"}, True),
    ("PUT", "/apps/web", {"parameters": urllib.parse.urlencode({"Password": SECRET})}, {}, False),
    ("PUT", "/system", {"parameters": urllib.parse.urlencode({"DbPassword": SECRET, "NodeType": "t3"})}, {}, False),
    ("POST", "/apps/web/services/web/processes", {},
     {"Command": "rake db:migrate", "Environment": urllib.parse.urlencode({"TOKEN": SECRET, "X": "1"})}, False),
    ("PUT", "/apps/web/configs/cli-env-mask", {"value": SECRET}, {}, False),
    ("POST", "/apps/web/builds", {"url": "object://web/tmp/a.tgz", "build-args": f"NPM_TOKEN={SECRET}"}, {}, False),
    ("POST", "/resources", {"kind": "postgres", "name": "db",
                            "parameters": urllib.parse.urlencode({"password": SECRET})}, {}, False),
    ("POST", "/resources", {"type": "postgres", "name": "db", "MasterPassword": SECRET}, {}, False),
    ("POST", "/apps/rack1/parameters", {"Password": SECRET, "Foo": "bar"}, {}, False),
    ("POST", "/apps/web/releases/R1/promote", {"force": "true", "api_key": SECRET}, {}, False),
    ("PUT", "/apps/web/builds/B1", {"manifest": f"environment:\n  - SECRET={SECRET}", "release": "R1"}, {}, False),
])
def test_secrets_never_appear_in_the_classification(method, path, params, headers, websocket):
    headers = {"Authorization": "Basic " + SECRET, "Cookie": SECRET, "User-Agent": USER_AGENT, **headers}
    c = cls(method, path, params=params, headers=headers, websocket=websocket)
    assert c is not None and c.category != "Other"
    assert SECRET not in recorded(c)
    assert "authorization" not in c.details and "cookie" not in c.details and "private-key" not in c.details
    failed = describe_outcome(c, 400, {"error": f"invalid value {SECRET!r}"}, params=params, headers=headers)
    assert SECRET not in recorded(failed) and "[redacted]" in failed.details["error"]
    withheld = describe_outcome(c, 400, {"error": f"invalid value {SECRET!r}"})
    assert SECRET not in recorded(withheld)


def test_response_secrets_are_never_read():
    keyroll = cls("POST", "/instances/keyroll")
    done = describe_outcome(keyroll, 200, {"name": "rack-key", "private-key": "-----BEGIN RSA PRIVATE KEY-----X"})
    assert "PRIVATE KEY" not in recorded(done) and done.description == "Rotated instance SSH key"
    token = cls("POST", "/system/jwt/token", params={"role": "rw", "durationInHour": "8"})
    done = describe_outcome(token, 200, {"token": "eyJhbGciOiJIUzI1NiJ9.payload.sig"})
    assert "eyJhbGciOiJIUzI1NiJ9" not in recorded(done)
    assert done.description == "Issued rw rack access token valid 8h"


def test_request_cannot_forge_response_fields():
    c = cls("POST", "/apps/web/builds", params={"url": "object://web/tmp/a.tgz", "description": "deploy",
                                                 "id": "FORGED"})
    assert "FORGED" not in c.description and c.target is None
    done = describe_outcome(c, 200, {"id": "BREAL", "status": "created"})
    assert done.description == "Created build BREAL of app web (deploy)" and done.target == "BREAL"


# --- convox run and exec ----------------------------------------------------------------------------------------

def test_attached_run_links_the_start_to_the_exec_that_carries_the_real_command():
    start = cls("POST", "/apps/web/services/web/processes", headers={"Command": "sleep 3600", "Release": "R1"})
    assert (start.category, start.action) == ("Processes", "started")
    assert start.description == "Started one-off process of web in app web: `sleep 3600`"
    start = describe_outcome(start, 200, {"id": "web-run-x7k2p", "app": "web", "command": "sleep 3600"})
    assert start.details["pid"] == "web-run-x7k2p" and start.target == "web-run-x7k2p"
    exec_ = cls("GET", "/apps/web/processes/web-run-x7k2p/exec", websocket=True,
                headers={"Command": "bin/rails console", "Entrypoint": "true", "Tty": "true"})
    assert exec_.description == "Executed `bin/rails console` in process web-run-x7k2p of app web"
    assert exec_.details["command"] == "bin/rails console" and exec_.details["entrypoint"] == "true"
    assert exec_.link == start.link == "process:web/web-run-x7k2p"
    ended = describe_outcome(exec_, 101, exit_code=130)
    assert ended.description.endswith("(exit 130)") and ended.details["exit_code"] == 130
    stop = cls("DELETE", "/apps/web/processes/web-run-x7k2p")
    assert (stop.action, stop.link) == ("stopped", start.link)


def test_detached_run_records_the_real_command():
    c = cls("POST", "/apps/web/services/worker/processes", headers={"Command": "bin/backfill --all"})
    assert "`bin/backfill --all`" in c.description and c.details["command"] == "bin/backfill --all"
    classic = describe_outcome(cls("POST", "/apps/web/processes/worker/run", params={"command": "bin/x"}),
                               200, {"pid": "p-123"})
    assert classic.description == "Started one-off process of worker in app web: `bin/x`"
    assert classic.details["pid"] == "p-123"


# --- §7: what the CLI sends, end to end -------------------------------------------------------------------------

def form(**fields: str) -> dict[str, str]:
    return {k.replace("_", "-"): v for k, v in fields.items()}


CLI_CASES = [
    # (CLI command, method, path, params, headers, websocket, response, category, action, description)
    ("env set K=V", "POST", "/apps/web/releases", {"env": "A=1\nK=V"}, {}, False, {"id": "R2"},
     "Environment", "updated", "Updated environment of app web (K) as release R2"),
    ("env set --promote", "POST", "/apps/web/releases/R2/promote", {}, {}, False, None,
     "Releases", "promoted", "Promoted release R2 of app web"),
    ("env unset A", "POST", "/apps/web/releases", {"env": "K=old"}, {}, False, {"id": "R3"},
     "Environment", "updated", "Updated environment of app web (A) as release R3"),
    ("build: source upload", "POST", "/apps/web/objects/tmp/5e1f.tgz", {}, {}, False, {"url": "object://x"},
     "Builds", "uploaded", "Uploaded source object tmp/5e1f.tgz for app web"),
    ("build", "POST", "/apps/web/builds", form(url="object://web/tmp/5e1f.tgz", description="v42"), {}, False,
     {"id": "BQX1"}, "Builds", "created", "Created build BQX1 of app web (v42)"),
    ("build: logs", "GET", "/apps/web/builds/BQX1/logs", {}, {}, True, None,
     "Builds", "accessed", "Accessed logs of build BQX1 of app web"),
    ("deploy: promote", "POST", "/apps/web/releases/RQX1/promote", {}, {}, False, None,
     "Releases", "promoted", "Promoted release RQX1 of app web"),
    ("scale web --count 3 --cpu 256 --memory 512", "PUT", "/apps/web/services/web",
     form(count="3", cpu="256", memory="512"), {}, False, None,
     "Processes", "scaled", "Scaled service web of app web (count=3 cpu=256 memory=512)"),
    ("classic scale", "POST", "/apps/web/formation/worker", form(count="2"), {}, False, None,
     "Processes", "scaled", "Scaled service worker of app web (count=2)"),
    ("rack params set", "PUT", "/system", {"parameters": "NodeType=t3.large&Private=Yes"}, {}, False, None,
     "Infrastructure", "updated", "Updated rack parameters NodeType, Private"),
    ("rack update 3.24.9", "PUT", "/system", form(version="3.24.9", force="false"), {}, False, None,
     "Infrastructure", "updated", "Updated rack to version 3.24.9"),
    ("rack scale", "PUT", "/system", form(count="4", type="t3.xlarge"), {}, False, None,
     "Infrastructure", "scaled", "Scaled rack to 4×t3.xlarge"),
    ("classic rack params set", "POST", "/apps/acme-rack/parameters", {"NodeType": "t3.large"}, {}, False, None,
     "Applications", "updated", "Updated parameters NodeType of app acme-rack"),
    ("certs import", "POST", "/certificates", form(pub="PEM", key="KEY", chain="CHAIN"), {}, False,
     {"id": "cert-1a2b", "domain": "shop.example.com", "arn": "arn:x"},
     "Security", "created", "Imported SSL certificate cert-1a2b (shop.example.com)"),
    ("certs generate", "POST", "/certificates/generate", form(domains="a.example.com,b.example.com"), {}, False,
     {"id": "cert-9"}, "Security", "created", "Generated certificate cert-9 for a.example.com,b.example.com"),
    ("ssl update web:443 cert-1a2b", "PUT", "/apps/web/ssl/web/443", form(id="cert-1a2b"), {}, False, None,
     "Security", "updated", "Applied certificate cert-1a2b to web:443 of app web"),
    ("registries add", "POST", "/registries", form(server="quay.io", username="bot", password="pw-1"), {}, False,
     {"server": "quay.io"}, "Registries", "added", "Added registry quay.io (user bot)"),
    ("registries remove", "DELETE", "/registries/quay.io", {}, {}, False, None,
     "Registries", "removed", "Removed registry quay.io"),
    ("classic registries remove", "DELETE", "/registries?server=quay.io", {}, {}, False, None,
     "Registries", "removed", "Removed registry quay.io"),
    ("instances keyroll", "POST", "/instances/keyroll", {}, {}, False, None,
     "Security", "rotated", "Rotated instance SSH key"),
    ("instances terminate", "DELETE", "/instances/i-0abc123", {}, {}, False, None,
     "Infrastructure", "terminated", "Terminated instance i-0abc123"),
    ("instances ssh", "GET", "/instances/i-0abc123/shell", {}, {"Private-Key": "a2V5", "Height": "40"}, True,
     None, "Infrastructure", "accessed", "Opened SSH session on instance i-0abc123 (interactive)"),
    ("apps create", "POST", "/apps", form(name="shop", generation="2"), {}, False, {"name": "shop"},
     "Applications", "created", "Created app shop"),
    ("apps delete", "DELETE", "/apps/shop", {}, {}, False, None, "Applications", "deleted", "Deleted app shop"),
    ("apps lock", "PUT", "/apps/shop", form(lock="true"), {}, False, None,
     "Applications", "locked", "Locked app shop"),
    ("apps params set", "PUT", "/apps/shop", {"parameters": "Internal=Yes"}, {}, False, None,
     "Applications", "updated", "Updated parameters Internal of app shop"),
    ("rack resources link", "POST", "/resources/pg-main/links", form(app="web"), {}, False, None,
     "Resources", "linked", "Linked resource pg-main to app web"),
    ("proxy", "GET", "/proxy/10.0.0.5/5432", {}, {}, True, None,
     "Infrastructure", "accessed", "Opened tunnel to 10.0.0.5:5432"),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_requests(case):
    _, method, path, params, headers, websocket, response, category, action, description = case
    c = cls(method, path, params=params, headers=headers, websocket=websocket, previous_env={"A": "1", "K": "old"})
    c = describe_outcome(c, 101 if websocket else 200, response)
    assert (c.category, c.action, c.description) == (category, action, description)
    as_event(c)


def test_cli_case_secrets_stay_out():
    c = cls("POST", "/registries", params=form(server="quay.io", username="bot", password="pw-verysecret"))
    assert c.details == {"server": "quay.io", "username": "bot",
                         "params_hmac": {"password": ev.value_hmac(HMAC_KEY, "pw-verysecret")}}
    s = cls("GET", "/instances/i-1/shell", websocket=True, headers={"Private-Key": "a2V5LXNlY3JldA==",
                                                                    "Command": "df -h"})
    assert s.details == {"command": "df -h"} and s.description.endswith("(df -h)")


def test_classification_is_plain_data():
    c = cls("PUT", "/apps/web/services/web", params=form(count="2"))
    assert dataclasses.asdict(c)["details"] == {"count": "2"}
    json.dumps(c.details)


# --- recording by allowlist --------------------------------------------------------------------------------------

def test_only_the_params_a_route_names_are_recorded_in_clear():
    assert catalog.clear_params(catalog.match("POST", "/registries")[0]) == {"server", "username"}
    assert "url" in catalog.clear_params(catalog.match("POST", "/apps/web/builds")[0])
    assert "build-args" not in catalog.clear_params(catalog.match("POST", "/apps/web/builds")[0])
    for route in ROUTES:
        clear = catalog.clear_params(route)
        assert not {n for n in clear if catalog.is_secret_name(n) or n in route.secrets}, route
        assert not clear & set(route.vars), route
    c = cls("POST", "/apps", params={"name": "shop", "generation": "3", "region": "eu", "x[]": "1"})
    assert c.details == {"name": "shop", "generation": "3",
                         "params_hmac": {"region": ev.value_hmac(HMAC_KEY, "eu"), "x[]": ev.value_hmac(HMAC_KEY, "1")}}


@pytest.mark.parametrize("text,masked", [
    ("https://user:pw@git.example.com/x.git", "https://user:***@git.example.com/x.git"),
    ("git+ssh://tok@host/x", "git+ssh://***@host/x"),
    ("see postgres://u:p%40ss@db:5432/app and redis://:pw@cache", "see postgres://u:***@db:5432/app and "
                                                                   "redis://:***@cache"),
    ("user@example.com", "user@example.com"),
    ("https://example.com/a@b", "https://***@b"),  # an @ after a / may end a password holding a /: masked
    ("https://user:pa/ss?w#rd @git.example/x.tgz", "https://user:***@git.example/x.tgz"),
    ("https://user:pw@host/@scope/pkg", "https://user:***@scope/pkg"),
])
def test_url_userinfo_is_masked_wherever_a_value_is_recorded(text, masked):
    assert catalog.mask_userinfo(text) == masked
    c = cls("POST", "/apps/web/builds", params={"url": text, "description": text})
    assert c.details["url"] == masked and masked.split(" ")[0][:30] in c.description


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([r for r in ROUTES if r.audited and r.method not in ("SOCKET",)]),
       st.dictionaries(st.from_regex(r"[a-zA-Z][a-zA-Z0-9_.\-\[\]]{0,20}", fullmatch=True),
                       st.just("SeCrEt-Value-0x5eed"), max_size=5))
def test_an_undeclared_param_never_reaches_the_record_on_any_route(route, extra):
    clear = catalog.clear_params(route) | set(route.digests)
    params = {k: v for k, v in extra.items() if k not in clear}
    method, websocket = request_of(route)
    c = cls(method, sample_path(route), params=params, websocket=websocket)
    assert "SeCrEt-Value-0x5eed" not in recorded(c)
    if params:  # the rack echoing a value of the request: scrubbed from the recorded error
        done = describe_outcome(c, 400, {"error": "echo SeCrEt-Value-0x5eed"}, params=params)
        assert "SeCrEt-Value-0x5eed" not in recorded(done)


def test_no_param_recorded_in_clear_can_take_the_place_of_what_the_recorder_writes():
    """The recorder writes keys of its own beside a request's params in details: a param of the same name, recorded
    in clear, would overwrite them (or be overwritten). None may exist on any route."""
    own = {"params_hmac", "unnamed_params", "file_parts", "map_forms", "body", "error", "reason", "method", "path", "websocket",
           "run_event", "duration_ms", "exit_code", "recording_sha256", "recording_bytes", "recording_truncated",
           "recording_masked", "masking_rule", "masked_keys", "recording_withheld"}
    for route in ROUTES:
        clear = catalog.clear_params(route) | {m for m in route.maps} | {f"{m}_hmac" for m in route.maps}
        assert not clear & own, (route.sdk, clear & own)
        if route.special == "run":
            assert "pid" not in clear, route.sdk
        if route.special in catalog.ENV_SPECIALS:
            assert not clear & {"release", "added", "changed", "removed", "set", "hmac", "previous", "note"}, route


@pytest.mark.parametrize("name,key", [("parameters[DbPassword]", "DbPassword"), ("parameters.DbPassword", "DbPassword"),
                                      ("Parameters[Db][Password]", "Db[Password]")])
def test_bracket_and_dotted_forms_of_a_map_are_keys_of_that_map(name, key):
    c = cls("PUT", "/system", params={name: "pw-form-1", "parameters": "NodeType=t3.large"})
    assert c.details["parameters"] == sorted(["NodeType", key]) and c.details["map_forms"] == [name]
    assert c.details["parameters_hmac"][key] == ev.value_hmac(HMAC_KEY, "pw-form-1")
    assert "pw-form-1" not in recorded(c) and key in c.description
    # on a route that takes no map they are params like any other: by name and HMAC
    other = cls("POST", "/apps", params={"name": "x", name: "pw-form-1"})
    assert other.details["params_hmac"][name] == ev.value_hmac(HMAC_KEY, "pw-form-1")
