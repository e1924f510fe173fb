"""The recording index on disk: what index.build made for a recording (keyframes, command markers, the search text),
kept beside the mirror as `replay-cache/<sha256>.idx` so that reopening a recording skips the indexing pass.

A cache file is read as hostile bytes and used only when all of it checks out; anything else is a miss, and the
index is built again from the recording (which the caller has checked against its sha256) and written anew:

    header line   JSON: format, VERSION, the recording's sha256, params() (the index parameters and the engine's
                  fingerprint), the recording's shape (frames, output, size), the columns' and sections' lengths
    sections      zlib: "index" (JSON: cells, keyframes but their screens, command markers), "screens" (the
                  keyframes' screens as little-endian number columns), "text" (the searchable text) and
                  "text-columns" (the TextIndex columns); see SECTIONS and COLUMNS
    checksum      sha256 of everything before it (32 bytes)

No pickle and nothing executable: the JSON is checked value by value (types, ranges against the recording, every
reference in bounds), each section inflates to at most what the header declares and MAX_SECTION_BYTES, and the
file must be a regular file of ours no bigger than MAX_FILE_BYTES or the folder's bound. The engine fingerprint (a
sha256 of the modules that make the index) changes with their code, so an index made by other code is never used.
Keyframes' screens are assembled from the checked tables on first use; the text is checked when a search first reads
it (Recording.versions builds the index after all if it fails). The folder is 0700 and its files 0600, written
atomically; its total size is kept under a bound (AUDITKIT_REPLAY_CACHE_MIB, default DEFAULT_LIMIT_MIB; 0 turns
the cache off) by dropping the least recently used files. Deleting the folder is always safe.

The checksum catches damage, not forgery: whoever can write the folder (the mirror's owner) can also write a
well-formed index that shows screens a recording never had, as they could edit any file of theirs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import stat
import sys
import time
import zlib
from array import array
from itertools import accumulate, repeat
from operator import add
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pyte import charsets
from pyte.screens import Char, Cursor, Margins, Savepoint

from auditkit.errors import AuditkitError
from auditkit.files import write_private
from auditkit.review.replay import index
from auditkit.review.replay.index import Keyframe
from auditkit.review.replay.loader import MAX_SIZE
from auditkit.review.replay.markers import Marker
from auditkit.review.replay.search import TextIndex

if TYPE_CHECKING:
    from auditkit.review.replay.recording import Recording

FORMAT = "auditkit-replay-index"
VERSION = 1
DIRNAME = "replay-cache"
SUFFIX = ".idx"
ENV_LIMIT = "AUDITKIT_REPLAY_CACHE_MIB"
DEFAULT_LIMIT_MIB = 512  # about 100 indexes of 20 MiB recordings
MAX_FILE_BYTES = 256 << 20  # no cache file is read beyond this (or the folder's bound)
MAX_SECTION_BYTES = 256 << 20  # nor a section inflated beyond this (an index that needs more is not cached)
MAX_HEADER_BYTES = 64 * 1024
MAX_TEXT = 1 << 20  # characters of a title, a marker's label or a cell
MAX_MODE = 1 << 40  # pyte keeps any mode number a recording sets (private ones shifted by 5)
_DIGEST = 32
_CHARSETS = dict(charsets.MAPS)
_CHARSET_CODES = {id(v): k for k, v in _CHARSETS.items()}
_ENGINE_MODULES = ("index", "terminal", "stream", "search", "snapshot", "markers", "loader", "recording", "cache")


class BadCache(ValueError):
    """A cache file that is not a valid index of this recording (the message says why; it is then rebuilt)."""


class CacheSettingError(AuditkitError, ValueError):
    """AUDITKIT_REPLAY_CACHE_MIB is not a whole number of MiB."""


def _engine() -> str:
    """A fingerprint of the code that makes an index: the sources of the modules it comes from, and pyte's
    version. Any change to them makes older cache files misses."""
    import pyte

    digest = hashlib.sha256(getattr(pyte, "__version__", "?").encode())
    here = Path(__file__).parent
    for name in _ENGINE_MODULES:
        try:
            digest.update((here / f"{name}.py").read_bytes())
        except OSError:
            from auditkit import __version__

            digest.update(f"auditkit {__version__}".encode())
    return digest.hexdigest()


_ENGINE: str | None = None


def params() -> dict[str, Any]:
    """The index parameters a cache file must have been made with (and the engine fingerprint)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _engine()
    return {"keyframe_bytes": index.KEYFRAME_BYTES, "keyframe_seconds": index.KEYFRAME_SECONDS,
            "text_chunk": TextIndex.CHUNK, "max_size": MAX_SIZE, "engine": _ENGINE}


