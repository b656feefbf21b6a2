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
from contract.protocol import PROBE_RUN_FLAG_MEASURE_LENGTH

IDENTITY_SCHEME = 2  # how content_hash is computed; the capability store keeps it beside each hash
# Scheme 1 (capability stores of version 1) hashed arch, class, code and input only, so
# runs with different budgets or output sizes shared one identity.


@dataclass(frozen=True)
class Probe:
    """One experiment: code and input, the class it runs in, and every option of its run.

    Its identity (`content_hash`, and equality) covers everything that can change what a
    run returns: arch, privilege, code, input, budget, output size and the run flags.
    `family` and `meta` are bookkeeping (which generator made it, and what for): two
    families generating the same experiment generate one probe."""

    arch: Arch
    code: bytes
    privilege: Privilege = Privilege.USER
    input: bytes = b""
    family: str = field(default="adhoc", compare=False)
    budget: int = DEFAULT_BUDGET
    output_size: int = DEFAULT_OUTPUT_SIZE  # how much of the output buffer to report
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    # Ask the guest for the length of the first instruction as the machine decoded it
    # (PROBE_RUN_FLAG_MEASURE_LENGTH): the result then carries it, so it is identity.
    measure_length: bool = False

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

    @property
    def run_flags(self) -> int:
        """The PROBE_RUN flags word of every run of this probe."""
        return PROBE_RUN_FLAG_MEASURE_LENGTH if self.measure_length else 0

    @cached_property  # a campaign asks for it several times per probe
    def content_hash(self) -> bytes:
        """BLAKE2b-256 of everything that changes what a run returns (identity scheme 2):
        arch, class, code, input, budget, output size, run flags."""
        # The personalisation keeps scheme-2 hashes apart from scheme-1 ones, which
        # hashed the same length-prefixed parts without the last three.
        h = hashlib.blake2b(digest_size=32, person=b"MetaOS probe 2")
        numbers = struct.pack("<III", self.budget, self.output_size, self.run_flags)
        for part in (self.arch.name.encode(), bytes([int(self.privilege)]), self.code,
                     self.input, numbers):
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
