"""What QEMU itself says the machine is, to check what the guest discovered.

PCI comes from QMP `query-pci`, normalised to the inventory's shape
(host/pci.py `PciFunction.to_json`).  QEMU 7.2's query-pci has no revision and
no programming interface: its `class_info.class` is base class << 8 | subclass.
Where the machine has ECAM (q35 once firmware enabled MMCONFIG, RISC-V virt) the
missing byte pair is read from QEMU's own config-space model through the HMP
`xp` command (a side-effect-free MMIO read); elsewhere (-machine pc) `class` and
`revision` are None and only `class_subclass` is known.

CPU models come from QMP `query-cpu-model-expansion` (type full): the model's
QOM properties, from which `cpuid_expectation` derives what CPUID should report.
The expansion is the model as defined; `cpu_model_expectation` removes what the
accelerator cannot provide (query-cpu-definitions `unavailable-features`), and
`running_cpu_feature_words` reads the live CPU's CPUID feature registers.

Query a running guest after its firmware is done (x86: once the first serial
byte arrived), and pause it (`machine.qmp("stop")`) if it may be probing BARs,
since QEMU reports a BAR with decoding off as unmapped.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from host.pci import ECAM_BUS_SHIFT, ECAM_DEVICE_SHIFT, ECAM_FUNCTION_SHIFT, REVISION
from qemu.machine import Machine

BAR_ROM = 6  # query-pci lists the expansion ROM as region 6; the inventory has BARs 0-5 only
REVISION_DWORD = REVISION  # this dword holds revision, prog-if, subclass, base class
ECAM_REGION = "pcie-mmcfg-mmio"  # QEMU's name for a PCIe host's ECAM memory region
MTREE_RANGE = re.compile(r"^\s*([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, i/o\): (\S+)",
                         re.MULTILINE)
XP_WORD = re.compile(r":\s*0x([0-9a-f]+)")


def query_pci(machine: Machine) -> list[dict[str, Any]]:
    """Every PCI function QEMU models, bridges recursed, in bus/device/function order."""
    ecam = ecam_base(machine)
    functions: list[dict[str, Any]] = []
    for bus in machine.qmp("query-pci"):
        _walk(bus["devices"], functions)
    for function in functions:
        _add_config_bytes(machine, ecam, function)
    return sorted(functions, key=lambda f: (f["bus"], f["device_number"], f["function"]))


def _walk(devices: list[dict[str, Any]], out: list[dict[str, Any]]) -> None:
    for device in devices:
        out.append(_normalise(device))
        bridge = device.get("pci_bridge")
        if bridge is not None:
            _walk(bridge.get("devices", []), out)


def _normalise(device: dict[str, Any]) -> dict[str, Any]:
    ident = device["id"]
    bridge = device.get("pci_bridge")
    return {
        "bdf": f"{device['bus']:02x}:{device['slot']:02x}.{device['function']:x}",
        "bus": device["bus"],
        "device_number": device["slot"],
        "function": device["function"],
        "vendor": ident["vendor"],
        "device": ident["device"],
        "class_subclass": device["class_info"]["class"],
        "class": None,  # 24-bit, filled from config space when readable
        "revision": None,
        # query-pci reports subsystem IDs for type 0 headers only
        "subsystem_vendor": ident.get("subsystem-vendor"),
        "subsystem_device": ident.get("subsystem"),
        "is_bridge": bridge is not None,
        "secondary_bus": bridge["bus"]["secondary"] if bridge else None,
        "subordinate_bus": bridge["bus"]["subordinate"] if bridge else None,
        "bars": [_bar(region) for region in device["regions"] if region["bar"] != BAR_ROM],
        "qdev_id": device.get("qdev_id", ""),
    }


def _bar(region: dict[str, Any]) -> dict[str, Any]:
    if region["type"] == "io":
        kind, prefetchable = "io", False
    else:
        kind, prefetchable = ("mem64" if region["mem_type_64"] else "mem32"), region["prefetch"]
    return {
        "index": region["bar"],
        "kind": kind,
        "prefetchable": prefetchable,
        "size": region["size"],
        # QEMU says -1 when the BAR is not mapped (decoding off or never assigned)
        "address": None if region["address"] == -1 else region["address"],
    }


def ecam_base(machine: Machine) -> int | None:
    """Where the PCIe host's ECAM is mapped in guest-physical memory, if it is."""
    tree = machine.qmp("human-monitor-command", **{"command-line": "info mtree -f"})
    for start, _end, name in MTREE_RANGE.findall(tree):
        if name == ECAM_REGION:
            return int(start, 16)
    return None