def limit_bytes() -> int:
    """The bound on the folder's total size: AUDITKIT_REPLAY_CACHE_MIB (a whole number; 0 turns the cache off)."""
    raw = os.environ.get(ENV_LIMIT, "").strip()
    if not raw:
        return DEFAULT_LIMIT_MIB << 20
    try:
        mib = int(raw)
    except ValueError:
        mib = -1
    if mib < 0:
        raise CacheSettingError(f"{ENV_LIMIT} must be a whole number of MiB, 0 to turn the replay cache off, "
                                f"not {raw!r}")
    return mib << 20


@dataclasses.dataclass
class Slot:
    """Where one recording's index is cached: `folder/<sha256>.idx`, bounded to `limit` bytes in all."""

    folder: Path
    sha256: str
    limit: int

    @property
    def path(self) -> Path:
        return self.folder / f"{self.sha256}{SUFFIX}"

    def read(self, recording: Recording) -> tuple[list[Keyframe], Callable[[], TextIndex | None],
                                                  list[Marker]] | None:
        """The cached index of `recording` when there is a valid one (and mark it used); None on a miss. Its text is
        a function that reads it (None when it does not check out, and the file is dropped)."""
        data = _read(self.path, min(MAX_FILE_BYTES, self.limit))
        if data is None:
            return None
        try:
            keyframes, text, found = decode(data, recording, self.sha256)
        except BadCache:
            return None
        try:
            os.utime(self.path)  # recently used, for eviction
        except OSError:
            pass

        def versions() -> TextIndex | None:
            made = text()
            if made is None:
                self.path.unlink(missing_ok=True)
            return made

        return keyframes, versions, found

    def save(self, recording: Recording) -> bool:
        """Write `recording`'s built index (atomically, 0600), then keep the folder under its bound. False when the
        cache cannot be written (the replay goes on without it)."""
        try:
            data = encode(recording, self.sha256)
        except (ValueError, OverflowError, TypeError):  # something the format cannot hold (a number past int32)
            return False
        if len(data) > self.limit:
            return False
        try:
            if not _private_folder(self.folder, create=True):
                return False
            write_private(self.path, data)
            evict(self.folder, self.limit, keep=self.path)
            return True
        except OSError:
            return False


def slot_for(mirror_path: str | os.PathLike[str] | None, sha256: str) -> Slot | None:
    """The cache slot of the recording whose bytes hash to `sha256`, beside the mirror at `mirror_path` (None when
    there is no such mirror file, the cache is off, or the sha256 is not one)."""
    if not mirror_path or len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        return None
    limit = limit_bytes()
    mirror = Path(mirror_path)
    if limit == 0 or not mirror.is_file():
        return None
    return Slot(mirror.parent / DIRNAME, sha256, limit)


def attach(recording: Recording, slot: Slot | None) -> Recording:
    """Let `recording` find its index in `slot`, or save it there once built (Recording.build_index)."""
    recording.index_cache = slot
    return recording


# -- the folder ------------------------------------------------------------------------------------------------------

def _private_folder(folder: Path, *, create: bool) -> bool:
    """The folder exists (made 0700 when `create`), is a real folder, is ours and only ours."""
    if create:
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        return False
    if stat.S_IMODE(st.st_mode) & 0o077:
        try:
            os.chmod(folder, 0o700)
        except OSError:
            return False
    return True


def _read(path: Path, most: int) -> bytes | None:
    """The bytes of a cache file that is a regular file of ours, not a link, at most `most` bytes; else None."""
    if not _private_folder(path.parent, create=False):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_size > most
                or (hasattr(os, "getuid") and st.st_uid != os.getuid())):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(st.st_size + 1)  # what fstat says (read(most) would allocate `most` first)
        return data if len(data) == st.st_size else None
    except OSError:
        return None
    finally:
        os.close(fd)


