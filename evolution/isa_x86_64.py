"""x86-64 working set: integer ALU, shifts and rotates, lea, imul/mul, cmp/test,
setcc, cmovcc, neg/not, bswap, movzx/movsx, loads and stores through a base
register, bsf/bsr, and the BMI1, BMI2, LZCNT, POPCNT and ADX instructions, in
their 32- and 64-bit forms (Intel syntax, as keystone reads it).

Semantics follow the Intel SDM (vol. 2).  Flags modelled: CF, PF, ZF, SF, OF
(AF is read by nothing in this set and is not modelled).  A 32-bit result
zero-extends into the 64-bit register, cmovcc r32 included even when the
condition is false; setcc writes the low byte only.  Flags the SDM leaves
undefined are `undefined` values (e.g. OF after a shift by more than one, SF/ZF/PF
after imul, the destination of bsf/bsr of zero).

Fallback latencies: Agner Fog's instruction tables, Haswell (cycles); the timing
family's measurements replace them per board.
"""

from __future__ import annotations

import arch
from evolution.compound import pdep, pext
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
    ult,
    zext,
)
from toolchain import x86asm

REGISTERS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_LEGACY = {"rax": "a", "rcx": "c", "rdx": "d", "rbx": "b"}
_INDEXED = {"rsp": "sp", "rbp": "bp", "rsi": "si", "rdi": "di"}
FLAGS = ("CF", "PF", "ZF", "SF", "OF")
IMM32 = (-(1 << 31), (1 << 31) - 1)
PTR = {8: "byte", 16: "word", 32: "dword", 64: "qword"}


def register_name(number: int, width: int) -> str:
    name = REGISTERS[number]
    if name.startswith("r") and name[1:].isdigit():
        return name + {64: "", 32: "d", 16: "w", 8: "b"}[width]
    if name in _LEGACY:
        x = _LEGACY[name]
        return {64: name, 32: f"e{x}x", 16: f"{x}x", 8: f"{x}l"}[width]
    x = _INDEXED[name]
    return {64: name, 32: f"e{x}", 16: x, 8: f"{x}l"}[width]


NAMES = {register_name(n, w): (n, w) for n in range(16) for w in (8, 16, 32, 64)}


def parse_register(name: str) -> tuple[int, int] | None:
    return NAMES.get(name.strip().lower())


def render_memory(base: int, disp: int, width: int) -> str:
    sign = "-" if disp < 0 else "+"
    return f"{PTR[width]} ptr [{register_name(base, 64)} {sign} {abs(disp)}]"


# flags ------------------------------------------------------------------------------

def parity(r: Node) -> Node:
    """PF: 1 when the low byte has an even number of ones."""
    return ~low(popcount(low(r, 8)), 1)


def set_szp(s: Sem, r: Node, w: int) -> Node:
    """ZF, SF and PF of a result; returns SF's node (reading the flag back would give the
    flag before the instruction)."""
    sign = bit(r, w - 1)
    s.set_flag("ZF", r == 0)
    s.set_flag("SF", sign)
    s.set_flag("PF", parity(r))
    return sign


def set_logic(s: Sem, r: Node, w: int) -> None:
    set_szp(s, r, w)
    s.set_flag("CF", c(0, 1))
    s.set_flag("OF", c(0, 1))


def add_flags(s: Sem, a: Node, b: Node, r: Node, carry: Node, w: int) -> None:
    s.set_flag("CF", carry)
    s.set_flag("OF", bit((a ^ r) & (b ^ r), w - 1))
    set_szp(s, r, w)


