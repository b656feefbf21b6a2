"""The boot GDT (declared in hw/cpu.py) rendered as stage-2 data, with the
pointer `lgdt` loads."""

from __future__ import annotations

from contract.x86_64.cpu import GDT

from .asmdata import data_source


def source() -> str:
    table = data_source(
        "contract/x86_64/cpu.py (GDT)", "gdt", 8,
        [descriptor for _, descriptor in GDT],
        comments=[f"selector {i * 8:#04x}: {name}" for i, (name, _) in enumerate(GDT)],
    )
    pointer = "gdt_pointer:\n    .word GDT_LIMIT\n    .long gdt\n"
    return ".align 8\n" + table + pointer
