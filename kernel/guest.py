"""A built guest for one architecture: what QEMU is handed and how to name its addresses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BUILD_ROOT = Path("build")

Symbolizer = Callable[[int], str]


@dataclass(frozen=True)
class Guest:
    """A built guest: what to hand QEMU and how to name its addresses."""

    arch: str
    image: Path | None  # x86-64 disk image
    kernel: Path | None  # RISC-V ELF kernel
    elf: Path
    symbolize: Symbolizer


def build_guest(arch: str, out_dir: Path | None = None) -> Guest:
    """Assemble the guest for `arch` into build/<arch>/ (reproducibly)."""
    out = out_dir or BUILD_ROOT / arch
    if arch == "x86_64":
        from kernel.x86_64.build import build

        result = build(out)
        return Guest(arch, result.image, None, result.elf, result.program.symbolize)
    if arch == "riscv64":
        from kernel.riscv64.build import build

        result = build(out)
        return Guest(arch, None, result.elf, result.elf, result.program.symbolize)
    raise ValueError(f"unknown architecture {arch!r}: use x86_64 or riscv64")