def sub_flags(s: Sem, a: Node, b: Node, r: Node, borrow: Node, w: int,
              plain: bool = False) -> None:
    """`plain`: r is a - b with no borrow in (sub, cmp).  Then OF is stated as SF xor
    (a < b signed), the same bit (the difference overflows exactly when its sign is not
    that of a < b): the conditions l/ge/le/g read SF xor OF, which becomes the
    comparison itself, and Z3 decides a network of those far faster than one of overflow
    formulas (Haswell's 43-instruction sort5 proved in 8 CPU-s instead of 29)."""
    s.set_flag("CF", borrow)
    sign = set_szp(s, r, w)
    if plain:  # SF's own node: SF xor OF then cancels to the comparison
        s.set_flag("OF", sign ^ slt(a, b))
    else:
        s.set_flag("OF", bit((a ^ b) & (a ^ r), w - 1))


def undefine(s: Sem, *flags: str) -> None:
    for f in flags:
        s.set_flag(f, s.undefined(1))


CONDITIONS = {
    "o": lambda s: s.flag("OF"),
    "no": lambda s: ~s.flag("OF"),
    "b": lambda s: s.flag("CF"),
    "ae": lambda s: ~s.flag("CF"),
    "e": lambda s: s.flag("ZF"),
    "ne": lambda s: ~s.flag("ZF"),
    "be": lambda s: s.flag("CF") | s.flag("ZF"),
    "a": lambda s: ~(s.flag("CF") | s.flag("ZF")),
    "s": lambda s: s.flag("SF"),
    "ns": lambda s: ~s.flag("SF"),
    "p": lambda s: s.flag("PF"),
    "np": lambda s: ~s.flag("PF"),
    "l": lambda s: s.flag("SF") ^ s.flag("OF"),
    "ge": lambda s: ~(s.flag("SF") ^ s.flag("OF")),
    "le": lambda s: s.flag("ZF") | (s.flag("SF") ^ s.flag("OF")),
    "g": lambda s: ~(s.flag("ZF") | (s.flag("SF") ^ s.flag("OF"))),
}
# other spellings of the same conditions (the lowering writes cmovz, cmovne...)
CONDITION_ALIASES = {"c": "b", "nae": "b", "nc": "ae", "nb": "ae", "z": "e", "nz": "ne",
                     "na": "be", "nbe": "a", "pe": "p", "po": "np", "nge": "l", "nl": "ge",
                     "ng": "le", "nle": "g"}



def conditional_jump(mnemonic: str, operands: list[str]):
    """`j<cc> target`: the condition cc over the flags, and the target's text."""
    cc = mnemonic.removeprefix("j")
    cc = CONDITION_ALIASES.get(cc, cc)
    if not mnemonic.startswith("j") or cc not in CONDITIONS or len(operands) != 1:
        return None
    return CONDITIONS[cc], operands[0]


# form builders --------------------------------------------------------------------------

FORMS: list[Form] = []


def form(name: str, mnemonic: str, operands, semantics, feature=None, latency=1.0, **kw) -> None:
    FORMS.append(Form(name, mnemonic, tuple(operands), semantics, feature, latency, **kw))


def _binary(op: str, w: int, b: Node, s: Sem) -> None:
    a = s.low(0, w)
    b = low(b, w)
    if op == "add":
        r = a + b
        add_flags(s, a, b, r, ult(r, a), w)
    elif op == "adc":
        cf = s.flag("CF")
        r = a + b + zext(cf, w)
        add_flags(s, a, b, r, ult(r, a) | (cf & (r == a)), w)
    elif op in ("sub", "cmp"):
        r = a - b
        sub_flags(s, a, b, r, ult(a, b), w, plain=True)
    elif op == "sbb":
        cf = s.flag("CF")
        r = a - b - zext(cf, w)
        sub_flags(s, a, b, r, ult(a, b) | (cf & (a == b)), w)
    else:
        r = {"and": a & b, "test": a & b, "or": a | b, "xor": a ^ b}[op]
        set_logic(s, r, w)
    if op not in ("cmp", "test"):
        s.write(0, wide(r))


