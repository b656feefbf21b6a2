"""The CSR catalogue: which control and status registers each hart probes.

Shared by guest and host: the guest reads every CSR below in this order (a
read that raises illegal-instruction means "absent"), and bit i of the HART
frame's `csrs` field is set when CATALOGUE[i] exists.  Append only: reordering
changes the meaning of old bitmaps.  At most 64 entries (one u64).
Numbers: RISC-V Privileged Architecture, "CSR Listing" tables.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def probe_source() -> str:
    """Assembly for `probe_csrs` (a0 <- bitmap), one `probe_csr` per entry; the
    macro lives in hart.s."""
    lines = [
        "# Generated from contract/riscv64/csrs.py: one probe per catalogue entry.",
        "# probe_csrs: out a0 = presence bitmap; clobbers t0, t1, t6.",
        "probe_csrs:",
        "    li a0, 0",
    ]
    lines += [f"    probe_csr {i}, {csr.number:#x}  # {csr.name}" for i, csr in enumerate(CATALOGUE)]
    lines.append("    ret")
    return "\n".join(lines) + "\n"
