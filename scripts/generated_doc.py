"""What the docs generators share: rewrite a generated page, or (`--check`) fail when it is not what the code renders.

    python scripts/gen_routes_doc.py [--check]   # docs/routes.md, from the route catalog
    python scripts/gen_cli_doc.py [--check]      # docs/cli.md, from the click commands
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def main(doc: Path, render: Callable[[], str], script: str, description: str, argv: list[str] | None = None) -> int:
    """Write `doc` from `render()` unless it is current; with --check, only say whether it is (exit 1 when not)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help=f"only check that {doc.relative_to(ROOT)} is current")
    args = parser.parse_args(argv)
    text = render()
    current = doc.read_text(encoding="utf-8") if doc.exists() else None
    if args.check:
        if current != text:
            print(f"{doc.relative_to(ROOT)} is stale: run python {script}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        doc.write_text(text, encoding="utf-8")
        print(f"wrote {doc.relative_to(ROOT)}")
    else:
        print(f"{doc.relative_to(ROOT)} is up to date")
    return 0
