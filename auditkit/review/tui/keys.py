"""How the TUI names and explains its keys. Each Binding carries its own explanation: `tooltip` says what the key does
in a sentence (the help screen, the command palette and the footer's hover read it) and `description` is the footer's
short label, used when there is no tooltip. A KeySection is one part of the key list (`?`): the Bindings of some
screens or widgets, walked in order."""

from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

from textual.binding import Binding

KEY_NAMES = {
    "slash": "/", "question_mark": "?", "pagedown": "PgDn", "pageup": "PgUp", "home": "Home", "end": "End",
    "enter": "Enter", "escape": "Esc", "space": "Space", "down": "↓", "up": "↑", "left": "←", "right": "→",
    "tab": "Tab", "left_square_bracket": "[", "right_square_bracket": "]", "less_than_sign": "<",
    "greater_than_sign": ">", "full_stop": ".", "comma": ",",
}


def key_name(key: str) -> str:
    if key in KEY_NAMES:
        return KEY_NAMES[key]
    if key.startswith("ctrl+"):
        return "Ctrl+" + key_name(key[5:]).upper()
    return key


def keys_text(binding: Binding) -> str:
    return " ".join(key_name(k.strip()) for k in binding.key.split(","))


def what_it_does(binding: Binding) -> str:
    return binding.tooltip or binding.description


def bindings(owner: type) -> list[Binding]:
    """The Bindings a screen, widget or app class declares (the help lists them in this order)."""
    return [b for b in getattr(owner, "BINDINGS", []) if isinstance(b, Binding)]


def rows(owner: type) -> Iterable[tuple[str, str]]:
    """(keys, what they do) for every Binding of `owner`."""
    for binding in bindings(owner):
        yield keys_text(binding), what_it_does(binding)


class KeySection(NamedTuple):
    """A part of the key list: the Bindings of `owners` in order, with keys that are not Bindings of the TUI (an
    Input's Enter, a list's Space, Textual's Ctrl+P) listed before or after them."""

    title: str
    owners: tuple[type, ...]
    before: tuple[tuple[str, str], ...] = ()
    after: tuple[tuple[str, str], ...] = ()


def listing(sections: Sequence[KeySection]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(keys, what they do)]) for each section."""
    return [(s.title, [*s.before, *(row for owner in s.owners for row in rows(owner)), *s.after]) for s in sections]
