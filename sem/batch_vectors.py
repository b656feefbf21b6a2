"""Test vectors drawn as arrays: `vectors.generate`'s design (every combination of edge
cases first, up to half the batch, then random values biased towards the interesting
ones, only inside the routine's domain; memory windows of 32-bit words drawn from small
pools, so that sorts meet ties) for batches of up to 100,000 vectors at once.

The edge cases come in `generate`'s order; the random part is drawn from numpy's PCG64
stream of the seed, not Python's, so its values differ from `generate`'s, and are as
deterministic.  Why: the motherboard's tasks hold 20,000-50,000 vectors each, and
`generate` and packing made a task graph's 913,000 in 7.6 s (with memory windows:
16.4 s), a Python value at a time, while the run waited; these take 0.13 and 0.45 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sem.batch_interp import admits_many
from sem.ir import Routine
from sem.vectors import DATA_ADDRESS, DATA_SIZE, DRAWS, NarrowDomain, edges

U64 = np.uint64
POOL_SIZES = (2, 4, 16)  # distinct words a memory window is drawn from (as vectors._memory)


@dataclass(frozen=True)
class VectorArrays:
    args: np.ndarray  # vectors x inputs, uint64 (a pointer input: DATA_ADDRESS)
    memory: np.ndarray | None  # vectors x DATA_SIZE bytes, uint8; None without memory


def generate_batch(r: Routine, count: int = 1000, seed: int = 0) -> VectorArrays:
    rng = np.random.Generator(np.random.PCG64(seed))
    value_params = [i for i, t in enumerate(r.params) if t.name != "ptr"]
    widths = [r.params[i].width for i in value_params]
    blocks: list[np.ndarray] = []
    have = 0

    def keep(block: np.ndarray, room: int) -> None:
        nonlocal have
        block = block[admits_many(r, block)][:room]
        blocks.append(block)
        have += len(block)

    if value_params:  # every combination of edge cases, in order, up to half the budget
        grids = [np.array(edges(w), dtype=U64) for w in widths]
        shape = tuple(len(g) for g in grids)
        start, total, half = 0, math.prod(shape), count // 2
        while have < half and start < total:
            stop = min(total, start + 2 * (half - have) + 64)  # a precondition drops some
            picks = np.unravel_index(np.arange(start, stop), shape)
            keep(_rows(r, value_params, [g[p] for g, p in zip(grids, picks, strict=True)],
                       stop - start), half - have)
            start = stop
    draws = 0
    while have < count:
        wanted = count - have
        keep(_rows(r, value_params, [_values(rng, w, wanted) for w in widths], wanted), wanted)
        draws += wanted
        if have < count and draws > DRAWS * count:
            raise NarrowDomain(f"{have} of {draws} random inputs meet the routine's "
                               "precondition; widen it or ask for fewer vectors")
    args = np.concatenate(blocks) if blocks else np.zeros((0, len(r.params)), dtype=U64)
    return VectorArrays(args, _memory(rng, count) if r.uses_memory else None)


def _rows(r: Routine, value_params: list[int], columns: list[np.ndarray], n: int) -> np.ndarray:
    rows = np.full((n, len(r.params)), DATA_ADDRESS, dtype=U64)
    for i, column in zip(value_params, columns, strict=True):
        rows[:, i] = column
    return rows


def _values(rng: np.random.Generator, width: int, n: int) -> np.ndarray:
    """`vectors._value`'s four kinds, a quarter each: any value; a small one of either
    sign; a power of two give or take 2; an edge case."""
    mask = U64((1 << width) - 1)
    kind = rng.integers(0, 4, size=n)
    anything = rng.integers(0, 2**64 - 1, size=n, dtype=U64, endpoint=True) & mask
    small = rng.integers(-8, 9, size=n).view(U64) & mask
    power = ((U64(1) << rng.integers(0, width, size=n).astype(U64))
             + rng.integers(-2, 3, size=n).view(U64)) & mask
    edge = np.array(edges(width), dtype=U64)[rng.integers(0, len(edges(width)), size=n)]
    return np.select([kind == 0, kind == 1, kind == 2], [anything, small, power], edge)


def _memory(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per vector, DATA_SIZE bytes of 32-bit words drawn from a pool of 2, 4 or 16 values
    drawn like inputs (`vectors._memory`)."""
    words = DATA_SIZE // 4
    pools = np.stack([_values(rng, 32, n) for _ in range(max(POOL_SIZES))], axis=1)
    sizes = rng.choice(POOL_SIZES, size=n)
    picks = (rng.random((n, words)) * sizes[:, None]).astype(np.int64)
    chosen = np.take_along_axis(pools, picks, axis=1).astype("<u4")
    return chosen.view(np.uint8).reshape(n, DATA_SIZE)
