"""The share site of one Datasette instance: the mirror it reads, the signing secret, the admins (and their password
checks, login.Passwords), the pool of threads that run store calls, and the remembered totals of links.

`site_for(datasette)` makes it from the `auditkit` plugin config (database, admins, base_url) on first use; every
page, the gate and the permission hook start from it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from auditkit import store
from auditkit.errors import AuditkitError
from auditkit.model.filters import Filter
from auditkit.share import links as sharing
from auditkit.share.site.login import Passwords

CONFIG = "auditkit"
COUNT_BUDGET_S = 0.05  # a page shows the total only when counting it costs less than this
COUNT_TTL_S = 60.0  # a link's total is counted (or found too costly to count) at most once a minute

T = TypeVar("T")


class Site:
    """The share site of one Datasette instance: the mirror, the secret, the admins and a small thread pool whose
    threads each keep their own connection to the mirror (store calls are blocking)."""

    def __init__(self, datasette: Any, config: dict[str, Any]):
        self.ds = datasette
        self.db_name = config.get("database")
        database = datasette.databases.get(self.db_name)
        if database is None or not database.path:
            raise AuditkitError(f"the auditkit plugin's database '{self.db_name}' is not served by this Datasette")
        self.db_path = Path(database.path)
        self.secret = sharing.secret_for(self.db_path)
        self.admins = frozenset(a for a in (config.get("admins") or []) if isinstance(a, str) and a)
        self.passwords = Passwords(config.get("password_hashes") or {})
        self.base_url = (config.get("base_url") or "").rstrip("/") or None
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="auditkit-share")
        self._counts: dict[str, tuple[float, int | None]] = {}
        self._counts_lock = threading.Lock()

    def close(self) -> None:
        """Stop the pools (the store threads close with their connections)."""
        self._pool.shutdown(wait=True)
        self.passwords.close()

    def is_admin(self, actor: Any) -> bool:
        return isinstance(actor, dict) and actor.get("id") in self.admins

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = store.open_db(self.db_path)
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """fn(conn) on a pool thread with that thread's own connection."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._conn()))

    async def stream(self, rows: Callable[[sqlite3.Connection], Iterator[str]]) -> Any:
        """An async iterator over chunks a blocking generator makes on its own read-only connection."""
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(self._pool, lambda: store.open_db(self.db_path, readonly=True))
        chunks = rows(conn)
        done = object()
        try:
            while True:
                chunk = await loop.run_in_executor(self._pool, next, chunks, done)
                if chunk is done:
                    return
                yield chunk
        finally:
            await loop.run_in_executor(self._pool, conn.close)

    def link_total(self, conn: sqlite3.Connection, link: sharing.ShareLink) -> int | None:
        """How many events a link shares, or None when counting costs more than COUNT_BUDGET_S; remembered for
        COUNT_TTL_S so that paging does not pay for it on every page."""
        now = time.monotonic()
        with self._counts_lock:
            cached = self._counts.get(link.id)
        if cached is not None and now - cached[0] < COUNT_TTL_S:
            return cached[1]
        total = count_within(conn, sharing.scope(link), COUNT_BUDGET_S)
        with self._counts_lock:
            if len(self._counts) > 10_000:
                self._counts.clear()
            self._counts[link.id] = (now, total)
        return total

    def public_url(self, request: Any) -> str:
        if self.base_url:
            return self.base_url
        scheme = request.scheme or "http"
        return f"{scheme}://{request.host}{self.ds.setting('base_url').rstrip('/')}"


def site_for(datasette: Any) -> Site | None:
    """The instance's Site, made on first use; None when the instance has no `auditkit` plugin config."""
    site = getattr(datasette, "_auditkit_site", None)
    if site is None:
        config = datasette.plugin_config(CONFIG)
        if not config:
            return None
        site = Site(datasette, config)
        datasette._auditkit_site = site
    return site


def startup(datasette: Any) -> None:
    """Fail at start, not at the first request, when the plugin config is wrong."""
    site_for(datasette)


def count_within(conn: sqlite3.Connection, f: Filter, budget_s: float) -> int | None:
    """store.count, or None when it would take longer than budget_s (a free-text scope over a large mirror)."""
    deadline = time.monotonic() + budget_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
    try:
        return store.count(conn, f)
    except sqlite3.OperationalError as e:
        if "interrupted" in str(e):
            return None
        raise
    finally:
        conn.set_progress_handler(None, 0)
