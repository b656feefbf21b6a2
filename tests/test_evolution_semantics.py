"""Every form's IR semantics against a machine: single instructions on random and
edge operands, run as probes (probe ABI) in Unicorn, every register, the flags and
the memory window compared with the interpreter's prediction.  Unicorn lacks the
RISC-V bit-manipulation extensions; those forms are checked against the assembler
(encodings) here and against a QEMU guest in the boot test."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import capstone
import pytest
from elftools.elf.elffile import ELFFile

from evolution import validate
from evolution.program import Insn, MachineProgram, source_line, statement
from evolution.registry import ISAS
from probes.vet import vet

CASES = 10


def _forms(isa_name):
    lacks = validate.UNICORN_LACKS[isa_name]
    return [f for f in ISAS[isa_name].forms if f.feature not in lacks]


@pytest.mark.parametrize("isa_name", sorted(ISAS))
def test_every_form_agrees_with_unicorn_on_random_and_edge_operands(isa_name):
    isa = ISAS[isa_name]
    failures = []
    for form in _forms(isa_name):
        erratum = validate.UNICORN_ERRATA.get((isa_name, form.name))
        for d in validate.run_unicorn(isa, validate.cases(isa, form, CASES)):
            if erratum is None or not erratum.hits(d.case):
                failures.append(f"{statement(isa, d.case.insn)}: {d.detail}")
    assert not failures, "\n".join(failures[:20])


def test_each_documented_emulator_erratum_still_shows():
    """An erratum that no longer shows (a fixed Unicorn) must leave the list."""
    for (isa_name, form_name), erratum in validate.UNICORN_ERRATA.items():
        isa = ISAS[isa_name]
        batch = validate.cases(isa, isa.by_name[form_name], 60, seed=1)
        hits = [c for c in batch if erratum.hits(c)]
        assert hits and validate.run_unicorn(isa, hits), (form_name, erratum.why)


def test_a_wrong_semantics_is_caught():
    """The check has teeth: a case whose prediction is altered by one bit disagrees."""
    isa = ISAS["x86_64"]
    c = validate.cases(isa, isa.by_name["add r32, r32"], 1)[0]
    flipped = bytearray(c.expected)
    i = next(k for k, d in enumerate(c.defined) if d)
    flipped[i] ^= c.defined[i] & -c.defined[i]  # its lowest defined bit
    bad = validate.Case(c.insn, c.probe, bytes(flipped), c.defined)
    assert validate.run_unicorn(isa, [c]) == [] and len(validate.run_unicorn(isa, [bad])) == 1


@pytest.mark.parametrize("isa_name", sorted(ISAS))
def test_the_cases_are_probes_the_vetter_accepts(isa_name):
    isa = ISAS[isa_name]
    for form in _forms(isa_name)[::15]:
        if form.feature == "adx":
            continue  # the vetter's Unicorn model has no ADX
        for c in validate.cases(isa, form, 2):
            verdict = vet(c.probe)
            assert verdict.accepted, (form.name, verdict.reason)
            assert validate.compare(c, verdict.observation.output) is None, form.name


def _gnu_as(statements: list[str]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, obj = Path(tmp) / "a.s", Path(tmp) / "a.o"
        src.write_text("".join(s + "\n" for s in statements))
        subprocess.run(["riscv64-linux-gnu-as", "-march=rv64gc_zba_zbb_zbs", "-mno-relax",
                        "-o", str(obj), str(src)], check=True)
        with obj.open("rb") as f:
            return ELFFile(f).get_section_by_name(".text").data()


def test_riscv_bitmanip_encodings_match_gnu_as():
    """The Zba/Zbb/Zbs forms are written as bytes (capstone 5.0 decodes none of them, so the
    project's assembler refuses them): our encodings must be GNU as's."""
    isa = ISAS["riscv64"]
    insns = []
    for form in isa.forms:
        if form.encode is None:
            continue
        for regs, value in (((10, 11, 12), 5), ((31, 1, 30), 31), ((5, 6, 7), 63)):
            value = min(value, form.operands[-1].hi) if form.immediate_operand is not None else 0
            insns.append(Insn(form.name, regs[: len(form.register_operands)], value))
    ours = b"".join(isa.by_name[i.form].encode(i.regs, i.imm) for i in insns)
    assert len(insns) > 60
    assert ours == _gnu_as([statement(isa, i) for i in insns])


def test_unicorn_lacks_the_riscv_bitmanip_extensions():
    """Why those forms are left to the guest: Unicorn does not run them."""
    isa = ISAS["riscv64"]
    c = validate.cases(isa, isa.by_name["andn r, r, r"], 1)[0]
    assert validate.run_unicorn(isa, [c])[0].got is None


@pytest.mark.qemu
@pytest.mark.timeout(300)
@pytest.mark.parametrize("isa_name,board_name,cpu,features", [
    ("riscv64", "virt", None, {"m", "zba", "zbb", "zbs"}),
    ("x86_64", "q35", "Haswell", {"bmi1", "bmi2", "lzcnt", "popcnt"}),
])
def test_every_form_the_board_has_agrees_with_the_qemu_guest(isa_name, board_name, cpu, features):
    """The same case probes against the machine itself, QEMU's TCG, sent as one campaign:
    riscv's Zba/Zbb/Zbs too, which Unicorn lacks; on x86-64 every form a Haswell has (ADX
    is not one), Unicorn's errata included (QEMU 7.2 follows the SDM there)."""
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from qemu.boards import board

    isa = ISAS[isa_name]
    batch = [c for form in isa.forms if form.feature is None or form.feature in features
             for c in validate.cases(isa, form, 4, seed=4)]
    erratum = [ctzw_on_high_bits(isa)] if isa_name == "riscv64" else []
    with QemuLink(board(board_name, cpu=cpu, accel="tcg"), build_guest(isa.arch)) as link:
        failures = validate.run_on_link(link, batch + erratum)
    assert len(batch) > 300
    unexplained = [d for d in failures if not qemu_ctzw_erratum(isa, d.case)]
    assert not unexplained, "\n".join(f"{statement(isa, d.case.insn)}: {d.detail}"
                                       for d in unexplained[:20])
    # QEMU 7.2 counts ctzw's trailing zeros over all 64 bits (its source's low word zero, a
    # high bit set: 63, where the manual's 32-bit count gives 32); the case that shows it
    # disagrees, so the erratum stays measured.  evolution/board_features.py avoids the form.
    assert [d.case for d in failures if qemu_ctzw_erratum(isa, d.case)][-1:] == erratum


