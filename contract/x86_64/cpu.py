"""x86-64 CPU structures as data: control registers, EFER, paging entries,
GDT descriptors, IDT gates, the exceptions that push an error code, and the
CPUID bits the boot stage tests.  (Intel SDM vol. 3A ch. 2-6; AMD APM vol. 2.)"""

from __future__ import annotations

from contract.bits import Field, Register
from contract.x86_64 import memory_map as layout

CR0 = Register("CR0", (
    Field("PE", 0, meaning="protected mode enable"),
    Field("MP", 1, meaning="monitor coprocessor: wait/fwait honour TS"),
    Field("EM", 2, meaning="emulate x87: every x87/SSE instruction raises #NM"),
    Field("TS", 3, meaning="task switched: the next x87/SSE instruction raises #NM"),
    Field("NE", 5, meaning="native x87 error reporting (#MF instead of IRQ 13)"),
    Field("WP", 16, meaning="ring 0 honours read-only pages"),
    Field("AM", 18, meaning="alignment mask: ring 3 with RFLAGS.AC gets #AC"),
    Field("PG", 31, meaning="paging enable"),
))
CR4 = Register("CR4", (
    Field("PAE", 5, meaning="physical address extension (required for long mode)"),
    Field("OSFXSR", 9, meaning="SSE enabled, fxsave/fxrstor save SSE state"),
    Field("OSXMMEXCPT", 10, meaning="unmasked SSE exceptions raise #XM"),
    Field("OSXSAVE", 18, meaning="xsave/xgetbv enabled (needed for AVX)"),
))
EFER = Register("EFER", (
    Field("SCE", 0, meaning="syscall/sysret enabled"),
    Field("LME", 8, meaning="long mode enable (takes effect when CR0.PG is set)"),
    Field("NXE", 11, meaning="bit 63 of paging entries means no-execute"),
))
EFER_MSR = 0xC0000080
# syscall: CS = STAR[47:32], SS = that + 8; RIP = LSTAR; RFLAGS &= ~FMASK.
STAR_MSR, LSTAR_MSR, FMASK_MSR = 0xC0000081, 0xC0000082, 0xC0000084
STAR_KERNEL_CS_SHIFT = 32
RFLAGS = Register("RFLAGS", (
    Field("TF", 8, meaning="single-step trap after each instruction"),
    Field("IF", 9, meaning="maskable interrupts enabled"),
    Field("DF", 10, meaning="string instructions go down"),
    Field("NT", 14, meaning="nested task"),
    Field("AC", 18, meaning="alignment check (with CR0.AM, ring 3)"),
))
RFLAGS_RESERVED_ONE = 0x2  # bit 1 always reads 1
XCR0 = Register("XCR0", (Field("X87", 0), Field("SSE", 1), Field("AVX", 2),
                         Field("OPMASK", 5), Field("ZMM_HI256", 6), Field("HI16_ZMM", 7)))
# The XSAVE components every probe starts from init: the registers a probe can write
# in ring 3 (x87, SSE, AVX, AVX-512).  They end at 0xA80 in the standard-form area
# (CPUID 0xD), so the init image fits a page; not PKRU (a hypervisor's business).
XSAVE_RESET_COMPONENTS = XCR0.value(X87=1, SSE=1, AVX=1, OPMASK=1, ZMM_HI256=1, HI16_ZMM=1)
XSAVE_RESET_AREA_END = 0xA80

# The legacy fxsave/xsave area: 512 bytes, then (xsave) the 64-byte header.
FXSAVE_FCW, FXSAVE_MXCSR, FXSAVE_SIZE, XSAVE_HEADER_SIZE = 0, 24, 512, 64
FCW_DEFAULT, MXCSR_DEFAULT = 0x037F, 0x1F80  # what finit / reset leave: every exception masked

# Architectural performance monitoring (Intel SDM vol. 3B ch. 20): fixed counter 0
# counts retired instructions when CPUID 0xA reports version >= 2 and >= 1 fixed counter.
CPUID_PMU_LEAF = 0xA
PMU_VERSION_MASK = 0xFF  # CPUID 0xA EAX[7:0]
PMU_FIXED_COUNTERS_MASK = 0x1F  # CPUID 0xA EDX[4:0]
FIXED_CTR0_MSR, FIXED_CTR_CTRL_MSR, PERF_GLOBAL_CTRL_MSR = 0x309, 0x38D, 0x38F
FIXED_CTR0_COUNT_ALL_RINGS = 0b11  # FIXED_CTR_CTRL bits 1:0: count at ring 0 and ring 3
PERF_GLOBAL_CTRL_FIXED0_HIGH = 1  # bit 32 of PERF_GLOBAL_CTRL, as the EDX half of wrmsr

