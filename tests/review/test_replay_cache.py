"""The recording index cached beside the mirror (auditkit.review.replay.cache), against a real mirror file: a warm
open shows what a cold open shows (screens at any seek point, search results, markers) without running the indexing
pass; every cache that is damaged, foreign, old or hostile is discarded and rebuilt; files are private, writes
atomic, the folder bounded with least-recently-used eviction; `auditkit replay` and the TUI use it without a flag."""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditkit import store
from auditkit.cli import main
from auditkit.review import replay
from auditkit.review.replay import cache, index
from auditkit.review.tui.screens import replay as screen_mod

SESSION = "ses_cached"
QUERIES = ("line", "ERROR", "row 3", "日本", "status", "no such text")


def _output(rng: random.Random) -> str:
    """Prompts with commands, colours, progress bars, a scroll region and the alternate screen, wide characters."""
    kind = rng.randrange(6)
    if kind == 0:
        return f"$ echo {rng.randrange(999)}\r\n" + "".join(
            f"\x1b[3{rng.randrange(8)}mline {rng.randrange(999)}\x1b[0m word\r\n" for _ in range(rng.randrange(1, 9)))
    if kind == 1:
        return "".join(f"\r[{'#' * i:<10}] {i * 10}%" for i in range(11)) + "\r\n"
    if kind == 2:
        return ("\x1b[?1049h\x1b[H\x1b[2J\x1b[2;6r\x1b[6;1H" + "".join(f"\nrow {i}" for i in range(8))
                + "\x1b[2;1H\x1bM\x1b[L\x1b[2M\x1b(0lqk\x1b(B" + "\x1b[r\x1b[?1049l")
    if kind == 3:
        return f"\x1b[{rng.randrange(1, 8)};{rng.randrange(1, 30)}H\x1b[1;44mERROR\x1b[0m\x1b[K\x1b[J"
    if kind == 4:
        return "ünïcödé 日本 " * rng.randrange(1, 4) + "\r\n"
    return "\x1b7\x1b[1;1Hstatus\x1b8\x1b[S\x1b[T\x1b]0;title\x07" + "y" * rng.randrange(60)


def make_cast(seed: int, frames: int = 150, width: int = 30, height: int = 8) -> bytes:
    rng = random.Random(seed)
    lines = [json.dumps({"version": 2, "width": width, "height": height, "timestamp": 1790848800})]
    t = 0.0
    for i in range(frames):
        t += rng.choice([0.01, 0.1, 0.5, 3.0])
        data = _output(rng)
        cut = rng.randrange(len(data) + 1)  # frames split mid-sequence, as pty reads are
        lines += [json.dumps([round(t, 3), "o", data[:cut]]), json.dumps([round(t + 0.001, 3), "o", data[cut:]])]
        if i % 10 == 0:  # a prompt, then a command typed a key at a time (a command marker)
            for part in ["$ ", *f"ls -l dir{i}", "\r\n"]:
                t += 0.05
                lines.append(json.dumps([round(t, 3), "o", part]))
        if i == frames // 2:
            lines.append(json.dumps([round(t + 0.002, 3), "r", f"{width + 4}x{height + 2}"]))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(autouse=True)
def small_keyframes(monkeypatch):
    """Keyframes every few hundred characters, so that these small recordings have many."""
    monkeypatch.setattr(index, "KEYFRAME_BYTES", 300)


@pytest.fixture
def passes(monkeypatch) -> list[int]:
    """Counts the indexing passes (index.build runs)."""
    ran: list[int] = []
    real = index.build

    def counting(*args, **kwargs):
        ran.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(index, "build", counting)
    return ran


def make_mirror(folder: Path, data: bytes, session_id: str = SESSION) -> Path:
    path = folder / "audit.db"
    conn = store.open_db(path)
    store.add_session(conn, {"id": session_id, "rack": "acme/production", "actor": "alice@x.io", "command": "bash"},
                      data)
    conn.close()
    return path


def open_recording(mirror: Path, session_id: str = SESSION) -> replay.Recording:
    conn = store.open_db(mirror, readonly=True)
    try:
        return replay.open_session(conn, session_id).recording
    finally:
        conn.close()


def cache_file(mirror: Path, data: bytes) -> Path:
    return mirror.parent / cache.DIRNAME / f"{hashlib.sha256(data).hexdigest()}{cache.SUFFIX}"


def screens(rec: replay.Recording, positions: list[int]) -> list:
    player = replay.Player(rec)
    out = []
    for p in positions:
        player.seek_position(p)
        out.append(player.snapshot())
    return out


def facts(rec: replay.Recording) -> tuple:
    return rec.markers, [replay.search(rec, q) for q in QUERIES]


