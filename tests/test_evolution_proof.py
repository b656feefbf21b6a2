"""Proof before use: Z3 accepts a machine program only when it equals the routine at
full width under the platform ABI, and refuses a plausible-but-wrong one with a
counterexample on which the program really is wrong (checked by running it)."""

from __future__ import annotations

import itertools
import random

import pytest

from evolution.check import unicorn_check
from evolution.program import assemble, parse, text
from evolution.proof import prove
from evolution.registry import ISAS
from evolution.semantics import compose
from evolution.starts import lowering, network, starts, without_bit_counts
from evolution.testset import MachineVector, expected, machine_vectors, place
from sem import interp, ir
from sem.interp import Memory
from sem.library import hackers_delight as hd
from sem.library import sorting
from sem.vectors import DATA_ADDRESS

X86, RISCV = ISAS["x86_64"], ISAS["riscv64"]


def _result(isa, program, v: MachineVector) -> int:
    """What the program leaves in the result register on v, by the IR interpreter."""
    comp = compose(isa, program)
    args = comp.inputs(list(v.registers), list(v.flags), v.undefined)
    return interp.run(comp.routine(comp.registers[isa.number(isa.abi.result)]), args).result


def _wrong_on(isa, spec, program, v: MachineVector) -> bool:
    mask = (1 << spec.result_width) - 1 if isa.abi.narrow_result == "low" else 2**64 - 1
    return _result(isa, program, v) & mask != expected(isa, spec, v)[0]


def test_a_correct_program_is_proven():
    proof = prove(X86, hd.p01, parse(X86, "lea eax, [rdi - 1]\nand eax, edi\nret\n"))
    assert proof.proven and proof.counterexample is None


def test_a_plausible_but_wrong_program_is_refused_with_a_counterexample_that_is_real():
    # x & (x + 1) instead of x & (x - 1): equal on every odd... and on no even x
    wrong = parse(X86, "lea eax, [rdi + 1]\nand eax, edi\nret\n")
    proof = prove(X86, hd.p01, wrong)
    assert not proof.proven and proof.counterexample is not None
    assert _wrong_on(X86, hd.p01, wrong, proof.counterexample)


@pytest.mark.parametrize("isa,spec,source,why", [
    (X86, hd.p25, "mov rax, rdi\nimul rax, rsi\nshr rax, 32\nret\n",
     "relies on the upper halves of edi and esi, which System V leaves undefined"),
    (RISCV, hd.p01, "addi a5, a0, -1\nand a0, a0, a5\nret\n",
     "leaves a0 not sign-extended from 32 bits, as LP64 wants"),
    (X86, hd.p14, "mov eax, edi\nadd eax, esi\nshr eax, 1\nret\n",
     "overflows where the routine does not: (x + y) >> 1 is not floor((x + y) / 2) at 32 bits"),
])
def test_abi_and_overflow_mistakes_are_refused(isa, spec, source, why):
    program = parse(isa, source)
    proof = prove(isa, spec, program)
    assert not proof.proven, why
    assert _wrong_on(isa, spec, program, proof.counterexample), why


def test_clobbering_a_callee_saved_register_is_refused():
    program = parse(X86, "lea eax, [rdi - 1]\nand eax, edi\nmov ebx, 7\nret\n")
    proof = prove(X86, hd.p01, program)
    assert not proof.proven
    v, rbx = proof.counterexample, X86.number("rbx")
    comp = compose(X86, program)
    args = comp.inputs(list(v.registers), list(v.flags), v.undefined)
    assert interp.run(comp.routine(comp.registers[rbx]), args).result != v.registers[rbx]


def test_an_access_outside_the_routines_memory_is_refused():
    """A sort3 that also reads the word past its three: it could fault where sort3 cannot."""
    program = network(X86, sorting.sort3, frozenset()).program
    assert prove(X86, sorting.sort3, program).proven
    extra = parse(X86, "mov r11d, dword ptr [rdi + 12]\n" + text(X86, program))
    assert not prove(X86, sorting.sort3, extra).proven


def test_products_are_proven_through_integer_arithmetic():
    """p25 (high half of a product from 16-bit partial products) against one 64-bit
    multiply: bit-blasting gives up, the integer reading proves it."""
    program = parse(X86, "mov eax, edi\nmov esi, esi\nimul rax, rsi\nshr rax, 32\nret\n")
    proof = prove(X86, hd.p25, program, timeout_ms=20_000)
    assert proof.proven and "integer" in proof.detail
    off_by_one_bit = parse(X86, "mov eax, edi\nmov esi, esi\nimul rax, rsi\nshr rax, 31\nret\n")
    bad = prove(X86, hd.p25, off_by_one_bit, timeout_ms=20_000)
    assert not bad.proven and _wrong_on(X86, hd.p25, off_by_one_bit, bad.counterexample)


