"""Seeking: a Player keeps a terminal positioned somewhere in a recording, moving forward by feeding the frames in
between and anywhere else by restoring the nearest keyframe first; screen_at is one seek from a fresh Player."""

from __future__ import annotations

from auditkit.review.replay.recording import Recording
from auditkit.review.replay.snapshot import Snapshot
from auditkit.review.replay.stream import TerminalStream
from auditkit.review.replay.terminal import Terminal


class Player:
    """A terminal positioned somewhere in a recording. Moving forward feeds the frames in between; anything else
    restores the nearest keyframe first (or starts over when the index is not built that far yet)."""

    def __init__(self, recording: Recording):
        self.recording = recording
        self._start()

    def _start(self) -> None:
        self.terminal = Terminal(self.recording.width, self.recording.height)
        self.stream = TerminalStream(self.terminal)
        self.position = 0

    @property
    def time(self) -> float:
        return self.recording.time_of(self.position)

    def seek(self, t: float) -> None:
        """Show the screen at time t: every frame at or before t."""
        self.seek_position(self.recording.position_at(t))

    def seek_position(self, position: int) -> None:
        position = max(0, min(position, len(self.recording.frames)))
        keyframe = self.recording.keyframe_before(position)
        if position < self.position or (keyframe is not None and keyframe.position > self.position):
            if keyframe is None:
                self._start()
            else:
                self.terminal.unpack(keyframe.state)
                self.stream = TerminalStream(self.terminal)
                self.position = keyframe.position
        self._feed(position)

    def seek_cost(self, position: int) -> int:
        """Characters of output seek_position(position) would feed (what makes a seek slow)."""
        position = max(0, min(position, len(self.recording.frames)))
        keyframe = self.recording.keyframe_before(position)
        start = keyframe.position if keyframe is not None else 0
        if start <= self.position <= position:
            start = self.position
        return self.recording.offsets[position] - self.recording.offsets[start]

    def step(self) -> bool:
        """Show one more frame; False at the end."""
        if self.position >= len(self.recording.frames):
            return False
        self._feed(self.position + 1)
        return True

    def _feed(self, position: int) -> None:
        frames = self.recording.frames
        feed = self.stream.feed
        for i in range(self.position, position):
            frame = frames[i]
            if frame.kind == "o":
                feed(frame.data)
            else:
                cols, rows = map(int, frame.data.split("x"))
                self.terminal.resize(rows, cols)
        self.position = max(self.position, position)

    def snapshot(self) -> Snapshot:
        return self.terminal.snapshot(self.position, self.time)


def screen_at(recording: Recording, t: float) -> Snapshot:
    """The screen at time t (a fresh Player: nearest keyframe, then the frames after it)."""
    player = Player(recording)
    player.seek(t)
    return player.snapshot()

