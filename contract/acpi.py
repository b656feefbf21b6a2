"""ACPI structures both sides read, declared once (ACPI 6.5 ch. 5.2: 5.2.5 RSDP,
5.2.6 the system description table header, 5.2.7/5.2.8 RSDT and XSDT, 5.2.9
FADT, 5.2.10 FACS).  The x86-64 kernel walks them to send every table
(contract/x86_64/acpi.py says where the firmware puts the RSDP); the host
decodes them (discovery/acpi.py)."""

from __future__ import annotations

from contract.constants import ConstantSet, collect
from contract.layout import Record

RSDP = Record("RSDP", (
    ("signature", "8s"), ("checksum", "B"), ("oem_id", "6s"), ("revision", "B"),
    ("rsdt", "I"),
    # ACPI 2.0 and later (revision >= RSDP_REVISION_XSDT):
    ("length", "I"), ("xsdt", "Q"), ("extended_checksum", "B"), ("_reserved", "3x"),
))
RSDP_SIGNATURE = b"RSD PTR "
RSDP_V1_SIZE = RSDP.offsets["length"]  # the ACPI 1.0 RSDP; its checksum covers these bytes
RSDP_REVISION_XSDT = 2  # from this revision on the RSDP has `length` and `xsdt`
# Every table but the FACS starts with this header.
HEADER = Record("ACPI_HEADER", (
    ("signature", "4s"), ("length", "I"), ("revision", "B"), ("checksum", "B"),
    ("oem_id", "6s"), ("oem_table_id", "8s"), ("oem_revision", "I"), ("creator_id", "4s"),
    ("creator_revision", "I"),
))
# The root tables list other tables' addresses after their header.
RSDT_ENTRY_SIZE, XSDT_ENTRY_SIZE = 4, 8
FACS = Record("FACS", (
    ("signature", "4s"), ("length", "I"), ("hardware_signature", "I"),
    ("firmware_waking_vector", "I"), ("global_lock", "I"), ("flags", "I"),
    ("x_firmware_waking_vector", "Q"), ("version", "B"), ("_reserved", "3x"),
    ("ospm_flags", "I"), ("_reserved2", "24x"),
))
# The FADT as far as we read it: where the FACS and the DSDT are.
FADT = Record("FADT", (
    ("_header", f"{HEADER.size}x"), ("firmware_ctrl", "I"), ("dsdt", "I"), ("_fields", "88x"),
    ("x_firmware_ctrl", "Q"), ("x_dsdt", "Q"),
))
FADT_SIGNATURE = b"FACP"


def _le(signature: bytes) -> int:
    return int.from_bytes(signature, "little")


def asm_constants() -> ConstantSet:
    return collect(__name__, RSDP, HEADER, FACS, FADT, {
        "RSDP_SIGNATURE_QWORD": _le(RSDP_SIGNATURE),
        "RSDP_V1_SIZE": RSDP_V1_SIZE,
        "RSDP_REVISION_XSDT": RSDP_REVISION_XSDT,
        "RSDT_ENTRY_SIZE": RSDT_ENTRY_SIZE,
        "XSDT_ENTRY_SIZE": XSDT_ENTRY_SIZE,
        "FADT_SIGNATURE_DWORD": _le(FADT_SIGNATURE),
        # FADT fields past the 1.0 layout exist only when the table is this long.
        "FADT_X_DSDT_END": FADT.offsets["x_dsdt"] + 8,
        "FADT_X_FIRMWARE_CTRL_END": FADT.offsets["x_firmware_ctrl"] + 8,
    })
