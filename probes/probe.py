"""A probe (code + input + class) and what one run of it produced."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from functools import cached_property

from arch import Arch
from contract.probe_abi import (
    CODE_SIZE,
    DEFAULT_BUDGET,
    DEFAULT_OUTPUT_SIZE,
    INPUT_SIZE,
    MAX_BUDGET,
    OUTPUT_SIZE,
    Outcome,
    Privilege,
)


@dataclass(frozen=True)
class Probe:
    arch: Arch
    code: bytes
    privilege: Privilege = Privilege.USER
    input: bytes = b""
    family: str = "adhoc"
    budget: int = DEFAULT_BUDGET
    output_size: int = DEFAULT_OUTPUT_SIZE  # how much of the output buffer to report
    meta: dict = field(default_factory=dict, compare=False, hash=False)  # family bookkeeping
    # A run option, not part of what the probe is: ask the guest for the length of
    # the first instruction as the machine decoded it (PROBE_RUN_FLAG_MEASURE_LENGTH).
    measure_length: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.arch, Arch):
            raise TypeError(f"a probe's arch is an Arch (arch.by_name), not {self.arch!r}")
        if not 0 < len(self.code) <= CODE_SIZE:
            raise ValueError(f"probe code is {len(self.code)} bytes; it must be 1..{CODE_SIZE}")
        if len(self.input) > INPUT_SIZE:
            raise ValueError(f"probe input is {len(self.input)} bytes; at most {INPUT_SIZE}")
        if not 0 < self.budget <= MAX_BUDGET:
            raise ValueError(f"budget {self.budget} must be 1..{MAX_BUDGET} instructions")
        if not 0 <= self.output_size <= OUTPUT_SIZE:
            raise ValueError(f"output_size {self.output_size} must be 0..{OUTPUT_SIZE}")

    @cached_property  # a campaign asks for it several times per probe
    def content_hash(self) -> bytes:
        """BLAKE2b-256 of (arch, class, code, input): what the probe *is*."""
        h = hashlib.blake2b(digest_size=32)
        for part in (self.arch.name.encode(), bytes([int(self.privilege)]), self.code, self.input):
            h.update(struct.pack("<I", len(part)))  # length-prefixed: no ambiguous concatenation
            h.update(part)
        return h.digest()

    @property
    def tag(self) -> int:
        """The 32-bit slot tag the guest checks a run against (protocol PROBE_RUN.tag)."""
        return int.from_bytes(self.content_hash[:4], "little")


@dataclass(frozen=True)
class Fault:
    vector: int  # x86 exception vector / RISC-V mcause
    address: int  # faulting data address (CR2 / mtval), 0 when none
    ip: int  # address of the faulting instruction


@dataclass(frozen=True)
class Observation:
    """One run of one probe: from the guest, the fake guest, or the vetter."""

    outcome: Outcome
    status: int = 0  # rax / a0 at return
    fault: Fault | None = None
    output: bytes = b""
    cycles: int | None = None
    instret: int | None = None
    length: int | None = None  # the first instruction's, when measured (not by emulators)

    def comparable(self) -> bytes:
        """The part that must agree between emulator and hardware (no timings)."""
        vector = self.fault.vector if self.fault else 0xFFFF
        return _COMPARABLE.pack(self.outcome, vector, self.status & (2**64 - 1)) + self.output


_COMPARABLE = struct.Struct("<BHQ")
