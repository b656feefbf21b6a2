"""Claims and adoptions checked for real: proof artifacts decided by Z3 from what they
store, code run on the adopting board's own vectors (Unicorn, and live guests)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from arch import RISCV64, X86_64
from evolution.program import assemble, parse
from evolution.registry import ISAS
from evolution.starts import starts
from market import records as R
from market.boards import GuestSeat, boot_seat, emulated_seat
from market.checks import BoardVerifier
from market.experiment import Experiment
from market.market import Book, Claim, Market, RoutineInfo, Rules, Strategy
from market.proofs import check_artifact, make_artifact
from market.report import redundant_experiments
from qemu.boards import board
from sem.canon import routine_id
from sem.library import hackers_delight as hd
from sem.library import sorting
from stores.ledger import Ledger
from testing.market_world import ledger_outcomes

X86 = ISAS["x86_64"]
RV = ISAS["riscv64"]
REPO = Path(__file__).resolve().parents[1]
P01 = RoutineInfo(routine_id(hd.p01), "p01", "hackers_delight")
P16 = RoutineInfo(routine_id(hd.p16), "p16", "hackers_delight")
LEA_AND = "lea rax, [rdi - 1]\nand eax, edi\nret"  # x & (x - 1): gcc -O3, no -march
BLSR = "blsr eax, edi\nret"  # the same with BMI1


def _artifact(isa, spec, source):
    program = parse(isa, source)
    return make_artifact(isa, spec, program), assemble(isa, program, frozenset(isa.features))


# -- the artifact alone ------------------------------------------------------------------

def test_a_correct_artifact_checks_and_a_wrong_program_is_refuted_by_z3():
    artifact, code = _artifact(X86, hd.p01, LEA_AND)
    assert check_artifact(artifact, code, frozenset()).ok
    wrong, wrong_code = _artifact(X86, hd.p01, "lea rax, [rdi - 2]\nand eax, edi\nret")
    verdict = check_artifact(wrong, wrong_code, frozenset())
    assert not verdict.ok and "satisfiable" in verdict.detail


def test_a_forged_artifact_is_refused_whatever_it_forges():
    good, code = _artifact(X86, hd.p01, LEA_AND)
    bad_program = "lea rax, [rdi - 2]\nand eax, edi\nret"
    # a wrong program carrying the correct program's (unsat) query
    forged = dict(good, program=bad_program)
    bad_code = assemble(X86, parse(X86, bad_program))
    assert "not the proof obligation" in check_artifact(forged, bad_code, frozenset()).detail
    # an easy query: "false" is unsat, and proves nothing
    easy = "(assert false)\n(check-sat)\n"
    import hashlib

    forged = dict(good, queries=[{"what": "everything", "smt2": easy,
                                  "sha256": hashlib.sha256(easy.encode()).hexdigest()}])
    assert "not the proof obligation" in check_artifact(forged, code, frozenset()).detail
    # a query edited without its hash
    edited = [dict(good["queries"][0], smt2=easy), *good["queries"][1:]]
    assert "SHA-256" in check_artifact(dict(good, queries=edited), code, frozenset()).detail
    # one obligation left out: sort3's network writes memory, which must be the routine's
    network = next(s.program for s in starts(X86, sorting.sort3, frozenset())
                   if s.name == "sorting network")
    sort3 = make_artifact(X86, sorting.sort3, network)
    sort3_code = assemble(X86, network)
    assert len(sort3["queries"]) > 1 and check_artifact(sort3, sort3_code, frozenset()).ok
    fewer = dict(sort3, queries=sort3["queries"][1:])
    assert "not the proof obligation" in check_artifact(fewer, sort3_code, frozenset()).detail
    # another routine's specification under this routine's ID
    swapped = dict(good, canonical=make_artifact(X86, hd.p02, parse(X86, LEA_AND))["canonical"])
    assert "not the routine it names" in check_artifact(swapped, code, frozenset()).detail
    # the proven program, but other machine code
    assert "not what the proven program assembles" in check_artifact(
        good, bad_code, frozenset()).detail
    # a feature the checking board lacks
    blsr, blsr_code = _artifact(X86, hd.p01, BLSR)
    assert check_artifact(blsr, blsr_code, frozenset({"bmi1"})).ok
    assert "bmi1" in check_artifact(blsr, blsr_code, frozenset()).detail


# -- claims and adoptions in a market -----------------------------------------------------

def _claim(artifact, code, instructions, features=frozenset(), start=6):
    return Claim(instructions, float(instructions), artifact["program"], code, features,
                 artifact, 1500, 700, start, float(start), "lowering")


@pytest.fixture
def market(tmp_path):
    seats = {}
    for name, arch, features in (("qemu64", X86_64, frozenset()),
                                 ("haswell", X86_64, frozenset({"bmi1", "bmi2", "lzcnt"})),
                                 ("rv64", RISCV64, frozenset({"m", "zba", "zbb", "zbs"}))):
        seat = emulated_seat(name, arch, features)
        seats[seat.key] = seat
    verifier = BoardVerifier(seats, vectors=100)
    m = Market(Book(Ledger.open(tmp_path / "m.db")), [P01, P16], [Strategy("descend")],
               verifier, rules=Rules(budgets_ms=(2000,)))
    for seat in seats.values():
        m.join(seat.key, seat.name, seat.isa.name, seat.features, 20.0)
    m.keys = {s.name: s.key for s in seats.values()}
    return m


def _accept(market, board, routine, features):
    e = Experiment(routine.id, market.state.agents[market.keys[board]].isa, features,
                   "descend", (), (0, 1), 2000)
    assert market.propose(market.keys[board], e).accepted
    return e


def test_an_improvement_is_adopted_by_every_board_that_can_use_it_after_its_own_check(market):
    e = _accept(market, "qemu64", P01, frozenset())
    artifact, code = _artifact(X86, hd.p01, LEA_AND)
    settled = market.settle(e.identity, _claim(artifact, code, 3))
    records = [market.book.ledger.record(i) for i in settled]
    assert [r["type"] for r in records] == [R.RESULT, R.PAYOUT, R.ADOPTED, R.PAYOUT]
    result, adopted = records[0], records[2]
    assert result["outcome"] == R.IMPROVEMENT and result["artifact"] == artifact
    assert "queries unsat" in result["check"] and "100/100" in result["check"]
    # Haswell (x86-64, its features include none the code needs) took it, checked by
    # itself; the riscv64 board was never asked
    assert adopted["agent"] == market.keys["haswell"]
    assert "queries unsat" in adopted["check"]
    assert "unicorn x86_64: 100/100" in adopted["check"]
    assert market.state.best_of(market.keys["haswell"], P01.id).instructions == 3
    assert market.state.best_of(market.keys["rv64"], P01.id) is None


def test_code_using_a_feature_a_board_lacks_is_not_adopted_there(market):
    e = _accept(market, "haswell", P01, frozenset({"bmi1", "bmi2", "lzcnt"}))
    artifact, code = _artifact(X86, hd.p01, BLSR)
    settled = market.settle(e.identity, _claim(artifact, code, 2, frozenset({"bmi1"})))
    types = [market.book.ledger.record(i)["type"] for i in settled]
    assert types == [R.RESULT, R.PAYOUT]  # qemu64 lacks BMI1: no adoption even tried
    assert market.state.best_of(market.keys["qemu64"], P01.id) is None


def test_a_board_lacking_a_feature_the_program_uses_gets_it_written_without(market):
    """Haswell's blsr for p01 cannot run on qemu64; read back and lowered for qemu64's
    features it is x & (x - 1) in x86 without BMI1 (shorter than qemu64's own start),
    which qemu64 checks and takes."""
    from market.translate import LiftTranslator

    market.translator = LiftTranslator({P01.id: hd.p01, P16.id: hd.p16})
    e = _accept(market, "haswell", P01, frozenset({"bmi1", "bmi2", "lzcnt"}))
    artifact, code = _artifact(X86, hd.p01, BLSR)
    settled = market.settle(e.identity, _claim(artifact, code, 2, frozenset({"bmi1"})))
    records = [market.book.ledger.record(i) for i in settled]
    taken = next(r for r in records if r["type"] == R.ADOPTED
                 and r["agent"] == market.keys["qemu64"])
    assert taken["translated_from"] == "x86_64" and taken["features_used"] == []
    own = min(s.program.instructions for s in starts(X86, hd.p01, frozenset()))
    assert "blsr" not in taken["text"] and taken["instructions"] < own
    assert "queries unsat" in taken["check"] and "100/100" in taken["check"]
    best = market.state.best_of(market.keys["qemu64"], P01.id)
    assert best.instructions == taken["instructions"] and best.features_used == frozenset()


def test_a_forged_claim_is_refuted_loses_its_stake_and_nobody_adopts_it(market):
    e = _accept(market, "qemu64", P01, frozenset())
    good, _ = _artifact(X86, hd.p01, LEA_AND)
    # claims 2 instructions: a wrong program dressed in the correct program's proof
    wrong = "and eax, edi\nret"
    wrong_code = assemble(X86, parse(X86, wrong))
    forged = dict(good, program=wrong)
    credits = market.state.agents[market.keys["qemu64"]].credits
    settled = market.settle(e.identity, _claim(forged, wrong_code, 2))
    (record,) = [market.book.ledger.record(i) for i in settled]
    assert record["type"] == R.REFUTED and "not the proof obligation" in record["reason"]
    assert market.state.agents[market.keys["qemu64"]].credits == credits  # no refund
    assert market.state.adoptions == [] and market.state.payouts == []
    # honestly derived, the wrong program's own proof: Z3 refutes it
    e2 = Experiment(P01.id, "x86_64", frozenset(), "descend", (), (1, 2), 2000)
    market.state.agents[market.keys["qemu64"]].credits = 10.0
    assert market.propose(market.keys["qemu64"], e2).accepted
    honest = make_artifact(X86, hd.p01, parse(X86, wrong))
    settled = market.settle(e2.identity, _claim(honest, wrong_code, 2))
    (record,) = [market.book.ledger.record(i) for i in settled]
    assert record["type"] == R.REFUTED and "satisfiable" in record["reason"]


def test_an_adopter_that_cannot_run_the_code_does_not_take_it(tmp_path):
    # two riscv64 boards with Zbb, both in Unicorn (which lacks Zbb): the claimant's own
    # run fails, so the claim is refuted although Z3 proves it (a live guest runs it)
    seats = {}
    for name in ("rv64-a", "rv64-b"):
        seat = emulated_seat(name, RISCV64, frozenset({"m", "zbb"}))
        seats[seat.key] = seat
    m = Market(Book(Ledger.open(tmp_path / "m.db")), [P16], [Strategy("descend")],
               BoardVerifier(seats, vectors=20), rules=Rules(budgets_ms=(2000,)))
    for seat in seats.values():
        m.join(seat.key, seat.name, "riscv64", seat.features, 20.0)
    a = next(iter(seats))
    e = Experiment(P16.id, "riscv64", frozenset({"m", "zbb"}), "descend", (), (0, 1), 2000)
    assert m.propose(a, e).accepted
    artifact, code = _artifact(RV, hd.p16, "max a0, a0, a1\nret")
    assert check_artifact(artifact, code, frozenset({"zbb"})).ok
    (index,) = m.settle(e.identity, _claim(artifact, code, 2, frozenset({"zbb"})))
    record = m.book.ledger.record(index)
    assert record["type"] == R.REFUTED and "Unicorn lacks zbb" in record["reason"]


def test_a_program_found_on_one_isa_is_translated_for_the_other_and_checked_there(tmp_path):
    """qemu64's p25 (x86's high product, 4 instructions) lifted to the semantic core and
    lowered for riscv64 without Zb*: the riscv board checks the translation itself (Z3 on
    its own artifact, its code on its own vectors) and holds a program far below its own
    lowering (25); the code is the interpreter's p25 on 300 more vectors."""
    from evolution.check import unicorn_check
    from evolution.testset import machine_vectors
    from market.translate import LiftTranslator

    p25 = RoutineInfo(routine_id(hd.p25), "p25", "hackers_delight")
    seats = {}
    for name, arch, features in (("qemu64", X86_64, frozenset()),
                                 ("rv64-nozb", RISCV64, frozenset({"m"}))):
        seat = emulated_seat(name, arch, features)
        seats[seat.key] = seat
    keys = {s.name: s.key for s in seats.values()}
    artifact, code = _artifact(X86, hd.p25, "mov eax, edi\nmul esi\nmov eax, edx\nret")
    for translator, adopted in ((None, False), (LiftTranslator({p25.id: hd.p25}), True)):
        m = Market(Book(Ledger.open(tmp_path / f"m{adopted}.db")), [p25], [Strategy("descend")],
                   BoardVerifier(seats, vectors=100), rules=Rules(budgets_ms=(2000,)),
                   translator=translator)
        for seat in seats.values():
            m.join(seat.key, seat.name, seat.isa.name, seat.features, 20.0)
        e = Experiment(p25.id, "x86_64", frozenset(), "descend", (), (0, 1), 2000)
        assert m.propose(keys["qemu64"], e).accepted
        settled = m.settle(e.identity, _claim(artifact, code, 4, start=35))
        records = [m.book.ledger.record(i) for i in settled]
        best = m.state.best_of(keys["rv64-nozb"], p25.id)
        if not adopted:  # without a translator nothing crosses ISAs
            assert [r["type"] for r in records] == [R.RESULT, R.PAYOUT] and best is None
            continue
        assert [r["type"] for r in records] == [R.RESULT, R.PAYOUT, R.ADOPTED, R.PAYOUT]
        taken = records[2]
        assert taken["agent"] == keys["rv64-nozb"] and taken["translated_from"] == "x86_64"
        assert "queries unsat" in taken["check"] and "unicorn riscv64: 100/100" in taken["check"]
        assert taken["t"] > records[0]["t"]  # the translation and its check are on the clock
        assert best.adopted and best.instructions == taken["instructions"] <= 8
        # held, but no begin: the board's own search starts from the engine's starts, on
        # the ladder (a translation is a basin of its own)
        assert best.translated and m.begin_of(keys["rv64-nozb"], p25.id) is None
        assert m.refining(m.state.agents[keys["rv64-nozb"]]) == set()
        program = parse(RV, best.text)
        riscv_code = assemble(RV, program, frozenset({"m"}))
        assert riscv_code.hex() == best.code
        assert not unicorn_check(RV, hd.p25, riscv_code, machine_vectors(RV, hd.p25, 300, 11))
        # the same program again is not translated again; another that translates no
        # shorter is an entry that says so, its CPU on the clock
        for seeds, text, entries in (((1, 2), "mov eax, edi\nmul esi\nmov eax, edx\nret",
                                      [R.RESULT]),
                                     ((2, 3), "mov eax, edi\nmul esi\nmov eax, edx\n"
                                              "mov eax, eax\nret", [R.RESULT, R.NOT_ADOPTED])):
            # a larger budget each time: a finished one covers the same budget
            again = Experiment(p25.id, "x86_64", frozenset(), "descend", (), seeds,
                               2000 * 2 ** seeds[0])
            assert m.propose(keys["qemu64"], again).accepted
            other, other_code = _artifact(X86, hd.p25, text)
            settled = m.settle(again.identity, _claim(other, other_code, text.count("\n") + 1))
            records = [m.book.ledger.record(i) for i in settled]
            assert [r["type"] for r in records] == entries
        assert "instructions, the board holds" in records[-1]["reason"]
        assert records[-1]["t"] >= records[0]["t"]


