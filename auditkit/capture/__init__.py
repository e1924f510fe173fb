"""The capture gateway: the catalog of Convox routes, the one parse of a request, the proxy, the journal, keys, the feed, config, TLS, the server."""
