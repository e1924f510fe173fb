"""auditkit.review.replay without a UI: reading recordings (and refusing bad ones, naming the line), the terminal
(alternate screen, tmux's erase rules, the fast paths agreeing with pyte), keyframed seeks equal to a straight
replay, markers at command boundaries, search over the text as it was on screen, and the idle-compressed timeline."""

from __future__ import annotations

import gzip
import json
import random

import pyte
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyte.screens import wcwidth

from auditkit.model import asciicast
from auditkit.review import replay
from auditkit.review.replay import index
from auditkit.synth import sessions
from helpers import FIXTURES


def cast(events: list, width: int = 40, height: int = 6, **header) -> bytes:
    lines = [json.dumps({"version": 2, "width": width, "height": height, **header})]
    lines += [json.dumps(e) for e in events]
    return ("\n".join(lines) + "\n").encode()


def render(data: str, width: int = 40, height: int = 6) -> replay.Terminal:
    term = replay.Terminal(width, height)
    replay.TerminalStream(term).feed(data)
    return term


def text(data: str, width: int = 40, height: int = 6) -> list[str]:
    return render(data, width, height).snapshot().text()


@pytest.fixture(autouse=True)
def small_keyframes(monkeypatch):
    """Keyframes every few hundred characters, so that the small recordings here have many."""
    monkeypatch.setattr(index, "KEYFRAME_BYTES", 300)


# --- reading --------------------------------------------------------------------------------------------------------

def test_load_reads_plain_and_gzipped_asciicast_alike():
    data = cast([[0.5, "o", "hello\r\n"], [1.0, "m", "here"], [2.0, "o", "world"]], title="t")
    plain, zipped = replay.load(data), replay.load(gzip.compress(data))
    for rec in (plain, zipped):
        assert (rec.width, rec.height, rec.duration, rec.title) == (40, 6, 2.0, "t")
        assert [f.data for f in rec.frames] == ["hello\r\n", "world"]
        assert rec.markers == [replay.Marker(1.0, "here", "marker")]
    assert replay.screen_at(plain, 0.7).text()[0] == "hello"


@pytest.mark.parametrize("data,message", [
    (b"", "line 1: empty"),
    (b"not json\n", "line 1: not an asciicast v2 header"),
    (b'{"version": 1, "width": 80, "height": 24}\n', "line 1: not an asciicast v2 header (version must be 2)"),
    (b'{"version": 2, "width": 0, "height": 24}\n', "line 1: the header's width must be a whole number"),
    (b'{"version": 2, "width": 80, "height": "24"}\n', "line 1: the header's height must be a whole number"),
    (b'{"version": 2, "width": 80, "height": 24}\n[0.1, "o", "a"]\n\n[0.2, "o"]\n', "line 4: not an asciicast event"),
    (b'{"version": 2, "width": 80, "height": 24}\n[0.1, "o", "a"]\n[-1, "o", "b"]\n', "line 3: the event's time"),
    (b'{"version": 2, "width": 80, "height": 24}\n[0.1, "r", "wide"]\n', "line 2: a resize event needs COLSxROWS"),
    (b'{"version": 2, "width": 80, "height": 24}\n[0.1, "o", "caf\xe9"]\n', "line 2: not UTF-8"),
    (b"\x1f\x8b\x08\x00garbage", "not a readable gzip file"),
])
def test_load_refuses_bad_input_naming_the_line(data, message):
    with pytest.raises(replay.RecordingError) as info:
        replay.load(data)
    assert str(info.value).startswith(message)


def test_times_that_step_back_keep_the_timeline_ordered():
    rec = replay.load(cast([[1.0, "o", "a"], [0.9, "o", "b"], [2.0, "o", "c"]]))
    assert rec.times == [1.0, 1.0, 2.0]
    assert replay.screen_at(rec, 1.0).text()[0] == "ab"


def test_resize_events_change_the_screen_size():
    rec = replay.load(cast([[0.1, "o", "abc"], [0.2, "r", "20x3"], [0.3, "o", "d"]]))
    snap = replay.screen_at(rec, 1)
    assert (snap.width, snap.height) == (20, 3) and snap.text()[0] == "abcd"


