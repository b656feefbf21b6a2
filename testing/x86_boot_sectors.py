"""Tiny x86 boot sectors for testing the QEMU layer: each does one thing the host
must recognise (exit at once, halt, triple fault), after one byte on COM1 that
tells the host the firmware is done and the guest runs."""

from __future__ import annotations

from pathlib import Path

from contract.x86_64.exits import DEBUG_EXIT_FAIL, DEBUG_EXIT_PASS, DEBUG_EXIT_PORT
from contract.x86_64.memory_map import BOOT_SECTOR_BASE
from contract.x86_64.serial import COM1
from toolchain.image import disk_image
from toolchain.x86asm import assemble_snippet

BOOT_SIGNATURE = b"\x55\xaa"  # the BIOS boots a sector only if it ends with this
SIGNATURE_OFFSET = 510

SAY = "mov dx, COM1\nmov al, MARK\nout dx, al\n"  # one byte on COM1, no UART setup needed in QEMU
EXIT = "mov dx, DEBUG_EXIT_PORT\nmov al, EXIT_VALUE\nout dx, al\n"
HALT = "park:\ncli\nhlt\njmp park\n"
# lidt of a zero-limit IDT makes every exception unservable: int3 -> #GP -> #DF -> reset.
TRIPLE_FAULT = "lidt [empty_idt]\nint3\n" + HALT + "empty_idt:\n.word 0\n.long 0\n"

PROGRAMS = {
    "exit_pass": SAY + EXIT + HALT,
    "exit_fail": SAY + EXIT + HALT,
    "halt": SAY + HALT,
    "silent": HALT,
    "triple_fault": SAY + TRIPLE_FAULT,
}
EXIT_VALUES = {"exit_fail": DEBUG_EXIT_FAIL}
MARK = ord("M")


def boot_sector(program: str) -> bytes:
    code = assemble_snippet(
        PROGRAMS[program],
        bits=16,
        address=BOOT_SECTOR_BASE,
        constants={
            "COM1": COM1,
            "MARK": MARK,
            "DEBUG_EXIT_PORT": DEBUG_EXIT_PORT,
            "EXIT_VALUE": EXIT_VALUES.get(program, DEBUG_EXIT_PASS),
        },
    )
    assert len(code) <= SIGNATURE_OFFSET, f"{program} does not fit a boot sector"
    return code.ljust(SIGNATURE_OFFSET, b"\0") + BOOT_SIGNATURE


def write_image(directory: Path, program: str) -> Path:
    """A bootable disk image (padded so SeaBIOS on q35 accepts it) running `program`."""
    path = directory / f"{program}.img"
    path.write_bytes(disk_image([boot_sector(program)]))
    return path
