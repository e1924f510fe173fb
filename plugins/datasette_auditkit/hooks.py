"""The hooks of auditkit's Datasette plugin: signed share links and the lock-down around them.

It only registers hooks; what they do lives in auditkit.share.site (and the links themselves in
auditkit.share.links), which tests import directly.
"""

from __future__ import annotations

from typing import Any, Callable, Generator

from datasette import hookimpl

from auditkit.share.site import admin, columns, gate, instance, login, responses, routes


@hookimpl
def startup(datasette: Any) -> None:
    instance.startup(datasette)


@hookimpl(tryfirst=True)  # our /-/login comes before datasette-auth-passwords' (Datasette takes the first match)
def register_routes(datasette: Any) -> list[tuple[str, Callable[..., Any]]]:
    return routes.routes_for(datasette)


@hookimpl
def actor_from_request(datasette: Any, request: Any) -> Any:
    return request.scope.get(login.SCOPE_ACTOR)  # left there by the gate for valid Basic credentials


# Every exception a request raises is answered by responses.error_response, which logs one line (never headers,
# cookies or locals): a hook wrapper, because Datasette awaits every handle_exception implementation and its own
# prints a traceback with local variables.
@hookimpl(hookwrapper=True)
def handle_exception(datasette: Any, request: Any, exception: Exception) -> Generator[None, Any, None]:
    outcome = yield
    if instance.site_for(datasette) is not None:
        outcome.force_result([responses.error_response(datasette, request, exception)])


# Anyone but an admin is refused every permission, whatever any other plugin answers: a hook wrapper sees the
# answers of every implementation (tryfirst, plain or trylast, registered before or after this one) and replaces
# them. (A trylast implementation alone is not enough: a permit-all plugin registered later with trylast=True is
# called after it, and Datasette keeps the last answer.)
@hookimpl(hookwrapper=True)
def permission_allowed(datasette: Any, actor: Any, action: str, resource: Any) -> Generator[None, Any, None]:
    outcome = yield
    if gate.denies(datasette, actor):
        outcome.force_result([False])


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    # The gate outside (an admin only, past it), the admin tables' reading order inside.
    outer = gate.asgi_wrapper(datasette)
    inner = columns.reading_order(datasette)
    return lambda app: outer(inner(app))


@hookimpl
def render_cell(value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
    return admin.render_cell(datasette, database, table, column, value)


@hookimpl
def menu_links(datasette: Any, actor: Any) -> list[dict[str, str]] | None:
    return admin.menu_links(datasette, actor)
