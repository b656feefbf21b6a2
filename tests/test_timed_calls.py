"""The timed-loop probe form (probes/timed_calls.py): vetted and decoded like the sem form,
and, on QEMU with `-icount shift=0` (one time-stamp tick per instruction executed, QEMU
7.2's rdtsc and rdcycle under icount), a code's cycles per call are exactly the
instructions it executes before its return, as capstone counts them in its bytes, less
those of the function subtracted (independent calls: none; chained: the identity's)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from arch import ARCHES, RISCV64, X86_64
from contract.probe_abi import AREA, Outcome
from probes.timed_calls import (
    ALIGN,
    MAX_REPEATS,
    OUT_RECORDS,
    PLACEMENTS,
    chunk_spans,
    empty_function,
    pass_counts,
    placements_for,
    time_on_link,
    timed_form,
    timed_wrapper_code,
)
from probes.vet import vet
from sem import interp
from sem.library import hackers_delight, sorting
from sem.lower import lower_for
from sem.vectors import generate
from sem.views.asm import disassemble

ROUTINES = [hackers_delight.p01, hackers_delight.p10, hackers_delight.p23, sorting.sort3]
BOARDS = {X86_64: "q35", RISCV64: "virt"}
# k instructions each, never executed for their values: added in front of a code they
# change nothing it computes (x86 nop; riscv64 t6 is caller-saved and no result)
PADDING = {X86_64: "nop", RISCV64: "addi t6, t6, 1"}


# lowerings that are straight lines, so that what runs is what is written: riscv64 lowers
# sort3's selects as branches over moves, whose count depends on the data
STRAIGHT_LINE = {X86_64: (hackers_delight.p01, hackers_delight.p10, sorting.sort3),
                 RISCV64: (hackers_delight.p01, hackers_delight.p10)}


def lowered(r, arch) -> bytes:
    return arch.assemble(lower_for(arch)(r).text)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("r", ROUTINES, ids=lambda r: r.hint_name)
@pytest.mark.parametrize("chained", [False, True], ids=["independent", "chained"])
def test_a_timed_probe_is_vetted_and_its_emulated_run_leaves_the_interpreters_answers(
        r, arch, chained):
    if chained and r.uses_memory:
        with pytest.raises(ValueError, match="scalar result and no memory"):
            timed_form(r, arch, lowered(r, arch), chained)
        return
    form = timed_form(r, arch, lowered(r, arch), chained)
    vectors = generate(r, 12, seed=4)
    for placement in (0, PLACEMENTS[-1]):
        probe = form.probe(vectors, calls=2, repeats=2, placement=placement)
        verdict = vet(probe)
        assert verdict.accepted, verdict.reason
        assert verdict.prediction is None  # it reads the cycle counter: nothing to predict
        obs = verdict.observation
        assert obs.outcome == Outcome.RETURNED and obs.status == 0
        assert form.results(len(vectors), obs.output) == [interp.run(r, v.args, v.memory)
                                                          for v in vectors]
        assert len(pass_counts(probe, obs)) == 2


@pytest.mark.parametrize("arch", ARCHES)
def test_the_empty_function_starts_a_cache_line_and_the_code_each_place_in_one(arch):
    """The empty function starts a line; the code's entry lies at each of PLACEMENTS in
    the line after it (16-byte steps, as gcc aligns functions), the bytes before it never
    run (x86 `int3`, riscv `nop`)."""
    code = lowered(hackers_delight.p10, arch)
    form = timed_form(hackers_delight.p10, arch, code)
    assert form.code == code and PLACEMENTS[0] == 0
    assert AREA["code"].base(arch.probes) % ALIGN == 0
    ret = arch.assemble("ret", extensions="rv64g" if arch is RISCV64 else None)
    first = timed_wrapper_code(arch, form.layout)
    assert len(first) % ALIGN == 0 and first[-ALIGN:].startswith(ret)
    for placement in PLACEMENTS:
        image = form.image(placement)
        entry = len(image) - len(code)
        assert image[entry:] == code and entry % ALIGN == placement
        assert image[len(first) - ALIGN:].startswith(ret)  # the empty function, unmoved
    with pytest.raises(ValueError, match="placement"):
        form.image(ALIGN)
    assert placements_for("kvm") == PLACEMENTS and placements_for("tcg") == (0,)


def test_a_timed_probe_refuses_what_it_cannot_carry():
    form = timed_form(hackers_delight.p01, X86_64, lowered(hackers_delight.p01, X86_64))
    vectors = generate(hackers_delight.p01, 4, seed=1)
    with pytest.raises(ValueError, match="at least one call per vector"):
        form.probe(vectors, calls=0, repeats=2)
    with pytest.raises(ValueError, match=f"1..{MAX_REPEATS} repeats"):
        form.probe(vectors, calls=1, repeats=MAX_REPEATS + 1)
    with pytest.raises(ValueError, match="carries"):
        form.probe(generate(hackers_delight.p01, form.capacity + 1, seed=1), 1, 2)
    with pytest.raises(ValueError, match="instruction budget"):
        form.probe(vectors, calls=10_000, repeats=MAX_REPEATS)
    assert OUT_RECORDS + form.layout.out_stride * form.capacity <= AREA["output"].size
    # what time_on_link cuts vectors into: the most that fit both the layout and the budget
    for calls, repeats in ((1, 2), (16, 9), (64, MAX_REPEATS)):
        size = form.vectors_per_probe(calls, repeats)
        assert 1 <= size <= form.capacity
        form.probe(generate(hackers_delight.p01, size, seed=1), calls, repeats)
        if size < form.capacity:
            with pytest.raises(ValueError, match="instruction budget"):
                form.probe(generate(hackers_delight.p01, size + 1, seed=1), calls, repeats)


@pytest.fixture(scope="module")
def guests():
    from kernel.guest import build_guest

    return {arch: build_guest(arch) for arch in ARCHES}


@pytest.mark.qemu
@pytest.mark.timeout(300)
@pytest.mark.parametrize("arch", ARCHES)
def test_under_icount_a_code_costs_exactly_the_instructions_it_runs_before_its_return(
        guests, arch):
    """QEMU's -icount shift=0: the counter advances one per instruction executed, so the
    loop's overhead cancels exactly and a straight-line code of n instructions (its
    return included) measures n - 1 per call, k instructions more measure k more."""
    from link.qemu_link import QemuLink
    from probes.campaign import Campaign
    from probes.run import POLICY
    from qemu.boards import board

    chosen = board(BOARDS[arch], accel="tcg", qemu_args=["-icount", "shift=0"])
    cases = [(r, chained) for r in STRAIGHT_LINE[arch]
             for chained in (False, True) if not (chained and r.uses_memory)]
    with QemuLink(chosen, guests[arch]) as link:
        # one per boot (its run ids go on); patient: an icount QEMU on a loaded host can
        # be slower to answer than the 0.9 s after which TCG's timers give a board up
        campaign = Campaign(link, replace(POLICY, dead_after=10.0, retransmit_after=2.0))
        for r, chained in cases:
            codes = {k: (arch.assemble("\n".join([PADDING[arch]] * k)) if k else b"")
                     + lowered(r, arch) for k in (0, 3, 17)}
            forms = [timed_form(r, arch, code, chained) for code in codes.values()]
            # at two places of the line: under TCG the place changes no count
            runs = time_on_link(link, forms, generate(r, 30, seed=8), campaign, calls=4,
                                repeats=3, placements=(0, 48))
            # the subtracted function's instructions before its return: none, or the
            # identity's copy (x86-64 `mov rax, rdi`; riscv64 needs none)
            empty = len(disassemble(arch, arch.assemble(empty_function(arch, chained)))) - 1
            for (k, code), run in zip(codes.items(), runs, strict=True):
                assert run.ok, (r.hint_name, k, run.first_disagreement)
                executed = len(disassemble(arch, code)) - 1  # straight-line, less the return
                assert set(run.cycles.per_pair) == {executed - empty}, (r.hint_name, chained, k)


# a code that counts its calls in a register neither wrapper touches, and answers the count
COUNTING = {X86_64: "inc r11\nmov rax, r11\nret", RISCV64: "addi t5, t5, 1\nmv a0, t5\nret"}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pass_calls_every_vector_in_turn_round_after_round(arch):
    """A stream of calls on different inputs, not one vector's calls in a row (where the
    branch predictor learns that vector's way through a code that branches): each
    vector's answer is the count at its last call, so in turn consecutive vectors' last
    calls are one call apart, where in a row they would be `calls` apart."""
    from probes.routine import RESULT_OFFSET

    form = timed_form(hackers_delight.p01, arch, arch.assemble(COUNTING[arch] + "\n"))
    vectors = generate(hackers_delight.p01, 5, seed=1)
    verdict = vet(form.probe(vectors, calls=3, repeats=2))
    assert verdict.observation.outcome == Outcome.RETURNED
    stride, out = form.layout.out_stride, verdict.observation.output
    counts = [int.from_bytes(out[OUT_RECORDS + k * stride + RESULT_OFFSET:][:8], "little")
              for k in range(len(vectors))]
    assert [b - a for a, b in zip(counts, counts[1:], strict=False)] == [1] * (len(vectors) - 1)


def test_vectors_are_cut_into_chunks_as_even_as_the_probes_allow():
    """100 sort3 vectors, 49 to a probe: 34, 33, 33, not 49, 49, 2 (a stream of 2 that a
    branching code's predictor learns); every vector in exactly one chunk."""
    for count, most in ((100, 49), (100, 115), (7, 3), (1, 1), (98, 49)):
        spans = chunk_spans(count, most)
        sizes = [stop - start for start, stop in spans]
        assert len(spans) == -(-count // most) and max(sizes) <= most
        assert max(sizes) - min(sizes) <= 1
        assert [i for start, stop in spans for i in range(start, stop)] == list(range(count))
