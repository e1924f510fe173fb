"""Replaying asciicast v2 recordings, screen-free: the TUI draws the Snapshots made here.

loader reads a recording (plain or gzip) into a Recording of frames and markers; terminal is the pyte screen that
shows what tmux shows, fed by stream; index feeds the whole recording once for keyframes, command markers and the
text search reads; player seeks (nearest keyframe, then the frames after it); search finds text as it appeared on
screen; markers and timeline give the points to jump to and the idle-compressed clock; session opens a mirrored
session's recording after checking its hash (or a recording file), its index cached on disk by cache. This package
re-exports what callers use.
"""

from auditkit.review.replay.loader import RecordingError, load
from auditkit.review.replay.markers import Marker, events_as_markers
from auditkit.review.replay.player import Player, screen_at
from auditkit.review.replay.recording import Frame, Recording
from auditkit.review.replay.search import Match, search
from auditkit.review.replay.session import SessionReplay, open_file, open_session
from auditkit.review.replay.snapshot import Attrs, Snapshot
from auditkit.review.replay.stream import TerminalStream
from auditkit.review.replay.terminal import Terminal
from auditkit.review.replay.timeline import IDLE_LIMIT, Timeline, format_time, idle_compress

__all__ = [
    "IDLE_LIMIT", "Attrs", "Frame", "Marker", "Match", "Player", "Recording", "RecordingError", "SessionReplay",
    "Snapshot", "Terminal", "TerminalStream", "Timeline", "events_as_markers", "format_time", "idle_compress", "load",
    "open_file", "open_session", "screen_at", "search",
]
