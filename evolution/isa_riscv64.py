"""riscv64 working set: RV64I integer instructions with their W forms, loads and
stores, RV64M, and the Zba, Zbb and Zbs bit-manipulation extensions (RISC-V
unprivileged ISA 20191213; bitmanip 1.0.0).  Real instructions only: `li`, `mv`,
`not`... are assembler pseudo-instructions and count as what they expand to.

W forms compute on the low 32 bits and sign-extend the result into the 64-bit
register.  x0 reads as zero and ignores writes.

Fallback latencies: SiFive U74 figures (multiply 3, divide up to 64, load 3),
replaced by the timing family's measurements per board.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import arch
from evolution.compound import sdivrem
from evolution.isa import Form, Isa, PlatformAbi, Sem, bit, c, imm, low, mem, reg, wide
from sem.ir import (
    Node,
    ashr,
    clz,
    ctz,
    lshr,
    mulhs,
    mulhu,
    popcount,
    rotl,
    rotr,
    select,
    sext,
    slt,
    udiv,
    ult,
    urem,
    zext,
)
from toolchain import riscvasm
from toolchain.program import Section

REGISTERS = ("zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
             *(f"a{i}" for i in range(8)), *(f"s{i}" for i in range(2, 12)), "t3", "t4", "t5", "t6")
ALIASES = {"fp": 8, **{f"x{i}": i for i in range(32)}}
IMM12 = (-2048, 2047)
MARCH = "rv64gc"  # the base the assembler always takes; features add _zba, _zbb, _zbs


def register_name(number: int, width: int) -> str:
    return REGISTERS[number]


def parse_register(name: str) -> tuple[int, int] | None:
    name = name.strip().lower()
    if name in REGISTERS:
        return REGISTERS.index(name), 64
    return (ALIASES[name], 64) if name in ALIASES else None


def render_memory(base: int, disp: int, width: int) -> str:
    return f"{disp}({REGISTERS[base]})"


def w32(x: Node) -> Node:
    """A 32-bit result sign-extended into the register (the W forms)."""
    return sext(low(x, 32), 64)


FORMS: list[Form] = []


def form(name: str, operands, semantics, feature=None, latency=1.0, render=None,
         size: int = 1) -> None:
    mnemonic = name.split()[0]
    encode = _encoder(mnemonic) if feature in ("zba", "zbb", "zbs") else None
    FORMS.append(Form(name, mnemonic, tuple(operands), semantics, feature, latency,
                      encode=encode, render=render, size=size))


# Zba/Zbb/Zbs encodings (bitmanip 1.0.0, chapter 2): the project's assembler re-decodes
# every instruction with capstone, whose 5.0 release knows none of these, so their
# forms are written as `.word`s.  (funct7 or funct6, rs2 field, funct3, major opcode)
OP, OP_32, OP_IMM, OP_IMM_32 = 0x33, 0x3B, 0x13, 0x1B
_BITMANIP = {
    "add.uw": (0x04, None, 0, OP_32), "sh1add": (0x10, None, 2, OP), "sh2add": (0x10, None, 4, OP),
    "sh3add": (0x10, None, 6, OP), "sh1add.uw": (0x10, None, 2, OP_32),
    "sh2add.uw": (0x10, None, 4, OP_32), "sh3add.uw": (0x10, None, 6, OP_32),
    "andn": (0x20, None, 7, OP), "orn": (0x20, None, 6, OP), "xnor": (0x20, None, 4, OP),
    "clz": (0x30, 0, 1, OP_IMM), "clzw": (0x30, 0, 1, OP_IMM_32), "ctz": (0x30, 1, 1, OP_IMM),
    "ctzw": (0x30, 1, 1, OP_IMM_32), "cpop": (0x30, 2, 1, OP_IMM), "cpopw": (0x30, 2, 1, OP_IMM_32),
    "max": (0x05, None, 6, OP), "maxu": (0x05, None, 7, OP), "min": (0x05, None, 4, OP),
    "minu": (0x05, None, 5, OP), "sext.b": (0x30, 4, 1, OP_IMM), "sext.h": (0x30, 5, 1, OP_IMM),
    "zext.h": (0x04, 0, 4, OP_32), "rol": (0x30, None, 1, OP), "rolw": (0x30, None, 1, OP_32),
    "ror": (0x30, None, 5, OP), "rorw": (0x30, None, 5, OP_32),
    "roriw": (0x30, "imm", 5, OP_IMM_32),
    "orc.b": (0x14, 7, 5, OP_IMM), "rev8": (0x35, 0x18, 5, OP_IMM),
    "bclr": (0x24, None, 1, OP), "bext": (0x24, None, 5, OP), "binv": (0x34, None, 1, OP),
    "bset": (0x14, None, 1, OP),
}
_SHIFT6 = {"slli.uw": (0x02, 1, OP_IMM_32), "rori": (0x18, 5, OP_IMM), "bclri": (0x12, 1, OP_IMM),
           "bexti": (0x12, 5, OP_IMM), "binvi": (0x1A, 1, OP_IMM), "bseti": (0x0A, 1, OP_IMM)}


def _encoder(mnemonic: str):
    def encode(regs: tuple[int, ...], value: int) -> bytes:
        rd, rs1 = regs[0], regs[1]
        if mnemonic in _SHIFT6:
            f6, f3, major = _SHIFT6[mnemonic]
            word = f6 << 26 | (value & 63) << 20
        else:
            f7, rs2, f3, major = _BITMANIP[mnemonic]
            field = regs[2] if rs2 is None else (value & 31) if rs2 == "imm" else rs2
            word = f7 << 25 | field << 20
        word |= rs1 << 15 | f3 << 12 | rd << 7 | major
        return word.to_bytes(4, "little")
    return encode




def rrr(name: str, f, feature=None, latency=1.0) -> None:
    form(f"{name} r, r, r", [reg(64, "w"), reg(64), reg(64)],
         lambda s: s.write(0, f(s[1], s[2])), feature, latency)


def rri(name: str, f, lo: int, hi: int, feature=None) -> None:
    form(f"{name} r, r, imm", [reg(64, "w"), reg(64), imm(lo, hi)],
         lambda s: s.write(0, f(s[1], s[2])), feature)


def rr(name: str, f, feature=None, latency=1.0) -> None:
    form(f"{name} r, r", [reg(64, "w"), reg(64)], lambda s: s.write(0, f(s[1])), feature,
         latency)


def flag(b: Node) -> Node:
    return zext(b, 64)


def sh(n: Node, w: int) -> Node:
    """A W form's shift amount: the low five bits."""
    return low(n, w) & (w - 1)