@pytest.mark.parametrize("source, proven", [
    # x - mulhu(x, x) is |x| for a sign-extended word (the high half of (2^64 - m)^2 is
    # 2^64 - 2m): bit-blasting gave up after 20 s, and p09's whole budget went to it
    ("mulhu a1, a0, a0\nsubw a0, a0, a1\nret\n", True),
    # the same without the W form: wrong at INT_MIN (2^31 is not sign-extended)
    ("mulhu a1, a0, a0\nsub a0, a0, a1\nret\n", False),
    ("mulhu a1, a0, a0\naddw a0, a0, a1\nret\n", False)])
def test_p09_by_a_product_is_settled_through_integers(source, proven):
    """p09's sign mask (xor and subtract of ashr(x, 31)) has an integer reading as a select,
    so a product program is proven, or refused with a real counterexample, in seconds."""
    program = parse(RISCV, source)
    proof = prove(RISCV, hd.p09, program, timeout_ms=10_000)
    assert proof.seconds < 5, proof
    assert proof.proven == proven, proof.detail
    if proven:
        assert "integer" in proof.detail
    else:
        assert _wrong_on(RISCV, hd.p09, program, proof.counterexample)


# gcc -O3's p25 for rv64gc: four 16-bit partial products, every 32-bit result of a W
# instruction sign-extended into its register
RISCV_P25 = """lui a3, 16
addi a3, a3, -1
and a2, a1, a3
and a5, a0, a3
mulw a4, a2, a5
srliw a0, a0, 16
srliw a1, a1, 16
mulw a2, a2, a0
srliw a4, a4, 16
mulw a5, a5, a1
addw a4, a4, a2
and a3, a3, a4
srliw a4, a4, 16
mulw a0, a0, a1
addw a5, a5, a3
srliw a5, a5, {shift}
addw a0, a0, a4
addw a0, a0, a5
ret
"""


@pytest.mark.parametrize("source, shift", [
    # gcc's p25: products of sign-extended words.  The integer reading takes a truncation
    # or mask of a sign extension from the value extended (no case split on its sign): Z3
    # had not proven it in four minutes, now it does in seconds.
    (RISCV_P25, 16),
    # p25 as one 64-bit product (Zba's zext.w, or both words shifted up and mulhu): a shift
    # left keeps only the low bits it does not push out, and an arithmetic shift right is
    # the sign extension of a logical one; bit-blasting gave up after 120 s.
    ("slli a0, a0, 32\nslli a1, a1, 32\nmulhu a0, a0, a1\nsrai a0, a0, {shift}\nret\n", 32),
    ("zext.w a0, a0\nzext.w a1, a1\nmul a0, a0, a1\nsrai a0, a0, {shift}\nret\n", 32)])
def test_riscv_products_for_p25_are_proven_through_integers(source, shift):
    """Proven through the integer reading; off by one shift, refused with a real
    counterexample."""
    program = parse(RISCV, source.format(shift=shift))
    proof = prove(RISCV, hd.p25, program, timeout_ms=60_000)
    assert proof.proven and "integer" in proof.detail, proof.detail
    wrong = parse(RISCV, source.format(shift=shift - 1))
    bad = prove(RISCV, hd.p25, wrong, timeout_ms=60_000)
    assert not bad.proven and _wrong_on(RISCV, hd.p25, wrong, bad.counterexample)


@pytest.mark.parametrize("isa,features", [(X86, frozenset()), (RISCV, frozenset({"zbb"})),
                                          (RISCV, frozenset())])
