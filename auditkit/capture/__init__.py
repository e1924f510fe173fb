"""The capture gateway: the catalog of Convox routes (catalog/), the Convox wire details (wire), the one parse of a
request (canonical), the proxy and its sessions, the journal, keys, the feed, refusals, config, TLS, the server, and
the `auditkit gateway` commands (cli)."""
