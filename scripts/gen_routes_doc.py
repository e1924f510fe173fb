"""Write docs/routes.md from the route catalog (auditkit/capture/catalog/), so the docs never drift from the table.

    python scripts/gen_routes_doc.py          # rewrite docs/routes.md
    python scripts/gen_routes_doc.py --check  # exit 1 if docs/routes.md is not what the catalog renders
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import generated_doc  # noqa: E402
from auditkit.capture.catalog.docs import render_markdown  # noqa: E402

DOC = ROOT / "docs" / "routes.md"


def main(argv: list[str] | None = None) -> int:
    return generated_doc.main(DOC, render_markdown, "scripts/gen_routes_doc.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
