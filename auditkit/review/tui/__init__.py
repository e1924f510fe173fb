"""The Textual TUI behind `auditkit tui` and `auditkit replay`: the app (app), its key explanations (keys), its
read access to the mirror (mirror), its screens (screens/) and widgets (widgets/)."""
