"""auditkit's Datasette plugin, registered under the `datasette` entry point as `auditkit`.

Datasette registers this package: its hooks (hooks.py, re-exported here so that Datasette finds them on the
package), its templates/ and its static/ (served at /-/static-plugins/auditkit/: the share pages' CSS and script,
and the vendored asciinema player). It also carries metadata.yml, the Datasette metadata `auditkit serve` starts
from when it runs outside a checkout.
"""

from datasette_auditkit.hooks import (
    actor_from_request,
    asgi_wrapper,
    handle_exception,
    menu_links,
    permission_allowed,
    register_routes,
    render_cell,
    startup,
)

__all__ = ["actor_from_request", "asgi_wrapper", "handle_exception", "menu_links", "permission_allowed",
           "register_routes", "render_cell", "startup"]