# --- the terminal ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [1049, 1047, 47])
def test_the_alternate_screen_restores_the_shell_screen(mode):
    term = render(f"$ ls\r\nfile\r\n$ vim\x1b[?{mode}h\x1b[H\x1b[2Jediting\r\n~\r\n~\x1b[?{mode}l")
    assert term.snapshot().text()[:3] == ["$ ls", "file", "$ vim"]
    assert term.alternate is None
    if mode == 1049:
        assert (term.cursor.x, term.cursor.y) == (5, 2), "1049 restores the cursor too"


def test_inside_the_alternate_screen_only_its_content_shows():
    term = render("$ ls\r\nfile\r\n$ less f\x1b[?1049h\x1b[Hpage one")
    snap = term.snapshot()
    assert snap.text()[0] == "page one" and "file" not in snap.text() and snap.alternate


def test_erasing_uses_the_background_colour_only():
    term = render("\x1b[4;7;41mab\x1b[K")  # underlined, reverse, red background; then erase to the end of line
    snap = term.snapshot()
    (_, first), (blank_text, blank) = snap.lines[0][0], snap.lines[0][1]
    assert first.underscore and first.reverse
    assert blank_text.strip() == "" and blank.bg == "red" and not blank.underscore and not blank.reverse


def test_sequences_pyte_misreads_are_ignored():
    # vim's modifyOtherKeys (pyte took it as SGR 4: underline) and a private SGR (pyte raised TypeError)
    term = render("\x1b[>4;2m\x1b[?4mplain\x1b[3J")
    snap = term.snapshot()
    assert snap.text()[0] == "plain" and not snap.lines[0][0][1].underscore


def test_sequences_pyte_lacks():
    assert text("ab\x1b[3bc")[0] == "abbbbc", "CSI b repeats the last character"
    assert text("abc\x1b[s\r\nxy\x1b[uZ")[:2] == ["abcZ", "xy"], "CSI s / CSI u save and restore the cursor"
    assert text("a\t\tb\x1b[2Zc")[0] == "a       c       b", "CSI Z moves back by tab stops"
    assert text("ab\x1bEcd")[:2] == ["ab", "cd"], "ESC E is a new line (pyte only moved down)"
    assert text("\x1b(0lqk\x1b(B lqk\x0e\x1b)0lqk\x0fq")[0] == "┌─┐ lqk┌─┐q", "DEC line drawing, G0 and G1"
    assert text("\x1bP1$r0m\x1b\\ok\x1b_app\x07!")[0] == "ok!", "DCS and APC strings show nothing"
    assert text("1\r\n2\r\n3\x1b[2S", height=3)[0] == "3" and text("1\x1b[T", height=3)[:2] == ["", "1"]


def test_colon_sgr_and_256_colour_names():
    term = render("\x1b[38:2::255:0:0ma\x1b[38;5;1mb\x1b[38;5;9mc\x1b[105md")
    cells = [attrs for text, attrs in term.snapshot().lines[0] for _ in text][:4]
    assert [c.fg for c in cells[:3]] == ["ff0000", "red", "brightred"]
    assert cells[3].bg == "brightmagenta"


def test_scrolling_fills_new_lines_with_the_background_like_tmux():
    term = render("\x1b[44m" + "\r\n" * 6, height=3)
    assert all(attrs.bg == "blue" for _, attrs in term.snapshot().lines[2])


def test_autowrap_and_the_wrap_position_like_tmux():
    term = render("x" * 40 + "\x1b[K", width=40)
    assert term.snapshot().text()[0] == "x" * 40, "at the wrap position, erasing to the right erases nothing"
    assert text("a" * 45, width=40)[:2] == ["a" * 40, "aaaaa"]
    term = render("\x1b[?7l" + "b" * 45 + "c", width=40)
    assert term.snapshot().text()[:2] == ["b" * 39 + "c", ""] and term.cursor.x == 39, "no wrap: the last column"


