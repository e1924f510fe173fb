"""Review: the replay engine, screen-free (replay/), the Textual TUI (tui/), and the `auditkit tui` and
`auditkit replay` commands (cli)."""
