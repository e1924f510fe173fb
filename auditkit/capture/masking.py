"""Masking a session's recording: which of an app's values are secrets, the forms a terminal shows them in, and the
streaming masker that replaces each with a mask of the same display width before a byte is recorded.

The rule (RULE_VERSION, recorded in the session's event): a value is masked when it has 8 or more characters, or 4 or
more and its key looks secret (catalog.is_secret_name); a value with fewer than 4 non-blank characters never is (it
would mask every run of spaces). A multi-line value is masked line by line (its lines may end in \\n or \\r\\n). The
password of a URL value is masked on its own too, in the forms it is commonly printed in: as in the URL,
percent-decoded, percent-encoded, base64 (alone and as `user:password`, as in a Basic header).

The masker matches every form at once with an Aho-Corasick automaton (ahocorasick-rs, chosen by bench/masking.py),
leftmost-longest. Output arrives frame by frame; a frame's tail that could be the start of a secret is held back
(never more than the longest form) until the next frame settles it, so the masked stream is exactly what masking the
whole stream at once gives, whatever the frame boundaries. Masks use a character that no form contains, so masked
text can never spell a secret. The secrets live in memory only (Patterns), for the life of a session.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from typing import Iterable, Mapping

import ahocorasick_rs
import wcwidth

from auditkit.capture.catalog import is_secret_name

RULE_VERSION = 1
MIN_LENGTH = 8  # any value this long is masked
MIN_SECRET_LENGTH = 4  # a value under a secret-looking key, this long
MIN_VISIBLE = 4  # non-blank characters a form needs to be masked at all
MASK_CHARS = "*#•x░"  # the mask is the first of these that no form contains

_LINES = re.compile(r"\r?\n|\r")


def masked_values(env: Mapping[str, str]) -> dict[str, str]:
    """The values of `env` the rule masks, by key."""
    return {key: value for key, value in env.items()
            if len(value) >= MIN_LENGTH or (len(value) >= MIN_SECRET_LENGTH and is_secret_name(key))}


def forms(value: str) -> set[str]:
    """What a terminal may show of `value`: its lines, and for a URL with a password that password as written,
    percent-decoded and percent-encoded, and in base64 (alone and `user:password`). Forms with fewer than MIN_VISIBLE
    non-blank characters are left out."""
    out = set(_LINES.split(value))
    user, password = _userinfo(value)
    if password:
        plain = urllib.parse.unquote(password)
        out |= {password, plain, urllib.parse.quote(plain, safe="")}
        for raw in (plain, f"{urllib.parse.unquote(user)}:{plain}"):
            encoded = base64.b64encode(raw.encode("utf-8")).decode("ascii")
            out.add(encoded.rstrip("="))
            # Inside a longer base64 text only the whole 3-byte groups encode the same way (and fewer than 8
            # characters of them would mask too much that is not the password).
            groups = encoded[:len(raw.encode("utf-8")) // 3 * 4]
            if len(groups) >= MIN_LENGTH:
                out.add(groups)
    return {f for f in out if sum(not c.isspace() for c in f) >= MIN_VISIBLE}


def _userinfo(value: str) -> tuple[str, str]:
    """(user, password) of a URL-shaped value, as written (percent-encoded); ("", "") when it has none."""
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://([^/?#@\s]*)@", value)
    if not m or ":" not in m.group(1):
        return "", ""
    user, _, password = m.group(1).partition(":")
    return user, password


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal (wide characters 2, combining 0, a control character counted as 1)."""
    return sum(1 if w < 0 else w for w in map(wcwidth.wcwidth, text))


class Patterns:
    """The compiled forms of a session's secrets ((key, value) pairs, a key may come more than once): the matcher,
    each form's key and mask, the mask character. Built once per session (a few ms for hundreds of values), shared
    by the Maskers of its output and input."""

    def __init__(self, secrets: Iterable[tuple[str, str]]):
        by_form: dict[str, str] = {}
        for key, value in sorted(secrets):
            for form in sorted(forms(value), key=lambda f: (-len(f), f)):
                by_form.setdefault(form, key)
        self.forms = list(by_form)
        self.keys = [by_form[f] for f in self.forms]
        taken = set("".join(self.forms))
        self.mask_char = next((c for c in MASK_CHARS if c not in taken), None) or _free_char(taken)
        self.masks = [self.mask_char * display_width(f) for f in self.forms]
        self.longest = max(map(len, self.forms), default=0)
        self.matcher = (ahocorasick_rs.AhoCorasick(self.forms, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)
                        if self.forms else None)
        self.trie = _trie(self.forms)


