"""The flattened device tree blob, as the RISC-V guest walks it and the host reads
it (Devicetree Specification v0.4, ch. 5): a big-endian header, a structure block
of 32-bit tokens, a strings block."""

from __future__ import annotations

from enum import IntEnum

from contract.constants import ConstantSet, collect, enum_constants
from contract.layout import Record

MAGIC = 0xD00DFEED
HEADER = Record("FDT_HEADER", (
    ("magic", "I"), ("totalsize", "I"), ("off_dt_struct", "I"), ("off_dt_strings", "I"),
    ("off_mem_rsvmap", "I"), ("version", "I"), ("last_comp_version", "I"),
    ("boot_cpuid_phys", "I"), ("size_dt_strings", "I"), ("size_dt_struct", "I"),
), byte_order=">")
# What follows an FDT_PROP token: the value's length and its name's offset in the
# strings block; then the value, padded to TOKEN_SIZE.
PROPERTY = Record("FDT_PROPERTY", (("len", "I"), ("nameoff", "I")), byte_order=">")


class Token(IntEnum):
    BEGIN_NODE = 0x1
    END_NODE = 0x2
    PROP = 0x3
    NOP = 0x4
    END = 0x9


TOKEN_SIZE = 4  # every token, and the structure block's alignment
# A node without #address-cells / #size-cells: its children's reg uses these (spec 2.3.5).
DEFAULT_ADDRESS_CELLS, DEFAULT_SIZE_CELLS = 2, 1
MAX_DEPTH = 16  # how deep the guest walks (it keeps each level's cells)


def asm_constants() -> ConstantSet:
    return collect(__name__, HEADER, PROPERTY, enum_constants("FDT", Token), {
        "FDT_MAGIC": MAGIC,
        "FDT_TOKEN_SIZE": TOKEN_SIZE,
        "FDT_DEFAULT_ADDRESS_CELLS": DEFAULT_ADDRESS_CELLS,
        "FDT_DEFAULT_SIZE_CELLS": DEFAULT_SIZE_CELLS,
        "FDT_MAX_DEPTH": MAX_DEPTH,
    })