@pytest.mark.parametrize("data,rows,cursor", [
    ("xyz \x1b7xyz \x1b8\x1b8Q", ["xyz Qyz"], (5, 0)),  # one saved state, restored as often as asked
    ("\x1b7\x1b[2;5r\x1b8X", ["X"], (1, 0)),  # DECRC goes back above the margins too
    ("\x1b[7m\x1b8ab", ["ab"], (2, 0)),  # DECRC with nothing saved: home, default look (below)
    ("\x1b[2;5r\x1b[AX", ["X"], (1, 0)),  # CUU above the scroll region does not pull the cursor into it
    ("0\r\n1\r\n2\r\n3\r\n4\r\n5\x1b[2;4r\x1b[1;1H\x1b[M", ["1", "2", "3", "4", "5", ""], (0, 0)),
    ("\x1b[?1049h\x1b[?1049l\x1b[5C\x1b[?1049lX", ["X"], (1, 0)),  # 1049l restores the cursor again
    ("a日本\x1b[3Gw", ["a w本"], (3, 0)),  # writing over half a wide character blanks its other half
    ("x" * 40 + "\nA", ["x" * 40, "", "A"], (1, 2)),  # a line feed keeps the wrap position
    ("x" * 40 + "\x1b[BA", ["x" * 40, " " * 39 + "A"], (40, 1)),  # a cursor move leaves it
    ("x" * 40 + "\x1b[2DA", ["x" * 38 + "Ax"], (39, 0)),  # backing up counts from one past the last column
    ("x" * 40 + "\tA", ["x" * 40, "A"], (1, 1)),  # a tab there does nothing
    ("\x1b[?7l" + "w" * 39 + "日", ["w" * 39], (39, 0)),  # no autowrap: a wide character that does not fit
])
def test_cursor_rules_as_tmux_has_them(data, rows, cursor):
    """Each case was checked against tmux 3.3a (scripts/replay_fidelity.py)."""
    term = render(data)
    assert term.snapshot().text()[:len(rows)] == [r.rstrip() for r in rows]
    assert (term.cursor.x, term.cursor.y) == cursor
    if data.startswith("\x1b[7m"):
        assert not term.snapshot().lines[0][0][1].reverse


def test_inserted_and_deleted_characters_get_the_background():
    term = render("abcdef\x1b[44m\x1b[1;2H\x1b[2@\x1b[1;6H\x1b[P")
    cells = [(ch, attrs.bg) for text, attrs in term.snapshot().lines[0] for ch in text][:8]
    assert cells == [("a", "default"), (" ", "blue"), (" ", "blue"), ("b", "default"), ("c", "default"),
                     ("e", "default"), ("f", "default"), (" ", "default")]
    assert [attrs.bg for text, attrs in term.snapshot().lines[0] for _ in text][-1] == "blue"


def test_margins_and_lines_like_tmux():
    term = render("\x1b[2;3r\x1b[3;1H1\n2\n3\x1b[r")
    assert (term.cursor.x, term.cursor.y) == (0, 0), "resetting the margins homes the cursor"
    term = render("abc\r\ndef\r\nghi\x1b[2;3H\x1b[Lq")
    assert term.snapshot().text()[:4] == ["abc", "  q", "def", "ghi"], "inserting lines leaves the cursor's column"
    term = render("abc\r\ndef\r\nghi\x1b[2;3H\x1b[Mq")
    assert term.snapshot().text()[:3] == ["abc", "ghq", ""], "so does deleting them"


def test_wide_characters_take_two_cells():
    snap = render("日本語 ok").snapshot()
    assert snap.text()[0] == "日本語 ok"
    assert sum(len(t) + sum(1 for c in t if wcwidth(c) == 2) for t, _ in snap.lines[0]) == 40


_SIMPLE = st.one_of(
    st.text(alphabet="abcdefghij XYZ0123456789-=_:;.,", min_size=1, max_size=30),
    st.text(alphabet="日本語é\u0301ü ", min_size=1, max_size=4),
    st.sampled_from(["\r", "\n", "\r\n", "\b", "\t", "\x1b[m", "\x1b[1;31m", "\x1b[32;44m", "\x1b[0m", "\x1b[7m",
                     "\x1b[38;5;208m", "\x1b[48;2;10;20;30m", "\x1b[22m", "\x1b[K", "\x1b[1K", "\x1b[2J", "\x1b[J",
                     "\x1b[L", "\x1b[2M", "\x1b[3@", "\x1b[2P", "\x1b[2X", "\x1b[2;4r", "\x1b[r", "\x1bM", "\x1b7",
                     "\x1b8", "\x1b[?7l", "\x1b[?7h", "\x1b[4h", "\x1b[4l", "\x1b[?1049h", "\x1b[?1049l"]),
    st.builds(lambda n, f: f"\x1b[{n}{f}", st.integers(0, 12), st.sampled_from("ABCDGd")),
    st.builds(lambda y, x: f"\x1b[{y};{x}H", st.integers(1, 8), st.integers(1, 45)),
)


