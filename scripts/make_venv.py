"""Create the project's virtual environment with pip, even where python3 lacks ensurepip.

Debian's python3 ships without ensurepip unless python3-venv is installed. Then the venv is made without pip and pip
is bootstrapped from its wheel on PyPI (the one registry a fresh machine can reach), run straight from the wheel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import venv
from pathlib import Path


def main(target: str) -> int:
    path = Path(target)
    try:
        venv.EnvBuilder(with_pip=True).create(path)
        return 0
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"make_venv: venv with pip failed ({e}); bootstrapping pip from PyPI", file=sys.stderr)
    venv.EnvBuilder(with_pip=False, clear=True).create(path)
    index = "https://pypi.org/pypi/pip/json"
    with urllib.request.urlopen(index, timeout=60) as response:
        release = json.load(response)
        index = response.geturl()
    wheel = next(u for u in release["urls"] if u["packagetype"] == "bdist_wheel")
    wheel["url"] = urllib.parse.urljoin(index, wheel["url"])  # some mirrors answer with relative links
    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(wheel["url"], timeout=120) as response:
            wheel_path.write_bytes(response.read())
        python = path / "bin" / "python"
        subprocess.run([str(python), f"{wheel_path}/pip", "install", "--quiet", str(wheel_path)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv"))