# -- live boards ---------------------------------------------------------------------------

@pytest.mark.qemu
def test_live_guests_run_claimed_code_including_what_unicorn_cannot():
    seats = []
    try:
        x86 = boot_seat("qemu64", board("q35", cpu="qemu64", accel="tcg"))
        seats.append(x86)
        rv = boot_seat("rv64", board("virt", cpu="rv64", accel="tcg"))
        seats.append(rv)
        nozb = boot_seat("rv64-nozb", board(
            "virt", cpu="rv64,zba=false,zbb=false,zbc=false,zbs=false", accel="tcg"))
        seats.append(nozb)
        assert {"zba", "zbb", "zbs", "m"} <= rv.features
        assert not {"zba", "zbb", "zbs"} & nozb.features and "m" in nozb.features
        # one misa for both riscv64 boards: riscv,isa tells their fingerprints apart
        assert rv.fingerprint.digest != nozb.fingerprint.digest and rv.key != nozb.key
        assert isinstance(x86, GuestSeat)
        artifact, code = _artifact(X86, hd.p01, LEA_AND)
        run = x86.run_code(hd.p01, code, 100, 5)
        assert run.ok and "qemu64 guest (tcg): 100/100" in run.detail
        _, max_code = _artifact(RV, hd.p16, "max a0, a0, a1\nret")
        assert rv.run_code(hd.p16, max_code, 100, 5).ok  # Zbb runs on the board that has it
        off = nozb.run_code(hd.p16, max_code, 20, 5)  # and faults where it is off
        assert off.wrong == 20 and "outcome FAULT" in off.detail
        assert rv.run_code(hd.p16, max_code, 50, 6).ok  # the same boot runs more jobs
    finally:
        for seat in seats:
            seat.close()


