"""The performance model from timings (evolution/timing_model.py), on a synthetic board
whose counter ticks follow known per-form latencies and throughputs in cycles, at a rate
that is not one tick a cycle: the model must give back exactly those figures, keep the
table's for forms it cannot time, and run only the probes a store does not already hold.
(On a live board: tests/test_evolution_board.py.)"""

from __future__ import annotations

import functools

import pytest
from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from unicorn import UC_ARCH_X86, UC_HOOK_CODE, UC_MODE_64, Uc
from unicorn.x86_const import UC_X86_REG_RAX, UC_X86_REG_RBX

from contract.probe_abi import Outcome
from evolution.registry import ISAS
from evolution.timing_model import (
    CYCLE,
    form_timing_probes,
    latency_instance,
    measure_model,
    timed_forms,
)
from probes.families.timing import LATENCY, THROUGHPUT
from probes.probe import Observation
from probes.vet import vet

OVERHEAD = 57  # ticks the measurement itself costs, the same in every run
TICKS_PER_CYCLE = 3  # the counter's rate: not the core clock (whole: every count exact)


def _truth(isa):
    """Per form: (latency, reciprocal throughput), distinct enough to tell apart; whole
    cycles, so that every count is exact whatever the unroll."""
    truth = {f.name: (2.0 + i % 7, 1.0 + i % 3) for i, f in enumerate(isa.forms)}
    truth[isa.cycle_form] = (1.0, 1.0)  # the form the model counts in
    return truth


@functools.cache
def _form_of(isa_name: str) -> dict[bytes, str]:
    """Which form each suite probe times (riscv64's assembler is a process: built once)."""
    isa = ISAS[isa_name]
    return {p.content_hash: f.name for f in timed_forms(isa, frozenset(isa.features))
            for p in form_timing_probes(isa, f).probes}


def _synthetic_board(isa, ran: list):
    """Answers suite probes as a board whose forms take their _truth figures would: each
    section's count is OVERHEAD plus the unroll times its variant's ticks per instance
    (the one-cycle chain's: TICKS_PER_CYCLE), the first repetition (a warm-up) much
    slower."""
    truth, form_of = _truth(isa), _form_of(isa.name)

    def run(probes):
        ran.extend(probes)
        out = {}
        for p in probes:
            form = isa.by_name[form_of[p.content_hash]]
            latency, throughput = truth[form.name]
            if form.chain_keeper is not None:  # the chain runs through the keeper too
                latency += truth[form.chain_keeper][0]
            first_part = p.input == bytes(4)
            counts = b""
            for i, (kind, unroll) in enumerate(p.meta["suite"]):
                per = TICKS_PER_CYCLE * {LATENCY: latency, THROUGHPUT: throughput, CYCLE: 1}[kind]
                cold = 9_000 if first_part and i < 6 else 0  # repetition 0: 3 variants x n, 2n
                counts += int(OVERHEAD + per * unroll * p.meta["loop"] + cold).to_bytes(
                    8, "little")
            out[p.content_hash] = Observation(Outcome.RETURNED, 0, None, counts)
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
        assert result.model.latency[name] == pytest.approx(truth[name][0])
        assert throughput == pytest.approx(truth[name][1])
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
    assert result.unit == isa.cycle_form


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
    capstone, takes every copy), its suites fit their probes, and Unicorn runs them to
    the end."""
    for isa in ISAS.values():
        for form in timed_forms(isa, frozenset(isa.features)):
            for probe in form_timing_probes(isa, form).probes:
                verdict = vet(probe)
                assert verdict.accepted, (form.name, verdict.reason)


@pytest.mark.parametrize("form_name", ["bsf r32, r32", "bsf r64, r64", "bsr r64, r64"])
def test_a_bit_scan_latency_chain_never_scans_zero(form_name):
    """Fed its own index, `bsf eax, eax` reaches 0 in a few steps (an undefined result,
    which AMD times as a move); the kept chain's source stays nonzero.  Unicorn runs the
    chain from the timing frame's start (rax the cycle counter, rbx whatever: 0 here) and
    reads the scanned register before each scan (the first scan is of rbx as found)."""
    isa = ISAS["x86_64"]
    form = isa.by_name[form_name]

    def scanned(code: bytes, register: int) -> list[int]:
        """The scanned register's value before each scan, over 64 unrolled copies."""
        uc, base, seen = Uc(UC_ARCH_X86, UC_MODE_64), 0x10000, []
        body = code * 64
        uc.mem_map(base, 0x10000)
        uc.mem_write(base, body)
        uc.reg_write(UC_X86_REG_RAX, 0x1D3_4F00_0000)  # an rdtsc reading
        uc.reg_write(UC_X86_REG_RBX, 0)

        def hook(uc, address, size, _):
            if (address - base) % len(code) == 0:
                seen.append(uc.reg_read(register))
        uc.hook_add(UC_HOOK_CODE, hook)
        uc.emu_start(base, base + len(body))
        return seen

    kept = latency_instance(isa, form)
    w = "eax, ebx" if "32" in form_name else "rax, rbx"
    decoded = [f"{i.mnemonic} {i.op_str}" for i in Cs(CS_ARCH_X86, CS_MODE_64).disasm(kept, 0)]
    assert decoded == [f"{form.mnemonic} {w}", f"or {w[5:]}, {w[:3]}"]
    self_fed = isa.arch.assemble(f"{form.mnemonic} rax, rax")
    assert 0 in scanned(self_fed, UC_X86_REG_RAX)  # why the keeper
    assert 0 not in scanned(kept, UC_X86_REG_RBX)[1:]
