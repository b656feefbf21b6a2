"""Ground truth from QEMU: query-pci normalised and cross-checked against QEMU's
config-space model read over ECAM, pci.ids, and the documented CPUID encoding."""

from __future__ import annotations

import re

import pytest

from contract.pci import BAR0, VENDOR_ID
from contract.riscv64.virt import VIRT_MEMORY_MAP
from discovery.pciids import PciIds
from qemu.boards import board
from qemu.groundtruth import (
    CpuidWord,
    cpu_model_expansion,
    cpu_model_expectation,
    cpuid_expectation,
    ecam_base,
    query_pci,
    read_config_dword,
    running_cpu_feature_words,
)
from qemu.machine import Machine
from testing.riscv_tiny_guests import write_elf
from testing.x86_boot_sectors import write_image

HARD_TIMEOUT = 30
BDF = re.compile(r"^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
QEMU_VENDOR = 0x1B36  # Red Hat, Inc. (QEMU's own devices)
NVME, PCIE_PCI_BRIDGE, PCIE_ROOT_PORT = 0x0010, 0x000E, 0x000C
E1000 = (0x8086, 0x100E)
VIRTIO_VENDOR = 0x1AF4
TOPOLOGY = (
    "-device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0,addr=0x1c "
    "-drive if=none,id=nv,file={disk},format=raw "
    "-device nvme,drive=nv,serial=gt,bus=rp1 "
    "-device pcie-pci-bridge,id=br1,bus=pcie.0,addr=0x5 "
    "-netdev user,id=n0 -device e1000,bus=br1,addr=3,netdev=n0 "
    "-device virtio-rng-pci,multifunction=on,bus=pcie.0,addr=0x6.0 "
    "-device virtio-balloon-pci,bus=pcie.0,addr=0x6.1"
)


@pytest.fixture(scope="module")
def halt_image(tmp_path_factory):
    return write_image(tmp_path_factory.mktemp("gt"), "halt")


@pytest.fixture(scope="module")
def q35_topology(halt_image, tmp_path_factory):
    disk = tmp_path_factory.mktemp("nvme") / "nvme.img"
    disk.write_bytes(bytes(1 << 20))
    topology = board("q35", accel="tcg", qemu_args=TOPOLOGY.format(disk=disk))
    with Machine(topology, image=halt_image, timeout=HARD_TIMEOUT) as m:
        m.read_serial(timeout=20)  # firmware has numbered the buses and placed the BARs
        yield m


def by_id(functions, vendor, device):
    found = [f for f in functions if (f["vendor"], f["device"]) == (vendor, device)]
    assert len(found) == 1, f"{vendor:04x}:{device:04x} found {len(found)} times"
    return found[0]


@pytest.mark.qemu
def test_every_function_once_with_bdf_formatting(q35_topology):
    functions = query_pci(q35_topology)
    bdfs = [f["bdf"] for f in functions]
    assert len(bdfs) == len(set(bdfs))
    assert all(BDF.match(bdf) for bdf in bdfs)
    for f in functions:
        assert f["bdf"] == f"{f['bus']:02x}:{f['device_number']:02x}.{f['function']:x}"


@pytest.mark.qemu
def test_devices_behind_bridges_are_recursed_onto_their_secondary_bus(q35_topology):
    functions = query_pci(q35_topology)
    root_port = by_id(functions, QEMU_VENDOR, PCIE_ROOT_PORT)
    pci_bridge = by_id(functions, QEMU_VENDOR, PCIE_PCI_BRIDGE)
    nvme = by_id(functions, QEMU_VENDOR, NVME)
    e1000 = by_id(functions, *E1000)
    assert root_port["bdf"] == "00:1c.0" and pci_bridge["bdf"] == "00:05.0"
    assert root_port["is_bridge"] and pci_bridge["is_bridge"]
    assert root_port["secondary_bus"] != pci_bridge["secondary_bus"]
    assert nvme["bus"] == root_port["secondary_bus"] > 0
    assert (e1000["bus"], e1000["device_number"]) == (pci_bridge["secondary_bus"], 3)
    assert nvme["class"] == 0x010802  # mass storage / NVM / NVMe (PCI code and ID assignment)


@pytest.mark.qemu
def test_multifunction_device_shows_both_functions(q35_topology):
    slot6 = [f for f in query_pci(q35_topology) if (f["bus"], f["device_number"]) == (0, 6)]
    assert [f["function"] for f in slot6] == [0, 1]
    assert {f["vendor"] for f in slot6} == {VIRTIO_VENDOR}


@pytest.mark.qemu
def test_q35_chipset_functions_are_the_ich9_ones_pci_ids_names(q35_topology):
    functions = {f["bdf"]: f for f in query_pci(q35_topology)}
    ids = PciIds()
    assert ids.available
    for bdf, device, class_code in [
        ("00:00.0", 0x29C0, 0x060000),  # host bridge (DRAM controller)
        ("00:1f.0", 0x2918, 0x060100),  # ISA bridge (LPC)
        ("00:1f.2", 0x2922, 0x010601),  # SATA controller, AHCI programming interface
        ("00:1f.3", 0x2930, 0x0C0500),  # SMBus
    ]:
        f = functions[bdf]
        assert (f["vendor"], f["device"], f["class"]) == (0x8086, device, class_code)
        assert ids.device_name(0x8086, device)
        assert f["class_subclass"] == class_code >> 8


@pytest.mark.qemu
def test_ids_and_bars_agree_with_config_space_read_over_ecam(q35_topology):
    ecam = ecam_base(q35_topology)
    assert ecam is not None
    for f in query_pci(q35_topology):
        location = (f["bus"], f["device_number"], f["function"])
        ident = read_config_dword(q35_topology, ecam, *location, VENDOR_ID)
        assert (ident & 0xFFFF, ident >> 16) == (f["vendor"], f["device"])
        for bar in f["bars"]:
            if bar["address"] is None:
                continue
            low = read_config_dword(q35_topology, ecam, *location, BAR0 + 4 * bar["index"])
            address = low & ~(0x3 if bar["kind"] == "io" else 0xF)
            if bar["kind"] == "mem64":
                address |= read_config_dword(
                    q35_topology, ecam, *location, BAR0 + 4 * (bar["index"] + 1)) << 32
            assert address == bar["address"], f"{f['bdf']} BAR{bar['index']}"
            assert bar["size"] & (bar["size"] - 1) == 0  # BAR sizes are powers of two


@pytest.mark.qemu
def test_pc_without_ecam_reports_what_query_pci_cannot_know(halt_image):
    with Machine(board("pc", accel="tcg"), image=halt_image, timeout=HARD_TIMEOUT) as m:
        m.read_serial(timeout=20)
        functions = {f["bdf"]: f for f in query_pci(m)}
    ide = functions["00:01.1"]
    assert (ide["vendor"], ide["device"], ide["class_subclass"]) == (0x8086, 0x7010, 0x0101)
    assert ide["class"] is None and ide["revision"] is None
    assert [bar["kind"] for bar in ide["bars"]] == ["io"]  # PIIX3 IDE: bus-master BAR4


# Family/model/stepping as QEMU's target/i386/cpu.c defines each model; the leaf 1
# EAX signatures are the ones real parts report (e.g. EPYC 7601: 0x00800F12).
@pytest.mark.qemu
@pytest.mark.parametrize(
    "model, vendor, level, xlevel, signature, feature, absent",
    [
        ("qemu64", "AuthenticAMD", 0xD, 0x8000000A, 0x00060FB1, "lm", "avx"),
        ("Haswell", "GenuineIntel", 0xD, 0x80000008, 0x000306C4, "avx2", "svm"),
        ("EPYC", "AuthenticAMD", 0xD, 0x8000001E, 0x00800F12, "sha-ni", "vmx"),
    ],
)
def test_cpu_model_expansion(q35_topology, model, vendor, level, xlevel, signature, feature,
                             absent):
    expected = cpuid_expectation(cpu_model_expansion(q35_topology, model))
    assert (expected.vendor, expected.level, expected.xlevel) == (vendor, level, xlevel)
    assert expected.signature == signature
    assert expected.model_id
    assert feature in expected.features and absent not in expected.features
    assert {"fpu", "sse2"} <= expected.features


# Bit positions from the Intel SDM vol. 2A, CPUID: leaf 1 ECX bit 17 = PCID,
# leaf 7 subleaf 0 EBX bit 5 = AVX2, leaf 1 EDX bit 26 = SSE2.
PCID = (CpuidWord(1, None, "ECX"), 17)
AVX2 = (CpuidWord(7, 0, "EBX"), 5)
SSE2 = (CpuidWord(1, None, "EDX"), 26)


@pytest.mark.qemu
def test_running_haswell_under_tcg_lacks_what_tcg_cannot_do(halt_image):
    with Machine(board("pc", accel="tcg", cpu="Haswell"), image=halt_image,
                 timeout=HARD_TIMEOUT) as m:
        defined = cpuid_expectation(cpu_model_expansion(m, "Haswell"))
        expected = cpu_model_expectation(m, "Haswell")
        words = running_cpu_feature_words(m)
    assert "pcid" in defined.features
    assert "pcid" not in expected.features and "avx2" in expected.features
    for (word, bit), name in ((PCID, "pcid"), (AVX2, "avx2"), (SSE2, "sse2")):
        assert bool(words[word] >> bit & 1) == (name in expected.features), name


@pytest.mark.qemu
def test_riscv_virt_ecam_and_host_bridge(tmp_path):
    ecam_region = next(r for r in VIRT_MEMORY_MAP if r.name == "PCIE_ECAM")
    with Machine(board("virt", accel="tcg"), kernel=write_elf(tmp_path, "park"),
                 timeout=HARD_TIMEOUT) as m:
        assert ecam_base(m) == ecam_region.base
        functions = query_pci(m)
    host = functions[0]
    assert (host["bdf"], host["vendor"], host["device"]) == ("00:00.0", QEMU_VENDOR, 0x0008)
    assert host["class"] == 0x060000  # host bridge, read from config space over ECAM
