"""The mirror: sync agents that copy gateway feeds into the local SQLite file, checked."""
