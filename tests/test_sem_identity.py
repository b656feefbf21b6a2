"""Routine IDs depend on meaning-bearing structure only."""

import hashlib

from sem import ir
from sem.canon import canonicalize, parse, routine_id
from sem.ir import bv16, bv32, lshr, routine, select, slt
from sem.library import hackers_delight as hd


def test_renaming_inputs_and_routine_keeps_the_id():
    @routine
    def clear_lowest(value: bv32) -> bv32:
        return value & (value - 1)

    assert routine_id(clear_lowest) == routine_id(hd.p01)


def test_construction_order_and_commutative_operand_order_keep_the_id():
    @routine
    def a(x: bv32, y: bv32) -> bv32:
        s = x ^ y
        t = x & y
        return t + lshr(s, 1)

    @routine
    def b(x: bv32, y: bv32) -> bv32:
        t = y & x  # built first, operands swapped
        return lshr(y ^ x, 1) + t

    assert routine_id(a) == routine_id(b) == routine_id(hd.p14)


def test_constants_are_normalised_to_their_width():
    @routine
    def minus_one(x: bv32) -> bv32:
        return x & -1

    @routine
    def all_ones(x: bv32) -> bv32:
        return x & 0xFFFFFFFF

    assert routine_id(minus_one) == routine_id(all_ones)


def test_distinct_semantics_give_distinct_ids():
    ids = {routine_id(getattr(hd, n)) for n in hd.__all__}
    assert len(ids) == 25

    @routine
    def p01_16(x: bv16) -> bv16:  # same expression, other width
        return x & (x - 1)

    @routine
    def swapped(x: bv32, y: bv32) -> bv32:  # non-commutative: operand order matters
        return select(slt(y, x), y, x)

    assert routine_id(p01_16) != routine_id(hd.p01)
    assert routine_id(swapped) != routine_id(hd.p16)


def test_id_is_blake2b_256_of_the_canonical_text_and_round_trips():
    c = canonicalize(hd.p25)
    assert c.id == hashlib.blake2b(c.text.encode(), digest_size=32).hexdigest()
    assert len(c.short) == 12 and c.id.startswith(c.short)
    assert canonicalize(parse(c.text)).text == c.text


def test_shared_subterms_are_hash_consed():
    x = ir.Node("param", 32, (), 0)
    twice = ir.Routine((bv32,), (x + 1) * (x + 1), None)  # two separate `x + 1` objects
    lines = canonicalize(twice).text.splitlines()[1:]
    assert sum(line.startswith("add") for line in lines) == 1
