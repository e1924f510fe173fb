"""The wheel works outside the checkout: built from a copy of the tree, installed into a fresh virtualenv, its
`auditkit serve` run from another directory opens a share link, with the plugin found by its entry point, its
templates and static files from the installed package and the metadata the package carries.

Offline: the wheel is built without build isolation (setuptools from the test extras), installed with --no-deps,
and the fresh virtualenv reaches the dependencies already installed here through a .pth file naming a directory of
links to them (everything but auditkit itself, so nothing of the checkout can be imported).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditkit.share.site.responses import PLAYER_JS, SHARE_CSP
from convox_sim.servers import stop_process
from helpers import ROOT

REPO = ROOT
# Not copied into the tree the wheel is built from: environments, data and what earlier builds left.
LEFT_OUT = shutil.ignore_patterns(".venv", "venv", ".git", "data", "build", "dist", "*.egg-info", "__pycache__",
                                  ".pytest_cache", ".hypothesis", "out")
# Not linked into the fresh virtualenv: the installed (or editable) auditkit of this environment.
NOT_LINKED = ("auditkit", "datasette_auditkit", "__editable__")


def run(*args: Any, cwd: Path, env: dict[str, str] | None = None, input: str | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, input=input, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=LEFT_OUT)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
        "--wheel-dir", root / "dist", source, cwd=root)
    (built,) = (root / "dist").glob("auditkit-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh virtualenv with the wheel installed, and a directory outside the checkout to run it from."""
    root = tmp_path_factory.mktemp("venv")
    env_dir = root / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel,
        cwd=root)
    links = root / "dependencies"
    links.mkdir()
    here = Path(sysconfig.get_path("purelib"))
    for entry in here.iterdir():
        if entry.name.startswith(NOT_LINKED) or entry.suffix == ".pth":
            continue
        (links / entry.name).symlink_to(entry)
    site_packages = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                             cwd=root).strip())
    (site_packages / "dependencies-from-the-test-environment.pth").write_text(f"{links}\n")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONPATH", "AUDITKIT_DB", "AUDITKIT_BASE_URL", "AUDITKIT_USER", "VIRTUAL_ENV")}
    clean["PYTHONUNBUFFERED"] = "1"
    return {"bin": env_dir / "bin", "python": python, "site_packages": site_packages, "cwd": elsewhere,
            "env": clean}


def test_the_wheel_holds_the_package_and_the_plugin_and_neither_convox_sim_nor_tests(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert not [n for n in names if n.startswith(("convox_sim/", "tests/", "plugins/", "bench/"))]
        tops = {n.split("/", 1)[0] for n in names}
        assert tops == {"auditkit", "datasette_auditkit", wheel.name.split("-py3")[0] + ".dist-info"}, tops
        for name in ("datasette_auditkit/hooks.py", "datasette_auditkit/templates/auditkit_shared.html",
                     "datasette_auditkit/static/auditkit-replay.js",
                     "datasette_auditkit/static/asciinema-player/asciinema-player.min.js",
                     "datasette_auditkit/static/asciinema-player/LICENSE",
                     "datasette_auditkit/static/asciinema-player/README.md",
                     "auditkit/review/tui/auditkit.tcss"):
            assert name in names
        assert z.read("datasette_auditkit/metadata.yml") == (REPO / "metadata.yml").read_bytes()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "[datasette]\nauditkit = datasette_auditkit\n" in z.read(entry_points).decode()


def test_the_installed_wheel_imports_nothing_of_the_checkout_and_datasette_lists_its_plugin(installed):
    where = json.loads(run(installed["python"], "-c", (
        "import json, auditkit, datasette_auditkit\n"
        "from auditkit.share import serve\n"
        "print(json.dumps([auditkit.__file__, datasette_auditkit.__file__, str(serve.metadata_file())]))"),
        cwd=installed["cwd"], env=installed["env"]))
    for path in where:
        assert Path(path).is_relative_to(installed["site_packages"]), where
    plugins = json.loads(run(installed["python"], "-m", "datasette", "plugins", cwd=installed["cwd"],
                             env=installed["env"]))
    (ours,) = [p for p in plugins if p["name"] == "auditkit"]
    assert ours["static"] and ours["templates"] and "permission_allowed" in ours["hooks"]


def test_auditkit_serve_from_the_wheel_opens_a_share_link(installed):
    auditkit, cwd, env = installed["bin"] / "auditkit", installed["cwd"], installed["env"]
    db = cwd / "mirror" / "audit.db"
    run(auditkit, "synth", "--events", "300", "--db", db, cwd=cwd, env=env)
    newest = json.loads(run(auditkit, "events", "--limit", "1", "--format", "json", "--db", db, cwd=cwd, env=env))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    url = run(auditkit, "share", "create", "--expires", "7d", "--note", "from the wheel", "--by", "tester",
              "--base-url", base, "--db", db, cwd=cwd, env=env).strip().splitlines()[-1]
    assert url.startswith(f"{base}/-/share/")
    proc = subprocess.Popen([str(auditkit), "serve", "--db", str(db), "--port", str(port)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("one-time admin login: "):
            line = proc.stdout.readline()
            assert line, "auditkit serve stopped:\n" + "".join(lines)
            lines.append(line)
        login = lines[-1].split(": ", 1)[1].strip()
        with httpx.Client(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:  # the login URL is printed just before uvicorn binds
                try:
                    client.get("/robots.txt")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "auditkit serve did not start listening"
                    time.sleep(0.05)
            opened = client.get(url.removeprefix(base))
            assert opened.status_code == 302 and opened.headers["location"] == "/-/shared"
            shared = client.get("/-/shared")
            assert shared.status_code == 200
            assert shared.headers["content-security-policy"] == SHARE_CSP
            assert newest[0]["id"] in shared.text and "from the wheel" in shared.text and "all time" in shared.text
            player = client.get(PLAYER_JS)
            assert player.status_code == 200 and player.content == (
                REPO / "plugins" / "datasette_auditkit" / "static" / "asciinema-player" / "asciinema-player.min.js"
            ).read_bytes()
            client.cookies.clear()
            assert client.get("/-/metadata.json").status_code == 403
            assert client.get(login.removeprefix(base)).status_code == 302
            metadata = client.get("/-/metadata.json")  # the copy the package carries, filled in by serve
            assert metadata.status_code == 200
            assert metadata.json()["title"] == "auditkit"
            assert metadata.json()["databases"]["audit"]["tables"]["events"]["fts_table"] == "events_fts"
    finally:
        stop_process(proc)
        proc.stdout.close()
