"""Instruction selection for x86-64 (System V: inputs in rdi, rsi, rdx, rcx, r8,
r9; result in rax; rbx, rbp, r12-r15 preserved).  Intel syntax for keystone.

Register contents: a w-bit value lives in the low w bits; the bits above are
unspecified, so every template that depends on them (right shifts, compares,
bit counts, extension) first extends into a scratch register.  Unsigned
division is `div` with a guard: x86 faults on a zero divisor, the IR does not.
Reserved (never allocated): rax, rdx (mul high, results), rcx (shift counts),
r10, r11 (operand slots: constants and extended copies).
"""

from __future__ import annotations

from arch import X86_64
from sem.interp import signed
from sem.ir import Node
from sem.regalloc import Lowered, OneInstruction, Operand, lower

NAMES = {  # 64, 32, 16, 8-bit names of each register
    "rax": ("rax", "eax", "ax", "al"), "rcx": ("rcx", "ecx", "cx", "cl"),
    "rdx": ("rdx", "edx", "dx", "dl"), "rbx": ("rbx", "ebx", "bx", "bl"),
    "rsi": ("rsi", "esi", "si", "sil"), "rdi": ("rdi", "edi", "di", "dil"),
    "rbp": ("rbp", "ebp", "bp", "bpl"),
    **{f"r{i}": (f"r{i}", f"r{i}d", f"r{i}w", f"r{i}b") for i in range(8, 16)},
}
SLOTS = ("r10", "r11", "rax")  # scratch for operand 0, 1, 2
SETCC = {"eq": "sete", "ne": "setne", "ult": "setb", "ule": "setbe", "slt": "setl", "sle": "setle"}
SIMPLE = {"add": "add", "sub": "sub", "and": "and", "or": "or", "xor": "xor", "mul": "imul"}
SHIFTS = {"shl": "shl", "lshr": "shr", "ashr": "sar", "rotl": "rol", "rotr": "ror"}
PTR = {8: "byte", 16: "word", 32: "dword", 64: "qword"}


def r64(reg: str) -> str: return NAMES[reg][0]
def r32(reg: str) -> str: return NAMES[reg][1]
def op_name(reg: str, w: int) -> str: return r64(reg) if w == 64 else r32(reg)


def sub(reg: str, w: int) -> str:
    return {64: r64(reg), 32: r32(reg), 16: NAMES[reg][2]}.get(w, NAMES[reg][3])


def _fits_imm32(value: int) -> bool:
    return -(1 << 31) <= value < (1 << 31)


