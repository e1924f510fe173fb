"""The golden vectors of docs/event-format.md, checked byte for byte against auditkit.events."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from auditkit.model import events as ev
from helpers import ROOT

DOC = ROOT / "docs" / "event-format.md"


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


# --- sealing in two steps (the synthetic history's workers) -------------------------------------------------------

@pytest.mark.parametrize("details", [{}, {"prev_hash": "x" * 64, "nested": {"prev_hash": "y"}}, {"env": ["A", "B"]}])
def test_seal_halves_then_splice_hash_equals_sealing(details):
    """A worker cuts the canonical JSON where prev_hash goes; the writer splices the previous hash in. Whatever the
    details hold (even a key named prev_hash), the result is the hash seal() gives."""
    draft = ev.Event(id=ev.new_event_id(), timestamp="2026-11-20T14:03:07.120Z", actor="zoë@example.com",
                     actor_type="user", rack="acme/production", category="Environment", action="updated",
                     description='Set "quoted" \\ env', outcome="succeeded", details=details)
    prev = hashlib.sha256(b"previous").hexdigest()
    sealed = ev.seal(draft, source="gw-1", seq=7, prev_hash=prev)
    before, after = ev.seal_halves(draft, source="gw-1", seq=7)
    assert ev.splice_hash(prev, before, after) == sealed.hash
    assert before + prev.encode() + after == ev.canonical_json(sealed)


def test_ids_are_time_ordered_crockford_and_distinct():
    ids = [ev.new_event_id(ms) for ms in (0, 1, 1764000000000, (1 << 48) - 1)]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    assert ids[0].startswith("0000000000") and ids[-1].startswith("7ZZZZZZZZZ")
