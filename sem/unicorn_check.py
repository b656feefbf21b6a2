"""Run lowered machine code in Unicorn and compare it with the interpreter.

One emulator per (routine, architecture) is set up once and reused for every
vector: the code is called by the platform's calling convention (System V
x86-64 / RISC-V LP64) with a return address at which emulation stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import unicorn as uc
from unicorn import riscv_const as rv
from unicorn import x86_const as x86

from sem import interp
from sem.interp import Memory
from sem.ir import Routine
from sem.vectors import DATA_ADDRESS, DATA_SIZE, Vector, generate

CODE_ADDRESS = 0x10000
CODE_SIZE = 0x10000
STACK_BASE, STACK_SIZE = 0x70000, 0x10000
RETURN_ADDRESS = 0x1000  # emulation stops on arriving here: the routine returned

ARGS = {
    "x86_64": [x86.UC_X86_REG_RDI, x86.UC_X86_REG_RSI, x86.UC_X86_REG_RDX,
               x86.UC_X86_REG_RCX, x86.UC_X86_REG_R8, x86.UC_X86_REG_R9],
    "riscv64": [getattr(rv, f"UC_RISCV_REG_A{i}") for i in range(8)],
}


class Machine:
    """A routine's machine code loaded once into an emulator, callable many times."""

    def __init__(self, arch: str, code: bytes):
        self.arch = arch
        if arch == "x86_64":
            self.emu = uc.Uc(uc.UC_ARCH_X86, uc.UC_MODE_64)
            self.result_reg = x86.UC_X86_REG_RAX
        elif arch == "riscv64":
            self.emu = uc.Uc(uc.UC_ARCH_RISCV, uc.UC_MODE_RISCV64)
            self.result_reg = rv.UC_RISCV_REG_A0
        else:
            raise ValueError(f"unknown architecture {arch!r}")
        if len(code) > CODE_SIZE:
            raise ValueError(f"{len(code)} bytes of code do not fit the {CODE_SIZE}-byte window")
        self.emu.mem_map(CODE_ADDRESS, CODE_SIZE, uc.UC_PROT_READ | uc.UC_PROT_EXEC)
        self.emu.mem_write(CODE_ADDRESS, code)
        self.emu.mem_map(STACK_BASE, STACK_SIZE)
        # mapped although never executed: Unicorn's RISC-V fetches before it checks the stop address
        self.emu.mem_map(RETURN_ADDRESS, 0x1000, uc.UC_PROT_READ | uc.UC_PROT_EXEC)
        self.emu.mem_map(DATA_ADDRESS & ~0xFFF, 0x1000)

    def call(self, args: tuple[int, ...], memory: Memory | None) -> tuple[int, bytes | None]:
        e = self.emu
        for reg, value in zip(ARGS[self.arch], args):
            e.reg_write(reg, value)
        if memory is not None:
            e.mem_write(memory.base, memory.data)
        top = STACK_BASE + STACK_SIZE - 64
        if self.arch == "x86_64":
            e.mem_write(top, RETURN_ADDRESS.to_bytes(8, "little"))
            e.reg_write(x86.UC_X86_REG_RSP, top)
        else:
            e.reg_write(rv.UC_RISCV_REG_SP, top)
            e.reg_write(rv.UC_RISCV_REG_RA, RETURN_ADDRESS)
        e.emu_start(CODE_ADDRESS, RETURN_ADDRESS)
        data = bytes(e.mem_read(memory.base, len(memory.data))) if memory is not None else None
        return e.reg_read(self.result_reg), data


@dataclass
class Mismatch:
    vector: Vector
    expected: tuple[int | None, bytes | None]
    got: tuple[int | None, bytes | None]


@dataclass
class CheckReport:
    arch: str
    vectors: int
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def how(self) -> str:
        return f"unicorn {self.arch}: agrees with the interpreter on {self.vectors} vectors"


def check(r: Routine, arch: str, code: bytes, vectors: list[Vector] | None = None,
          count: int = 1000) -> CheckReport:
    vectors = vectors if vectors is not None else generate(r, count)
    machine = Machine(arch, code)
    mask = None if r.result is None else (1 << r.result.width) - 1
    report = CheckReport(arch, len(vectors))
    for v in vectors:
        want = interp.run(r, v.args, v.memory)
        result, data = machine.call(v.args, v.memory)
        got = (None if mask is None else result & mask, data)
        expected = (want.result, None if want.memory is None else want.memory.data)
        if got != expected:
            report.mismatches.append(Mismatch(v, expected, got))
    return report