class X86Target:
    """Registers the System V lowering allocates from."""

    name = X86_64.name
    param_regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
    pool = ("rsi", "rdi", "r8", "r9", "rbx", "rbp", "r12", "r13", "r14", "r15")
    callee_saved = frozenset({"rbx", "rbp", "r12", "r13", "r14", "r15"})
    fuses_compares = True  # cmp + cmovcc: no setcc, no test

    def __init__(self, extensions: frozenset[str] = frozenset()) -> None:
        self.extensions = extensions
        # popcount(x) & 1 without popcnt: x folded to a byte, then PF (see emit_parity)
        self.parity_in_flags = "popcnt" not in extensions

    def move(self, dst: str, src: str) -> str:
        return f"mov {dst}, {src}"

    def frame(self, saved: list[str], body: list[str], result: Operand | None) -> list[str]:
        out = [f"push {reg}" for reg in saved] + body
        if result is not None and result.reg != "rax":
            out.append(f"mov rax, {result.imm}" if result.reg is None else f"mov rax, {result.reg}")
        return out + [f"pop {reg}" for reg in reversed(saved)] + ["ret"]

    # operand helpers -------------------------------------------------------
    def _reg(self, o: Operand, slot: int, out: list[str]) -> str:
        """The operand in a register (constants go to the slot's scratch register)."""
        if o.reg is not None:
            return o.reg
        out.append(f"mov {op_name(SLOTS[slot], o.width)}, {o.imm}")
        return SLOTS[slot]

    def _extend(self, o: Operand, kind: str, into: str, out: list[str]) -> str:
        """Zero- ('z') or sign- ('s') extend the operand to 64 bits in `into`."""
        w = o.width
        if o.reg is None:
            out.append(f"mov {into}, {signed(o.imm, w) if kind == 's' else o.imm}")
        elif w == 64:
            if into != o.reg:
                out.append(f"mov {into}, {o.reg}")
        elif w == 32:
            out.append(f"mov {r32(into)}, {r32(o.reg)}" if kind == "z"
                       else f"movsxd {into}, {r32(o.reg)}")
        elif w in (8, 16):
            out.append(f"movzx {r32(into)}, {sub(o.reg, w)}" if kind == "z"
                       else f"movsx {into}, {sub(o.reg, w)}")
        else:  # 1-bit
            out += [f"mov {r32(into)}, {r32(o.reg)}", f"and {r32(into)}, 1"]
            if kind == "s":
                out.append(f"neg {into}")
        return into

    def _clean(self, o: Operand, slot: int, kind: str, out: list[str]) -> str:
        if o.width in (32, 64) and o.reg is not None:
            return o.reg  # 32- and 64-bit instructions ignore/define the upper bits themselves
        return self._extend(o, kind, SLOTS[slot], out)

    def one_instruction(self, n: Node) -> OneInstruction | None:
        """With BMI1: x & (x - 1) is blsr, x & -x blsi, x ^ (x - 1) blsmsk and ~a & b andn
        (narrower values at 32 bits: the low bits are theirs)."""
        if "bmi1" not in self.extensions or n.op not in ("and", "xor"):
            return None
        for x, other in (n.args, n.args[::-1]):
            if x.op == "const":
                continue
            if _less_one(other, x):
                return OneInstruction("blsr" if n.op == "and" else "blsmsk", (other,), (x,))
            if n.op == "and" and (other.op == "neg" and other.args[0] is x or other.op == "sub"
                                  and _is_const(other.args[0], 0) and other.args[1] is x):
                return OneInstruction("blsi", (other,), (x,))
            if n.op == "and" and other.op == "not":
                return OneInstruction("andn", (other,), (other.args[0], x))
        return None

    def emit_one(self, n: Node, dest: str, found: OneInstruction, ops: list[Operand],
                 out: list[str]) -> None:
        w = max(n.width, 32)
        operands = [op_name(self._reg(o, i, out), w) for i, o in enumerate(ops)]
        out.append(f"{found.mnemonic} {op_name(dest, w)}, {', '.join(operands)}")

    # templates -------------------------------------------------------------
    def emit(self, n: Node, dest: str | None, ops: list[Operand], out: list[str]) -> None:
        w = n.width
        d = op_name(dest, w) if dest else ""
        op = n.op
        if op == "add" and self._lea(n, dest, ops, out):
            return
        if op in SIMPLE:
            a, b = ops
            if op != "sub" and a.reg is None:  # commutative: the constant as the immediate
                a, b = b, a
            out.append(f"mov {d}, {op_name(self._reg(a, 0, out), w)}")
            if b.reg is None and _fits_imm32(signed(b.imm, w)):
                imm = signed(b.imm, w)
                out.append(f"imul {d}, {d}, {imm}" if op == "mul" else f"{SIMPLE[op]} {d}, {imm}")
            else:
                out.append(f"{SIMPLE[op]} {d}, {op_name(self._reg(b, 1, out), w)}")
        elif op in ("not", "neg"):
            out += [f"mov {d}, {op_name(self._reg(ops[0], 0, out), w)}", f"{op} {d}"]
        elif op in ("mulhu", "mulhs"):
            kind = "z" if op == "mulhu" else "s"
            if w == 64:
                out.append(f"mov rax, {self._reg(ops[0], 0, out)}")
                out += [f"{'mul' if kind == 'z' else 'imul'} {self._reg(ops[1], 1, out)}",
                        f"mov {d}, rdx"]
            else:
                a = self._extend(ops[0], kind, "r10", out)
                b = self._extend(ops[1], kind, "r11", out)
                out += [f"mov {dest}, {a}", f"imul {dest}, {b}", f"shr {dest}, {w}"]
        elif op in ("udiv", "urem"):
            self._divide(n, dest, ops, out)
        elif op in SHIFTS:
            self._shift(n, dest, ops, out)
        elif op == "popcount":
            src = self._clean(ops[0], 0, "z", out) if w != 64 else self._reg(ops[0], 0, out)
            out.append(f"popcnt {dest}, {r64(src)}" if w == 64
                       else f"popcnt {r32(dest)}, {r32(src)}")
        elif op == "clz" and "lzcnt" in self.extensions:
            src = self._clean(ops[0], 0, "z", out)
            out.append(f"lzcnt {op_name(dest, max(w, 32))}, {op_name(src, max(w, 32))}")
            if w < 32:  # counted over 32 bits, the zero-extended operand's upper ones too
                out.append(f"sub {r32(dest)}, {32 - w}")
        elif op == "ctz" and "bmi1" in self.extensions:
            src = self._clean(ops[0], 0, "z", out)  # below 32 bits: extended into r10
            if w < 32:  # a bit just above the operand: tzcnt of zero is its width
                out.append(f"or {r32(src)}, {1 << w}")
            out.append(f"tzcnt {op_name(dest, max(w, 32))}, {op_name(src, max(w, 32))}")
        elif op == "clz":  # (w-1) - bsr(x), with bsr(0) taken as -1
            src = self._extend(ops[0], "z", "r10", out)
            out += ["mov rax, -1", f"bsr {dest}, {src}", f"cmovz {dest}, rax",
                    f"neg {dest}", f"add {dest}, {w - 1}"]
        elif op == "ctz":
            src = self._extend(ops[0], "z", "r10", out)
            out += [f"mov eax, {w}", f"bsf {dest}, {src}", f"cmovz {dest}, rax"]
        elif op in SETCC:
            out.append(f"xor {r32(dest)}, {r32(dest)}")
            self._compare(ops, out)
            out.append(f"{SETCC[op]} {sub(dest, 8)}")
        elif op == "select":
            c, t, f = ops
            if c.reg is None:
                chosen = t if c.imm & 1 else f
                value = chosen.imm if chosen.reg is None else op_name(chosen.reg, w)
                out.append(f"mov {d}, {value}")
                return
            out.append(f"mov {d}, {f.imm if f.reg is None else op_name(f.reg, w)}")
            tr = self._reg(t, 1, out)
            out += [f"test {r32(c.reg)}, 1",
                    f"cmovne {op_name(dest, max(w, 32))}, {op_name(tr, max(w, 32))}"]
        elif op in ("zext", "sext"):
            self._extend(ops[0], "z" if op == "zext" else "s", dest, out)
        elif op == "trunc":
            out.append(f"mov {dest}, {ops[0].imm if ops[0].reg is None else ops[0].reg}")
        elif op == "load":
            base = self._reg(ops[1], 1, out)
            mem = f"{PTR[w]} ptr [{base} + {n.attr}]"
            out.append(f"movzx {r32(dest)}, {mem}" if w < 32 else f"mov {d}, {mem}")
        elif op == "store":
            base = self._reg(ops[1], 1, out)
            v = ops[2]
            vw = v.width
            mem = f"{PTR[vw]} ptr [{base} + {n.attr}]"
            if v.reg is None and (vw < 64 or _fits_imm32(signed(v.imm, 64))):
                out.append(f"mov {mem}, {signed(v.imm, vw)}")
            else:
                out.append(f"mov {mem}, {sub(self._reg(v, 0, out), vw)}")
        else:
            raise ValueError(f"x86-64 lowering has no template for {op!r}")

    def _lea(self, n: Node, dest: str, ops: list[Operand], out: list[str]) -> bool:
        """An add of two registers, or of a register and a 32-bit constant, as one lea into
        a third (x86's three-operand add; the bits above a narrow result are unspecified
        anyway).  False where it is not one of those."""
        a, b = sorted(ops, key=lambda o: o.reg is None)
        if a.reg is None:
            return False
        d = op_name(dest, max(n.width, 32))
        if b.reg is not None:
            out.append(f"lea {d}, [{r64(a.reg)} + {r64(b.reg)}]")
            return True
        value = signed(b.imm, n.width)
        if not _fits_imm32(value):
            return False
        sign = "-" if value < 0 else "+"
        out.append(f"lea {d}, [{r64(a.reg)} {sign} {abs(value)}]")
        return True

    def emit_parity(self, n: Node, dest: str, operand: Operand, out: list[str]) -> None:
        """dest = popcount(operand) & 1 without popcnt, as gcc writes __builtin_parity: the
        upper half xored into the lower until 16 bits are left, then `xor al, ah` leaves PF
        (even parity of the low byte) for setnp.  ah is only encodable without a REX
        prefix, hence rax (and rcx for a 64-bit value's second fold)."""
        w = operand.width
        src = self._reg(operand, 0, out)
        if w == 64:
            out += [f"mov rax, {src}", "shr rax, 32", f"xor eax, {r32(src)}",
                    "mov ecx, eax", "shr ecx, 16", "xor eax, ecx", "xor al, ah"]
        elif w > 16:
            out += [f"mov eax, {r32(src)}", "shr eax, 16", f"xor eax, {r32(src)}", "xor al, ah"]
        elif w > 8:
            out += [f"movzx eax, {sub(src, 16)}", "xor al, ah"]
        else:
            out += [f"mov eax, {r32(src)}", f"and eax, {(1 << w) - 1}"]
        out += ["setnp al", f"movzx {r32(dest)}, al"]

    def _compare(self, ops: list[Operand], out: list[str]) -> None:
        """Flags from comparing two operands; narrow ones sign-extended first, which keeps
        their signed and their unsigned order alike."""
        aw = ops[0].width
        a = self._clean(ops[0], 0, "s", out)
        b = self._clean(ops[1], 1, "s", out)
        size = 64 if aw in (64,) or aw < 32 else 32
        out.append(f"cmp {op_name(a, size)}, {op_name(b, size)}")

    def emit_select_on(self, n: Node, dest: str, compare: Node, compare_ops: list[Operand],
                       if_true: Operand, if_false: Operand, out: list[str]) -> None:
        """dest = compare ? if_true : if_false as mov, cmp, cmovcc (operand slots 0 and 1
        hold the comparison's constants or extended operands, rax a constant if_true)."""
        w = max(n.width, 32)
        f = if_false
        t = self._reg(if_true, 2, out)
        out.append(f"mov {op_name(dest, n.width)}, "
                   f"{f.imm if f.reg is None else op_name(f.reg, n.width)}")
        self._compare(compare_ops, out)
        out.append(f"cmov{SETCC[compare.op][3:]} {op_name(dest, w)}, {op_name(t, w)}")

    def _divide(self, n: Node, dest: str, ops: list[Operand], out: list[str]) -> None:
        """udiv/urem through `div r64` on the zero-extended operands (rdx:rax / r11, no
        overflow with rdx zero).  x86 raises #DE on a zero divisor where the IR gives all
        ones (x % 0: x), so the divisor is made 1 when it is 0 (cl = whether it was,
        added to it) and the result corrected after: quotient or all ones, remainder (0
        then) or the dividend.  Branch-free, ten instructions or so, never faults."""
        a = self._extend(ops[0], "z", "r10", out)
        b = self._extend(ops[1], "z", "r11", out)
        out += ["xor ecx, ecx", f"test {b}, {b}", "sete cl", f"add {b}, rcx",
                f"mov rax, {a}", "xor edx, edx", f"div {b}", "neg rcx"]
        if n.op == "udiv":
            out += ["or rax, rcx", f"mov {dest}, rax"]
        else:
            out += [f"and rcx, {a}", "or rdx, rcx", f"mov {dest}, rdx"]

    def _shift(self, n: Node, dest: str, ops: list[Operand], out: list[str]) -> None:
        w, op = n.width, n.op
        a, b = ops
        if op == "lshr":
            src, width = self._clean(a, 0, "z", out), (64 if w < 32 else w)
        elif op == "ashr":
            src, width = self._clean(a, 0, "s", out), (64 if w < 32 else w)
        else:
            src, width = self._reg(a, 0, out), w
        out.append(f"mov {op_name(dest, width)}, {op_name(src, width)}")
        target = sub(dest, width) if op in ("rotl", "rotr") else op_name(dest, width)
        if b.reg is None:
            out.append(f"{SHIFTS[op]} {target}, {b.imm % w}")
            return
        out.append(f"mov ecx, {r32(b.reg)}")
        if w < 32 and op not in ("rotl", "rotr"):
            out.append(f"and ecx, {w - 1}")  # the IR takes amounts modulo the width
        out.append(f"{SHIFTS[op]} {target}, cl")


def _is_const(n: Node, value: int) -> bool:
    return n.op == "const" and n.attr == value


def _less_one(n: Node, x: Node) -> bool:
    """n is x - 1 (as a subtraction of 1 or an addition of all ones)."""
    if n.op == "sub":
        return n.args[0] is x and _is_const(n.args[1], 1)
    return n.op == "add" and any(a is x for a in n.args) and any(
        _is_const(a, (1 << n.width) - 1) for a in n.args)


def lower_x86(r, extensions: frozenset[str] = frozenset()) -> Lowered:
    """`extensions`: the templates keep to what every x86-64 board here runs (taken as
    given, as for riscv's RV64IM), popcnt included for a count; only a parity (popcount's
    lowest bit) is written with popcnt when "popcnt" is among them, and otherwise through
    the parity flag, which every x86-64 has.  With "lzcnt" and "bmi1", clz and ctz are
    lzcnt and tzcnt (bsr and bsf otherwise); with "bmi1", blsr, blsi, blsmsk and andn
    where the routine computes what they do (X86Target.one_instruction)."""
    return lower(r, X86Target(extensions))