class _OneStepAtATime(replay.Terminal):
    """The same terminal without the fast path for text."""

    def draw(self, data: str) -> None:
        self._draw_slow(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(_SIMPLE, max_size=40))
def test_the_fast_paths_draw_what_the_slow_paths_draw(parts):
    """Whole CSI sequences read by a regular expression and ASCII text drawn a run at a time come out cell for cell
    as pyte's own parser (a character per step) driving the terminal a character at a time."""
    data = "".join(parts)
    slow = _OneStepAtATime(40, 6)
    pyte.Stream(slow).feed(data)
    fast = render(data)
    for y in range(6):
        assert [fast.buffer[y][x] for x in range(40)] == [slow.buffer[y][x] for x in range(40)], repr(data)
    assert (fast.cursor.x, fast.cursor.y, fast.alternate is None) == (slow.cursor.x, slow.cursor.y,
                                                                      slow.alternate is None)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(1, 60), max_size=30))
def test_a_stream_cut_anywhere_draws_the_same(seed, cuts):
    """Output split at any points (escape sequences cut in half, as pty reads do) draws what it draws whole."""
    data = _busy_output(random.Random(seed), 6)
    whole = render(data, 30, 8).snapshot()
    term = replay.Terminal(30, 8)
    stream = replay.TerminalStream(term)
    at = 0
    for n in cuts:
        stream.feed(data[at:at + n])
        at += n
    stream.feed(data[at:])
    assert term.snapshot() == whole


# --- keyframes and seeking -----------------------------------------------------------------------------------------

def _busy_output(rng: random.Random, steps: int) -> str:
    """Shell output, colours, progress bars, a scroll region, insert/delete lines and the alternate screen."""
    out = []
    for _ in range(steps):
        kind = rng.randrange(6)
        if kind == 0:
            out.append("".join(f"\x1b[3{rng.randrange(8)}mline {rng.randrange(999)}\x1b[0m word\r\n"
                               for _ in range(rng.randrange(1, 12))))
        elif kind == 1:
            out.append("".join(f"\r[{'#' * i:<10}] {i * 10}%" for i in range(11)) + "\r\n")
        elif kind == 2:
            out.append("\x1b[?1049h\x1b[H\x1b[2J\x1b[2;6r\x1b[6;1H" + "".join(f"\nrow {i}" for i in range(8))
                       + "\x1b[2;1H\x1bM\x1b[L\x1b[2M" + "\x1b[r\x1b[?1049l")
        elif kind == 3:
            out.append(f"\x1b[{rng.randrange(1, 8)};{rng.randrange(1, 30)}H\x1b[1;44mX\x1b[0m\x1b[K\x1b[J")
        elif kind == 4:
            out.append("ünïcödé 日本 " * rng.randrange(1, 4) + "\r\n")
        else:
            out.append("\x1b7\x1b[1;1Hstatus\x1b8\x1b[S\x1b[T" + "y" * rng.randrange(60))
    return "".join(out)


def _busy_recording(seed: int, frames: int = 120) -> replay.Recording:
    rng = random.Random(seed)
    events = []
    t = 0.0
    for _ in range(frames):
        t += rng.choice([0.01, 0.1, 0.5, 3.0, 12.0])
        data = _busy_output(rng, 1)
        cut = rng.randrange(len(data) + 1)  # frames split mid-sequence, as pty reads are
        events += [[round(t, 3), "o", data[:cut]], [round(t + 0.001, 3), "o", data[cut:]]]
    return replay.load(cast(events, width=30, height=8))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeking_through_keyframes_equals_a_straight_replay(seed):
    rec = _busy_recording(seed)
    rec.build_index()
    assert len(rec.keyframes) > 10
    rng = random.Random(seed)
    player = replay.Player(rec)
    for _ in range(40):
        position = rng.randrange(len(rec.frames) + 1)
        player.seek_position(position)
        straight = replay.Player(replay.load(cast([[f.time, "o", f.data] for f in rec.frames], 30, 8)))
        straight.seek_position(position)
        assert player.snapshot() == straight.snapshot(), position