def _alu_forms() -> None:
    for op in ("add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test"):
        access = "r" if op in ("cmp", "test") else "rw"
        for w in (32, 64):
            form(f"{op} r{w}, r{w}", op, [reg(w, access), reg(w)],
                 lambda s, op=op, w=w: _binary(op, w, s[1], s))
            form(f"{op} r{w}, imm", op, [reg(w, access), imm(*IMM32)],
                 lambda s, op=op, w=w: _binary(op, w, s[1], s))
        if op in ("cmp", "add", "sub", "and", "or", "xor"):
            form(f"{op} r32, m32", op, [reg(32, access), mem(32, "r", *IMM32)],
                 lambda s, op=op: _binary(op, 32, s.load(s[1], 32), s), latency=5.0)


def _unary_forms() -> None:
    def neg(s: Sem, w: int) -> None:
        a = s.low(0, w)
        r = -a
        sub_flags(s, c(0, w), a, r, a != 0, w)
        s.write(0, wide(r))

    def not_(s: Sem, w: int) -> None:
        s.write(0, wide(~s.low(0, w)))

    def incdec(s: Sem, w: int, delta: int) -> None:
        a = s.low(0, w)
        one = c(1, w)
        if delta > 0:
            r = a + 1
            s.set_flag("OF", bit((a ^ r) & (one ^ r), w - 1))
        else:
            r = a - 1
            s.set_flag("OF", bit((a ^ one) & (a ^ r), w - 1))
        set_szp(s, r, w)
        s.write(0, wide(r))

    def bswap(s: Sem, w: int) -> None:
        a = s.low(0, w)
        r = c(0, w)
        for i in range(w // 8):
            byte = lshr(a, 8 * i) & 0xFF
            r = r | (byte << (w - 8 - 8 * i))
        s.write(0, wide(r))

    for w in (32, 64):
        form(f"neg r{w}", "neg", [reg(w, "rw")], lambda s, w=w: neg(s, w))
        form(f"not r{w}", "not", [reg(w, "rw")], lambda s, w=w: not_(s, w))
        form(f"inc r{w}", "inc", [reg(w, "rw")], lambda s, w=w: incdec(s, w, 1))
        form(f"dec r{w}", "dec", [reg(w, "rw")], lambda s, w=w: incdec(s, w, -1))
        form(f"bswap r{w}", "bswap", [reg(w, "rw")], lambda s, w=w: bswap(s, w))


def _shift(kind: str, w: int, s: Sem, amount: Node) -> None:
    a = s.low(0, w)
    count = low(amount, w) & (w - 1)
    zero = count == 0
    if kind == "shl":
        r = a << count
        cf = low(lshr(a, c(w, w) - count), 1)
        of = bit(r, w - 1) ^ cf
    elif kind == "shr":
        r = lshr(a, count)
        cf = low(lshr(a, count - 1), 1)
        of = bit(a, w - 1)
    elif kind == "sar":
        r = ashr(a, count)
        cf = low(lshr(a, count - 1), 1)
        of = c(0, 1)
    elif kind == "rol":
        r = rotl(a, count)
        cf = bit(r, 0)
        of = bit(r, w - 1) ^ cf
    else:  # ror
        r = rotr(a, count)
        cf = bit(r, w - 1)
        of = bit(r, w - 1) ^ bit(r, w - 2)
    s.write(0, wide(r))  # written even for a zero count: a 32-bit result zero-extends
    s.set_flag("CF", select(zero, s.flag("CF"), cf))
    s.set_flag("OF", select(zero, s.flag("OF"), select(count == 1, of, s.undefined(1))))
    if kind in ("shl", "shr", "sar"):
        for name, value in (("ZF", r == 0), ("SF", bit(r, w - 1)), ("PF", parity(r))):
            s.set_flag(name, select(zero, s.flag(name), value))


def _shift_forms() -> None:
    for kind in ("shl", "shr", "sar", "rol", "ror"):
        for w in (32, 64):
            form(f"{kind} r{w}, imm", kind, [reg(w, "rw"), imm(0, w - 1)],
                 lambda s, k=kind, w=w: _shift(k, w, s, s[1]))
            form(f"{kind} r{w}, cl", kind, [reg(w, "rw")],
                 lambda s, k=kind, w=w: _shift(k, w, s, s.reg("rcx")),
                 render=lambda ops, k=kind: f"{k} {ops[0]}, cl", fixed=("cl",))


def _lea_forms() -> None:
    def lea(s: Sem, w: int, scale: int, has_base: bool) -> None:
        if has_base:
            address = s[1] + s[2] * scale + s[3] if scale else s[1] + s[2]
        else:
            address = s[1] * scale + s[2]
        s.write(0, wide(low(address, w)))

    def disp(value: str) -> str:
        return f"- {value[1:]}" if value.startswith("-") else f"+ {value}"

    for w in (32, 64):
        form(f"lea r{w}, [r + d]", "lea", [reg(w, "w"), reg(64), imm(*IMM32)],
             lambda s, w=w: lea(s, w, 0, True),
             render=lambda ops: f"lea {ops[0]}, [{ops[1]} {disp(ops[2])}]")
        for scale in (1, 2, 4, 8):
            form(f"lea r{w}, [r + r*{scale} + d]", "lea",
                 [reg(w, "w"), reg(64), reg(64), imm(*IMM32)],
                 lambda s, w=w, k=scale: lea(s, w, k, True),
                 render=lambda ops, k=scale:
                 f"lea {ops[0]}, [{ops[1]} + {ops[2]}*{k} {disp(ops[3])}]")
        for scale in (2, 4, 8):
            form(f"lea r{w}, [r*{scale} + d]", "lea", [reg(w, "w"), reg(64), imm(*IMM32)],
                 lambda s, w=w, k=scale: lea(s, w, k, False),
                 render=lambda ops, k=scale: f"lea {ops[0]}, [{ops[1]}*{k} {disp(ops[2])}]")


def _multiply_forms() -> None:
    def imul(s: Sem, w: int, first: int) -> None:
        """The truncating imul of operands `first` and `first + 1` into operand 0 (the
        two-operand form multiplies its destination, the three-operand form two sources)."""
        a, b = s.low(first, w), s.low(first + 1, w)
        r = a * b
        overflow = mulhs(a, b) != ashr(r, w - 1)
        s.write(0, wide(r))
        for f in ("CF", "OF"):
            s.set_flag(f, overflow)
        undefine(s, "ZF", "SF", "PF")

    def widening(s: Sem, w: int, signed: bool) -> None:
        a, b = low(s.reg("rax"), w), s.low(0, w)
        lo_, hi = a * b, (mulhs(a, b) if signed else mulhu(a, b))
        overflow = (hi != ashr(lo_, w - 1)) if signed else (hi != 0)
        s.set_reg("rax", wide(lo_))
        s.set_reg("rdx", wide(hi))
        for f in ("CF", "OF"):
            s.set_flag(f, overflow)
        undefine(s, "ZF", "SF", "PF")

    for w in (32, 64):
        form(f"imul r{w}, r{w}", "imul", [reg(w, "rw"), reg(w)], lambda s, w=w: imul(s, w, 0),
             latency=3.0)
        form(f"imul r{w}, r{w}, imm", "imul", [reg(w, "w"), reg(w), imm(*IMM32)],
             lambda s, w=w: imul(s, w, 1), latency=3.0)
        form(f"mul r{w}", "mul", [reg(w)], lambda s, w=w: widening(s, w, False), latency=4.0)
        form(f"imul r{w}", "imul", [reg(w)], lambda s, w=w: widening(s, w, True), latency=4.0)


def _setcc_cmov_forms() -> None:
    def setcc(s: Sem, cond) -> None:
        old = s[0]
        s.write(0, (old & ~0xFF) | zext(cond(s), 64))

    def cmov(s: Sem, w: int, cond, value: Node) -> None:
        s.write(0, wide(select(cond(s), low(value, w), s.low(0, w))))

    for cc, cond in CONDITIONS.items():
        form(f"set{cc} r8", f"set{cc}", [reg(8, "rw")], lambda s, k=cond: setcc(s, k))
        for w in (32, 64):
            form(f"cmov{cc} r{w}, r{w}", f"cmov{cc}", [reg(w, "rw"), reg(w)],
                 lambda s, w=w, k=cond: cmov(s, w, k, s[1]))
        form(f"cmov{cc} r32, m32", f"cmov{cc}", [reg(32, "rw"), mem(32, "r", *IMM32)],
             lambda s, k=cond: cmov(s, 32, k, s.load(s[1], 32)), latency=5.0)


def _move_forms() -> None:
    def mov(s: Sem, w: int) -> None:
        s.write(0, wide(s.low(1, w)))

    def extend(s: Sem, w: int, from_w: int, signed: bool, value: Node) -> None:
        v = low(value, from_w)
        s.write(0, wide(sext(v, w) if signed else zext(v, w)))

    form("mov r32, r32", "mov", [reg(32, "w"), reg(32)], lambda s: mov(s, 32))
    form("mov r64, r64", "mov", [reg(64, "w"), reg(64)], lambda s: mov(s, 64))
    form("mov r32, imm", "mov", [reg(32, "w"), imm(-(1 << 31), (1 << 32) - 1)],
         lambda s: mov(s, 32))
    form("mov r64, imm", "mov", [reg(64, "w"), imm(*IMM32)], lambda s: mov(s, 64))
    form("movabs r64, imm", "movabs", [reg(64, "w"), imm(-(1 << 63), (1 << 64) - 1)],
         lambda s: mov(s, 64))
    for w in (32, 64):
        for from_w in (8, 16):
            form(f"movzx r{w}, r{from_w}", "movzx", [reg(w, "w"), reg(from_w)],
                 lambda s, w=w, f=from_w: extend(s, w, f, False, s[1]))
            form(f"movsx r{w}, r{from_w}", "movsx", [reg(w, "w"), reg(from_w)],
                 lambda s, w=w, f=from_w: extend(s, w, f, True, s[1]))
    form("movsxd r64, r32", "movsxd", [reg(64, "w"), reg(32)],
         lambda s: extend(s, 64, 32, True, s[1]))
    # loads and stores through a base register
    form("mov r32, m32", "mov", [reg(32, "w"), mem(32, "r", *IMM32)],
         lambda s: s.write(0, wide(s.load(s[1], 32))), latency=4.0)
    form("mov r64, m64", "mov", [reg(64, "w"), mem(64, "r", *IMM32)],
         lambda s: s.write(0, s.load(s[1], 64)), latency=4.0)
    for from_w in (8, 16):
        form(f"movzx r32, m{from_w}", "movzx", [reg(32, "w"), mem(from_w, "r", *IMM32)],
             lambda s, f=from_w: extend(s, 32, f, False, s.load(s[1], f)), latency=4.0)
        form(f"movsx r32, m{from_w}", "movsx", [reg(32, "w"), mem(from_w, "r", *IMM32)],
             lambda s, f=from_w: extend(s, 32, f, True, s.load(s[1], f)), latency=4.0)
    form("movsxd r64, m32", "movsxd", [reg(64, "w"), mem(32, "r", *IMM32)],
         lambda s: extend(s, 64, 32, True, s.load(s[1], 32)), latency=4.0)
    for w in (8, 16, 32, 64):
        form(f"mov m{w}, r{w}", "mov", [mem(w, "w", *IMM32), reg(w)],
             lambda s, w=w: s.store(s[0], s.low(1, w)))


def _bit_scan_forms() -> None:
    def bsf_bsr(s: Sem, w: int, reverse: bool) -> None:
        a = s.low(1, w)
        found = (c(w - 1, w) - clz(a)) if reverse else ctz(a)
        s.write(0, select(a == 0, s.undefined(64), wide(found)))
        s.set_flag("ZF", a == 0)
        undefine(s, "CF", "OF", "SF", "PF")

    def count(s: Sem, w: int, kind: str) -> None:
        a = s.low(1, w)
        if kind == "popcnt":
            r = popcount(a)
            s.set_flag("ZF", a == 0)
            for f in ("CF", "OF", "SF", "PF"):
                s.set_flag(f, c(0, 1))
        else:
            r = ctz(a) if kind == "tzcnt" else clz(a)
            s.set_flag("CF", a == 0)
            s.set_flag("ZF", r == 0)
            undefine(s, "OF", "SF", "PF")
        s.write(0, wide(r))

    for w in (32, 64):
        # `or` keeps the chain's source nonzero: it only sets bits
        form(f"bsf r{w}, r{w}", "bsf", [reg(w, "w"), reg(w)], lambda s, w=w: bsf_bsr(s, w, False),
             latency=3.0, chain_keeper=f"or r{w}, r{w}")
        form(f"bsr r{w}, r{w}", "bsr", [reg(w, "w"), reg(w)], lambda s, w=w: bsf_bsr(s, w, True),
             latency=3.0, chain_keeper=f"or r{w}, r{w}")
        form(f"tzcnt r{w}, r{w}", "tzcnt", [reg(w, "w"), reg(w)],
             lambda s, w=w: count(s, w, "tzcnt"), "bmi1", 3.0)
        form(f"lzcnt r{w}, r{w}", "lzcnt", [reg(w, "w"), reg(w)],
             lambda s, w=w: count(s, w, "lzcnt"), "lzcnt", 3.0)
        form(f"popcnt r{w}, r{w}", "popcnt", [reg(w, "w"), reg(w)],
             lambda s, w=w: count(s, w, "popcnt"), "popcnt", 3.0)


def _bmi_forms() -> None:
    def andn(s: Sem, w: int) -> None:
        r = ~s.low(1, w) & s.low(2, w)
        s.write(0, wide(r))
        s.set_flag("ZF", r == 0)
        s.set_flag("SF", bit(r, w - 1))
        s.set_flag("CF", c(0, 1))
        s.set_flag("OF", c(0, 1))
        undefine(s, "PF")

    def bextr(s: Sem, w: int) -> None:
        a, ctl = s.low(1, w), s.low(2, w)
        start, length = ctl & 0xFF, lshr(ctl, 8) & 0xFF
        shifted = select(ult(start, c(w, w)), lshr(a, start), c(0, w))
        r = select(ult(length, c(w, w)), shifted & ((c(1, w) << length) - 1), shifted)
        s.write(0, wide(r))
        s.set_flag("ZF", r == 0)
        s.set_flag("CF", c(0, 1))
        s.set_flag("OF", c(0, 1))
        undefine(s, "SF", "PF")

    def bls(s: Sem, w: int, kind: str) -> None:
        a = s.low(1, w)
        r = {"blsi": -a & a, "blsmsk": (a - 1) ^ a, "blsr": (a - 1) & a}[kind]
        s.write(0, wide(r))
        s.set_flag("SF", bit(r, w - 1))
        s.set_flag("ZF", c(0, 1) if kind == "blsmsk" else (r == 0))
        # blsi: the SDM sets CF when the source is not zero; QEMU's TCG sets it when the
        # source is zero (seen in Unicorn's QEMU 5.0 and in a QEMU 7.2 guest).  Machines
        # differ, so no program may rely on it.
        s.set_flag("CF", s.undefined(1) if kind == "blsi" else (a == 0))
        s.set_flag("OF", c(0, 1))
        undefine(s, "PF")

    def bzhi(s: Sem, w: int) -> None:
        a, n = s.low(1, w), s.low(2, w) & 0xFF
        inside = ult(n, c(w, w))
        r = select(inside, a & ((c(1, w) << n) - 1), a)
        s.write(0, wide(r))
        s.set_flag("CF", ~inside)
        s.set_flag("ZF", r == 0)
        s.set_flag("SF", bit(r, w - 1))
        s.set_flag("OF", c(0, 1))
        undefine(s, "PF")

    def mulx(s: Sem, w: int) -> None:
        a, b = low(s.reg("rdx"), w), s.low(2, w)
        s.write(1, wide(a * b))  # low half first: with both destinations equal, the high half wins
        s.write(0, wide(mulhu(a, b)))

    def shiftx(s: Sem, w: int, kind: str) -> None:
        a, n = s.low(1, w), s.low(2, w) & (w - 1)
        r = {"shlx": a << n, "shrx": lshr(a, n), "sarx": ashr(a, n)}[kind]
        s.write(0, wide(r))

    def deposit(s: Sem, w: int, kind: str) -> None:
        a, m = s.low(1, w), s.low(2, w)
        s.write(0, wide(pdep(a, m) if kind == "pdep" else pext(a, m)))

    for w in (32, 64):
        form(f"andn r{w}, r{w}, r{w}", "andn", [reg(w, "w"), reg(w), reg(w)],
             lambda s, w=w: andn(s, w), "bmi1")
        form(f"bextr r{w}, r{w}, r{w}", "bextr", [reg(w, "w"), reg(w), reg(w)],
             lambda s, w=w: bextr(s, w), "bmi1", 2.0)
        for kind in ("blsi", "blsmsk", "blsr"):
            form(f"{kind} r{w}, r{w}", kind, [reg(w, "w"), reg(w)],
                 lambda s, w=w, k=kind: bls(s, w, k), "bmi1")
        form(f"bzhi r{w}, r{w}, r{w}", "bzhi", [reg(w, "w"), reg(w), reg(w)],
             lambda s, w=w: bzhi(s, w), "bmi2")
        form(f"mulx r{w}, r{w}, r{w}", "mulx", [reg(w, "w"), reg(w, "w"), reg(w)],
             lambda s, w=w: mulx(s, w), "bmi2", 4.0)
        for kind in ("pdep", "pext"):
            form(f"{kind} r{w}, r{w}, r{w}", kind, [reg(w, "w"), reg(w), reg(w)],
                 lambda s, w=w, k=kind: deposit(s, w, k), "bmi2", 3.0)
        form(f"rorx r{w}, r{w}, imm", "rorx", [reg(w, "w"), reg(w), imm(0, w - 1)],
             lambda s, w=w: s.write(0, wide(rotr(s.low(1, w), s.low(2, w) & (w - 1)))), "bmi2")
        for kind in ("shlx", "shrx", "sarx"):
            form(f"{kind} r{w}, r{w}, r{w}", kind, [reg(w, "w"), reg(w), reg(w)],
                 lambda s, w=w, k=kind: shiftx(s, w, k), "bmi2")


_HIGH_BYTES = {f"{x}h": f"{x}l" for x in "abcd"}  # the second byte, as the low byte's name


def _byte_forms() -> None:
    """xor of a register's low byte with another's second byte (`xor al, ah`): with the
    parity flag, a 16-bit parity in one instruction."""
    def xor_high(s: Sem) -> None:
        old = s[0]
        r = low(old, 8) ^ low(lshr(s[1], 8), 8)
        s.write(0, (old & ~0xFF) | wide(r))
        set_logic(s, r, 8)

    form("xor r8, r8h", "xor", [reg(8, "rw", "legacy8"), reg(8, "r", "legacy8")], xor_high,
         render=lambda ops: f"xor {ops[0]}, {ops[1][0]}h",
         unrender=lambda ops: [ops[0], _HIGH_BYTES.get(ops[1].lower(), "")])


def _adx_bytes(prefix: int, width: int):
    """adcx/adox reg, reg: keystone gets them right, but the toolchain's capstone check
    reads their mandatory 66/F3 prefix as an operand-size prefix and refuses them, so
    they are encoded here (SDM: [prefix] [REX] 0F 38 F6 /r, ModRM.reg = destination)."""
    def encode(regs: tuple[int, ...], _imm: int) -> bytes:
        dst, src = regs
        rex = (0x48 if width == 64 else 0x40) | (dst >> 3) << 2 | (src >> 3)
        return (bytes([prefix]) + (bytes([rex]) if rex != 0x40 else b"")
                + bytes([0x0F, 0x38, 0xF6, 0xC0 | (dst & 7) << 3 | (src & 7)]))
    return encode


def _adx_forms() -> None:
    def adx(s: Sem, w: int, flag: str) -> None:
        a, b, cin = s.low(0, w), s.low(1, w), s.flag(flag)
        r = a + b + zext(cin, w)
        s.write(0, wide(r))
        s.set_flag(flag, ult(r, a) | (cin & (r == a)))

    for w in (32, 64):
        form(f"adcx r{w}, r{w}", "adcx", [reg(w, "rw"), reg(w)], lambda s, w=w: adx(s, w, "CF"),
             "adx", encode=_adx_bytes(0x66, w))
        form(f"adox r{w}, r{w}", "adox", [reg(w, "rw"), reg(w)], lambda s, w=w: adx(s, w, "OF"),
             "adx", encode=_adx_bytes(0xF3, w))


for _build in (_alu_forms, _unary_forms, _shift_forms, _lea_forms, _multiply_forms,
               _setcc_cmov_forms, _move_forms, _bit_scan_forms, _bmi_forms, _adx_forms,
               _byte_forms):
    _build()


def assemble(text: str, features: frozenset[str] = frozenset()) -> bytes:
    """keystone through the toolchain (every instruction re-decoded by capstone)."""
    return x86asm.assemble_snippet(text, bits=64)


def assemble_each(statements: list[str], features: frozenset[str] = frozenset()) -> list[bytes]:
    return [assemble(s + "\n", features) for s in statements]


# The recommended multi-byte NOPs (Intel SDM vol. 2B, NOP: `nop` and `0f 1f /0` with
# 1-9 bytes), longer with more 0x66 prefixes as AMD's optimisation guides write them, up
# to the 15 bytes an instruction may take; keystone writes `nop m32` as the hint space's
# `0f 18 /4`, so they are bytes here.
_NOPS = ("90", "6690", "0f1f00", "0f1f4000", "0f1f440000", "660f1f440000", "0f1f8000000000",
         "0f1f840000000000", *("66" * k + "660f1f840000000000" for k in range(7)))

X86_64 = Isa(
    arch=arch.X86_64,
    name="x86_64",
    registers=REGISTERS,
    flags=FLAGS,
    forms=tuple(FORMS),
    abi=PlatformAbi(
        args=("rdi", "rsi", "rdx", "rcx", "r8", "r9"), result="rax",
        narrow_args="undefined", narrow_result="low",
        preserved=("rbx", "rsp", "rbp", "r12", "r13", "r14", "r15")),
    scratch=("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"),
    render_register=register_name,
    render_memory=render_memory,
    parse_register=parse_register,
    assemble=assemble,
    assemble_each=assemble_each,
    return_text="ret",
    features=("bmi1", "bmi2", "lzcnt", "popcnt", "adx"),
    aliases={f"{p}{a}": f"{p}{cc}" for p in ("set", "cmov") for a, cc in CONDITION_ALIASES.items()},
    register_classes={"legacy8": (0, 1, 2, 3)},  # rax, rcx, rdx, rbx
    variable_length=True,
    nops={len(b): b for b in map(bytes.fromhex, _NOPS)},
    cycle_form="add r64, r64",
    conditional_jump=conditional_jump,
    jump_text="jmp",
    commutative_forms=frozenset(f"{op} r{w}, r{w}" for op in ("add", "and", "or", "xor", "imul")
                                for w in (32, 64)),
)

