"""ELF64 executables of an assembled Program, for debuggers and disassemblers.

One PT_LOAD per section at its base, a section header per section, and a
`.symtab`/`.strtab` holding every label; no timestamps, so output is a pure
function of the program.  Layout (all little-endian):

    ELF header | program headers | section bytes (offset = base mod PAGE)
    | .symtab | .strtab | .shstrtab | section headers
"""

from __future__ import annotations

import struct
from pathlib import Path

from toolchain.program import Program

PAGE = 0x1000
MACHINES = {"x86_64": 62, "riscv64": 243}  # EM_X86_64, EM_RISCV

_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")

ET_EXEC, EV_CURRENT = 2, 1
IDENT = b"\x7fELF" + bytes([2, 1, EV_CURRENT, 0])  # 64-bit, little-endian, SysV ABI
PT_LOAD, PF_RWX = 1, 0x7
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHF_WRITE_ALLOC_EXEC = 0x7
STB_GLOBAL, STT_NOTYPE = 1, 0


class _Strings:
    """A string table under construction: offsets of NUL-terminated names."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0")

    def add(self, name: str) -> int:
        offset = len(self.data)
        self.data += name.encode() + b"\0"
        return offset


def _align(offset: int, alignment: int) -> int:
    return offset + (-offset % alignment)


def elf_bytes(program: Program, entry: int, machine: str = "x86_64", flags: int = 0) -> bytes:
    """The ELF64 executable for `program` starting at `entry`."""
    if machine not in MACHINES:
        raise ValueError(f"unknown machine '{machine}'; known: {', '.join(MACHINES)}")
    names = list(program.sections)
    offset = _HEADER.size + _PROGRAM_HEADER.size * len(names)
    placements = []  # (file offset, base, bytes) per section
    for name in names:
        base, data = program.bases[name], program.sections[name]
        offset += (base - offset) % PAGE  # loaders need offset = vaddr (mod p_align)
        placements.append((offset, base, data))
        offset += len(data)

    section_index = {name: index + 1 for index, name in enumerate(names)}
    strtab, shstrtab = _Strings(), _Strings()
    symtab = bytearray(_SYMBOL.size)  # entry 0 is the null symbol
    for symbol in sorted(program.symbols.values(), key=lambda s: (s.address, s.name)):
        symtab += _SYMBOL.pack(
            strtab.add(symbol.name), STB_GLOBAL << 4 | STT_NOTYPE, 0,
            section_index[symbol.section], symbol.address, 0,
        )  # fmt: skip

    symtab_offset = _align(offset, 8)
    strtab_offset = symtab_offset + len(symtab)
    section_names = [shstrtab.add("." + name) for name in names]
    symtab_name, strtab_name, shstrtab_name = (
        shstrtab.add(n) for n in (".symtab", ".strtab", ".shstrtab")
    )
    shstrtab_offset = strtab_offset + len(strtab.data)
    headers_offset = _align(shstrtab_offset + len(shstrtab.data), 8)
    section_count = len(names) + 4  # null, sections, .symtab, .strtab, .shstrtab

    out = bytearray(
        _HEADER.pack(
            IDENT, ET_EXEC, MACHINES[machine], EV_CURRENT, entry, _HEADER.size, headers_offset,
            flags, _HEADER.size, _PROGRAM_HEADER.size, len(names), _SECTION_HEADER.size,
            section_count, section_count - 1,
        )
    )  # fmt: skip
    for file_offset, base, data in placements:
        out += _PROGRAM_HEADER.pack(
            PT_LOAD, PF_RWX, file_offset, base, base, len(data), len(data), PAGE
        )
    for file_offset, _, data in placements:
        out += bytes(file_offset - len(out)) + data
    out += bytes(symtab_offset - len(out)) + symtab + strtab.data + shstrtab.data
    out += bytes(headers_offset - len(out))

    out += bytes(_SECTION_HEADER.size)
    for name_offset, (file_offset, base, data) in zip(section_names, placements, strict=True):
        out += _SECTION_HEADER.pack(
            name_offset, SHT_PROGBITS, SHF_WRITE_ALLOC_EXEC, base, file_offset, len(data),
            0, 0, 16, 0,
        )  # fmt: skip
    strtab_index = len(names) + 2
    out += _SECTION_HEADER.pack(
        symtab_name, SHT_SYMTAB, 0, 0, symtab_offset, len(symtab), strtab_index, 1, 8, _SYMBOL.size
    )  # sh_info = 1: every symbol after the null one is global
    out += _SECTION_HEADER.pack(
        strtab_name, SHT_STRTAB, 0, 0, strtab_offset, len(strtab.data), 0, 0, 1, 0
    )
    out += _SECTION_HEADER.pack(
        shstrtab_name, SHT_STRTAB, 0, 0, shstrtab_offset, len(shstrtab.data), 0, 0, 1, 0
    )
    return bytes(out)


def write_elf(
    program: Program, path: Path, entry: int, machine: str = "x86_64", flags: int = 0
) -> None:
    """Write `program` as an ELF64 executable to `path` (see elf_bytes)."""
    Path(path).write_bytes(elf_bytes(program, entry, machine, flags))
