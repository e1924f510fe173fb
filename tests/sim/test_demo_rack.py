"""The simulated rack (convox_sim/rack.py) speaks the Convox v3 Rack API as convox/convox's pkg/api serves it:
Basic auth and its refusals, Request-Id on every response, stdapi's error shapes, r.Form params (doubly encoded maps),
header options, streamed raw bodies, stateful apps/builds/releases/services/processes/instances/certificates/
registries/system, and the websocket framing of exec, shell, console, logs and proxy sessions.

Everything runs in-process with Starlette's TestClient, except one test that puts the rack behind uvicorn on a real
socket and talks to it with the `websockets` client, to see the frames as the Convox CLI would.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import threading
import time
import warnings
from urllib.parse import unquote, urlencode

import pytest

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its TestClient; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from convox_sim import shell as sh
from auditkit.capture.wire import EXIT_MARKER, basic_authorization, decode_map, encode_map
from convox_sim.rack import create_app
from helpers import CERT, free_port

PASSWORD = "s3cret-rack-password"
NOW = dt.datetime(2026, 11, 2, 9, 30, 0, tzinfo=dt.timezone.utc)
AUTH = basic_authorization("convox", PASSWORD)

# Not a usable key: the rack only checks it looks like one, and must never send it back.
KEY_MARKER = "QUl0S0VZLW5ldmVyLWVjaG8tbWU"
KEY = f"-----BEGIN PRIVATE KEY-----\n{KEY_MARKER}\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def app():
    return create_app(PASSWORD, rack_name="acme/production", seed=7, clock=lambda: NOW)


@pytest.fixture
def client(app):
    with TestClient(app, headers={"Authorization": AUTH, "Accept": "*/*"}) as c:
        yield c


def anon(app) -> TestClient:
    return TestClient(app)


def collect(ws) -> list[dict]:
    """Every message the rack sends until its empty BINARY frame (EOF), and that frame."""
    messages = []
    while True:
        m = ws.receive()
        messages.append(m)
        if m["type"] == "websocket.close":
            raise AssertionError(f"closed before the EOF frame: {messages}")
        if m.get("bytes") is not None:
            return messages


def texts(messages: list[dict]) -> str:
    return "".join(m["text"] for m in messages if m.get("text") is not None)


def a_pid(client, app_name="web", service="web") -> str:
    procs = client.get(f"/apps/{app_name}/processes", params={"service": service}).json()
    return procs[0]["id"]


# --- authentication, Request-Id, errors -------------------------------------------------------------------------------

def test_auth_refusals_have_the_racks_shapes(app):
    c = anon(app)
    r = c.get("/apps")
    assert r.status_code == 401
    assert r.text == "invalid authentication\n"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["www-authenticate"] == 'Basic realm="convox"'

    bad = basic_authorization("convox", "wrong")
    r = c.get("/apps", headers={"Authorization": bad, "Accept": "application/json"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/json"
    assert r.text == '{"error":"invalid authentication"}\n'

    jwt = basic_authorization("jwt", PASSWORD)
    r = c.get("/apps", headers={"Authorization": jwt, "Accept": "application/json"})
    assert r.status_code == 401
    assert r.json() == {"error": "invalid authentication: token contains an invalid number of segments"}

    # any username works with the rack password; /auth is the login check
    good = basic_authorization("whoever", PASSWORD)
    assert c.get("/apps", headers={"Authorization": good}).status_code == 200
    r = c.get("/auth", headers={"Authorization": good})
    assert (r.status_code, r.text) == (200, "ok\n")
    # refused requests are recorded without an actor, and nothing changed
    assert [q.actor for q in app.state.requests[:3]] == [None, None, None]


def test_every_response_carries_a_request_id(client):
    responses = [
        client.get("/apps"),
        client.get("/apps/nope"),
        client.post("/apps/web/releases/RNOPE/promote"),
        client.get("/machines"),
        client.post("/apps/web"),  # a route with another method: 405
        # a SOCKET route with another method: 404, as gorilla/mux answers it (its Upgrade header matcher fails too)
        client.post("/apps/web/logs"),
        anon(client.app).get("/system"),
    ]
    assert [r.status_code for r in responses] == [200, 404, 404, 404, 405, 404, 401]
    ids = [r.headers["request-id"] for r in responses]
    assert all(len(i) == 12 and i.isalnum() for i in ids)
    assert len(set(ids)) == len(ids)
    with client.websocket_connect("/apps/web/logs") as ws:
        collect(ws)
        assert any(k.lower() == b"request-id" for k, _ in ws.extra_headers)


def test_errors_are_json_when_asked_and_text_otherwise(client):
    r = client.get("/apps/nope", headers={"Accept": "application/json"})
    assert (r.status_code, r.json()) == (404, {"error": "app not found: nope"})
    r = client.get("/apps/nope")  # the CLI sends Accept: */*; stdapi then answers with http.Error
    assert (r.status_code, r.text) == (404, "app not found: nope\n")
    assert r.headers["x-content-type-options"] == "nosniff"
    for path, text in (("/apps/web/builds/BNOPE", "build not found: BNOPE"),
                       ("/apps/web/releases/RNOPE", "release not found: RNOPE"),
                       ("/apps/web/processes/web-nope-xxxxx", "process not found: web-nope-xxxxx")):
        r = client.get(path, headers={"Accept": "application/json"})
        assert (r.status_code, r.json()["error"]) == (404, text)


def test_unknown_routes_and_session_triggers_are_404(client):
    for path in ("/machines", "/racks"):
        r = client.get(path)
        assert (r.status_code, r.text) == (404, "404 page not found\n")
    r = client.put("/apps")
    assert r.status_code == 405


# --- apps, env, builds, releases ------------------------------------------------------------------------------------

def test_app_create_get_lock_delete(client):
    r = client.post("/apps", data={"name": "shop", "generation": "2"})
    assert r.status_code == 200
    app_json = r.json()
    assert list(app_json) == ["generation", "locked", "name", "release", "router", "status", "parameters"]
    # A v3 rack: generation 3 whatever the CLI's default `generation=2` says.
    assert (app_json["name"], app_json["generation"], app_json["locked"], app_json["status"]) == \
        ("shop", "3", False, "running")
    assert r.text.startswith('{\n  "generation": "3",')  # MarshalIndent, two spaces
    r = client.post("/apps", data={"name": "shop"}, headers={"Accept": "application/json"})
    assert (r.status_code, r.json()) == (409, {"error": "app already exists: shop"})
    assert client.get("/apps/shop").json()["name"] == "shop"
    assert "shop" in [a["name"] for a in client.get("/apps").json()]

    assert client.put("/apps/shop", data={"lock": "true"}).text == "ok\n"
    r = client.delete("/apps/shop", headers={"Accept": "application/json"})
    assert (r.status_code, r.json()) == (409, {"error": "app is locked: shop"})
    client.put("/apps/shop", data={"lock": "false", "parameters": encode_map({"BuildMem": "2048", "Nope": "x"})})
    assert client.get("/apps/shop").json()["parameters"] == {"BuildMem": "2048"}  # v3 skips unknown params
    assert client.delete("/apps/shop").text == "ok\n"
    assert client.get("/apps/shop").status_code == 404


def test_env_set_through_release_create_then_read_back(client):
    app_json = client.get("/apps/web").json()
    before = client.get(f"/apps/web/releases/{app_json['release']}").json()["env"]
    env = dict(line.split("=", 1) for line in before.splitlines())
    env["FEATURE_FLAGS"] = "checkout-v2"
    del env["LOG_LEVEL"]
    text = "\n".join(f"{k}={v}" for k, v in sorted(env.items()))

    r = client.post("/apps/web/releases", data={"env": text})
    assert r.status_code == 200
    release = r.json()
    assert list(release) == ["id", "app", "build", "env", "manifest", "description", "created"]
    assert release["id"].startswith("R") and len(release["id"]) == 11 and release["id"][1:].isupper()
    assert release["env"] == text
    assert release["description"] == "env add:FEATURE_FLAGS remove:LOG_LEVEL"
    assert release["build"] == client.get(f"/apps/web/releases/{app_json['release']}").json()["build"]
    assert release["created"] == "2026-11-02T09:30:00Z"

    listed = client.get("/apps/web/releases").json()
    assert listed[0]["id"] == release["id"] and listed[0]["env"] == text
    assert client.get(f"/apps/web/releases/{release['id']}").json()["env"] == text
    assert client.get("/apps/web").json()["release"] == app_json["release"]  # not promoted yet
    assert client.post(f"/apps/web/releases/{release['id']}/promote").text == "ok\n"
    assert client.get("/apps/web").json()["release"] == release["id"]


def test_build_create_makes_a_build_and_a_release_then_promote(client, app):
    chunks = [b"\x1f\x8b" + bytes(range(256)) * 64 for _ in range(40)]  # ~650 KB, streamed
    digest = hashlib.sha256(b"".join(chunks)).hexdigest()
    key = f"tmp/{digest}.tgz"
    r = client.post(f"/apps/web/objects/{key}", content=iter(chunks),
                    headers={"Content-Type": "application/octet-stream"})
    assert r.json() == {"url": f"object://web/{key}"}
    stored = app.state.rack.apps["web"].objects[key]
    assert (stored.size, stored.sha256, stored.content) == (sum(map(len, chunks)), digest, None)

    r = client.post("/apps/web/builds", data={"url": f"object://web/{key}", "description": "deploy 4f2a9c1",
                                              "manifest": "convox.yml"})
    build = r.json()
    assert list(build) == ["id", "app", "description", "entrypoint", "git-sha", "logs", "manifest", "process",
                           "release", "reason", "repository", "status", "started", "ended"]
    assert build["id"].startswith("B") and build["status"] == "created" and build["release"] == ""
    assert build["ended"] == "0001-01-01T00:00:00Z"

    done = client.get(f"/apps/web/builds/{build['id']}").json()
    assert done["status"] == "complete" and done["release"].startswith("R")
    release = client.get(f"/apps/web/releases/{done['release']}").json()
    assert (release["build"], release["description"]) == (build["id"], "deploy 4f2a9c1")
    assert client.get("/apps/web/builds").json()[0]["id"] == build["id"]

    assert client.post(f"/apps/web/releases/{done['release']}/promote").text == "ok\n"
    assert client.get("/apps/web").json()["release"] == done["release"]
    procs = client.get("/apps/web/processes").json()
    assert procs and {p["release"] for p in procs} == {done["release"]}

    with client.websocket_connect(f"/apps/web/builds/{build['id']}/logs") as ws:
        out = texts(collect(ws))
    assert f"Build: {build['id']}" in out and f"Release: {done['release']}" in out


def test_build_from_a_missing_object_fails(client):
    build = client.post("/apps/web/builds", data={"url": "object://web/tmp/missing.tgz"}).json()
    got = client.get(f"/apps/web/builds/{build['id']}").json()
    assert (got["status"], got["reason"]) == ("failed", "object not found: tmp/missing.tgz")


def test_scale_a_service(client):
    assert client.put("/apps/web/services/web", data={"count": "4", "cpu": "512", "memory": "1024"}).text == "ok\n"
    web = [s for s in client.get("/apps/web/services").json() if s["name"] == "web"][0]
    assert (web["count"], web["cpu"], web["memory"]) == (4, 512, 1024)
    assert len(client.get("/apps/web/processes", params={"service": "web"}).json()) == 4
    client.put("/apps/web/services/web", data={"count": "1"})
    assert len(client.get("/apps/web/processes", params={"service": "web"}).json()) == 1
    r = client.put("/apps/web/services/web", data={"count": "many"}, headers={"Accept": "application/json"})
    assert (r.status_code, r.json()["error"]) == (500, 'strconv.Atoi: parsing "many": invalid syntax')
    r = client.put("/apps/web/services/nope", data={"count": "1"}, headers={"Accept": "application/json"})
    assert (r.status_code, r.json()["error"]) == (404, "service not found: nope")


# --- processes and exec -----------------------------------------------------------------------------------------------

def test_convox_run_then_exec_on_that_process(client):
    r = client.post("/apps/web/services/web/processes", headers={"Command": "sleep 3600", "Height": "40",
                                                                  "Width": "120"})
    proc = r.json()
    assert list(proc) == ["id", "app", "command", "cpu", "host", "image", "instance", "memory", "name", "ports",
                          "release", "started", "status"]
    assert proc["command"] == "sleep 3600" and proc["name"] == "web" and proc["app"] == "web"
    pid = proc["id"]
    assert client.get(f"/apps/web/processes/{pid}").json()["status"] == "running"

    with client.websocket_connect(f"/apps/web/processes/{pid}/exec",
                                  headers={"Command": "bin/rails db:migrate", "Entrypoint": "true",
                                           "Height": "40", "Width": "120"}) as ws:
        messages = collect(ws)
    assert messages[-1] == {"type": "websocket.send", "bytes": b""}
    assert messages[-2] == {"type": "websocket.send", "text": f"{EXIT_MARKER}0\n"}
    assert "AddIndexToOrdersAccountId: migrated" in texts(messages[:-2])

    assert client.delete(f"/apps/web/processes/{pid}").text == "ok\n"
    assert client.get(f"/apps/web/processes/{pid}").status_code == 404


def test_non_interactive_exec_echo(client):
    pid = a_pid(client)
    with client.websocket_connect(f"/apps/web/processes/{pid}/exec", headers={"Command": "echo hi"}) as ws:
        messages = collect(ws)
    assert messages == [{"type": "websocket.send", "text": "hi\r\n"},
                        {"type": "websocket.send", "text": f"{EXIT_MARKER}0\n"},
                        {"type": "websocket.send", "bytes": b""}]
    with client.websocket_connect(f"/apps/web/processes/{pid}/exec",
                                  headers={"Command": "echo hi", "Tty": "false"}) as ws:
        assert texts(collect(ws)) == f"hi\n{EXIT_MARKER}0\n"
    with client.websocket_connect(f"/apps/web/processes/{pid}/exec", headers={"Command": "frobnicate"}) as ws:
        assert texts(collect(ws)) == f"bash: frobnicate: command not found\r\n{EXIT_MARKER}127\n"


def test_interactive_shell_session_framing(client, app):
    pid = a_pid(client)
    with client.websocket_connect(f"/apps/web/processes/{pid}/exec",
                                  headers={"Command": "bash", "Height": "24", "Width": "80"}) as ws:
        first = ws.receive()
        prompt = f"\x1b[32mapp@{pid}\x1b[0m:\x1b[34m/app\x1b[0m$ "
        assert first == {"type": "websocket.send", "text": prompt}
        for ch in "ls --color\r":  # one keystroke per frame, as a TTY sends them
            ws.send_text(ch)
        ws.send_text("exit 3\r")
        messages = collect(ws)
    assert [m["type"] for m in messages] == ["websocket.send"] * len(messages)
    assert messages[-1] == {"type": "websocket.send", "bytes": b""}
    assert messages[-2] == {"type": "websocket.send", "text": f"{EXIT_MARKER}3\n"}
    out = texts(messages[:-2])
    assert out.startswith("ls --color")  # echoed as typed
    assert "\x1b[01;34mapp\x1b[0m" in out and "\x1b[01;34mconfig\x1b[0m" in out and "convox.yml" in out
    assert "\r\n" in out and "\n" not in out.replace("\r\n", "")
    assert out.endswith(prompt + "exit 3\r\nexit\r\n")
    session = app.state.rack.sessions[-1]
    assert (session.kind, session.exit_code, session.command) == ("exec", 3, "bash")


def test_stdin_eof_ends_an_interactive_session(client):
    pid = a_pid(client)
    with client.websocket_connect(f"/apps/web/processes/{pid}/exec", headers={"Command": "bash"}) as ws:
        ws.receive()
        ws.send_text("false\r")
        ws.send_bytes(b"")  # the CLI's stdin EOF
        messages = collect(ws)
    assert texts(messages).endswith(f"exit\r\n{EXIT_MARKER}1\n")
    assert messages[-1]["bytes"] == b""


def test_exec_errors_arrive_as_error_frames(app, client):
    with client.websocket_connect("/apps/web/processes/web-nope-xxxxx/exec", headers={"Command": "ls"}) as ws:
        assert collect(ws) == [{"type": "websocket.send", "text": "ERROR: process not found: web-nope-xxxxx\n"},
                               {"type": "websocket.send", "bytes": b""}]
    c = anon(app)
    with c.websocket_connect("/apps/web/processes/web-nope-xxxxx/exec", headers={"Command": "ls"}) as ws:
        assert collect(ws) == [{"type": "websocket.send", "text": "ERROR: invalid authentication\n"},
                               {"type": "websocket.send", "bytes": b""}]
    assert app.state.requests[-1].method == "SOCKET" and app.state.requests[-1].actor is None


def test_exec_by_service_name_picks_a_running_process(client):
    with client.websocket_connect("/apps/web/processes/worker/exec", headers={"Command": "hostname"}) as ws:
        out = texts(collect(ws))
    assert out.startswith("worker-") and out.endswith(f"\r\n{EXIT_MARKER}0\n")


def test_rails_console_and_psql_in_an_exec(client):
    pid = a_pid(client)
    with client.websocket_connect(f"/apps/web/processes/{pid}/exec", headers={"Command": "bin/rails console"}) as ws:
        assert ws.receive()["text"] == "Loading production environment (Rails 7.1.3)\r\nirb(main):001:0> "
        ws.send_text("User.count\r")
        ws.send_text("exit\r")
        out = texts(collect(ws))
    assert "=> " in out and out.endswith(f"{EXIT_MARKER}0\n")
    with client.websocket_connect("/apps/web/resources/database/console", headers={"Height": "30"}) as ws:
        assert "psql (15.4" in ws.receive()["text"]
        ws.send_text("select count(*) from users;\r")
        ws.send_text("\\q\r")
        messages = collect(ws)
    assert "(1 row)" in texts(messages)
    assert EXIT_MARKER not in texts(messages)  # ResourceConsole ends without an exit code
    assert messages[-1]["bytes"] == b""


def test_instance_shell_and_proxy_and_logs(client):
    inst = client.get("/instances").json()[0]
    key = base64.b64encode(b"-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n").decode()
    with client.websocket_connect(f"/instances/{inst['id']}/shell",
                                  headers={"Command": "whoami", "Private-Key": key}) as ws:
        assert texts(collect(ws)) == f"ec2-user\r\n{EXIT_MARKER}0\n"
    with client.websocket_connect(f"/instances/{inst['id']}/shell", headers={"Private-Key": key}) as ws:
        assert ws.receive()["text"].startswith("[ec2-user@ip-")
        ws.send_text("exit\r")
        assert texts(collect(ws)).endswith(f"{EXIT_MARKER}0\n")

    with client.websocket_connect("/proxy/pg-main.internal/5432") as ws:
        ws.send_text("\x00\x00\x00\x08startup")
        assert ws.receive() == {"type": "websocket.send", "text": "\x00\x00\x00\x08startup"}
        ws.send_bytes(b"")
        assert collect(ws) == [{"type": "websocket.send", "bytes": b""}]

    for path in ("/apps/web/logs", "/system/logs", "/apps/web/services/worker/logs"):
        with client.websocket_connect(path, headers={"Since": "2m"}) as ws:
            messages = collect(ws)
        lines = [m["text"] for m in messages[:-1]]
        assert lines and all(line.endswith("\n") for line in lines)
        assert EXIT_MARKER not in "".join(lines)
    assert all(" service/worker/worker-" in line for line in lines)


# --- security, registries, instances, system --------------------------------------------------------------------------

def test_registries_add_and_remove_never_echo_the_password(client, app):
    r = client.post("/registries", data={"server": "ghcr.io", "username": "acme-bot", "password": "hunter2-pat"})
    assert r.json() == {"server": "ghcr.io", "username": "acme-bot"}
    listed = client.get("/registries")
    assert {"server": "ghcr.io", "username": "acme-bot"} in listed.json()
    assert "hunter2" not in r.text + listed.text
    assert client.delete("/registries/ghcr.io").text == "ok\n"
    r = client.delete("/registries/ghcr.io", headers={"Accept": "application/json"})
    assert (r.status_code, r.json()) == (404, {"error": "registry not found: ghcr.io"})
    received = [q for q in app.state.requests if q.path == "/registries" and q.method == "POST"]
    assert received[0].params["password"] == "hunter2-pat"  # what the rack got; only the gateway redacts


def test_certs_import_never_echoes_the_key(client):
    r = client.post("/certificates", data={"pub": CERT, "key": KEY, "chain": ""})
    cert = r.json()
    assert list(cert) == ["id", "domain", "domains", "expiration", "status"]
    assert cert["id"].startswith("cert-")
    assert (cert["domain"], cert["domains"]) == ("shop.example.com", ["shop.example.com", "www.shop.example.com"])
    assert cert["expiration"] == "2036-11-23T07:08:12Z"
    listed = client.get("/certificates")
    assert cert["id"] in [c["id"] for c in listed.json()]
    assert KEY_MARKER not in r.text + listed.text
    assert client.put("/apps/web/ssl/web/443", data={"id": cert["id"]}).text == "ok\n"
    r = client.post("/certificates", data={"pub": "junk", "key": KEY})
    assert r.status_code == 500 and r.text == "invalid certificate\n"
    assert client.delete(f"/certificates/{cert['id']}").text == "ok\n"


def test_instance_terminate_and_keyroll(client):
    before = client.get("/instances").json()
    assert len(before) == 3 and all(i["id"].startswith("i-0") and len(i["id"]) == 19 for i in before)
    victim = before[0]["id"]
    assert client.delete(f"/instances/{victim}").text == "ok\n"
    after = client.get("/instances").json()
    assert len(after) == 3 and victim not in [i["id"] for i in after]
    assert all(p["instance"] != victim for p in client.get("/apps/web/processes").json())
    r = client.delete(f"/instances/{victim}", headers={"Accept": "application/json"})
    assert (r.status_code, r.json()) == (404, {"error": f"instance not found: {victim}"})

    pair = client.post("/instances/keyroll").json()
    assert list(pair) == ["name", "private-key"]
    assert pair["private-key"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")


def test_system_parameters_doubly_encoded(client, app):
    params = {"node_type": "t3.xlarge", "syslog": "tcp+tls://logs.example.com:6514?x=1&y=2"}
    body = urlencode({"parameters": encode_map(params)})
    # the map's own `=` and `&` escaped once, the values' (`?x=1&y=2`) twice
    assert body.startswith("parameters=node_type%3Dt3.xlarge%26syslog%3Dtcp%252Btls") and "x%253D1%2526y" in body
    r = client.put("/system", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.text == "ok\n"
    system = client.get("/system").json()
    assert list(system) == ["count", "domain", "name", "parameters", "provider", "rack-domain", "region", "status",
                            "type", "version"]
    assert system["name"] == "production"
    assert system["parameters"]["node_type"] == "t3.xlarge"
    assert system["parameters"]["syslog"] == params["syslog"]
    received = app.state.requests[-2]
    assert (received.method, received.path) == ("PUT", "/system")
    assert decode_map(received.params["parameters"]) == params
    client.put("/system", data={"version": "3.24.10", "force": "true"})
    assert client.get("/system").json()["version"] == "3.24.10"


# --- what the rack received -------------------------------------------------------------------------------------------

def test_actor_header_is_recorded_and_authorization_never_is(client, app):
    client.post("/apps", data={"name": "one"}, headers={"Convox-Actor": "alice@example.com"})
    client.post("/apps", data={"name": "two"}, headers={"X-Convox-Actor": "ci-bot"})
    client.post("/apps", data={"name": "three"})
    client.post("/apps", data={"name": "four"}, headers={"Convox-Actor": "\u202e\u200b".encode(),
                                                          "X-Convox-Actor": "legacy@example.com"})
    pid = a_pid(client)
    with client.websocket_connect(f"/apps/web/processes/{pid}/exec",
                                  headers={"Command": "true", "Convox-Actor": "bob@example.com"}) as ws:
        collect(ws)
    got = [(q.method, q.params.get("name"), q.actor) for q in app.state.requests if q.method in ("POST", "SOCKET")]
    assert got == [("POST", "one", "alice@example.com"), ("POST", "two", "ci-bot"),
                   ("POST", "three", "rack-password"), ("POST", "four", "legacy@example.com"),
                   ("SOCKET", None, "bob@example.com")]
    assert app.state.requests[-1].headers["command"] == "true"
    assert all("authorization" not in q.headers for q in app.state.requests)
    assert all(AUTH not in str(q) and PASSWORD not in str(q) for q in app.state.requests)


def test_form_semantics_body_then_query_and_headers(client, app):
    client.post("/apps?name=fromquery&generation=2", data={"name": "frombody"})
    q = app.state.requests[-1]
    assert q.params == {"name": "frombody", "generation": "2"}
    assert client.get("/apps/frombody").status_code == 200
    client.post("/apps", headers={"Name": "fromheader"})  # c.Value falls back to the header
    assert client.get("/apps/fromheader").status_code == 200
    # DELETE bodies are not parsed (net/http ParseForm)
    client.request("DELETE", "/apps/frombody", content="name=ignored",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert app.state.requests[-1].params == {}
    # a raw body stays out of the params
    client.post("/apps/web/objects/tmp/x.tgz?public=1", content=b"name=not-a-form",
                headers={"Content-Type": "application/octet-stream", "Public": "true"})
    assert app.state.requests[-1].params == {"public": "1"}
    assert app.state.rack.apps["web"].objects["tmp/x.tgz"].public is True


# --- Go's routing and r.Form, byte for byte -----------------------------------------------------------------------

def asgi(app, method: str, target: bytes, headers: dict[str, str] | None = None,
         body: bytes = b"") -> tuple[int, bytes]:
    """One request straight into the ASGI app with the raw target as a client put it on the wire (httpx, and so
    TestClient, resolves dot segments before sending); scope["path"] decoded as uvicorn decodes it."""
    raw_path, _, query = target.partition(b"?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": unquote(raw_path.decode("ascii")), "raw_path": raw_path, "query_string": query,
             "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "headers": [(b"authorization", AUTH.encode())] + [(k.lower().encode(), v.encode("latin-1"))
                                                              for k, v in (headers or {}).items()]}
    inbox = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_routes_match_the_decoded_uncleaned_path_as_gorilla_mux_does(app):
    def routed(method: str, target: bytes) -> tuple[int, tuple[str, str] | None, dict | None, str]:
        status, _ = asgi(app, method, target)
        q = app.state.requests[-1]
        return status, q.route, q.vars, q.path

    cancel = ("POST", "/apps/{app}/cancel")
    # percent-decoded once: `%65` is `e`, `%2F` is a `/` that routes as one
    assert routed("POST", b"/apps/w%65b/cancel")[:3] == (200, cancel, {"app": "web"})
    assert routed("POST", b"/apps/web%2Fcancel")[1:] == (cancel, {"app": "web"}, "/apps/web/cancel")
    # never cleaned (SkipClean): dot segments and `//` stay, and route as they are
    for target in (b"/apps/web/./cancel", b"/apps/web/x/../cancel", b"/apps/web/x/%2e%2e/cancel", b"//apps/web/cancel",
                   b"/apps//web/cancel"):
        status, route, _, _ = routed("POST", target)
        assert (status, route) == (404, None), target
    # `{key:.*}` takes the dot segments as part of the key
    status, route, path_vars, path = routed("DELETE", b"/apps/web/objects/x/../../../../apps/billing")
    assert route == ("DELETE", "/apps/{app}/objects/{key}")
    assert path_vars == {"app": "web", "key": "x/../../../../apps/billing"} and path.count("..") == 4
    # case-sensitive, no trailing-slash tolerance, `$` is the very end (not before a final newline)
    for target in (b"/Apps/web/cancel", b"/apps/web/cancel/", b"/apps/web/cancel%0A", b"/apps/web/Cancel"):
        assert routed("POST", target)[:2] == (404, None), target
    assert routed("POST", b"/apps/w%0Aeb/cancel")[1:3] == (cancel, {"app": "w\neb"})  # any byte, newline too
    # NUL is an ordinary byte of a path var; a malformed escape is refused by Go's server before routing
    assert routed("POST", b"/apps/web%00/cancel")[1:3] == (cancel, {"app": "web\x00"})
    assert routed("POST", b"/apps/%zz/cancel")[:2] == (400, None)
    assert routed("POST", b"/apps/web/cancel%")[:2] == (400, None)
    # 405 only for a route of another method; a SOCKET route's Upgrade matcher fails without a 405
    assert routed("PATCH", b"/apps/web")[:2] == (405, None)
    assert routed("POST", b"/apps/web/logs")[:2] == (404, None)


def test_r_form_is_read_as_go_net_http_reads_it(app):
    def form(method: str, target: bytes, content_type: str | None, body: bytes = b""):
        headers = {"Content-Type": content_type} if content_type is not None else {}
        asgi(app, method, target, headers, body)
        q = app.state.requests[-1]
        assert q.route is not None
        return list(q.form), q.params, [(f.name, f.filename, f.size) for f in q.files]

    urlencoded = "application/x-www-form-urlencoded"
    target = b"/apps/nope/cancel?name=q1&a;b=c&bad=%zz&name=q2"
    # body pairs, then the query's; `;` pairs and bad escapes dropped wherever they are; first value wins
    pairs, params, _ = form("POST", target, urlencoded, b"x=1;y=2&name=b1&k=%4&name=b2&plus=a+b%2B&=e&&novalue")
    assert pairs == [("name", "b1"), ("name", "b2"), ("plus", "a b+"), ("", "e"), ("novalue", ""), ("name", "q1"),
                     ("name", "q2")]
    assert params["name"] == "b1"
    # the media type in any case, with parameters, even malformed ones; PUT and PATCH too
    for ctype in ("APPLICATION/X-WWW-FORM-URLENCODED; charset=UTF-8", f"{urlencoded}; charset", f" {urlencoded} ;"):
        assert form("POST", b"/apps/nope/cancel", ctype, b"name=b")[0] == [("name", "b")], ctype
    # not parsed: no Content-Type, another type, conflicting duplicate parameters, a DELETE's urlencoded body
    for method, ctype in (("POST", None), ("POST", "text/plain"), ("POST", "application/json"),
                          ("POST", f"{urlencoded}; charset=a; charset=b"),
                          ("POST", "application/x-www-form-urlencoded2"),
                          ("DELETE", urlencoded)):
        target = b"/apps/nope/cancel?name=q" if method == "POST" else b"/apps/nope?name=q"
        assert form(method, target, ctype, b"name=b")[0] == [("name", "q")], (method, ctype)

    def multipart(*parts: bytes, boundary: str = "BND", nl: bytes = b"\r\n") -> bytes:
        b = boundary.encode()
        return b"preamble" + nl + b"".join(b"--" + b + nl + part.replace(b"\r\n", nl) + nl for part in parts) + \
            b"--" + b + b"--" + nl

    body = multipart(b'Content-Disposition: form-data; name="name"\r\n\r\nm1',
                     b'Content-Disposition: form-data; name="src"; filename="dir/app.tgz"\r\n'
                     b"Content-Type: application/gzip\r\n\r\n\x1f\x8bname=not-a-field",
                     b'Content-Disposition: attachment; name="skipped"\r\n\r\nx',
                     b'Content-Disposition: form-data; filename="nameless"\r\n\r\nx',
                     b'Content-Disposition: form-data; name="empty"; filename=""\r\n\r\nvalue, not a file',
                     b'Content-Disposition: form-data; name="qp"\r\nContent-Transfer-Encoding: Quoted-Printable'
                     b"\r\n\r\nse=63ret=\r\n=3D1",
                     b'Content-Disposition: form-data; name="name"\r\n\r\nm2')
    expected = ([("name", "q"), ("name", "m1"), ("empty", "value, not a file"), ("qp", "secret=1"), ("name", "m2")],
                [("src", "app.tgz", 18)])
    # the query's pairs first, then the parts' values, files apart; for any method (ParseMultipartForm does not
    # look at it), with LF-only lines too
    for method, target in (("POST", b"/apps/nope/cancel?name=q"), ("DELETE", b"/apps/nope?name=q")):
        pairs, params, files = form(method, target, 'multipart/form-data; boundary="BND"', body)
        assert (pairs, files) == expected and params["name"] == "q"
    lf = multipart(b'Content-Disposition: form-data; name="name"\r\n\r\nm1', nl=b"\n")
    assert form("POST", b"/apps/nope/cancel", "Multipart/Form-Data; boundary=BND", lf)[0] == [("name", "m1")]
    # no boundary, a malformed parameter, a body cut short or a broken part header: no multipart value at all
    for ctype, data in (("multipart/form-data", body), ("multipart/form-data; boundary", body),
                        ("multipart/form-data; boundary=BND", body[:-9]),
                        ("multipart/form-data; boundary=BND", multipart(b"Content-Disposition form-data\r\n\r\nx"))):
        assert form("POST", b"/apps/nope/cancel?name=q", ctype, data)[0] == [("name", "q")], (ctype, data[-20:])


def test_read_only_jwt_can_read_but_not_write_or_exec(client, app):
    token = client.post("/system/jwt/token", data={"role": "read", "durationInHour": "1"}).json()["token"]
    jwt_auth = basic_authorization("jwt", token)
    c = TestClient(app, headers={"Authorization": jwt_auth, "Accept": "application/json"})
    assert c.get("/apps").status_code == 200
    r = c.post("/apps", data={"name": "nope"})
    assert (r.status_code, r.json()) == (401, {"error": "you are unauthorized to access this"})
    with c.websocket_connect(f"/apps/web/processes/{a_pid(client)}/exec", headers={"Command": "ls"}) as ws:
        assert texts(collect(ws)) == "ERROR: you are unauthorized to access this\n"
    assert client.put("/system/jwt/rotate").text == "ok\n"
    assert c.get("/apps").json() == {"error": "invalid authentication: signature is invalid"}


def test_same_seed_same_rack_and_same_output():
    outputs = []
    for _ in range(2):
        app = create_app(PASSWORD, seed=11, clock=lambda: NOW)
        with TestClient(app, headers={"Authorization": AUTH}) as c:
            rel = c.post("/apps/api/releases", data={"env": "A=1"}).json()["id"]
            pid = a_pid(c, "api", "api")
            with c.websocket_connect(f"/apps/api/processes/{pid}/exec", headers={"Command": "bash"}) as ws:
                ws.send_text("ls -la\ruptime\rbin/rails console\rOrder.count\rexit\rexit\r")
                out = texts(collect(ws))
        outputs.append((rel, pid, out))
    assert outputs[0] == outputs[1]
    assert create_app(PASSWORD, seed=12).state.rack.domain != create_app(PASSWORD, seed=11).state.rack.domain


# --- on a real socket -------------------------------------------------------------------------------------------------


@pytest.fixture
def live_rack():
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("websockets")
    app = create_app(PASSWORD, seed=3, clock=lambda: NOW)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           ws_ping_interval=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield app, port
    server.should_exit = True
    thread.join(timeout=10)


def test_on_the_wire_with_uvicorn_and_a_websocket_client(live_rack):
    import httpx
    from websockets.sync.client import connect

    app, port = live_rack
    r = httpx.get(f"http://127.0.0.1:{port}/apps/web", headers={"Authorization": AUTH})
    assert r.status_code == 200 and r.json()["name"] == "web" and r.headers["request-id"]
    pid = app.state.rack.apps["web"].processes and sorted(app.state.rack.apps["web"].processes)[0]
    with connect(f"ws://127.0.0.1:{port}/apps/web/processes/{pid}/exec",
                 additional_headers={"Authorization": AUTH, "Command": "bash", "Tty": "true"},
                 origin="http://127.0.0.1") as ws:
        assert ws.response.headers["Request-Id"]
        prompt = ws.recv(timeout=5)
        assert isinstance(prompt, str) and prompt.endswith("$ ")
        ws.send("echo wire\r")  # a str goes out as a TEXT frame
        ws.send(b"")  # an empty BINARY frame: stdin EOF
        frames = []
        while True:
            frame = ws.recv(timeout=5)
            frames.append(frame)
            if isinstance(frame, bytes):
                break
    assert frames[-1] == b""
    assert frames[-2] == f"{EXIT_MARKER}0\n"
    assert "wire\r\n" in "".join(f for f in frames if isinstance(f, str))


def test_uvicorn_hands_the_rack_the_path_as_sent(live_rack):
    """What the rack routes is what the client sent, decoded once: uvicorn resolves no dot segments."""
    import http.client

    app, port = live_rack
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for target, status, path in (("/apps/web/x/../cancel", 404, "/apps/web/x/../cancel"),
                                 ("/apps/web/./x/%2e%2e/cancel", 404, "/apps/web/./x/../cancel"),
                                 ("/apps/w%65b%2Fcancel", 200, "/apps/web/cancel")):
        conn.request("POST", target, headers={"Authorization": AUTH})
        response = conn.getresponse()
        response.read()
        assert (response.status, app.state.requests[-1].path) == (status, path)
    conn.close()


# --- the scripted shell on its own ------------------------------------------------------------------------------------

def test_shell_line_editing_and_pipes():
    profile = sh.process_profile(app="web", service="web", pid="web-abc-12345", release="RX", rack="production",
                                 env={"RAILS_ENV": "production", "DATABASE_URL": "postgres://u:p@h/db",
                                      "SECRET_KEY_BASE": "s"}, now=lambda: NOW)
    s = sh.Session(profile, tty=True, width=80)
    s.start()
    out = s.feed("ecoh\x7f\x7fho x\r")
    assert out.startswith("ecoh\b \b\b \bho x\r\nx\r\n")
    assert s.feed("env | grep -c RAILS_ENV\r").startswith("env | grep -c RAILS_ENV\r\n1\r\n")
    env = s.feed("env\r")
    # A real container's environment, secrets included (the gateway masks them in recordings, not the rack).
    assert "RAILS_ENV=production" in env and "SECRET_KEY_BASE=s\r\n" in env and "postgres://u:p@h/db" in env
    assert s.feed("cd config && pwd\r").startswith("cd config && pwd\r\n/app/config\r\n")
    assert "bash: cd: nope: No such file or directory" in s.feed("cd nope || echo fallback\r")
    assert s.feed("\x03").startswith("^C\r\n")
    assert s.exit_code is None
    s.feed("exit 7\r")
    assert s.exit_code == 7
    assert sh.Session.is_interactive([]) and sh.Session.is_interactive(["bash"])
    assert not sh.Session.is_interactive(["sh", "-c", "ls"]) and not sh.Session.is_interactive(["echo", "hi"])
    assert sh.Session.is_interactive(["bundle", "exec", "rails", "c"]) and sh.Session.is_interactive(["psql"])
