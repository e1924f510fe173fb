"""Sharing: signed share links, admin accounts, `auditkit serve` and the share site."""
