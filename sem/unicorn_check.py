"""Run lowered machine code in Unicorn and compare it with the interpreter.

One emulator per (routine, architecture) is set up once and reused for every
vector: the code is called by the platform's calling convention (System V
x86-64 / RISC-V LP64) with a return address at which emulation stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import unicorn as uc

from arch import Arch
from sem import interp
from sem.interp import Memory
from sem.ir import Routine
from sem.vectors import DATA_ADDRESS, Vector, generate

CODE_ADDRESS = 0x10000
CODE_SIZE = 0x10000
STACK_BASE, STACK_SIZE = 0x70000, 0x10000
RETURN_ADDRESS = 0x1000  # emulation stops on arriving here: the routine returned


class RoutineEmulator:
    """A routine's machine code loaded once into Unicorn, called by the platform's calling
    convention (arch.calling) as often as asked."""

    def __init__(self, arch: Arch, code: bytes):
        self.arch = arch
        self.emu = arch.unicorn()
        calling = arch.calling
        self.argument_regs = [arch.unicorn_register(name) for name in calling.arguments]
        self.result_reg = arch.unicorn_register(calling.result)
        self.stack_reg = arch.unicorn_register(calling.stack_pointer)
        self.return_reg = (None if calling.return_address is None
                           else arch.unicorn_register(calling.return_address))
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
        # fewer arguments than the convention has registers (regalloc refuses more): the rest unused
        for reg, value in zip(self.argument_regs, args, strict=False):
            e.reg_write(reg, value)
        if memory is not None:
            e.mem_write(memory.base, memory.data)
        top = STACK_BASE + STACK_SIZE - 64
        if self.return_reg is None:  # the call pushed the return address
            e.mem_write(top, RETURN_ADDRESS.to_bytes(8, "little"))
        else:
            e.reg_write(self.return_reg, RETURN_ADDRESS)
        e.reg_write(self.stack_reg, top)
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
    arch: Arch
    vectors: int
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def how(self) -> str:
        return f"unicorn {self.arch}: agrees with the interpreter on {self.vectors} vectors"


def check(r: Routine, arch: Arch, code: bytes, vectors: list[Vector] | None = None,
          count: int = 1000) -> CheckReport:
    vectors = vectors if vectors is not None else generate(r, count)
    emulator = RoutineEmulator(arch, code)
    mask = None if r.result is None else (1 << r.result.width) - 1
    report = CheckReport(arch, len(vectors))
    for v in vectors:
        if not interp.admits(r, v.args):
            continue  # outside the routine's domain every answer is right
        want = interp.run(r, v.args, v.memory)
        result, data = emulator.call(v.args, v.memory)
        got = (None if mask is None else result & mask, data)
        expected = (want.result, None if want.memory is None else want.memory.data)
        if got != expected:
            report.mismatches.append(Mismatch(v, expected, got))
    return report
