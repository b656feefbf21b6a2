"""A built guest for one architecture: what QEMU is handed and how to name its addresses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from arch import RISCV64, X86_64, Arch
from kernel import build_cache
from kernel.build_cache import BuiltFiles

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


def _x86_64(out: Path) -> BuiltFiles:
    from kernel.x86_64.build import build

    result = build(out)
    return BuiltFiles(result.image, None, result.elf, result.program)


def _riscv64(out: Path) -> BuiltFiles:
    from kernel.riscv64.build import build

    result = build(out)
    return BuiltFiles(None, result.elf, result.elf, result.program)


BUILDERS: dict[Arch, Callable[[Path], BuiltFiles]] = {X86_64: _x86_64, RISCV64: _riscv64}


def build_guest(arch: Arch, out_dir: Path | None = None) -> Guest:
    """Assemble the guest for `arch` into build/<arch>/ (reproducibly); the last build
    there is reused while none of its inputs changed (kernel/build_cache.py)."""
    out = out_dir or BUILD_ROOT / arch.name
    key = build_cache.inputs_digest(arch.name)
    built = build_cache.load(out, key)
    if built is None:
        built = BUILDERS[arch](out)
        build_cache.store(out, key, built)
    return Guest(arch, built.image, built.kernel, built.elf, built.program.symbolize)


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
