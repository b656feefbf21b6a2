"""Lowered routines in probe form: the vetter accepts every starter routine on both
architectures and its Unicorn run decodes to the interpreter's answer; the wrapper
is position-independent and calls the routine's own bytes; on real QEMU boards
(TCG) the probes agree with the interpreter and their cycles land in the history."""

from __future__ import annotations

import capstone
import pytest

from arch import ARCHES, RISCV64, X86_64
from cli import sem as cli
from contract.probe_abi import AREA, Outcome
from probes.routine import (
    WRAPPERS,
    Job,
    probe_form,
    probe_result,
    routine_probe,
    run_on_link,
    wrapper_code,
)
from probes.vet import vet
from sem import interp
from sem.library import FILES, hackers_delight, sorting
from sem.lower import lower_for
from sem.vectors import generate

STARTER = [getattr(hackers_delight, n) for n in hackers_delight.__all__] + [
    sorting.sort3, sorting.sort4, sorting.sort5]
ON_BOARD = [hackers_delight.p01, hackers_delight.p09, hackers_delight.p23, sorting.sort3]
BOARDS = {X86_64: "q35", RISCV64: "virt"}
DISASSEMBLERS = {
    X86_64: (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
    RISCV64: (capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC),
}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("r", STARTER, ids=lambda r: r.hint_name)
def test_probe_form_is_accepted_and_its_emulated_run_decodes_to_the_interpreters_answer(r, arch):
    form = probe_form(r, arch)
    for v in generate(r, 30, seed=5):
        verdict = vet(form.probe(v))
        assert verdict.accepted, verdict.reason
        assert verdict.prediction is not None  # nothing machine-dependent ran
        obs = verdict.observation
        assert obs.outcome == Outcome.RETURNED and obs.status == 0
        assert probe_result(r, obs.output) == interp.run(r, v.args, v.memory), v


@pytest.mark.parametrize("arch", ARCHES)
def test_the_wrapper_calls_the_routines_own_bytes_placed_right_after_it(arch):
    r = sorting.sort3
    routine_code = arch.assemble(lower_for(arch)(r).text)
    v = generate(r, 1)[0]
    probe = routine_probe(r, arch, v)
    form = probe_form(r, arch)
    wrapper = probe.code[: len(probe.code) - len(routine_code)]
    assert probe.code == wrapper + routine_code == form.code
    cs = capstone.Cs(*DISASSEMBLERS[arch])
    cs.detail = True
    insns = list(cs.disasm(wrapper, AREA["code"].base(arch.probes)))
    assert sum(i.size for i in insns) == len(wrapper)  # every wrapper byte decodes
    calls = [i for i in insns if i.mnemonic in ("call", "jal")]
    assert len(calls) == 1
    target = int(calls[0].op_str.split(",")[-1].strip(), 0)
    if arch is RISCV64:  # capstone shows jal's offset, relative to the instruction
        target += calls[0].address
    assert target == AREA["code"].base(arch.probes) + len(wrapper)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_wrapper_is_position_independent(arch):
    layout = probe_form(hackers_delight.p01, arch).layout
    at_zero = wrapper_code(arch, layout)
    text = WRAPPERS[arch](layout) + "\n"
    elsewhere = arch.assemble(text, address=0x8765_4000, constants=layout.constants())
    assert elsewhere == at_zero


def test_a_short_output_buffer_is_refused():
    with pytest.raises(ValueError, match="the probe form writes 72"):
        probe_result(sorting.sort3, bytes(8))


# -- on real boards ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def guests():
    from kernel.guest import build_guest

    return {arch: build_guest(arch) for arch in ARCHES}


@pytest.mark.qemu
@pytest.mark.timeout(240)
@pytest.mark.parametrize("arch", ARCHES)
def test_routines_run_as_probes_in_the_guest_agree_with_the_interpreter(guests, arch):
    from link.qemu_link import QemuLink
    from qemu.boards import board

    jobs = [Job(r, probe_form(r, arch), generate(r, 40, seed=9)) for r in ON_BOARD]
    with QemuLink(board(BOARDS[arch], accel="tcg"), guests[arch]) as link:
        runs = run_on_link(link, jobs)
    for run in runs:
        name = run.job.routine.hint_name
        assert run.ok, (name, run.disagreements[:1])
        assert len(run.cycles) == 40 and all(c > 0 for c in run.cycles), name


@pytest.mark.qemu
@pytest.mark.timeout(240)
@pytest.mark.parametrize("arch,ref", [(X86_64, "p23"), (RISCV64, "sort3")])
def test_sem_run_records_cycles_per_hardware_shown_by_history(tmp_path, arch, ref):
    from qemu.boards import board

    db = str(tmp_path / "sem.db")
    for path in FILES:
        cli.add(str(path), db)
    text = cli.run(ref, board(BOARDS[arch], accel="tcg"), vectors=30, db=db)
    assert "30/30 agree with the interpreter" in text
    history = cli.history(ref, db)
    perf = [line for line in history.splitlines() if line.startswith("perf")]
    assert len(perf) == 1
    assert perf[0].startswith(f"perf {arch} on {BOARDS[arch]}:") and "(tcg): cycles = " in perf[0]
    assert "over 30 samples" in perf[0]


# -- batch probes: many vectors per probe ----------------------------------------------------

@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("r", STARTER, ids=lambda r: r.hint_name)
def test_a_batch_probe_runs_every_vector_and_decodes_to_the_interpreters_answers(r, arch):
    from probes.routine import batch_form

    form = batch_form(r, arch)
    vectors = generate(r, 20, seed=11)
    verdict = vet(form.probe(vectors))
    assert verdict.accepted, verdict.reason
    obs = verdict.observation
    assert obs.outcome == Outcome.RETURNED and obs.status == 0
    assert form.results(len(vectors), obs.output) == [interp.run(r, v.args, v.memory)
                                                      for v in vectors]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_batch_fills_the_probe_areas_and_no_more(arch):
    from contract.probe_abi import INPUT_SIZE, OUTPUT_SIZE
    from probes.routine import batch_form

    for r in (hackers_delight.p01, hackers_delight.p21, sorting.sort5):
        form = batch_form(r, arch)
        full = form.probe(generate(r, form.capacity))
        assert len(full.input) <= INPUT_SIZE and full.output_size <= OUTPUT_SIZE
        assert len(full.input) + form.layout.in_stride > INPUT_SIZE or \
            full.output_size + form.layout.out_stride > OUTPUT_SIZE  # one more would not fit
        chunks = form.chunks(generate(r, 3 * form.capacity + 1))
        assert [len(c) for c in chunks] == [form.capacity] * 3 + [1]
        with pytest.raises(ValueError, match="cut them with chunks"):
            form.probe(generate(r, form.capacity + 1))