def test_a_search_that_crashes_is_a_failed_experiment_in_the_ledger_not_a_dead_market(market):
    from market.engine import EngineRunner, EngineStrategy

    def crash(spec, target, budget_s, seed, params, starts, stop_at, vectors):
        raise RuntimeError("the assembler refused slli a1, a0, -2")

    key = market.keys["qemu64"]
    runner = EngineRunner({P01.id: hd.p01}, {key: market.verifier.seats[key]},
                          {"descend": EngineStrategy(Strategy("descend"), crash)})
    e = _accept(market, "qemu64", P01, frozenset())
    claim = runner.run(market.state.agents[key], P01, e)
    assert claim.instructions is None and "RuntimeError: the assembler refused" in claim.failure
    (index,) = market.settle(e.identity, claim)
    record = market.book.ledger.record(index)
    assert record["type"] == R.RESULT and record["outcome"] == R.NONE
    assert "slli" in record["failure"] and not market.state.experiments[e.identity].active


def test_the_counterexamples_a_search_is_handed_reach_the_engine_as_they_were_met():
    """Through the ledger's JSON and the worker's plain-data task, a counterexample Z3 gave
    one search arrives in the next as the machine vector it was."""
    from evolution.testset import machine_vectors
    from market.engine import EngineStrategy, SearchTask, _vector, search

    met = machine_vectors(ISAS["x86_64"], hd.p01, 3, 11)  # registers, flags, memory: all
    handed = []

    def spy(spec, target, budget_s, seed, params, starts, stop_at, vectors):
        handed.append(list(vectors))
        raise RuntimeError("the spy searches nothing")

    records = tuple(json.loads(json.dumps(_vector(v))) for v in met)
    search(SearchTask(hd.p01, "x86_64", frozenset(), "qemu64", "spy", (), (0, 1), 0.5,
                      vectors=records), {"spy": EngineStrategy(Strategy("spy"), spy)})
    assert handed == [met]


