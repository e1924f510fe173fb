"""The simulated container tells the truth: `env`, `printenv`, `echo $VAR` and the scripted consoles print the app's
real environment, secrets included, as a real process does (issue 16). Spoken over real websockets to the simulated
rack on loopback, as the Convox CLI speaks them (convox_sim.client)."""

from __future__ import annotations

import urllib.parse
from typing import Iterator

import pytest

from auditkit.capture import wire
from convox_sim import rack as rack_mod
from convox_sim.client import RackClient
from convox_sim.servers import ServerThread

PASSWORD = "rack-pw-truth"


@pytest.fixture(scope="module")
def rack() -> Iterator[tuple[rack_mod.Rack, str]]:
    app = rack_mod.create_app(PASSWORD, rack_name="acme/production", seed=5)
    server = ServerThread(app).start()
    yield app.state.rack, server.url
    server.stop()


def _env(rack: rack_mod.Rack, app: str) -> dict[str, str]:
    record = rack.apps[app]
    return wire.parse_env(record.releases[record.release].env)


def test_env_printenv_and_echo_print_every_secret(rack):
    model, url = rack
    env = _env(model, "web")
    secret_keys = [k for k in env if any(w in k for w in ("SECRET", "DSN", "URL"))]
    assert len(secret_keys) >= 3, env
    pid = sorted(model.apps["web"].processes)[0]
    with RackClient(url, "convox", PASSWORD) as client:
        listed = client.exec("web", pid, "env", tty=False).output
        for key, value in env.items():
            assert f"{key}={value}\n" in listed, key
        key = secret_keys[0]
        assert client.exec("web", pid, f"printenv {key}", tty=False).output == env[key] + "\n"
        typed = client.exec("web", pid, "bash", [f"echo ${key}\r", "exit\r"]).output
        assert env[key] in typed
        rails = client.exec("web", pid, "bin/rails console", ['ENV["SECRET_KEY_BASE"]\r', "ENV.to_h\r", "exit\r"])
        assert f'=> "{env["SECRET_KEY_BASE"]}"' in rails.output
        assert all(f'"{k}"=>"{v}"' in rails.output for k, v in env.items())


def test_resource_consoles_print_the_resources_password(rack):
    model, url = rack
    app = next(a for a in model.apps.values() if any(r.type == "redis" for r in a.resources.values()))
    redis = next(r for r in app.resources.values() if r.type == "redis")
    password = urllib.parse.urlsplit(redis.url).password
    assert password
    with RackClient(url, "convox", PASSWORD) as client:
        out = client.resource_console(app.name, redis.name, ["CONFIG GET requirepass\r", "quit\r"])
    assert f'2) "{password}"' in out.output
    a, r = next((a, r) for a in model.apps.values() for r in a.resources.values() if r.type == "postgres")
    with RackClient(url, "convox", PASSWORD) as client:
        out = client.resource_console(a.name, r.name, ["\\! env\r", "\\q\r"])
    assert f"DATABASE_URL={r.url}" in out.output
    assert f"PGPASSWORD={urllib.parse.unquote(urllib.parse.urlsplit(r.url).password)}" in out.output
