"""The share-link site inside Datasette: what the auditkit Datasette plugin (datasette_auditkit) mounts.

Who reaches what:
- Admins (actors whose id is in the plugin config's `admins`: the accounts of admins.json, and `root` from the
  one-time login URL) browse Datasette as usual and manage links at /-/share-links (admin).
- Everyone else, link holders included, is anonymous to Datasette: every permission check answers False (a
  hook wrapper that overrides whatever other plugins answer), and an ASGI gate answers 403 to every path but the share
  pages, the login page and static files (gate). A share visitor is never a Datasette actor, so no table, query,
  magic parameter or JSON endpoint of Datasette can see the link's scope or be widened by it.
- The share pages (pages) re-verify the link on every request and read only within its scope; every view is an
  Access event.
- Every response carries Referrer-Policy: no-referrer, X-Robots-Tag: noindex, Cache-Control: private, no-store.

Modules: instance (the per-instance state), gate, pages, admin, columns (the admin tables' column order), responses,
views (values for the templates), routes.
"""