def test_a_search_begins_from_the_boards_best_only_once_z3_has_proven_it():
    """The board's best so far is a start of the search beside the engine's own, proven
    like every start: the right x & (x - 1) is where the search begins (the lowering, 6
    instructions, is never needed), a wrong one given as the board's best (x & (x + 1)) is
    refuted by the search's own proof and it begins from the lowering."""
    from market.engine import SearchTask, search

    def task(begin: str) -> SearchTask:
        return SearchTask(hd.p01, "x86_64", frozenset(), "qemu64", "descend",
                          (("iterations", 200),), (0, 1), 0.5, begin)

    good = search(task(LEA_AND))
    assert good.start_begun and good.start_instructions == 3 and good.instructions <= 3
    assert 0 < good.start_ms <= good.cpu_ms  # the start was the board's once proven
    assert check_artifact(good.artifact, good.code, frozenset()).ok
    wrong = search(task("lea rax, [rdi + 1]\nand eax, edi\nret"))
    assert not wrong.start_begun and wrong.start_text == "lowering"
    assert wrong.start_instructions > 3
    assert check_artifact(wrong.artifact, wrong.code, frozenset()).ok


def test_a_boards_best_it_checked_itself_is_not_proven_again_in_its_search():
    """riscv64 sort5's network (65 instructions) as the board's best, checked by the board
    before: the search begins from it at once instead of spending Z3's minute on it again
    (unchecked, the same search is stopped at a 2.5-s cap while proving: the worker test
    below); its result runs like the interpreter's sort5.  A wrong program passed as
    checked is still refused, by the machine check every start gets."""
    from evolution.check import unicorn_check
    from evolution.program import text
    from evolution.testset import machine_vectors
    from market.engine import SearchTask, search

    network = next(s.program for s in starts(RV, sorting.sort5, frozenset({"m"}))
                   if s.name == "sorting network")
    claim = search(SearchTask(sorting.sort5, "riscv64", frozenset({"m"}), "rv64-nozb", "descend",
                              (("iterations", 2000),), (0, 1), 0.5, text(RV, network),
                              begin_checked=True))
    assert claim.start_begun and claim.instructions <= network.instructions
    assert claim.cpu_ms < 20_000  # a proof of it alone: 60-70 s here
    assert not unicorn_check(RV, sorting.sort5, claim.code,
                             machine_vectors(RV, sorting.sort5, 200, 5))
    wrong = search(SearchTask(hd.p01, "x86_64", frozenset(), "qemu64", "descend",
                              (("iterations", 200),), (0, 1), 0.5,
                              "lea rax, [rdi + 1]\nand eax, edi\nret", begin_checked=True))
    assert not wrong.start_begun and wrong.start_text == "lowering"
    assert check_artifact(wrong.artifact, wrong.code, frozenset()).ok


