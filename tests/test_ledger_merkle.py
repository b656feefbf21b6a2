"""RFC 9162 tree math (stores/merkle.py) against the published Certificate Transparency
test vectors (tests/ct_vectors.py: the eight-leaf reference tree of [CT] and [TD]) and:

  [TD]   transparency-dev/merkle, rfc6962/rfc6962_test.go (leaf and node hashes of fixed
         inputs) and proof/verify_test.go (its corrupted-proof probes, re-created here)
  [TDN]  transparency-dev/merkle, proof/proof_test.go (TestInclusion, TestConsistency: which
         subtree nodes make up a proof, as (level, index), for trees up to 95 leaves)

Past those vectors, hypothesis checks that every proof of random trees verifies and that
changing its leaf, root, sizes or any hash makes it fail.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stores import merkle
from stores.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.ct_vectors import CONSISTENCY, EMPTY, INPUTS, PATHS, ROOTS, SOME_HASH, h


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    return MemoryTree(leaf_hash(d) for d in INPUTS)


def test_hashes_of_fixed_inputs():
    # [TD] rfc6962_test.go TestRFC6962Hasher
    assert EMPTY_ROOT == EMPTY == hashlib.sha256(b"").digest()
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


def test_root_of_every_prefix(tree):
    assert tree.root(0) == EMPTY
    assert [tree.root(n) for n in range(1, 9)] == ROOTS


def test_frontier_gives_the_same_roots_while_growing():
    frontier = Frontier()
    assert frontier.root() == EMPTY
    roots = []
    for d in INPUTS:
        frontier.append(leaf_hash(d))
        roots.append(frontier.root())
    assert roots == ROOTS


@pytest.mark.parametrize("leaf, size, path", PATHS)
def test_inclusion_proofs_of_the_reference_tree(tree, leaf, size, path):
    index = leaf - 1
    proof = inclusion_proof(index, size, tree)
    assert proof == [h(x) for x in path]
    assert verify_inclusion(index, size, leaf_hash(INPUTS[index]), proof, ROOTS[size - 1])


@pytest.mark.parametrize("old, new, path", CONSISTENCY)
def test_consistency_proofs_of_the_reference_tree(tree, old, new, path):
    proof = consistency_proof(old, new, tree)
    assert proof == [h(x) for x in path]
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def _corrupted_inclusions(index, size, proof, root, leaf):
    """[TD] verify_test.go corruptInclusionProof: every probe must be refused."""
    probes = [(index - 1, size, root, leaf, proof), (index + 1, size, root, leaf, proof),
              (index ^ 2, size, root, leaf, proof), (index, size * 2, root, leaf, proof),
              (index, size // 2, root, leaf, proof), (index, size, root, b"WrongLeaf", proof),
              (index, size, EMPTY, leaf, proof), (index, size, SOME_HASH, leaf, proof),
              (index, size, root, leaf, proof + [b""]), (index, size, root, leaf, proof + [root]),
              (index, size, root, leaf, [b""] + proof), (index, size, root, leaf, [root] + proof)]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((index, size, root, leaf, flipped))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [SOME_HASH, proof[0]] + proof[1:]))
    return probes


def _corrupted_consistencies(old, new, root1, root2, proof):
    """[TD] verify_test.go corruptConsistencyProof: every probe must be refused."""
    probes = [(old - 1, new, root1, root2, proof), (old + 1, new, root1, root2, proof),
              (old ^ 2, new, root1, root2, proof), (old, new * 2, root1, root2, proof),
              (old, new // 2, root1, root2, proof), (old, new, b"WrongRoot", root2, proof),
              (old, new, root1, b"WrongRoot", proof), (old, new, root2, root1, proof),
              (old, new, root1, root2, []), (old, new, root1, root2, proof + [b""]),
              (old, new, root1, root2, proof + [root1]), (old, new, root1, root2, proof + [root2]),
              (old, new, root1, root2, [b""] + proof), (old, new, root1, root2, [root1] + proof),
              (old, new, root1, root2, [root2] + proof),
              (old, new, root1, root2, [proof[0]] + proof), (old, new, root1, root2, proof[:-1])]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((old, new, root1, root2, flipped))
    return probes


@pytest.mark.parametrize("leaf, size, path", PATHS)
def test_corrupted_inclusion_proofs_are_refused(leaf, size, path):
    index, proof = leaf - 1, [h(x) for x in path]
    for probe in _corrupted_inclusions(index, size, proof, ROOTS[size - 1],
                                       leaf_hash(INPUTS[index])):
        i, n, root, leaf_h, p = probe
        assert not verify_inclusion(i, n, leaf_h, p, root), probe


@pytest.mark.parametrize("old, new, path", [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_are_refused(old, new, path):
    proof = [h(x) for x in path]
    for probe in _corrupted_consistencies(old, new, ROOTS[old - 1], ROOTS[new - 1], proof):
        assert not verify_consistency(*probe), probe


def test_inclusion_edge_cases():
    # [TD] verify_test.go TestVerifyInclusion and TestVerifyInclusionSingleEntry
    for index, size in ((0, 0), (0, 1), (1, 0), (2, 1)):
        assert not verify_inclusion(index, size, SOME_HASH, [], b"")
        assert not verify_inclusion(index, size, b"", [], EMPTY)
        assert not verify_inclusion(index, size, SOME_HASH, [], EMPTY)
    single = leaf_hash(b"data")
    assert verify_inclusion(0, 1, single, [], single)
    assert not verify_inclusion(0, 1, b"", [], single)
    assert not verify_inclusion(0, 1, single, [], b"")
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(8, 8)


def test_consistency_edge_cases():
    # [TD] verify_test.go TestVerifyConsistency
    root1, root2 = b"don't care 1", b"don't care 2"
    cases = [(0, 0, root1, root2, [], False), (1, 1, root1, root2, [], False),
             (0, 0, root1, root1, [], True), (0, 1, root1, root2, [], True),
             (1, 1, root2, root2, [], True), (1, 0, root1, root2, [], False),
             (2, 1, root1, root2, [], False), (1, 2, root1, root2, [], False),
             (0, 0, EMPTY, root2, [], False), (1, 1, EMPTY, root2, [], False),
             (0, 0, EMPTY, EMPTY, [EMPTY], False), (0, 1, EMPTY, EMPTY, [EMPTY], False),
             (1, 1, EMPTY, EMPTY, [EMPTY], False)]
    for old, new, r1, r2, proof, want in cases:
        assert verify_consistency(old, new, r1, r2, proof) is want, (old, new)


def _nodes(ranges):
    return [node for start, end in ranges for node in merkle.pieces(start, end)]


@pytest.mark.parametrize("size, index, want", [
    # [TDN] proof_test.go TestInclusion; their rehash(begin, end, ...) marks ids that are
    # hashed together into one proof element: exactly our pieces of one right-edge range.
    (1, 0, []), (2, 0, [(0, 1)]), (2, 1, [(0, 0)]), (3, 1, [(0, 0), (0, 2)]),
    (7, 0, [(0, 1), (1, 1), (0, 6), (1, 2)]), (7, 2, [(0, 3), (1, 0), (0, 6), (1, 2)]),
    (7, 4, [(0, 5), (0, 6), (2, 0)]), (7, 6, [(1, 2), (2, 0)]),
    (5, 3, [(0, 2), (1, 0), (0, 4)]), (6, 4, [(0, 5), (2, 0)]),
    (15, 10, [(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)]),
    (31, 24, [(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)]),
    (95, 81, [(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)]),
])
def test_inclusion_proof_nodes(size, index, want):
    # The reference lists a rehashed range's nodes right to left (j then i): ours are
    # left to right, largest first, so compare each proof element's set of nodes.
    ranges = merkle.inclusion_ranges(index, size)
    assert sorted(_nodes(ranges)) == sorted(want)


@pytest.mark.parametrize("old, new, want", [
    # [TDN] proof_test.go TestConsistency
    (1, 2, [(0, 1)]), (1, 4, [(0, 1), (1, 1)]), (1, 6, [(0, 1), (1, 1), (1, 2)]),
    (2, 3, [(0, 2)]), (2, 8, [(1, 1), (2, 1)]), (3, 7, [(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)]),
    (4, 7, [(0, 6), (1, 2)]), (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)]),
    (6, 7, [(1, 2), (0, 6), (2, 0)]), (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)]),
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)]), (4, 6, [(1, 2)]),
    (10, 15, [(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)]),
    (24, 31, [(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)]),
    (81, 95, [(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)]),
    (5, 5, []), (8, 8, []),
])
def test_consistency_proof_nodes(old, new, want):
    assert sorted(_nodes(merkle.consistency_ranges(old, new))) == sorted(want)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1),
                                                      st.integers(1, n))))
def test_every_inclusion_proof_verifies_and_wrong_ones_fail(args):
    n, index, size = args
    size = max(size, index + 1)
    tree = MemoryTree(_leaves(n))
    root, leaf = tree.root(size), tree.levels[0][index]
    proof = inclusion_proof(index, size, tree)
    assert verify_inclusion(index, size, leaf, proof, root)
    assert not verify_inclusion(index, size, leaf_hash(b"other"), proof, root)
    assert not verify_inclusion(index, size, leaf, proof, leaf_hash(b"other root"))
    if size > 1:
        assert not verify_inclusion((index + 1) % size, size, leaf, proof, root)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not verify_inclusion(index, size, leaf, bad, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n),
                                                      st.integers(1, n))))
def test_every_consistency_proof_verifies_and_wrong_ones_fail(args):
    n, a, b = args
    old, new = min(a, b), max(a, b)
    tree = MemoryTree(_leaves(n))
    r1, r2 = tree.root(old), tree.root(new)
    proof = consistency_proof(old, new, tree)
    assert verify_consistency(old, new, r1, r2, proof)
    other = leaf_hash(b"other root")
    assert not verify_consistency(old, new, other, r2, proof)
    assert not verify_consistency(old, new, r1, other, proof)
    if old < new:
        assert not verify_consistency(old, new, r2, r1, proof)
        assert not verify_consistency(old + 1, new, r1, r2, proof)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not verify_consistency(old, new, r1, r2, bad)


def test_a_tree_built_from_a_different_history_is_not_consistent():
    a = MemoryTree(_leaves(20))
    b = MemoryTree(_leaves(9) + [leaf_hash(b"rewritten")] + _leaves(20)[10:])
    proof = consistency_proof(12, 20, b)
    assert not verify_consistency(12, 20, a.root(12), b.root(20), proof)
    assert verify_consistency(12, 20, b.root(12), b.root(20), proof)


def test_frontier_creates_nodes_in_post_order():
    """Appending leaf i completes the perfect subtrees ending at i, smallest first: after
    n leaves, 2n - popcount(n) nodes in all (the layout stores/ledger.py keys them by)."""
    frontier, tree, made = Frontier(), MemoryTree(), []
    for i, leaf in enumerate(_leaves(37)):
        made += frontier.append(leaf)
        tree.append(leaf)
        assert len(made) == 2 * (i + 1) - (i + 1).bit_count()
        assert frontier.peaks == tree.hashes(merkle.pieces(0, i + 1))
    assert set(made) == {x for row in tree.levels for x in row}
