"""Build the x86-64 disk image: boot sector + stage 2 + kernel.

    build(Path("build/x86_64"))   -> metaos.img, kernel.elf (and generated/*.s)
    build_floor(Path("build/x86_64")) -> floor.img (benchmark floor)

The image expects a QEMU board with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`
(port from host.protocol), the serial line on COM1, `-nic none` and `-no-reboot`.
With `-fw_cfg name=opt/metaos/stay,string=1` (host.protocol.STAY_FW_CFG_FILE) the
kernel serves probe commands after FINAL instead of exiting; adding
`-fw_cfg name=opt/metaos/privileged,string=1` (probe_env.PRIVILEGED_FW_CFG_FILE)
lets it accept privileged (ring 0) probes.

Disk layout (512-byte sectors):  LBA 0 boot sector; LBA 1.. stage 2, padded to
STAGE2_MAX_SIZE; then the kernel.  The boot sector reads LBA 1 onwards in one
run to STAGE2_BASE, so the kernel lands at KERNEL_BASE, where it was assembled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contract.x86_64 import bios
from contract.x86_64 import memory_map as layout
from contract import protocol
from contract import virtio
from contract import x86_64 as hw
from kernel.x86_64 import (asmdata, cpuid_rules, crc32_table, gdt_source, probe_env, virtio_console,
                          wire)
from contract import probe_abi as abi
from toolchain.elf import write_elf
from toolchain.image import disk_image, sectors
from toolchain.program import Program, Section
from toolchain.x86asm import assemble

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOT_SOURCES = ("bootsector.s", "bootfail.s", "signature.s")
STAGE2_SOURCES = ("stage2.s", "cpucheck.s", "e820.s", "a20.s", "protected.s",
                  "pagetables.s", "longmode.s")
KERNEL_SOURCES = ("entry.s", "main.s", "fault.s", "uart16550.s", "frame.s", "crc32.s",
                  "cobs.s", "session.s", "memory.s", "cpuid.s", "pci.s", "acpi.s", "fwcfg.s",
                  "exit.s", "probe_env.s", "probe_run.s", "probe_trap.s", "probe_command.s",
                  "virtio_console.s")
# Generated data sources: file name -> (section, renderer).
GENERATED = {
    "gdt.s": ("stage2", gdt_source.source),
    "crc32_table.s": ("kernel", crc32_table.source),
    "cpuid_rules.s": ("kernel", cpuid_rules.source),
    "strings.s": ("kernel", lambda: asmdata.string_source(
        "contract/protocol.py", "fwcfg_stay_name", protocol.STAY_FW_CFG_FILE)
        + asmdata.string_source("kernel/x86_64/probe_env.py", "fwcfg_privileged_name",
                                probe_env.PRIVILEGED_FW_CFG_FILE)),
    "probe_pages.s": ("kernel", probe_env.source),
}


@dataclass(frozen=True)
class BuildResult:
    image: Path  # bootable raw disk image
    elf: Path  # the same code as ELF64 with every label, for debuggers and symbolizing
    program: Program


class ImageLayoutError(Exception):
    """A stage outgrew the room the memory map (contract/x86_64/memory_map.py) gives it."""


def constants(load_sectors: int) -> dict[str, int]:
    """Every constant the x86-64 sources assemble against, each defined once."""
    merged: dict[str, int] = {}
    sources = (protocol.asm_constants(), layout.asm_constants(), bios.asm_constants(),
               hw.asm_constants(), wire.asm_constants(), cpuid_rules.asm_constants(),
               abi.X86_64_PROBES.asm_constants(), probe_env.asm_constants(), virtio.asm_constants(),
               virtio_console.asm_constants(),
               {"LOAD_SECTORS": load_sectors})
    for group in sources:
        for name, value in group.items():
            if merged.get(name, value) != value:
                raise ValueError(f"constant {name} defined twice ({merged[name]:#x}, {value:#x})")
            merged[name] = value
    return merged


def write_generated(out_dir: Path) -> dict[str, list[Path]]:
    """Write the generated sources; returns section -> generated paths."""
    generated_dir = out_dir / "generated"
    generated_dir.mkdir(parents=True, exist_ok=True)
    by_section: dict[str, list[Path]] = {}
    for name, (section, render) in GENERATED.items():
        path = generated_dir / name
        path.write_text(render())
        by_section.setdefault(section, []).append(path)
    return by_section


def sections(root: Path, generated: Mapping[str, list[Path]]) -> list[Section]:
    boot_dir, kernel_dir = root / "boot" / "x86_64", root / "kernel" / "x86_64"
    return [
        Section("boot", layout.BOOT_SECTOR_BASE, tuple(boot_dir / s for s in BOOT_SOURCES), 16),
        Section("stage2", layout.STAGE2_BASE,
                tuple(boot_dir / s for s in STAGE2_SOURCES) + tuple(generated["stage2"]), 16),
        Section("kernel", layout.KERNEL_BASE,
                tuple(kernel_dir / s for s in KERNEL_SOURCES) + tuple(generated["kernel"]), 64),
    ]


def _check_sizes(program: Program) -> None:
    boot, stage2, kernel = (program.sections[n] for n in ("boot", "stage2", "kernel"))
    if len(boot) != layout.SECTOR_SIZE:
        raise ImageLayoutError(f"boot sector is {len(boot)} bytes, must be {layout.SECTOR_SIZE}")
    if len(stage2) > layout.STAGE2_MAX_SIZE:
        raise ImageLayoutError(
            f"stage 2 is {len(stage2)} bytes, over STAGE2_MAX_SIZE={layout.STAGE2_MAX_SIZE}: "
            "raise it in contract/x86_64/memory_map.py")
    if layout.KERNEL_BASE + len(kernel) > layout.KERNEL_LIMIT:
        raise ImageLayoutError(
            f"kernel is {len(kernel)} bytes, past KERNEL_LIMIT={layout.KERNEL_LIMIT:#x}: "
            "move the regions above it in contract/x86_64/memory_map.py")


def build(out_dir: Path = Path("build/x86_64"), root: Path = REPO_ROOT) -> BuildResult:
    """Assemble boot sector, stage 2 and kernel (sources under `root`) into
    out_dir/metaos.img and out_dir/kernel.elf.  Raises AssemblyError (file:line)
    on a bad source, ImageLayoutError when a stage outgrows the memory map."""
    out_dir.mkdir(parents=True, exist_ok=True)
    units = sections(root, write_generated(out_dir))
    # The sector count the boot sector loads depends on the kernel's size, which
    # does not depend on the boot sector: assemble once to measure, once for real.
    measured = assemble(units, constants(load_sectors=1))
    load_sectors = sectors(layout.STAGE2_MAX_SIZE + len(measured.sections["kernel"]))
    program = assemble(units, constants(load_sectors))
    _check_sizes(program)
    stage2 = program.sections["stage2"].ljust(layout.STAGE2_MAX_SIZE, b"\0")
    image_path, elf_path = out_dir / "metaos.img", out_dir / "kernel.elf"
    parts = [program.sections["boot"], stage2, program.sections["kernel"]]
    image_path.write_bytes(disk_image(parts))
    write_elf(program, elf_path, entry=program.symbols["kernel_entry"].address)
    return BuildResult(image=image_path, elf=elf_path, program=program)


def build_floor(out_dir: Path = Path("build/x86_64"), root: Path = REPO_ROOT) -> Path:
    """out_dir/floor.img: a boot sector that exits QEMU at once (benchmark floor)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    boot_dir = root / "boot" / "x86_64"
    floor = Section("floor", layout.BOOT_SECTOR_BASE,
                    (boot_dir / "floor.s", boot_dir / "signature.s"), 16)
    program = assemble([floor], constants(load_sectors=0))
    path = out_dir / "floor.img"
    path.write_bytes(disk_image([program.sections["floor"]]))
    return path
