"""The x86-64 probe environment as data: the page mapping of the probe region,
derived from contract/probe_abi.py and the memory map, as generated tables.

The probe region is mapped with 4 KiB pages so every page has its own
permissions and dirty bit.  Writable areas (output, stack, scratch) map
identity; the read-only ones (code, exit, input) map kernel-owned backing
frames, which the kernel fills through its own supervisor identity mapping, so
no page a probe can execute or read is ever writable through the probe's view
(CR0.WP stays on, for privileged probes too).  Everything else in the region
is left unmapped, a guard around each area.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.constants import ConstantSet, collect
from contract.layout import Record
from contract.probe_abi import AREA, AREAS, PROBE_REGION_SIZE, Perm
from contract.x86_64 import memory_map as layout
from contract.x86_64.cpu import IDT_GATE_FLAGS, PAGE_ENTRY, PAGE_TABLE_SIZE
from contract.x86_64.probes import X86_64_PROBES
from contract.x86_64.timers import LAPIC_BASE
from kernel.x86_64.asmdata import data_source

TRAP_IST = 1  # every gate switches to the trap stack, ring 0 and ring 3 alike

LARGE_PAGE = 2 << 20
_USER_TABLE = PAGE_ENTRY.pack(PRESENT=1, WRITABLE=1, USER=1)
# The kernel page the ring-3 FPU reset runs from (probe_run.s, fpu_reset_in_ring3),
# mapped read/execute for ring 3 only during that trip, in the guard after the code.
FPU_RESET_VIRTUAL = AREA["code"].end(X86_64_PROBES)
FPU_RESET_PAGE_FLAGS = PAGE_ENTRY.pack(PRESENT=1, USER=1)


# The tables source() writes, as probe_env.s and probe_run.s walk them.
PROBE_PAGE_RUN = Record("PROBE_PAGE_RUN", (("virtual", "Q"), ("count", "Q"), ("first_entry", "Q"),
                                           ("entry_address", "Q"), ("directory_entry", "Q")))
PROBE_DIRECTORY = Record("PROBE_DIRECTORY", (("address", "Q"), ("value", "Q")))


@dataclass(frozen=True)
class PageRun:
    """Consecutive 4 KiB pages of one area inside one page table."""

    virtual: int
    count: int
    first_entry: int  # PTE of the first page; the next ones add PAGE_SIZE
    entry_address: int  # where the first PTE lives
    directory_entry: int  # address of the PDE above it (its ACCESSED bit gates the dirty scan)


def directory_entry_address(virtual: int) -> int:
    """Address of the boot page-directory entry mapping `virtual` (first IDENTITY_MAP_GIB GiB)."""
    return layout.PAGE_DIRECTORIES + (virtual >> 30) * PAGE_TABLE_SIZE + ((virtual >> 21) & 511) * 8


def _backing(area_name: str) -> int | None:
    return {"code": layout.PROBE_CODE_BACKING, "exit": layout.PROBE_EXIT_BACKING,
            "input": layout.PROBE_INPUT_BACKING}.get(area_name)


def page_runs() -> tuple[list[PageRun], dict[int, int]]:
    """The PTE runs and the value of each PDE of the probe region (0 = guard)."""
    base = X86_64_PROBES.region_base
    chunks = range(base, base + PROBE_REGION_SIZE, LARGE_PAGE)
    tables: dict[int, int] = {}
    runs: list[PageRun] = []
    for area in AREAS:
        writable = bool(area.perms & Perm.W)
        backing = _backing(area.name)
        if writable == (backing is not None):
            raise ValueError(f"area {area.name}: writable areas map identity, read-only ones "
                             "a backing frame: update _backing()")
        flags = PAGE_ENTRY.pack(PRESENT=1, USER=1, WRITABLE=int(writable),
                                 NO_EXECUTE=int(not area.perms & Perm.X))
        start = area.base(X86_64_PROBES)
        for chunk in range(start - start % LARGE_PAGE, area.end(X86_64_PROBES), LARGE_PAGE):
            first, end = max(start, chunk), min(area.end(X86_64_PROBES), chunk + LARGE_PAGE)
            next_table = layout.PROBE_PAGE_TABLES + len(tables) * PAGE_TABLE_SIZE
            table = tables.setdefault(chunk, next_table)
            physical = first if backing is None else backing + (first - start)
            runs.append(PageRun(first, (end - first) // layout.PAGE_SIZE, physical | flags,
                                table + ((first >> 12) & 511) * 8, directory_entry_address(first)))
    if len(tables) > layout.PROBE_PAGE_TABLES_MAX:
        raise ValueError(f"the probe region needs {len(tables)} page tables; raise "
                         "PROBE_PAGE_TABLES_MAX in contract/x86_64/memory_map.py")
    directory = {directory_entry_address(c): (tables[c] | _USER_TABLE if c in tables else 0)
                 for c in chunks}
    return runs, directory


def guard_page_entry(virtual: int) -> int:
    """Address of the PTE of `virtual`, a guard page of the probe region that shares its
    page table with some area (so the entry exists and is 0 until the kernel writes it)."""
    if virtual % layout.PAGE_SIZE or any(a.base(X86_64_PROBES) <= virtual < a.end(X86_64_PROBES)
                                         for a in AREAS):
        raise ValueError(f"{virtual:#x} is not a guard page of the probe region: "
                         "move FPU_RESET_VIRTUAL")
    runs, _ = page_runs()
    chunk = virtual - virtual % LARGE_PAGE
    tables = {r.entry_address & ~0xFFF for r in runs if r.virtual - r.virtual % LARGE_PAGE == chunk}
    if not tables:
        raise ValueError(f"no probe page table covers {virtual:#x}: move FPU_RESET_VIRTUAL")
    return tables.pop() + ((virtual >> 12) & 511) * 8


_ORIGIN = "kernel/x86_64/probe_env.py (page_runs)"


def source() -> str:
    """The run and directory tables probe_env.s walks, as assembly data."""
    runs, directory = page_runs()
    run_values = [getattr(r, name) for r in runs for name in PROBE_PAGE_RUN.names]
    return (".align 8\n"
            + data_source(_ORIGIN, "probe_page_runs", 8, run_values,
                          per_line=len(PROBE_PAGE_RUN.names))
            + data_source(_ORIGIN, "probe_directory", 8,
                          [v for item in directory.items() for v in item],
                          per_line=len(PROBE_DIRECTORY.names)))


def asm_constants() -> ConstantSet:
    runs, directory = page_runs()
    consts = {
        "TRAP_IST": TRAP_IST,
        "IDT_GATE_DPL_RING3": IDT_GATE_FLAGS.pack(DPL=3),
        "PROBE_PAGE_RUNS": len(runs),
        "PROBE_DIRECTORY_ENTRIES": len(directory),
        "PROBE_PAGE_TABLES_USED_SIZE":
            len({r.entry_address & ~0xFFF for r in runs}) * PAGE_TABLE_SIZE,
        "USER_TABLE_FLAGS": _USER_TABLE,
        "LAPIC_DIRECTORY_ENTRY": directory_entry_address(LAPIC_BASE),
        "FPU_RESET_VIRTUAL": FPU_RESET_VIRTUAL,
        "FPU_RESET_ENTRY": guard_page_entry(FPU_RESET_VIRTUAL),
        "FPU_RESET_PAGE_FLAGS": FPU_RESET_PAGE_FLAGS,
    }
    return collect(__name__, consts, PROBE_PAGE_RUN, PROBE_DIRECTORY)
