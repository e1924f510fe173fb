"""docs/cli.md, the command-line reference, is what scripts/gen_cli_doc.py renders from the click commands today."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import click

from auditkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "cli.md"
SCRIPT = ROOT / "scripts" / "gen_cli_doc.py"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_cli_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _paths(command: click.Command, path: str) -> list[str]:
    found = [path]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _paths(sub, f"{path} {name}")
    return found


def test_docs_cli_md_is_generated_from_the_commands():
    assert DOC.read_text(encoding="utf-8") == _generator().render_markdown(), \
        "docs/cli.md is stale: run python scripts/gen_cli_doc.py"


def test_every_command_and_option_is_in_the_reference():
    text = DOC.read_text(encoding="utf-8")
    paths = _paths(main, "auditkit")
    assert {"auditkit gateway users add", "auditkit share create", "auditkit serve admins add",
            "auditkit demo rack"} <= set(paths)
    for path in paths:
        assert f"\n## {path}\n" in text, path
        assert f"```text\n{path} " in text, path  # its usage line
    for option in ("`--db FILE`", "`--expires TEXT`", "`--rack RACK`", "`--record-input`", "`--follow`"):
        assert option in text
    assert "| `--events INTEGER RANGE` | How many events to write. | `20000` |" in text


def test_the_reference_does_not_depend_on_the_terminal():
    env_script = ("import os, sys; sys.path.insert(0, 'scripts'); os.environ['COLUMNS'] = '{cols}';"
                  "import gen_cli_doc; sys.stdout.write(gen_cli_doc.render_markdown())")
    outputs = {subprocess.run([sys.executable, "-c", env_script.format(cols=cols)], cwd=ROOT, capture_output=True,
                              text=True, check=True, timeout=60).stdout for cols in (40, 250)}
    assert outputs == {DOC.read_text(encoding="utf-8")}


def test_the_check_mode_passes_on_the_committed_page():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
