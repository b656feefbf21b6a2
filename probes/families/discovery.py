"""Instruction discovery: candidate records, probes from them, and findings.

A finding is any disagreement between what the hardware (or the emulator)
did with a candidate and what capstone — or the CPU's own feature claims —
say about it: capstone decodes it but it raises #UD; capstone cannot decode it
but it executes; the lengths differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from capstone import (CS_GRP_BRANCH_RELATIVE, CS_GRP_CALL, CS_GRP_INT, CS_GRP_IRET, CS_GRP_JUMP, CS_GRP_RET,
                      CsInsn)

from contract.probe_abi import Outcome
from probes.emulator import UD
from probes.probe import Observation, Probe


# Capstone's groups for instructions that may move the pc anywhere but past
# themselves: the length the guest measures (where the pc is after one
# instruction) is then their target, not their end.
CONTROL_TRANSFER_GROUPS = (CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_INT, CS_GRP_IRET, CS_GRP_BRANCH_RELATIVE)


@dataclass(frozen=True)
class Candidate:
    encoding: bytes
    space: str
    capstone_length: int | None  # None: capstone cannot decode it
    capstone_text: str | None
    transfers_control: bool = False  # capstone puts it in a CONTROL_TRANSFER_GROUPS group

    @classmethod
    def decoded(cls, encoding: bytes, space: str, insn: CsInsn) -> Candidate:
        """The candidate capstone decoded as `insn` (the first insn.size bytes of `encoding`)."""
        return cls(encoding[: insn.size], space, insn.size, f"{insn.mnemonic} {insn.op_str}".strip(),
                   any(insn.group(g) for g in CONTROL_TRANSFER_GROUPS))


class Behaviour(str, Enum):
    EXECUTES = "executes"
    UNDEFINED = "undefined"  # #UD / illegal instruction
    OTHER_FAULT = "other_fault"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Finding:
    candidate: Candidate
    behaviour: Behaviour
    measured_length: int | None
    disagreement: str | None  # None: capstone and the machine agree


def probes_for(arch: str, candidates: Iterable[Candidate], budget: int = 64) -> Iterator[Probe]:
    from probes.families import isa_riscv, isa_x86

    wrap = isa_x86.wrap if arch == "x86_64" else isa_riscv.wrap
    for c in candidates:
        yield Probe(arch, wrap(c), family="isa", budget=budget, output_size=0, meta={"candidate": c},
                    measure_length=True)


def behaviour(arch: str, obs: Observation) -> Behaviour:
    if obs.outcome == Outcome.TIMEOUT:
        return Behaviour.TIMEOUT
    if obs.outcome == Outcome.FAULT and obs.fault is not None:
        return Behaviour.UNDEFINED if obs.fault.vector == UD[arch] else Behaviour.OTHER_FAULT
    return Behaviour.EXECUTES


def finding(arch: str, candidate: Candidate, obs: Observation, measured_length: int | None = None,
            claimed_supported: bool | None = None) -> Finding:
    """Cross-check one candidate's result with capstone (and, if given, with what
    CPUID / misa claim about the extension it belongs to)."""
    how = behaviour(arch, obs)
    known = candidate.capstone_length is not None
    problems = []
    deliberately_undefined = (candidate.capstone_text or "").startswith(("ud0", "ud1", "ud2", "unimp", "c.unimp"))
    expected_undefined = deliberately_undefined or claimed_supported is False  # the CPU said so
    if how == Behaviour.UNDEFINED and known and not expected_undefined:
        problems.append(f"capstone decodes '{candidate.capstone_text}' but the machine raises #UD")
    if how == Behaviour.EXECUTES and not known:
        problems.append("executes, but capstone cannot decode it")
    if measured_length is not None and known and measured_length != candidate.capstone_length \
            and not candidate.transfers_control:
        problems.append(f"length {measured_length}, capstone says {candidate.capstone_length}")
    if claimed_supported is True and how == Behaviour.UNDEFINED:
        problems.append("the CPU claims the extension but rejects the instruction")
    if claimed_supported is False and how == Behaviour.EXECUTES:
        problems.append("executes although the CPU does not claim the extension")
    return Finding(candidate, how, measured_length, "; ".join(problems) or None)