def test_sort3_networks_are_proven_and_sort_every_order(isa, features):
    """Proven by Z3; and, independently, run in Unicorn on every weak ordering of three
    values (ties included) they sort.  x86-64's is 17 instructions with the return (a
    compare-exchange of an element still as loaded takes its copy from memory)."""
    program = network(isa, sorting.sort3, features).program
    assert prove(isa, sorting.sort3, program).proven
    assert program.instructions == {"x86_64": 17, "riscv64": 13 if features else 22}[isa.name]
    if "zbb" in features:
        return  # Unicorn has no Zbb
    code = assemble(isa, program, features)
    rng = random.Random(3)
    vectors = []
    for order in itertools.product(range(3), repeat=3):
        values = [(-5, 7, 2**31 - 1)[k] for k in order]
        memory = b"".join((x & 0xFFFFFFFF).to_bytes(4, "little") for x in values)
        v = place(isa, sorting.sort3, (DATA_ADDRESS,), rng, memory)
        want = interp.run(sorting.sort3, (DATA_ADDRESS,), Memory(DATA_ADDRESS, memory))
        assert sorted(values) == [int.from_bytes(want.memory.data[4 * i: 4 * i + 4], "little",
                                                 signed=True) for i in range(3)]
        vectors.append(v)
    assert unicorn_check(isa, sorting.sort3, code, vectors) == []


def test_the_sort_search_finds_alphadevs_sort3_body_in_its_instruction_set():
    """Breadth-first over mov/reload/cmp/cmovl/cmovg (registers only, AlphaDev's set):
    after the network's first compare-exchange, 7 steps finish what the network does in
    8 (AlphaDev's sort3: 17 with loads and stores), found at the depth the search first
    reaches them, so none is shorter.  Proven."""
    from evolution.sortnet import body_text, network_steps, x86_64_templates
    from evolution.sortsearch import search

    prefix = network_steps(3, 3)[:4]
    rest = search(3, 4, 7, prefix=prefix)
    assert rest is not None and len(rest) == 7
    assert all(s.op in ("mov", "load", "cmp", "cmovl", "cmovg") for s in rest)
    program = parse(X86, body_text(x86_64_templates(frozenset()), 3, [*prefix, *rest], "ret"))
    assert program.instructions == 18 and prove(X86, sorting.sort3, program).proven


def test_a_seeded_wrong_program_never_leaves_the_search():
    """A plausible-but-wrong start seeded into evolve (shorter than every correct start,
    so it is tried first): Z3 refuses it with a counterexample on which it really is
    wrong, the counterexample joins the vectors, and what evolve returns is proven."""
    from evolution.evolve import evolve
    from evolution.starts import Start
    from evolution.targets import TARGETS

    wrong = parse(X86, "mov eax, edi\nadd eax, esi\nshr eax, 1\nret\n")  # (x + y) >> 1
    result = evolve(hd.p14, TARGETS["x86-64 qemu64"], budget_s=None, batches=1, seed=4,
                    extra_starts=[Start("seeded", wrong)])
    assert text(X86, result.program) != text(X86, wrong)
    assert result.start != "seeded"
    refused = [v for v in result.counterexamples if _wrong_on(X86, hd.p14, wrong, v)]
    assert refused, "the seeded program's counterexample is among those kept"
    assert prove(X86, hd.p14, result.program).proven


def _bit_count(op: str, ty):
    """op(x) ^ x on one value of type ty, as a routine."""
    def count(x):
        return getattr(ir, op)(x) ^ x

    count.__annotations__ = {"x": ty, "return": ty}
    count.__name__ = f"{op}{ty.width}"
    return ir.routine(count)


@pytest.mark.parametrize("op", ["popcount", "clz", "ctz"])
@pytest.mark.parametrize("width", [8, 16, 32, 64])
def test_riscv_bit_counts_lowered_with_zbb_are_straight_line_and_proven(op, width):
    """Without Zbb the lowering counts bits in a loop, which is no start; with it, cpop, clz
    and ctz (their zero and the bits above a narrow value included), and Z3 proves the
    start equal to the routine at full width."""
    spec = _bit_count(op, {8: ir.bv8, 16: ir.bv16, 32: ir.bv32, 64: ir.bv64}[width])
    assert lowering(RISCV, spec) is None
    start = lowering(RISCV, spec, frozenset({"m", "zbb"}))
    assert start is not None
    assert {"popcount": "cpop", "clz": "clz", "ctz": "ctz"}[op] in text(RISCV, start.program)
    # not ctzw, which QEMU 7.2's rv64 counts over all 64 bits: the boards avoid it
    assert "ctzw" not in text(RISCV, start.program)
    assert prove(RISCV, spec, start.program, timeout_ms=60_000).proven


@pytest.mark.parametrize("name, mnemonic", [("smax", "max"), ("smin", "min"),
                                            ("umax", "maxu"), ("umin", "minu")])
