"""ACPI decoding against tables assembled by hand with correct checksums (ACPI 6.5 ch. 5)."""

import struct

import testing.synthetic_q35 as q35
from discovery.acpi import (
    Rsdp,
    Table,
    checksum_ok,
    fadt_dsdt_address,
    parse_madt,
    parse_mcfg,
    root_table_entries,
)


def test_header_fields_and_checksum():
    t = Table(0x1000, q35.madt())
    assert ((t.signature, t.revision, t.oem_id, t.oem_table_id, t.creator_id)
            == ("APIC", 3, "BOCHS", "BXPC", "BXPC"))
    assert t.length == len(q35.madt()) and t.checksum_valid
    broken = bytearray(q35.madt())
    broken[40] ^= 1
    assert not Table(0x1000, bytes(broken)).checksum_valid
    assert not Table(0x1000, q35.madt()[:-1]).checksum_valid  # truncated


def test_madt_counts_enabled_or_online_capable_processors():
    m = parse_madt(Table(0, q35.madt(apic_ids_enabled=(0, 1), apic_ids_disabled=(2, 3))))
    assert m.cpu_count == 2 and m.apic_ids == [0, 1]
    assert m.local_apic_address == 0xFEE00000
    assert [(io.id, io.address, io.gsi_base) for io in m.io_apics] == [(0, 0xFEC00000, 0)]


def test_madt_x2apic_and_online_capable_entries():
    body = struct.pack("<II", 0xFEE00000, 0)
    body += struct.pack("<BBHIII", 9, 16, 0, 0x100, 1, 0)  # x2APIC enabled
    body += struct.pack("<BBHIII", 9, 16, 0, 0x101, 2, 1)  # x2APIC online-capable
    body += struct.pack("<BBHIII", 9, 16, 0, 0x102, 0, 2)  # x2APIC absent
    m = parse_madt(Table(0, q35.acpi_table("APIC", body, revision=5)))
    assert m.cpu_count == 2 and m.apic_ids == [0x100, 0x101]
    assert all(a.x2apic for a in m.local_apics)


def test_madt_walk_stops_at_a_broken_entry():
    body = struct.pack("<II", 0, 0) + struct.pack("<BBBBI", 0, 8, 0, 0, 1) + bytes([0, 0])
    assert parse_madt(Table(0, q35.acpi_table("APIC", body))).cpu_count == 1


def test_mcfg_regions():
    regions = parse_mcfg(Table(0, q35.mcfg(base=0xB0000000, segment=0, start_bus=0, end_bus=0xFF)))
    assert ([(r.base, r.segment, r.start_bus, r.end_bus) for r in regions]
            == [(0xB0000000, 0, 0, 0xFF)])


def test_fadt_dsdt_prefers_x_dsdt():
    assert fadt_dsdt_address(Table(0, q35.fadt(dsdt=0x1000, x_dsdt=0x1_0000_2000))) == 0x1_0000_2000
    assert fadt_dsdt_address(Table(0, q35.fadt(dsdt=0x1000, x_dsdt=0))) == 0x1000


def test_rsdp_v1_and_v2():
    v1 = Rsdp(0xF5A10, q35.rsdp(rsdt=0x7FE2000))
    assert ((v1.revision, v1.rsdt_address, v1.xsdt_address, v1.oem_id, v1.checksum_valid)
            == (0, 0x7FE2000, None, "BOCHS", True))
    raw = bytearray(struct.pack("<8sB6sBIIQB3x", b"RSD PTR ", 0, b"BOCHS ", 2, 0x7FE2000, 36,
                                0x7FE3000, 0))
    raw[8] = (-sum(raw[:20])) & 0xFF
    raw[32] = (-sum(raw)) & 0xFF
    v2 = Rsdp(0, bytes(raw))
    assert v2.xsdt_address == 0x7FE3000 and v2.checksum_valid and checksum_ok(bytes(raw))


def test_rsdt_and_xsdt_entries():
    rsdt = Table(0, q35.acpi_table("RSDT", struct.pack("<3I", 0x1000, 0x2000, 0x3000)))
    xsdt = Table(0, q35.acpi_table("XSDT", struct.pack("<2Q", 0x1_0000_1000, 0x2000)))
    assert root_table_entries(rsdt) == [0x1000, 0x2000, 0x3000]
    assert root_table_entries(xsdt) == [0x1_0000_1000, 0x2000]
