"""RFC 6962 / RFC 9162 Merkle trees (auditkit/model/merkle.py) against the standard's test vectors (as
transparency-dev/merkle publishes them), and signed notes and checkpoints (auditkit/model/note.py) against
golang.org/x/mod/sumdb/note's published example."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkit.model import merkle, note
from auditkit.model.merkle import ProofError

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
H = bytes.fromhex
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]
NODES = merkle.nodes_of([merkle.leaf_hash(d) for d in LEAVES])


def test_tree_heads_are_the_rfc_vectors():
    assert merkle.root(NODES, 0) == merkle.EMPTY_ROOT == H(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert [merkle.root(NODES, n) for n in range(1, 9)] == ROOTS
    edge = merkle.CompactRange()
    for n, data in enumerate(LEAVES, 1):
        edge.append(merkle.leaf_hash(data))
        assert edge.root() == ROOTS[n - 1]


@pytest.mark.parametrize("index,size,proof", INCLUSION)
def test_inclusion_proofs_are_the_rfc_vectors(index, size, proof):
    assert merkle.inclusion_proof(NODES, index, size) == proof
    merkle.verify_inclusion(index, size, merkle.leaf_hash(LEAVES[index]), proof, ROOTS[size - 1])


@pytest.mark.parametrize("old,new,proof", CONSISTENCY)
def test_consistency_proofs_are_the_rfc_vectors(old, new, proof):
    assert merkle.consistency_proof(NODES, old, new) == proof
    merkle.verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def corruptions(proof: list[bytes], other: bytes) -> list[list[bytes]]:
    """The proof-level corruptions transparency-dev/merkle's tests try."""
    out = [proof + [b""], proof + [other], [b""] + proof, [other] + proof]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        out.append(flipped)
    if proof:
        out.append(proof[:-1])
    if len(proof) > 1:
        out.append([proof[0], other] + proof[1:])
    return out


@pytest.mark.parametrize("index,size,proof", INCLUSION)
def test_altered_inclusion_proofs_fail(index, size, proof):
    leaf, good = merkle.leaf_hash(LEAVES[index]), ROOTS[size - 1]
    for bad in corruptions(proof, good):
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, size, leaf, bad, good)
    for i, n in ((index - 1, size), (index + 1, size), (index ^ 2, size), (index, size * 2), (index, size // 2)):
        if (i, n) != (index, size) and 0 <= i:
            with pytest.raises(ProofError):
                merkle.verify_inclusion(i, n, leaf, proof, good)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, merkle.leaf_hash(b"WrongLeaf"), proof, good)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, proof, merkle.EMPTY_ROOT)


