"""The machine-mode CSRs the RISC-V guest uses, as data: the bit layouts of the
ones it writes (mstatus, mie, misa, mcounteren, the debug trigger mcontrol) and
the catalogue of CSRs each hart probes.

The catalogue:

Shared by guest and host: the guest reads every CSR below in this order (a
read that raises illegal-instruction means "absent"), and bit i of the HART
frame's `csrs` field is set when CATALOGUE[i] exists.  Append only: reordering
changes the meaning of old bitmaps.  At most 64 entries (one u64).
Numbers: RISC-V Privileged Architecture, "CSR Listing" tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.constants import ConstantSet, collect
from contract.layout import Bits, Register

# RISC-V Privileged Architecture 20211203, 3.1.6 "Machine Status Registers".
MSTATUS = Register("MSTATUS", (
    Bits("MIE", 3, meaning="machine interrupts enabled"),
    Bits("MPIE", 7, meaning="MIE before the trap; mret restores it"),
    Bits("VS", 9, 2, "vector state: 0 Off, 1 Initial, 2 Clean, 3 Dirty"),
    Bits("MPP", 11, 2, "privilege before the trap; mret returns to it"),
    Bits("FS", 13, 2, "floating-point state: 0 Off, 1 Initial, 2 Clean, 3 Dirty"),
    Bits("MPRV", 17, meaning="M-mode loads and stores use MPP's privilege (and PMP)"),
))
# 3.1.9 "Machine Interrupt Registers": bit i is interrupt cause i (contract/riscv64/causes.py).
MIE = Register("MIE", (Bits("MSIE", 3), Bits("MTIE", 7), Bits("MEIE", 11)))
# 3.1.1 "Machine ISA Register": a bit per extension letter, MXL in the top two bits.
MISA = Register("MISA", tuple(Bits(chr(ord("A") + i), i) for i in range(26))
                + (Bits("MXL", 62, 2, "1: 32-bit, 2: 64-bit, 3: 128-bit"),))
# 3.1.11 "Machine Counter-Enable Register": the counters the next mode down may read.
COUNTEREN = Register("COUNTEREN", (Bits("CY", 0), Bits("TM", 1), Bits("IR", 2)), width=32)
# RISC-V Debug Specification 0.13.2, 5.2.9 "Match Control" (tdata1 of a type 2 trigger).
MCONTROL = Register("MCONTROL", (
    Bits("LOAD", 0), Bits("STORE", 1), Bits("EXECUTE", 2), Bits("U", 3), Bits("S", 4),
    Bits("M", 6), Bits("MATCH", 7, 4, "0: address equal"), Bits("CHAIN", 11),
    Bits("ACTION", 12, 4, "0: raise a breakpoint exception"), Bits("TIMING", 18),
    Bits("SELECT", 19), Bits("DMODE", 59), Bits("TYPE", 60, 4, "2: address/data match"),
))


@dataclass(frozen=True)
class Csr:
    name: str
    number: int


CATALOGUE: tuple[Csr, ...] = tuple(Csr(n, v) for n, v in (
    # unprivileged: floating point, vector, counters
    ("fcsr", 0x003), ("vstart", 0x008), ("vcsr", 0x00F),
    ("cycle", 0xC00), ("time", 0xC01), ("instret", 0xC02), ("hpmcounter3", 0xC03),
    ("vl", 0xC20), ("vtype", 0xC21), ("vlenb", 0xC22),
    # supervisor
    ("sstatus", 0x100), ("sie", 0x104), ("stvec", 0x105), ("scounteren", 0x106),
    ("senvcfg", 0x10A), ("sscratch", 0x140), ("sepc", 0x141), ("scause", 0x142),
    ("stval", 0x143), ("sip", 0x144), ("stimecmp", 0x14D), ("satp", 0x180),
    # hypervisor
    ("vsstatus", 0x200), ("hstatus", 0x600), ("hgatp", 0x680),
    # machine
    ("mvendorid", 0xF11), ("marchid", 0xF12), ("mimpid", 0xF13), ("mhartid", 0xF14),
    ("mconfigptr", 0xF15), ("mstatus", 0x300), ("misa", 0x301), ("medeleg", 0x302),
    ("mideleg", 0x303), ("mie", 0x304), ("mtvec", 0x305), ("mcounteren", 0x306),
    ("menvcfg", 0x30A), ("mstatush", 0x310), ("mcountinhibit", 0x320),
    ("mhpmevent3", 0x323), ("mscratch", 0x340), ("mepc", 0x341), ("mcause", 0x342),
    ("mtval", 0x343), ("mip", 0x344), ("mtinst", 0x34A), ("mtval2", 0x34B),
    ("pmpcfg0", 0x3A0), ("pmpaddr0", 0x3B0), ("mseccfg", 0x747),
    ("tselect", 0x7A0), ("tdata1", 0x7A1), ("dcsr", 0x7B0),
    ("mcycle", 0xB00), ("minstret", 0xB02), ("mhpmcounter3", 0xB03),
))
assert len(CATALOGUE) <= 64, "the HART frame's csrs bitmap is one u64"


def csr_names(bitmap: int) -> list[str]:
    """The names of the CSRs whose bit is set in a HART frame's `csrs`."""
    return [csr.name for i, csr in enumerate(CATALOGUE) if bitmap >> i & 1]


def asm_constants() -> ConstantSet:
    return collect(__name__, MSTATUS, MIE, MISA, COUNTEREN, MCONTROL, {
        # FP and vector CSRs readable while the kernel probes them
        "MSTATUS_FS_VS_INITIAL": MSTATUS.pack(FS=1, VS=1),
        "COUNTEREN_CY_TM_IR": COUNTEREN.pack(CY=1, TM=1, IR=1),
        # an address-match trigger firing on execution in M- or U-mode, action 0
        # (a breakpoint exception, mepc = the address), match 0 (equal)
        "MCONTROL_TYPE2": MCONTROL.pack(TYPE=2),
        "MCONTROL_FIRE_ON_EXECUTE_MU": MCONTROL.pack(M=1, U=1, EXECUTE=1),
    })