def _base() -> None:
    rrr("add", lambda a, b: a + b)
    rrr("sub", lambda a, b: a - b)
    rrr("sll", lambda a, b: a << (b & 63))
    rrr("srl", lambda a, b: lshr(a, b & 63))
    rrr("sra", lambda a, b: ashr(a, b & 63))
    rrr("slt", lambda a, b: flag(slt(a, b)))
    rrr("sltu", lambda a, b: flag(ult(a, b)))
    rrr("xor", lambda a, b: a ^ b)
    rrr("or", lambda a, b: a | b)
    rrr("and", lambda a, b: a & b)
    rri("addi", lambda a, i: a + i, *IMM12)
    rri("slti", lambda a, i: flag(slt(a, i)), *IMM12)
    rri("sltiu", lambda a, i: flag(ult(a, i)), *IMM12)
    rri("xori", lambda a, i: a ^ i, *IMM12)
    rri("ori", lambda a, i: a | i, *IMM12)
    rri("andi", lambda a, i: a & i, *IMM12)
    rri("slli", lambda a, i: a << (i & 63), 0, 63)
    rri("srli", lambda a, i: lshr(a, i & 63), 0, 63)
    rri("srai", lambda a, i: ashr(a, i & 63), 0, 63)
    form("lui r, imm", [reg(64, "w"), imm(0, (1 << 20) - 1)],
         lambda s: s.write(0, w32(s[1] << 12)))
    rrr("addw", lambda a, b: w32(a + b))
    rrr("subw", lambda a, b: w32(a - b))
    rrr("sllw", lambda a, b: w32(low(a, 32) << sh(b, 32)))
    rrr("srlw", lambda a, b: w32(lshr(low(a, 32), sh(b, 32))))
    rrr("sraw", lambda a, b: w32(ashr(low(a, 32), sh(b, 32))))
    rri("addiw", lambda a, i: w32(a + i), *IMM12)
    rri("slliw", lambda a, i: w32(low(a, 32) << sh(i, 32)), 0, 31)
    rri("srliw", lambda a, i: w32(lshr(low(a, 32), sh(i, 32))), 0, 31)
    rri("sraiw", lambda a, i: w32(ashr(low(a, 32), sh(i, 32))), 0, 31)


