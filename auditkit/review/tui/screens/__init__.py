"""The TUI's screens: the event list (events), value pickers (picker), the time range (time_range), an event's
detail (detail), the share dialog (share), the key list (help) and the replay of a recording (replay)."""
