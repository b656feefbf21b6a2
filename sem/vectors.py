"""Test vectors for a routine: edge cases first (0, 1, -1, the sign bit, the
largest positive value, all ones, every power of two), then random values
biased towards the interesting ones.  Deterministic for a given seed."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from sem.interp import Memory
from sem.ir import Routine

DATA_ADDRESS = 0x100000  # where every pointer input points in the test memory
DATA_SIZE = 64


@dataclass(frozen=True)
class Vector:
    args: tuple[int, ...]
    memory: Memory | None


def edges(w: int) -> list[int]:
    mask = (1 << w) - 1
    special = [0, 1, mask, 1 << (w - 1), (1 << (w - 1)) - 1, 2, mask - 1, 3]
    powers = [1 << i for i in range(w)]
    return list(dict.fromkeys(special + powers))


def _value(rng: random.Random, w: int) -> int:
    mask = (1 << w) - 1
    kind = rng.randrange(4)
    if kind == 0:
        return rng.getrandbits(w)
    if kind == 1:
        return (rng.randrange(-8, 9)) & mask  # small, both signs
    if kind == 2:
        return ((1 << rng.randrange(w)) + rng.randrange(-2, 3)) & mask
    return rng.choice(edges(w))


def _memory(rng: random.Random) -> Memory:
    """32-bit words drawn like values, often repeating (sorting needs ties)."""
    pool = [_value(rng, 32) for _ in range(rng.choice((2, 4, 16)))]
    words = [rng.choice(pool) for _ in range(DATA_SIZE // 4)]
    return Memory(DATA_ADDRESS, b"".join(w.to_bytes(4, "little") for w in words))


def generate(r: Routine, count: int = 1000, seed: int = 0) -> list[Vector]:
    rng = random.Random(seed)
    value_params = [i for i, t in enumerate(r.params) if t.name != "ptr"]

    def make(values: dict[int, int]) -> Vector:
        args = tuple(DATA_ADDRESS if t.name == "ptr" else values[i] for i, t in enumerate(r.params))
        return Vector(args, _memory(rng) if r.uses_memory else None)

    out: list[Vector] = []
    if value_params:  # every combination of edge cases, up to half the budget
        grids = [edges(r.params[i].width) for i in value_params]
        for combo in itertools.islice(itertools.product(*grids), count // 2):
            out.append(make(dict(zip(value_params, combo, strict=True))))
    while len(out) < count:
        out.append(make({i: _value(rng, r.params[i].width) for i in value_params}))
    return out
