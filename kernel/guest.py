"""A built guest for one architecture: what QEMU is handed and how to name its addresses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from arch import RISCV64, X86_64, Arch
from kernel import build_cache
from toolchain.program import Program

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


@dataclass(frozen=True)
class Built:
    """What one arch's build wrote and assembled."""

    image: Path | None
    kernel: Path | None
    elf: Path
    program: Program


def _x86_64(out: Path) -> Built:
    from kernel.x86_64.build import build

    result = build(out)
    return Built(result.image, None, result.elf, result.program)


def _riscv64(out: Path) -> Built:
    from kernel.riscv64.build import build

    result = build(out)
    return Built(None, result.elf, result.elf, result.program)


BUILDERS: dict[Arch, Callable[[Path], Built]] = {X86_64: _x86_64, RISCV64: _riscv64}


def build_guest(arch: Arch, out_dir: Path | None = None) -> Guest:
    """Assemble the guest for `arch` into build/<arch>/ (reproducibly), or reuse the
    build already there when none of its inputs changed (kernel/build_cache.py)."""
    out = out_dir or BUILD_ROOT / arch.name
    key = build_cache.inputs_key(arch)
    record = build_cache.load(out, key)
    if record is None:
        built = BUILDERS[arch](out)
        record = build_cache.BuildRecord.of(out, key, built.program, image=built.image,
                                            kernel=built.kernel, elf=built.elf)
        build_cache.store(out, record)
    image, kernel = (out / name if name else None for name in (record.image, record.kernel))
    return Guest(arch, image, kernel, out / record.elf, record.program.symbolize)


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
