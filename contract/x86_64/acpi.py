"""ACPI structures the kernel walks (ACPI 6.5 ch. 5.2): where the RSDP may be,
and the offsets of the fields it follows."""

from __future__ import annotations

RSDP_SIGNATURE = b"RSD PTR "
RSDP_V1_SIZE = 20  # checksum covers these bytes
RSDP_OFFSETS = {"REVISION": 15, "RSDT": 16, "LENGTH": 20, "XSDT": 24}
EBDA_SEARCH_SIZE = 1024
BIOS_AREA_START, BIOS_AREA_END = 0xE0000, 0x100000
RSDP_ALIGN = 16

TABLE_HEADER_SIZE = 36
TABLE_LENGTH_OFFSET = 4
FADT_SIGNATURE = b"FACP"
FADT_OFFSETS = {"FIRMWARE_CTRL": 36, "DSDT": 40, "X_FIRMWARE_CTRL": 132, "X_DSDT": 140}
FACS_LENGTH_OFFSET = 4


def _le32(signature: bytes) -> int:
    return int.from_bytes(signature[:4], "little")


def asm_constants() -> dict[str, int]:
    consts = {f"RSDP_{name}": off for name, off in RSDP_OFFSETS.items()}
    consts.update({f"FADT_{name}": off for name, off in FADT_OFFSETS.items()})
    consts.update(
        RSDP_SIGNATURE_QWORD=int.from_bytes(RSDP_SIGNATURE, "little"),
        RSDP_V1_SIZE=RSDP_V1_SIZE,
        RSDP_ALIGN=RSDP_ALIGN,
        EBDA_SEARCH_SIZE=EBDA_SEARCH_SIZE,
        BIOS_AREA_START=BIOS_AREA_START,
        BIOS_AREA_END=BIOS_AREA_END,
        ACPI_TABLE_HEADER_SIZE=TABLE_HEADER_SIZE,
        ACPI_TABLE_LENGTH=TABLE_LENGTH_OFFSET,
        FADT_SIGNATURE_DWORD=_le32(FADT_SIGNATURE),
        FACS_LENGTH=FACS_LENGTH_OFFSET,
        # FADT fields past the 1.0 layout exist only when the table is this long.
        FADT_X_DSDT_END=FADT_OFFSETS["X_DSDT"] + 8,
        FADT_X_FIRMWARE_CTRL_END=FADT_OFFSETS["X_FIRMWARE_CTRL"] + 8,
    )
    return consts
