"""The capture gateway: an ASGI proxy in front of Convox racks that journals every write (fail closed), records
terminal sessions, and serves its journal as a feed. See docs/architecture.md and docs/feed.md."""