def test_seek_by_time_and_step():
    rec = replay.load(cast([[1.0, "o", "a"], [2.0, "o", "b"], [2.0, "o", "c"], [5.0, "o", "d"]]))
    player = replay.Player(rec)
    player.seek(2.0)
    assert player.position == 3 and player.snapshot().text()[0] == "abc"
    assert player.step() and player.snapshot().text()[0] == "abcd"
    assert not player.step()
    player.seek(0)
    assert player.snapshot().text()[0] == "" and player.time == 0.0


def test_seek_cost_counts_output_from_the_nearest_start():
    rec = replay.load(cast([[i, "o", "x" * 100] for i in range(1, 21)]))
    rec.build_index()
    player = replay.Player(rec)
    keyframe = rec.keyframe_before(14)
    assert keyframe is not None and 0 < keyframe.position < 13
    assert player.seek_cost(14) == (14 - keyframe.position) * 100, "from the keyframe, not from the start"
    player.seek_position(13)
    assert player.seek_cost(14) == 100, "from where the player is, when that is nearer"
    assert player.seek_cost(3) == (3 - rec.keyframe_before(3).position) * 100


def test_the_index_can_be_cancelled_and_built_again():
    rec = _busy_recording(4, 400)
    assert rec.build_index(cancelled=lambda: True) is False and not rec.indexed
    kept = len(rec.keyframes)
    assert rec.build_index() is True and rec.indexed
    positions = [k.position for k in rec.keyframes]
    assert positions == sorted(set(positions)) and len(positions) >= kept


# --- markers --------------------------------------------------------------------------------------------------------

def test_markers_are_the_commands_typed_at_prompts():
    recording = sessions.shell_session(sessions.RAILS_LS, sessions.RAILS_EXTRA)(random.Random(3), 0, "web-1", None)[1]
    rec = replay.load(recording)
    rec.build_index()
    commands = [m.label for m in rec.markers]
    assert commands[0] == "ls --color" and commands[-1] == "exit" and len(commands) >= 4
    assert all(m.kind == "command" for m in rec.markers)
    first = replay.screen_at(rec, rec.markers[0].time).text()
    assert first[0].endswith("# ls --color"), "at a marker the command has just been entered"


def test_markers_from_the_real_shell_fixtures():
    rec = replay.load((FIXTURES / "replay_vim.cast").read_bytes())
    rec.build_index()
    assert [m.label for m in rec.markers] == ["echo before vim", "vim -u DEFAULTS -i NONE -N ledger.py",
                                             "echo after vim"], "nothing typed inside vim counts as a command"


def test_a_command_that_wraps_is_one_marker():
    command = "echo " + "x" * 50
    rec = replay.load(cast([[0.1, "o", "$ "], *[[0.2 + i / 100, "o", ch] for i, ch in enumerate(command)],
                            [2.0, "o", "\r\nout\r\n$ "]], width=30, height=6))
    rec.build_index()
    assert [m.label for m in rec.markers] == [command]


def test_input_enter_and_asciicast_markers():
    rec = replay.load(cast([[0.1, "o", "$ "], [1.0, "i", "l"], [1.1, "o", "l"], [1.2, "i", "s"], [1.3, "o", "s"],
                            [1.5, "i", "\r"], [1.6, "o", "\r\nfile\r\n$ "], [3.0, "m", "checkpoint"],
                            [8.0, "i", "tpo"], [8.2, "i", "\x7f\x7fop"], [8.3, "i", "\x1b[A"], [9.0, "i", "\r"],
                            [9.5, "i", "\r"]]))
    rec.build_index()
    assert [(m.time, m.label, m.kind) for m in rec.markers] == [
        (1.6, "ls", "command"), (3.0, "checkpoint", "marker"), (9.0, "top", "input"), (9.5, "Enter", "input")], \
        "Enter at 1.5 s is the `ls` command's boundary, not a second marker"


