"""x86-64 CPU structures as data: control registers, EFER, paging entries,
GDT descriptors, IDT gates, the exceptions that push an error code, and the
CPUID bits the boot stage tests.  (Intel SDM vol. 3A ch. 2-6; AMD APM vol. 2.)"""

from __future__ import annotations

from .bits import Field, Register

CR0 = Register("CR0", (
    Field("PE", 0, meaning="protected mode enable"),
    Field("PG", 31, meaning="paging enable"),
))
CR4 = Register("CR4", (
    Field("PAE", 5, meaning="physical address extension (required for long mode)"),
))
EFER = Register("EFER", (
    Field("LME", 8, meaning="long mode enable (takes effect when CR0.PG is set)"),
))
EFER_MSR = 0xC0000080

# Page-table entry bits shared by PML4E, PDPTE and PDE.
PAGE_ENTRY = Register("PTE", (
    Field("PRESENT", 0),
    Field("WRITABLE", 1),
    Field("LARGE", 7, meaning="in a PDE: maps a 2 MiB page"),
))
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


# The boot GDT, in order; a selector is its index * 8.
GDT: tuple[tuple[str, int], ...] = (
    ("NULL", 0),
    ("CODE32", _flat(CODE_TYPE, DB=1)),
    ("DATA", _flat(DATA_TYPE, DB=1)),
    ("CODE64", _flat(CODE_TYPE, L=1)),
)

# Bits 32..63 of a 16-byte IDT gate (offset 31:16 above them is filled at run time).
IDT_GATE_FLAGS = Register("IDT_GATE", (
    Field("IST", 0, 3),
    Field("TYPE", 8, 4, "0xE: 64-bit interrupt gate"),
    Field("DPL", 13, 2),
    Field("P", 15),
))
IDT_GATE_SIZE = 16
EXCEPTION_VECTORS = 32
# Exceptions for which the CPU pushes an error code (#DF #TS #NP #SS #GP #PF #AC #CP #VC #SX).
EXCEPTIONS_WITH_ERROR_CODE = (8, 10, 11, 12, 13, 14, 17, 21, 29, 30)

CPUID_LEAF_1_ECX = Register("CPUID_1_ECX", (Field("HYPERVISOR", 31),))
CPUID_80000001_EDX = Register("CPUID_80000001_EDX", (Field("LM", 29, meaning="long mode"),))
CPUID_HYPERVISOR_BASE = 0x40000000
CPUID_EXTENDED_BASE = 0x80000000


def asm_constants() -> dict[str, int]:
    consts: dict[str, int] = {}
    for reg in (CR0, CR4, EFER, PAGE_ENTRY, IDT_GATE_FLAGS, CPUID_LEAF_1_ECX, CPUID_80000001_EDX):
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
        IDT_LIMIT=EXCEPTION_VECTORS * IDT_GATE_SIZE - 1,
        EXCEPTIONS_WITH_ERROR_CODE=sum(1 << v for v in EXCEPTIONS_WITH_ERROR_CODE),
        CPUID_HYPERVISOR_BASE=CPUID_HYPERVISOR_BASE,
        CPUID_EXTENDED_BASE=CPUID_EXTENDED_BASE,
    )
    for index, (name, _) in enumerate(GDT):
        consts[f"SELECTOR_{name}"] = index * 8
    return consts
