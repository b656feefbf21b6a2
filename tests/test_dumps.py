"""Dumps are judged by the real tools reading them: lspci -F and lstopo (hwloc)."""

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

import testing.synthetic_q35 as q35
from contract.frames import FrameDecoder
from discovery.cpuid import CpuidResult
from discovery.dumps import read_cpuid_dump, write_dump_dir
from discovery.inventory import Inventory


def inventory():
    frames = FrameDecoder().feed(q35.frames_bytes())
    return Inventory.from_frames(frames, q35.BOARD, {"seconds": 1.0})


needs_lspci = pytest.mark.skipif(not shutil.which("lspci"), reason="needs lspci (pciutils)")
needs_lstopo = pytest.mark.skipif(not shutil.which("lstopo-no-graphics"),
                                  reason="needs hwloc's lstopo")


def lspci(*args):
    return subprocess.run(["lspci", *args], capture_output=True, text=True, check=True).stdout


@needs_lspci
def test_lspci_reads_every_function_with_our_ids(tmp_path):
    write_dump_dir(inventory(), tmp_path)
    out = lspci("-F", str(tmp_path / "lspci.txt"), "-nn")
    found = set(re.findall(r"^(\S+) .*\[([0-9a-f]{4}):([0-9a-f]{4})\]", out, re.M))
    expected = {(f"{b:02x}:{d:02x}.{fn}", f"{int.from_bytes(c[0:2], 'little'):04x}",
                 f"{int.from_bytes(c[2:4], 'little'):04x}") for b, d, fn, c, *_ in q35.PCI_DEVICES}
    assert found == expected


@needs_lspci
def test_lspci_decodes_bars_caps_and_extended_caps_from_4k_dump(tmp_path):
    write_dump_dir(inventory(), tmp_path)
    verbose = lspci("-F", str(tmp_path / "lspci.txt"), "-vvv", "-s", "01:00.0")
    assert "Region 4: Memory at fc000000 (64-bit, prefetchable)" in verbose
    assert "Capabilities: [100 v2] Advanced Error Reporting" in verbose
    sata = lspci("-F", str(tmp_path / "lspci.txt"), "-vvv", "-s", "00:1f.2")
    assert "Subsystem: Red Hat, Inc. QEMU Virtual Machine" in sata
    assert "Region 4: I/O ports at c040" in sata


@needs_lstopo
def test_lstopo_reads_cpuid_dump_with_right_pus_and_caches(tmp_path):
    write_dump_dir(inventory(), tmp_path)
    env = dict(os.environ, HWLOC_CPUID_PATH=str(tmp_path / "cpuid"), HWLOC_COMPONENTS="x86,-linux")
    xml = subprocess.run(["lstopo-no-graphics", "--of", "xml", "--no-io"], env=env,
                         capture_output=True, text=True, check=True).stdout
    root = ET.fromstring(xml)
    objects = list(root.iter("object"))
    pus = [o for o in objects if o.get("type") == "PU"]
    assert len(pus) == 2  # the MADT's two enabled processors
    sizes = {(o.get("type"), int(o.get("cache_size"))) for o in objects if o.get("cache_size")}
    assert sizes == {("L1Cache", 32 << 10), ("L1iCache", 32 << 10), ("L2Cache", 4 << 20),
                     ("L3Cache", 16 << 20)}
    model = {i.get("name"): i.get("value") for i in root.iter("info")}
    assert model["CPUModel"] == q35.BRAND and model["CPUVendor"] == "GenuineIntel"


def test_cpuid_dump_round_trip_and_per_cpu_apic_ids(tmp_path):
    write_dump_dir(inventory(), tmp_path)
    pu0 = read_cpuid_dump(tmp_path / "cpuid" / "pu0")
    pu1 = read_cpuid_dump(tmp_path / "cpuid" / "pu1")
    originals = {(r["leaf"], r["subleaf"]): CpuidResult(**r) for r in q35.CPUID}
    for result in pu0:
        if (result.leaf, result.subleaf) in originals:
            assert result == originals[(result.leaf, result.subleaf)]
        else:  # only the end-of-list subleaf of leaf 4 is added
            assert (result.leaf, result.eax) == (4, 0)
    leaf1 = {r.leaf: r for r in pu1}[1]
    assert leaf1.ebx >> 24 == 1 and leaf1.ebx & 0xFFFFFF == originals[(1, 0)].ebx & 0xFFFFFF
    assert (tmp_path / "cpuid" / "hwloc-cpuid-info").read_text().startswith("Architecture: x86")


def test_acpi_tables_written_as_acpidump_binaries(tmp_path):
    write_dump_dir(inventory(), tmp_path)
    names = sorted(p.name for p in (tmp_path / "acpi").iterdir())
    assert names == ["apic.dat", "dsdt.dat", "facp.dat", "mcfg.dat", "rsdp.dat"]
    assert (tmp_path / "acpi" / "apic.dat").read_bytes() == q35.madt()
