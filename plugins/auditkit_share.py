"""auditkit's Datasette plugin: signed share links and the lock-down around them.

Loaded by `auditkit serve` with --plugins-dir plugins. It only registers hooks; what they do lives in
auditkit.share.site (and the links themselves in auditkit.share.links), which tests import directly.
"""

from datasette import hookimpl

from auditkit.share.site import admin, gate, instance, routes


@hookimpl
def startup(datasette):
    instance.startup(datasette)


@hookimpl
def register_routes():
    return routes.ROUTES


# Anyone but an admin is refused every permission, whatever any other plugin answers: a hook wrapper sees the
# answers of every implementation (tryfirst, plain or trylast, registered before or after this one) and replaces
# them. (A trylast implementation alone is not enough: a permit-all plugin registered later with trylast=True is
# called after it, and Datasette keeps the last answer.)
@hookimpl(hookwrapper=True)
def permission_allowed(datasette, actor, action, resource):
    outcome = yield
    if gate.denies(datasette, actor):
        outcome.force_result([False])


@hookimpl
def asgi_wrapper(datasette):
    return gate.asgi_wrapper(datasette)


@hookimpl
def render_cell(value, column, table, database, datasette):
    return admin.render_cell(datasette, database, table, column, value)


@hookimpl
def menu_links(datasette, actor):
    return admin.menu_links(datasette, actor)
