"""RFC 9162 Merkle tree hashing, compact frontier, and inclusion/consistency proofs.

Functions that take `leaves` take leaf hashes (already `leaf_hash`ed), as a log stores them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_BYTES = 32

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes; the empty tree's root is SHA-256 of the empty string."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


class Frontier:
    """The compact range [0, size): roots of the perfect subtrees along the right edge.

    Appending is amortised O(1) hashes and the root costs O(log n), so a log never has to
    rehash its history to sign a new checkpoint.
    """

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def restore(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """The frontier of a tree of `size` leaves from its subtree roots, largest first."""
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError("a frontier holds one subtree root per 1-bit of its size")
        if any(len(node) != HASH_BYTES for node in hashes):
            raise ValueError("a subtree root is a 32-byte hash")
        frontier = cls()
        frontier._size = size
        frontier._hashes = list(hashes)
        return frontier

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """The subtree roots, largest (leftmost) first: with the size, all a frontier holds."""
        return list(self._hashes)

    def copy(self) -> Frontier:
        clone = Frontier()
        clone._size = self._size
        clone._hashes = list(self._hashes)
        return clone

    def append(self, leaf: bytes) -> None:
        node = leaf
        size = self._size
        # Each trailing 1-bit of the old size is a perfect subtree the new leaf completes.
        while size & 1:
            node = node_hash(self._hashes.pop(), node)
            size >>= 1
        self._hashes.append(node)
        self._size += 1

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        root = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            root = node_hash(left, root)
        return root


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < size <= len(leaves):
        raise ValueError("inclusion proof needs 0 <= index < size <= len(leaves)")
    return _path(leaves[:size], index)


def _path(leaves: Sequence[bytes], m: int) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return _path(leaves[:k], m) + [root_from_leaves(leaves[k:])]
    return _path(leaves[k:], m - k) + [root_from_leaves(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], m: int, n: int) -> list[bytes]:
    """PROOF(m, D[0:n]) of RFC 9162 section 2.1.4.1; empty when m is 0 or m equals n."""
    if not 0 <= m <= n <= len(leaves):
        raise ValueError("consistency proof needs 0 <= m <= n <= len(leaves)")
    if m == 0 or m == n:
        return []
    return _subproof(m, leaves[:n], True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_from_leaves(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root_from_leaves(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root_from_leaves(leaves[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does `proof` place leaf hash `leaf` at `index` under `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree (size2, root2) an extension of (size1, root1)?"""
    if not 0 <= size1 <= size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0
