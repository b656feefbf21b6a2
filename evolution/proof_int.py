"""Proving a result equal through integers, where bit-vectors are hopeless.

Two multiplier circuits of different shapes (p25's four 16-bit partial products
against one 64-bit multiply) defeat bit-blasting: Z3 runs for minutes.  Read as
integers the same claim is schoolbook algebra that Z3's nonlinear arithmetic
settles in a fraction of a second.  So a DAG is translated to integer terms,
each node with an interval that soundly bounds its value: an operation that
provably cannot wrap stays plain arithmetic, one that might is taken modulo
2^width, and masks and shifts by constants become mod and div by powers of two.
The translation is exact (every node's integer equals its bit-vector value read
unsigned), so an unsat answer is a proof.  Operations with no faithful integer
reading here (xor, or, bit counts, memory...) make the translation give up.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from sem import interp
from sem.canon import postorder
from sem.ir import Node, Routine


class Untranslatable(ValueError):
    """The DAG uses an operation this translation does not read as integers."""


@dataclass(frozen=True)
class Bounded:
    term: object  # z3 ArithRef
    lo: int
    hi: int
    # when the value is a sign extension: the narrow value it extends (in [0, 2^bits)).
    # Its low bits are the narrow value's, so a truncation or mask of them is read from it
    # instead of taking a sign extension's case split modulo a power of two (riscv64's W
    # instructions sign-extend every 32-bit result, and Z3 then ran for minutes on p25)
    narrow: Bounded | None = None
    bits: int = 0
    # when the value is 0 or all ones (a sign mask: `ashr(x, w - 1)`, `sext` or `neg` of one
    # bit): the condition under which it is all ones.  xor, and, or with such a mask are
    # selects, which have an integer reading where bitwise operations in general have none
    # (p09's absolute value; bits of a comparison widened into a mask)
    mask: object | None = None


def sign_extended(x: Bounded, bits: int, w: int) -> Bounded:
    """The sign extension to `w` bits of `x`, a value of `bits` bits."""
    negative = x.term >= 1 << (bits - 1)
    mask = x.mask if x.mask is not None else negative if bits == 1 else None
    return Bounded(z3.If(negative, x.term + (1 << w) - (1 << bits), x.term),
                   0, (1 << w) - 1, Bounded(x.term, x.lo, x.hi), bits, mask)


def _minus_bit(b: Bounded, w: int) -> Bounded:
    """0 - b for b in {0, 1}: a mask."""
    return Bounded(z3.If(b.term == 1, (1 << w) - 1, 0), 0, (1 << w) - 1, mask=b.term == 1)


def _masked(op: str, m: Bounded, other: Bounded, w: int) -> Bounded:
    """`other` xor, and, or `m`, a mask (0, or all ones when m.mask holds); a mask again
    when `other` is one."""
    ones = (1 << w) - 1
    mask = None
    if other.mask is not None:
        combine = {"xor": z3.Xor, "and": z3.And, "or": z3.Or}[op]
        mask = combine(m.mask, other.mask)
    if op == "xor":
        return Bounded(z3.If(m.mask, ones - other.term, other.term), min(other.lo, ones - other.hi),
                       max(other.hi, ones - other.lo), mask=mask)
    if op == "and":
        return Bounded(z3.If(m.mask, other.term, 0), min(other.lo, 0), other.hi, mask=mask)
    return Bounded(z3.If(m.mask, ones, other.term), other.lo, ones, mask=mask)


def _low_bits(x: Bounded, k: int) -> Bounded:
    """x modulo 2^k, read from the narrow value when x is a wider one's sign extension."""
    if x.mask is not None:  # the low bits of a mask are one
        return Bounded(z3.If(x.mask, (1 << k) - 1, 0), 0, (1 << k) - 1, mask=x.mask)
    if x.narrow is not None and k <= x.bits:
        x = x.narrow
    if x.hi < 1 << k and x.lo >= 0:
        return Bounded(x.term, x.lo, x.hi)
    return _full(x.term % (1 << k), k)


def _full(term, w: int) -> Bounded:
    return Bounded(term, 0, (1 << w) - 1)


def _wrap(term, lo: int, hi: int, w: int) -> Bounded:
    """`term` taken modulo 2^w unless [lo, hi] shows it already inside."""
    if 0 <= lo and hi < 1 << w:
        return Bounded(term, lo, hi)
    return _full(term % (1 << w), w)


def _power_of_two_mask(value: int) -> int | None:
    """k when value = 2^k - 1."""
    k = (value + 1).bit_length() - 1
    return k if value + 1 == 1 << k else None


