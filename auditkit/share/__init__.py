"""Sharing: signed share links (links), admin accounts (admins), `auditkit serve` (serve), the share site inside
Datasette (site/) and the `share` and `serve` command groups (cli)."""
