"""ACPI tables as the firmware handed them over: headers, RSDP, MADT, MCFG, FADT.

Offsets follow the ACPI 6.5 specification (sections 5.2.5 RSDP, 5.2.6 header,
5.2.9 FADT, 5.2.12 MADT) and the PCI Firmware spec 3.2 (MCFG).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from contract.acpi import (
    FACS,
    FADT,
    HEADER,
    RSDP,
    RSDP_REVISION_XSDT,
    RSDP_SIGNATURE,
    RSDP_V1_SIZE,
    RSDT_ENTRY_SIZE,
    XSDT_ENTRY_SIZE,
)

MADT_FIXED = struct.Struct("<II")  # local APIC address, flags (after the header)
MADT_LOCAL_APIC, MADT_IO_APIC, MADT_LOCAL_X2APIC = 0, 1, 9
LAPIC_ENABLED, LAPIC_ONLINE_CAPABLE = 1 << 0, 1 << 1

MCFG_RESERVED = 8
MCFG_ENTRY = struct.Struct("<QHBB4x")

FADT_DSDT_OFFSET = FADT.offsets["dsdt"]  # 32-bit DSDT address
FADT_X_DSDT_OFFSET = FADT.offsets["x_dsdt"]  # 64-bit X_DSDT, in FADT revision 2 and later


class AcpiError(ValueError):
    """A table too short or malformed to decode."""


def _text(field: bytes) -> str:
    """An ACPI ID field: ASCII, padded with NULs or spaces."""
    return field.decode("latin-1").rstrip("\0 ")


def checksum_ok(data: bytes) -> bool:
    """ACPI checksums make all covered bytes sum to zero modulo 256."""
    return sum(data) & 0xFF == 0


# The FACS has no system description header (ACPI 6.5 section 5.2.10): after
# its signature and length come the hardware signature and waking vectors; no
# revision, OEM fields or checksum.  Its version is the byte at offset 32.
HEADERLESS = frozenset({"FACS"})
FACS_VERSION_OFFSET = FACS.offsets["version"]


@dataclass(frozen=True)
class Table:
    address: int
    data: bytes  # the whole table as read by the guest

    @property
    def has_standard_header(self) -> bool:
        return self.data[:4].decode("latin-1") not in HEADERLESS

    @property
    def facs_version(self) -> int | None:
        """The FACS's version field (None for any other table, or a short one)."""
        if self.has_standard_header or len(self.data) <= FACS_VERSION_OFFSET:
            return None
        return self.data[FACS_VERSION_OFFSET]

    def _header(self) -> dict:
        if len(self.data) < HEADER.size:
            raise AcpiError(f"ACPI table at 0x{self.address:x} is {len(self.data)} bytes, "
                            "shorter than its header")
        return HEADER.unpack(self.data)[0]

    signature = property(lambda self: self._header()["signature"].decode("latin-1"))
    length = property(lambda self: self._header()["length"])
    revision = property(lambda self: self._header()["revision"])
    oem_id = property(lambda self: _text(self._header()["oem_id"]))
    oem_table_id = property(lambda self: _text(self._header()["oem_table_id"]))
    oem_revision = property(lambda self: self._header()["oem_revision"])
    creator_id = property(lambda self: _text(self._header()["creator_id"]))

    @property
    def complete(self) -> bool:
        return len(self.data) >= self.length

    @property
    def checksum_valid(self) -> bool:
        return self.complete and checksum_ok(self.data[: self.length])

    @property
    def body(self) -> bytes:
        return self.data[HEADER.size : self.length]

    def to_json(self) -> dict:
        return {"signature": self.signature, "length": self.length}


@dataclass(frozen=True)
class Rsdp:
    address: int
    data: bytes

    def _fields(self) -> dict:
        """The RSDP's fields; the 2.0 ones read 0 when the data stops after 1.0's."""
        if len(self.data) < RSDP_V1_SIZE or not self.data.startswith(RSDP_SIGNATURE):
            raise AcpiError(f"no RSDP signature at 0x{self.address:x}")
        return RSDP.unpack(self.data[: RSDP.size].ljust(RSDP.size, b"\0"))[0]

    @property
    def _has_v2(self) -> bool:
        return self.revision >= RSDP_REVISION_XSDT and len(self.data) >= RSDP.size

    oem_id = property(lambda self: _text(self._fields()["oem_id"]))
    revision = property(lambda self: self._fields()["revision"])
    rsdt_address = property(lambda self: self._fields()["rsdt"])

    @property
    def xsdt_address(self) -> int | None:
        if not self._has_v2:
            return None
        return self._fields()["xsdt"] or None

    @property
    def checksum_valid(self) -> bool:
        if not checksum_ok(self.data[:RSDP_V1_SIZE]):
            return False
        if self._has_v2:
            return checksum_ok(self.data[: self._fields()["length"]])
        return True


