"""Which CPUID subleaves the kernel enumerates, leaf by leaf, as a data table.

Leaves not listed are read at subleaf 0 only.  Each rule says how the leaf's
own answers bound its subleaves (Intel SDM vol. 2A "CPUID"; AMD APM vol. 3):

    MAX_IN_REGISTER   subleaves 0..N, N = field of subleaf 0
    UNTIL_FIELD_ZERO  subleaves 0, 1, ... until the field reads 0 (that subleaf
                      is sent too); the first `always` subleaves are not tested
    BITMAP            subleaf 0, then subleaf i for every bit i >= 1 set in the
                      field of subleaf 0
    NONZERO           subleaves 0..MAX_SUBLEAF: the first `always`, then every
                      one that is not all zeros

Every loop stops at MAX_SUBLEAF whatever the CPU says.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

MAX_SUBLEAF = 63
RANGE_LIMIT = 0xFF  # at most this many leaves above a range's base leaf


class SubleafBound(IntEnum):
    MAX_IN_REGISTER = 1
    UNTIL_FIELD_ZERO = 2
    BITMAP = 3
    NONZERO = 4


class Reg(IntEnum):
    EAX = 0
    EBX = 1
    ECX = 2
    EDX = 3


@dataclass(frozen=True)
class Rule:
    leaf: int
    kind: SubleafBound
    register: Reg = Reg.EAX
    shift: int = 0
    mask: int = 0xFFFFFFFF  # applied after the shift
    always: int = 0
    why: str = ""


RULES: tuple[Rule, ...] = (
    Rule(0x4, SubleafBound.UNTIL_FIELD_ZERO, Reg.EAX, 0, 0x1F,
         why="deterministic cache parameters: cache type"),
    Rule(0x7, SubleafBound.MAX_IN_REGISTER,
         why="structured extended features: max subleaf in EAX"),
    Rule(0xB, SubleafBound.UNTIL_FIELD_ZERO, Reg.ECX, 8, 0xFF,
         why="extended topology: level type"),
    Rule(0xD, SubleafBound.NONZERO, always=2, why="XSAVE state components"),
    Rule(0xF, SubleafBound.BITMAP, Reg.EDX, why="RDT monitoring: resource types in EDX"),
    Rule(0x10, SubleafBound.BITMAP, Reg.EBX, why="RDT allocation: resource types in EBX"),
    Rule(0x12, SubleafBound.UNTIL_FIELD_ZERO, Reg.EAX, 0, 0xF, always=2,
         why="SGX: EPC section type"),
    Rule(0x14, SubleafBound.MAX_IN_REGISTER, why="processor trace: max subleaf in EAX"),
    Rule(0x17, SubleafBound.MAX_IN_REGISTER, why="SoC vendor attributes: max subleaf in EAX"),
    Rule(0x18, SubleafBound.MAX_IN_REGISTER,
         why="deterministic address translation: max subleaf in EAX"),
    Rule(0x1D, SubleafBound.MAX_IN_REGISTER, why="tile information: max palette in EAX"),
    Rule(0x1F, SubleafBound.UNTIL_FIELD_ZERO, Reg.ECX, 8, 0xFF,
         why="V2 extended topology: level type"),
    Rule(0x8000001D, SubleafBound.UNTIL_FIELD_ZERO, Reg.EAX, 0, 0x1F,
         why="AMD cache topology: cache type"),
)


# One table row: leaf, kind, register index, shift, always, mask.
ROW = struct.Struct("<IBBBBI")
ROW_FIELDS = ("LEAF", "KIND", "REGISTER", "SHIFT", "ALWAYS", "MASK")
ROW_OFFSETS = dict(zip(ROW_FIELDS, (0, 4, 5, 6, 7, 8), strict=True))


def source() -> str:
    lines = [
        "; Generated from kernel/x86_64/cpuid_rules.py by kernel/x86_64/build.py; do not edit.",
        ".align 4",
        "cpuid_rules:",
    ]
    for r in RULES:
        lines.append(f"    .long {r.leaf:#x}  ; {r.why}")
        lines.append(f"    .byte {int(r.kind)}, {int(r.register)}, {r.shift}, {r.always}")
        lines.append(f"    .long {r.mask:#x}")
    lines.append("cpuid_rules_end:")
    return "\n".join(lines) + "\n"


def asm_constants() -> dict[str, int]:
    if ROW.size != ROW_OFFSETS["MASK"] + 4:
        raise ValueError("ROW and ROW_OFFSETS disagree; fix kernel/x86_64/cpuid_rules.py")
    consts = {f"CPUID_RULE_{name}": off for name, off in ROW_OFFSETS.items()}
    consts.update({f"CPUID_KIND_{k.name}": k.value for k in SubleafBound})
    consts.update(
        CPUID_RULE_SIZE=ROW.size,
        CPUID_MAX_SUBLEAF=MAX_SUBLEAF,
        CPUID_RANGE_LIMIT=RANGE_LIMIT,
        CPUID_BITMAP_LAST_BIT=31,  # registers are 32 bits wide
    )
    return consts
