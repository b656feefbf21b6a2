"""The x86-64 physical memory map and the boot-info block, declared once.

Everything below 1 MiB is identity-addressed; real-mode code reaches it with
segment 0 (or segment = address / 16 for buffers past 64 KiB).  Every address
the boot stage and kernel use comes from this table through `asm_constants()`.

    start     end (excl.)  what
    0x00000   0x00500      real-mode IVT + BIOS data area (BIOS owns it)
    0x00500   0x00520      boot-info block (BOOT_INFO_LAYOUT below)
    0x01000   0x02800      E820 buffer: E820_MAX_ENTRIES entries of 24 bytes
    0x02800   0x07C00      real-mode stack, grows down from 0x7C00
    0x07C00   0x07E00      boot sector (loaded by the BIOS)
    0x08000   0x09000      stage 2 (LBA 1..8; 16/32/64-bit boot code)
    0x09000   0x60000      kernel (LBA 9..), loaded with stage 2 in one go
    0x60000   0x66000      page tables: PML4, PDPT, IDENTITY_MAP_GIB page directories
    0x66000   0x67000      IDT (256 gates of 16 bytes)
    0x68000   0x70000      kernel stack, grows down from 0x70000
    0x70000   0x80000      frame buffer: header + largest body + CRC
    0x80000   0x90200      COBS buffer: the encoded frame and its delimiter
    0x9FC00   0xA0000      EBDA (BIOS; the ACPI RSDP may be here)

Above 1 MiB, used only once discovery is over and the host asked the guest
to stay (the probe environment, kernel/x86_64/probe_env.s):

    0x100000  0x108000   page tables of the probe region (PROBE_PAGE_TABLES_MAX)
    0x108000  0x108068   TSS (ring 3 -> ring 0 stack, IST1)
    0x109000  0x10C000   trap stack (IST1): every exception and interrupt lands here
    0x110000  0x116000   backing frames of the read-only probe areas (code, exit, input)
    0x120000  0x128000   receive buffer: one COBS-encoded host frame
    0x130000  0x130400   slot table: PROBE_SLOTS records (kernel/x86_64/probe_env.py)
    0x131000  0x132000   probe state: the current run, counters, the clean FPU image
    0x140000  0x141000   virtio console state (kernel/x86_64/virtio_console.py)
    0x141000  0x155000   virtio console queues and receive buffers (contract/virtio.py)
    0x200000  0x340000   slot store: code + input of each slot
    0x400000  0x510000   result cache: PROBE_RESULT_CACHE bodies, by run_id modulo
    0x1000000 0x2000000  the probe region itself (contract/probe_abi.py)

Page tables identity-map the first IDENTITY_MAP_GIB GiB with 2 MiB pages, so
the q35 ECAM (0xB0000000), ACPI tables near the top of RAM, and the firmware
area below 4 GiB are all reachable from the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.protocol import LAYOUTS, PROBE_RESULT_CACHE, PROBE_SLOTS, Msg
from contract.virtio import CONSOLE_BYTES
from contract.probe_abi import AREA, CODE_SIZE, INPUT_SIZE, OUTPUT_SIZE, PROBE_REGION_SIZE, X86_64_PROBES

SECTOR_SIZE = 512

BIOS_DATA_EBDA_SEGMENT = 0x040E  # BDA word: EBDA segment (ACPI RSDP search area 1)
BOOT_INFO = 0x0500
E820_BUFFER = 0x1000
E820_ENTRY_SIZE = 24  # ACPI 3.0 entry: base, length, type, extended attributes
E820_MAX_ENTRIES = 256
REAL_MODE_STACK_TOP = 0x7C00
BOOT_SECTOR_BASE = 0x7C00
STAGE2_BASE = 0x8000
STAGE2_MAX_SIZE = 0x1000  # stage 2 is padded to this, so the kernel's LBA is fixed
KERNEL_BASE = STAGE2_BASE + STAGE2_MAX_SIZE
KERNEL_LIMIT = 0x60000
PAGE_TABLES = 0x60000
PML4 = PAGE_TABLES
PDPT = PAGE_TABLES + 0x1000
PAGE_DIRECTORIES = PAGE_TABLES + 0x2000
IDENTITY_MAP_GIB = 4
PAGE_TABLES_END = PAGE_DIRECTORIES + IDENTITY_MAP_GIB * 0x1000
IDT = 0x66000
KERNEL_STACK_TOP = 0x70000
FRAME_BUFFER = 0x70000
FRAME_BUFFER_SIZE = 0x10000
COBS_BUFFER = 0x80000
COBS_BUFFER_SIZE = 0x10200  # COBS adds one byte per 254, plus the delimiter

PAGE_SIZE = 0x1000
PROBE_PAGE_TABLES = 0x100000
PROBE_PAGE_TABLES_MAX = 8
TSS = 0x108000
TRAP_STACK = 0x109000
TRAP_STACK_TOP = 0x10C000
PROBE_BACKING = 0x110000  # code, exit, input: in this order, each its area's size
PROBE_CODE_BACKING = PROBE_BACKING
PROBE_EXIT_BACKING = PROBE_CODE_BACKING + AREA["code"].size
PROBE_INPUT_BACKING = PROBE_EXIT_BACKING + AREA["exit"].size
PROBE_BACKING_END = PROBE_INPUT_BACKING + AREA["input"].size
RX_BUFFER = 0x120000
RX_BUFFER_SIZE = 0x8000  # a PROBE_LOAD with the largest code and input, COBS-encoded, is ~20.6 KiB
SLOT_TABLE = 0x130000
SLOT_RECORD_SIZE = 16
PROBE_STATE = 0x131000  # its own page: TCG re-translates code on pages that data writes hit
PROBE_STATE_SIZE = 0x1000
CONSOLE_STATE = 0x140000  # its own page: written per received buffer (see PROBE_STATE)
CONSOLE_BASE = 0x141000  # page-aligned: the legacy queue addresses are page numbers
SLOT_STORE = 0x200000
SLOT_STRIDE = CODE_SIZE + INPUT_SIZE  # code, then input
RESULT_CACHE = 0x400000
RESULT_CACHE_HEADER = 16  # run_id, valid, body length; then the PROBE_RESULT body
_RESULT_CACHE_ENTRY = RESULT_CACHE_HEADER + LAYOUTS[Msg.PROBE_RESULT].size + OUTPUT_SIZE
RESULT_CACHE_STRIDE = -(-_RESULT_CACHE_ENTRY // 0x100) * 0x100  # rounded up to 256 bytes

# INT 13h AH=42h reads at most this many sectors per call (many BIOSes cap at
# 127); 64 sectors = 32 KiB keeps every chunk inside one real-mode segment.
DISK_READ_CHUNK_SECTORS = 64

BOOT_INFO_MAGIC_VALUE = 0x3142534D  # "MSB1": MetaOS boot info, revision 1


@dataclass(frozen=True)
class Field:
    name: str
    size: int  # bytes
    meaning: str


# The block stage 2 fills and hands to the kernel (pointer in rdi).
BOOT_INFO_LAYOUT: tuple[Field, ...] = (
    Field("magic", 4, "BOOT_INFO_MAGIC_VALUE"),
    Field("boot_drive", 4, "BIOS drive number (DL at boot)"),
    Field("e820_count", 4, "entries stored in the E820 buffer"),
    Field("e820_entry_size", 4, "bytes per stored entry (E820_ENTRY_SIZE)"),
    Field("e820_entries", 8, "physical address of the first entry"),
)


def boot_info_offsets() -> dict[str, int]:
    offsets, at = {}, 0
    for field in BOOT_INFO_LAYOUT:
        offsets[field.name] = at
        at += field.size
    return offsets


BOOT_INFO_SIZE = sum(f.size for f in BOOT_INFO_LAYOUT)


def check() -> None:
    """Raise if the regions in the table overlap (a mistake when editing it)."""
    regions = [
        ("boot info", BOOT_INFO, BOOT_INFO + BOOT_INFO_SIZE),
        ("E820 buffer", E820_BUFFER, E820_BUFFER + E820_MAX_ENTRIES * E820_ENTRY_SIZE),
        ("boot sector", BOOT_SECTOR_BASE, BOOT_SECTOR_BASE + SECTOR_SIZE),
        ("stage 2", STAGE2_BASE, KERNEL_BASE),
        ("kernel", KERNEL_BASE, KERNEL_LIMIT),
        ("page tables", PAGE_TABLES, PAGE_TABLES_END),
        ("IDT", IDT, IDT + 256 * 16),
        ("frame buffer", FRAME_BUFFER, FRAME_BUFFER + FRAME_BUFFER_SIZE),
        ("COBS buffer", COBS_BUFFER, COBS_BUFFER + COBS_BUFFER_SIZE),
        ("EBDA", 0x9FC00, 0xA0000),
        ("probe page tables", PROBE_PAGE_TABLES,
         PROBE_PAGE_TABLES + PROBE_PAGE_TABLES_MAX * PAGE_SIZE),
        ("TSS", TSS, TSS + 0x68),
        ("trap stack", TRAP_STACK, TRAP_STACK_TOP),
        ("probe backing", PROBE_BACKING, PROBE_BACKING_END),
        ("receive buffer", RX_BUFFER, RX_BUFFER + RX_BUFFER_SIZE),
        ("slot table", SLOT_TABLE, SLOT_TABLE + PROBE_SLOTS * SLOT_RECORD_SIZE),
        ("probe state", PROBE_STATE, PROBE_STATE + PROBE_STATE_SIZE),
        ("console state", CONSOLE_STATE, CONSOLE_STATE + PAGE_SIZE),
        ("console queues and buffers", CONSOLE_BASE, CONSOLE_BASE + CONSOLE_BYTES),
        ("slot store", SLOT_STORE, SLOT_STORE + PROBE_SLOTS * SLOT_STRIDE),
        ("result cache", RESULT_CACHE, RESULT_CACHE + PROBE_RESULT_CACHE * RESULT_CACHE_STRIDE),
        ("probe region", X86_64_PROBES.region_base, X86_64_PROBES.region_base + PROBE_REGION_SIZE),
    ]
    regions.sort(key=lambda r: r[1])
    for (name_a, _, end_a), (name_b, start_b, _) in zip(regions, regions[1:]):
        if end_a > start_b:
            raise ValueError(f"memory map: {name_a} overlaps {name_b}; fix contract/x86_64/memory_map.py")
    kernel_start, kernel_size = X86_64_PROBES.kernel_area
    for name, start, end in regions:
        if start >= 0x100000 and name != "probe region" and end > kernel_start + kernel_size:
            raise ValueError(f"memory map: {name} leaves the kernel area below the probe region")
    if E820_BUFFER + E820_MAX_ENTRIES * E820_ENTRY_SIZE > REAL_MODE_STACK_TOP - 0x1000:
        raise ValueError("memory map: E820 buffer leaves under 4 KiB of real-mode stack")


def asm_constants() -> dict[str, int]:
    """The memory map and boot-info offsets, named as the assembly uses them."""
    check()
    names = (
        "SECTOR_SIZE BIOS_DATA_EBDA_SEGMENT BOOT_INFO E820_BUFFER E820_ENTRY_SIZE "
        "E820_MAX_ENTRIES REAL_MODE_STACK_TOP BOOT_SECTOR_BASE STAGE2_BASE STAGE2_MAX_SIZE "
        "KERNEL_BASE KERNEL_LIMIT PML4 PDPT PAGE_DIRECTORIES IDENTITY_MAP_GIB PAGE_TABLES "
        "PAGE_TABLES_END IDT KERNEL_STACK_TOP FRAME_BUFFER FRAME_BUFFER_SIZE COBS_BUFFER "
        "DISK_READ_CHUNK_SECTORS BOOT_INFO_MAGIC_VALUE BOOT_INFO_SIZE PAGE_SIZE "
        "PROBE_PAGE_TABLES PROBE_PAGE_TABLES_MAX TSS TRAP_STACK TRAP_STACK_TOP PROBE_CODE_BACKING "
        "PROBE_EXIT_BACKING PROBE_INPUT_BACKING PROBE_BACKING RX_BUFFER RX_BUFFER_SIZE SLOT_TABLE "
        "SLOT_RECORD_SIZE PROBE_STATE PROBE_STATE_SIZE SLOT_STORE SLOT_STRIDE RESULT_CACHE "
        "RESULT_CACHE_HEADER RESULT_CACHE_STRIDE CONSOLE_STATE CONSOLE_BASE"
    ).split()
    consts = {name: globals()[name] for name in names}
    consts["PROBE_BACKING_SIZE"] = PROBE_BACKING_END - PROBE_BACKING
    consts["PAGE_TABLES_SIZE"] = PAGE_TABLES_END - PAGE_TABLES
    consts["PAGE_TABLES_DWORDS"] = (PAGE_TABLES_END - PAGE_TABLES) // 4
    consts["STAGE2_SEGMENT"] = STAGE2_BASE // 16
    consts["DISK_READ_CHUNK_PARAGRAPHS"] = DISK_READ_CHUNK_SECTORS * SECTOR_SIZE // 16
    consts["PAGE_DIRECTORY_ENTRIES"] = IDENTITY_MAP_GIB * 512
    consts["IDENTITY_MAP_END"] = IDENTITY_MAP_GIB << 30
    consts.update({f"BOOT_INFO_{n.upper()}": o for n, o in boot_info_offsets().items()})
    return consts
