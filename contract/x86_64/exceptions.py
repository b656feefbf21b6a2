"""The x86-64 exception vectors, one table for the kernel and the host.

Intel SDM vol. 3A table 6-1 ("Protected-Mode Exceptions and Interrupts") and
AMD APM vol. 2 table 8-1 (#VC, #SX).  The kernel gets `<NAME>_VECTOR` for each
(e.g. PAGE_FAULT_VECTOR) and a bitmap of those that push an error code; the
host (arch/x86_64.py) names the faults probes report with the mnemonics.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vector:
    number: int
    mnemonic: str
    name: str
    error_code: bool = False  # the CPU pushes an error code

    @property
    def asm_name(self) -> str:
        return self.name.upper().replace(" ", "_").replace("-", "_") + "_VECTOR"


EXCEPTIONS: tuple[Vector, ...] = (
    Vector(0, "#DE", "divide error"),
    Vector(1, "#DB", "debug"),  # single-step (RFLAGS.TF) lands here
    Vector(2, "NMI", "nmi"),
    Vector(3, "#BP", "breakpoint"),
    Vector(4, "#OF", "overflow"),
    Vector(5, "#BR", "bound range"),
    Vector(6, "#UD", "invalid opcode"),
    Vector(7, "#NM", "device not available"),
    Vector(8, "#DF", "double fault", error_code=True),
    Vector(10, "#TS", "invalid tss", error_code=True),
    Vector(11, "#NP", "segment not present", error_code=True),
    Vector(12, "#SS", "stack fault", error_code=True),
    Vector(13, "#GP", "general protection", error_code=True),
    Vector(14, "#PF", "page fault", error_code=True),  # CR2 holds the address
    Vector(16, "#MF", "x87 floating point"),
    Vector(17, "#AC", "alignment check", error_code=True),
    Vector(18, "#MC", "machine check"),
    Vector(19, "#XM", "simd floating point"),
    Vector(20, "#VE", "virtualization"),
    Vector(21, "#CP", "control protection", error_code=True),
    Vector(29, "#VC", "vmm communication", error_code=True),
    Vector(30, "#SX", "security", error_code=True),
)
BY_MNEMONIC = {v.mnemonic: v for v in EXCEPTIONS}
EXCEPTION_VECTORS = 32  # vectors 0-31 are the CPU's; interrupts start above them


def asm_constants() -> dict[str, int]:
    consts = {v.asm_name: v.number for v in EXCEPTIONS}
    consts["EXCEPTION_VECTORS"] = EXCEPTION_VECTORS
    consts["EXCEPTIONS_WITH_ERROR_CODE"] = sum(1 << v.number for v in EXCEPTIONS if v.error_code)
    return consts
