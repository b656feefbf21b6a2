"""The x86-64 exception vectors, one table for the kernel and the host.

Intel SDM vol. 3A table 6-1 ("Protected-Mode Exceptions and Interrupts") and
AMD APM vol. 2 table 8-1 (#VC, #SX).  The kernel gets `<NAME>_VECTOR` for each
(e.g. PAGE_FAULT_VECTOR) and a bitmap of those that push an error code; the
host (arch/x86_64.py) names the faults probes report with the mnemonics.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExceptionVector:
    number: int
    mnemonic: str
    name: str
    error_code: bool = False  # the CPU pushes an error code

    @property
    def asm_name(self) -> str:
        return self.name.upper().replace(" ", "_").replace("-", "_") + "_VECTOR"


EXCEPTIONS: tuple[ExceptionVector, ...] = (
    ExceptionVector(0, "#DE", "divide error"),
    ExceptionVector(1, "#DB", "debug"),  # single-step (RFLAGS.TF) lands here
    ExceptionVector(2, "NMI", "nmi"),
    ExceptionVector(3, "#BP", "breakpoint"),
    ExceptionVector(4, "#OF", "overflow"),
    ExceptionVector(5, "#BR", "bound range"),
    ExceptionVector(6, "#UD", "invalid opcode"),
    ExceptionVector(7, "#NM", "device not available"),
    ExceptionVector(8, "#DF", "double fault", error_code=True),
    ExceptionVector(10, "#TS", "invalid tss", error_code=True),
    ExceptionVector(11, "#NP", "segment not present", error_code=True),
    ExceptionVector(12, "#SS", "stack fault", error_code=True),
    ExceptionVector(13, "#GP", "general protection", error_code=True),
    ExceptionVector(14, "#PF", "page fault", error_code=True),  # CR2 holds the address
    ExceptionVector(16, "#MF", "x87 floating point"),
    ExceptionVector(17, "#AC", "alignment check", error_code=True),
    ExceptionVector(18, "#MC", "machine check"),
    ExceptionVector(19, "#XM", "simd floating point"),
    ExceptionVector(20, "#VE", "virtualization"),
    ExceptionVector(21, "#CP", "control protection", error_code=True),
    ExceptionVector(29, "#VC", "vmm communication", error_code=True),
    ExceptionVector(30, "#SX", "security", error_code=True),
)
BY_MNEMONIC = {v.mnemonic: v for v in EXCEPTIONS}
EXCEPTION_VECTORS = 32  # vectors 0-31 are the CPU's; interrupts start above them


def asm_constants() -> dict[str, int]:
    consts = {v.asm_name: v.number for v in EXCEPTIONS}
    consts["EXCEPTION_VECTORS"] = EXCEPTION_VECTORS
    consts["EXCEPTIONS_WITH_ERROR_CODE"] = sum(1 << v.number for v in EXCEPTIONS if v.error_code)
    return consts