@dataclass(frozen=True)
class LocalApic:
    processor_uid: int
    apic_id: int
    flags: int
    x2apic: bool

    @property
    def usable(self) -> bool:
        """Enabled now, or may be brought online later (ACPI 6.3+ online-capable)."""
        return bool(self.flags & (LAPIC_ENABLED | LAPIC_ONLINE_CAPABLE))


@dataclass(frozen=True)
class IoApic:
    id: int
    address: int
    gsi_base: int


@dataclass(frozen=True)
class Madt:
    local_apic_address: int
    flags: int
    local_apics: tuple[LocalApic, ...]
    io_apics: tuple[IoApic, ...]

    @property
    def cpu_count(self) -> int:
        return sum(1 for apic in self.local_apics if apic.usable)

    @property
    def apic_ids(self) -> list[int]:
        return [apic.apic_id for apic in self.local_apics if apic.usable]


def parse_madt(table: Table) -> Madt:
    body = table.body
    if len(body) < MADT_FIXED.size:
        raise AcpiError("MADT shorter than its fixed part")
    lapic_address, flags = MADT_FIXED.unpack_from(body)
    apics, io_apics = [], []
    offset = MADT_FIXED.size
    while offset + 2 <= len(body):
        entry_type, entry_length = body[offset], body[offset + 1]
        if entry_length < 2 or offset + entry_length > len(body):
            break  # a broken entry ends the walk rather than reading garbage
        entry = body[offset : offset + entry_length]
        if entry_type == MADT_LOCAL_APIC and entry_length >= 8:
            uid, apic_id, apic_flags = struct.unpack_from("<BBI", entry, 2)
            apics.append(LocalApic(uid, apic_id, apic_flags, x2apic=False))
        elif entry_type == MADT_LOCAL_X2APIC and entry_length >= 16:
            x2apic_id, apic_flags, uid = struct.unpack_from("<III", entry, 4)
            apics.append(LocalApic(uid, x2apic_id, apic_flags, x2apic=True))
        elif entry_type == MADT_IO_APIC and entry_length >= 12:
            io_id, address, gsi_base = struct.unpack_from("<BxII", entry, 2)
            io_apics.append(IoApic(io_id, address, gsi_base))
        offset += entry_length
    return Madt(lapic_address, flags, tuple(apics), tuple(io_apics))


@dataclass(frozen=True)
class EcamRegion:
    base: int
    segment: int
    start_bus: int
    end_bus: int


def parse_mcfg(table: Table) -> list[EcamRegion]:
    body = table.body[MCFG_RESERVED:]
    count = len(body) // MCFG_ENTRY.size
    return [EcamRegion(*MCFG_ENTRY.unpack_from(body, i * MCFG_ENTRY.size)) for i in range(count)]


def fadt_dsdt_address(table: Table) -> int | None:
    """The DSDT address from the FADT, preferring the 64-bit X_DSDT when set."""
    data = table.data[: table.length]
    if len(data) >= FADT_X_DSDT_OFFSET + 8:
        (x_dsdt,) = struct.unpack_from("<Q", data, FADT_X_DSDT_OFFSET)
        if x_dsdt:
            return x_dsdt
    if len(data) >= FADT_DSDT_OFFSET + 4:
        (dsdt,) = struct.unpack_from("<I", data, FADT_DSDT_OFFSET)
        return dsdt or None
    return None


def root_table_entries(table: Table) -> list[int]:
    """The table addresses listed in an RSDT (32-bit) or XSDT (64-bit)."""
    width = XSDT_ENTRY_SIZE if table.signature == "XSDT" else RSDT_ENTRY_SIZE
    body = table.body
    return [int.from_bytes(body[i : i + width], "little")
            for i in range(0, len(body) - width + 1, width)]
