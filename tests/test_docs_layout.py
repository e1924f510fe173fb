"""The Layout sections of README.md and docs/architecture.md name the tree as it is: every package of auditkit, and
(in docs/architecture.md) every module of those packages."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "auditkit"


def _layout_block(doc: Path) -> str:
    """The first fenced block after the `## Layout` heading."""
    text = doc.read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def _packages() -> list[Path]:
    return sorted(p.parent for p in PACKAGE.glob("*/__init__.py"))


def test_the_readme_layout_names_every_package():
    block = _layout_block(ROOT / "README.md")
    for package in _packages():
        assert f"auditkit/{package.name}/" in block, package.name
    for other in ("auditkit/cli.py", "plugins/datasette_auditkit/", "convox_sim/", "metadata.yml", "bench/", "docs/",
                  "tests/"):
        assert other in block, other


def test_the_architecture_layout_names_every_package_and_module():
    block = _layout_block(ROOT / "docs" / "architecture.md")
    words = set(re.findall(r"[A-Za-z_]+", block))
    for package in _packages():
        assert f"{package.name}/" in block, package.name
        for module in sorted(package.glob("*.py")) + sorted(package.glob("*/*.py")):
            if module.name == "__init__.py" or module.parent.name in ("screens", "widgets"):
                continue  # the TUI's screens and widgets are listed in the TUI section's table
            assert module.stem in words, f"{module.relative_to(ROOT)} is not named in the Layout of architecture.md"
    for module in sorted(PACKAGE.glob("*.py")):
        if module.name != "__init__.py":
            assert module.name in block, module.name
    for other in ("plugins/datasette_auditkit/", "convox_sim/", "metadata.yml", "bench/", "scripts/", "docs/", "tests/"):
        assert other in block, other


def test_the_tui_table_names_every_screen_and_widget():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for module in sorted((PACKAGE / "review" / "tui").glob("*/*.py")):
        if module.name != "__init__.py":
            assert f"`{module.name}`" in text, module.name
