"""Code layout (evolution/layout.py): a proven program's code with no-ops before its
return, its return 32 bytes past the entry.  Checked against capstone (each no-op of the
ISA's table decodes as one no-op of that length; a padded code decodes as the program's
instructions with the padding before the return) and Unicorn (the padded code computes
what the interpreter says)."""

from __future__ import annotations

import pytest

from evolution.check import unicorn_check
from evolution.layout import MOST_NOPS, PADDED, RETURN_AT, padded, with_padding
from evolution.registry import ISAS
from evolution.testset import machine_vectors
from sem.library import hackers_delight as hd


def decoded(isa, code: bytes) -> list[tuple[int, int, str]]:
    """(offset, length, mnemonic) of each instruction capstone reads in `code`."""
    out = [(i.address, i.size, i.mnemonic) for i in isa.arch.disassembler.disasm(code, 0)]
    assert sum(size for _, size, _ in out) == len(code), "capstone stopped early"
    return out


@pytest.mark.parametrize("name", sorted(ISAS))
def test_each_no_op_of_the_isa_decodes_as_one_no_op_of_its_length(name):
    isa = ISAS[name]
    assert isa.nops
    for length, code in isa.nops.items():
        (insn,) = decoded(isa, code)
        assert insn[1] == length == len(code) and insn[2] in ("nop", "c.nop"), insn


def test_a_padded_code_returns_32_bytes_in_and_computes_what_the_program_does():
    isa = ISAS["x86_64"]
    # p20's shape (12 bytes before its return: two no-ops), p01's (4: more than two)
    program = "\n".join(["mov eax, edi", "neg eax", "and eax, edi", "add eax, edi",
                         "xor edi, eax", "shr edi, 2", "shr edi, cl", "or eax, edi", "ret"])
    code = isa.assemble("bsf ecx, edi\n" + program + "\n", frozenset())
    twin = padded(isa, code, 10)
    assert twin is not None and len(twin.padding) <= MOST_NOPS
    insns = decoded(isa, twin.code)
    assert insns[-1][0] == RETURN_AT and insns[-1][2] == "ret"
    original = decoded(isa, code)
    assert [m for *_, m in insns] == [m for *_, m in original[:-1]] + ["nop"] * len(
        twin.padding) + ["ret"]
    assert twin.instructions == len(insns) == 10 + len(twin.padding)
    vectors = machine_vectors(isa, hd.p20, 200, seed=3)
    assert unicorn_check(isa, hd.p20, twin.code, vectors) == []
    text = twin.text(isa, "bsf ecx, edi\n" + program + "\n").splitlines()
    assert len(text) == twin.instructions and text[-1] == "ret"
    assert text[-1 - len(twin.padding):-1] == [f"{i.mnemonic} {i.op_str}".strip() for b in
                                                twin.padding for i in
                                                isa.arch.disassembler.disasm(b, 0)]


def test_no_padding_where_the_return_lies_far_enough_in_or_it_takes_too_many_no_ops():
    isa = ISAS["x86_64"]
    ret = isa.assemble("ret\n", frozenset())
    far = isa.assemble("\n".join(["lea eax, [rdi + rsi*4 + 1000]"] * 5) + "\nret\n",
                       frozenset())
    assert len(far) - len(ret) >= RETURN_AT and padded(isa, far, 6) is None
    # a bare return is 32 bytes short: three of the longest no-ops (15 bytes) at least
    assert max(isa.nops) * MOST_NOPS < RETURN_AT and padded(isa, ret, 1) is None


def test_with_padding_adds_each_twin_within_the_bound():
    isa = ISAS["x86_64"]
    short = isa.assemble("mov eax, edi\nadd eax, esi\nret\n", frozenset())
    long_ = isa.assemble("\n".join(["lea eax, [rdi + rsi*4 + 1000]"] * 5) + "\nret\n",
                         frozenset())
    codes = {"best": short, "kept 0": long_, "gcc": short}
    counts = {"best": 3, "kept 0": 6}
    twins = with_padding(isa, codes, counts, 5)
    assert set(twins) == {"best" + PADDED} and counts["best" + PADDED] == 5
    assert codes["best" + PADDED] == twins["best" + PADDED].code and "gcc" + PADDED not in codes
    assert with_padding(isa, dict(codes), {"best": 3}, 4) == {}  # 5 instructions: above 4