class Masker:
    """Masks one stream (a session's output, or its input) of the secrets it is given: Patterns, or (key, value)
    pairs to compile.

    feed(text, at) returns [(time, masked text), …] safe to record now; flush() what is still held at the end.
    `counts` says how often each key was masked. Held text keeps the time it arrived, so a replay's timing does
    not move."""

    def __init__(self, secrets: Patterns | Iterable[tuple[str, str]]):
        patterns = secrets if isinstance(secrets, Patterns) else Patterns(secrets)
        self._forms, self._keys, self._masks = patterns.forms, patterns.keys, patterns.masks
        self.mask_char, self.longest = patterns.mask_char, patterns.longest
        self._matcher, self._trie = patterns.matcher, patterns.trie
        self.counts: dict[str, int] = {}
        self._held = ""
        self._held_at = 0.0

    def feed(self, text: str, at: float = 0.0) -> list[tuple[float, str]]:
        if self._matcher is None:
            return [(at, text)] if text else []
        old = len(self._held)
        combined = self._held + text
        end = len(combined)
        # Where a form may start that the next frame could complete (or lengthen): nothing from there on is final.
        starts = self._open_starts(combined, max(0, end - self.longest + 1))
        hold, position = end, 0
        earlier: list[str] = []  # what came with the held text (recorded at its time), then what came now
        later: list[str] = []

        def text_until(stop: int) -> None:
            if position < old:
                earlier.append(combined[position:min(stop, old)])
            if stop > old:
                later.append(combined[max(position, old):stop])

        for index, begin, finish in self._matcher.find_matches_as_indexes(combined):
            if starts and starts[-1] >= position and any(position <= i <= begin for i in starts):
                break  # a longer or earlier match may still come: this one is not final
            text_until(begin)
            (earlier if begin < old else later).append(self._masks[index])
            key = self._keys[index]
            self.counts[key] = self.counts.get(key, 0) + 1
            position = finish
        hold = next((i for i in starts if i >= position), end)
        text_until(hold)
        held_at = self._held_at
        self._held = combined[hold:]
        if hold >= old:
            self._held_at = at
        pieces = [(held_at, "".join(earlier)), (at, "".join(later))]
        return [(t, s) for t, s in pieces if s]

    def flush(self) -> list[tuple[float, str]]:
        """What is held at the stream's end (a secret's start that never finished: it is not a secret)."""
        held, self._held = self._held, ""
        return [(self._held_at, held)] if held else []

    def mask(self, text: str, skip: frozenset[str] = frozenset()) -> str:
        """`text` masked at once (an error message, a command line), counting nothing; the values of keys in `skip`
        are left as they are."""
        if self._matcher is None:
            return text
        out, position = [], 0
        for index, begin, finish in self._matcher.find_matches_as_indexes(text):
            if self._keys[index] in skip:
                continue
            out += [text[position:begin], self._masks[index]]
            position = finish
        return "".join(out) + text[position:]

    def _open_starts(self, text: str, low: int) -> list[int]:
        """Positions from `low` on where text[i:] is the start of a form that goes on (so what follows may
        complete or lengthen it)."""
        root, end, found = self._trie, len(text), []
        for i in range(low, end):
            node = root.get(text[i])
            j = i + 1
            while node and j < end:
                node = node.get(text[j])
                j += 1
            if node:
                found.append(i)
        return found


def _trie(words: Iterable[str]) -> dict:
    root: dict = {}
    for word in words:
        node = root
        for c in word:
            node = node.setdefault(c, {})
    return root


def _free_char(taken: set[str]) -> str:
    return next(chr(c) for c in range(0x2580, 0x10000) if chr(c) not in taken and wcwidth.wcwidth(chr(c)) == 1)
