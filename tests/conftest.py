"""Shared fixtures: fresh stores, an event factory and the hand-built corpus (tests/helpers.py builds them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable, Iterator

import pytest

from auditkit import store
from auditkit.model import events as ev
from helpers import Corpus, build_corpus, draft


@pytest.fixture
def make_event() -> Callable[..., ev.Event]:
    return draft


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    c = store.open_db(db_path)
    yield c
    c.close()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("corpus") / "corpus.db")
