"""The performance model from timings (evolution/timing_model.py), on a synthetic board
whose cycle counts follow known per-form latencies and throughputs: the model must give
back exactly those figures, keep the table's for forms it cannot time, and run only the
probes a store does not already hold.  (On a live board: tests/test_evolution_board.py.)"""

from __future__ import annotations

import pytest

from contract.probe_abi import Outcome
from evolution.registry import ISAS
from evolution.timing_model import form_timing_probes, measure_model, timed_forms
from probes.families.timing import LATENCY
from probes.probe import Observation
from probes.vet import vet

OVERHEAD = 57  # cycles the measurement itself costs, the same in every run


def _truth(isa):
    """Per form: (latency, reciprocal throughput), distinct enough to tell apart."""
    return {f.name: (1.0 + i % 7, 0.25 * (1 + i % 3)) for i, f in enumerate(isa.forms)}


def _synthetic_board(isa, ran: list):
    truth = _truth(isa)

    def run(probes):
        ran.extend(probes)
        out = {}
        for p in probes:
            latency, throughput = truth[p.meta["sequence"]]
            per = latency if p.meta["kind"] == LATENCY else throughput
            noise = 9_000 if p.meta["repetition"] == 0 else 0  # a cold first run, warm-up
            cycles = int(OVERHEAD + per * p.meta["unroll"] + noise)
            out[p.content_hash] = Observation(Outcome.RETURNED, 0, None,
                                              cycles.to_bytes(8, "little"))
        return out
    return run


@pytest.mark.parametrize("isa_name, features", [
    ("x86_64", frozenset({"popcnt", "lzcnt", "bmi1"})),
    ("riscv64", frozenset({"zba", "zbb"})),
])
def test_model_gives_back_the_boards_own_latencies_and_throughputs(isa_name, features):
    isa = ISAS[isa_name]
    ran: list = []
    result = measure_model(isa, features, "synthetic", _synthetic_board(isa, ran))
    truth = _truth(isa)
    timed = {f.name for f in timed_forms(isa, features)}
    assert result.measured == len(result.model.throughput) > 0.9 * len(timed)
    for name, throughput in result.model.throughput.items():
        assert name in timed
        assert result.model.latency[name] == pytest.approx(truth[name][0], abs=0.02)
        assert throughput == pytest.approx(truth[name][1], abs=0.02)
    # what was not timed keeps the table's figure, and says why
    for f in isa.forms:
        if f.name not in result.model.throughput:
            assert result.model.latency[f.name] == f.latency
            if f.feature is None or f.feature in features:
                assert f.name in result.unmeasured
    assert not any(f.feature not in (None, *features) for f in isa.forms
                   if f.name in result.model.throughput)
    assert result.probes == len(ran) and result.reused == 0
    assert result.model.source == "measured on synthetic"


def test_stored_timings_are_reused_and_only_the_missing_probes_run():
    isa = ISAS["riscv64"]
    first: list = []
    board = _synthetic_board(isa, first)
    full = measure_model(isa, frozenset(), "synthetic", board)
    held = {p.content_hash for p in first[: len(first) // 2]}
    again: list = []
    observations = _synthetic_board(isa, [])(first)

    def stored(probes):
        return {p.content_hash: observations[p.content_hash] for p in probes
                if p.content_hash in held}

    second = measure_model(isa, frozenset(), "synthetic", _synthetic_board(isa, again), stored)
    assert second.reused == len(held) and len(again) == len(first) - len(held)
    assert {p.content_hash for p in again}.isdisjoint(held)
    assert second.model.latency == full.model.latency


def test_every_register_form_is_timed_by_probes_the_vetter_accepts():
    """Each form is written on the timing frame's registers (the assembler, checked by
    capstone, takes every copy) and Unicorn runs its probes without a fault."""
    for isa in ISAS.values():
        for form in timed_forms(isa, frozenset(isa.features)):
            plan = form_timing_probes(isa, form, runs=1)
            for probe in (plan.probes[0], plan.probes[2]):  # latency n, throughput n
                verdict = vet(probe)
                assert verdict.accepted, (form.name, verdict.reason)
