"""Assembly of lowered routines through the project's toolchain layer (keystone
for x86-64, GNU binutils for riscv64; both re-check every instruction with capstone)."""

from __future__ import annotations

from collections.abc import Mapping

from toolchain import riscvasm, x86asm

ARCHES = ("x86_64", "riscv64")


def assemble(arch: str, text: str, address: int = 0, constants: Mapping[str, int] = {}) -> bytes:
    """The bytes of `text` for `arch` placed at `address`, `constants` substituted."""
    if arch == "x86_64":
        return x86asm.assemble_snippet(text, bits=64, address=address, constants=constants)
    if arch == "riscv64":
        return riscvasm.assemble_snippet(text, address=address, constants=constants)
    raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHES)}")
