"""Where a PC's firmware leaves the ACPI RSDP (ACPI 6.5 section 5.2.5.1): on a
16-byte boundary in the first KiB of the EBDA, or in the BIOS area 0xE0000-0xFFFFF.
The structures themselves are contract/acpi.py."""

from __future__ import annotations

EBDA_SEARCH_SIZE = 1024
BIOS_AREA_START, BIOS_AREA_END = 0xE0000, 0x100000
RSDP_ALIGN = 16


def asm_constants() -> dict[str, int]:
    return {
        "RSDP_ALIGN": RSDP_ALIGN,
        "EBDA_SEARCH_SIZE": EBDA_SEARCH_SIZE,
        "BIOS_AREA_START": BIOS_AREA_START,
        "BIOS_AREA_END": BIOS_AREA_END,
    }
