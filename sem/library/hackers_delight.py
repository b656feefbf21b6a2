"""Hacker's Delight p01-p25, the superoptimization benchmark suite (Gulwani et al.,
PLDI 2011; STOKE), with the clean reference semantics on 32-bit values."""

from sem.ir import ashr, bv32, ctz, lshr, routine, select, sext, slt, ugt, ule, zext

NAMESPACE = "hd"


@routine
def p01(x: bv32) -> bv32:
    """Turn off the rightmost 1 bit."""
    return x & (x - 1)


@routine
def p02(x: bv32) -> bv32:
    """Test whether an unsigned integer is of the form 2^n - 1."""
    return x & (x + 1)


@routine
def p03(x: bv32) -> bv32:
    """Isolate the rightmost 1 bit."""
    return x & -x


@routine
def p04(x: bv32) -> bv32:
    """Mask of the rightmost 1 bit and the trailing 0s."""
    return x ^ (x - 1)


@routine
def p05(x: bv32) -> bv32:
    """Right-propagate the rightmost 1 bit."""
    return x | (x - 1)


@routine
def p06(x: bv32) -> bv32:
    """Turn on the rightmost 0 bit."""
    return x | (x + 1)


@routine
def p07(x: bv32) -> bv32:
    """Isolate the rightmost 0 bit."""
    return ~x & (x + 1)


@routine
def p08(x: bv32) -> bv32:
    """Mask of the trailing 0s."""
    return (x - 1) & ~x


@routine
def p09(x: bv32) -> bv32:
    """Absolute value (the sign mask trick)."""
    sign = ashr(x, 31)
    return (x ^ sign) - sign


@routine
def p10(x: bv32, y: bv32) -> bv32:
    """nlz(x) == nlz(y)."""
    return zext(ule(x ^ y, x & y), 32)


@routine
def p11(x: bv32, y: bv32) -> bv32:
    """nlz(x) < nlz(y)."""
    return zext(ugt(x & ~y, y), 32)


@routine
def p12(x: bv32, y: bv32) -> bv32:
    """nlz(x) <= nlz(y)."""
    return zext(ule(y & ~x, x), 32)


@routine
def p13(x: bv32) -> bv32:
    """Sign: -1, 0 or 1."""
    return ashr(x, 31) | lshr(-x, 31)


@routine
def p14(x: bv32, y: bv32) -> bv32:
    """Floor of the unsigned average, without overflow."""
    return (x & y) + lshr(x ^ y, 1)


@routine
def p15(x: bv32, y: bv32) -> bv32:
    """Ceiling of the unsigned average, without overflow."""
    return (x | y) - lshr(x ^ y, 1)


@routine
def p16(x: bv32, y: bv32) -> bv32:
    """Signed maximum."""
    return select(slt(x, y), y, x)


@routine
def p17(x: bv32) -> bv32:
    """Turn off the rightmost contiguous run of 1 bits."""
    return ((x | (x - 1)) + 1) & x


@routine
def p18(x: bv32) -> bv32:
    """1 if x is a power of two, else 0."""
    return zext(((x & (x - 1)) == 0) & (x != 0), 32)


@routine
def p19(x: bv32, m: bv32, k: bv32) -> bv32:
    """Exchange the bit field selected by m with the one k bits to its left."""
    t = (x ^ lshr(x, k)) & m
    return x ^ t ^ (t << k)


@routine(requires=lambda x: x != 0)
def p20(x: bv32) -> bv32:
    """Next higher number with the same number of 1 bits (snoob).  The reference C
    divides by the lowest set bit, `(ones >> 2) / smallest`, undefined at x = 0: the
    precondition says so, and the division is the shift by its position."""
    smallest = x & -x
    ripple = x + smallest
    ones = x ^ ripple
    return ripple | lshr(lshr(ones, 2), ctz(x))


@routine
def p21(x: bv32, a: bv32, b: bv32, c: bv32) -> bv32:
    """Cycle a -> b -> c -> a, given x is one of a, b, c."""
    return (sext(x == a, 32) & (b ^ c)) ^ (sext(x == c, 32) & (a ^ c)) ^ c


@routine
def p22(x: bv32) -> bv32:
    """Parity of the number of 1 bits."""
    for shift in (1, 2, 4, 8, 16):
        x = x ^ lshr(x, shift)
    return x & 1


@routine
def p23(x: bv32) -> bv32:
    """Population count (the SWAR formula)."""
    x = x - (lshr(x, 1) & 0x55555555)
    x = (x & 0x33333333) + (lshr(x, 2) & 0x33333333)
    x = (x + lshr(x, 4)) & 0x0F0F0F0F
    x = x + lshr(x, 8)
    x = x + lshr(x, 16)
    return x & 0x3F


@routine
def p24(x: bv32) -> bv32:
    """Round up to the next power of two (clp2)."""
    x = x - 1
    for shift in (1, 2, 4, 8, 16):
        x = x | lshr(x, shift)
    return x + 1


@routine
def p25(x: bv32, y: bv32) -> bv32:
    """High 32 bits of the unsigned 64-bit product, from 16-bit halves."""
    x0, x1 = x & 0xFFFF, lshr(x, 16)
    y0, y1 = y & 0xFFFF, lshr(y, 16)
    w0 = x0 * y0
    t = x1 * y0 + lshr(w0, 16)
    w1 = (t & 0xFFFF) + x0 * y1
    return x1 * y1 + lshr(t, 16) + lshr(w1, 16)


__all__ = [f"p{i:02d}" for i in range(1, 26)]
