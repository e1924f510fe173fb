"""auditkit: an open, local-first audit log for Convox racks."""

__version__ = "0.1.0"
