"""Record the replay test fixtures from real programs, and what tmux shows for the same bytes.

    python scripts/replay_fixtures.py            # record every scenario, then capture each in tmux
    python scripts/replay_fixtures.py --capture  # keep the recordings, capture them in tmux again
    python scripts/replay_fixtures.py --only vim

Needs bash, ls (GNU), vim, less, curl and tmux (`apt-get install -y tmux vim less curl`). Writes, under tests/fixtures/:
- replay_<name>.cast: the programs' output, recorded through a pseudo-terminal of the scenario's size by
  auditkit.model.asciicast.Recorder (output events as the pty delivered them, real timing);
- replay_<name>.<cut>.screen: `tmux capture-pane -p -e` of a tmux pane of the same size after `cat` of the same bytes
  (the frames up to the cut; "end" is all of them) with output post-processing and echo off;
- replay_tmux.json: for each capture, the frame count fed, tmux's cursor, whether the alternate screen was on, and
  the tmux version.

tests/review/test_replay_tmux.py checks that auditkit.review.replay renders each cut exactly as tmux did. CI needs none of the
programs: the fixtures are committed. Re-run this script only to change or add a scenario.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
import fcntl
import itertools
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditkit.model import asciicast  # noqa: E402
from auditkit.review import replay

FIXTURES = ROOT / "tests" / "fixtures"
STARTED = 1793577600  # 2026-11-02T00:00:00Z, so the headers do not change between runs
PS1 = r"\[\e[01;32m\]dev@box\[\e[00m\]:\[\e[01;34m\]\w\[\e[00m\]\$ "

SAMPLE_PY = '''"""Settle the day's orders."""

import datetime as dt

RATE = 0.0825


def total(lines, discount=0):
    """The sum of the lines, with tax, less the discount."""
    net = sum(line.price * line.qty for line in lines) - discount
    return round(net * (1 + RATE), 2)


class Ledger:
    def __init__(self, day: dt.date):
        self.day = day
        self.entries = []

    def add(self, order):
        if order.state != "paid":
            raise ValueError(f"order {order.id} is {order.state}")
        self.entries.append((order.id, total(order.lines)))
