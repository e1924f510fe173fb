"""The golden vectors of docs/event-format.md, checked byte for byte against auditkit.events."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from auditkit import events as ev

DOC = Path(__file__).resolve().parent.parent / "docs" / "event-format.md"


def _vectors() -> list[tuple[dict, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"^### Vector \d+:.*$", text, flags=re.M)[1:]
    vectors = []
    for section in sections:
        blocks = re.findall(r"```(json|text)\n(.*?)\n```", section, flags=re.S)
        (_, event_json), (_, canonical), (_, digest) = blocks[:3]
        vectors.append((json.loads(event_json), canonical, digest.strip()))
    return vectors


VECTORS = _vectors()


def test_the_document_holds_two_linked_vectors():
    assert len(VECTORS) == 2
    (first, _, first_hash), (second, _, _) = VECTORS
    assert first["prev_hash"] == ev.GENESIS_HASH
    assert second["prev_hash"] == first_hash


@pytest.mark.parametrize("event_data,canonical,digest", VECTORS)
def test_canonical_json_is_byte_for_byte(event_data, canonical, digest):
    event = ev.from_dict(event_data)
    assert ev.canonical_json(event) == canonical.encode("utf-8")


@pytest.mark.parametrize("event_data,canonical,digest", VECTORS)
def test_hash_follows_the_chain_rule(event_data, canonical, digest):
    event = ev.from_dict(event_data)
    assert event.compute_hash() == digest
    # The rule as the document states it, written independently of auditkit.
    independent = hashlib.sha256(event_data["prev_hash"].encode("ascii") + canonical.encode("utf-8")).hexdigest()
    assert independent == digest


def test_any_change_to_a_vector_changes_its_hash():
    event_data, _, digest = VECTORS[0]
    for field, value in [("actor", "mallory@example.com"), ("source_seq", 2), ("status", 500),
                         ("details", {**event_data["details"], "note": "cafe ✓"})]:
        changed = ev.from_dict({**event_data, field: value})
        assert changed.compute_hash() != digest, field


def test_floats_are_refused_in_details():
    event_data, _, _ = VECTORS[1]
    with pytest.raises(ev.EventError, match="float"):
        ev.from_dict({**event_data, "details": {"duration": 1.5}})