def test_a_search_that_reaches_the_markets_floor_stops_there():
    """Below one instruction and the return no search goes (Rules.floor): Haswell's p01
    is blsr, and a search that proves it ends there instead of spending its budget."""
    from market.engine import SearchTask, search

    task = SearchTask(hd.p01, "x86_64", frozenset({"bmi1"}), "haswell", "stoke",
                      (("iterations", 20_000),), (0, 3), 12.0, stop_at=2)
    claim = search(task)
    assert claim.instructions == 2 and "blsr" in claim.text
    assert check_artifact(claim.artifact, claim.code, frozenset({"bmi1"})).ok
    assert claim.cpu_ms < 6000  # of 12,000: the other seeds never ran either


def test_a_search_runs_in_a_worker_that_stops_it_at_its_cpu_cap():
    from market.engine import SearchTask
    from market.worker import SearchWorker

    worker = SearchWorker(cap_factor=1.0, cap_allowance_s=2.0)
    try:
        # x86-64 sort5: proving the network start alone takes Z3 about 20 s, the cap is 2.5 s
        # (riscv64's, with branch moves or Zbb's min/max, is proven in about a second)
        task = SearchTask(sorting.sort5, "x86_64", frozenset(), "qemu64", "descend",
                          (("iterations", 2000),), (0, 1), 0.5)
        stopped = worker(task)
        assert stopped.instructions is None
        if "of wall time" in stopped.failure:  # a host too busy to give it 2.5 s in 25
            assert stopped.cpu_ms / 1000 < 2.5
        else:
            assert "stopped at its CPU cap" in stopped.failure
            assert 2.5 <= stopped.cpu_ms / 1000 < 6
        # the next search gets a new worker, and a short routine finishes under its cap
        done = worker(SearchTask(hd.p01, "x86_64", frozenset(), "qemu64", "descend",
                                 (("iterations", 2000),), (0, 1), 1.0))
        assert done.instructions is not None and done.instructions <= 6 and not done.failure
        assert check_artifact(done.artifact, done.code, frozenset()).ok
    finally:
        worker.close()


