"""A loaded recording: its frames (output and resizes) in time order, where each position falls in time and in
output, and, once build_index() has run (or found them cached), its keyframes, command markers and the text search
reads."""

from __future__ import annotations

import bisect
import threading
from array import array
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from auditkit.review.replay import index, markers as markers_mod
from auditkit.review.replay.index import Keyframe
from auditkit.review.replay.markers import Marker
from auditkit.review.replay.search import TextIndex

if TYPE_CHECKING:
    from auditkit.review.replay.cache import Slot


class Frame(NamedTuple):
    """One thing that changes the screen: output ("o", data is text) or a resize ("r", data is "COLSxROWS")."""

    time: float
    kind: str
    data: str


class Recording:
    """A loaded recording. `markers` and `keyframes` grow when build_index() runs (once; thread-safe)."""

    def __init__(self, header: dict[str, Any], width: int, height: int, frames: list[Frame],
                 markers: list[Marker], duration: float):
        self.header = header
        self.width, self.height = width, height
        self.frames = frames
        self.times = [f.time for f in frames]
        self.duration = duration
        # offsets[i]: characters of output in the first i frames (what feeding costs between two positions)
        self.offsets = array("q", accumulate((len(f.data) if f.kind == "o" else 0 for f in frames), initial=0))
        self.output_size = self.offsets[-1]
        self._given_markers = markers
        self.markers: list[Marker] = sorted(markers)
        self.keyframes: list[Keyframe] = []
        # every version of every screen line, once indexed; from the cache, a function that reads them
        self._versions: TextIndex | Callable[[], TextIndex | None] | None = None
        self.found_markers: list[Marker] = []  # the command markers the indexing pass found
        self.index_cache: Slot | None = None  # where build_index() finds the index, or saves the one it builds
        self._lock = threading.Lock()
        self._text_lock = threading.Lock()
        self._built = threading.Event()

    @property
    def title(self) -> str:
        return str(self.header.get("title") or self.header.get("command") or "")

    @property
    def indexed(self) -> bool:
        return self._built.is_set()

    def __repr__(self) -> str:
        return f"<Recording {self.width}x{self.height} {self.duration:.1f}s {len(self.frames)} frames>"

    def position_at(self, t: float) -> int:
        """How many frames have been shown at time t."""
        return bisect.bisect_right(self.times, t)

    def time_of(self, position: int) -> float:
        return self.times[position - 1] if position > 0 else 0.0

    @property
    def versions(self) -> TextIndex | None:
        """Every version of every screen line (what search reads), once indexed. A cached index's text is read when
        first asked for; when it does not check out, nothing of that cache file is kept: the indexing pass runs after
        all (keyframes, markers and text) and the cache is written again."""
        versions = self._versions
        if not callable(versions):
            return versions
        rebuilt = False
        with self._text_lock:
            versions = self._versions
            if callable(versions):
                versions = versions()
                if versions is None:
                    self.keyframes = []
                    versions, found = index.build(self)  # type: ignore[misc]  # not cancellable: never None
                    self.found_markers, self.markers = found, markers_mod.merge(self._given_markers, found)
                    rebuilt = True
                self._versions = versions
        if rebuilt and self.index_cache is not None:
            self.index_cache.save(self)
        return versions

    def keyframe_before(self, position: int) -> Keyframe | None:
        return index.keyframe_before(self.keyframes, position)

    def build_index(self, progress: Callable[[float], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> bool:
        """Feed the whole recording once: keyframes, command markers and the text for search; or, when
        `index_cache` holds a valid index of this recording, take that instead (and save the one built when not).
        Returns False when `cancelled()` stopped it (a later call starts over; keyframes already made are kept)."""
        with self._lock:
            if self._built.is_set():
                return True
            cached = self.index_cache.read(self) if self.index_cache is not None else None
            if cached is not None:
                self.keyframes, versions, found = cached
                self._set_index(versions, found)
                return True
            built = index.build(self, progress, cancelled)
            if built is None:
                return False
            self._set_index(*built)
        if progress:
            progress(1.0)
        if self.index_cache is not None:
            self.index_cache.save(self)  # once, by the call that built it; a cache it cannot write is no error
        return True

    def _set_index(self, versions: TextIndex | Callable[[], TextIndex | None], found: list[Marker]) -> None:
        self._versions, self.found_markers = versions, found
        self.markers = markers_mod.merge(self._given_markers, found)
        self._built.set()