@pytest.mark.parametrize("width", [8, 16, 32, 64])
def test_riscv_min_and_max_lowered_with_zbb_are_its_min_and_max_and_proven(name, mnemonic,
                                                                          width):
    """A select of the larger or smaller of two values is Zbb's max or min (maxu, minu
    for the unsigned order) on the sign-extended values, which keeps both orders; Z3
    proves the start equal to the routine.  Without Zbb it is a branch over a move."""
    less = ir.ult if name.startswith("u") else ir.slt

    def pick(x, y):
        return ir.select(less(x, y), y, x) if name.endswith("max") else \
            ir.select(less(x, y), x, y)

    ty = {8: ir.bv8, 16: ir.bv16, 32: ir.bv32, 64: ir.bv64}[width]
    pick.__annotations__ = {"x": ty, "y": ty, "return": ty}
    pick.__name__ = f"{name}{width}"
    spec = ir.routine(pick)
    start = lowering(RISCV, spec, frozenset({"m", "zbb"}))
    assert start is not None
    assert any(i.form == f"{mnemonic} r, r, r" for i in start.program.insns), \
        text(RISCV, start.program)
    assert prove(RISCV, spec, start.program, timeout_ms=60_000).proven
    plain = lowering(RISCV, spec, frozenset({"m"}))
    assert plain is not None and not any(i.form.startswith(("max", "min"))
                                         for i in plain.program.insns)


_ONE_INSTRUCTION = {  # mnemonic -> the routine it computes, over x and y of one width
    "blsr": lambda x, y: x & (x - 1), "blsi": lambda x, y: x & -x,
    "blsmsk": lambda x, y: x ^ (x - 1), "andn": lambda x, y: ~x & y,
    "orn": lambda x, y: x | ~y, "xnor": lambda x, y: ~(x ^ y)}


@pytest.mark.parametrize("isa, features, mnemonic", [
    *((X86, frozenset({"bmi1"}), m) for m in ("blsr", "blsi", "blsmsk", "andn")),
    *((RISCV, frozenset({"m", "zbb"}), m) for m in ("andn", "orn", "xnor"))])
@pytest.mark.parametrize("width", [8, 16, 32, 64])
def test_a_routine_an_extension_does_in_one_instruction_is_lowered_to_it(isa, features,
                                                                         mnemonic, width):
    """With BMI1 (x86) or Zbb (riscv), what one of their instructions computes is that
    instruction, narrow values included (their low bits are the instruction's), and Z3
    proves the start equal to the routine; without the extension it is not used."""
    ty = {8: ir.bv8, 16: ir.bv16, 32: ir.bv32, 64: ir.bv64}[width]

    def pick(x, y):
        return _ONE_INSTRUCTION[mnemonic](x, y)

    pick.__annotations__ = {"x": ty, "y": ty, "return": ty}
    pick.__name__ = f"{mnemonic}{width}"
    spec = ir.routine(pick)
    start = lowering(isa, spec, features)
    assert start is not None
    assert any(i.form.startswith(mnemonic + " ") for i in start.program.insns), \
        text(isa, start.program)
    assert prove(isa, spec, start.program, timeout_ms=60_000).proven
    plain = lowering(isa, spec, frozenset({"m"}) if isa is RISCV else frozenset())
    assert plain is not None and not any(i.form.startswith(mnemonic + " ")
                                         for i in plain.program.insns)
    if isa is X86:  # Unicorn runs BMI1 (not Zbb): the interpreter's answers on 300 vectors
        code = assemble(isa, start.program, features)
        assert not unicorn_check(isa, spec, code, machine_vectors(isa, spec, 300, 3))


def test_an_instruction_inside_another_ones_is_not_written_twice():
    """c & ~(a ^ b) with Zbb: andn absorbs the complement, which xnor would have written
    with the xor; the xor is computed, then andn (2 instructions and the return), proven."""
    def masked(a: ir.bv64, b: ir.bv64, c: ir.bv64) -> ir.bv64:
        return c & ~(a ^ b)

    spec = ir.routine(masked)
    start = lowering(RISCV, spec, frozenset({"m", "zbb"}))
    assert [i.form.split()[0] for i in start.program.insns] == ["xor", "andn"]
    assert prove(RISCV, spec, start.program).proven