def qemu_ctzw_erratum(isa, case) -> bool:
    """Whether QEMU 7.2's ctzw bug decides this case: ctzw of a source whose low 32 bits are
    zero and whose high 32 are not."""
    if case.insn.form != "ctzw r, r":
        return False
    source = int.from_bytes(case.probe.input[8 * case.insn.regs[1] : 8 * case.insn.regs[1] + 8],
                            "little")
    return source & 0xFFFF_FFFF == 0 and source >> 32 != 0


def ctzw_on_high_bits(isa):
    """A ctzw case on 1 << 63: the manual's answer is 32."""
    template = validate.cases(isa, isa.by_name["ctzw r, r"], 1)[0]
    registers = [0] * len(isa.registers)
    registers[template.insn.regs[1]] = 1 << 63
    body = isa.assemble_each([source_line(isa, template.insn)], frozenset(isa.features))[0]
    memory = bytes(validate.WINDOW)
    return validate.case(isa, template.insn, registers, [], memory, body)


def test_the_branch_move_forms_run_both_ways_and_agree_with_unicorn():
    """riscv64's branch over a move (a compound of two instructions): among each form's
    cases the interpreter predicts both a moved and a kept rd, and Unicorn, running the
    assembled branch and move, agrees on every register of every case."""
    from evolution.semantics import compose
    from sem import interp

    isa = ISAS["riscv64"]
    compounds = [f for f in isa.forms if f.size > 1]
    assert len(compounds) == 16
    for form in compounds:
        batch = validate.cases(isa, form, CASES)
        outcomes = set()
        for c in batch:
            program = MachineProgram(isa.name, (c.insn,))
            comp = compose(isa, program)
            rd = c.insn.regs[0]
            before = int.from_bytes(c.probe.input[8 * rd : 8 * rd + 8], "little")
            regs = [int.from_bytes(c.probe.input[8 * r : 8 * r + 8], "little")
                    for r in range(len(isa.registers))]
            after = interp.run(comp.routine(comp.registers[rd]),
                               comp.inputs(regs, [], 0)).result
            moved = regs[c.insn.regs[2]]
            if moved != before:
                outcomes.add("moved" if after == moved else "kept" if after == before else "?")
        assert outcomes == {"moved", "kept"}, form.name
        assert validate.run_unicorn(isa, batch) == [], form.name
        # two machine instructions, as capstone reads the assembler's bytes
        code = isa.assemble(source_line(isa, batch[0].insn), frozenset())
        decoder = capstone.Cs(capstone.CS_ARCH_RISCV,
                              capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
        branch, move = [i.mnemonic for i in decoder.disasm(code, 0)]
        assert branch.removeprefix("c.").startswith("b") and move in ("c.mv", "mv", "addi")


# p21 with two branch moves (what the search finds on rv64): seven instructions
P21_BRANCHING = """bne a0, a3, 1f; mv a3, a1; 1:
xor t3, a0, a1
bne t3, zero, 1f; mv a3, a2; 1:
addiw a0, a3, 0
ret
"""


def test_a_branch_move_reads_back_and_counts_its_two_instructions():
    """The text of a program with branch moves parses back to the same program (spaces
    aside), and its instruction count is the machine code's as capstone decodes it."""
    from evolution.costmodel import fallback
    from evolution.evaluator import kernels
    from evolution.program import assemble, encode, parse, text
    from sem.views.asm import disassemble

    isa = ISAS["riscv64"]
    program = parse(isa, P21_BRANCHING)
    assert [isa.by_name[i.form].size for i in program.insns] == [2, 1, 2, 1]
    assert parse(isa, text(isa, program)) == program
    assert parse(isa, P21_BRANCHING.replace(", ", ",").replace("; ", ";")) == program
    code = assemble(isa, program)
    assert program.instructions == len(disassemble(isa.arch, code)) == 7
    # the cost model counts instructions as the program does, and so does the chains' kernel
    model = fallback(isa)
    assert model.cost(program) - model.per_cycle * sum(
        model.latency[i.form] for i in program.insns) == 6 * model.per_instruction
    rows = encode(isa, program, 6)
    assert kernels(isa.name).performance(rows, len(rows), model.latencies(isa),
                                         model.weights()) == pytest.approx(model.cost(program))
