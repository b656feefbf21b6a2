"""The timing family: generation (distinct repetitions, n and 2n, renamed
throughput copies), the vetter's acceptance, the nanoBench statistics on
synthetic data, a looped suite running its bodies as often as it says, and the
pipeline on TCG boards producing numbers."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console

from arch import RISCV64, X86_64
from cli.probe import probe_command
from contract.probe_abi import Outcome
from probes.emulator import ProbeEmulator
from probes.families import timing
from probes.probe import Observation
from probes.vet import vet
from qemu.boards import board

SEQUENCES = {X86_64: "imul rax, rax", RISCV64: "mul t0, t0, t0"}


@pytest.mark.parametrize("arch", SEQUENCES)
def test_every_repetition_is_a_distinct_probe_the_vetter_accepts(arch):
    probes = list(timing.timing_probes(arch, SEQUENCES[arch], repetitions=3))
    assert len(probes) == 3 * 2 * 2 and len({p.content_hash for p in probes}) == len(probes)
    for p in probes:
        verdict = vet(p)
        assert verdict.accepted, verdict.reason
    n = probes[0].meta["base_unroll"]
    assert {p.meta["unroll"] for p in probes} == {n, 2 * n}


def test_throughput_copies_use_disjoint_registers():
    copies = timing.renamed_copies(X86_64, "add rax, rbx")
    assert copies[:2] == ["add rax, rbx", "add rcx, rdx"] and len(set(copies)) == len(copies)
    with pytest.raises(ValueError):
        timing.renamed_copies(X86_64, "nop")


def test_summarise_subtracts_n_from_2n_per_looped_instance_and_trims_outliers():
    per, overhead, n, loop = {"latency": 3.0, "throughput": 1.0}, 50, 100, 4
    results = []
    for kind in per:
        for r in range(timing.WARMUP_RUNS + timing.MEASURED_RUNS):
            for unroll in (n, 2 * n):
                cycles = (overhead + per[kind] * unroll * loop
                          + (10_000 if r == 7 and unroll == n else 0))
                probe = dataclasses.replace(
                    timing.timing_probe(X86_64, X86_64.assemble("nop"), 1),
                    meta={"kind": kind, "unroll": unroll, "base_unroll": n, "repetition": r,
                          "loop": loop})
                results.append((probe, Observation(Outcome.RETURNED,
                                                   output=int(cycles).to_bytes(8, "little"))))
    found = timing.summarise(results)
    assert found["latency"].per_instance == pytest.approx(3.0)
    assert found["throughput"].per_instance == pytest.approx(1.0)
    assert found["latency"].overhead == pytest.approx(overhead)
    assert found["latency"].spread == pytest.approx(0)


@pytest.mark.qemu
@pytest.mark.timeout(240)
@pytest.mark.parametrize("arch", SEQUENCES)
def test_pipeline_on_tcg_prints_cycles_per_instruction_and_names_the_emulator(arch, tmp_path):
    out = io.StringIO()
    status = probe_command(board(arch.default_board, accel="tcg"), "timing",
                           sequence=SEQUENCES[arch], db=str(tmp_path / "c.db"),
                           console=Console(file=out, width=200))
    text = out.getvalue()
    assert status == 0, text
    # titles wrap
    assert "TCG: this measures QEMU's emulation, not silicon" in " ".join(text.split())
    # the campaign table's caption says what the family measures (catalogue.FAMILIES)
    assert "latency and throughput of --sequence, nanoBench style" in " ".join(text.split())
    rows = [words for words in map(str.split, text.splitlines())
            if words[:1] in (["latency"], ["throughput"]) and words[1][0].isdigit()]
    assert len(rows) == 2 and all(float(row[1]) > 0 for row in rows)
    assert "sent to the guest" in text and " 60 " in text  # 15 repetitions x 2 variants x n, 2n


@pytest.mark.parametrize("arch", SEQUENCES)
def test_a_timing_probe_runs_its_body_loop_times_on_both_passes(arch):
    """Unicorn counts the timed instruction's runs: the unrolled copies, LOOP times
    over, on each of PASSES passes (the first warms TCG's translation)."""
    instance = timing.assemble_sequence(arch, SEQUENCES[arch])
    probe = timing.timing_probe(arch, instance, 7)
    runs, base = [0], []

    def count(address: int, size: int) -> None:
        base[:] = base or [address]
        if probe.code[address - base[0]:address - base[0] + size] == instance:
            runs[0] += 1

    run = ProbeEmulator(arch).run(probe, inspect=count)
    assert run.observation.outcome == Outcome.RETURNED, run
    assert runs[0] == 7 * timing.LOOP * timing.PASSES == 7 * 32 * 2
    assert probe.meta["loop"] == timing.LOOP


@pytest.mark.parametrize("arch", SEQUENCES)
def test_a_looped_suite_runs_each_body_loop_times_on_every_pass(arch):
    """Unicorn counts the timed instruction's runs: every section's unrolled copies, the
    loop count times over, on every pass; the probe returns a count for each section."""
    instance = timing.assemble_sequence(arch, SEQUENCES[arch])
    repetitions, unroll, loop, passes = 2, 3, 5, 3
    probe = timing.suite_probe(arch, {timing.LATENCY: [instance]}, repetitions, unroll,
                               loop=loop, passes=passes)
    runs, base = [0], []

    def count(address: int, size: int) -> None:
        base[:] = base or [address]  # the first instruction run is the code's first byte
        if probe.code[address - base[0]:address - base[0] + size] == instance:
            runs[0] += 1

    run = ProbeEmulator(arch).run(probe, inspect=count)
    assert run.observation.outcome == Outcome.RETURNED, run
    assert runs[0] == repetitions * (unroll + 2 * unroll) * loop * passes
    assert len(run.observation.output) == 8 * repetitions * 2
