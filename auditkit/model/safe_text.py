"""Event text made safe to show: the one sanitiser every surface that puts event fields in front of a person calls
(the `auditkit events` table, the TUI, CSV cells, the share and admin pages).

Event fields come from whoever can write through the gateway. Shown as they are, control characters drive the
reader's terminal (`\\x1b]0;pwned\\x07`, `\\x1b[2J`), bidi controls reorder what is read (U+202E), and zero-width
characters make two different names look alike. `printable` writes each of them as a visible escape (`\\x1b`,
`\\u202e`) and leaves every other character, markup-looking text included, as it is: markup is the renderer's
business (Rich Text, Jinja autoescape), never this module's.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline too: one field is one line), DEL and C1 controls; zero-width and joiner characters,
# bidi marks, embeddings, overrides and isolates; line and paragraph separators; the BOM and interlinear
# annotations; lone surrogates (what a non-UTF-8 byte becomes under surrogateescape).
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control, bidi, zero-width and separator character written as a visible escape."""
    return UNSAFE.sub(_escape, text)


def printable_lines(text: str) -> str:
    """printable() for text of several lines (pretty-printed JSON): its newlines are kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


def is_printable(text: str) -> bool:
    """Whether `text` holds none of the characters `printable` escapes."""
    return UNSAFE.search(text) is None