@pytest.mark.parametrize("op", ["popcount", "clz", "ctz"])
@pytest.mark.parametrize("width", [8, 16, 32])
def test_riscv_bit_counts_without_zbb_start_from_formulas_z3_proves(op, width):
    """Without Zbb the lowering loops, so the start is the lowering of the routine with its
    bit count written as a branch-free formula; Z3 proves it equal to the routine itself
    (not to the rewritten one) at full width, zero included.  For 8 and 16 bits the
    rewritten routine also agrees with the original in the interpreter on every input.
    (64 bits: the formula's masks are 64-bit constants, which evolution's riscv `li` does
    not expand, so there is no start there yet.)"""
    spec = _bit_count(op, {8: ir.bv8, 16: ir.bv16, 32: ir.bv32, 64: ir.bv64}[width])
    found = starts(RISCV, spec, frozenset({"m"}))
    assert [s.name for s in found] == ["lowering, bit counts as formulas"]
    assert "j " not in text(RISCV, found[0].program)
    assert prove(RISCV, spec, found[0].program, timeout_ms=60_000).proven
    if width <= 16:
        rewritten = without_bit_counts(spec)
        assert all(interp.run(rewritten, (x,)).result == interp.run(spec, (x,)).result
                   for x in range(1 << width))


def test_a_start_using_a_form_the_board_lacks_is_not_offered():
    """x86's lowering writes popcnt for a popcount: a start for Haswell (POPCNT found);
    for qemu64 (no POPCNT), where a program with it would fault, only the lowering with
    the count as a formula, which Z3 proves."""
    from evolution.evolve import offered_starts
    from evolution.targets import TARGETS

    spec = _bit_count("popcount", ir.bv32)
    haswell = offered_starts(X86, spec, TARGETS["x86-64 Haswell"])
    assert any("popcnt" in text(X86, s.program) for s in haswell)
    qemu64 = offered_starts(X86, spec, TARGETS["x86-64 qemu64"])
    assert [s.name for s in qemu64] == ["lowering, bit counts as formulas"]
    assert "popcnt" not in text(X86, qemu64[0].program)
    assert prove(X86, spec, qemu64[0].program).proven


@pytest.mark.parametrize("source", [
    RISCV_P25.format(shift=16),
    "slli a0, a0, 32\nslli a1, a1, 32\nmulhu a0, a0, a1\nsrai a0, a0, 32\nret\n",
    "srai a2, a0, 7\nslli a3, a1, 45\nsub a0, a3, a2\nsraiw a0, a0, 3\nmulw a0, a0, a2\n"
    "srliw a1, a0, 5\naddw a0, a0, a1\nret\n",
    # masks (0 or all ones) under xor, and, or, not: selects
    "sraiw a2, a0, 31\nxor a3, a1, a2\nsubw a0, a3, a2\nret\n",
    "slt a2, a0, a1\nsub a2, zero, a2\nxori a3, a2, -1\nand a3, a3, a0\nand a2, a2, a1\n"
    "add a0, a2, a3\nmulw a0, a0, a0\nret\n",
    "srai a2, a1, 63\nor a0, a0, a2\nsrliw a0, a0, 3\nret\n"])
def test_the_integer_reading_equals_the_interpreter(source):
    """The integer terms (proof_int, sign extensions read by their narrow values, shifts
    by constants) evaluated at random inputs equal the interpreter's result of the same
    program: the reading is exact, so an unsat answer is a proof."""
    import z3

    from evolution.proof_int import Bounded, sign_extended
    from evolution.proof_int import translate as translate_int

    program = parse(RISCV, source)
    comp = compose(RISCV, program)
    result = comp.registers[RISCV.number("a0")]
    rng = random.Random(11)
    for _ in range(200):
        regs = [rng.getrandbits(64) for _ in RISCV.registers]
        regs[RISCV.zero_register] = 0
        for name in ("a0", "a1"):  # LP64: 32-bit arguments arrive sign-extended
            word = rng.choice([rng.getrandbits(32), 0, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF])
            regs[RISCV.number(name)] = word | (0xFFFFFFFF00000000 if word >> 31 else 0)
        params = {n: Bounded(z3.IntVal(v), v, v) for n, v in enumerate(regs)}
        for name in ("a0", "a1"):
            n = RISCV.number(name)
            word = regs[n] & 0xFFFFFFFF
            params[n] = sign_extended(Bounded(z3.IntVal(word), word, word), 32, 64)
        got = z3.simplify(translate_int(result, params).term).as_long()
        args = comp.inputs(regs, [0] * len(RISCV.flags), 0)
        assert got == interp.run(comp.routine(result), args).result


