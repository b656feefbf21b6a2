"""The RISC-V kernel's RAM map on QEMU `virt`, declared once.

Where the kernel keeps what its image does not carry (RAM above the image;
QEMU puts the device tree at the top of RAM, far from these).  Every address
comes from KERNEL_RAM through `asm_constants()`; `check()` refuses overlaps.
"""

from __future__ import annotations

from itertools import pairwise

from contract import virtio
from contract.constants import ConstantSet, collect
from contract.frames import MAX_ENCODED
from contract.probe_abi import PROBE_REGION_SIZE
from contract.protocol import CRC, HEADER, LAYOUTS, MAX_BODY, PROBE_RESULT_CACHE, PROBE_SLOTS, Msg
from contract.riscv64 import probe_state
from contract.riscv64.probes import RISCV64_PROBES

#                  name             address      why
KERNEL_RAM = {
    "KERNEL_BASE":       0x80000000,  # ELF entry: -bios none jumps here with a0=hartid, a1=DTB
    "FRAME_BODY":        0x80100000,  # one frame's body (<= 64 KiB), its header just before
    "HART_RECORDS":      0x80120000,  # one HART frame body per hart slot
    "STACKS_TOP":        0x80200000,  # hart slot n's stack ends at STACKS_TOP - n * STACK_SIZE
    "RX_BODY":           0x80200008,  # a received frame, decoded in place; header just before
    "PROBE_SLOTS_BASE":  0x80400000,  # PROBE_SLOTS slot records (contract/riscv64/probe_state.py)
    "RESULT_CACHE_BASE": 0x80600000,  # PROBE_RESULT_CACHE cached results
    "VIRTIO_CONSOLE":    0x80800000,  # the console's queues and receive buffers (virtio.py)
    "TX_FRAME":          0x80820000,  # one encoded frame and its delimiter, leaving on the line
}
KERNEL_BASE = KERNEL_RAM["KERNEL_BASE"]
# The header sits just below the body so the body's 8-byte fields are aligned.
FRAME_BUFFER = KERNEL_RAM["FRAME_BODY"] - HEADER.size
RX_FRAME = KERNEL_RAM["RX_BODY"] - HEADER.size
TX_FRAME_CAPACITY = MAX_ENCODED + 1  # the longest encoded frame, then its delimiter
RX_CAPACITY = 0x1F000  # more than any legal encoded frame (contract/frames.py MAX_ENCODED)
STACK_SIZE_LOG2 = 12  # 4 KiB per hart: the deepest path (PCI recursion) uses < 1 KiB
MAX_HARTS = 64  # QEMU virt allows up to 512; more slots than we ever boot here


def check() -> None:
    """Raise ValueError when two of the kernel's RAM regions (and the probe region
    above them) overlap, or the console's queues are not page-aligned."""
    if KERNEL_RAM["VIRTIO_CONSOLE"] % virtio.QUEUE_ALIGN:
        raise ValueError("contract/riscv64/memory_map.py: VIRTIO_CONSOLE must be page-aligned "
                         "(legacy queues are given as page numbers)")
    stacks = MAX_HARTS << STACK_SIZE_LOG2
    regions = sorted((
        ("frame", FRAME_BUFFER, HEADER.size + MAX_BODY + CRC.size),
        ("hart records", KERNEL_RAM["HART_RECORDS"], MAX_HARTS * LAYOUTS[Msg.HART].size),
        ("stacks", KERNEL_RAM["STACKS_TOP"] - stacks, stacks),
        ("received frame", RX_FRAME, RX_CAPACITY),
        ("probe slots", KERNEL_RAM["PROBE_SLOTS_BASE"],
         PROBE_SLOTS << probe_state.SLOT_STRIDE_LOG2),
        ("result cache", KERNEL_RAM["RESULT_CACHE_BASE"],
         PROBE_RESULT_CACHE << probe_state.CACHE_STRIDE_LOG2),
        ("virtio console", KERNEL_RAM["VIRTIO_CONSOLE"], virtio.CONSOLE_BYTES),
        ("frame on its way out", KERNEL_RAM["TX_FRAME"], TX_FRAME_CAPACITY),
        ("probe region", RISCV64_PROBES.region_base, PROBE_REGION_SIZE),
    ), key=lambda region: region[1])
    for (name, base, size), (next_name, next_base, _) in pairwise(regions):
        if base + size > next_base:
            raise ValueError(f"contract/riscv64/memory_map.py KERNEL_RAM: {name} "
                             f"({base:#x}+{size:#x}) runs into {next_name} ({next_base:#x})")


def asm_constants() -> ConstantSet:
    check()
    return collect(__name__, KERNEL_RAM, {
        "FRAME_BUFFER": FRAME_BUFFER, "RX_FRAME": RX_FRAME, "RX_CAPACITY": RX_CAPACITY,
        "TX_FRAME_CAPACITY": TX_FRAME_CAPACITY, "STACK_SIZE_LOG2": STACK_SIZE_LOG2,
        "MAX_HARTS": MAX_HARTS,
    })
