"""A built guest for one architecture: what QEMU is handed and how to name its addresses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from arch import RISCV64, X86_64, Arch

BUILD_ROOT = Path("build")

Symbolizer = Callable[[int], str]


@dataclass(frozen=True)
class Guest:
    """A built guest: what to hand QEMU and how to name its addresses."""

    arch: Arch
    image: Path | None  # x86-64 disk image
    kernel: Path | None  # RISC-V ELF kernel
    elf: Path
    symbolize: Symbolizer


def _x86_64(out: Path) -> Guest:
    from kernel.x86_64.build import build

    result = build(out)
    return Guest(X86_64, result.image, None, result.elf, result.program.symbolize)


def _riscv64(out: Path) -> Guest:
    from kernel.riscv64.build import build

    result = build(out)
    return Guest(RISCV64, None, result.elf, result.elf, result.program.symbolize)


BUILDERS: dict[Arch, Callable[[Path], Guest]] = {X86_64: _x86_64, RISCV64: _riscv64}


def build_guest(arch: Arch, out_dir: Path | None = None) -> Guest:
    """Assemble the guest for `arch` into build/<arch>/ (reproducibly)."""
    return BUILDERS[arch](out_dir or BUILD_ROOT / arch.name)


def _x86_64_floor(out: Path) -> Path:
    from kernel.x86_64.build import build_floor

    return build_floor(out)


def _riscv64_floor(out: Path) -> Path:
    from kernel.riscv64.build import build_floor

    return build_floor(out)


FLOOR_BUILDERS: dict[Arch, Callable[[Path], Path]] = {X86_64: _x86_64_floor,
                                                      RISCV64: _riscv64_floor}


def build_floor(arch: Arch, out_dir: Path | None = None) -> Path:
    """The benchmark floor for `arch`: a guest that sends one byte and exits at once."""
    return FLOOR_BUILDERS[arch](out_dir or BUILD_ROOT / arch.name)