# Page-table entry bits shared by PML4E, PDPTE and PDE.
PAGE_ENTRY = Register("PTE", (
    Field("PRESENT", 0),
    Field("WRITABLE", 1),
    Field("USER", 2, meaning="ring 3 may use it (needed at every level)"),
    Field("WRITE_THROUGH", 3),
    Field("CACHE_DISABLE", 4),
    Field("ACCESSED", 5, meaning="set by the CPU on any use"),
    Field("DIRTY", 6, meaning="set by the CPU on a write (last level only)"),
    Field("LARGE", 7, meaning="in a PDE: maps a 2 MiB page"),
    Field("NO_EXECUTE", 63, meaning="with EFER.NXE: no instruction fetch"),
))
PAGE_ENTRY_ADDRESS = 0x000F_FFFF_FFFF_F000  # physical address bits of an entry (MAXPHYADDR <= 52)
LARGE_PAGE_SIZE = 2 << 20
PAGE_TABLE_SIZE = 4096  # every paging structure is one 4 KiB page of 512 entries

# A segment descriptor (8 bytes), built from its fields rather than typed as hex.
SEGMENT_DESCRIPTOR = Register("SEGDESC", (
    Field("LIMIT_LOW", 0, 16),
    Field("BASE_LOW", 16, 24),
    Field("TYPE", 40, 4, "code: 0xA execute/read; data: 0x2 read/write"),
    Field("S", 44, meaning="code or data (not system)"),
    Field("DPL", 45, 2),
    Field("P", 47, meaning="present"),
    Field("LIMIT_HIGH", 48, 4),
    Field("L", 53, meaning="64-bit code segment"),
    Field("DB", 54, meaning="32-bit default operand size"),
    Field("G", 55, meaning="limit counts 4 KiB pages"),
    Field("BASE_HIGH", 56, 8),
))
CODE_TYPE, DATA_TYPE = 0xA, 0x2


def _flat(segment_type: int, **flags: int) -> int:
    return SEGMENT_DESCRIPTOR.value(
        LIMIT_LOW=0xFFFF, LIMIT_HIGH=0xF, TYPE=segment_type, S=1, P=1, G=1, **flags
    )


# The 64-bit TSS (Intel SDM vol. 3A 8.7): the stacks the CPU switches to.
TSS_OFFSETS = {"RSP0": 4, "IST1": 36, "IOPB": 102}
TSS_SIZE = 104  # an I/O bitmap offset of TSS_SIZE means "no bitmap": ring 3 port I/O faults
TSS_AVAILABLE_TYPE = 0x9  # system descriptor type: available 64-bit TSS


def _tss(base: int) -> tuple[int, int]:
    """The 16-byte TSS descriptor as two GDT slots (low, high)."""
    low = SEGMENT_DESCRIPTOR.value(
        LIMIT_LOW=TSS_SIZE - 1, BASE_LOW=base & 0xFFFFFF, TYPE=TSS_AVAILABLE_TYPE, P=1,
        BASE_HIGH=(base >> 24) & 0xFF)
    return low, base >> 32


# The GDT, in order; a selector is its index * 8.  syscall needs the kernel's
# data segment right after CODE64 (SS = CS + 8).  The user segments have DPL 3.
_TSS_LOW, _TSS_HIGH = _tss(layout.TSS)
GDT: tuple[tuple[str, int], ...] = (
    ("NULL", 0),
    ("CODE32", _flat(CODE_TYPE, DB=1)),
    ("DATA", _flat(DATA_TYPE, DB=1)),
    ("CODE64", _flat(CODE_TYPE, L=1)),
    ("DATA64", _flat(DATA_TYPE)),
    ("USER_DATA", _flat(DATA_TYPE, DPL=3)),
    ("USER_CODE64", _flat(CODE_TYPE, L=1, DPL=3)),
    ("TSS", _TSS_LOW),
    ("TSS_HIGH", _TSS_HIGH),
)
RING3 = 3  # requested privilege level of a ring-3 selector

# Bits 32..63 of a 16-byte IDT gate (offset 31:16 above them is filled at run time).
IDT_GATE_FLAGS = Register("IDT_GATE", (
    Field("IST", 0, 3),
    Field("TYPE", 8, 4, "0xE: 64-bit interrupt gate"),
    Field("DPL", 13, 2),
    Field("P", 15),
))
IDT_GATE_SIZE = 16
EXCEPTION_VECTORS = 32
IDT_GATES = 256  # the whole vector space: the IDT page holds every gate
# Exceptions for which the CPU pushes an error code (#DF #TS #NP #SS #GP #PF #AC #CP #VC #SX).
EXCEPTIONS_WITH_ERROR_CODE = (8, 10, 11, 12, 13, 14, 17, 21, 29, 30)
DEBUG_VECTOR, PAGE_FAULT_VECTOR = 1, 14  # #DB (single-step), #PF (CR2 holds the address)

