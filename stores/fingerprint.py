"""The hardware fingerprint: the key every store files its records under.

A board's fingerprint is its architecture, its board profile and the identity
registers discovery read (CPUID words on x86-64; misa, the vendor/arch/impl
ids and the device tree's riscv,isa string on RISC-V); its digest is BLAKE2b-256
of their canonical JSON.  Built from a discovery inventory by
discovery/fingerprint.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from arch import Arch


@dataclass(frozen=True)
class Fingerprint:
    arch: Arch
    board: str
    identity: tuple[tuple[str, int | str], ...]  # sorted (name, value)

    @property
    def digest(self) -> bytes:
        text = json.dumps([self.arch.name, self.board, list(self.identity)])
        return hashlib.blake2b(text.encode(), digest_size=32).digest()

    @property
    def label(self) -> str:
        """How people see it: the board and the digest's first 12 hex digits.  Stores key
        by the whole digest; this is for display only."""
        return f"{self.board}:{self.digest.hex()[:12]}"
