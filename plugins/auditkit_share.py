"""auditkit's Datasette plugin: signed share links and the lock-down around them.

Loaded by `auditkit serve` with --plugins-dir plugins. It only registers hooks; what they do lives in
auditkit/share_site.py (and the links themselves in auditkit/sharing.py), which tests import directly.
"""

from datasette import hookimpl

from auditkit.share import site as share_site


@hookimpl
def startup(datasette):
    share_site.startup(datasette)


@hookimpl
def register_routes():
    return share_site.ROUTES


# Anyone but an admin is refused every permission, whatever any other plugin answers: a hook wrapper sees the
# answers of every implementation (tryfirst, plain or trylast, registered before or after this one) and replaces
# them. (A trylast implementation alone is not enough: a permit-all plugin registered later with trylast=True is
# called after it, and Datasette keeps the last answer.)
@hookimpl(hookwrapper=True)
def permission_allowed(datasette, actor, action, resource):
    outcome = yield
    if share_site.denies(datasette, actor):
        outcome.force_result([False])


@hookimpl
def asgi_wrapper(datasette):
    return share_site.asgi_wrapper(datasette)


@hookimpl
def render_cell(value, column, table, database, datasette):
    return share_site.render_cell(datasette, database, table, column, value)


@hookimpl
def menu_links(datasette, actor):
    return share_site.menu_links(datasette, actor)