CPUID_LEAF_1_ECX = Register("CPUID_1_ECX", (
    Field("XSAVE", 26), Field("AVX", 28), Field("HYPERVISOR", 31),
))
CPUID_80000001_EDX = Register("CPUID_80000001_EDX", (
    Field("NX", 20, meaning="no-execute pages"),
    Field("LM", 29, meaning="long mode"),
))
CPUID_HYPERVISOR_BASE = 0x40000000
CPUID_EXTENDED_BASE = 0x80000000
CPUID_CENTAUR_BASE = 0xC0000000  # VIA/Centaur and Zhaoxin extended leaves (Linux word 5)


def asm_constants() -> dict[str, int]:
    consts: dict[str, int] = {}
    for reg in (CR0, CR4, EFER, PAGE_ENTRY, IDT_GATE_FLAGS, CPUID_LEAF_1_ECX, CPUID_80000001_EDX,
                RFLAGS, XCR0):
        consts.update(reg.asm_constants())
    present_writable = PAGE_ENTRY.value(PRESENT=1, WRITABLE=1)
    consts.update(
        EFER_MSR=EFER_MSR,
        PTE_TABLE_FLAGS=present_writable,
        PTE_LARGE_PAGE_FLAGS=present_writable | PAGE_ENTRY.value(LARGE=1),
        LARGE_PAGE_SIZE=LARGE_PAGE_SIZE,
        PAGE_TABLE_SIZE=PAGE_TABLE_SIZE,
        GDT_ENTRIES=len(GDT),
        GDT_LIMIT=len(GDT) * 8 - 1,
        IDT_INTERRUPT_GATE_FLAGS=IDT_GATE_FLAGS.value(TYPE=0xE, P=1),
        IDT_GATE_SIZE=IDT_GATE_SIZE,
        EXCEPTION_VECTORS=EXCEPTION_VECTORS,
        DEBUG_VECTOR=DEBUG_VECTOR,
        PAGE_FAULT_VECTOR=PAGE_FAULT_VECTOR,
        IDT_GATES=IDT_GATES,
        IDT_LIMIT=IDT_GATES * IDT_GATE_SIZE - 1,
        STAR_MSR=STAR_MSR, LSTAR_MSR=LSTAR_MSR, FMASK_MSR=FMASK_MSR,
        STAR_KERNEL_CS_SHIFT=STAR_KERNEL_CS_SHIFT,
        RFLAGS_RESERVED_ONE=RFLAGS_RESERVED_ONE,
        PAGE_ENTRY_ADDRESS=PAGE_ENTRY_ADDRESS,
        TSS_SIZE=TSS_SIZE,
        FXSAVE_FCW=FXSAVE_FCW, FXSAVE_MXCSR=FXSAVE_MXCSR, FXSAVE_SIZE=FXSAVE_SIZE,
        XSAVE_HEADER_SIZE=XSAVE_HEADER_SIZE, XSAVE_RESET_COMPONENTS=XSAVE_RESET_COMPONENTS,
        XSAVE_RESET_AREA_END=XSAVE_RESET_AREA_END, FCW_DEFAULT=FCW_DEFAULT,
        MXCSR_DEFAULT=MXCSR_DEFAULT,
        CPUID_PMU_LEAF=CPUID_PMU_LEAF, PMU_VERSION_MASK=PMU_VERSION_MASK,
        PMU_FIXED_COUNTERS_MASK=PMU_FIXED_COUNTERS_MASK, FIXED_CTR0_MSR=FIXED_CTR0_MSR,
        FIXED_CTR_CTRL_MSR=FIXED_CTR_CTRL_MSR, PERF_GLOBAL_CTRL_MSR=PERF_GLOBAL_CTRL_MSR,
        FIXED_CTR0_COUNT_ALL_RINGS=FIXED_CTR0_COUNT_ALL_RINGS,
        PERF_GLOBAL_CTRL_FIXED0_HIGH=PERF_GLOBAL_CTRL_FIXED0_HIGH,
        EXCEPTIONS_WITH_ERROR_CODE=sum(1 << v for v in EXCEPTIONS_WITH_ERROR_CODE),
        CPUID_HYPERVISOR_BASE=CPUID_HYPERVISOR_BASE,
        CPUID_EXTENDED_BASE=CPUID_EXTENDED_BASE,
        CPUID_CENTAUR_BASE=CPUID_CENTAUR_BASE,
    )
    for index, (name, _) in enumerate(GDT):
        consts[f"SELECTOR_{name}"] = index * 8
    consts["SELECTOR_USER_CODE64_RING3"] = consts["SELECTOR_USER_CODE64"] | RING3
    consts["SELECTOR_USER_DATA_RING3"] = consts["SELECTOR_USER_DATA"] | RING3
    consts["SELECTOR_RPL_MASK"] = RING3  # a saved CS with these bits set came from ring 3
    consts.update({f"TSS_{name}": offset for name, offset in TSS_OFFSETS.items()})
    return consts
