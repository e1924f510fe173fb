"""Review: the replay engine and the Textual TUI."""
