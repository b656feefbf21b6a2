"""The user's alternative, gcc -O3 on the C view: its code, run in Unicorn by the platform
ABI, agrees with the interpreter (two independent truths: the interpreter and gcc), and
its instruction count (objdump's) is capstone's count of the same bytes."""

from __future__ import annotations

import pytest

from evolution.check import unicorn_check
from evolution.gcc import as_start, available, compile_c
from evolution.program import assemble
from evolution.proof import prove
from evolution.registry import ISAS
from evolution.testset import machine_vectors
from sem.library import hackers_delight as hd
from sem.library import sorting
from sem.views.asm import disassemble

# Unicorn lacks Zb*, so riscv64 is checked at rv64gc; x86-64 with and without Haswell's
# features (Unicorn's model is a Broadwell)
TARGETS = [("x86_64", frozenset()), ("x86_64", frozenset({"bmi1", "bmi2", "lzcnt", "popcnt"})),
           ("riscv64", frozenset({"m"}))]


@pytest.mark.parametrize("isa_name,features", TARGETS)
@pytest.mark.parametrize("spec", [hd.p03, hd.p10, hd.p18, hd.p24, sorting.sort3],
                         ids=lambda s: s.hint_name)
def test_gccs_code_agrees_with_the_interpreter_in_unicorn(isa_name, features, spec):
    isa = ISAS[isa_name]
    if not available(isa):
        pytest.skip(f"no gcc for {isa_name} (./run installs it)")
    compiled = compile_c(isa, spec, features)
    wrong = unicorn_check(isa, spec, compiled.code, machine_vectors(isa, spec, 300, 3))
    assert not wrong, f"{len(wrong)} vectors, e.g. {wrong[0].detail}\n{compiled.asm}"
    assert compiled.instructions == len(disassemble(isa.arch, compiled.code))
    returns = [line for line in compiled.asm.splitlines()
               if line.split()[0] in ("ret", "c.jr") or line == "jalr zero,0(x1)"]
    assert returns, "the count includes the return"


def test_the_features_found_reach_gccs_command_line():
    """Haswell's features let gcc use BMI1's andn for p11's y & ~x: fewer instructions
    than for a baseline x86-64."""
    isa = ISAS["x86_64"]
    plain = compile_c(isa, hd.p11, frozenset())
    haswell = compile_c(isa, hd.p11, frozenset({"bmi1", "bmi2", "lzcnt", "popcnt"}))
    assert "-mbmi" in haswell.flags and "-mbmi" not in plain.flags
    assert "andn" in haswell.asm and "andn" not in plain.asm
    assert haswell.instructions < plain.instructions


@pytest.mark.parametrize("isa_name,features", TARGETS[:1] + [("riscv64",
                                                              frozenset({"m", "zbb"}))])
@pytest.mark.parametrize("spec", [hd.p01, hd.p10, hd.p24], ids=lambda s: s.hint_name)
def test_gccs_code_is_a_start_z3_proves(isa_name, features, spec):
    """gcc's straight-line code read back as a program of the engine's forms: the same
    count, and Z3 proves it equal to the routine under the ABI."""
    isa = ISAS[isa_name]
    if not available(isa):
        pytest.skip(f"no gcc for {isa_name} (./run installs it)")
    compiled = compile_c(isa, spec, features)
    start = as_start(isa, compiled)
    assert start is not None, compiled.asm
    assert start.program.instructions == compiled.instructions
    assert prove(isa, spec, start.program).proven


def test_gccs_commented_riscv_constants_are_read_back():
    """objdump comments a constant it can place (`add a3,a3,-1 # ffff <p25+0xffff>` in
    p25): the comment is not an operand.  The program read back has gcc's count, and its
    own assembly agrees with the interpreter in Unicorn."""
    isa = ISAS["riscv64"]
    if not available(isa):
        pytest.skip("no gcc for riscv64 (./run installs it)")
    compiled = compile_c(isa, hd.p25, frozenset({"m"}))
    assert "#" in compiled.asm
    start = as_start(isa, compiled)
    assert start is not None, compiled.asm
    assert start.program.instructions == compiled.instructions
    code = assemble(isa, start.program, frozenset({"m"}))
    assert unicorn_check(isa, hd.p25, code, machine_vectors(isa, hd.p25, 300, 5)) == []


def test_gccs_branching_code_is_no_start():
    isa = ISAS["x86_64"]
    compiled = compile_c(isa, sorting.sort3, frozenset())
    assert any(line.startswith("j") for line in compiled.asm.splitlines())
    assert as_start(isa, compiled) is None
