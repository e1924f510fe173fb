"""RFC 6962 Merkle trees, as RFC 9162 §2.1 restates them: hashing, tree heads, inclusion and consistency proofs.

The leaves of a chain's tree are its events in seq order; a leaf's data is the event's 32-byte `hash`. Hashing is
SHA-256 with domain separation: leaf = H(0x00 ‖ data), node = H(0x01 ‖ left ‖ right), and the empty tree's head is
H(""). Proofs are made over a `nodes(level, index)` function that returns the hash of the complete subtree of 2^level
leaves starting at leaf index·2^level (level 0: a leaf hash), so a store that keeps those hashes answers any proof
for any tree size without reading its leaves again. Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 to the
letter. Nothing here knows about events, SQLite or the network.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

__all__ = ["EMPTY_ROOT", "ProofError", "leaf_hash", "node_hash", "root", "subtree_root", "inclusion_proof",
           "consistency_proof", "root_from_inclusion", "verify_inclusion", "verify_consistency", "Nodes",
           "nodes_of", "CompactRange"]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# nodes(level, index) → the hash of the complete subtree over leaves [index << level, (index + 1) << level).
Nodes = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify, or a request for one that cannot exist; the message says which."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2): where RFC 6962 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(nodes: Nodes, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range the RFC's recursion produces (start is a multiple of the largest power of two
    not above end - start)."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return nodes(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(subtree_root(nodes, start, start + k), subtree_root(nodes, start + k, end))


def root(nodes: Nodes, size: int) -> bytes:
    """The tree head of the first `size` leaves."""
    return subtree_root(nodes, 0, size)


def inclusion_proof(nodes: Nodes, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            path.append(subtree_root(nodes, start + k, end))
            end = start + k
        else:
            path.append(subtree_root(nodes, start, start + k))
            start += k
    return path[::-1]


def consistency_proof(nodes: Nodes, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 9162 §2.1.4.1 (empty when old is 0 or old == new)."""
    if not 0 <= old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    if old == 0 or old == new:
        return []
    proof: list[bytes] = []
    start, end, complete = 0, new, True
    m = old
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(subtree_root(nodes, start, end))
            break
        k = _split(n)
        if m <= k:
            proof.append(subtree_root(nodes, start + k, end))
            end = start + k
        else:
            proof.append(subtree_root(nodes, start, start + k))
            start, m, complete = start + k, m - k, False
    return proof[::-1]


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–4); raises ProofError on a malformed one."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _check_hash("the leaf hash", leaf)
    fn, sn, r = index, size - 1, leaf
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is high")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> None:
    """Raises ProofError unless `proof` shows leaf `index` with hash `leaf` in the tree of `size` with that root."""
    _check_hash("the root", expected_root)
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise ProofError(f"the inclusion proof of leaf {index} does not lead to the root of tree size {size}")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Raises ProofError unless `proof` shows the tree of size `old` with `old_root` is a prefix of the tree of
    size `new` with `new_root` (RFC 9162 §2.1.4.2, with its trivial cases)."""
    _check_hash("the old root", old_root)
    _check_hash("the new root", new_root)
    if old > new:
        raise ProofError(f"tree size went back from {old} to {new}")
    if old == new:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old}")
        return
    if old == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError(f"an empty consistency proof from size {old} to {new}")
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is high")
    if fr != old_root:
        raise ProofError(f"the consistency proof does not lead to the old root of size {old}")
    if sr != new_root:
        raise ProofError(f"the consistency proof does not lead to the new root of size {new}")


def nodes_of(leaf_hashes: Sequence[bytes]) -> Nodes:
    """A `nodes` function over leaf hashes held in memory (tests, exports of a few chains); O(2^level) per call."""
    cache: dict[tuple[int, int], bytes] = {}

    def nodes(level: int, index: int) -> bytes:
        if level == 0:
            return leaf_hashes[index]
        key = (level, index)
        found = cache.get(key)
        if found is None:
            found = cache[key] = node_hash(nodes(level - 1, 2 * index), nodes(level - 1, 2 * index + 1))
        return found

    return nodes


class CompactRange:
    """The right edge of a growing tree: the roots of its complete subtrees, largest first. Appending a leaf
    yields every complete subtree it closes as (level, index, hash), which is what a store keeps; the tree head
    is computed from the edge alone (RFC 9162 §2.1.1's MTH, folded from the right)."""

    def __init__(self, size: int = 0, edge: Sequence[bytes] = ()):
        if len(edge) != bin(size).count("1"):
            raise ValueError(f"a compact range of size {size} has {bin(size).count('1')} hashes, not {len(edge)}")
        self.size = size
        self.edge = list(edge)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        closed = [(0, self.size, leaf)]
        node, index, level = leaf, self.size, 0
        while index & 1:
            node = node_hash(self.edge.pop(), node)
            index >>= 1
            level += 1
            closed.append((level, index, node))
        self.edge.append(node)
        self.size += 1
        return closed

    def root(self) -> bytes:
        if not self.edge:
            return EMPTY_ROOT
        r = self.edge[-1]
        for left in reversed(self.edge[:-1]):
            r = node_hash(left, r)
        return r
