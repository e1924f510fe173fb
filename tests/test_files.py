"""auditkit.files.write_private: mode 0600 from the first byte, atomic replacement, exclusive creation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from auditkit.files import write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_private_makes_an_owner_only_file_whatever_the_umask(tmp_path: Path):
    old = os.umask(0)
    try:
        write_private(tmp_path / "secret", "s3cret\n")
    finally:
        os.umask(old)
    assert (tmp_path / "secret").read_text() == "s3cret\n" and _mode(tmp_path / "secret") == 0o600
    write_private(tmp_path / "bytes", b"\x00\xff")
    assert (tmp_path / "bytes").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bytes", "secret"]  # no temporary file left


def test_write_private_replaces_a_file_and_its_mode(tmp_path: Path):
    path = tmp_path / "key"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_private(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o600


def test_write_private_exclusive_never_replaces(tmp_path: Path):
    path = tmp_path / "key"
    write_private(path, "first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_private(path, "second", exclusive=True)
    assert path.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["key"]
