"""The layering the tree stands for, enforced: import-linter's contracts (pyproject.toml, [tool.importlinter]) and
what a gateway process loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_a_gateway_process_loads_neither_textual_nor_datasette_nor_pyte(tmp_path: Path):
    """`auditkit gateway serve` up to the moment it would start serving: uvicorn.run is replaced by a probe that
    reports which of the review and share libraries the process has imported."""
    probe = f"""
import json, sys, uvicorn
def run(*args, **kwargs):
    print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'datasette', 'pyte'))))
    sys.exit(0)
uvicorn.run = run
from auditkit.cli import main
main(['gateway', 'serve', '--rack', 'acme/prod=http://convox:pw@127.0.0.1:9', '--journal',
      {str(tmp_path / 'journal.db')!r}, '--http', '--listen', '127.0.0.1:0'])
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == []
