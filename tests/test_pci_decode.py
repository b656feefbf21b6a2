"""PCI decoding against config spaces built by hand from the PCI 3.0 layouts."""

import struct

import testing.synthetic_q35 as q35
from contract.frames import FrameDecoder
from discovery.pci import PciFunction, function_from_fields
from discovery.pciids import PciIds
from testing.synthetic_q35 import config_space, readback_for


def decode(config, readbacks=(), bus=0, device=0, function=0, segment=0):
    readbacks = tuple(readbacks) + (0,) * (6 - len(readbacks))
    return PciFunction(segment, bus, device, function, config, readbacks)


def test_identity_fields_from_a_frame():
    body = q35.pci_body(0, 0x1F, 2, q35.PCI_DEVICES[5][3], q35.PCI_DEVICES[5][4])
    frame = FrameDecoder().feed(b"\x00" + q35.encode_frame(q35.Msg.PCI_FUNCTION, 0, body))[0]
    f = function_from_fields(*frame.fields())
    assert ((f.bdf, f.vendor, f.device_id, f.class_code, f.revision)
            == ("00:1f.2", 0x8086, 0x2922, 0x010601, 2))
    assert (f.header_type, f.multi_function, f.subsystem) == (0, False, (0x1AF4, 0x1100))
    assert (f.interrupt_pin, f.interrupt_line) == (1, 10)
    assert f.capabilities == [0x05, 0x12]


def test_multi_function_bit_reported_separately_from_header_type():
    f = decode(config_space(0x8086, 0x2918, 0x060100, multi_function=True))
    assert f.header_type == 0 and f.multi_function


def test_io_bar_with_32_and_16_bit_readbacks():
    config = config_space(1, 2, 0, bars=[0xC041, 0x0701])
    f = decode(config, [readback_for("io", 0x20), 0x0000FFC1])
    assert ([(b.index, b.kind, b.address, b.size) for b in f.bars]
            == [(0, "io", 0xC040, 0x20), (1, "io", 0x700, 0x40)])


def test_mem32_and_prefetchable_mem64_pair_and_unimplemented_bars_omitted():
    config = config_space(1, 2, 0, bars=[0, 0xFE840000, 0, 0, 0xFC00000C, 0x00000080])
    f = decode(config, [0, 0xFFFFF000, 0, 0] + readback_for("mem64", 0x4000, prefetchable=True))
    assert [b.to_json() for b in f.bars] == [
        {"index": 1, "kind": "mem32", "prefetchable": False, "address": 0xFE840000,
         "size": 0x1000},
        {"index": 4, "kind": "mem64", "prefetchable": True, "address": 0x80_FC000000,
         "size": 0x4000},
    ]


def test_mem64_bar_larger_than_4_gib():
    config = config_space(1, 2, 0, bars=[0x0000000C, 0x00000040])
    f = decode(config, readback_for("mem64", 1 << 34, prefetchable=True))
    assert [(b.kind, b.address, b.size) for b in f.bars] == [("mem64", 0x40_00000000, 1 << 34)]


def test_bridge_has_two_bars_subsystem_from_capability_and_bus_numbers():
    bus, dev, fn, config, readbacks = q35.PCI_DEVICES[2]
    f = decode(config, readbacks + [0xFFFFFFFF] * 4)  # readbacks past BAR1 are not BARs of a bridge
    assert f.is_bridge and f.header_type == 1
    assert [(b.index, b.size) for b in f.bars] == [(0, 0x1000)]
    assert f.subsystem == (0x1AF4, 0x1100)
    assert (f.secondary_bus, f.subordinate_bus) == (1, 1)
    assert f.capabilities == [0x0D, 0x10, 0x11, 0x01]
    assert f.extended_capabilities == [0x0001]


def test_bridge_without_subsystem_capability_reports_zero():
    f = decode(config_space(0x1B36, 0x0001, 0x060400, header_type=1, caps=[q35.PM]))
    assert f.subsystem == (0, 0)


def test_capability_list_ignored_without_status_bit_and_loops_cut():
    config = bytearray(config_space(1, 2, 0, caps=[q35.PM, q35.MSI]))
    struct.pack_into("<H", config, 0x06, 0)  # status bit 4 clear
    assert decode(bytes(config)).capabilities == []
    looping = bytearray(config_space(1, 2, 0, caps=[q35.PM]))
    looping[0x41] = 0x40  # next pointer back to itself
    assert decode(bytes(looping)).capabilities == [0x01]


def test_extended_capabilities_only_with_4k_config_space():
    caps = dict(caps=[q35.EXPRESS], ext_caps=[q35.AER, (0x000E, 1, bytes(4))])
    assert (decode(config_space(1, 2, 0, size=4096, **caps)).extended_capabilities
            == [0x0001, 0x000E])
    assert decode(config_space(1, 2, 0, size=256, caps=[q35.EXPRESS])).extended_capabilities == []


def test_bdf_has_segment_prefix_only_when_nonzero():
    assert decode(config_space(1, 2, 0), bus=0x3A, device=0x1F, function=7).bdf == "3a:1f.7"
    assert decode(config_space(1, 2, 0), segment=1, bus=2, device=3).bdf == "0001:02:03.0"


def test_truncated_config_space_does_not_crash():
    f = decode(config_space(0x8086, 0x2922, 0x010601)[:16])
    assert f.vendor == 0x8086 and f.capabilities == [] and f.subsystem == (0xFFFF, 0xFFFF)


def test_pci_ids_names_and_missing_file(tmp_path):
    ids = tmp_path / "pci.ids"
    ids.write_text(
        "# comment\n8086  Intel Corporation\n\t2922  SATA AHCI\n"
        "\t\t1af4 1100  QEMU Virtual Machine\n"
        "C 01  Mass storage controller\n\t06  SATA controller\n\t\t01  AHCI 1.0\n"
    )
    names = PciIds(ids)
    assert names.vendor_name(0x8086) == "Intel Corporation"
    assert names.device_name(0x8086, 0x2922) == "SATA AHCI"
    assert names.subsystem_name(0x8086, 0x2922, 0x1AF4, 0x1100) == "QEMU Virtual Machine"
    assert names.class_name(0x010601) == "SATA controller"
    assert names.class_name(0x010001) == "Mass storage controller"
    assert names.prog_if_name(0x010601) == "AHCI 1.0"
    missing = PciIds(tmp_path / "absent.ids")
    assert missing.vendor_name(0x8086) is None and not missing.available
    assert decode(config_space(0x8086, 0x2922, 0)).to_json(None)["vendor_name"] is None


def test_config_space_sent_without_its_trailing_run_is_restored_whole():
    legacy = config_space(0x1B36, 0x0008, 0x060000).ljust(256, b"\0")
    behind_ecam = legacy + b"\xff" * (4096 - 256)  # a conventional function read through ECAM
    for config in (legacy, behind_ecam):
        body = q35.pci_body(0, 0, 0, config, ())
        frame = FrameDecoder().feed(b"\x00" + q35.encode_frame(q35.Msg.PCI_FUNCTION, 0, body))[0]
        fields, sent = frame.fields()
        assert len(sent) < len(config) and fields["config_size"] == len(config)
        assert function_from_fields(fields, sent).config == config
