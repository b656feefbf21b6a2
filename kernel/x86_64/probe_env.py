"""The x86-64 probe environment as data: vectors, kernel records, and the page
mapping of the probe region, all derived from contract/probe_abi.py and the memory map.

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

from contract.x86_64 import memory_map as layout
from contract.protocol import LAYOUTS, PRIVILEGED_FW_CFG_FILE, PROBE_RESULT_CACHE, Layout, Msg
from kernel.x86_64.asmdata import data_source
from contract.x86_64.cpu import EXCEPTION_VECTORS, IDT_GATE_FLAGS, PAGE_ENTRY, PAGE_TABLE_SIZE
from contract.x86_64.timers import LAPIC_BASE, PIC_LINES, PIC_MASTER_VECTOR, PIC_SLAVE_VECTOR
from contract.probe_abi import AREA, AREAS, PROBE_REGION_SIZE, X86_64_PROBES, Perm

WATCHDOG_VECTOR = 0x40  # the LAPIC timer: above the 32 exception vectors
SPURIOUS_VECTOR = 0xFF  # low nibble 0xF, as older APICs require
TRAP_IST = 1  # every gate switches to the trap stack, ring 0 and ring 3 alike
# Gates ring 3 may raise with `int3` / `int 4` (DPL 3, as every OS sets them), so a
# probe's breakpoint is #BP, not #GP; every other `int N` from ring 3 is #GP(N*8+2).
BREAKPOINT_VECTOR, OVERFLOW_VECTOR = 3, 4

# One slot's record in the slot table (code and input live in the slot store).
SLOT = Layout("SLOT", (("tag", "I"), ("budget", "I"), ("code_length", "H"), ("input_length", "H"),
                       ("output_size", "H"), ("privilege", "B"), ("loaded", "B")))
# The probe state page (layout.PROBE_STATE): the current run, zeroed before each
# run from `status` to the end; then the environment; then the clean FPU image.
RUN = Layout("RUN", (("status", "Q"), ("fault_vector", "Q"), ("fault_error", "Q"),
                     ("fault_ip", "Q"), ("fault_address", "Q"), ("cycles", "Q"), ("instret", "Q"),
                     ("outcome", "I"), ("length", "I")))
ENV = Layout("ENV", (("kernel_rsp", "Q"), ("placed_code_length", "I"), ("placed_input_length", "I"),
                     ("tsc_start", "Q"), ("instret_start", "Q"),
                     ("xcr0", "Q"), ("page_entry_mask", "Q"), ("ticks_per_window", "Q"),
                     ("idle_spin_tsc", "Q"),
                     ("active", "B"), ("measuring", "B"), ("privileged_allowed", "B"),
                     ("pmu_present", "B"), ("xsave_enabled", "B"), ("_pad", "3x"),
                     ("code_slot", "I"), ("runs", "I"), ("faults", "I"), ("timeouts", "I"),
                     ("last_run_id", "I"), ("bad_frames", "I")))
ENV_OFFSET = 0x100
FPU_CLEAN_OFFSET = 0x400  # 64-byte aligned for xrstor
# The head of one result-cache entry; the PROBE_RESULT body follows it.
CACHE_ENTRY = Layout("CACHE", (("run_id", "I"), ("valid", "I"), ("length", "I"), ("_pad", "4x")))

LARGE_PAGE = 2 << 20
_USER_TABLE = PAGE_ENTRY.value(PRESENT=1, WRITABLE=1, USER=1)
# The kernel page the ring-3 FPU reset runs from (probe_run.s, fpu_reset_in_ring3),
# mapped read/execute for ring 3 only during that trip, in the guard after the code.
FPU_RESET_VIRTUAL = AREA["code"].end(X86_64_PROBES)
FPU_RESET_PAGE_FLAGS = PAGE_ENTRY.value(PRESENT=1, USER=1)


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
        flags = PAGE_ENTRY.value(PRESENT=1, USER=1, WRITABLE=int(writable),
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
    run_values = [v for r in runs for v in (r.virtual, r.count, r.first_entry, r.entry_address,
                                            r.directory_entry)]
    return (".align 8\n"
            + data_source(_ORIGIN, "probe_page_runs", 8, run_values, per_line=5)
            + data_source(_ORIGIN, "probe_directory", 8,
                          [v for item in directory.items() for v in item], per_line=2))


def asm_constants() -> dict[str, int]:
    runs, directory = page_runs()
    consts = {
        "WATCHDOG_VECTOR": WATCHDOG_VECTOR,
        "SPURIOUS_VECTOR": SPURIOUS_VECTOR,
        "TRAP_IST": TRAP_IST,
        "BREAKPOINT_VECTOR": BREAKPOINT_VECTOR,
        "OVERFLOW_VECTOR": OVERFLOW_VECTOR,
        "IDT_GATE_DPL_RING3": IDT_GATE_FLAGS.value(DPL=3),
        "PROBE_PAGE_RUNS": len(runs),
        "PROBE_PAGE_RUN_SIZE": 5 * 8,
        "PROBE_DIRECTORY_ENTRIES": len(directory),
        "PROBE_PAGE_TABLES_USED_SIZE":
            len({r.entry_address & ~0xFFF for r in runs}) * PAGE_TABLE_SIZE,
        "USER_TABLE_FLAGS": _USER_TABLE,
        "LAPIC_DIRECTORY_ENTRY": directory_entry_address(LAPIC_BASE),
        "FPU_RESET_VIRTUAL": FPU_RESET_VIRTUAL,
        "FPU_RESET_ENTRY": guard_page_entry(FPU_RESET_VIRTUAL),
        "FPU_RESET_PAGE_FLAGS": FPU_RESET_PAGE_FLAGS,
        "SLOT_SIZE": SLOT.size,
        "CACHE_ENTRY_SIZE": CACHE_ENTRY.size,
    }
    pic_vectors = set(range(PIC_MASTER_VECTOR, PIC_MASTER_VECTOR + PIC_LINES)) | set(
        range(PIC_SLAVE_VECTOR, PIC_SLAVE_VECTOR + PIC_LINES))
    if min(pic_vectors) < EXCEPTION_VECTORS or pic_vectors & {WATCHDOG_VECTOR, SPURIOUS_VECTOR}:
        raise ValueError("the 8259 vectors overlap an exception, WATCHDOG_VECTOR or "
                         "SPURIOUS_VECTOR: move PIC_MASTER_VECTOR / PIC_SLAVE_VECTOR in hw/timers.py")
    if SLOT.size != layout.SLOT_RECORD_SIZE or CACHE_ENTRY.size != layout.RESULT_CACHE_HEADER:
        raise ValueError("slot / cache records changed size: update contract/x86_64/memory_map.py")
    for record in (SLOT, CACHE_ENTRY):
        consts.update({f"{record.name}_{f.upper()}": o for f, o in record.offsets().items()})
    for record, at in ((RUN, layout.PROBE_STATE), (ENV, layout.PROBE_STATE + ENV_OFFSET)):
        consts.update({f"{record.name}_{f.upper()}": at + o for f, o in record.offsets().items()})
    consts["RUN_RECORD_SIZE"] = RUN.size
    consts["RUN_COPIED_QWORDS"] = len(_RESULT_QWORDS)
    _check_result_matches_run()
    consts["FPU_CLEAN"] = layout.PROBE_STATE + FPU_CLEAN_OFFSET
    if RUN.size > ENV_OFFSET or ENV_OFFSET + ENV.size > FPU_CLEAN_OFFSET:
        raise ValueError("probe state records overlap: move ENV_OFFSET / FPU_CLEAN_OFFSET")
    return consts


# PROBE_RESULT's 64-bit fields, in the order the RUN record holds them too, so the
# kernel copies them in one go.
_RESULT_QWORDS = ("status", "fault_vector", "fault_error", "fault_ip", "fault_address", "cycles",
                  "instret")


def _check_result_matches_run() -> None:
    result, run = LAYOUTS[Msg.PROBE_RESULT].offsets(), RUN.offsets()
    for index, name in enumerate(_RESULT_QWORDS):
        if result[name] - result["status"] != 8 * index or run[name] != 8 * index:
            raise ValueError(f"PROBE_RESULT / RUN field {name} moved: "
                             "fix kernel/x86_64/probe_command.s (result_body)")
    if PROBE_RESULT_CACHE & (PROBE_RESULT_CACHE - 1):
        raise ValueError("PROBE_RESULT_CACHE must be a power of two: "
                         "the kernel indexes its cache by run_id bits")