@pytest.mark.parametrize("how, said", [("die", "killed by SIGKILL"), ("exit", "exit status 3")])
def test_a_worker_that_dies_mid_search_is_a_result_with_no_program_and_its_cpu_charged(
        how, said):
    from market.engine import SearchTask
    from market.worker import SearchWorker
    from testing.market_world import scripted_search

    def task(strategy: str, seconds: float) -> SearchTask:
        return SearchTask(hd.p01, "x86_64", frozenset(), "qemu64", strategy, (), (0, 1), seconds)

    worker = SearchWorker(cap_factor=1.0, cap_allowance_s=30.0, run=scripted_search)
    try:
        # the worker burns 0.6 CPU-s (its own clock), then its process ends mid-search
        died = worker(task(how, 0.6))
        assert died.instructions is None and died.code == b"" and said in died.failure
        # what it had used, read from /proc (in clock ticks: 10 ms at most below), charged
        assert 0.58 <= died.cpu_ms / 1000 < 3
        # the next search gets a new worker, and its claim comes back whole
        done = worker(task("return", 0.2))
        assert done.instructions == 3 and not done.failure and 0.18 <= done.cpu_ms / 1000 < 2
    finally:
        worker.close()


def test_a_search_past_its_cap_is_stopped_and_charged_about_the_cap():
    from market.engine import SearchTask
    from market.worker import SearchWorker
    from testing.market_world import scripted_search

    worker = SearchWorker(cap_factor=1.0, cap_allowance_s=1.0, run=scripted_search)
    try:
        started = time.monotonic()
        stopped = worker(SearchTask(hd.p01, "x86_64", frozenset(), "qemu64", "spin", (),
                                    (0, 1), 0.5))
        assert stopped.instructions is None and "stopped at its CPU cap (2 s" in stopped.failure
        # charged what it used: the cap, and at most one poll beyond it
        assert 1.5 <= stopped.cpu_ms / 1000 < 2.5 and time.monotonic() - started < 30
        assert worker(SearchTask(hd.p01, "x86_64", frozenset(), "qemu64", "return", (), (0, 1),
                                 0.1)).instructions == 3
    finally:
        worker.close()


