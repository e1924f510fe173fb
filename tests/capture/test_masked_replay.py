"""A masked recording replays as tmux shows the masked bytes, and its layout is the unmasked session's: each secret
becomes a mask of its display width (wide characters included), so every other cell and the cursor stay where they
were. Follows tests/review/test_replay_tmux.py: tmux's captures are committed (tests/fixtures/masked_replay.json),
so CI needs no tmux; where tmux is installed the captures are re-taken and must equal the committed ones.
Regenerate with `AUDITKIT_RECAPTURE=1 pytest tests/capture/test_masked_replay.py` (needs tmux).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from auditkit.capture import masking, sessions
from auditkit.model.asciicast import Recorder
from auditkit.review import replay
from helpers import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = FIXTURES / "masked_replay.json"
WIDTH, HEIGHT = 60, 14
SECRETS = [("DATABASE_URL", "postgres://app:Zq9%2Fw3xK@db.internal:5432/app"),
           ("SECRET_KEY_BASE", "9f3b2c7d1e8a4f6b"), ("PASSPHRASE", "日本語のパスワード"), ("API_TOKEN", "tok_✓_ünï")]
PROMPT = "\x1b[01;32mapp@web-1\x1b[0m:\x1b[01;34m/app\x1b[0m$ "


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frames() -> list[str]:
    """A session that shows each secret: `env` in colour, a secret split across three frames, one inside colour
    codes, a progress line redrawn with \\r, the password alone, and a prompt left under the cursor."""
    env = "".join(f"\x1b[36m{k}\x1b[0m={v}\r\n" for k, v in SECRETS)
    return [PROMPT, "e", "n", "v", "\r\n", env[:37], env[37:61], env[61:], PROMPT,
            "echo $PASSPHRASE\r\n", "\x1b[1;31m日本語の", "パスワ", "ード\x1b[0m\r\n",
            "upload  10% [#     ]\rupload 100% [######] Zq9/w3xK\r\n", "\x1b[33mtok_✓_", "ünï\x1b[0m ok\r\n", PROMPT]


def recordings() -> tuple[bytes, bytes]:
    """(masked, unmasked) asciicast of frames(), the masked one recorded as the gateway records a session."""
    clock = iter(range(10_000))
    masked = Recorder(width=WIDTH, height=HEIGHT, started=1793577600, clock=lambda: next(clock) / 10)
    stream = sessions.MaskedStream(masked, masked.output, SECRETS, [0.0])
    plain = Recorder(width=WIDTH, height=HEIGHT, started=1793577600, clock=lambda: 0.0)
    for frame in frames():
        stream(frame)
        plain.output(frame)
    stream.flush()
    return masked.getvalue(), plain.getvalue()


def _output(cast: bytes) -> bytes:
    from auditkit.model import asciicast
    return "".join(data for _, data in asciicast.iter_output(asciicast.parse(cast))).encode("utf-8")


def _captures() -> dict:
    if os.environ.get("AUDITKIT_RECAPTURE"):
        fixtures = _load("replay_fixtures", ROOT / "scripts" / "replay_fixtures.py")
        masked, plain = recordings()
        taken = {name: fixtures.tmux_capture(_output(cast), WIDTH, HEIGHT)
                 for name, cast in (("masked", masked), ("unmasked", plain))}
        CAPTURES.write_text(json.dumps(taken, indent=1, ensure_ascii=False) + "\n")
    return json.loads(CAPTURES.read_text())


def test_the_masked_recording_replays_as_tmux_shows_its_bytes():
    cells = _load("replay_tmux_cells", ROOT / "tests" / "review" / "test_replay_tmux.py")
    masked, _ = recordings()
    recording = replay.load(masked)
    player = replay.Player(recording)
    player.seek_position(len(recording.frames))
    snapshot = player.snapshot()
    expected = _captures()["masked"]
    theirs = cells._cells_of_capture(expected["capture"], WIDTH, HEIGHT)
    assert snapshot.text() == ["".join(cell[0] for cell in row).rstrip() for row in theirs]
    assert cells._cells_of_snapshot(snapshot) == theirs
    assert snapshot.cursor == tuple(expected["cursor"])
    shown = "\n".join(snapshot.text())
    for _, value in SECRETS:
        for form in masking.forms(value):
            assert form not in shown
    assert "Zq9/w3xK" not in shown and "upload 100% [######] ********" in shown


def test_masking_moves_nothing_on_the_screen():
    """tmux's screens of the masked and the unmasked bytes: the same rows with each secret's cells masked, the
    cursor in the same place."""
    captures = _captures()
    strip = lambda capture: [_plain(line) for line in capture.split("\n")]  # noqa: E731
    masker = masking.Masker(SECRETS)
    masked, unmasked = strip(captures["masked"]["capture"]), strip(captures["unmasked"]["capture"])
    assert masked == [masker.mask(line) for line in unmasked]
    assert any("日本語" in line for line in unmasked) and not any("日本語" in line for line in masked)
    assert captures["masked"]["cursor"] == captures["unmasked"]["cursor"]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (the committed captures still count)")
def test_the_committed_captures_are_what_tmux_shows_now():
    fixtures = _load("replay_fixtures", ROOT / "scripts" / "replay_fixtures.py")
    masked, plain = recordings()
    committed = json.loads(CAPTURES.read_text())
    for name, cast in (("masked", masked), ("unmasked", plain)):
        taken = fixtures.tmux_capture(_output(cast), WIDTH, HEIGHT)
        assert (taken["capture"], taken["cursor"]) == (committed[name]["capture"], committed[name]["cursor"]), name


def _plain(line: str) -> str:
    """A captured line without its SGR codes (tmux's -e output)."""
    import re
    return re.sub(r"\x1b\[[0-9;:]*m", "", line)
