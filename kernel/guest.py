"""A built guest for one architecture: what QEMU is handed and how to name its addresses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kernel import build_cache

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
    """Assemble the guest for `arch` into build/<arch>/ (reproducibly), or reuse the
    build already there when none of its inputs changed (kernel/build_cache.py)."""
    out = out_dir or BUILD_ROOT / arch
    key = build_cache.inputs_key(arch)
    record = build_cache.load(out, key) or _build(arch, out, key)
    image, kernel = (out / name if name else None for name in (record.image, record.kernel))
    return Guest(arch, image, kernel, out / record.elf, record.program.symbolize)


def _build(arch: str, out: Path, key: str) -> build_cache.BuildRecord:
    if arch == "x86_64":
        from kernel.x86_64.build import build

        result = build(out)
        image, kernel, elf, program = result.image.name, None, result.elf.name, result.program
    elif arch == "riscv64":
        from kernel.riscv64.build import build

        riscv = build(out)
        image, kernel, elf, program = None, riscv.elf.name, riscv.elf.name, riscv.program
    else:
        raise ValueError(f"unknown architecture {arch!r}: use x86_64 or riscv64")
    outputs = build_cache.output_digests(out, sorted({n for n in (image, kernel, elf) if n}))
    record = build_cache.BuildRecord(key, program, outputs, image, kernel, elf)
    build_cache.store(out, record)
    return record