# --- search ---------------------------------------------------------------------------------------------------------

def test_search_finds_text_split_by_colours_and_overwritten_by_carriage_returns():
    rec = replay.load(cast([
        [0.5, "o", "\x1b[31mfo\x1b[32mo\x1b[0m bar\r\n"],
        *[[1 + i / 10, "o", f"\rDownloading pkg {i * 10:3d}%"] for i in range(11)],
        [3.0, "o", "\r\n"],
    ]))
    foo = replay.search(rec, "foo")
    assert [(m.line, m.col, m.length) for m in foo] == [(0, 0, 3)]
    assert replay.search(rec, "50%")[0].time == 1.5
    assert len(replay.search(rec, "Downloading")) == 1, "text redrawn in place is one match"
    assert [m.time for m in replay.search(rec, "90%")] == [1.9], "each state of the bar was on screen"


def test_every_match_is_on_screen_at_its_position():
    for name in ("ls", "vim", "less", "progress"):
        rec = replay.load((FIXTURES / f"replay_{name}.cast").read_bytes())
        for query in ("dev@box", "order", "refund", "100.0%", "def", "README", "paid"):
            for m in replay.search(rec, query):
                assert m.visible
                player = replay.Player(rec)
                player.seek_position(m.position)
                line = player.snapshot().text()[m.line]
                assert line[m.col:m.col + m.length].lower() == query.lower(), (name, query, m)


def test_text_that_scrolls_through_within_one_frame_is_found_but_marked():
    rec = replay.load(cast([[0.5, "o", "\r\n".join(f"line{i}" for i in range(10))], [1.0, "o", "\r\nend"]],
                           height=3))
    first = replay.search(rec, "line1")
    assert len(first) == 1 and not first[0].visible and first[0].time == 0.5
    assert replay.search(rec, "line9")[0].visible


def test_search_is_smart_case_and_ignores_empty_queries():
    rec = replay.load(cast([[0.5, "o", "Error and error\r\n"]]))
    assert len(replay.search(rec, "error")) == 2
    assert [m.col for m in replay.search(rec, "Error")] == [0]
    assert replay.search(rec, "  ") == []


def test_search_across_the_alternate_screen():
    rec = replay.load(cast([[0.5, "o", "$ less\r\n"], [1.0, "o", "\x1b[?1049h\x1b[Hinside less"],
                            [2.0, "o", "\x1b[?1049l$ after"]]))
    inside = replay.search(rec, "inside")
    assert [(m.time, m.line) for m in inside] == [(1.0, 0)]
    assert [m.time for m in replay.search(rec, "$ less")] == [0.5, 2.0], "the shell screen shows it again after less"


# --- timeline -------------------------------------------------------------------------------------------------------

def test_idle_compress_caps_pauses():
    assert replay.idle_compress([1.0, 1.5, 10.0, 10.2], 2.0) == pytest.approx([1.0, 1.5, 3.5, 3.7])
    assert replay.idle_compress([1.0, 10.0], None) == [1.0, 10.0]


def test_timeline_maps_both_ways():
    rec = replay.load(cast([[1.0, "o", "a"], [30.0, "o", "b"], [31.0, "o", "c"]]))
    timeline = replay.Timeline(rec, 2.0)
    assert timeline.duration == 4.0
    assert timeline.to_play(30.0) == 3.0 and timeline.to_recording(3.0) == 30.0
    assert timeline.to_play(15.0) == 3.0, "inside a long pause the playhead waits at its cap"
    assert timeline.to_recording(2.5) == 2.5
    assert replay.Timeline(rec, None).duration == 31.0


def test_format_time():
    assert [replay.format_time(s) for s in (0, 61.9, 3725)] == ["0:00", "1:01", "1:02:05"]


def test_recorder_output_replays():
    recorder = asciicast.Recorder(width=20, height=4, started=0, clock=lambda: 0.0)
    recorder.output("hi\r\n", at=0.1)
    recorder.marker("m1", at=0.2)
    rec = replay.load(recorder.getvalue())
    assert rec.markers[0].label == "m1" and replay.screen_at(rec, 1).text()[0] == "hi"
