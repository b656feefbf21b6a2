"""PCIe enumeration by the RISC-V guest (ECAM, -bios none) against QEMU's own
view: after the guest numbered the bridges and finished, QMP `query-pci`
(which reads the bus numbers the guest programmed) must list exactly the
functions, classes, bridge bus ranges and BAR sizes the guest reported.

The guest is booted with bootargs "metaos.park": it parks after FINAL instead
of exiting, so the test can still ask QMP about the machine."""

from __future__ import annotations

import pytest

from discovery.inventory import Inventory
from discovery.pci import decode_bars
from testing.riscv_guest import run_parked

pytestmark = pytest.mark.qemu

TOPOLOGY = (
    "-device", "e1000e,bus=pcie.0,addr=5",                       # on the root bus
    "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=1",
    "-device", "nvme,serial=metaos,bus=rp1",                     # behind a root port
    "-device", "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,addr=2",
    "-device", "virtio-net-pci,bus=rp2,addr=0.0,multifunction=on",  # multifunction
    "-device", "virtio-rng-pci,bus=rp2,addr=0.1",
    "-device", "pcie-root-port,id=rp3,bus=pcie.0,chassis=3,addr=3",
    "-device", "pcie-pci-bridge,id=br,bus=rp3",                  # two bridges deep
    "-device", "e1000,bus=br,addr=1",
    "-device", "pcie-root-port,id=rp4,bus=pcie.0,chassis=4,addr=4",  # numbered after rp3's subtree
    "-device", "virtio-rng-pci,bus=rp4",
)


# QMP lists the expansion ROM as "bar": 6; PCI_FUNCTION frames carry the size
# probes of BAR0-5 only (the ROM's original value is in the raw config space).
EXPANSION_ROM = 6


def _qmp_functions(devices):
    for device in devices:
        yield device
        yield from _qmp_functions(device.get("pci_bridge", {}).get("devices", []))


def _qmp_view(answer):
    functions, bridges, bars = set(), {}, {}
    for d in _qmp_functions(d for bus in answer for d in bus["devices"]):
        key = (d["bus"], d["slot"], d["function"])
        functions.add(key + (d["id"]["vendor"], d["id"]["device"], d["class_info"]["class"]))
        if "pci_bridge" in d:
            bus = d["pci_bridge"]["bus"]
            bridges[key] = (bus["number"], bus["secondary"], bus["subordinate"])
        bars[key] = {(r["bar"], "io" if r["type"] == "io" else
                      "mem64" if r.get("mem_type_64") else "mem32", r["size"])
                     for r in d["regions"] if r["bar"] < EXPANSION_ROM}
    return functions, bridges, bars


def _guest_view(frames):
    inventory = Inventory.from_frames(frames, {"machine": "virt"}, {})
    assert not inventory.problems
    functions, bridges, bars = set(), {}, {}
    for f in inventory.pci:
        key = (f.bus, f.device, f.function)
        vendor = int.from_bytes(f.config[0:2], "little")
        device = int.from_bytes(f.config[2:4], "little")
        functions.add(key + (vendor, device, f.class_code >> 8))
        if f.is_bridge:
            bridges[key] = (f.config[0x18], f.config[0x19], f.config[0x1A])
        bars[key] = {(b.index, b.kind, b.size) for b in decode_bars(f)}
        assert f.config_source == 1 and len(f.config) == 4096
    return functions, bridges, bars


def test_guest_enumeration_equals_query_pci():
    frames, answers = run_parked(smp=1, extra=TOPOLOGY)
    guest, qemu = _guest_view(frames), _qmp_view(answers["query-pci"])
    assert guest[0] == qemu[0]  # functions, ids, classes
    assert guest[1] == qemu[1]  # bridges: primary, secondary, subordinate
    assert guest[2] == qemu[2]  # BAR kinds and sizes


def test_bus_numbers_are_assigned_depth_first_like_linux():
    frames, _ = run_parked(smp=1, extra=TOPOLOGY)
    _, bridges, _ = _guest_view(frames)
    # Linux (pci_scan_bridge) numbers unconfigured bridges depth first in
    # device order: rp1 -> 1, rp2 -> 2, rp3 -> 3 with the PCI bridge below
    # it -> 4, so rp3 spans 3-4 and rp4 gets 5.
    assert bridges == {
        (0, 1, 0): (0, 1, 1), (0, 2, 0): (0, 2, 2), (0, 3, 0): (0, 3, 4),
        (3, 0, 0): (3, 4, 4), (0, 4, 0): (0, 5, 5),
    }
