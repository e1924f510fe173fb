"""The idle-compressed timeline: playback time, where every pause is capped at IDLE_LIMIT when idle skip is on,
converted to and from recording time, and the m:ss clock a timeline shows."""

from __future__ import annotations

import bisect
from typing import Sequence

from auditkit.model.times import clock_text
from auditkit.review.replay.recording import Recording

IDLE_LIMIT = 2.0


def idle_compress(times: Sequence[float], limit: float | None = IDLE_LIMIT) -> list[float]:
    """The times on a clock where every pause longer than `limit` lasts `limit` (None: unchanged)."""
    out: list[float] = []
    previous = compressed = 0.0
    for t in times:
        gap = t - previous
        compressed += gap if limit is None else min(gap, limit)
        out.append(compressed)
        previous = t
    return out


class Timeline:
    """Converts between recording time and playback time (with idle skip, pauses capped at `limit`)."""

    def __init__(self, recording: Recording, limit: float | None = IDLE_LIMIT):
        self.limit = limit
        self._times = [0.0] + recording.times
        if recording.duration > self._times[-1]:
            self._times.append(recording.duration)
        self._play = idle_compress(self._times, limit)
        self.duration = self._play[-1]

    def to_play(self, t: float) -> float:
        i = max(bisect.bisect_right(self._times, t) - 1, 0)
        gap = t - self._times[i]
        return self._play[i] + (gap if self.limit is None else min(gap, self.limit))

    def to_recording(self, p: float) -> float:
        p = max(0.0, min(p, self.duration))
        i = max(bisect.bisect_right(self._play, p) - 1, 0)
        return min(self._times[i] + (p - self._play[i]), self._times[-1])


format_time = clock_text  # m:ss (or h:mm:ss) for a timeline: the one playback clock (model.times)
