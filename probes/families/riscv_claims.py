"""What a RISC-V hart claims about its extensions, and which extension a
discovery candidate needs: the inputs of discovery's second cross-check.

Claims come from the staying guest's discovery inventory: misa's letters and
the device tree's `riscv,isa` string (letters and multi-letter names) of the
first hart.  A candidate's extension is read from its encoding fields (RISC-V
unprivileged spec opcode maps); encodings this table cannot attribute — and
vector ones, which the probe ABI always starts with VS = Off — get no claim, so
only capstone judges them.
"""

from __future__ import annotations

from discovery.harts import isa_string_letters
from discovery.inventory import Inventory
from probes.emulator import riscv_compressed_fp_access
from probes.families.candidate import Candidate
from probes.families.isa_riscv import I_TYPE, R_TYPE

# Extensions decided by (major opcode, funct7, funct3) of 32-bit R-type candidates
# (the major opcodes as the candidate generator names them).
_OP, _OP32, _AMO, _OPFP = (R_TYPE[name] for name in ("op", "op-32", "amo", "op-fp"))
_LOAD, _LOADFP, _MISCMEM, _OPIMM, _OPIMM32 = (
    I_TYPE[name] for name in ("load", "load-fp", "misc-mem", "op-imm", "op-imm-32"))
_R_TYPE = {
    **{(_OP, 0x00, f3): "i" for f3 in range(8)}, (_OP, 0x20, 0): "i", (_OP, 0x20, 5): "i",
    **{(_OP32, 0x00, f3): "i" for f3 in (0, 1, 5)}, (_OP32, 0x20, 0): "i", (_OP32, 0x20, 5): "i",
    **{(_OP, 0x01, f3): "m" for f3 in range(8)},
    **{(_OP32, 0x01, f3): "m" for f3 in (0, 4, 5, 6, 7)},
    **{(_OP, 0x10, f3): "zba" for f3 in (2, 4, 6)},
    **{(_OP32, 0x10, f3): "zba" for f3 in (2, 4, 6)},
    (_OP32, 0x04, 0): "zba",  # add.uw
    **{(_OP, 0x20, f3): "zbb" for f3 in (4, 6, 7)},  # xnor, orn, andn
    **{(_OP, 0x05, f3): "zbb" for f3 in (4, 5, 6, 7)},  # min, minu, max, maxu
    **{(_OP, 0x05, f3): "zbc" for f3 in (1, 2, 3)},  # clmul, clmulr, clmulh
    # rol, ror
    (_OP, 0x30, 1): "zbb", (_OP, 0x30, 5): "zbb", (_OP32, 0x30, 1): "zbb", (_OP32, 0x30, 5): "zbb",
    (_OP, 0x14, 1): "zbs", (_OP, 0x24, 1): "zbs", (_OP, 0x24, 5): "zbs", (_OP, 0x34, 1): "zbs",
    (_OP, 0x07, 5): "zicond", (_OP, 0x07, 7): "zicond",
}
_I_TYPE = {**{(_LOAD, f3): "i" for f3 in range(7)},
           (_LOADFP, 2): "f", (_LOADFP, 3): "d", (_LOADFP, 4): "q", (_LOADFP, 1): "zfh",
           (_MISCMEM, 0): "i", (_MISCMEM, 1): "zifencei",
           **{(_OPIMM, f3): "i" for f3 in range(8)}, **{(_OPIMM32, f3): "i" for f3 in (0, 1, 5)}}
_FP_FORMAT = {0: "f", 1: "d", 2: "zfh", 3: "q"}  # op-fp funct7[1:0]
_AMO_WIDTHS = (2, 3)  # funct3: .w and .d


def claimed_extensions(inventory: Inventory) -> frozenset[str]:
    """misa's letters and the first hart's `riscv,isa` extensions ("g" expanded)."""
    cpu = inventory.cpu
    if not getattr(cpu, "harts", None):
        raise ValueError("the discovery inventory has no hart: nothing claims any extension")
    hart = cpu.harts[0]
    claims = set(hart.extensions)
    isa = cpu.isa_of(hart.hartid)
    if isa:
        claims |= set(isa_string_letters(isa))
        claims |= {name for name in isa.lower().split("_")[1:] if name}
    return frozenset(claims)


def required_extensions(candidate: Candidate) -> tuple[str, ...] | None:
    """The extensions the candidate's instruction belongs to (all needed), or None."""
    raw = int.from_bytes(candidate.encoding[:4].ljust(4, b"\0"), "little")
    if raw & 3 != 3:  # 16-bit: c.fld / c.fsd / c.fldsp / c.fsdsp also need D
        # Reserved encodings are capstone's to judge; jumps and branches land on
        # whatever follows the probe and c.ebreak traps, so their fate says nothing about C.
        mnemonic = (candidate.capstone_text or "").split(" ")[0]
        if not candidate.capstone_length or candidate.transfers_control or mnemonic == "c.ebreak":
            return None
        return ("c", "d") if riscv_compressed_fp_access(raw & 0xFFFF) else ("c",)
    opcode, funct3, funct7 = raw & 0x7F, raw >> 12 & 7, raw >> 25
    if opcode == _AMO:
        return ("a",) if funct3 in _AMO_WIDTHS and candidate.capstone_length else None
    if opcode == _OPFP:
        # only encodings capstone knows: op-fp has many reserved functions and rounding modes
        return (_FP_FORMAT[funct7 & 3],) if candidate.capstone_length else None
    if opcode in (_OP, _OP32):
        found = _R_TYPE.get((opcode, funct7, funct3))
        return (found,) if found else None
    found = _I_TYPE.get((opcode, funct3))
    return (found,) if found else None


def claimed_supported(candidate: Candidate, claims: frozenset[str]) -> bool | None:
    """True / False as the hart's claims cover the candidate's extensions; None: unattributed."""
    needed = required_extensions(candidate)
    if needed is None:
        return None
    return all(e in claims or (e in ("zba", "zbb", "zbs") and "b" in claims) for e in needed)