def _signed(b: Bounded, w: int):
    return z3.If(b.term >= 1 << (w - 1), b.term - (1 << w), b.term)


def _node(n: Node, a: list[Bounded], consts: list[int | None]) -> Bounded:
    """n's integer reading from its operands' (consts: each operand's value when constant)."""
    w, op = n.width, n.op
    if op == "zext":
        return Bounded(a[0].term, a[0].lo, a[0].hi)
    if op == "trunc":
        return _low_bits(a[0], w)
    x = a[0]
    y = a[1] if len(a) > 1 else None
    constant = y is not None and consts[1] is not None
    if op == "add":
        return _wrap(x.term + y.term, x.lo + y.lo, x.hi + y.hi, w)
    if op == "sub" and consts[0] == 0 and 0 <= y.lo and y.hi <= 1:
        return _minus_bit(y, w)
    if op == "sub":
        if x.lo >= y.hi:
            return Bounded(x.term - y.term, x.lo - y.hi, x.hi - y.lo)
        return _full((x.term - y.term) % (1 << w), w)
    if op == "mul":
        return _wrap(x.term * y.term, x.lo * y.lo, x.hi * y.hi, w)
    if op == "mulhu":
        return Bounded((x.term * y.term) / (1 << w), (x.lo * y.lo) >> w, (x.hi * y.hi) >> w)
    if op == "neg" and 0 <= x.lo and x.hi <= 1:
        return _minus_bit(x, w)
    if op == "neg":
        return _full(((1 << w) - x.term) % (1 << w), w)
    if op == "not":
        return Bounded((1 << w) - 1 - x.term, (1 << w) - 1 - x.hi, (1 << w) - 1 - x.lo,
                       mask=None if x.mask is None else z3.Not(x.mask))
    if op == "and":
        for value, other in ((consts[1], x), (consts[0], y)):
            k = _power_of_two_mask(value) if value is not None else None
            if k is not None:
                return _low_bits(other, k)
    if op in ("lshr", "shl") and constant:
        k = consts[1] % w
        if op == "lshr":
            return Bounded(x.term / (1 << k), x.lo >> k, x.hi >> k)
        if k == 0:
            return x
        low = _low_bits(x, w - k)  # only the low w - k bits stay: no wrap to take
        return Bounded(low.term * (1 << k), low.lo << k, low.hi << k)
    if op == "ashr" and constant:  # the sign extension of the bits shifted down
        k = consts[1] % w
        return x if k == 0 else sign_extended(
            Bounded(x.term / (1 << k), x.lo >> k, x.hi >> k), w - k, w)
    if op in ("or", "xor") and constant and consts[1] == 0:
        return x
    if op in ("xor", "and", "or"):
        for m, other in ((y, x), (x, y)):
            if m.mask is not None:
                return _masked(op, m, other, w)
    if op == "select":
        z = a[2]
        return Bounded(z3.If(x.term == 1, y.term, z.term), min(y.lo, z.lo), max(y.hi, z.hi))
    if op in ("eq", "ne", "ult", "ule", "slt", "sle"):
        aw = n.args[0].width
        p, q = (x.term, y.term) if op in ("eq", "ne", "ult", "ule") else (_signed(x, aw),
                                                                         _signed(y, aw))
        cond = {"eq": p == q, "ne": p != q, "ult": p < q, "ule": p <= q, "slt": p < q,
                "sle": p <= q}[op]
        return Bounded(z3.If(cond, 1, 0), 0, 1)
    if op == "sext":
        return sign_extended(x, n.args[0].width, w)
    raise Untranslatable(f"no integer reading of {op}/{w}")


def translate(result: Node, params: dict[int, Bounded]) -> Bounded:
    """The integer term of `result`, given each parameter's term and bounds.  Nodes of
    constants only are folded first (a shift's amount is `imm & 31`, not `imm`)."""
    values: dict[int, Bounded] = {}
    constant: dict[int, int] = {}
    for n in postorder(Routine((), result, None)):
        if n.op == "param":
            values[id(n)] = params[n.attr]
            continue
        if n.op in ("mem", "load", "store"):
            raise Untranslatable("memory has no integer reading here")
        if all(id(x) in constant for x in n.args):
            value = interp.run(Routine((), n, None), ()).result
            constant[id(n)] = value
            ones = (1 << n.width) - 1
            values[id(n)] = Bounded(z3.IntVal(value), value, value, mask=z3.BoolVal(
                value == ones) if value in (0, ones) and n.width > 1 else None)
            continue
        values[id(n)] = _node(n, [values[id(x)] for x in n.args],
                              [constant.get(id(x)) for x in n.args])
    return values[id(result)]