def _memory() -> None:
    for name, w, signed in (("lb", 8, True), ("lh", 16, True), ("lw", 32, True), ("ld", 64, False),
                            ("lbu", 8, False), ("lhu", 16, False), ("lwu", 32, False)):
        def load(s: Sem, w=w, signed=signed) -> None:
            v = s.load(s[1], w)
            s.write(0, sext(v, 64) if signed else wide(v))
        form(f"{name} r, m", [reg(64, "w"), mem(w, "r", *IMM12)], load, latency=3.0)
    for name, w in (("sb", 8), ("sh", 16), ("sw", 32), ("sd", 64)):
        form(f"{name} r, m", [reg(64), mem(w, "w", *IMM12)],
             lambda s, w=w: s.store(s[1], low(s[0], w)))


def _multiply_divide() -> None:
    def mulhsu(a: Node, b: Node) -> Node:
        return mulhu(a, b) - select(bit(a, 63), b, c(0, 64))

    rrr("mul", lambda a, b: a * b, "m", 3.0)
    rrr("mulh", mulhs, "m", 3.0)
    rrr("mulhsu", mulhsu, "m", 3.0)
    rrr("mulhu", mulhu, "m", 3.0)
    rrr("mulw", lambda a, b: w32(a * b), "m", 3.0)
    rrr("div", lambda a, b: sdivrem(a, b)[0], "m", 64.0)
    rrr("divu", udiv, "m", 64.0)
    rrr("rem", lambda a, b: sdivrem(a, b)[1], "m", 64.0)
    rrr("remu", urem, "m", 64.0)
    rrr("divw", lambda a, b: w32(sdivrem(low(a, 32), low(b, 32))[0]), "m", 32.0)
    rrr("divuw", lambda a, b: w32(udiv(low(a, 32), low(b, 32))), "m", 32.0)
    rrr("remw", lambda a, b: w32(sdivrem(low(a, 32), low(b, 32))[1]), "m", 32.0)
    rrr("remuw", lambda a, b: w32(urem(low(a, 32), low(b, 32))), "m", 32.0)


def _zba() -> None:
    rrr("add.uw", lambda a, b: b + wide(low(a, 32)), "zba")
    for n in (1, 2, 3):
        rrr(f"sh{n}add", lambda a, b, n=n: b + (a << n), "zba")
        rrr(f"sh{n}add.uw", lambda a, b, n=n: b + (wide(low(a, 32)) << n), "zba")
    rri("slli.uw", lambda a, i: wide(low(a, 32)) << (i & 63), 0, 63, "zba")


def _zbb() -> None:
    def orc_b(a: Node) -> Node:
        r = c(0, 64)
        for i in range(8):
            r = r | select((lshr(a, 8 * i) & 0xFF) != 0, c(0xFF << (8 * i), 64), c(0, 64))
        return r

    def rev8(a: Node) -> Node:
        r = c(0, 64)
        for i in range(8):
            r = r | ((lshr(a, 8 * i) & 0xFF) << (56 - 8 * i))
        return r

    rrr("andn", lambda a, b: a & ~b, "zbb")
    rrr("orn", lambda a, b: a | ~b, "zbb")
    rrr("xnor", lambda a, b: ~(a ^ b), "zbb")
    rr("clz", clz, "zbb")
    rr("clzw", lambda a: wide(clz(low(a, 32))), "zbb")
    rr("ctz", ctz, "zbb")
    rr("ctzw", lambda a: wide(ctz(low(a, 32))), "zbb")
    rr("cpop", popcount, "zbb")
    rr("cpopw", lambda a: wide(popcount(low(a, 32))), "zbb")
    rrr("max", lambda a, b: select(slt(a, b), b, a), "zbb")
    rrr("maxu", lambda a, b: select(ult(a, b), b, a), "zbb")
    rrr("min", lambda a, b: select(slt(a, b), a, b), "zbb")
    rrr("minu", lambda a, b: select(ult(a, b), a, b), "zbb")
    rr("sext.b", lambda a: sext(low(a, 8), 64), "zbb")
    rr("sext.h", lambda a: sext(low(a, 16), 64), "zbb")
    rr("zext.h", lambda a: wide(low(a, 16)), "zbb")
    rrr("rol", lambda a, b: rotl(a, b & 63), "zbb")
    rrr("ror", lambda a, b: rotr(a, b & 63), "zbb")
    rrr("rolw", lambda a, b: w32(rotl(low(a, 32), sh(b, 32))), "zbb")
    rrr("rorw", lambda a, b: w32(rotr(low(a, 32), sh(b, 32))), "zbb")
    rri("rori", lambda a, i: rotr(a, i & 63), 0, 63, "zbb")
    rri("roriw", lambda a, i: w32(rotr(low(a, 32), sh(i, 32))), 0, 31, "zbb")
    rr("orc.b", orc_b, "zbb")
    rr("rev8", rev8, "zbb")


