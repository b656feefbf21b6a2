"""IR for machine operations the IR has no node of its own for: bit deposit and
extract (x86 BMI2 pdep/pext) and integer division (RISC-V M div/rem), written
out bit by bit from the IR's nodes so the interpreter and Z3 read them as they
are (each is a chain of w steps: exact at full width, slow to prove, which is
why a search rarely picks them)."""

from __future__ import annotations

from evolution.isa import bit
from sem.ir import Node, const, lshr, select, ule, zext


def pext(a: Node, m: Node) -> Node:
    """The bits of `a` where `m` has ones, packed into the low end."""
    w = a.width
    r, k = const(0, w), const(0, w)
    for i in range(w):
        mi = bit(m, i)
        r = r | select(mi, zext(bit(a, i), w) << k, const(0, w))
        k = k + zext(mi, w)
    return r


def pdep(a: Node, m: Node) -> Node:
    """The low bits of `a` deposited, in order, where `m` has ones."""
    w = a.width
    r, k = const(0, w), const(0, w)
    for i in range(w):
        mi = bit(m, i)
        taken = bit(lshr(a, k), 0) if w > 1 else a
        r = r | (zext(mi & taken, w) << i)
        k = k + zext(mi, w)
    return r


def udivrem(a: Node, b: Node) -> tuple[Node, Node]:
    """Unsigned quotient and remainder by restoring division.  Dividing by zero gives
    an all-ones quotient and `a` as remainder, which is what RISC-V asks."""
    w = a.width
    q, r = const(0, w), const(0, w)
    for i in reversed(range(w)):
        carry = bit(r, w - 1)  # the shifted-out bit: then r >= b surely
        r = (r << 1) | zext(bit(a, i), w)
        take = carry | ule(b, r)
        r = select(take, r - b, r)
        q = q | (zext(take, w) << i)
    return q, r


def sdivrem(a: Node, b: Node) -> tuple[Node, Node]:
    """Signed quotient (towards zero) and remainder, RISC-V's corner cases included:
    x / 0 = -1, x % 0 = x, MIN / -1 = MIN, MIN % -1 = 0."""
    w = a.width
    sa, sb = bit(a, w - 1), bit(b, w - 1)
    uq, ur = udivrem(select(sa, -a, a), select(sb, -b, b))
    q = select(b == 0, const(-1, w), select(sa ^ sb, -uq, uq))
    return q, select(sa, -ur, ur)
