"""Write docs/routes.md from the route catalog (auditkit/capture/catalog/), so the docs never drift from the table.

    python scripts/gen_routes_doc.py          # rewrite docs/routes.md
    python scripts/gen_routes_doc.py --check  # exit 1 if docs/routes.md is not what the catalog renders
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditkit.capture.catalog.docs import render_markdown  # noqa: E402

DOC = ROOT / "docs" / "routes.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that docs/routes.md is current")
    args = parser.parse_args(argv)
    text = render_markdown()
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else None
    if args.check:
        if current != text:
            print(f"{DOC.relative_to(ROOT)} is stale: run python scripts/gen_routes_doc.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}")
    else:
        print(f"{DOC.relative_to(ROOT)} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
