"""The human report: its PCI lines must read exactly as the real `lspci -nn` prints
the same configuration spaces; CPU rows as lscpu names them."""

import shutil
import struct
import subprocess

import pytest

import testing.synthetic_q35 as q35
from cli.report import render_text
from contract.frames import FrameDecoder
from discovery.dumps import write_dump_dir
from discovery.inventory import Inventory
from discovery.pciids import PciIds
from discovery.report import lspci_size


def inventory(stream=None, names=None):
    decoder = FrameDecoder()
    frames = decoder.feed(stream or q35.frames_bytes())
    inv = Inventory.from_frames(frames, q35.BOARD, {"seconds": 2.25, "frames": len(frames),
                                                     "crc_errors": decoder.crc_errors})
    if names is not None:
        inv.names = names
    return inv


@pytest.mark.skipif(not shutil.which("lspci"), reason="needs lspci (pciutils)")
def test_pci_lines_match_real_lspci_nn(tmp_path):
    inv = inventory()
    write_dump_dir(inv, tmp_path)
    expected = subprocess.run(["lspci", "-F", str(tmp_path / "lspci.txt"), "-nn"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
    text = render_text(inv).splitlines()
    ours = [line.strip() for line in text if line.strip()[:7] in {e[:7] for e in expected}]
    assert sorted(ours) == sorted(expected)
    assert len(expected) == len(q35.PCI_DEVICES)


def test_devices_behind_a_bridge_are_indented_under_it():
    text = render_text(inventory())
    lines = text.splitlines()
    bridge = next(i for i, line in enumerate(lines) if line.startswith("00:02.0 "))
    child = next(i for i, line in enumerate(lines) if "01:00.0 " in line)
    assert child > bridge and lines[child].startswith("    01:00.0")
    assert all(not line.startswith(" ") for line in lines if line[:8] in ("00:1f.2 ", "00:00.0 "))


def test_bars_capabilities_and_header():
    text = render_text(inventory())
    assert "Region 4: I/O ports at c040 [size=32]" in text
    assert "Region 4: Memory at fc000000 (64-bit, prefetchable) [size=16K]" in text
    assert "Capabilities: MSI [05], SATA [12]" in text
    assert "2.25 s" in text and "0 CRC errors" in text and "machine q35" in text
    assert "Accelerator: tcg (asked for)" in text


def test_header_without_a_reason_names_the_accelerator_alone():
    board = {key: value for key, value in q35.BOARD.items() if key != "accel_reason"}
    text = render_text(Inventory.from_frames(FrameDecoder().feed(q35.frames_bytes()), board, {}))
    assert "Accelerator: tcg\n" in text


def test_cpu_summary_rows_as_lscpu_names_them():
    text = render_text(inventory())
    for row in ("CPU(s):", "Vendor ID:", "Model name:", "CPU family:", "Model:", "Stepping:",
                "Hypervisor vendor:", "Address sizes:", "L1d cache:", "L1i cache:", "L2 cache:",
                "L3 cache:", "Flags:"):
        assert row in text
    assert "Model name:        Intel Core Processor (Haswell, no TSX)" in text
    assert "L3 cache:          16 MiB" in text
    assert "CPU(s):            2" in text


def test_acpi_section_reports_madt_cpus_and_ecam_base():
    text = render_text(inventory())
    assert "2 CPUs (APIC IDs 0, 1)" in text
    assert "ECAM base 0xb0000000" in text
    assert "DSDT at 0x7fe0040" in text


def test_the_facs_is_reported_without_a_checksum_it_does_not_have():
    # ACPI 6.5 table 5.14: signature, length, hardware signature, waking vectors,
    # global lock, flags, X waking vector, version (offset 32), reserved, OSPM flags.
    facs = struct.pack("<4sIIIIIQB3xI24x", b"FACS", 64, 0x1234, 0, 0, 0, 0, 2, 0)
    tables = [*q35.ACPI_TABLES, (0x07FE0000, facs)]
    text = render_text(inventory(q35.frames_bytes(acpi_tables=tables)))
    assert "FACS  at 0x7fe0000, 64 bytes, version 2 (no checksum: the FACS has none)" in text
    assert "BAD" not in text


def test_without_pci_ids_numbers_remain(tmp_path):
    text = render_text(inventory(names=PciIds(tmp_path / "none")))
    assert "00:1f.2 Class [0106]: Device [8086:2922] (rev 02)" in text


def test_unknown_frames_and_plain_text_without_terminal():
    text = render_text(inventory(q35.frames_bytes(extra_frames=[(0x42, b"future")])))
    assert "type 0x42, 6 bytes" in text
    assert "\x1b[" not in text


def test_lspci_size_units():
    sizes = (32, 4096, 16 << 20, 4 << 30, 1536)
    assert [lspci_size(n) for n in sizes] == ["32", "4K", "16M", "4G", "1536"]
