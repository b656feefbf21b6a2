"""Transport fault injection (a test option): bytes dropped and bits flipped
at given per-byte rates, from a seeded RNG so a damaged run can be replayed.
Used between the frame encoder and the line, in both directions, by the QEMU
link and by the in-process loopback."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class LineFaults:
    """Per-byte drop and bit-flip rates, applied to both directions."""

    drop_rate: float = 0.0
    flip_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.drop_rate < 1 and 0 <= self.flip_rate < 1 and self.drop_rate + self.flip_rate < 1):
            raise ValueError(f"drop {self.drop_rate} and flip {self.flip_rate} rates must be in [0, 1)"
                             " and sum below 1")


class LineDamage:
    """Applies LineFaults to bytes from a seeded RNG, counting what it did."""

    def __init__(self, faults: LineFaults) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.dropped = self.flipped = 0

    def __call__(self, data: bytes) -> bytes:
        drop, flip = self.faults.drop_rate, self.faults.flip_rate
        if not (drop or flip) or not data:
            return data
        out, rand = bytearray(), self.rng.random
        for byte in data:
            r = rand()
            if r < drop:
                self.dropped += 1
                continue
            if r < drop + flip:
                self.flipped += 1
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
        return bytes(out)
