"""Raw discovery data written in the formats of standard tools, so they can read it.

    lspci.txt     config spaces as `lspci -xxx` (-xxxx for 4 KiB) prints them;
                  read back with `lspci -F lspci.txt -nn`.
    cpuid/        CPUID in hwloc-gather-cpuid's layout (one pu<N> per logical CPU
                  plus hwloc-cpuid-info); read back with
                  `HWLOC_CPUID_PATH=cpuid HWLOC_COMPONENTS=x86,-linux lstopo`.
    acpi/         every ACPI table as <SIG>.dat (and rsdp.dat), as acpidump -b does.
"""

from __future__ import annotations

import os
from pathlib import Path

from discovery.cpuid import CpuidResult

LSPCI_FILE = "lspci.txt"
CPUID_DIR = "cpuid"
ACPI_DIR = "acpi"
HWLOC_SUMMARY = "hwloc-cpuid-info"

# Leaves whose result depends on ECX (hwloc-gather-cpuid records them with input
# mask 0x5 = EAX and ECX); all others are matched on EAX alone (mask 0x1).
SUBLEAF_LEAVES = {0x4, 0x7, 0xB, 0xD, 0xF, 0x10, 0x12, 0x14, 0x17, 0x18, 0x1B, 0x1D, 0x1E,
                  0x1F, 0x20, 0x23, 0x24, 0x8000001D, 0x80000020, 0x80000026}
CACHE_LEAVES = {0x4, 0x8000001D}  # enumeration ends at the first subleaf of type 0
TOPOLOGY_LEAVES = {0xB, 0x1F}  # enumeration ends at the first all-zero subleaf


def lspci_text(functions) -> str:
    """Config spaces in `lspci -xxx` form: a 'bdf description' line, then rows of
    16 bytes prefixed by their offset; a blank line between functions."""
    blocks = []
    for f in functions:
        domain = f"{f.segment:04x}:" if f.segment else ""
        lines = [f"{domain}{f.bus:02x}:{f.device:02x}.{f.function:x} "
                 f"Class {f.class_code >> 8:04x}: {f.vendor:04x}:{f.device_id:04x}"]
        for offset in range(0, len(f.config) - len(f.config) % 16, 16):
            row = " ".join(f"{b:02x}" for b in f.config[offset : offset + 16])
            lines.append(f"{offset:02x}: {row}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _cpuid_rows(results: list[CpuidResult]) -> list[CpuidResult]:
    """The results in leaf order, with the end-of-list subleaf added where the
    guest stopped at the last valid one (hwloc reads until it finds it)."""
    rows = sorted(results, key=lambda r: (r.leaf, r.subleaf))
    for leaf in CACHE_LEAVES | TOPOLOGY_LEAVES:
        subleaves = [r for r in rows if r.leaf == leaf]
        if not subleaves:
            continue
        last = subleaves[-1]
        ended = ((last.eax & 0x1F == 0) if leaf in CACHE_LEAVES
                 else (last.eax == 0 and last.ebx == 0))
        if not ended:
            rows.append(CpuidResult(leaf, last.subleaf + 1, 0, 0,
                                    last.subleaf + 1 if leaf in TOPOLOGY_LEAVES else 0, 0))
    return sorted(rows, key=lambda r: (r.leaf, r.subleaf))


def _for_cpu(result: CpuidResult, apic_id: int) -> CpuidResult:
    """The boot CPU's result as logical CPU `apic_id` would return it: only the
    fields holding the CPU's own APIC ID differ between the CPUs of one model."""
    r = result
    if r.leaf == 0x1:
        return CpuidResult(r.leaf, r.subleaf, r.eax, (r.ebx & 0x00FFFFFF) | (apic_id & 0xFF) << 24,
                           r.ecx, r.edx)
    if r.leaf in TOPOLOGY_LEAVES:
        return CpuidResult(r.leaf, r.subleaf, r.eax, r.ebx, r.ecx, apic_id)
    if r.leaf == 0x8000001E:
        return CpuidResult(r.leaf, r.subleaf, apic_id, r.ebx, r.ecx, r.edx)
    return r


def hwloc_cpuid_text(results: list[CpuidResult], apic_id: int) -> str:
    lines = ["# mask e[abcd]x => e[abcd]x"]
    for r in _cpuid_rows(results):
        r = _for_cpu(r, apic_id)
        if r.leaf in SUBLEAF_LEAVES:
            lines.append(f"5 {r.leaf:x} 0 {r.subleaf:x} 0 => "
                         f"{r.eax:x} {r.ebx:x} {r.ecx:x} {r.edx:x}")
        elif r.subleaf == 0:
            lines.append(f"1 {r.leaf:x} 0 0 0 => {r.eax:x} {r.ebx:x} {r.ecx:x} {r.edx:x}")
    return "\n".join(lines) + "\n"


def read_cpuid_dump(path: str | os.PathLike) -> list[CpuidResult]:
    """Results from one hwloc-gather-cpuid `pu<N>` file (the inverse of the writer)."""
    results = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("#") or "=>" not in line:
            continue
        inputs, outputs = line.split("=>")
        mask, eax, _ebx, ecx, _edx = (int(x, 16) for x in inputs.split())
        out = [int(x, 16) for x in outputs.split()]
        results.append(CpuidResult(eax, ecx if mask & 0x4 else 0, *out))
    return results


def write_cpuid_dir(results: list[CpuidResult], apic_ids: list[int], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for index, apic_id in enumerate(apic_ids):
        (directory / f"pu{index}").write_text(hwloc_cpuid_text(results, apic_id))
    (directory / HWLOC_SUMMARY).write_text("Architecture: x86\n")


def write_dump_dir(inventory, directory: str | os.PathLike) -> Path:
    """Write every raw dump this inventory has into `directory` (created)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if inventory.pci:
        (out / LSPCI_FILE).write_text(lspci_text(inventory.pci))
    table = getattr(inventory.cpu, "table", None)
    if table is not None and table.results:
        apic_ids = (getattr(inventory.cpu, "apic_ids", None)
                    or [table.get(1).ebx >> 24 if table.get(1) else 0])
        write_cpuid_dir(table.results, apic_ids, out / CPUID_DIR)
    if inventory.acpi_tables or inventory.rsdp:
        acpi = out / ACPI_DIR
        acpi.mkdir(exist_ok=True)
        if inventory.rsdp is not None:
            (acpi / "rsdp.dat").write_bytes(inventory.rsdp.data)
        seen: dict[str, int] = {}
        for t in inventory.acpi_tables:
            try:
                signature = t.signature
            except ValueError:
                continue
            safe = "".join(c if c.isalnum() else "_" for c in signature)
            n = seen.get(safe, 0)
            seen[safe] = n + 1
            (acpi / f"{safe.lower()}{n if n else ''}.dat").write_bytes(t.data)
    return out
