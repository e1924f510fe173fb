"""What the browser tests share: Debian's Chromium, the flags it runs headless with, and the rule that its absence
skips them, unless AUDITKIT_REQUIRE_BROWSER=1 (as .ci/run sets), which fails instead. Call require_browser() at
the top of a browser test module, before importing playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("AUDITKIT_REQUIRE_BROWSER") == "1"


def require_browser() -> None:
    """Skip (or, when required, fail) the calling module unless Chromium and the playwright package are here."""
    if not CHROMIUM.exists() or not os.access(CHROMIUM, os.X_OK):
        if REQUIRED:
            pytest.fail(f"AUDITKIT_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)",
                        pytrace=False)
        pytest.skip(f"browser tests need {CHROMIUM} (apt-get install chromium; .ci/run installs it)",
                    allow_module_level=True)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:  # pragma: no cover - the test extras install it
        if REQUIRED:
            pytest.fail("AUDITKIT_REQUIRE_BROWSER=1 but the playwright package is missing (make test installs it)",
                        pytrace=False)
        pytest.skip("browser tests need the playwright package (pip install -e '.[test]')", allow_module_level=True)
