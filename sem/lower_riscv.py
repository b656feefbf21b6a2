"""Instruction selection for riscv64 (LP64: inputs in a0-a7, result in a0,
s1-s11 preserved).  Only RV64IM instructions, so any RV64 hart can run it, unless
given extensions the board has (Zbb, below).

Register contents: a w-bit value lives in the low w bits; the bits above are
unspecified, so templates that depend on them first extend into a scratch
register.  Reserved (never allocated): t3 (template scratch) and t4, t5, t6
(operand slots: constants and extended copies; t6 doubles as scratch in
two-operand templates).  Unsigned division is divu/remu (W forms at 32 bits),
whose division by zero is the IR's.  Bit counts have no RV64IM instruction: they are short
loops, bounded by the width; given the Zbb extension (`extensions`), they are its
cpop, clz and ctz instead (cpopw and clzw at 32 bits), a select of the larger or
smaller of two values its max or min, and a & ~b, a | ~b and ~(a ^ b) its andn, orn and
xnor.
"""

from __future__ import annotations

from itertools import count

from arch import RISCV64
from sem.interp import signed
from sem.ir import Node
from sem.regalloc import Lowered, OneInstruction, Operand, lower

SLOTS = ("t4", "t5", "t6")
SIMPLE = {"add": "add", "sub": "sub", "and": "and", "or": "or", "xor": "xor", "mul": "mul"}
IMMEDIATE = {"add": "addi", "and": "andi", "or": "ori", "xor": "xori"}
LOAD = {8: "lbu", 16: "lhu", 32: "lwu", 64: "ld"}
STORE = {8: "sb", 16: "sh", 32: "sw", 64: "sd"}


def _fits_imm12(value: int) -> bool:
    return -2048 <= value < 2048


