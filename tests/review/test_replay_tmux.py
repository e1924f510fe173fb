"""Replay renders real programs' output exactly as tmux does: a colourful `ls`, vim and less in the alternate
screen (and the shell screen restored after them), and curl's carriage-return progress bar.

The fixtures were recorded from the real programs and captured in tmux at development time; CI needs neither.
To regenerate them (after changing a scenario): `python scripts/replay_fixtures.py` (needs bash, GNU ls, vim, less,
curl and tmux); `--capture` re-captures the committed recordings in tmux without recording them again.
tests/fixtures/replay_<name>.cast is the recording, replay_<name>.<cut>.screen is `tmux capture-pane -p -e` after
`cat` of the first N frames' bytes into a pane of the recording's size, and replay_tmux.json holds N, tmux's cursor
and whether the alternate screen was on.
"""

from __future__ import annotations

import json

import pytest
from pyte.graphics import FG_BG_256
from pyte.screens import wcwidth

from auditkit.review import replay
from auditkit.review.replay import index, terminal
from helpers import FIXTURES

CAPTURES = json.loads((FIXTURES / "replay_tmux.json").read_text())
_HEX_INDEX = {FG_BG_256[i]: i for i in range(16)}
_NAME_INDEX = {("bright" if i > 7 else "") + terminal.ANSI_NAMES[i % 8]: i for i in range(16)}


def _colour(value: str) -> str | int:
    return _NAME_INDEX.get(value, _HEX_INDEX.get(value, value))


def _cell(char: str, attrs: replay.Attrs) -> tuple:
    """What a person sees in a cell: a blank shows only its background (and reverse video, underline)."""
    key = (_colour(attrs.bg), attrs.reverse, attrs.underscore, attrs.strikethrough)
    if char.strip():
        key += (_colour(attrs.fg), attrs.bold, attrs.italics)
    return (char if char.strip() else " ",) + key


def _trimmed(row: list[tuple]) -> list[tuple]:
    """A row without its trailing blanks: tmux's capture leaves them out, whatever their background."""
    end = len(row)
    while end and row[end - 1][0] in (" ", ""):
        end -= 1
    return row[:end]


def _cells_of_snapshot(snapshot: replay.Snapshot) -> list[list[tuple]]:
    rows = []
    for line in snapshot.lines:
        row = []
        for text, attrs in line:
            for ch in text:
                row.append(_cell(ch, attrs))
                if wcwidth(ch) == 2:
                    row.append(_cell("", attrs))
        rows.append(_trimmed(row))
    return rows


def _cells_of_capture(capture: str, width: int, height: int) -> list[list[tuple]]:
    """tmux's capture, one row at a time; its attributes carry over from one line to the next."""
    lines = capture.split("\n")[:height]
    lines += [""] * (height - len(lines))
    attrs = terminal.BLANK
    rows = []
    for line in lines:
        term = replay.Terminal(width, 1)
        term.cursor.attrs = attrs
        replay.TerminalStream(term).feed(line)
        attrs = term.cursor.attrs
        rows.append(_cells_of_snapshot(term.snapshot())[0])
    return rows


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_replay_renders_what_tmux_shows(name: str) -> None:
    scenario = name.split(".")[0]
    expected = CAPTURES[name]
    recording = replay.load((FIXTURES / f"replay_{scenario}.cast").read_bytes())
    player = replay.Player(recording)
    player.seek_position(expected["position"])
    snapshot = player.snapshot()
    capture = (FIXTURES / f"replay_{name}.screen").read_text()
    ours = _cells_of_snapshot(snapshot)
    theirs = _cells_of_capture(capture, recording.width, recording.height)
    assert snapshot.text() == [
        "".join(cell[0] for cell in row).rstrip() for row in theirs
    ], f"{name}: the text differs from tmux's"
    for y, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"{name}: row {y} looks different from tmux's: {[(x, c, d) for x, (c, d) in enumerate(zip(a, b)) if c != d][:3]}"
    assert snapshot.alternate == expected["alternate"]
    assert snapshot.cursor == tuple(expected["cursor"])


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_a_seek_renders_the_same_as_playing_through(name: str) -> None:
    """The same cut reached through keyframes (built small here, so there are many) equals a straight replay."""
    scenario = name.split(".")[0]
    position = CAPTURES[name]["position"]
    straight = replay.Player(replay.load((FIXTURES / f"replay_{scenario}.cast").read_bytes()))
    straight.seek_position(position)
    recording = replay.load((FIXTURES / f"replay_{scenario}.cast").read_bytes())
    old = index.KEYFRAME_BYTES
    index.KEYFRAME_BYTES = 16
    try:
        recording.build_index()
    finally:
        index.KEYFRAME_BYTES = old
    assert len(recording.keyframes) > 10
    player = replay.Player(recording)
    player.seek_position(len(recording.frames))
    player.seek_position(position)
    assert player.snapshot() == straight.snapshot()