def evict(folder: Path, limit: int, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used cache files until the folder holds at most `limit` bytes (never `keep`), and
    temporary files an interrupted write left over an hour ago. Returns what was deleted."""
    entries = []
    removed = []
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        path = folder / name
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if name.startswith(".") and name.endswith(".tmp"):
            if now - st.st_mtime > 3600:
                path.unlink(missing_ok=True)
                removed.append(path)
            continue
        if name.endswith(SUFFIX):
            entries.append((st.st_mtime, name, st.st_size, path))
    total = sum(e[2] for e in entries)
    for _, _, size, path in sorted(entries):
        if total <= limit:
            break
        if path == keep:
            continue
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        removed.append(path)
    return removed


# -- the format ------------------------------------------------------------------------------------------------------

# The sections, in this order. "index" (JSON) holds the cells (pyte Chars), the keyframes but their screens, and the
# command markers; "screens" the keyframes' screens as columns of numbers; "text" and "text-columns" the TextIndex,
# read when a search first needs it. The columns of a section, little-endian, with their fixed types:
#   line_default, line_end, line_keys   per distinct screen line: its default cell, where its cells end in `cells`,
#                                       where its column numbers start in `keys` (-1: columns 0..n-1)
#   cells, keys                         the lines' cells (indexes into the index's cells) and column numbers
#   screens                             (row, line) pairs of every keyframe's screens
#   positions, rows, prevs, visible     the TextIndex columns
SECTIONS = ("index", "screens", "text", "text-columns")
COLUMNS = {
    "screens": (("line_default", "i"), ("line_end", "i"), ("line_keys", "i"), ("cells", "H"), ("keys", "H"),
                ("screens", "i")),
    "text-columns": (("positions", "i"), ("rows", "H"), ("prevs", "i"), ("visible", "B")),
}


def _shape(recording: Recording) -> dict[str, Any]:
    return {"frames": len(recording.frames), "output_size": recording.output_size, "width": recording.width,
            "height": recording.height}


def encode(recording: Recording, sha256: str) -> bytes:
    """The cache file of `recording`'s built index. ValueError (or OverflowError) for an index the format cannot
    hold (more than 65,536 distinct cells)."""
    versions = recording.versions
    if versions is None or not recording.indexed:
        raise ValueError("the recording is not indexed")
    chars: dict[Char, int] = {}
    lines: dict[tuple, int] = {}
    cols: dict[str, array] = {name: array(code) for group in COLUMNS.values() for name, code in group}

    def char(c: Char) -> int:
        i = chars.get(c)
        if i is None:
            i = chars[c] = len(chars)
        return i

    def cursor(c: Cursor) -> list:
        return [c.x, c.y, char(c.attrs), bool(c.hidden)]

    def screen(packed: tuple) -> list:
        first = len(cols["screens"])
        for y, line in packed:
            i = lines.get(line)
            if i is None:
                default, keys, cells = line
                i = lines[line] = len(lines)
                cols["line_default"].append(char(default))
                cols["cells"].extend(map(char, cells))
                cols["line_end"].append(len(cols["cells"]))
                if isinstance(keys, range):
                    cols["line_keys"].append(-1)
                else:
                    cols["line_keys"].append(len(cols["keys"]))
                    cols["keys"].extend(keys)
            cols["screens"].extend((y, i))
        return [first, len(cols["screens"])]

    def charset(m: str) -> str:
        code = _CHARSET_CODES.get(id(m))
        if code is None:
            raise ValueError("a charset pyte does not name")
        return code

    keyframes = []
    for kf in recording.keyframes:
        state = kf.state() if callable(kf.state) else kf.state
        (columns, rows, buf, main, alt_cursor, cur, savepoints, margins, mode, tabstops, title, icon_name,
         cs, g0, g1, saved_columns) = state
        keyframes.append([
            kf.position, kf.time, columns, rows, screen(buf), None if main is None else screen(main),
            None if alt_cursor is None else cursor(alt_cursor), cursor(cur),
            [[cursor(s.cursor), charset(s.g0_charset), charset(s.g1_charset), s.charset, bool(s.origin),
              bool(s.wrap)] for s in savepoints],
            None if margins is None else [margins.top, margins.bottom], sorted(mode), sorted(tabstops), title,
            icon_name, cs, charset(g0), charset(g1), saved_columns])
    body = {"chars": [list(c) for c in chars], "keyframes": keyframes,
            "markers": [[m.time, m.label] for m in recording.found_markers]}
    if len(chars) > 1 << 16:
        raise ValueError("more distinct cells than the format holds")
    for name, source in (("positions", versions.positions), ("rows", versions.rows), ("prevs", versions.prevs),
                         ("visible", versions.visible)):
        cols[name] = array(cols[name].typecode, source)
    raw = {
        "index": json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(),
        "screens": b"".join(_le(cols[name]) for name, _ in COLUMNS["screens"]),
        "text": "".join(versions.chunks).encode(),
        "text-columns": b"".join(_le(cols[name]) for name, _ in COLUMNS["text-columns"]),
    }
    if max(map(len, raw.values())) > MAX_SECTION_BYTES:
        raise ValueError("a section bigger than the format holds")
    compressed = {name: zlib.compress(raw[name], 1) for name in SECTIONS}
    header = {"format": FORMAT, "version": VERSION, "recording_sha256": sha256, "params": params(),
              **_shape(recording), "versions": len(versions), "chunks": [len(c) for c in versions.chunks],
              "columns": {group: [len(cols[name]) for name, _ in names] for group, names in COLUMNS.items()},
              "sections": [[name, len(compressed[name]), len(raw[name])] for name in SECTIONS]}
    out = json.dumps(header, separators=(",", ":")).encode() + b"\n" + b"".join(compressed[n] for n in SECTIONS)
    return out + hashlib.sha256(out).digest()


def _le(a: array) -> bytes:
    if sys.byteorder != "little" and a.itemsize > 1:
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _columns(blob: bytes, group: str, counts: Any) -> dict[str, array]:
    names = COLUMNS[group]
    counts = _list(counts, len(names))
    cols: dict[str, array] = {}
    at = 0
    for (name, code), count in zip(names, counts):
        a = array(code)
        size = a.itemsize * _int(count, 0, MAX_FILE_BYTES)
        a.frombytes(blob[at:at + size])
        if len(a) != count:
            raise BadCache(f"{group}: columns shorter than their header says")
        if sys.byteorder != "little" and a.itemsize > 1:
            a.byteswap()
        cols[name] = a
        at += size
    if at != len(blob):
        raise BadCache(f"{group}: columns longer than their header says")
    return cols


def decode(data: bytes, recording: Recording, sha256: str) -> tuple[list[Keyframe], Any, list[Marker]]:
    """The index a cache file holds for `recording` (whose bytes hash to `sha256`): its keyframes, its text (a
    function that makes the TextIndex, or None when that text does not check out), and its command markers.
    BadCache, saying why, unless the whole file checks out and every value but the text's has been checked (the
    text's are checked when first read). Keyframes' screens are assembled on first use from tables checked here,
    so that cannot fail."""
    try:
        return _decode(data, recording, sha256)
    except BadCache:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError,
            MemoryError, zlib.error) as e:
        raise BadCache(f"unreadable: {type(e).__name__}") from None


def _decode(data: bytes, recording: Recording, sha256: str) -> tuple[list[Keyframe], Any, list[Marker]]:
    if not isinstance(data, bytes) or len(data) < _DIGEST + 2 or len(data) > MAX_FILE_BYTES:
        raise BadCache("not a cache file (size)")
    content, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(content).digest() != digest:
        raise BadCache("checksum does not match")
    end = content.find(b"\n", 0, MAX_HEADER_BYTES)
    if end < 0:
        raise BadCache("no header")
    header = json.loads(content[:end])
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BadCache("not a replay index")
    if header.get("version") != VERSION:
        raise BadCache(f"index format version {header.get('version')!r}, not {VERSION}")
    if header.get("recording_sha256") != sha256:
        raise BadCache("the index of another recording")
    if header.get("params") != params():
        raise BadCache("made with other index parameters or engine")
    for key, value in _shape(recording).items():
        if header.get(key) != value:
            raise BadCache(f"{key} differs from the recording's")
    n_versions = _int(header.get("versions"), 0, MAX_FILE_BYTES)
    chunk_lengths = _list(header.get("chunks"), -(-n_versions // TextIndex.CHUNK))
    counts = header.get("columns")
    if not isinstance(counts, dict) or set(counts) != set(COLUMNS):
        raise BadCache("columns")
    sections = _list(header.get("sections"), len(SECTIONS))
    spans: dict[str, tuple[int, int, int]] = {}
    offset = end + 1
    for entry, name in zip(sections, SECTIONS):
        entry = _list(entry, 3)
        if entry[0] != name:
            raise BadCache("sections")
        length, size = _int(entry[1], 0, MAX_FILE_BYTES), _int(entry[2], 0, MAX_SECTION_BYTES)
        spans[name] = (offset, length, size)
        offset += length
    if offset != len(content):
        raise BadCache("sections do not fill the file")

    def section(name: str) -> bytes:
        start, length, size = spans[name]
        return _inflate(content[start:start + length], size, length)

    cols = _columns(section("screens"), "screens", counts["screens"])
    keyframes, found = _index(json.loads(section("index")), cols, recording)
    frames = len(recording.frames)
    text_counts = counts["text-columns"]

    def versions() -> TextIndex | None:
        try:
            return _text(section("text").decode("utf-8"), _columns(section("text-columns"), "text-columns",
                                                                    text_counts),
                         n_versions, chunk_lengths, frames)
        except (BadCache, ValueError, TypeError, IndexError, OverflowError, MemoryError, zlib.error):
            return None

    return keyframes, versions, found


def _inflate(data: bytes, size: int, length: int) -> bytes:
    if len(data) != length:
        raise BadCache("truncated")
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, size + 1)  # never more than the header declares (a zip bomb stops here)
    if len(out) != size or not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        raise BadCache("a section is not what its header says")
    return out


def _int(v: Any, lo: int, hi: int) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise BadCache(f"a number out of range ({str(v)[:20]})")
    return v


def _time(v: Any, hi: float) -> float:
    if type(v) not in (int, float) or not math.isfinite(v) or not 0 <= v <= hi:
        raise BadCache("a time out of range")
    return float(v)


def _str(v: Any) -> str:
    if type(v) is not str or len(v) > MAX_TEXT:
        raise BadCache("a text out of range")
    return v


def _bool(v: Any) -> bool:
    if type(v) is not bool:
        raise BadCache("not a flag")
    return v


def _within(a: array, lo: int, hi: int, what: str) -> None:
    if a and ((a.typecode not in "BHIL" and min(a) < lo) or max(a) > hi):
        raise BadCache(f"{what} out of range")


def _list(v: Any, n: int | None = None) -> list:
    if not isinstance(v, list) or (n is not None and len(v) != n):
        raise BadCache("a list of the wrong shape")
    return v


def _index(body: Any, cols: dict[str, array], recording: Recording) -> tuple[list[Keyframe], list[Marker]]:
    if not isinstance(body, dict) or set(body) != {"chars", "keyframes", "markers"}:
        raise BadCache("index")
    chars = []
    for row in _list(body["chars"]):
        row = _list(row, 9)
        chars.append(Char(_str(row[0]), _str(row[1]), _str(row[2]), *map(_bool, row[3:])))
    n_chars = len(chars) - 1

    def char(i: Any) -> Char:
        return chars[_int(i, 0, n_chars)]

    # the line tables: every reference in bounds, every line's cells and columns a slice that exists
    defaults, ends, key_starts = cols["line_default"], cols["line_end"], cols["line_keys"]
    cells, keys, screens = cols["cells"], cols["keys"], cols["screens"]
    n_lines = len(defaults)
    if len(ends) != n_lines or len(key_starts) != n_lines or (ends[-1] if ends else 0) != len(cells):
        raise BadCache("line tables")
    _within(defaults, 0, n_chars, "a line's default cell")
    _within(cells, 0, n_chars, "a cell")  # unsigned: only the maximum can be out
    _within(keys, 0, MAX_SIZE, "a column")
    start = 0
    for end, key_start in zip(ends, key_starts):
        if end < start or (key_start != -1 and not 0 <= key_start <= len(keys) - (end - start)):
            raise BadCache("line tables")
        start = end
    if len(screens) % 2:
        raise BadCache("screens")
    _within(screens[0::2], 0, MAX_SIZE, "a screen row")
    _within(screens[1::2], 0, n_lines - 1, "a screen line")

    made: dict[int, tuple] = {}
    get_char = chars.__getitem__

    def line(i: int) -> tuple:
        found = made.get(i)
        if found is None:
            first = ends[i - 1] if i else 0
            last = ends[i]
            k = key_starts[i]
            row_keys: Any = range(last - first) if k == -1 else tuple(keys[k:k + last - first])
            found = made[i] = (chars[defaults[i]], row_keys, tuple(map(get_char, cells[first:last])))
        return found

    def screen(v: Any) -> tuple[int, int]:
        v = _list(v, 2)
        first, last = _int(v[0], 0, len(screens)), _int(v[1], 0, len(screens))
        if first > last or first % 2:
            raise BadCache("a screen")
        return first, last

    def buffer(span: tuple[int, int]) -> tuple:
        pairs = screens[span[0]:span[1]]
        return tuple((pairs[j], line(pairs[j + 1])) for j in range(0, len(pairs), 2))

    def cursor(v: Any) -> Cursor:
        v = _list(v, 4)
        c = Cursor(_int(v[0], 0, MAX_SIZE), _int(v[1], 0, MAX_SIZE), char(v[2]))
        c.hidden = _bool(v[3])
        return c

    def charset(v: Any) -> str:
        if type(v) is not str or v not in _CHARSETS:
            raise BadCache("a charset")
        return _CHARSETS[v]

    frames = len(recording.frames)
    times = recording.times
    keyframes: list[Keyframe] = []
    last = 0
    for kf in _list(body["keyframes"]):
        kf = _list(kf, 18)
        position = last = _int(kf[0], last + 1, frames)
        if _time(kf[1], math.inf) != times[position - 1]:
            raise BadCache("a keyframe's time")
        savepoints = tuple(
            Savepoint(cursor(s[0]), charset(s[1]), charset(s[2]), _int(s[3], 0, 1), _bool(s[4]), _bool(s[5]))
            for s in map(lambda s: _list(s, 6), _list(kf[8])))
        margins = kf[9]
        if margins is not None:
            margins = _list(margins, 2)
            margins = Margins(_int(margins[0], 0, MAX_SIZE), _int(margins[1], 0, MAX_SIZE))
        main = None if kf[5] is None else screen(kf[5])
        alt_cursor = None if kf[6] is None else cursor(kf[6])
        rest = (cursor(kf[7]), savepoints, margins, frozenset(_int(m, 0, MAX_MODE) for m in _list(kf[10])),
                frozenset(_int(t, 0, MAX_SIZE) for t in _list(kf[11])), _str(kf[12]), _str(kf[13]),
                _int(kf[14], 0, 1), charset(kf[15]), charset(kf[16]),
                None if kf[17] is None else _int(kf[17], 1, MAX_SIZE))
        size = (_int(kf[2], 1, MAX_SIZE), _int(kf[3], 1, MAX_SIZE))
        keyframes.append(Keyframe(position, times[position - 1], _state(size, screen(kf[4]), main, alt_cursor,
                                                                        rest, buffer)))
    found = []
    for m in _list(body["markers"]):
        m = _list(m, 2)
        found.append(Marker(_time(m[0], recording.duration), _str(m[1]), "command"))
    return keyframes, found


def _state(size: tuple[int, int], screen: tuple[int, int], main: tuple[int, int] | None, alt_cursor: Cursor | None,
           rest: tuple, buffer: Any) -> Any:
    """A keyframe's state, made from the checked tables when a seek first needs it."""

    def make() -> tuple:
        return (*size, buffer(screen), None if main is None else buffer(main), alt_cursor, *rest)

    return make


def _text(text: str, cols: dict[str, array], n: int, chunk_lengths: list, frames: int) -> TextIndex:
    """The TextIndex: its chunks cut from `text` by their lengths (each exactly CHUNK lines but the last), the line
    starts found again in them, and the columns checked against the recording."""
    positions, rows, prevs, visible = cols["positions"], cols["rows"], cols["prevs"], cols["visible"]
    if not len(positions) == len(rows) == len(prevs) == len(visible) == n:
        raise BadCache("text columns")
    _within(positions, 0, frames, "a text's position")
    _within(rows, 0, MAX_SIZE - 1, "a text's row")
    _within(prevs, -1, n - 1, "a text's previous version")
    if visible.tobytes().translate(None, b"\x00\x01"):
        raise BadCache("a text's flag")
    versions = TextIndex()
    versions.positions, versions.rows, versions.prevs = array("l", positions), array("l", rows), array("l", prevs)
    versions.visible = array("b", visible.tobytes())
    chunks = []
    starts = array("q")
    offset = 0
    size = TextIndex.CHUNK
    for c, length in enumerate(chunk_lengths):
        chunk = text[offset:offset + _int(length, 1, len(text))]
        offset += length
        lengths = list(map(len, chunk.split("\n")))
        if lengths[-1] != 0 or len(lengths) - 1 != min(size, n - c * size):
            raise BadCache("text chunks")
        # a line starts after the previous one and its newline (the empty part after the last newline starts none)
        starts.extend(accumulate(map(add, lengths, repeat(1, len(lengths) - 2)), initial=0))
        chunks.append(chunk)
    if offset != len(text):
        raise BadCache("text chunks")
    versions.chunks = chunks
    versions.starts = starts
    return versions
