"""What CPUID results say about an x86 processor, computed as Linux and lscpu do."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from discovery.cpufeatures import flag_names

REGISTERS = ("eax", "ebx", "ecx", "edx")
HYPERVISOR_LEAF = 0x40000000
HYPERVISOR_BIT = 31  # CPUID 1 ECX

# lscpu's names for hypervisor signatures (CPUID 0x40000000 EBX:ECX:EDX).
HYPERVISOR_NAMES = {
    "KVMKVMKVM": "KVM", "Microsoft Hv": "Microsoft", "VMwareVMware": "VMware",
    "XenVMMXenVMM": "Xen", "TCGTCGTCGTCG": "TCG", " lrpepyh  vr": "Parallels",
    "bhyve bhyve ": "bhyve", "ACRNACRNACRN": "ACRN", "QNXQVMBSQG": "QNX",
}
CACHE_TYPES = {1: "Data", 2: "Instruction", 3: "Unified"}


@dataclass(frozen=True)
class CpuidResult:
    leaf: int
    subleaf: int
    eax: int
    ebx: int
    ecx: int
    edx: int

    def __getitem__(self, register: str) -> int:
        return getattr(self, register)

    def to_json(self) -> dict:
        return {"leaf": self.leaf, "subleaf": self.subleaf, "eax": self.eax,
                "ebx": self.ebx, "ecx": self.ecx, "edx": self.edx}


@dataclass(frozen=True)
class Cache:
    level: int
    type: str  # "Data" | "Instruction" | "Unified"
    size: int  # bytes
    ways: int
    line_size: int
    sets: int
    shared_by: int  # logical processors sharing it (CPUID's upper bound)

    @property
    def lscpu_name(self) -> str:
        suffix = {"Data": "d", "Instruction": "i"}.get(self.type, "")
        return f"L{self.level}{suffix}"


@dataclass
class CpuidTable:
    """The CPUID results of one logical CPU, indexed by (leaf, subleaf)."""

    results: list[CpuidResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index = {(r.leaf, r.subleaf): r for r in self.results}

    def __contains__(self, key: tuple[int, int]) -> bool:
        return key in self._index

    def add(self, result: CpuidResult) -> None:
        self.results.append(result)
        self._index[(result.leaf, result.subleaf)] = result

    def get(self, leaf: int, subleaf: int = 0) -> CpuidResult | None:
        """The result for (leaf, subleaf); None beyond the CPU's maximum leaf."""
        base = leaf & 0xFFFF0000
        top = self._index.get((base, 0))
        if leaf != base and top is not None and top.eax < leaf:
            return None
        return self._index.get((leaf, subleaf))

    def _string(self, leaf: int, registers: tuple[str, ...]) -> str:
        result = self.get(leaf)
        if result is None:
            return ""
        return b"".join(struct.pack("<I", result[r]) for r in registers).decode("latin-1")

    @property
    def vendor(self) -> str:
        return self._string(0, ("ebx", "edx", "ecx")).rstrip("\0")

    @property
    def brand(self) -> str:
        """The processor name string (0x80000002..4), stripped as Linux strips it."""
        text = "".join(self._string(leaf, REGISTERS)
                       for leaf in (0x80000002, 0x80000003, 0x80000004))
        return text.split("\0", 1)[0].strip()

    @property
    def _signature(self) -> int:
        result = self.get(1)
        return result.eax if result else 0

    @property
    def family(self) -> int:
        """Linux x86_family(): the extended family is added only to family 0xF."""
        family = self._signature >> 8 & 0xF
        if family == 0xF:
            family += self._signature >> 20 & 0xFF
        return family

    @property
    def model(self) -> int:
        """Linux x86_model(): the extended model counts from family 6 upwards."""
        model = self._signature >> 4 & 0xF
        if self.family >= 0x6:
            model += (self._signature >> 16 & 0xF) << 4
        return model

    @property
    def stepping(self) -> int:
        return self._signature & 0xF

    @property
    def flags(self) -> list[str]:
        """Linux's /proc/cpuinfo flags for these results (discovery/cpufeatures.py)."""
        return flag_names(self.get, self.vendor, self.family, self.model)

    @property
    def hypervisor_present(self) -> bool:
        result = self.get(1)
        return bool(result and result.ecx >> HYPERVISOR_BIT & 1)

    @property
    def hypervisor_signature(self) -> str | None:
        if not self.hypervisor_present:
            return None
        result = self._index.get((HYPERVISOR_LEAF, 0))  # its own range; no 0x40000000 max check
        if result is None:
            return None
        raw = b"".join(struct.pack("<I", result[r]) for r in ("ebx", "ecx", "edx"))
        return raw.decode("latin-1").rstrip("\0")

    @property
    def hypervisor_vendor(self) -> str | None:
        signature = self.hypervisor_signature
        if signature is None:
            return None
        return HYPERVISOR_NAMES.get(signature, signature.strip() or None)

    @property
    def address_sizes(self) -> tuple[int, int] | None:
        """(physical bits, virtual bits) from 0x80000008 EAX."""
        result = self.get(0x80000008)
        if result is None:
            return None
        return result.eax & 0xFF, result.eax >> 8 & 0xFF

    @property
    def logical_per_package(self) -> int:
        """CPUID's logical processor count for one package (the fallback CPU count)."""
        leaf1 = self.get(1)
        if leaf1 is None:
            return 1
        if leaf1.edx >> 28 & 1:  # HTT: EBX[23:16] is meaningful
            return max(1, leaf1.ebx >> 16 & 0xFF)
        return 1

    @property
    def caches(self) -> list[Cache]:
        """Deterministic cache parameters: leaf 4 (Intel), 0x8000001D (AMD)."""
        amd = self.vendor in ("AuthenticAMD", "HygonGenuine")
        leaf = 0x8000001D if amd and self.get(0x8000001D) else 4
        caches = []
        for subleaf in range(32):
            result = self.get(leaf, subleaf)
            if result is None or result.eax & 0x1F == 0:
                break
            ways = (result.ebx >> 22 & 0x3FF) + 1
            partitions = (result.ebx >> 12 & 0x3FF) + 1
            line = (result.ebx & 0xFFF) + 1
            sets = result.ecx + 1
            caches.append(Cache(
                level=result.eax >> 5 & 0x7,
                type=CACHE_TYPES.get(result.eax & 0x1F, "Unified"),
                size=ways * partitions * line * sets,
                ways=ways, line_size=line, sets=sets,
                shared_by=(result.eax >> 14 & 0xFFF) + 1,
            ))
        return caches
