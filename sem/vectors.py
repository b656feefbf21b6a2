"""Test vectors for a routine: edge cases first (0, 1, -1, the sign bit, the
largest positive value, all ones, every power of two), then random values
biased towards the interesting ones.  Deterministic for a given seed.  Only
inputs inside the routine's domain (its precondition, sem/ir.py): outside it
any answer is right, so a vector there would test nothing."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from sem.interp import Memory, admits
from sem.ir import Routine

DATA_ADDRESS = 0x100000  # where every pointer input points in the test memory
DATA_SIZE = 64
DRAWS = 100  # random draws per vector wanted before a precondition counts as too narrow


class NarrowDomain(ValueError):
    """Random inputs almost never meet the routine's precondition."""


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

    def inside(values: dict[int, int]) -> bool:
        return admits(r, tuple(DATA_ADDRESS if t.name == "ptr" else values[i]
                               for i, t in enumerate(r.params)))

    out: list[Vector] = []
    if value_params:  # every combination of edge cases, up to half the budget
        grids = [edges(r.params[i].width) for i in value_params]
        combos = (dict(zip(value_params, combo, strict=True))
                  for combo in itertools.product(*grids))
        for values in itertools.islice(filter(inside, combos), count // 2):
            out.append(make(values))
    draws = 0
    while len(out) < count:
        values = {i: _value(rng, r.params[i].width) for i in value_params}
        draws += 1
        if inside(values):
            out.append(make(values))
        elif draws > DRAWS * count:
            raise NarrowDomain(f"{len(out)} of {draws} random inputs meet the routine's "
                               "precondition; widen it or ask for fewer vectors")
    return out