def _zbs() -> None:
    def one(n: Node) -> Node:
        return c(1, 64) << (n & 63)

    for name, f in (("bclr", lambda a, n: a & ~one(n)), ("bset", lambda a, n: a | one(n)),
                    ("binv", lambda a, n: a ^ one(n)), ("bext", lambda a, n: lshr(a, n & 63) & 1)):
        rrr(name, f, "zbs")
        rri(f"{name}i", f, 0, 63, "zbs")


# A branch over a move: `b<cc> x, y, 1f; mv rd, rs; 1:`, rd keeping its value when the
# branch is taken, so a select in two instructions (a conditional move; gcc's p16).  The
# evaluator's rows have three register slots, so one of the branch's registers is rd itself
# or x0: "b<cc> r, rd" (rd = cc(r, rd) ? rd : rs; max and min with r = rs), "b<cc> rd, r",
# and "b<cc> r, zero" / "b<cc> zero, r" (rd = cc(r, 0) ? rd : rs).  Only the branches that
# differ: bltu/bgeu against zero are never/always taken.
BRANCHES = {"beq": lambda a, b: a == b, "bne": lambda a, b: a != b, "blt": slt,
            "bge": lambda a, b: ~slt(a, b), "bltu": ult, "bgeu": lambda a, b: ~ult(a, b)}
ORDERED = ("blt", "bge", "bltu", "bgeu")
# the assembler's other spellings of a branch: the operands swapped, or one of them x0
SWAPPED = {"bgt": "blt", "ble": "bge", "bgtu": "bltu", "bleu": "bgeu"}
AGAINST_ZERO = {"beqz": ("beq", False), "bnez": ("bne", False), "bltz": ("blt", False),
                "bgez": ("bge", False), "blez": ("bge", True), "bgtz": ("blt", True)}


def conditional_jump(mnemonic: str, operands: list[str]):
    """A branch `b<cc> rs1, rs2, target` in any of its spellings: the comparison of the
    two registers, and the target's text."""
    if mnemonic in AGAINST_ZERO and len(operands) == 2:
        name, zero_first = AGAINST_ZERO[mnemonic]
        compared = ["zero", operands[0]] if zero_first else [operands[0], "zero"]
    elif mnemonic in (*BRANCHES, *SWAPPED) and len(operands) == 3:
        name = SWAPPED.get(mnemonic, mnemonic)
        compared = operands[1::-1] if mnemonic in SWAPPED else operands[:2]
    else:
        return None
    numbers = [parse_register(r) for r in compared]
    if None in numbers:
        return None
    a, b = (REGISTERS[n] for n, _ in numbers)
    return (lambda s: BRANCHES[name](s.reg(a), s.reg(b))), operands[-1]


def _branch_moves() -> None:
    zero = c(0, 64)
    shapes = [  # (name, which operands the branch compares, how they are written)
        *((f"{b} r, rd; mv rd, r", b, lambda s: (s[1], s[0]), lambda o: (o[1], o[0]))
          for b in BRANCHES),
        *((f"{b} rd, r; mv rd, r", b, lambda s: (s[0], s[1]), lambda o: (o[0], o[1]))
          for b in ORDERED),
        *((f"{b} r, zero; mv rd, r", b, lambda s: (s[1], zero), lambda o: (o[1], "zero"))
          for b in ("beq", "bne", "blt", "bge")),
        *((f"{b} zero, r; mv rd, r", b, lambda s: (zero, s[1]), lambda o: ("zero", o[1]))
          for b in ("blt", "bge"))]
    for name, branch, compared, written in shapes:
        def semantics(s: Sem, taken=BRANCHES[branch], compared=compared) -> None:
            s.write(0, select(taken(*compared(s)), s[0], s[2]))

        def render(ops: list[str], branch=branch, written=written) -> str:
            x, y = written(ops)
            return f"{branch} {x}, {y}, 1f; mv {ops[0]}, {ops[2]}; 1:"

        form(name, [reg(64, "rw"), reg(64), reg(64)], semantics, latency=2.0, render=render,
             size=2)


