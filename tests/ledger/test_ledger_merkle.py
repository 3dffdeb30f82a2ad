import hashlib

import pytest

from ledger import (
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex
# RFC 6962 / RFC 9162 reference vectors (the leaves and roots used by CT and transparency-dev).
VECTOR_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                 "606162636465666768696a6b6c6d6e6f"]  # fmt: skip
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
VECTOR_HASHES = [leaf_hash(h(leaf)) for leaf in VECTOR_LEAVES]


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 section 2.1.1 defines it."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(f"entry {i}".encode()) for i in range(n)]


def test_reference_roots() -> None:
    assert root_from_leaves([]).hex() == hashlib.sha256(b"").hexdigest()
    for size, root in enumerate(VECTOR_ROOTS, start=1):
        assert root_from_leaves(VECTOR_HASHES[:size]).hex() == root


def test_reference_proofs() -> None:
    path = [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]  # fmt: skip
    assert inclusion_proof(VECTOR_HASHES, 5, 8) == path
    assert verify_inclusion(VECTOR_HASHES[5], 5, 8, path, h(VECTOR_ROOTS[7]))
    assert not verify_inclusion(VECTOR_HASHES[5], 4, 8, path, h(VECTOR_ROOTS[7]))
    proof = [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
             h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
             h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]  # fmt: skip
    assert consistency_proof(VECTOR_HASHES, 6, 8) == proof
    assert verify_consistency(6, 8, h(VECTOR_ROOTS[5]), h(VECTOR_ROOTS[7]), proof)
    assert not verify_consistency(6, 8, h(VECTOR_ROOTS[4]), h(VECTOR_ROOTS[7]), proof)


def test_root_and_frontier_match_the_definition() -> None:
    leaves = leaves_of(70)
    frontier = Frontier()
    assert frontier.root() == naive_root([])
    for n in range(71):
        assert root_from_leaves(leaves[:n]) == naive_root(leaves[:n])
        assert frontier.size == n and frontier.root() == naive_root(leaves[:n])
        if n < 70:
            frontier.append(leaves[n])


def test_all_inclusion_proofs_verify_and_tampering_fails() -> None:
    leaves = leaves_of(41)
    roots = [root_from_leaves(leaves[:n]) for n in range(42)]
    for size in range(1, 41):
        root = roots[size]
        for index in range(size):
            proof = inclusion_proof(leaves, index, size)
            assert verify_inclusion(leaves[index], index, size, proof, root)
            assert not verify_inclusion(leaves[index], index, size + 1, proof, roots[size + 1])
            assert not verify_inclusion(leaves[index], size, size, proof, root)
            if proof:
                bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
                assert not verify_inclusion(leaves[index], index, size, bad, root)
                assert not verify_inclusion(leaves[index], index, size, proof[:-1], root)
            other = (index + 1) % size
            if other != index:
                assert not verify_inclusion(leaves[other], index, size, proof, root)


def test_all_consistency_proofs_verify_and_tampering_fails() -> None:
    leaves = leaves_of(40)
    roots = [root_from_leaves(leaves[:n]) for n in range(41)]
    for n in range(41):
        for m in range(n + 1):
            proof = consistency_proof(leaves, m, n)
            assert verify_consistency(m, n, roots[m], roots[n], proof)
            if 0 < m < n:
                assert not verify_consistency(m, n, roots[m - 1], roots[n], proof)
                assert not verify_consistency(m, n, roots[m], roots[n - 1], proof)
                bad = [*proof[:-1], proof[-1][:-1] + bytes([proof[-1][-1] ^ 1])]
                assert not verify_consistency(m, n, roots[m], roots[n], bad)
                assert not verify_consistency(m, n, roots[m], roots[n], proof + proof[:1])
    assert not verify_consistency(3, 2, roots[3], roots[2], [])


def test_proof_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        inclusion_proof(leaves_of(3), 3, 3)
    with pytest.raises(ValueError):
        consistency_proof(leaves_of(3), 2, 4)
