"""What QEMU itself says the machine is, to check what the guest discovered.

PCI comes from QMP `query-pci`, normalised to the inventory's shape
(discovery/pci.py `PciFunction.to_json`).  QEMU 7.2's query-pci has no revision and
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
`linux_flags` names a model's features as Linux's /proc/cpuinfo does: QEMU's
names for CPUID bits (target/i386/cpu.c feature_word_info, listed by
`-cpu help`) are mostly Linux's with '-' for '_'; each exception is below.

Query a running guest after its firmware is done (x86: once the first serial
byte arrived), and pause it (`machine.qmp("stop")`) if it may be probing BARs,
since QEMU reports a BAR with decoding off as unmapped.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from dataclasses import dataclass
from typing import Any

from contract.pci import ECAM_BUS_SHIFT, ECAM_DEVICE_SHIFT, ECAM_FUNCTION_SHIFT, REVISION
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


# -- QEMU's feature names as Linux's /proc/cpuinfo flags ----------------------------------
# QEMU names a CPUID bit in target/i386/cpu.c (feature_word_info); Linux in
# arch/x86/include/asm/cpufeatures.h.  Most differ only by '-' or '.' for '_'.

QEMU_TO_LINUX: dict[str, str] = {
    "ds": "dts",  # CPUID 1 EDX[21], Debug Store
    "tsc-deadline": "tsc_deadline_timer",  # 1 ECX[24]
    "cr8legacy": "cr8_legacy",  # 0x8000_0001 ECX[4]
    "pause-filter": "pausefilter",  # 0x8000_000A EDX[10]
    "avx512vbmi2": "avx512_vbmi2",  # 7.0 ECX[6]
    "avx512vnni": "avx512_vnni",  # 7.0 ECX[11]
    "avx512bitalg": "avx512_bitalg",  # 7.0 ECX[12]
    "sgxlc": "sgx_lc",  # 7.0 ECX[30]
    "tsx-ldtrk": "tsxldtrk",  # 7.0 EDX[16]
    "xstore": "rng", "xstore-en": "rng_en",  # 0xC000_0001 EDX[2,3]
    "xcrypt": "ace", "xcrypt-en": "ace_en",  # 0xC000_0001 EDX[6,7]
}

# QEMU features Linux shows no flag for, and why.  Where QEMU's name equals one of
# Linux's synthetic flags (ibpb, ibrs, stibp, ssbd), that Linux flag is not this bit.
_NOT_SHOWN_BY_LINUX: dict[str, tuple[str, ...]] = {
    "a CPUID bit Linux keeps unnamed (no quoted name in cpufeatures.h)": (
        "fdp-excptn-only", "zero-fcs-fds", "spec-ctrl", "stibp", "ssbd", "core-capability",
        "pks", "xfd", "svme-addr-chk", "ibpb", "ibrs", "amd-stibp", "stibp-always-on",
        "amd-ssbd", "amd-no-ssb", "amd-psfd", "sha512", "sm3", "sm4", "cmpccxadd", "fzrm",
        "fsrs", "fsrc", "lkgs", "wrmsrns", "amx-fp16", "avx-ifma", "no-nested-data-bp",
        "lfence-always-serializing", "null-sel-clr-base", "auto-ibrs", "eraps", "sbpb",
        "ibpb-brtype", "srso-no", "srso-user-kernel-no", "sgx1", "sgx2", "sgx-edeccssa",
    ),
    "a CPUID bit Linux does not read (7.1 EDX, 7.2 EDX, 0x24, 0x14, 0x12 attributes)": (
        "avx-vnni-int8", "avx-ne-convert", "amx-complex", "avx-vnni-int16", "prefetchiti",
        "avx10", "intel-psfd", "ipred-ctrl", "rrsba-ctrl", "ddpd-u", "bhi-ctrl", "mcdt-no",
        "avx10-128", "avx10-256", "avx10-512", "intel-pt-lip", "sgx-exinfo", "sgx-debug",
        "sgx-mode64", "sgx-provisionkey", "sgx-tokenkey", "sgx-kss", "sgx-aex-notify",
    ),
    "Linux derives constant_tsc and nonstop_tsc from it (synthetic flags)": ("invtsc",),
    "removed from the architecture, and from Linux (PCOMMIT)": ("pcommit",),
    "an MSR bit (IA32_ARCH_CAPABILITIES, CORE_CAPABILITY, PERF_CAPABILITIES), not CPUID": (
        "rdctl-no", "ibrs-all", "rsba", "skip-l1dfl-vmentry", "ssb-no", "mds-no",
        "pschange-mc-no", "tsx-ctrl", "taa-no", "sbdr-ssdp-no", "fbsdp-no", "psdp-no",
        "fb-clear", "bhi-no", "pbrsb-no", "gds-no", "rfds-no", "rfds-clear",
        "split-lock-detect", "full-width-write",
    ),
}
NOT_SHOWN_BY_LINUX: dict[str, str] = {
    name: why for why, names in _NOT_SHOWN_BY_LINUX.items() for name in names}
# Whole families: KVM's paravirtual leaf 0x4000_0001 and the VMX capability MSRs.
NOT_SHOWN_PREFIXES = {"kvm": "a KVM paravirtual feature (leaf 0x4000_0001), not a CPU flag",
                      "vmx-": "a VMX capability MSR bit (Linux's word 8 is its own)"}


def linux_flag(qemu_name: str) -> str | None:
    """Linux's /proc/cpuinfo name for the CPUID bit QEMU calls `qemu_name`; None when
    Linux shows none for it (NOT_SHOWN_BY_LINUX, NOT_SHOWN_PREFIXES say why)."""
    if qemu_name in NOT_SHOWN_BY_LINUX or qemu_name.startswith(tuple(NOT_SHOWN_PREFIXES)):
        return None
    return QEMU_TO_LINUX.get(qemu_name, qemu_name.replace("-", "_").replace(".", "_"))


def recognized_cpuid_flags(binary: str) -> frozenset[str]:
    """QEMU's canonical feature names (`-cpu help`, "Recognized CPUID flags"): the
    properties of a CPU model that are feature bits, without aliases (sse3, i64...)."""
    help_text = subprocess.run([binary, "-cpu", "help"], capture_output=True, text=True,
                               check=True).stdout
    _, found, names = help_text.partition("Recognized CPUID flags:")
    if not found:
        raise ValueError(f"{binary} -cpu help lists no CPUID flags: is it qemu-system-x86_64?")
    return frozenset(names.split())


def linux_flags(expected: CpuidExpectation, recognized: frozenset[str]) -> frozenset[str]:
    """The /proc/cpuinfo flags a CPU model's feature bits stand for (no vendor rules)."""
    names = (linux_flag(name) for name in expected.features & recognized)
    return frozenset(name for name in names if name is not None)