def read_config_dword(machine: Machine, ecam: int, bus: int, device: int, function: int,
                      offset: int) -> int:
    """One config-space dword as QEMU's device model answers it (HMP `xp`, physical MMIO)."""
    address = ecam + (bus << ECAM_BUS_SHIFT | device << ECAM_DEVICE_SHIFT
                      | function << ECAM_FUNCTION_SHIFT | offset)
    text = machine.qmp("human-monitor-command", **{"command-line": f"xp /1wx {address:#x}"})
    match = XP_WORD.search(text)
    if match is None:
        raise ValueError(f"unexpected HMP xp output {text!r}")
    return int(match.group(1), 16)


def _add_config_bytes(machine: Machine, ecam: int | None, function: dict[str, Any]) -> None:
    if ecam is None:
        return
    dword = read_config_dword(machine, ecam, function["bus"], function["device_number"],
                              function["function"], REVISION_DWORD)
    function["revision"] = dword & 0xFF
    function["class"] = dword >> 8


# -- CPU models -------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuidWord:
    """One CPUID output register: leaf (EAX in), subleaf (ECX in, None when ignored)."""

    leaf: int
    subleaf: int | None
    register: str  # "EAX" | "EBX" | "ECX" | "EDX"


@dataclass(frozen=True)
class CpuidExpectation:
    """What CPUID should report for an x86 CPU model."""

    vendor: str  # leaf 0 EBX:EDX:ECX
    level: int  # leaf 0 EAX: highest basic leaf
    xlevel: int  # leaf 0x80000000 EAX: highest extended leaf
    model_id: str  # leaves 0x80000002-4: brand string
    family: int
    model: int
    stepping: int
    features: frozenset[str]  # QEMU feature names that are on

    @property
    def signature(self) -> int:
        """Leaf 1 EAX: family/model/stepping in the Intel/AMD encoding (SDM vol. 2A CPUID)."""
        base_family = min(self.family, 0xF)
        extended_family = self.family - 0xF if self.family > 0xF else 0
        return (extended_family << 20 | (self.model >> 4) << 16 | base_family << 8
                | (self.model & 0xF) << 4 | self.stepping)


def cpuid_expectation(props: dict[str, Any]) -> CpuidExpectation:
    """Derive the CPUID expectation from a full expansion's properties."""
    features = frozenset(name for name, value in props.items() if value is True)
    return CpuidExpectation(
        vendor=props["vendor"], level=props["level"], xlevel=props["xlevel"],
        model_id=props["model-id"], family=props["family"], model=props["model"],
        stepping=props["stepping"], features=features,
    )


def cpu_model_expansion(machine: Machine, model: str) -> dict[str, Any]:
    """QOM properties of CPU `model` as QEMU fully expands it (query-cpu-model-expansion).
    This is the model as defined: features the accelerator cannot provide are still on
    (see `unavailable_features`)."""
    result = machine.qmp("query-cpu-model-expansion", type="full", model={"name": model})
    return dict(result["model"]["props"])


def unavailable_features(machine: Machine, model: str) -> frozenset[str]:
    """Features of `model` this machine's accelerator cannot provide (TCG lacks some of
    Haswell's and EPYC's); QEMU drops them, so the guest never sees them."""
    for definition in machine.qmp("query-cpu-definitions"):
        if definition["name"] == model:
            return frozenset(definition.get("unavailable-features", []))
    raise ValueError(f"QEMU knows no CPU model {model!r} (see qemu-system-x86_64 -cpu help)")


def cpu_model_expectation(machine: Machine, model: str) -> CpuidExpectation:
    """What a guest on CPU `model` should see under this machine's accelerator."""
    expected = cpuid_expectation(cpu_model_expansion(machine, model))
    dropped = unavailable_features(machine, model)
    return dataclasses.replace(expected, features=expected.features - dropped)


def running_cpu_property(machine: Machine, name: str, cpu_index: int = 0) -> Any:
    """A QOM property of the running CPU object (e.g. "xlevel2", "feature-words")."""
    cpus = {cpu["cpu-index"]: cpu for cpu in machine.qmp("query-cpus-fast")}
    return machine.qmp("qom-get", path=cpus[cpu_index]["qom-path"], property=name)


def running_cpu_feature_words(machine: Machine, cpu_index: int = 0) -> dict[CpuidWord, int]:
    """The feature bits the running CPU's CPUID returns, per leaf/subleaf/register, from the
    CPU object's `feature-words` (after the accelerator's filtering).  Only feature bits:
    other bits of the same registers (e.g. OSXSAVE, APIC IDs) are not in it."""
    words = running_cpu_property(machine, "feature-words", cpu_index)
    return {
        CpuidWord(w["cpuid-input-eax"], w.get("cpuid-input-ecx"), w["cpuid-register"]):
            w["features"]
        for w in words
    }

