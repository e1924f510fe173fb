"""Compare auditkit.review.replay's terminal with tmux on escape sequences, named and random; shrink any difference.

    python scripts/replay_fidelity.py                 # the named cases and 60 random sequences
    python scripts/replay_fidelity.py --seed 3 --random 200
    python scripts/replay_fidelity.py --no-wide       # random sequences without wide characters

For each sequence: tmux shows the bytes in a 30x6 pane (as scripts/replay_fixtures.py does), replay renders them, and
the cells (character, colours, attributes; trailing blanks aside, which tmux's capture leaves out) and the cursor are
compared. A random sequence that differs is shrunk to the fewest pieces that still differ, which is what to read.
Needs tmux. This is a development tool (each sequence is a tmux capture, which is slow); the tests run on committed
fixtures instead.

Known differences left (tmux's own quirks on rare input, where replay does what xterm does): a half of a wide character
erased on its own or split by character insertion; backspace at column 0 of a wrapped line (tmux goes up a line);
inserting as many blank characters or lines as are left to the edge (tmux leaves the row as it was); insert mode
across an autowrap.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from replay_fixtures import tmux_capture  # noqa: E402
from test_replay_tmux import _cells_of_capture, _cells_of_snapshot  # noqa: E402

from auditkit.review import replay  # noqa: E402

WIDTH, HEIGHT = 30, 6

NAMED = {
    "sgr": "\x1b[1mB\x1b[3mI\x1b[4mU\x1b[7mR\x1b[9mS\x1b[0m \x1b[31;42mrg\x1b[39mX\x1b[49mY \x1b[91;104mbr\x1b[0m "
           "\x1b[38;5;196mf\x1b[48;5;21mb\x1b[m \x1b[38;2;1;2;3mt\x1b[m",
    "erase with a background": "\x1b[44mab\x1b[K\x1b[m\x1b[1;10HZ",
    "scroll with a background": "\x1b[43m\r\n\r\n\r\n\r\n\r\n\r\n\x1b[m\x1b[6;10HZ",
    "repeat": "ab\x1b[3bc",
    "save and restore with CSI s/u": "abc\x1b[s\r\nxy\x1b[uZ",
    "DECRC twice": "xyz \x1b7xyz \x1b8\x1b8Q",
    "DECRC with nothing saved": "\x1b[7m\x1b8ab",
    "cursor up above the scroll region": "\x1b[2;5r\x1b[AX",
    "lines deleted outside the region": "0\r\n1\r\n2\r\n3\r\n4\r\n5\x1b[2;4r\x1b[1;1H\x1b[M",
    "1049l twice": "\x1b[?1049h\x1b[?1049l\x1b[5C\x1b[?1049lX",
    "wide over half": "a日本\x1b[3Gw",
    "wrap position": "x" * 30 + "\x1b[BA\x1b[1;30H\x1b[2DB" + "\r\n" + "y" * 30 + "\tC",
    "next line": "ab\x1bEcd",
    "line drawing": "\x1b(0lqk\x1b(B",
}

PIECES = ["ab", "xyz ", "\r\n", "\r", "\b", "\t", "\x1b[1;31m", "\x1b[0m", "\x1b[44m", "\x1b[7m", "\x1b[K", "\x1b[1K",
          "\x1b[J", "\x1b[2;4H", "\x1b[A", "\x1b[3B", "\x1b[5C", "\x1b[2D", "\x1b[L", "\x1b[M", "\x1b[2P", "\x1b[3@",
          "\x1b[2X", "\x1bM", "\x1b[2;5r", "\x1b[r", "\x1b7", "\x1b8", "\x1b[?1049h", "\x1b[?1049l", "\x1b[S", "\x1b[T",
          "日本", "\x1b[?7l", "\x1b[?7h", "\x1b[4h", "\x1b[4l", "\x1b[6n", "\x1b[?25l", "\x1b[?25h", "wxyz" * 7]


def differs(data: str) -> str | None:
    """None when replay shows what tmux shows, else what differs."""
    theirs = tmux_capture(data.encode(), WIDTH, HEIGHT)
    term = replay.Terminal(WIDTH, HEIGHT)
    replay.TerminalStream(term).feed(data)
    ours = _cells_of_snapshot(term.snapshot())
    expected = _cells_of_capture(theirs["capture"], WIDTH, HEIGHT)
    for y, (a, b) in enumerate(zip(ours, expected)):
        if a != b:
            return f"row {y}: replay {[c[0] for c in a]} tmux {[c[0] for c in b]} (or their attributes)"
    if [term.cursor.x, term.cursor.y] != theirs["cursor"]:
        return f"cursor: replay {[term.cursor.x, term.cursor.y]} tmux {theirs['cursor']}"
    if (term.alternate is not None) != theirs["alternate"]:
        return "alternate screen"
    return None


def shrink(parts: list[str]) -> list[str]:
    changed = True
    while changed:
        changed = False
        for i in range(len(parts)):
            trial = parts[:i] + parts[i + 1:]
            if differs("".join(trial)):
                parts, changed = trial, True
                break
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--random", type=int, default=60, help="how many random sequences")
    parser.add_argument("--no-wide", action="store_true", help="random sequences without wide characters")
    args = parser.parse_args()
    bad = 0
    for name, data in NAMED.items():
        problem = differs(data)
        if problem:
            bad += 1
            print(f"{name}: {problem}")
    rng = random.Random(args.seed)
    pieces = [p for p in PIECES if not (args.no_wide and not p.isascii())]
    for i in range(args.random):
        parts = [rng.choice(pieces) for _ in range(rng.randrange(10, 60))]
        if differs("".join(parts)):
            bad += 1
            print(f"random {i}: shrinks to {shrink(parts)!r}: {differs(''.join(shrink(parts)))}")
    print(f"{bad} of {len(NAMED) + args.random} differ")


if __name__ == "__main__":
    main()
