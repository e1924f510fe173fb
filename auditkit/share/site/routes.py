"""The share site's URL table: every route the plugin registers with Datasette, mapped to its page (only on an
instance configured for auditkit: another Datasette in the same environment gets none of them)."""

from __future__ import annotations

from typing import Any, Callable

from auditkit.share.site import admin, login, pages
from auditkit.share.site.instance import CONFIG

SESSION_RE = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"

ROUTES: list[tuple[str, Callable[..., Any]]] = [
    (r"^/-/share/(?P<token>[^/]{1,300})$", pages.share_landing),
    (r"^/-/shared$", pages.shared_page),
    (r"^/-/shared/events\.(?P<format>csv|json)$", pages.shared_download),
    (r"^/-/shared/export\.zip$", pages.shared_export),
    (rf"^/-/shared/replay/(?P<session_id>{SESSION_RE})$", pages.shared_replay),
    (rf"^/-/shared/cast/(?P<session_id>{SESSION_RE})$", pages.shared_cast),
    (r"^/-/share-links$", admin.share_links_page),
    (rf"^/-/share-links/(?P<link_id>{admin.LINK_RE})$", admin.share_link_page),
    (rf"^/-/share-links/(?P<link_id>{admin.LINK_RE})/revoke$", admin.share_link_revoke),
    (rf"^/-/replay/(?P<session_id>{SESSION_RE})$", admin.admin_replay),
    (rf"^/-/replay/(?P<session_id>{SESSION_RE})/cast$", admin.admin_cast),
    (r"^/robots\.txt$", pages.robots_txt),
    (r"^/-/login$", login.login_page),  # before datasette-auth-passwords' own (hooks.register_routes is tryfirst)
]


def routes_for(datasette: Any) -> list[tuple[str, Callable[..., Any]]]:
    """ROUTES on an instance with the `auditkit` plugin config, else none."""
    return ROUTES if datasette.plugin_config(CONFIG) else []
