"""The RISC-V probe command loop's records and fences, defined once.

After FINAL, a guest booted with the STAY switch (contract/boot_switches.py)
serves probes (contract/protocol.py PROBE_* messages; contract/probe_abi.py for
the probe's memory and registers).  This module holds what the kernel needs
beyond those two contracts: the layout of its slot and result-cache records,
the run-state block its trap handler uses, and the PMP entries that fence a
user probe in (contract/riscv64/memory_map.py places the records).

Scratch is kept zero cheaply: a user probe first sees scratch read-only except
for a small writable window at its base (PMP entry SCRATCH_WINDOW_ENTRY, NAPOT,
from SCRATCH_WINDOW_MIN).  A store beyond the window takes a store access
fault; the trap handler doubles the window until it covers the store and
resumes the probe.  After the run only the window is zeroed, so a probe that
wrote n bytes of scratch costs at most 2n bytes of clearing.  M-mode ignores
unlocked PMP entries, so a *privileged* probe runs with mstatus.MPRV set: its
loads and stores are checked as U-mode's, against the same entries (window
growth included), while its instructions keep M-mode's rights.
"""

from __future__ import annotations

from contract.constants import ConstantSet, collect
from contract.idle_poll import NS_PER_SECOND, STAY_IDLE_POLL_NS
from contract.layout import Bits, Record, Register
from contract.probe_abi import AREA, OUTPUT_SIZE, Perm
from contract.protocol import LAYOUTS, Msg
from contract.riscv64.probes import RISCV64_PROBES

# PMP (RISC-V Privileged Architecture 3.7, "Physical Memory Protection"): one
# pmpcfg byte per entry.
PMPCFG = Register("PMPCFG", (
    Bits("R", 0), Bits("W", 1), Bits("X", 2),
    Bits("A", 3, 2, "address matching: 0 off, 1 TOR, 2 NA4, 3 NAPOT"), Bits("L", 7),
), width=8)
PMP_NAPOT = 3
_PMP_PERMS = {Perm.R: "R", Perm.W: "W", Perm.X: "X"}


def _pmp_perms(perms: int) -> dict[str, int]:
    return {bit: 1 for p, bit in _PMP_PERMS.items() if perms & p}


# Entry order is priority order: the scratch window (RW) precedes the whole
# scratch area (R) so that it wins where both match.  (name, base, size, pmpcfg bits)
PMP_ENTRIES: tuple[tuple[str, int, int, dict[str, int]], ...] = tuple(
    (a.name, a.base(RISCV64_PROBES), a.size, _pmp_perms(a.perms))
    for a in (AREA["code"], AREA["exit"], AREA["input"], AREA["output"], AREA["stack"])
) + (
    ("scratch_window", AREA["scratch"].base(RISCV64_PROBES), 0x1000, {"R": 1, "W": 1}),
    ("scratch", AREA["scratch"].base(RISCV64_PROBES), AREA["scratch"].size, {"R": 1}),
)
SCRATCH_WINDOW_ENTRY = 5
SCRATCH_WINDOW_MIN = PMP_ENTRIES[SCRATCH_WINDOW_ENTRY][2]
if PMP_ENTRIES[SCRATCH_WINDOW_ENTRY][0] != "scratch_window" or len(PMP_ENTRIES) > 8:
    raise ValueError("PMP_ENTRIES: the scratch window must be entry SCRATCH_WINDOW_ENTRY, and "
                     "all entries must fit pmpcfg0 (RV64: entries 0-7)")


def napot_address(base: int, size: int) -> int:
    """pmpaddr for a naturally aligned power-of-two region of at least 8 bytes."""
    if size < 8 or size & (size - 1) or base & (size - 1):
        raise ValueError(f"{base:#x}+{size:#x} is not a naturally aligned power of two >= 8")
    return (base | (size // 2 - 1)) >> 2


def pmpcfg0() -> int:
    return sum(PMPCFG.pack(A=PMP_NAPOT, **perms) << (8 * i)
               for i, (_, _, _, perms) in enumerate(PMP_ENTRIES))


# Slot record: one loaded probe, its code and input after it.
SLOT = Record("SLOT", (("valid", "I"), ("privilege", "I"), ("budget", "I"), ("tag", "I"),
                       ("code_length", "I"), ("input_length", "I"), ("output_size", "I")))
SLOT_CODE = 0x100
SLOT_INPUT = SLOT_CODE + AREA["code"].size
SLOT_STRIDE_LOG2 = 15
# Result cache entry (direct-mapped on run_id mod PROBE_RESULT_CACHE: with run
# ids growing by one it holds exactly the last PROBE_RESULT_CACHE runs); the
# PROBE_RESULT body follows it.
CACHE = Record("CACHE", (("run_id", "I"), ("valid", "I"), ("length", "I"), ("_pad", "4x")))
CACHE_STRIDE_LOG2 = 13
# Run state: what the trap handler needs to get back to the kernel.  flags: the
# PROBE_RUN flags of the run under way; measuring: nonzero while the length
# triggers wait for the first instruction to finish.
RUN_STATE = Record("RUN_STATE", tuple((name, "Q") for name in (
    "ra", "sp", *(f"s{i}" for i in range(12)), "t0", "t1", "cycle_start", "instret_start",
    "cycle_end", "instret_end", "window", "flags", "measuring")))
# How long an idle staying guest polls before it sleeps in wfi (contract/idle_poll.py),
# as the divisor of the timebase the assembly has at hand.
IDLE_SPIN_PER_SECOND = NS_PER_SECOND // STAY_IDLE_POLL_NS

if SLOT.size > SLOT_CODE or SLOT_INPUT + AREA["input"].size > 1 << SLOT_STRIDE_LOG2:
    raise ValueError("a slot's record, code and input outgrow SLOT_STRIDE_LOG2")
if CACHE.size + LAYOUTS[Msg.PROBE_RESULT].size + OUTPUT_SIZE > 1 << CACHE_STRIDE_LOG2:
    raise ValueError("a cached result outgrows CACHE_STRIDE_LOG2")


def asm_constants() -> ConstantSet:
    consts = collect(__name__, PMPCFG, SLOT, CACHE, RUN_STATE, {
        "SLOT_CODE": SLOT_CODE, "SLOT_INPUT": SLOT_INPUT, "SLOT_STRIDE_LOG2": SLOT_STRIDE_LOG2,
        "CACHE_BODY": CACHE.size, "CACHE_STRIDE_LOG2": CACHE_STRIDE_LOG2,
        "PMPCFG0_PROBES": pmpcfg0(),
        "SCRATCH_WINDOW_MIN": SCRATCH_WINDOW_MIN,
        "SCRATCH_PMPADDR_BASE": AREA["scratch"].base(RISCV64_PROBES) >> 2,
        "IDLE_SPIN_PER_SECOND": IDLE_SPIN_PER_SECOND,
    })
    consts.add(__name__, {f"PMPADDR{i}_PROBES": napot_address(base, size)
                          for i, (_, base, size, _) in enumerate(PMP_ENTRIES)})
    return consts
