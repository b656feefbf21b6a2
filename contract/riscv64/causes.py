"""RISC-V trap causes (mcause), one table for the kernel and the host.

RISC-V Privileged Architecture, table "Machine cause register (mcause) values
after trap".  The kernel gets `MCAUSE_<NAME>` for each and the mcause register's
layout (MCAUSE_INTERRUPT, MCAUSE_CODE); the host (arch/riscv64.py) names the
faults probes report.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.constants import ConstantSet, collect
from contract.layout import Bits, Register


@dataclass(frozen=True)
class Cause:
    code: int
    asm_name: str
    name: str


MCAUSE = Register("MCAUSE", (
    Bits("CODE", 0, 63, "exception or interrupt code"),
    Bits("INTERRUPT", 63, meaning="set: an interrupt, clear: an exception"),
))

EXCEPTIONS: tuple[Cause, ...] = (
    Cause(0, "INSTRUCTION_MISALIGNED", "instruction address misaligned"),
    Cause(1, "INSTRUCTION_ACCESS_FAULT", "instruction access fault"),
    Cause(2, "ILLEGAL_INSTRUCTION", "illegal instruction"),
    Cause(3, "BREAKPOINT", "breakpoint"),  # ebreak, and the debug triggers (mcontrol)
    Cause(4, "LOAD_MISALIGNED", "load address misaligned"),
    Cause(5, "LOAD_ACCESS_FAULT", "load access fault"),
    Cause(6, "STORE_MISALIGNED", "store address misaligned"),
    Cause(7, "STORE_ACCESS_FAULT", "store access fault"),
    Cause(8, "ECALL_U", "ecall from U-mode"),
    Cause(9, "ECALL_S", "ecall from S-mode"),
    Cause(11, "ECALL_M", "ecall from M-mode"),
    Cause(12, "INSTRUCTION_PAGE_FAULT", "instruction page fault"),
    Cause(13, "LOAD_PAGE_FAULT", "load page fault"),
    Cause(15, "STORE_PAGE_FAULT", "store page fault"),
)
INTERRUPTS: tuple[Cause, ...] = (
    Cause(3, "MACHINE_SOFTWARE", "machine software interrupt"),
    Cause(7, "MACHINE_TIMER", "machine timer interrupt"),
    Cause(11, "MACHINE_EXTERNAL", "machine external interrupt"),
)
BY_NAME = {c.asm_name: c for c in EXCEPTIONS}


def asm_constants() -> ConstantSet:
    return collect(__name__, MCAUSE, {f"MCAUSE_{c.asm_name}": c.code for c in EXCEPTIONS},
                   {f"MCAUSE_{c.asm_name}": c.code for c in INTERRUPTS})
