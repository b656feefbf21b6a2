"""A machine program as evolution holds it: a straight line of instruction forms
with their registers and immediate, ending in the platform's return.

Three renderings: `Insn`s (readable, hashable), assembly text for the project's
assemblers (`text`, `assemble`), and the compact int64 array the evaluator and
the search kernels work on (`encode`/`decode`): one row per slot,
[form index, register 0, register 1, register 2, immediate], form index 0 being
an UNUSED slot.  `parse` reads assembly back (our own text, and the semantic
core's lowerings, with the riscv pseudo-instructions those use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from evolution.isa import IMM, MEM, REG, Form, Isa
from evolution.registry import isa_named

ROW = 5  # form, r0, r1, r2, imm
UNUSED = 0


@dataclass(frozen=True)
class Insn:
    form: str  # the form's name in its ISA
    regs: tuple[int, ...] = ()  # register numbers, one per register operand (MEM: its base)
    imm: int = 0  # the immediate, or a memory operand's displacement


@dataclass(frozen=True)
class MachineProgram:
    isa: str
    insns: tuple[Insn, ...]

    @property
    def instructions(self) -> int:
        """Every machine instruction (a compound form's each), the return included."""
        forms = isa_named(self.isa).by_name
        return sum(forms[i.form].size for i in self.insns) + 1


class ParseError(ValueError):
    """Assembly this representation cannot hold (branches, labels, unknown forms)."""


def operand_texts(isa: Isa, form: Form, insn: Insn) -> list[str]:
    out, slots = [], iter(insn.regs)
    for o in form.operands:
        if o.kind == REG:
            out.append(isa.render_register(next(slots), o.width))
        elif o.kind == MEM:
            out.append(isa.render_memory(next(slots), insn.imm, o.width))
        else:
            out.append(str(insn.imm))
    return out


def statement(isa: Isa, insn: Insn) -> str:
    form = isa.by_name[insn.form]
    ops = operand_texts(isa, form, insn)
    if form.render is not None:
        return form.render(ops)
    return f"{form.mnemonic} {', '.join(ops)}" if ops else form.mnemonic


def text(isa: Isa, program: MachineProgram) -> str:
    return "\n".join([*(statement(isa, i) for i in program.insns), isa.return_text]) + "\n"


def source_line(isa: Isa, insn: Insn) -> str:
    """What the assembler gets: the statement, or bytes for a form it refuses (Form.encode)."""
    form = isa.by_name[insn.form]
    if form.encode is None:
        return statement(isa, insn)
    return ".byte " + ", ".join(f"0x{b:02x}" for b in form.encode(insn.regs, insn.imm))


def assemble(isa: Isa, program: MachineProgram, features: frozenset[str] = frozenset()) -> bytes:
    """Machine code through the project's assemblers, the return included."""
    lines = [source_line(isa, i) for i in program.insns]
    return isa.assemble("\n".join([*lines, isa.return_text]) + "\n", features)


# the evaluator's encoding ------------------------------------------------------------

def encode(isa: Isa, program: MachineProgram, slots: int | None = None) -> np.ndarray:
    """The program as rows, padded with UNUSED slots up to `slots`."""
    n = len(program.insns) if slots is None else slots
    if n < len(program.insns):
        raise ValueError(f"{len(program.insns)} instructions do not fit {n} slots")
    rows = np.zeros((n, ROW), dtype=np.int64)
    if program.insns:
        # built as Python lists and converted once: polishing a translation encodes tens
        # of thousands of candidates
        rows[:len(program.insns)] = [
            [isa.form_index(insn.form), *insn.regs, *(0,) * (3 - len(insn.regs)),
             insn.imm if insn.imm < (1 << 63) else insn.imm - (1 << 64)]
            for insn in program.insns]
    return rows


def decode(isa: Isa, rows: np.ndarray) -> MachineProgram:
    forms = _decoding(isa.name)
    insns = []
    for index, r0, r1, r2, value in rows.tolist():
        if index == UNUSED:
            continue
        name, registers, lowest = forms[index]
        if lowest is None:
            value = 0
        elif value < lowest:
            value &= (1 << 64) - 1  # an immediate read as unsigned (movabs)
        insns.append(Insn(name, (r0, r1, r2)[:registers], value))
    return MachineProgram(isa.name, tuple(insns))


@cache
def _decoding(isa_name: str) -> tuple[tuple[str, int, int | None] | None, ...]:
    """Per form index: the form's name, its register operands' count and its immediate
    operand's lowest value (None: no immediate); index 0, UNUSED, has none."""
    found: list[tuple[str, int, int | None] | None] = [None]
    for form in isa_named(isa_name).forms:
        imm = form.immediate_operand
        found.append((form.name, len(form.register_operands),
                      None if imm is None else form.operands[imm].lo))
    return tuple(found)


# parsing ---------------------------------------------------------------------------

_X86_MEM = re.compile(r"^(byte|word|dword|qword)\s+ptr\s+\[\s*(\w+)\s*(?:([+-])\s*(\w+))?\s*\]$")
_X86_ADDR = re.compile(r"^\[\s*(\w+)(?:\s*\*\s*(\d))?(?:\s*\+\s*(\w+)(?:\s*\*\s*(\d))?)?"
                       r"(?:\s*([+-])\s*(\w+))?\s*\]$")
_RISCV_MEM = re.compile(r"^(-?\w+)\((\w+)\)$")
_WIDTH = {"byte": 8, "word": 16, "dword": 32, "qword": 64}


def _int(s: str) -> int | None:
    try:
        return int(s, 0)
    except ValueError:
        return None


def split_statement(line: str) -> tuple[str, list[str]]:
    """A statement's mnemonic (lower case) and its operands' texts."""
    head, _, rest = line.strip().partition(" ")
    ops, depth, cur = [], 0, ""
    for ch in rest:
        if ch == "," and depth == 0:
            ops.append(cur.strip())
            cur = ""
            continue
        depth += 1 if ch in "[(" else -1 if ch in "])" else 0
        cur += ch
    if cur.strip():
        ops.append(cur.strip())
    return head.lower(), ops


def _operand(isa: Isa, text_: str):
    """('reg', number, width) | ('imm', value) | ('mem', base, disp, width) | ('addr', ...)."""
    r = isa.parse_register(text_)
    if r is not None:
        return ("reg", *r)
    value = _int(text_)
    if value is not None:
        return ("imm", value)
    m = _X86_MEM.match(text_.lower())
    if m:
        base = isa.parse_register(m.group(2))
        disp = _int(m.group(4) or "0")
        if base and disp is not None:
            return ("mem", base[0], -disp if m.group(3) == "-" else disp, _WIDTH[m.group(1)])
    m = _X86_ADDR.match(text_.lower())
    if m:
        return ("addr", m.groups())
    m = _RISCV_MEM.match(text_.lower())
    if m:
        base, disp = isa.parse_register(m.group(2)), _int(m.group(1))
        if base and disp is not None:
            return ("mem", base[0], disp, None)
    raise ParseError(f"cannot read operand {text_!r}")


def _lea(isa: Isa, mnemonic: str, ops: list) -> Insn | None:
    """x86 lea: which of the lea forms the address expression is."""
    if mnemonic != "lea" or len(ops) != 2 or ops[0][0] != "reg" or ops[1][0] != "addr":
        return None
    _, dst, w = ops[0]
    a, a_scale, b, b_scale, sign, disp_text = ops[1][1]
    disp = _int(disp_text or "0")
    if disp is None:
        return None
    disp = -disp if sign == "-" else disp
    if b and isa.parse_register(b) is None and b_scale is None and disp_text is None:
        b, disp = None, _int(b)  # [base + 8]: the second term is the displacement
        if disp is None:
            return None
    ra = isa.parse_register(a)
    rb = isa.parse_register(b) if b else None
    if ra is None or (b and rb is None):
        return None
    if rb is None and a_scale is None:
        return Insn(f"lea r{w}, [r + d]", (dst, ra[0]), disp)
    if rb is None:
        return Insn(f"lea r{w}, [r*{a_scale} + d]", (dst, ra[0]), disp)
    if a_scale is not None:
        return None
    return Insn(f"lea r{w}, [r + r*{b_scale or 1} + d]", (dst, ra[0], rb[0]), disp)


def _operands(isa: Isa, texts: list[str]) -> list | None:
    try:
        return [_operand(isa, x) for x in texts]
    except ParseError:
        return None


def _match(isa: Isa, mnemonic: str, texts: list[str]) -> Insn:
    for form in isa.forms:
        if form.mnemonic != mnemonic:
            continue
        n = len(form.operands)
        if len(texts) != n + len(form.fixed) or [t.lower() for t in texts[n:]] != list(form.fixed):
            continue
        ops = _operands(isa, form.unrender(texts) if form.unrender else texts)
        if ops is None:
            continue
        regs, value, ok = [], 0, True
        for spec, got in zip(form.operands, ops, strict=False):
            if (spec.kind == REG and got[0] == "reg" and got[2] == spec.width
                    and got[1] in isa.in_class(spec.regs)):
                regs.append(got[1])
            elif spec.kind == IMM and got[0] == "imm" and spec.lo <= got[1] <= spec.hi:
                value = got[1]
            elif spec.kind == MEM and got[0] == "mem" and got[3] in (spec.width, None):
                regs.append(got[1])
                value = got[2]
            else:
                ok = False
                break
        if ok:
            return Insn(form.name, tuple(regs), value)
    raise ParseError(f"no {isa.name} form reads {mnemonic} {', '.join(texts)}")


def _literal(piece: str) -> str:
    """Written text as a pattern: spaces optional around commas and semicolons."""
    out = re.escape(piece)
    for sep in (",", ";"):
        out = out.replace(re.escape(sep + " "), rf"\s*{sep}\s*")
    return out.replace(re.escape(" "), r"\s+")


@cache
def _compound_patterns(isa: Isa) -> tuple[tuple[Form, re.Pattern], ...]:
    """Each compound form (size > 1: statements and a local label on one line, as its render
    writes them) as a pattern reading its registers back; a register named twice must be
    the same register."""
    out = []
    for form in isa.forms:
        if form.size == 1 or form.render is None:
            continue
        slots = [i for i, o in enumerate(form.operands) if o.kind == REG]
        written = form.render([f"\0{i}\0" if i in slots else "" for i in range(
            len(form.operands))])
        pattern, seen = "", set()
        for k, piece in enumerate(written.split("\0")):
            if k % 2 == 0:
                pattern += _literal(piece)
            else:
                pattern += f"(?P=r{piece})" if piece in seen else rf"(?P<r{piece}>[\w.]+)"
                seen.add(piece)
        out.append((form, re.compile(pattern + "$")))
    return tuple(out)


def _compound(isa: Isa, line: str) -> Insn | None:
    for form, pattern in _compound_patterns(isa):
        m = pattern.match(line)
        if m is None:
            continue
        regs = [isa.parse_register(m.group(f"r{i}")) for i, o in enumerate(form.operands)
                if o.kind == REG]
        if all(r is not None for r in regs):
            return Insn(form.name, tuple(r[0] for r in regs))
    return None


def parse(isa: Isa, source: str) -> MachineProgram:
    """Assembly (one statement a line, or a compound form's statements on one line, ending
    with the return) as a MachineProgram."""
    insns: list[Insn] = []
    lines = [ln.split("#")[0].strip() for ln in source.splitlines()]
    lines = [ln for ln in lines if ln]
    compounds = [_compound(isa, ln) for ln in lines]
    lines = [ln if c is not None else ln.split(";")[0].strip() for ln, c in zip(
        lines, compounds, strict=True)]
    if not lines or lines[-1] != isa.return_text:
        raise ParseError(f"a program ends with its one `{isa.return_text}`")
    for line, compound in zip(lines[:-1], compounds, strict=False):
        if compound is not None:
            insns.append(compound)
            continue
        if line.endswith(":"):
            raise ParseError(f"label {line!r}: only straight-line code can be evolved")
        mnemonic, texts = split_statement(line)
        mnemonic = isa.aliases.get(mnemonic, mnemonic)
        try:
            expanded = isa.expand(mnemonic, texts) if isa.expand else [(mnemonic, texts)]
        except ValueError as error:
            raise ParseError(str(error)) from None
        for m, t in expanded:
            if m == isa.return_text:
                raise ParseError("a return before the end: only straight-line code can be evolved")
            ops = _operands(isa, t)
            insns.append((ops is not None and _lea(isa, m, ops)) or _match(isa, m, t))
    return MachineProgram(isa.name, tuple(insns))


def random_insn(isa: Isa, form: Form, rng, registers: tuple[int, ...], bases: tuple[int, ...],
                displacements: tuple[int, ...] = (0,)) -> Insn:
    """An instance of `form`: registers drawn from `registers` (memory bases from `bases`),
    the immediate from its range, often an edge of it (0, 1, -1, the ends, small ones)."""
    regs: list[int] = []
    value = 0
    for o in form.operands:
        if o.kind == REG:
            regs.append(rng.choice([r for r in registers if r in isa.in_class(o.regs)]))
        elif o.kind == MEM:
            regs.append(rng.choice(bases))
            value = rng.choice(displacements)
        else:
            edges = [x for x in (0, 1, -1, 2, o.lo, o.hi, o.hi // 2, 31, 32, 63)
                     if o.lo <= x <= o.hi]
            value = rng.choice(edges) if rng.random() < 0.5 else rng.randint(o.lo, o.hi)
    return Insn(form.name, tuple(regs), value)
