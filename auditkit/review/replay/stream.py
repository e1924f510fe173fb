"""Reading a terminal's output: pyte's Stream, fast. Whole CSI sequences and runs of text are taken in one step each
(pyte's own parser takes one character per generator step, which is much slower), a sequence cut by the end of a
frame is kept for the next one, ISO 8613-6 colon SGR is read, and unknown private or intermediate sequences are
ignored rather than misread.
"""

from __future__ import annotations

import functools
import re

import pyte

_CSI = re.compile(r"\x1b\[([?>=<]?)([0-9;:]*)([ -/]*)([@-~])")
# ESC ( 0 / ESC ) B (character sets), and DCS / SOS / PM / APC strings up to ST or BEL
_OTHER = re.compile(r"\x1b(?:([()])([0-~])|[P^_X][^\x07\x1b]*(?:\x07|\x1b\\))", re.S)
# what a feed may end inside of: ESC, a CSI sequence, a character set designation, or one of those strings
_UNFINISHED = re.compile(r"\x1b(?:\[[?>=<]?[0-9;:]*[ -/]*|[()]|[P^_X][^\x07\x1b]*\x1b?)?\Z")
_PRIVATE_OK = {"h", "l", "J", "K"}  # private CSI finals that mean something to the terminal


class TerminalStream(pyte.Stream):
    """pyte.Stream that takes whole CSI sequences and control characters in one step (pyte's parser takes one
    character per generator step), keeps a CSI sequence cut by the end of a feed until the next one (so a sequence
    split across frames is read exactly as a whole one), and survives a sequence the screen cannot take."""

    escape = {**pyte.Stream.escape, "E": "next_line"}
    csi = {**pyte.Stream.csi, "S": "scroll_up", "T": "scroll_down", "b": "repeat_last", "s": "save_cursor_csi",
           "u": "restore_cursor_csi", "Z": "tab_backward"}

    def attach(self, screen: pyte.Screen) -> None:
        super().attach(screen)
        self._partial = ""
        self._csi_dispatch = {final: getattr(screen, name) for final, name in self.csi.items()
                              if hasattr(screen, name)}
        self._basic_dispatch = {char: getattr(screen, name) for char, name in self.basic.items()}

    def feed(self, data: str) -> None:
        if self._partial:
            data, self._partial = self._partial + data, ""
        listener = self.listener
        draw = listener.draw
        match_text = self._text_pattern.match
        match_csi = _CSI.match
        basic = self._basic_dispatch
        send = self._send
        plain = self._taking_plain_text
        offset, length = 0, len(data)
        while offset < length:
            if plain:
                m = match_text(data, offset)
                if m:
                    offset = m.end()
                    draw(m.group())
                    continue
                char = data[offset]
                if char == "\x1b":
                    m = match_csi(data, offset)
                    if m:
                        offset = m.end()
                        self._dispatch_csi(*m.groups())
                        continue
                    m = _OTHER.match(data, offset)
                    if m:
                        offset = m.end()
                        if m.group(1):  # ESC ( 0 and the like: which character set G0 or G1 is
                            listener.define_charset(m.group(2), m.group(1))
                        continue  # a DCS, APC, PM or SOS string: nothing on screen
                    if _UNFINISHED.match(data, offset):
                        if length - offset < 65536:  # a string that never ends is dropped, not kept forever
                            self._partial = data[offset:]
                        break
                else:
                    handler = basic.get(char)
                    if handler is not None:
                        offset += 1
                        handler()
                        continue
            plain = send(data[offset])
            offset += 1
        self._taking_plain_text = plain

    def _send(self, char: str) -> bool | None:
        try:
            return self._parser.send(char)
        except Exception:  # a sequence the screen cannot take: drop it, as a terminal would
            self._initialize_parser()
            return True

    @property
    def idle(self) -> bool:
        """True when no escape sequence is half read (a keyframe may be taken)."""
        return bool(self._taking_plain_text) and not self._partial

    def _dispatch_csi(self, prefix: str, params: str, intermediates: str, final: str) -> None:
        if intermediates or prefix in (">", "=", "<"):
            return  # DECSCUSR, modifyOtherKeys, secondary DA, …: nothing on screen
        if ":" in params:
            if final != "m" or prefix:
                return
            params = _colon_sgr(params)
        handler = self._csi_dispatch.get(final)
        if handler is None:
            return
        args = _csi_args(params)
        try:
            if prefix == "?":
                if final in _PRIVATE_OK:
                    handler(*args, private=True)
            else:
                handler(*args)
        except (TypeError, ValueError, IndexError, KeyError):
            pass


@functools.lru_cache(maxsize=4096)
def _csi_args(params: str) -> tuple[int, ...]:
    """CSI parameters as pyte reads them: empty ones are 0, each at most 9999."""
    return tuple(min(int(p or 0), 9999) for p in params.split(";"))


def _colon_sgr(params: str) -> str:
    """ISO 8613-6 SGR (`38:2::r:g:b`, `38:5:n`, `4:3`) as the semicolon form pyte reads."""
    out = []
    for part in params.split(";"):
        if ":" not in part:
            out.append(part)
            continue
        p = part.split(":")
        if p[0] in ("38", "48") and len(p) >= 3 and p[1] == "5":
            out.append(f"{p[0]};5;{p[2] or 0}")
        elif p[0] in ("38", "48") and len(p) >= 5 and p[1] == "2":
            rgb = p[-3:]
            out.append(f"{p[0]};2;{';'.join(v or '0' for v in rgb)}")
        elif p[0] == "4" and len(p) == 2:
            out.append("24" if p[1] == "0" else "4")
    return ";".join(out) or "0"

