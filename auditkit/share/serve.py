"""`auditkit serve`: a locked-down Datasette on the mirror, for its admins and for share-link holders.

- The instance runs Datasette 0.65 in-process (uvicorn) with auditkit's Datasette plugin (the datasette_auditkit
  package: Datasette loads it by its entry point and finds its templates and static files in it), the metadata
  (metadata.yml: the checkout's, else the copy the plugin package carries) and settings that turn off SQL for
  everyone but admins, database downloads and CSV streaming. Its signing secret is the share-link secret
  (auditkit.share.links.secret_for).
- The admins are the accounts of auditkit.share.admins (and `root`, the one-time login URL). Their hashes reach
  the plugin (auditkit.share.site.login checks them) through environment variables named in the metadata, so
  /-/metadata never shows them; datasette-auth-passwords gets no accounts, so its own checks (on the event loop)
  never run.
- Everyone else (anonymous visitors and share-link holders) reaches only the share pages, the login page and
  static files: see auditkit.share.site.
"""

from __future__ import annotations

import importlib.resources
import os
import secrets
import urllib.parse
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.share import links as sharing
from auditkit.share.admins import load_admins

# auditkit's Datasette plugin: the package datasette_auditkit, registered under the `datasette` entry point as
# `auditkit` (Datasette names its static files after the distribution: /-/static-plugins/auditkit/).
PLUGIN = "auditkit"
PLUGIN_PACKAGE = "datasette_auditkit"
METADATA = "metadata.yml"
# The repository, when auditkit runs from a checkout (its metadata.yml is the file people edit).
CHECKOUT = Path(__file__).resolve().parents[2]
ROOT_ACTOR = "root"  # the one-time login URL (Datasette's /-/auth-token) logs in as this admin
_HASH_ENV = "AUDITKIT_ADMIN_HASH_{}"

# Settings per docs/sharing.md: nothing but admins may run SQL; no database file downloads; no unbounded CSV
# streams; no facet suggestions (they scan the whole table at every page load).
SETTINGS: dict[str, Any] = {
    "default_allow_sql": False,
    "allow_download": False,
    "allow_csv_stream": False,
    "suggest_facets": False,
    "default_page_size": 100,
    "facet_time_limit_ms": 1000,
    "sql_time_limit_ms": 3000,
}


# --- building the instance ------------------------------------------------------------------------------------------

def metadata_file() -> Traversable:
    """The Datasette metadata the instance starts from: the checkout's metadata.yml when auditkit runs from a
    checkout, else the copy the plugin package carries."""
    checkout = CHECKOUT / METADATA
    if checkout.is_file() and (CHECKOUT / "pyproject.toml").is_file():
        return checkout
    return importlib.resources.files(PLUGIN_PACKAGE) / METADATA


def _read_metadata() -> dict[str, Any]:
    from datasette.utils import parse_metadata

    source = metadata_file()
    try:
        text = source.read_text()
    except OSError as e:
        raise AuditkitError(f"auditkit serve cannot read its Datasette metadata {source} ({e})") from None
    return parse_metadata(text)


def _require_plugin() -> None:
    """auditkit's Datasette plugin must be registered (Datasette loads it by entry point when it is imported)."""
    from datasette.plugins import pm

    plugin = pm.get_plugin(PLUGIN)
    if getattr(plugin, "__name__", None) != PLUGIN_PACKAGE:
        raise AuditkitError(f"auditkit's Datasette plugin ({PLUGIN_PACKAGE}) is not registered with Datasette: "
                            "reinstall auditkit (`pip install -e .` in a checkout) so that its `datasette` entry "
                            "point is installed")


def split_base_url(base_url: str) -> tuple[str, str]:
    """(public origin + prefix without trailing slash, Datasette's base_url path setting ending in /)."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise AuditkitError(f"--base-url wants http(s)://host[:port][/prefix], not '{base_url}'")
    prefix = "/" + parts.path.strip("/") if parts.path.strip("/") else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}", prefix + "/"


def build_metadata(db_name: str, admins: dict[str, str], public_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """metadata.yml with its lock-down filled in for these admins; returns (metadata, environment it refers to)."""
    metadata = _read_metadata()
    admin_ids = sorted(admins) + [ROOT_ACTOR]
    metadata["allow"] = {"id": admin_ids}
    metadata["allow_sql"] = {"id": admin_ids}
    databases = metadata.get("databases") or {}
    if "audit" in databases and db_name != "audit":
        databases[db_name] = databases.pop("audit")
    metadata["databases"] = databases
    plugins = metadata.setdefault("plugins", {})
    env: dict[str, str] = {}
    passwords: dict[str, Any] = {}
    for i, (email, password_hash) in enumerate(sorted(admins.items())):
        env[_HASH_ENV.format(i)] = password_hash
        passwords[email] = {"$env": _HASH_ENV.format(i)}
    plugins.pop("datasette-auth-passwords", None)
    plugins["auditkit"] = dict(plugins.get("auditkit") or {}, database=db_name, admins=admin_ids,
                               base_url=public_url, password_hashes=passwords)
    return metadata, env


def require_mirror(db_path: str | os.PathLike[str]) -> Path:
    """The mirror's path; AuditkitError when there is no database there."""
    return store.existing_path(db_path)


def make_datasette(db_path: str | os.PathLike[str], *, base_url: str = sharing.DEFAULT_BASE_URL,
                   settings: dict[str, Any] | None = None) -> Any:
    """The Datasette instance `auditkit serve` runs (tests build theirs with this too)."""
    from datasette.app import Datasette

    path = require_mirror(db_path)
    _require_plugin()
    store.open_db(path).close()  # migrate before Datasette reads the schema
    public_url, prefix = split_base_url(base_url)
    db_name = path.stem
    metadata, env = build_metadata(db_name, load_admins(path), public_url)
    os.environ.update(env)
    chosen = dict(SETTINGS, base_url=prefix, force_https_urls=public_url.startswith("https:"))
    chosen.update(settings or {})
    return Datasette(
        [str(path)],
        metadata=metadata,
        settings=chosen,
        secret=sharing.secret_for(path),
    )


def login_url(ds: Any, public_url: str) -> str:
    """A one-time URL that logs its first visitor in as the admin 'root' (Datasette's --root token)."""
    ds._root_token = secrets.token_hex(32)
    return f"{public_url}/-/auth-token?token={ds._root_token}"


def serve(db_path: str | os.PathLike[str], *, host: str, port: int, base_url: str | None,
          echo: Any = print) -> None:
    """Run the instance until interrupted, printing where it listens and the one-time admin login URL."""
    import asyncio

    import uvicorn

    base_url = base_url or f"http://{host}:{port}"
    ds = make_datasette(db_path, base_url=base_url)
    public_url, _ = split_base_url(base_url)
    asyncio.run(ds.invoke_startup())
    admins = load_admins(db_path)
    echo(f"auditkit serve: {db_path} at {public_url}/ (listening on {host}:{port})")
    echo(f"admins: {', '.join(sorted(admins)) or 'none yet (`auditkit serve admins add EMAIL`)'}; "
         f"log in at {public_url}/-/login")
    echo(f"one-time admin login: {login_url(ds, public_url)}")
    config = uvicorn.Config(ds.app(), host=host, port=port, log_level="warning", access_log=False,
                            proxy_headers=True, server_header=False)
    uvicorn.Server(config).run()
