"""Machine code for a routine: lower, assemble (toolchain layer), decode with
capstone, and vet in Unicorn against the interpreter before anyone uses it."""

from __future__ import annotations

from dataclasses import dataclass

from arch import Arch
from sem.ir import Routine
from sem.lower import lower_for
from sem.unicorn_check import check
from sem.views.asm import disassemble


class ImplementationRejected(RuntimeError):
    """The machine code disagrees with the reference semantics (a lowering bug)."""


@dataclass(frozen=True)
class Vetted:
    arch: Arch
    code: bytes
    assembly: str  # the lowering's source text
    established: str


def implement(r: Routine, arch: Arch, vectors: int = 1000) -> Vetted:
    lowered = lower_for(arch)(r)
    code = arch.assemble(lowered.text)
    disassemble(arch, code)  # every byte must decode
    report = check(r, arch, code, count=vectors)
    if not report.ok:
        bad = report.mismatches[0]
        raise ImplementationRejected(
            f"{arch} code disagrees with the interpreter on {len(report.mismatches)} of "
            f"{report.vectors} vectors, e.g. inputs {bad.vector.args}: expected {bad.expected}, "
            f"got {bad.got}; this is a lowering bug, please report the routine")
    return Vetted(arch, code, lowered.text, report.how())
