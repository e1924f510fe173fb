"""TextInput: Textual's Input whose cursor blinks only when the app allows it (snapshot tests turn blinking off,
so every screenshot of a focused input is the same)."""

from __future__ import annotations

from textual.widgets import Input


class TextInput(Input):
    def on_mount(self) -> None:
        self.cursor_blink = bool(getattr(self.app, "cursor_blink", True))