# --- warm equals cold -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cold_and_warm(tmp_path_factory):
    """One recording opened cold (its index built and cached) and then warm (the cache read)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(index, "KEYFRAME_BYTES", 300)
        data = make_cast(7, frames=220)
        mirror = make_mirror(tmp_path_factory.mktemp("mirror"), data)
        cold = open_recording(mirror)
        assert cold.build_index()
        assert cache_file(mirror, data).is_file()
        warm = open_recording(mirror)
        ran = []
        m.setattr(index, "build", lambda *a, **k: ran.append(1))
        assert warm.build_index() and warm.indexed and not ran, "the warm open read the cache"
        m.undo()
        yield cold, warm


def test_the_cache_keeps_many_keyframes_and_markers(cold_and_warm):
    cold, warm = cold_and_warm
    assert len(cold.keyframes) > 20 and any(m.kind == "command" for m in cold.markers)
    assert [(k.position, k.time) for k in warm.keyframes] == [(k.position, k.time) for k in cold.keyframes]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_a_warm_open_shows_the_screens_a_cold_open_shows(cold_and_warm, points):
    cold, warm = cold_and_warm
    positions = [round(p * len(cold.frames)) for p in points]
    assert screens(warm, positions) == screens(cold, positions)


def test_a_warm_open_finds_what_a_cold_open_finds(cold_and_warm):
    cold, warm = cold_and_warm
    assert facts(warm) == facts(cold)
    assert any(facts(cold)[1]), "the queries find something"


def test_the_second_open_does_not_run_the_indexing_pass(tmp_path, passes):
    data = make_cast(3)
    mirror = make_mirror(tmp_path, data)
    first = open_recording(mirror)
    assert not first.indexed and first.index_cache is not None
    first.build_index()
    assert len(passes) == 1
    second = open_recording(mirror)
    second.build_index()
    assert second.indexed and len(passes) == 1
    assert replay.search(second, "line") == replay.search(first, "line") and len(passes) == 1, \
        "searching reads the cached text"
    assert screens(second, [len(second.frames)]) == screens(first, [len(first.frames)])


# --- every bad cache is rebuilt -------------------------------------------------------------------------------------

def split(blob: bytes) -> tuple[dict, dict[str, bytes]]:
    """A cache file's header and its sections, inflated (the test's own reading of the format)."""
    content = blob[:-32]
    end = content.index(b"\n")
    header = json.loads(content[:end])
    sections, at = {}, end + 1
    for name, length, _ in header["sections"]:
        sections[name] = zlib.decompress(content[at:at + length])
        at += length
    return header, sections


def join(header: dict, sections: dict[str, bytes], *, raw_sizes: dict[str, int] | None = None) -> bytes:
    """A cache file from a header and sections, with a checksum that matches: what a forger would write."""
    packed = {name: zlib.compress(data) for name, data in sections.items()}
    header = dict(header, sections=[[name, len(packed[name]), (raw_sizes or {}).get(name, len(sections[name]))]
                                    for name in cache.SECTIONS])
    out = json.dumps(header).encode() + b"\n" + b"".join(packed[name] for name in cache.SECTIONS)
    return out + hashlib.sha256(out).digest()


def reseal(blob: bytes) -> bytes:
    return blob + hashlib.sha256(blob).digest()


def index_edit(change):
    def edit(blob: bytes) -> bytes:
        header, sections = split(blob)
        body = json.loads(sections["index"])
        change(body)
        sections["index"] = json.dumps(body).encode()
        return join(header, sections)
    return edit


def header_edit(change):
    def edit(blob: bytes) -> bytes:
        header, sections = split(blob)
        change(header)
        return join(header, sections)
    return edit


def column_edit(section: str, column: str, value: int):
    """Set the first value of one column of a section (little-endian, the column's own type)."""
    import struct

    def edit(blob: bytes) -> bytes:
        header, sections = split(blob)
        offset = 0
        for (name, code), count in zip(cache.COLUMNS[section], header["columns"][section]):
            if name == column:
                break
            offset += struct.calcsize(code) * count
        data = bytearray(sections[section])
        packed = struct.pack("<" + dict(cache.COLUMNS[section])[column], value)
        data[offset:offset + len(packed)] = packed
        sections[section] = bytes(data)
        return join(header, sections)
    return edit


def section_edit(name: str, data: bytes):
    def edit(blob: bytes) -> bytes:
        header, sections = split(blob)
        sections[name] = data
        return join(header, sections)
    return edit


def flip(at: float):
    def edit(blob: bytes) -> bytes:
        data = bytearray(blob)
        data[int(at * (len(data) - 1))] ^= 0x10
        return bytes(data)
    return edit


def zip_bomb(blob: bytes) -> bytes:
    """The index section inflates to 64 MiB of zeros while the header claims its real size."""
    header, sections = split(blob)
    real = len(sections["index"])
    sections["index"] = bytes(64 << 20)
    return join(header, sections, raw_sizes={"index": real})


def other_recordings(blob: bytes, mirror: Path) -> bytes:
    """A valid cache file, of another recording, put under this one's name."""
    other = make_cast(99)
    folder = mirror.parent / "other"
    folder.mkdir()
    other_mirror = make_mirror(folder, other)
    open_recording(other_mirror).build_index()
    return cache_file(other_mirror, other).read_bytes()


def set_(path: list, value):
    def change(body):
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


BAD = {
    "empty": lambda blob: b"",
    "truncated in half": lambda blob: blob[:len(blob) // 2],
    "last byte missing": lambda blob: blob[:-1],
    "a byte more": lambda blob: blob + b"\0",
    "bit flipped in the header": flip(0.01),
    "bit flipped in a section": flip(0.6),
    "bit flipped in the checksum": flip(1.0),
    "not a cache file at all": lambda blob: b"\x80\x04\x95 pickle? no\n" * 100,
    "older index format version": header_edit(set_(["version"], cache.VERSION - 1)),
    "newer index format version": header_edit(set_(["version"], cache.VERSION + 1)),
    "other keyframe parameters": header_edit(lambda h: h["params"].update(keyframe_bytes=32 * 1024)),
    "other engine": header_edit(lambda h: h["params"].update(engine="0" * 64)),
    "another recording's sha256 in the header": header_edit(set_(["recording_sha256"], "a" * 64)),
    "another recording's shape": header_edit(set_(["frames"], 3)),
    "huge section size claimed": header_edit(set_(["versions"], 10 ** 30)),
    "huge numbers of columns": header_edit(lambda h: h["columns"].update(screens=[10 ** 18] * 6)),
    "zip bomb": zip_bomb,
    "huge keyframe position": index_edit(lambda b: b["keyframes"][0].__setitem__(0, 10 ** 40)),
    "keyframe positions out of order": index_edit(lambda b: b["keyframes"].reverse()),
    "keyframe time not the recording's": index_edit(lambda b: b["keyframes"][0].__setitem__(1, 1e308)),
    "huge terminal size": index_edit(lambda b: b["keyframes"][0].__setitem__(2, 2 ** 31)),
    "cursor far outside": index_edit(lambda b: b["keyframes"][0][7].__setitem__(0, 10 ** 9)),
    "a cell that is not a cell": index_edit(lambda b: b["chars"].__setitem__(0, ["x", {"a": 1}, "", 0, 0, 0, 0, 0, 0])),
    "a charset pyte does not have": index_edit(lambda b: b["keyframes"][0].__setitem__(15, "K")),
    "a screen past the table": index_edit(lambda b: b["keyframes"][0].__setitem__(4, [0, 10 ** 12])),
    "a marker after the end": index_edit(lambda b: b["markers"].append([1e9, "rm -rf /"])),
    "a NaN time": index_edit(set_(["markers"], [[float("nan"), "x"]])),
    "nested JSON": index_edit(lambda b: b.__setitem__("markers", json.loads("[" * 50 + "]" * 50))),
    "JSON nested past the recursion limit": section_edit("index", b"[" * 200_000 + b"]" * 200_000),
    "JSON that is not UTF-8": section_edit("index", b'{"chars": "\xff"}'),
    "a line's default cell past the cells": column_edit("screens", "line_default", 2 ** 31 - 1),
    "a line ending before it starts": column_edit("screens", "line_end", -5),
    "a line's columns past the table": column_edit("screens", "line_keys", 2 ** 30),
    "a cell past the cells": column_edit("screens", "cells", 65535),
    "a screen row far below": column_edit("screens", "screens", 10 ** 9),
    "a text position past the end": column_edit("text-columns", "positions", 10 ** 9),
    "a text's previous version past the end": column_edit("text-columns", "prevs", 10 ** 9),
    "a text flag that is not one": column_edit("text-columns", "visible", 7),
    "the mirror's other recording": other_recordings,
}


@pytest.mark.parametrize("name", list(BAD))
def test_every_bad_cache_is_discarded_and_rebuilt(tmp_path, passes, name):
    data = make_cast(5)
    mirror = make_mirror(tmp_path, data)
    cold = open_recording(mirror)
    cold.build_index()
    path = cache_file(mirror, data)
    good = path.read_bytes()
    edit = BAD[name]
    bad = edit(good, mirror) if name == "the mirror's other recording" else edit(good)
    assert bad != good
    path.write_bytes(bad)
    try:
        _, text, _ = cache.decode(bad, open_recording(mirror), hashlib.sha256(data).hexdigest())
    except cache.BadCache:
        pass
    else:
        assert name.startswith("a text") and text() is None, "only the text is read later, and it does not check out"

    before = len(passes)
    reopened = open_recording(mirror)
    assert reopened.build_index()
    positions = list(range(0, len(cold.frames) + 1, 7))
    assert screens(reopened, positions) == screens(cold, positions)
    assert facts(reopened) == facts(cold)
    assert len(passes) == before + 1, "the bad cache was not used: the index was built again"
    assert path.read_bytes() == good, "and written again"
    again = open_recording(mirror)
    again.build_index()
    assert facts(again) == facts(cold) and len(passes) == before + 1, "the rewritten cache is used"


def test_a_forged_text_section_is_caught_when_search_reads_it(tmp_path, passes):
    data = make_cast(6)
    mirror = make_mirror(tmp_path, data)
    cold = open_recording(mirror)
    cold.build_index()
    path = cache_file(mirror, data)
    cold_file = path.read_bytes()
    header, sections = split(cold_file)
    sections["text"] = sections["text"].replace(b"\n", b" ", 1)  # one line fewer than the columns say
    path.write_bytes(join(header, sections))
    warm = open_recording(mirror)
    warm.build_index()
    assert len(passes) == 1, "the keyframes and markers checked out"
    assert facts(warm) == facts(cold)
    assert len(passes) == 2, "the text did not: built again"
    assert path.read_bytes() == cold_file, "and the cache written again"
    positions = list(range(0, len(cold.frames) + 1, 5))
    assert screens(warm, positions) == screens(cold, positions) and warm.markers == cold.markers


def test_a_link_a_folder_or_a_foreign_file_in_its_place_is_not_read(tmp_path, passes):
    data = make_cast(8)
    mirror = make_mirror(tmp_path, data)
    open_recording(mirror).build_index()
    path = cache_file(mirror, data)
    elsewhere = tmp_path / "elsewhere.idx"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    open_recording(mirror).build_index()
    assert len(passes) == 2, "a symbolic link is not followed"
    assert not path.is_symlink() and path.read_bytes() == elsewhere.read_bytes(), "it is replaced by a file"
    path.unlink()
    path.mkdir()
    assert open_recording(mirror).build_index() and len(passes) == 3


# --- where, and how -------------------------------------------------------------------------------------------------

def test_cache_files_are_private_whatever_the_umask(tmp_path):
    data = make_cast(9)
    mirror = make_mirror(tmp_path, data)
    old = os.umask(0)
    try:
        open_recording(mirror).build_index()
    finally:
        os.umask(old)
    folder = mirror.parent / cache.DIRNAME
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache_file(mirror, data).stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == [cache_file(mirror, data).name], "no temporary file left"
    folder.chmod(0o755)
    data2 = make_cast(10)
    conn = store.open_db(mirror)
    store.add_session(conn, {"id": "ses_2"}, data2)
    conn.close()
    open_recording(mirror, "ses_2").build_index()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, "a folder opened up is closed again"


def test_deleting_the_cache_folder_is_safe(tmp_path, passes):
    import shutil

    data = make_cast(11)
    mirror = make_mirror(tmp_path, data)
    cold = open_recording(mirror)
    cold.build_index()
    shutil.rmtree(mirror.parent / cache.DIRNAME)
    again = open_recording(mirror)
    again.build_index()
    assert len(passes) == 2 and cache_file(mirror, data).is_file()
    assert facts(again) == facts(cold)


def test_the_folder_is_bounded_dropping_the_least_recently_used(tmp_path, monkeypatch, passes):
    recordings = {f"ses_{i}": make_cast(20 + i) for i in range(3)}
    conn = store.open_db(tmp_path / "audit.db")
    for session_id, data in recordings.items():
        store.add_session(conn, {"id": session_id}, data)
    conn.close()
    mirror = tmp_path / "audit.db"
    for session_id in ("ses_0", "ses_1"):
        open_recording(mirror, session_id).build_index()
    files = {s: cache_file(mirror, d) for s, d in recordings.items()}
    os.utime(files["ses_0"], (1_000_000, 1_000_000))
    os.utime(files["ses_1"], (2_000_000, 2_000_000))
    open_recording(mirror, "ses_0").build_index()  # a warm open: ses_0 is now the most recently used
    assert len(passes) == 2
    sizes = [files[s].stat().st_size for s in ("ses_0", "ses_1")]
    monkeypatch.setattr(cache, "limit_bytes", lambda: sizes[0] + sizes[1] + 10)  # room for two of these three
    open_recording(mirror, "ses_2").build_index()
    assert files["ses_0"].exists() and files["ses_2"].exists() and not files["ses_1"].exists()
    total = sum(p.stat().st_size for p in (mirror.parent / cache.DIRNAME).iterdir())
    assert total <= sizes[0] + sizes[1] + 10 or len(list((mirror.parent / cache.DIRNAME).iterdir())) == 2


def test_a_temporary_file_an_interrupted_write_left_is_cleared(tmp_path):
    folder = tmp_path / cache.DIRNAME
    folder.mkdir(mode=0o700)
    stale, fresh = folder / ".x.idx.abc.tmp", folder / ".y.idx.def.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    os.utime(stale, (1_000_000, 1_000_000))
    assert cache.evict(folder, 1 << 20) == [stale]
    assert fresh.exists()


def test_the_bound_is_set_by_environment_and_zero_turns_the_cache_off(tmp_path, monkeypatch, passes):
    data = make_cast(12)
    mirror = make_mirror(tmp_path, data)
    monkeypatch.setenv(cache.ENV_LIMIT, "0")
    rec = open_recording(mirror)
    assert rec.index_cache is None
    rec.build_index()
    assert not (mirror.parent / cache.DIRNAME).exists()
    monkeypatch.setenv(cache.ENV_LIMIT, "3")
    assert cache.limit_bytes() == 3 << 20
    for bad in ("lots", "-1", "1.5"):
        monkeypatch.setenv(cache.ENV_LIMIT, bad)
        with pytest.raises(cache.CacheSettingError, match=f"AUDITKIT_REPLAY_CACHE_MIB must be a whole number of MiB.*"
                                                          f"not '{bad}'"):
            open_recording(mirror)
    monkeypatch.delenv(cache.ENV_LIMIT)
    assert cache.limit_bytes() == cache.DEFAULT_LIMIT_MIB << 20


def test_an_index_bigger_than_the_bound_is_not_written(tmp_path, monkeypatch):
    data = make_cast(13)
    mirror = make_mirror(tmp_path, data)
    monkeypatch.setattr(cache, "limit_bytes", lambda: 100)
    rec = open_recording(mirror)
    assert rec.build_index() and rec.indexed
    assert not cache_file(mirror, data).exists()


def test_an_unwritable_folder_is_no_error(tmp_path):
    data = make_cast(14)
    mirror = make_mirror(tmp_path, data)
    (mirror.parent / cache.DIRNAME).write_text("a file where the folder goes")
    rec = open_recording(mirror)
    assert rec.build_index() and replay.search(rec, "line")


# --- used without a flag --------------------------------------------------------------------------------------------

def test_auditkit_replay_uses_the_cache_for_sessions_and_files(tmp_path, monkeypatch, passes):
    apps: list = []
    monkeypatch.setattr(screen_mod.ReplayApp, "run", lambda self, *a, **k: apps.append(self))
    data = make_cast(15)
    mirror = make_mirror(tmp_path, data)
    for _ in range(2):
        result = CliRunner().invoke(main, ["replay", SESSION, "--db", str(mirror)])
        assert result.exit_code == 0, result.output
        apps[-1]._screen_args["recording"].build_index()  # what the replay screen does when it mounts
    assert len(passes) == 1 and cache_file(mirror, data).is_file()

    path = tmp_path / "other.cast"
    path.write_bytes(make_cast(16))
    for _ in range(2):
        result = CliRunner().invoke(main, ["replay", str(path), "--db", str(mirror)])
        assert result.exit_code == 0, result.output
        apps[-1]._screen_args["recording"].build_index()
    assert len(passes) == 2 and cache_file(mirror, path.read_bytes()).is_file()

    monkeypatch.setenv(cache.ENV_LIMIT, "many")
    result = CliRunner().invoke(main, ["replay", SESSION, "--db", str(mirror)])
    assert result.exit_code != 0 and "AUDITKIT_REPLAY_CACHE_MIB must be a whole number" in result.output
    assert "Traceback" not in result.output


def test_a_file_bigger_than_the_bound_is_not_read(tmp_path, monkeypatch, passes):
    data = make_cast(17)
    mirror = make_mirror(tmp_path, data)
    open_recording(mirror).build_index()
    size = cache_file(mirror, data).stat().st_size
    monkeypatch.setattr(cache, "limit_bytes", lambda: size - 1)
    open_recording(mirror).build_index()
    assert len(passes) == 2