@pytest.mark.parametrize("spec, count, goal", [
    (sorting.sort3, 22, 27), (sorting.sort4, 34, 39), (sorting.sort5, 56, 66)])
def test_riscv_networks_without_zbb_exchange_by_branch_moves(spec, count, goal):
    """Without Zbb's min/max a compare-exchange is a copy and two branches over a move (5
    instructions; the xor swap took 6): the networks are proven at full width, Unicorn
    agrees, and their counts (capstone's) are under the issue's gcc rv64gc goals."""
    from evolution.testset import machine_vectors
    from sem.views.asm import disassemble

    program = network(RISCV, spec, frozenset({"m"})).program
    assert any(RISCV.by_name[i.form].size == 2 for i in program.insns)
    assert prove(RISCV, spec, program, timeout_ms=120_000).proven
    code = assemble(RISCV, program)
    assert program.instructions == len(disassemble(RISCV.arch, code)) == count <= goal
    assert unicorn_check(RISCV, spec, code, machine_vectors(RISCV, spec, 300, 4)) == []


SIGN_WITH_JUMPS = """xor eax, eax
test edi, edi
je done
mov eax, 1
test edi, edi
jns done
mov eax, -1
done:
ret
"""


def _listing(*statements: str):
    """A compiler's listing (evolution/gcc.py Compiled) of these statements, each at the
    address of its line, so that a jump names its target by line number."""
    from evolution.gcc import Compiled

    return Compiled(b"", len(statements), "\n".join(statements), (), "", frozenset(),
                    tuple(range(len(statements))))


def _sign_listing(inner: str = "jns"):
    """p13 (the sign) as a compiler might branch: a jump over the rest where x = 0, and
    inside it one over the -1 where x is not negative."""
    return _listing("xor eax, eax", "test edi, edi", "je 7", "mov eax, 1", "test edi, edi",
                    f"{inner} 7", "mov eax, -1", "ret")


def test_nested_jumps_are_read_as_paths_proven_and_a_wrong_condition_refuted():
    """A listing's paths (evolution/gcc.py traces): p13's nested jumps make three, each
    proven where it is the one run; the inner jump's condition flipped is refuted, and the
    counterexample is wrong when the assembled code runs in Unicorn, the original right."""
    from evolution.gcc import traces
    from evolution.proof import prove_traces

    program, ways = traces(X86, _sign_listing())
    assert len(ways) == 3 and program == parse(
        X86, "xor eax, eax\ntest edi, edi\nmov eax, 1\ntest edi, edi\nmov eax, -1\nret\n")
    assert prove_traces(X86, hd.p13, ways).proven
    refuted = prove_traces(X86, hd.p13, traces(X86, _sign_listing("js"))[1])
    assert not refuted.proven and refuted.counterexample is not None
    code = X86.assemble(SIGN_WITH_JUMPS, frozenset())
    flipped = X86.assemble(SIGN_WITH_JUMPS.replace("jns", "js"), frozenset())
    vectors = [refuted.counterexample, *(place(X86, hd.p13, (x,), random.Random(x))
                                         for x in (0, 1, 5, 2**31, 2**32 - 1))]
    assert unicorn_check(X86, hd.p13, code, vectors) == []
    assert unicorn_check(X86, hd.p13, flipped, vectors[:1])


def test_a_listing_that_loops_leaves_its_function_or_branches_too_often_is_not_read():
    from evolution.gcc import MAX_TRACES, traces

    assert traces(X86, _listing("test edi, edi", "jne 0", "ret")) is None  # a loop
    assert traces(X86, _listing("test edi, edi", "je 9", "ret")) is None  # to no line
    off_the_end = _listing("test edi, edi", "je 3", "ret", "mov eax, 1")
    assert traces(X86, off_the_end) is None
    # an instruction the engine cannot read, on a path (not on one, it does not matter)
    assert traces(X86, _listing("test edi, edi", "jmp 3", "ret", "push rbx", "ret")) is None
    assert traces(X86, _listing("test edi, edi", "jmp 4", "ret", "push rbx", "ret")) is not None
    # each `je` to the next line doubles the paths: 2^7 of them
    doubling = [line for k in range(7) for line in ("test edi, edi", f"je {2 * k + 2:x}")]
    assert 2**6 <= MAX_TRACES < 2**7
    assert len(traces(X86, _listing(*doubling[:-2], "ret"))[1]) == 2**6
    assert traces(X86, _listing(*doubling, "ret")) is None