'''


class Session:
    """A program in a pseudo-terminal of a fixed size, driven like a person at a keyboard, recorded as asciicast."""

    def __init__(self, argv: list[str], width: int, height: int, cwd: Path, env: dict[str, str]):
        self.recorder = asciicast.Recorder(width=width, height=height, command=" ".join(argv), started=STARTED,
                                           cap=64 * 1024 * 1024, env={"TERM": env["TERM"], "SHELL": "/bin/bash"})
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pid, fd = pty.fork()
        if pid == 0:  # the child: its terminal has the scenario's size before the program starts
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        self.pid, self.fd = pid, fd

    def pump(self, quiet: float = 0.6, limit: float = 20.0) -> None:
        """Record output until the program has been quiet for `quiet` seconds."""
        deadline = time.monotonic() + limit
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.recorder.output(self.decoder.decode(data))
                last = time.monotonic()

    def type(self, text: str, delay: float = 0.06, quiet: float = 0.6) -> None:
        """Keys one at a time (the terminal echoes them as separate output), then wait for the program."""
        for ch in text:
            os.write(self.fd, ch.encode())
            self.pump(quiet=delay, limit=delay + 0.5)
        self.pump(quiet=quiet)

    def finish(self) -> bytes:
        self.pump(quiet=0.5, limit=5)
        try:
            os.kill(self.pid, signal.SIGHUP)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        return self.recorder.getvalue()


def _shell(workdir: Path, width: int, height: int) -> Session:
    env = {"TERM": "xterm-256color", "HOME": str(workdir), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "PS1": PS1, "LESSHISTFILE": "-", "TZ": "UTC"}
    session = Session(["bash", "--norc", "--noprofile", "-i"], width, height, workdir, env)
    session.pump()
    return session


def scenario_ls(workdir: Path) -> bytes:
    """A colourful `ls`: directories, executables, links (one broken), archives, a fifo, a setuid file."""
    for d in ("src", "docs", "build", ".git"):
        (workdir / d).mkdir()
    for f, mode in (("deploy.sh", 0o755), ("README.md", 0o644), ("Makefile", 0o644), ("app.tar.gz", 0o644),
                    ("photo.png", 0o644), ("run-tests", 0o755), ("notes.txt", 0o644), ("sudo-helper", 0o4755),
                    ("data.zip", 0o644), ("requirements.txt", 0o644)):
        (workdir / f).write_text("x\n")
        os.chmod(workdir / f, mode)
    os.symlink("README.md", workdir / "LINK.md")
    os.symlink("missing-target", workdir / "dangling")
    os.mkfifo(workdir / "queue.fifo")
    session = _shell(workdir, 80, 24)
    session.type("ls --color=auto\r")
    session.type("ls --color=auto -l --time-style=+%Y-%m-%d src deploy.sh LINK.md dangling app.tar.gz\r")
    session.type("ls --color=auto -F\r")
    return session.finish()


def scenario_vim(workdir: Path) -> bytes:
    """vim in the alternate screen with syntax colours: move, delete a line, insert text, search, quit; the shell
    screen is back afterwards."""
    (workdir / "ledger.py").write_text(SAMPLE_PY)
    session = _shell(workdir, 80, 24)
    session.type("echo before vim\r")
    session.type("vim -u DEFAULTS -i NONE -N ledger.py\r", quiet=1.5)
    session.type(":syntax on\r", quiet=0.8)
    session.type("jjjjdd", quiet=0.5)
    session.type("Oimport decimal\x1b", quiet=0.5)
    session.type("/Ledger\r", quiet=0.5)
    session.type("G", quiet=0.5)
    session.type(":q!\r", quiet=1.0)
    session.type("echo after vim\r")
    return session.finish()


def scenario_less(workdir: Path) -> bytes:
    """less in the alternate screen: page down, search with highlighting, back to the top, quit."""
    lines = [f"{i:4d}  {'order' if i % 7 else 'refund'} {i * 37 % 1000:03d} state={'paid' if i % 3 else 'due'}"
             for i in range(1, 121)]
    (workdir / "orders.log").write_text("\n".join(lines) + "\n")
    session = _shell(workdir, 80, 24)
    session.type("wc -l orders.log\r")
    session.type("less orders.log\r", quiet=1.0)
    session.type(" ", quiet=0.5)
    session.type("/refund\r", quiet=0.5)
    session.type("n", quiet=0.5)
    session.type("g", quiet=0.5)
    session.type("q", quiet=0.8)
    session.type("echo after less\r")
    return session.finish()


def scenario_progress(workdir: Path) -> bytes:
    """curl's progress bar (carriage returns redrawing one line), twice, and text after it."""
    with open(workdir / "blob.bin", "wb") as f:
        f.write(os.urandom(600 * 1024))
    session = _shell(workdir, 80, 24)
    session.type("curl -# --limit-rate 200k -o /dev/null file://$PWD/blob.bin\r", quiet=1.5)
    session.type("curl -# --limit-rate 400k -o copy.bin file://$PWD/blob.bin && echo copied\r", quiet=1.5)
    session.type("ls -l --color=auto *.bin\r")
    return session.finish()


SCENARIOS: dict[str, Callable[[Path], bytes]] = {
    "ls": scenario_ls, "vim": scenario_vim, "less": scenario_less, "progress": scenario_progress,
}


def cuts(recording: replay.Recording) -> dict[str, int]:
    """Where to compare: the end, and for full-screen programs the last frame before leaving the alternate screen."""
    out = {"end": len(recording.frames)}
    for i, frame in enumerate(recording.frames):
        if "\x1b[?1049l" in frame.data:
            out["inside"] = i
            break
    return out


_SOCKETS = itertools.count()


def tmux_capture(raw: bytes, width: int, height: int) -> dict:
    """Show `raw` in a tmux pane of width x height (no status line, output post-processing off) and capture it."""
    with tempfile.TemporaryDirectory() as tmp:
        path, done, conf = Path(tmp, "raw"), Path(tmp, "done"), Path(tmp, "tmux.conf")
        path.write_bytes(raw)
        conf.write_text("set -g status off\nset -g default-terminal xterm-256color\n")
        socket = f"auditkit-replay-{os.getpid()}-{next(_SOCKETS)}"
        tmux = ["tmux", "-L", socket, "-f", str(conf)]
        command = f"stty -opost -echo -icanon; cat {path}; touch {done}; exec sleep 600"
        subprocess.run(tmux + ["new-session", "-d", "-x", str(width), "-y", str(height), "sh", "-c", command],
                       check=True)
        try:
            deadline = time.monotonic() + 30
            while not done.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("tmux did not finish showing the bytes")
                time.sleep(0.05)
            previous = None
            while True:  # until tmux has parsed everything: two equal captures in a row
                time.sleep(0.3)
                capture = subprocess.run(tmux + ["capture-pane", "-p", "-e"], check=True, capture_output=True,
                                         text=True).stdout
                info = subprocess.run(tmux + ["display-message", "-p",
                                              "#{cursor_x} #{cursor_y} #{alternate_on} #{pane_width} #{pane_height}"],
                                      check=True, capture_output=True, text=True).stdout.split()
                if (capture, info) == previous:
                    break
                previous = (capture, info)
        finally:
            subprocess.run(tmux + ["kill-server"], capture_output=True)
    x, y, alternate, pane_w, pane_h = map(int, info)
    if (pane_w, pane_h) != (width, height):
        raise RuntimeError(f"tmux made a {pane_w}x{pane_h} pane, not {width}x{height}")
    return {"capture": capture, "cursor": [x, y], "alternate": bool(alternate)}


def capture_all(names: list[str]) -> None:
    index_path = FIXTURES / "replay_tmux.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    version = subprocess.run(["tmux", "-V"], capture_output=True, text=True, check=True).stdout.strip()
    for name in names:
        recording = replay.load((FIXTURES / f"replay_{name}.cast").read_bytes())
        for cut, position in cuts(recording).items():
            raw = "".join(f.data for f in recording.frames[:position] if f.kind == "o").encode("utf-8")
            result = tmux_capture(raw, recording.width, recording.height)
            (FIXTURES / f"replay_{name}.{cut}.screen").write_text(result.pop("capture"))
            index[f"{name}.{cut}"] = {"position": position, **result, "tmux": version}
            print(f"captured {name}.{cut} at frame {position}: cursor {result['cursor']}, "
                  f"alternate {result['alternate']}")
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="this scenario (repeatable)")
    parser.add_argument("--capture", action="store_true", help="keep the recordings; only capture them in tmux")
    args = parser.parse_args()
    names = args.only or sorted(SCENARIOS)
    for tool in ("tmux", "bash", "vim", "less", "curl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install -y {tool})")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    if not args.capture:
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                cast = SCENARIOS[name](Path(tmp))
            (FIXTURES / f"replay_{name}.cast").write_bytes(cast)
            print(f"recorded {name}: {len(cast)} bytes")
    capture_all(names)


if __name__ == "__main__":
    main()
