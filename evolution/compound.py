"""IR for machine operations the IR has no node of its own for: bit deposit and
extract (x86 BMI2 pdep/pext) and signed division (RISC-V M div/rem), written
out from the IR's nodes so the interpreter and Z3 read them as they are (bit
deposit and extract are chains of w steps: exact at full width, slow to prove,
which is why a search rarely picks them).  Signed division is the IR's
unsigned udiv/urem of the magnitudes with the signs put back."""

from __future__ import annotations

from evolution.isa import bit
from sem.ir import Node, const, lshr, select, udiv, urem, zext


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


def sdivrem(a: Node, b: Node) -> tuple[Node, Node]:
    """Signed quotient (towards zero) and remainder, RISC-V's corner cases included:
    x / 0 = -1, x % 0 = x, MIN / -1 = MIN, MIN % -1 = 0."""
    w = a.width
    sa, sb = bit(a, w - 1), bit(b, w - 1)
    ma, mb = select(sa, -a, a), select(sb, -b, b)
    uq, ur = udiv(ma, mb), urem(ma, mb)
    q = select(b == 0, const(-1, w), select(sa ^ sb, -uq, uq))
    return q, select(sa, -ur, ur)