class RiscvTarget:
    """Registers the LP64 lowering allocates from."""

    name = RISCV64.name
    param_regs = tuple(f"a{i}" for i in range(8))
    pool = (*param_regs, "t0", "t1", "t2", *(f"s{i}" for i in range(1, 12)))
    callee_saved = frozenset(f"s{i}" for i in range(1, 12))
    # a select on a comparison branches over a move (evolution's riscv branch-move forms)
    fuses_compares = True
    parity_in_flags = False

    def __init__(self, extensions: frozenset[str] = frozenset()) -> None:
        self._labels = count()
        self._zbb = "zbb" in extensions
        self._zba = "zba" in extensions

    def move(self, dst: str, src: str) -> str:
        return f"mv {dst}, {src}"

    def frame(self, saved: list[str], body: list[str], result: Operand | None) -> list[str]:
        size = (8 * len(saved) + 15) // 16 * 16  # the stack pointer stays 16-byte aligned
        out = [f"addi sp, sp, -{size}"] if saved else []
        out += [f"sd {reg}, {8 * i}(sp)" for i, reg in enumerate(saved)] + body
        if result is not None and result.reg != "a0":
            out.append(f"li a0, {result.imm}" if result.reg is None else f"mv a0, {result.reg}")
        out += [f"ld {reg}, {8 * i}(sp)" for i, reg in enumerate(saved)]
        return out + ([f"addi sp, sp, {size}"] if saved else []) + ["ret"]

    # operand helpers -------------------------------------------------------
    def _reg(self, o: Operand, slot: int, out: list[str]) -> str:
        if o.reg is not None:
            return o.reg
        out.append(f"li {SLOTS[slot]}, {o.imm}")
        return SLOTS[slot]

    def _extend(self, o: Operand, kind: str, into: str, out: list[str]) -> str:
        """Zero- ('z') or sign- ('s') extend the operand to 64 bits in `into`."""
        w = o.width
        if o.reg is None:
            out.append(f"li {into}, {signed(o.imm, w) if kind == 's' else o.imm}")
        elif w == 64:
            out.append(f"mv {into}, {o.reg}")
        elif kind == "s" and w == 32:
            out.append(f"addiw {into}, {o.reg}, 0")
        elif kind == "z" and w in (1, 8):
            out.append(f"andi {into}, {o.reg}, {(1 << w) - 1}")
        elif kind == "z" and w == 32 and self._zba:
            out.append(f"zext.w {into}, {o.reg}")
        else:
            shift = 64 - w
            out += [f"slli {into}, {o.reg}, {shift}",
                    f"{'srli' if kind == 'z' else 'srai'} {into}, {into}, {shift}"]
        return into

    def _clean(self, o: Operand, slot: int, kind: str, out: list[str]) -> str:
        if o.width == 64 and o.reg is not None:
            return o.reg
        return self._extend(o, kind, SLOTS[slot], out)

    def _label(self, stem: str) -> str:
        return f"sem_{stem}_{next(self._labels)}"

    def _count_ones(self, x: str, d: str, out: list[str]) -> None:
        """d = popcount(x): Zbb's cpop, or clearing x's lowest set bit until none is left."""
        if self._zbb:
            out.append(f"cpop {d}, {x}")
            return
        loop, done = self._label("ones"), self._label("ones_done")
        out += [f"li {d}, 0", f"{loop}:", f"beqz {x}, {done}", f"addi t3, {x}, -1",
                f"and {x}, {x}, t3", f"addi {d}, {d}, 1", f"j {loop}", f"{done}:"]

    def one_instruction(self, n: Node) -> OneInstruction | None:
        """With Zbb: a & ~b is andn, a | ~b orn, ~(a ^ b) xnor."""
        if not self._zbb:
            return None
        if n.op in ("and", "or"):
            for a, other in (n.args, n.args[::-1]):
                if other.op == "not":
                    return OneInstruction("andn" if n.op == "and" else "orn", (other,),
                                          (a, other.args[0]))
        if n.op == "not" and n.args[0].op == "xor":
            return OneInstruction("xnor", (n.args[0],), n.args[0].args)
        return None

    def emit_one(self, n: Node, dest: str, found: OneInstruction, ops: list[Operand],
                 out: list[str]) -> None:
        out.append(f"{found.mnemonic} {dest}, {self._reg(ops[0], 0, out)}, "
                   f"{self._reg(ops[1], 1, out)}")

    # templates -------------------------------------------------------------
    def emit(self, n: Node, d: str | None, ops: list[Operand], out: list[str]) -> None:
        w, op = n.width, n.op
        if op in SIMPLE:
            a, b = ops
            if op != "sub" and a.reg is None and b.reg is not None:  # commutative: the
                a, b = b, a  # constant as the immediate
            ra = self._reg(a, 0, out)
            imm = None if b.reg is not None else signed(b.imm, w)
            if imm is not None and op == "sub" and _fits_imm12(-imm):
                op, imm = "add", -imm
            if imm is not None and op in IMMEDIATE and _fits_imm12(imm):
                out.append(f"{IMMEDIATE[op]} {d}, {ra}, {imm}")
            else:
                out.append(f"{SIMPLE[op]} {d}, {ra}, {self._reg(b, 1, out)}")
        elif op == "not":
            out.append(f"not {d}, {self._reg(ops[0], 0, out)}")
        elif op == "neg":
            out.append(f"neg {d}, {self._reg(ops[0], 0, out)}")
        elif op in ("mulhu", "mulhs"):
            kind = "z" if op == "mulhu" else "s"
            if w == 64:
                insn = "mulhu" if kind == "z" else "mulh"
                out.append(f"{insn} {d}, {self._reg(ops[0], 0, out)}, {self._reg(ops[1], 1, out)}")
            else:
                # Both operands moved to the top of their registers: the 128-bit product
                # is a*b << (128 - 2w), so its high half holds a*b << (64 - 2w) whole
                # (w <= 32), and a*b >> w is that shifted right by 64 - w: four
                # instructions where extending both and multiplying takes six or more.
                s = 64 - w
                out += [f"slli t4, {self._reg(ops[0], 0, out)}, {s}",
                        f"slli t5, {self._reg(ops[1], 1, out)}, {s}",
                        f"{'mulhu' if kind == 'z' else 'mulh'} {d}, t4, t5",
                        f"{'srli' if kind == 'z' else 'srai'} {d}, {d}, {s}"]
        elif op in ("udiv", "urem"):
            # RV64M's x / 0 = all ones and x % 0 = x are the IR's: no guard.  32 bits: the
            # W form reads the low halves; narrower: the zero-extended operands
            insn = "divu" if op == "udiv" else "remu"
            if w == 32:
                a, b = self._reg(ops[0], 0, out), self._reg(ops[1], 1, out)
                insn += "w"
            elif w == 64:
                a, b = self._reg(ops[0], 0, out), self._reg(ops[1], 1, out)
            else:
                a, b = self._extend(ops[0], "z", "t4", out), self._extend(ops[1], "z", "t5", out)
            out.append(f"{insn} {d}, {a}, {b}")
        elif op in ("shl", "lshr", "ashr"):
            self._shift(n, d, ops, out)
        elif op in ("rotl", "rotr"):
            self._rotate(n, d, ops, out)
        elif op in ("popcount", "clz") and self._zbb and w == 32:
            # Zbb's W forms count in the low 32 bits, whatever is above them.  Not ctzw:
            # QEMU 7.2 counts it over all 64 bits (ctzw of 1 << 63 gives 63), and boards
            # avoid it (evolution/board_features.py)
            out.append(f"{'cpop' if op == 'popcount' else 'clz'}w {d}, {self._reg(ops[0], 0, out)}")
        elif op == "popcount":
            self._count_ones(self._extend(ops[0], "z", "t4", out), d, out)
        elif op == "clz" and self._zbb:  # of the zero-extended value, less the 64 - w above
            out.append(f"clz {d}, {self._extend(ops[0], 'z', 't4', out)}")
            if w < 64:
                out.append(f"addi {d}, {d}, {w - 64}")
        elif op == "clz":  # w minus the bit length
            x = self._extend(ops[0], "z", "t4", out)
            loop, done = self._label("clz"), self._label("clz_done")
            out += [f"li {d}, {w}", f"{loop}:", f"beqz {x}, {done}", f"srli {x}, {x}, 1",
                    f"addi {d}, {d}, -1", f"j {loop}", f"{done}:"]
        elif op == "ctz":
            # popcount of the trailing-zero mask; a sentinel bit at w makes ctz(0) = w
            x = self._extend(ops[0], "z", "t4", out)
            if w < 64:
                out += ["li t3, 1", f"slli t3, t3, {w}", f"or {x}, {x}, t3"]
            if self._zbb:
                out.append(f"ctz {d}, {x}")
            else:
                out += [f"neg t3, {x}", f"and {x}, {x}, t3", f"addi {x}, {x}, -1"]
                self._count_ones(x, d, out)
        elif op in ("eq", "ne", "ult", "ule", "slt", "sle"):
            a = self._clean(ops[0], 0, "s", out)  # sign extension keeps both orders
            b = self._clean(ops[1], 1, "s", out)
            out += {
                "eq": [f"xor {d}, {a}, {b}", f"seqz {d}, {d}"],
                "ne": [f"xor {d}, {a}, {b}", f"snez {d}, {d}"],
                "ult": [f"sltu {d}, {a}, {b}"],
                "ule": [f"sltu {d}, {b}, {a}", f"xori {d}, {d}, 1"],
                "slt": [f"slt {d}, {a}, {b}"],
                "sle": [f"slt {d}, {b}, {a}", f"xori {d}, {d}, 1"],
            }[op]
        elif op == "select":
            c, t, f = ops
            if c.reg is None:
                chosen = t if c.imm & 1 else f
                out.append(f"li {d}, {chosen.imm}" if chosen.reg is None
                           else f"mv {d}, {chosen.reg}")
                return
            out.append(f"andi t3, {c.reg}, 1")
            self._branch_over_move(d, "beq", t, f, out)
        elif op in ("zext", "sext"):
            self._extend(ops[0], "z" if op == "zext" else "s", d, out)
        elif op == "trunc":
            out.append(f"mv {d}, {self._reg(ops[0], 0, out)}")
        elif op == "load":
            out.append(f"{LOAD[w]} {d}, {n.attr}({self._reg(ops[1], 1, out)})")
        elif op == "store":
            base = self._reg(ops[1], 1, out)
            out.append(f"{STORE[ops[2].width]} {self._reg(ops[2], 0, out)}, {n.attr}({base})")
        else:
            raise ValueError(f"riscv64 lowering has no template for {op!r}")

    def emit_select_on(self, n: Node, dest: str, compare: Node, compare_ops: list[Operand],
                       if_true: Operand, if_false: Operand, out: list[str]) -> None:
        """dest = compare ? if_true : if_false: the comparison into t3 (equality as a
        difference), then a branch on t3 against zero over the move of if_true.  With Zbb,
        a select of the larger or smaller of the two values compared is max or min (maxu,
        minu for an unsigned comparison)."""
        a = self._clean(compare_ops[0], 0, "s", out)  # sign extension keeps both orders
        b = self._clean(compare_ops[1], 1, "s", out)
        if self._zbb and compare.op in ("slt", "sle", "ult", "ule"):
            x, y = (id(n) for n in compare.args)
            which = {(y, x): "max", (x, y): "min"}.get((id(if_true.node), id(if_false.node)))
            if which is not None:
                unsigned = "u" if compare.op in ("ult", "ule") else ""
                out.append(f"{which}{unsigned} {dest}, {a}, {b}")
                return
        out.append({"eq": f"xor t3, {a}, {b}", "ne": f"xor t3, {a}, {b}",
                    "ult": f"sltu t3, {a}, {b}", "ule": f"sltu t3, {b}, {a}",
                    "slt": f"slt t3, {a}, {b}", "sle": f"slt t3, {b}, {a}"}[compare.op])
        # the branch is taken (skipping the move) when the comparison is false: t3 is not
        # zero for eq, ule and sle (a difference, or the converse holding), zero otherwise
        skip = "bne" if compare.op in ("eq", "ule", "sle") else "beq"
        self._branch_over_move(dest, skip, if_true, if_false, out)

    def _branch_over_move(self, d: str, skip: str, t: Operand, f: Operand,
                          out: list[str]) -> None:
        """d = f, then unless `skip` t3 against zero, d = t: one line, as evolution's forms
        write a branch over a move (its local label 1 is the next line's address)."""
        rt = self._reg(t, 1, out)
        out.append(f"li {d}, {f.imm}" if f.reg is None else f"mv {d}, {f.reg}")
        out.append(f"{skip} t3, zero, 1f; mv {d}, {rt}; 1:")

    def _shift(self, n: Node, d: str, ops: list[Operand], out: list[str]) -> None:
        w, op = n.width, n.op
        a, b = ops
        kind = {"shl": None, "lshr": "z", "ashr": "s"}[op]
        base = {"shl": "sll", "lshr": "srl", "ashr": "sra"}[op]
        if w in (32, 64) or kind is None:
            src, suffix = self._reg(a, 0, out), ("w" if w == 32 else "")
        else:
            src, suffix = self._extend(a, kind, "t4", out), ""
        if b.reg is None:
            out.append(f"{base}i{suffix} {d}, {src}, {b.imm % w}")
        elif w in (32, 64):
            out.append(f"{base}{suffix} {d}, {src}, {b.reg}")
        else:
            out += [f"andi t3, {b.reg}, {w - 1}", f"{base} {d}, {src}, t3"]

    def _rotate(self, n: Node, d: str, ops: list[Operand], out: list[str]) -> None:
        """(x << k) | (x >> ((w - k) mod w)), on the zero-extended value."""
        w = n.width
        a, b = ops
        x = self._reg(a, 0, out) if w in (32, 64) else self._extend(a, "z", "t4", out)
        up, down = ("sll", "srl") if n.op == "rotl" else ("srl", "sll")
        suffix = "w" if w == 32 else ""
        if b.reg is None:
            k = b.imm % w
            out += [f"{up}i{suffix} t3, {x}, {k}", f"{down}i{suffix} {d}, {x}, {(w - k) % w}",
                    f"or {d}, {d}, t3"]
        elif w in (32, 64):  # the hardware takes shift amounts modulo w
            out += [f"{up}{suffix} t3, {x}, {b.reg}", f"neg t6, {b.reg}",
                    f"{down}{suffix} {d}, {x}, t6", f"or {d}, {d}, t3"]
        else:
            out += [f"andi t3, {b.reg}, {w - 1}", f"{up} t6, {x}, t3", "neg t3, t3",
                    f"andi t3, t3, {w - 1}", f"{down} {d}, {x}, t3", f"or {d}, {d}, t6"]


def lower_riscv(r, extensions: frozenset[str] = frozenset()) -> Lowered:
    """`extensions`: beyond RV64IM, those the lowering may use (Zbb's bit counts, min and
    max, andn, orn and xnor)."""
    return lower(r, RiscvTarget(extensions))
