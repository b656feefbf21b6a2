"""x86 assembler: keystone 0.9.2 encodes one statement at a time, we do the rest.

Source dialect
--------------
* Intel syntax as keystone 0.9.2 accepts it, one statement per line.  Comments
  start with `;` (keystone would read `;` as a statement separator, so it never
  sees one).  Far jumps are written `ljmp SEL:OFF`.
* `name:` defines a label (several may precede a statement on one line).  Labels,
  `.equ` names and the constants passed from Python share ONE namespace across
  every file and section of one `assemble` call; defining a name twice is an
  error naming both places, and a name may not be a register, keyword or mnemonic.
* Operands may use symbols and integer expressions (see toolchain.expr), `$` is
  the address of the current statement.  Symbols are replaced by numbers before
  keystone sees the line: `[sym]`, `[rbx + sym + 8]` are memory, bare `sym` is an
  immediate or branch target, `SEL:OFF` a far pointer, and `[rip + sym]` is the
  rip-relative address of `sym` (the displacement is computed for you).
* Directives: `.code16/.code32/.code64`; `.byte/.word/.long/.quad expr, ...`;
  `.ascii "str"`, `.asciz "str"` (C escapes); `.align N[, fill]` (to an absolute
  address multiple of N); `.space N[, fill]`; `.org ADDRESS` (pad with zeros up to
  an absolute address, error if already past it); `.equ NAME, expr`.
* Layout iterates passes until every symbol is stable (forward references, jumps
  relaxing short/near); it is an error if that does not happen.
* Every instruction is decoded back with capstone and must be exactly one
  instruction, the same mnemonic, with every source register and operand value,
  and no operand-size prefix the source did not ask for (see toolchain.capcheck).
  Known keystone traps it catches: `ljmp SEL:OFF32` in `.code32` (emit
  `.byte 0xEA` / `.long OFF` / `.word SEL` instead), `iret` in 64-bit code (a
  16-bit iret: write `iretq`), `fs:[ABS]`/`gs:[ABS]` turned rip-relative (use a
  base register).  In 16-bit code keystone's spurious 0x66 on `call`, `ret`,
  `retf`, `push imm` and relative jumps is repaired (toolchain.x86fixups).
* Not supported: NASM-style `[es:di]` (write `es:[di]`), `db`/`dw` (use `.byte`/
  `.word`), includes, macros, local labels.

Output is a pure function of the inputs, so rebuilds are byte-identical.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keystone

from toolchain.capcheck import mismatch
from toolchain.expr import NAME, ExprError, evaluate
from toolchain.program import AssemblyError, Line, Program, Section, Symbol
from toolchain.x86fixups import repair_16bit
from toolchain.x86operands import Operands, rewrite_operands
from toolchain.x86source import RESERVED, Statement, StatementKind, parse_source

__all__ = ["AssemblyError", "Line", "Program", "Section", "Symbol", "assemble", "assemble_snippet"]

MAX_PASSES = 16
_KEYSTONE_MODES = {16: keystone.KS_MODE_16, 32: keystone.KS_MODE_32, 64: keystone.KS_MODE_64}
_DATA_WIDTHS = {".byte": 1, ".word": 2, ".long": 4, ".quad": 8}
_CODE_BITS = {".code16": 16, ".code32": 32, ".code64": 64}


@functools.cache
def _encoder(bits: int) -> keystone.Ks:
    return keystone.Ks(keystone.KS_ARCH_X86, _KEYSTONE_MODES[bits])


@dataclass
class _Placed:
    """One statement as laid out by one pass."""

    statement: Statement
    section: str
    address: int
    bits: int
    code: bytes = b""
    instruction: Operands | None = None  # for instructions: what keystone was given
    error: str | None = None  # may be an artefact of estimates; reported only once stable


@dataclass
class _Pass:
    symbols: dict[str, int] = field(default_factory=dict)  # labels and .equ values
    placed: list[_Placed] = field(default_factory=list)
    guessed: bool = False  # a forward reference had no estimate yet


class _Assembler:
    """Multi-pass layout of parsed sections over one shared namespace."""

    def __init__(self, units: list[tuple[Section, list[Statement]]], constants: Mapping[str, int]):
        self.units = units
        self.constants = dict(constants)
        self.keystone_cache: dict[tuple[str, int, int], bytes | str] = {}
        self.first_seen: dict[tuple[str, int], tuple[int, bytes | str]] = {}
        self.position_free: dict[tuple[str, int], bytes | str] = {}
        self.defined: dict[str, Statement] = {}
        for name, value in self.constants.items():
            if not isinstance(name, str) or not NAME.match(name) or name.lower() in RESERVED:
                raise AssemblyError("<constants>", 0, str(name), "not a usable symbol name")
            if not isinstance(value, int):
                raise AssemblyError("<constants>", 0, name, f"value {value!r} is not an integer")
        for _, statements in units:
            for statement in statements:
                if statement.kind is StatementKind.LABEL:
                    self._define(statement.name, statement)
                elif statement.name == ".equ":
                    if len(statement.args) != 2 or not NAME.match(statement.args[0]):
                        raise statement.error("expected `.equ NAME, expression`")
                    if statement.args[0].lower() in RESERVED:
                        raise statement.error(
                            f"'{statement.args[0]}' is a register, keyword or mnemonic"
                        )
                    self._define(statement.args[0], statement)

    def _define(self, name: str, statement: Statement) -> None:
        if name in self.constants:
            raise statement.error(f"'{name}' is already a constant passed from Python")
        if name in self.defined:
            first = self.defined[name]
            raise statement.error(
                f"duplicate symbol '{name}' (first defined at {first.file}:{first.line})"
            )
        self.defined[name] = statement

    def run(self) -> Program:
        estimate: dict[str, int] = {}
        for _ in range(MAX_PASSES):
            layout = self._pass(estimate)
            if not layout.guessed and layout.symbols == estimate:
                return self._finish(layout)
            previous, estimate = estimate, layout.symbols
        moving = next(n for n, v in estimate.items() if previous.get(n) != v)
        raise self.defined[moving].error(
            f"layout does not converge after {MAX_PASSES} passes: '{moving}' keeps moving "
            f"({previous.get(moving, 0):#x} -> {estimate[moving]:#x})"
        )

    def _pass(self, estimate: dict[str, int]) -> _Pass:
        layout = _Pass()
        for section, statements in self.units:
            address, bits = section.base, section.bits
            for statement in statements:
                placed = _Placed(statement, section.name, address, bits)

                def resolve(name: str, here: int = address) -> int:
                    if name == "$":
                        return here
                    for table in (layout.symbols, self.constants, estimate):
                        if name in table:
                            return table[name]
                    if name in self.defined:  # forward reference, first sight
                        layout.guessed = True
                        return here
                    raise ExprError(f"unknown symbol '{name}'")

                try:
                    bits = self._place(placed, resolve, layout, estimate)
                except ExprError as error:
                    raise statement.error(str(error)) from None
                layout.placed.append(placed)
                address += len(placed.code)
        return layout

    def _place(self, placed: _Placed, resolve, layout: _Pass, estimate: dict[str, int]) -> int:
        """Fill in `placed`; returns the mode in force after it."""
        statement, name, args = placed.statement, placed.statement.name, placed.statement.args
        if statement.kind is StatementKind.LABEL:
            layout.symbols[name] = placed.address
        elif statement.kind is StatementKind.INSTRUCTION:
            self._encode(placed, resolve)
        elif name in _CODE_BITS:
            return _CODE_BITS[name]
        elif name == ".equ":
            layout.symbols[args[0]] = evaluate(args[1], resolve)
        else:
            placed.code, placed.error = _data(name, args, placed.address, resolve, statement)
        return placed.bits

    def _encode(self, placed: _Placed, resolve) -> None:
        statement = placed.statement
        operands = rewrite_operands(statement.args, resolve)
        if operands.rip_relative:  # displacement depends on the size: encode once to learn it
            probe = self._keystone(statement.name, operands, placed)
            size = len(probe) if isinstance(probe, bytes) else 0
            operands = rewrite_operands(statement.args, resolve, placed.address + size)
        result = self._keystone(statement.name, operands, placed)
        placed.instruction = operands
        if isinstance(result, str):
            placed.error = result
        elif placed.bits == 16:
            placed.code = repair_16bit(result, placed.address, statement.name, operands.words)
        else:
            placed.code = result

    def _keystone(self, mnemonic: str, operands: Operands, placed: _Placed) -> bytes | str:
        """keystone's encoding of one instruction at `placed.address` (or why it failed).
        Results are cached per (text, mode, address), and per (text, mode) once the
        same text gave the same bytes at two addresses: a relative or rip-relative
        encoding cannot, so the instruction does not depend on where it is."""
        text = f"{mnemonic} {operands.text}".strip()
        anywhere = (text, placed.bits)
        if anywhere in self.position_free:
            return self.position_free[anywhere]
        key = (text, placed.bits, placed.address)
        if key not in self.keystone_cache:
            try:
                encoding, _ = _encoder(placed.bits).asm(text, placed.address)
                result = bytes(encoding or b"") or f"keystone produced no bytes for `{text}`"
            except keystone.KsError as error:
                result = f"keystone rejects `{text}` in {placed.bits}-bit mode: {error}"
            self.keystone_cache[key] = result
            seen = self.first_seen.setdefault(anywhere, (placed.address, result))
            if (
                seen[0] != placed.address
                and seen[1] == result
                and abs(seen[0] - placed.address) < 0x10000
            ):
                self.position_free[anywhere] = result  # (16-bit offsets wrap at 64 KiB)
        return self.keystone_cache[key]

    def _finish(self, layout: _Pass) -> Program:
        checked: dict[tuple, str | None] = {}
        for placed in layout.placed:
            if placed.error:
                raise placed.statement.error(placed.error)
            if placed.instruction is not None:
                operands = placed.instruction
                key = (
                    placed.code, placed.bits, placed.address, placed.statement.name,
                    operands.values, operands.words,
                )  # fmt: skip
                if key not in checked:
                    checked[key] = mismatch(*key)
                if checked[key]:
                    raise placed.statement.error(checked[key])
        return _program(self.units, layout, self.constants)


def _data(
    name: str, args: tuple[str, ...], address: int, resolve, statement: Statement
) -> tuple[bytes, str | None]:
    """Bytes of a data or layout directive, and a layout-dependent error if any."""
    if name in _DATA_WIDTHS:
        width = _DATA_WIDTHS[name]
        if not args:
            raise statement.error(f"{name} needs at least one value")
        out, error = bytearray(), None
        for arg in args:
            value = evaluate(arg, resolve)
            if not -(1 << (8 * width - 1)) <= value < 1 << (8 * width):
                error = error or f"value {value:#x} does not fit in {name} ({8 * width} bits)"
            out += (value % (1 << (8 * width))).to_bytes(width, "little")
        return bytes(out), error
    if name in (".ascii", ".asciz"):
        if not args:
            raise statement.error(f'{name} needs a "string"')
        text = b"".join(_string(arg, statement) for arg in args)
        return text + (b"\0" if name == ".asciz" else b""), None
    if name in (".align", ".space"):
        if len(args) not in (1, 2):
            raise statement.error(f"expected `{name} N[, fill]`")
        count = evaluate(args[0], resolve)
        fill = evaluate(args[1], resolve) if len(args) == 2 else 0
        if not 0 <= fill <= 0xFF:
            raise statement.error(f"fill byte {fill:#x} is not in 0..0xff")
        if name == ".align" and count <= 0:
            raise statement.error(f"alignment {count} must be positive")
        if count < 0:
            return b"", f"negative size {count}"
        return bytes([fill]) * ((-address) % count if name == ".align" else count), None
    if name == ".org":
        if len(args) != 1:
            raise statement.error("expected `.org ADDRESS`")
        target = evaluate(args[0], resolve)
        if target < address:
            return b"", f"already at {address:#x}, past .org {target:#x} (section content too big)"
        return bytes(target - address), None
    raise statement.error(f"directive {name} is not handled here")


def _string(arg: str, statement: Statement) -> bytes:
    if len(arg) < 2 or arg[0] != '"' or arg[-1] != '"':
        raise statement.error(f'expected a "quoted string", got {arg}')
    try:
        return ast.literal_eval("b" + arg)
    except (SyntaxError, ValueError) as error:
        raise statement.error(f"bad string {arg}: {error} (ASCII and C escapes only)") from None


def _program(
    units: list[tuple[Section, list[Statement]]], layout: _Pass, constants: Mapping[str, int]
) -> Program:
    sections = {section.name: bytearray() for section, _ in units}
    symbols: dict[str, Symbol] = {}
    listing: list[Line] = []
    equs: dict[str, int] = {}
    for placed in layout.placed:
        statement = placed.statement
        sections[placed.section] += placed.code
        if statement.kind is StatementKind.LABEL:
            symbols[statement.name] = Symbol(
                statement.name, placed.address, placed.section, statement.file, statement.line
            )
        else:
            if statement.name == ".equ":
                equs[statement.args[0]] = layout.symbols[statement.args[0]]
            listing.append(
                Line(
                    placed.address, len(placed.code), statement.file, statement.line,
                    statement.text,
                )  # fmt: skip
            )
    bases = {section.name: section.base for section, _ in units}
    _check_overlap(units, sections)
    return Program(
        {n: bytes(b) for n, b in sections.items()}, bases, symbols, listing, {**constants, **equs}
    )


def _check_overlap(
    units: list[tuple[Section, list[Statement]]], sections: dict[str, bytearray]
) -> None:
    spans = sorted((s.base, s.base + len(sections[s.name]), s.name) for s, _ in units)
    for (_, end, name), (start, _, other) in zip(spans, spans[1:], strict=False):  # neighbours
        if start < end:
            raise AssemblyError(
                name, 0, "",
                f"section '{name}' ends at {end:#x}, overlapping '{other}' at {start:#x}",
            )  # fmt: skip


def assemble(sections: Sequence[Section], constants: Mapping[str, int]) -> Program:
    """Assemble every section (sources in order) over one shared namespace."""
    names = [s.name for s in sections]
    if len(set(names)) != len(names):
        raise ValueError(f"section names must be unique, got {names}")
    units = []
    for section in sections:
        if section.bits not in _KEYSTONE_MODES:
            raise ValueError(
                f"section '{section.name}': bits must be 16, 32 or 64, not {section.bits}"
            )
        statements = []
        for source in section.sources:
            statements += parse_source(Path(source).read_text(), str(source))
        units.append((section, statements))
    return _Assembler(units, constants).run()


def assemble_snippet(
    text: str, bits: int = 64, address: int = 0, constants: Mapping[str, int] = {}
) -> bytes:
    """Bytes of a piece of generated assembly placed at `address`; same dialect and checks."""
    if bits not in _KEYSTONE_MODES:
        raise ValueError(f"bits must be 16, 32 or 64, not {bits}")
    section = Section("snippet", address, (), bits)
    program = _Assembler([(section, parse_source(text, "<snippet>"))], constants).run()
    return program.sections["snippet"]
