"""Tiny RISC-V ELF kernels for testing the QEMU layer (loaded with -bios none -kernel)."""

from __future__ import annotations

from pathlib import Path

from contract.riscv64 import virt as hw
from contract.riscv64.memory_map import KERNEL_BASE
from toolchain.program import Section
from toolchain.riscvasm import assemble_elf

# sifive_test: a store of 0x7777 asks for a machine reset (QEMU hw/misc/sifive_test.c);
# with -no-reboot QEMU stops with SHUTDOWN reason guest-reset.
SIFIVE_TEST_RESET = 0x7777

PROGRAMS = {
    "park": "_start:\n1:  wfi\n    j 1b\n",
    "reset": (
        "_start:\n    li t0, TEST_BASE\n    li t1, SIFIVE_TEST_RESET\n    sw t1, 0(t0)\n"
        "1:  j 1b\n"
    ),
}


def write_elf(directory: Path, program: str) -> Path:
    source = directory / f"{program}.s"
    source.write_text(PROGRAMS[program])
    elf = directory / f"{program}.elf"
    constants = {**hw.asm_constants(), "SIFIVE_TEST_RESET": SIFIVE_TEST_RESET}
    section = Section(program, KERNEL_BASE, (source,))
    assemble_elf([section], constants, elf, entry="_start")
    return elf
