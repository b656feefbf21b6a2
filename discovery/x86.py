"""The x86-64 CPU section of an inventory: CPUID of the boot CPU plus the MADT."""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.frames import Frame
from contract.protocol import Msg
from discovery.cpuid import CpuidResult, CpuidTable


def lscpu_size(n: int) -> str:
    """A byte count the way lscpu prints cache sizes: 48 KiB, 2 MiB."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


@dataclass
class X86Cpu:
    """CPU section for arch "x86_64" (see inventory.CpuSection)."""

    table: CpuidTable = field(default_factory=CpuidTable)
    madt_count: int | None = None
    apic_ids: list[int] = field(default_factory=list)

    def accept(self, frame: Frame) -> bool:
        if frame.type != Msg.CPUID:
            return False
        fields, _ = frame.fields()
        if (fields["leaf"], fields["subleaf"]) not in self.table:  # first answer wins
            self.table.add(CpuidResult(**fields))
        return True

    def finish(self, inventory) -> None:
        madt = inventory.madt
        if madt is not None:
            self.madt_count = madt.cpu_count
            self.apic_ids = madt.apic_ids

    @property
    def count(self) -> int:
        """Logical CPUs: the MADT's usable processors, else CPUID's per-package count."""
        if self.madt_count:
            return self.madt_count
        return self.table.logical_per_package

    def to_json(self) -> dict:
        t = self.table
        return {
            "vendor": t.vendor, "brand": t.brand, "family": t.family, "model": t.model,
            "stepping": t.stepping, "count": self.count, "flags": t.flags,
            "cpuid": [r.to_json() for r in t.results],
        }

    def extra_json(self) -> dict:
        return {}

    def summary(self) -> list[tuple[str, str]]:
        """lscpu's rows, in lscpu's order and wording."""
        t = self.table
        rows = [("Architecture", "x86_64")]
        sizes = t.address_sizes
        if sizes:
            rows.append(("Address sizes", f"{sizes[0]} bits physical, {sizes[1]} bits virtual"))
        rows += [
            ("CPU(s)", str(self.count)),
            ("Vendor ID", t.vendor),
            ("Model name", t.brand or "-"),
            ("CPU family", str(t.family)),
            ("Model", str(t.model)),
            ("Stepping", str(t.stepping)),
        ]
        if t.hypervisor_vendor:
            rows.append(("Hypervisor vendor", t.hypervisor_vendor))
        for cache in t.caches:
            rows.append((f"{cache.lscpu_name} cache",
                         f"{lscpu_size(cache.size)} ({cache.ways}-way, {cache.line_size} B lines,"
                         f" shared by {cache.shared_by})"))
        rows.append(("Flags", " ".join(t.flags)))
        return rows