for _build in (_base, _memory, _multiply_divide, _zba, _zbb, _zbs, _branch_moves):
    _build()


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"li of {text!r}: only numeric constants can be expanded") from None


def expand_pseudo(mnemonic: str, ops: list[str]) -> list[tuple[str, list[str]]]:
    """The real instructions a pseudo-instruction (as the semantic core's lowering writes
    them) stands for; a real instruction stands for itself."""
    simple = {"mv": ("addi", [0, 1, "0"]), "not": ("xori", [0, 1, "-1"]),
              "neg": ("sub", [0, "zero", 1]), "negw": ("subw", [0, "zero", 1]),
              "seqz": ("sltiu", [0, 1, "1"]), "snez": ("sltu", [0, "zero", 1]),
              "sext.w": ("addiw", [0, 1, "0"]), "zext.w": ("add.uw", [0, 1, "zero"])}
    if mnemonic in simple:
        real, shape = simple[mnemonic]
        return [(real, [ops[x] if isinstance(x, int) else x for x in shape])]
    if mnemonic != "li":
        return [(mnemonic, ops)]
    value = _int(ops[1])
    if (1 << 31) <= value < (1 << 32):
        # a 32-bit constant: the lowering keeps w-bit values in the low w bits, so the
        # sign-extended form of the same low bits serves (lui + addiw)
        value -= 1 << 32
    if -2048 <= value < 2048:
        return [("addi", [ops[0], "zero", str(value)])]
    if not -(1 << 31) <= value < (1 << 31):
        raise ValueError(f"li of {value:#x}: constants wider than 32 bits are not expanded")
    hi = (value + 0x800) >> 12
    low12 = str(value - (hi << 12))
    return [("lui", [ops[0], str(hi & 0xFFFFF)]), ("addiw", [ops[0], ops[0], low12])]


def _march(features: frozenset[str]) -> str:
    return MARCH + "".join(f"_{f}" for f in ("zba", "zbb", "zbs") if f in features)


def assemble(text: str, features: frozenset[str] = frozenset()) -> bytes:
    """GNU as through the toolchain, told of the extensions the text may use."""
    return riscvasm.assemble_snippet(text, march=_march(features))


def assemble_each(statements: list[str], features: frozenset[str] = frozenset()) -> list[bytes]:
    """Each statement's bytes, from one run of the assembler (GNU as costs ~8 ms a run)."""
    with tempfile.TemporaryDirectory(prefix="evolution-") as tmp:
        source = Path(tmp) / "each.s"
        source.write_text("".join(f"{s}\n" for s in statements))
        program = riscvasm.assemble([Section("each", 0, (source,))], {}, _march(features))
    code = program.sections["each"]
    pieces: dict[int, bytes] = {}
    for line in program.listing:
        piece = code[line.address : line.address + line.size]
        pieces[line.line] = pieces.get(line.line, b"") + piece
    return [pieces.get(i + 1, b"") for i in range(len(statements))]


RISCV64 = Isa(
    arch=arch.RISCV64,
    name="riscv64",
    registers=REGISTERS,
    flags=(),
    forms=tuple(FORMS),
    abi=PlatformAbi(
        args=tuple(f"a{i}" for i in range(8)), result="a0",
        narrow_args="sign", narrow_result="sign",
        preserved=("sp", "gp", "tp", "s0", "s1", *(f"s{i}" for i in range(2, 12))),
        result_fixup="addiw a0, a0, 0"),
    scratch=("a0", "a1", "a2", "a3", "a4", "a5", "t0", "t1", "t2"),
    render_register=register_name,
    render_memory=render_memory,
    parse_register=parse_register,
    assemble=assemble,
    return_text="ret",
    zero_register=0,
    features=("m", "zba", "zbb", "zbs"),
    expand=expand_pseudo,
    assemble_each=assemble_each,
    nops={4: bytes.fromhex("13000000")},  # addi x0, x0, 0
    cycle_form="add r, r, r",
    conditional_jump=conditional_jump,
    jump_text="j",
    word_forms={f"{op} r, r, {last}": f"{op}w r, r, {last}"
                for op, last in (("add", "r"), ("sub", "r"), ("sll", "r"), ("mul", "r"),
                                 ("addi", "imm"), ("slli", "imm"))},
)