@pytest.mark.parametrize("old,new,proof", CONSISTENCY)
def test_altered_consistency_proofs_fail(old, new, proof):
    r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
    for bad in corruptions(proof, r1) + corruptions(proof, r2) + [[], [proof[0]] + proof]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, r1, r2, bad)
    for o, n in ((old - 1, new), (old + 1, new), (old ^ 2, new), (old, new * 2), (old, new // 2)):
        if (o, n) != (old, new) and 0 < o <= n:
            with pytest.raises(ProofError):
                merkle.verify_consistency(o, n, r1, r2, proof)
    for a, b in ((merkle.EMPTY_ROOT, r2), (r1, merkle.EMPTY_ROOT), (r2, r1)):
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, a, b, proof)


def test_trivial_consistency_and_a_rollback():
    merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, ROOTS[4], [])
    merkle.verify_consistency(4, 4, ROOTS[3], ROOTS[3], [])
    with pytest.raises(ProofError, match="went back"):
        merkle.verify_consistency(5, 4, ROOTS[4], ROOTS[3], [])
    with pytest.raises(ProofError, match="two different roots"):
        merkle.verify_consistency(4, 4, ROOTS[3], ROOTS[4], [])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_proof_of_a_random_tree_verifies_and_any_altered_hash_fails(size, data):
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    nodes = merkle.nodes_of(leaves)
    edge = merkle.CompactRange()
    for leaf in leaves:
        edge.append(leaf)
    head = merkle.root(nodes, size)
    assert edge.root() == head
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(nodes, index, size)
    merkle.verify_inclusion(index, size, leaves[index], proof, head)
    old = data.draw(st.integers(0, size))
    consistency = merkle.consistency_proof(nodes, old, size)
    merkle.verify_consistency(old, size, merkle.root(nodes, old), head, consistency)
    for hashes, check in ((proof, lambda p: merkle.verify_inclusion(index, size, leaves[index], p, head)),
                          (consistency, lambda p: merkle.verify_consistency(old, size, merkle.root(nodes, old),
                                                                            head, p))):
        if hashes:
            i = data.draw(st.integers(0, len(hashes) - 1))
            bit = data.draw(st.integers(0, 255))
            altered = list(hashes)
            altered[i] = bytes([altered[i][bit // 8] ^ (1 << bit % 8) if j == bit // 8 else b
                                for j, b in enumerate(altered[i])])
            with pytest.raises(ProofError):
                check(altered)


def test_a_compact_range_closes_the_subtrees_a_store_keeps():
    edge = merkle.CompactRange()
    closed = [node for data in LEAVES for node in edge.append(merkle.leaf_hash(data))]
    assert (3, 0, ROOTS[7]) in closed and (2, 1, NODES(2, 1)) in closed and len(closed) == 8 + 4 + 2 + 1
    rebuilt = merkle.CompactRange(edge.size, edge.edge)
    assert rebuilt.root() == ROOTS[7]
    with pytest.raises(ValueError):
        merkle.CompactRange(5, [ROOTS[0]])


# --- signed notes and checkpoints ---------------------------------------------------------------------------------

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_NOTE = (PETER_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def test_the_go_sumdb_note_example_byte_for_byte():
    signer = note.Signer.parse(PETER_SKEY)
    assert str(signer) == PETER_SKEY and str(signer.verifier) == PETER_VKEY
    assert note.sign(PETER_TEXT, signer) == PETER_NOTE  # Ed25519 is deterministic
    text, good = note.open_note(PETER_NOTE, note.Verifier.parse(PETER_VKEY))
    assert text == PETER_TEXT and [str(v) for v in good] == [PETER_VKEY]
    assert "AYEKFALV" not in repr(signer)


@pytest.mark.parametrize("mangle", [
    lambda n: n.replace("cryptography", "cryptographY"),  # a changed line
    lambda n: n.replace("problem is.\n", "problem is.\nextra line\n"),  # an extra line
    lambda n: n.replace("\n\n", "\n"),  # no signature block
    lambda n: n.replace("— ", "- "),
    lambda n: n.replace("x08go", "y08go"),
    lambda n: n[:-1],
    lambda n: n.replace("PeterNeumann x08", "PeterNeumann  x08"),
])
def test_a_tampered_note_is_refused(mangle):
    with pytest.raises(note.NoteError):
        note.open_note(mangle(PETER_NOTE), note.Verifier.parse(PETER_VKEY))


def test_a_wrong_key_is_refused_and_unknown_signatures_are_ignored():
    other = note.generate_signer("PeterNeumann")  # same name, another key
    with pytest.raises(note.NoteError, match="not signed by any expected key"):
        note.open_note(PETER_NOTE, other.verifier)
    both = note.sign(PETER_TEXT, note.Signer.parse(PETER_SKEY), other)
    assert note.open_note(both, other.verifier)[1] == [other.verifier]
    for bad in ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "PeterNeumann+c74f20a3",
                "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T"):
        with pytest.raises(note.NoteError):
            note.Verifier.parse(bad)


def test_checkpoints_round_trip_and_refuse_what_the_spec_forbids():
    signer = note.generate_signer("gw-a")
    checkpoint = note.Checkpoint("gw-a", 8, ROOTS[7], ("extension line",))
    signed = checkpoint.sign(signer)
    text, _ = note.open_note(signed, signer.verifier)
    assert text == f"gw-a\n8\n{base64.b64encode(ROOTS[7]).decode()}\nextension line\n"
    assert note.parse_checkpoint(text) == checkpoint
    for bad in ("gw-a\n08\nAAAA\n", "gw-a\n8\n", "\n8\n" + base64.b64encode(ROOTS[0]).decode() + "\n",
                "gw-a\n-1\n" + base64.b64encode(ROOTS[0]).decode() + "\n",
                "gw-a\n8\n" + base64.b64encode(ROOTS[0][:31]).decode() + "\n"):
        with pytest.raises(note.NoteError):
            note.parse_checkpoint(bad)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30), min_size=1,
                max_size=5))
def test_any_signed_text_opens_to_itself(lines):
    signer = note.generate_signer("log.example/a")
    text = "".join(f"{line}\n" for line in lines)
    assert note.open_note(note.sign(text, signer), signer.verifier)[0] == text
