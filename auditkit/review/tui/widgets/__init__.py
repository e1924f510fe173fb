"""The TUI's widgets: the event list (event_list), the filter bar (filter_bar), a recorded terminal
(replay_terminal), the replay timeline (replay_timeline) and an input whose cursor blink the app controls
(text_input)."""