def test_a_search_budget_counts_the_clock_it_is_given():
    """The market gives evolve() the search process's CPU clock (market/engine.py CLOCK),
    so a loaded machine does not shrink a budget; evolve() must count that clock alone."""
    from evolution.evolve import evolve
    from evolution.targets import MachineTarget

    target = MachineTarget("qemu64", "x86_64", frozenset())
    calls = []

    def stopped() -> float:  # a clock that never moves: only `batches` ends the search
        calls.append(1)
        return 0.0

    result = evolve(hd.p01, target, budget_s=0.001, batches=3, seed=1, clock=stopped)
    assert result.seconds == 0.0 and all(t == 0.0 for t, _, _ in result.history)
    assert len(calls) > 3  # consulted at every batch, not the wall clock
    with pytest.raises(ValueError, match="wall clock"):
        evolve(hd.p01, target, budget_s=1, workers=2, clock=time.process_time)


def _descendants(pid: int) -> list[int]:
    """Every process under `pid` (its QEMU boards, its search worker), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _settled(db: Path) -> tuple[list[str], Counter]:
    """(accepted identities in order, results per identity), read from the database alone
    (read-only: opening a Ledger would write its schema)."""
    import sqlite3

    if not db.exists():
        return [], Counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT entry FROM ledger_entries ORDER BY idx").fetchall()
    except sqlite3.OperationalError:  # not created yet
        rows = []
    finally:
        conn.close()
    return ledger_outcomes(raw for (raw,) in rows)


@pytest.mark.qemu
def test_a_live_market_sigkilled_mid_search_resumes_from_its_ledger(tmp_path):
    """`./run market` on a real board, its process SIGKILLed while its worker searches (as
    the OOM killer would end it), then run again on the same database: the interrupted
    experiment runs again and gets one result, no finished one runs again, nothing written
    before the kill changed; its search worker ends itself."""
    db = tmp_path / "m.db"
    argv = [str(REPO / "run"), "market", "--boards", "qemu64", "--routines", "p01,p03,p16",
            "--db", str(db)]
    # a killed market leaves its QEMU's temporary directory behind: here, not in /tmp
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    market = subprocess.Popen([*argv, "--seconds", "60"], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True, env=env)
    others: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # wait for a search that started after a result
            time.sleep(0.1)
            accepted, settled = _settled(db)
            if settled and accepted and not settled[accepted[-1]]:
                break
            assert market.poll() is None, market.stderr.read().decode()
        else:
            pytest.fail("the market did not start a second search in 240 s")
        time.sleep(0.5)  # well inside the search (budgets are 3 CPU-seconds at least)
        others = _descendants(market.pid)
        workers = [p for p in others if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 1  # the search worker, searching
        os.kill(market.pid, signal.SIGKILL)
        market.wait()
        # Linux kills the worker with its market (PR_SET_PDEATHSIG), mid-search: within 2 s,
        # when its search had at least 2.5 CPU-s to go (killed 0.5 s into a budget of 3 at least)
        deadline = time.monotonic() + 2
        while Path(f"/proc/{workers[0]}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{workers[0]}").exists(), "the search worker outlived its market"
    finally:
        if market.poll() is None:
            others = others or _descendants(market.pid)
            market.kill()
            market.wait()
        for pid in others:  # its QEMU would outlive it (nothing ends it): end it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    accepted, settled = _settled(db)
    in_flight = accepted[-1]
    assert not settled[in_flight] and all(settled[i] == 1 for i in accepted[:-1])
    from stores.ledger import Ledger

    before = Ledger.open(db, read_only=True)
    size, root = before.size, before.root()

    done = subprocess.run([*argv, "--seconds", "6"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    after, settled = _settled(db)
    assert after[:len(accepted)] == accepted  # the interrupted one was not accepted again
    assert settled[in_flight] == 1 and all(n == 1 for n in settled.values())
    ledger = Ledger.open(db, read_only=True)
    proof = ledger.consistency(size)
    assert proof.old_root == root and proof.verify()  # nothing before the kill changed
    entries = [(i, json.loads(b)) for i, b in ledger.entries()]
    assert redundant_experiments(entries) == []
