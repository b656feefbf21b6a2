"""The inventory document (cli/schemas.py): its exact schema, and robustness to odd streams."""

import testing.synthetic_q35 as q35
from arch import RISCV64
from cli.schemas import inventory_document
from contract.frames import FrameDecoder, encode_frame
from contract.protocol import LAYOUTS, Msg, WireArch
from discovery.inventory import Inventory


def build(stream, boot=None):
    decoder = FrameDecoder()
    frames = decoder.feed(stream)
    return Inventory.from_frames(frames, q35.BOARD, boot or {"seconds": 3.5, "frames": len(frames),
                                                             "crc_errors": decoder.crc_errors})


def test_schema_is_exactly_the_contract():
    j = inventory_document(build(q35.frames_bytes()))
    assert list(j) == ["schema", "arch", "board", "boot", "memory", "pci", "cpu", "acpi"]
    assert j["schema"] == "metaos.inventory/1" and j["arch"] == "x86_64"
    assert set(j["board"]) == {"machine", "cpu", "smp", "accel", "accel_reason", "qemu_args"}
    assert set(j["boot"]) == {"seconds", "frames", "crc_errors"}
    assert set(j["memory"][0]) == {"base", "length", "type"}
    assert set(j["pci"][0]) == {"bdf", "vendor", "device", "class", "revision", "subsystem_vendor",
                                "subsystem_device", "header_type", "bars", "capabilities",
                                "vendor_name", "device_name"}
    assert set(j["cpu"]) == {"vendor", "brand", "family", "model", "stepping", "count", "flags",
                             "cpuid"}
    assert set(j["cpu"]["cpuid"][0]) == {"leaf", "subleaf", "eax", "ebx", "ecx", "edx"}
    assert j["acpi"][0] == {"signature": "FACP", "length": 244}


def test_values_from_the_synthetic_machine():
    j = build(q35.frames_bytes()).to_json()
    assert [m["type"] for m in j["memory"]] == [t for _, _, t in q35.MEMORY]
    assert [p["bdf"] for p in j["pci"]] == ["00:00.0", "00:01.0", "00:02.0", "00:1f.0", "00:1f.2",
                                            "00:1f.3", "01:00.0"]
    sata = next(p for p in j["pci"] if p["bdf"] == "00:1f.2")
    assert ((sata["vendor"], sata["device"], sata["class"], sata["revision"])
            == (0x8086, 0x2922, 0x010601, 2))
    assert sata["device_name"] == "82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]"
    assert j["cpu"]["count"] == 2 and j["cpu"]["flags"] == q35.EXPECTED_FLAGS
    assert len(j["cpu"]["cpuid"]) == len(q35.CPUID)
    assert j["boot"] == {"seconds": 3.5, "frames": 36, "crc_errors": 0}


def test_madt_count_wins_over_cpuid_and_cpuid_is_the_fallback():
    four = [(0x1000, q35.madt(apic_ids_enabled=(0, 1, 2, 3), apic_ids_disabled=()))]
    assert build(q35.frames_bytes(acpi_tables=four)).to_json()["cpu"]["count"] == 4
    # without a MADT: CPUID leaf 1 EBX[23:16] (2 logical processors per package)
    assert build(q35.frames_bytes(acpi_tables=[])).to_json()["cpu"]["count"] == 2


def test_unknown_types_kept_malformed_bodies_reported_not_fatal():
    extra = [(0x42, b"new"), (Msg.MEMORY, b"\x01\x02")]
    inv = build(q35.frames_bytes(extra_frames=extra))
    assert [int(f.type) for f in inv.unknown] == [0x42]
    assert any("MEMORY" in p for p in inv.problems)
    assert len(inv.memory) == len(q35.MEMORY)


def test_newer_protocol_version_is_reported():
    hello = encode_frame(Msg.HELLO, 0, LAYOUTS[Msg.HELLO].pack(version=99, arch=WireArch.X86_64))
    inv = build(b"\x00" + hello)
    assert inv.protocol_version == 99 and any("protocol 99" in p for p in inv.problems)


def test_riscv_arch_without_its_section_does_not_fail():
    hello = encode_frame(Msg.HELLO, 0, LAYOUTS[Msg.HELLO].pack(version=1, arch=WireArch.RISCV64))
    hart = encode_frame(Msg.HART, 1, LAYOUTS[Msg.HART].pack(hartid=0))
    inv = build(b"\x00" + hello + hart)
    assert inv.arch is RISCV64
    inv.to_json()


def test_crc_errors_from_a_damaged_stream_reach_boot_stats():
    stream = bytearray(q35.frames_bytes())
    stream[200] ^= 0xFF
    inv = build(bytes(stream))
    assert inv.boot.crc_errors >= 1
