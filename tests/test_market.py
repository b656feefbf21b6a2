"""The market's rules on a virtual clock, with a synthetic world (testing/market_world.py)
standing in for the search engine and the boards."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market import records as R
from market.driver import Driver
from market.experiment import Experiment, params_of, target_of
from market.market import AdoptionCheck, Book, Market, RoutineInfo, Rules, Strategy, ledger_entries
from market.report import redundant_experiments
from market.state import MarketState
from market.uses import recorded_uses
from stores.db import connect
from stores.ledger import Ledger
from testing.market_world import (
    SyntheticVerifier,
    Truth,
    World,
    claim_for,
    ledger_outcomes,
    routine_id,
)

RULES = Rules(budgets_ms=(2000, 4000, 8000))
STRATEGIES = (Strategy("stoke", ((("iterations", 1000),),)), Strategy("enumerate"))


def routines(n: int = 4, klass: str = "hd", uses: int = 1) -> list[RoutineInfo]:
    return [RoutineInfo(routine_id(f"r{i}"), f"r{i}", klass, uses) for i in range(n)]


def make(tmp_path, *, name="m.db", world=None, sharing=True, seed=0, rules=RULES,
         strategies=STRATEGIES, pool=None, verifier=None):
    pool = pool if pool is not None else routines()
    # in memory: the rules do not need fsync (the resume test uses a file, in a process)
    ledger = Ledger(connect(":memory:"), Ed25519PrivateKey.generate())
    verifier = verifier or SyntheticVerifier()
    market = Market(Book(ledger), pool, strategies, verifier, rules=rules, sharing=sharing,
                    seed=seed)
    return market, ledger


def experiment(routine="r0", features=(), strategy="enumerate", params=None, seeds=(0, 1),
               cpu_ms=2000, isa="x86_64"):
    return Experiment(routine_id(routine), isa, frozenset(features), strategy,
                      params_of(params or {}), seeds, cpu_ms)


# -- identity and cover ------------------------------------------------------------------

def test_identity_is_sha256_of_the_canonical_tuple():
    e = experiment(features=("bmi2", "bmi1"), strategy="stoke", params={"iterations": 1000})
    text = ('{"cpu_ms":2000,"features":["bmi1","bmi2"],"isa":"x86_64",'
            '"params":{"iterations":1000},"routine":"' + routine_id("r0") + '",'
            '"seeds":[0,1],"strategy":"stoke"}')
    assert e.identity == hashlib.sha256(text.encode()).hexdigest()
    assert Experiment.from_record(json.loads(text)) == e


@pytest.mark.parametrize("change", [
    {"routine": "r1"}, {"features": ("bmi1",)}, {"strategy": "stoke"}, {"params": {"k": 2}},
    {"seeds": (1, 2)}, {"cpu_ms": 2001}, {"isa": "riscv64"}])
def test_every_field_of_the_tuple_changes_the_identity(change):
    assert experiment(**change).identity != experiment().identity


def test_cover_needs_same_search_superset_features_and_no_more_budget():
    big = experiment(features=("a", "b"), cpu_ms=4000, seeds=(5, 6))
    assert big.covers(experiment(features=("a",), cpu_ms=4000))  # seeds do not matter
    assert big.covers(experiment(features=(), cpu_ms=2000))
    assert not big.covers(experiment(features=("a",), cpu_ms=8000))  # more budget
    assert not big.covers(experiment(features=("c",)))  # a feature it never had
    assert not big.covers(experiment(features=("a",), strategy="stoke"))
    assert not big.covers(experiment(features=("a",), routine="r1"))
    assert not big.covers(experiment(features=("a",), isa="riscv64"))


def test_parameters_are_exact():
    with pytest.raises(ValueError, match="integers or strings"):
        params_of({"beta": 0.5})


# -- proposals ---------------------------------------------------------------------------

def _join(market, name, features=(), credits=100.0, isa="x86_64"):
    return market.join(name, name, isa, frozenset(features), credits)


def test_refusals_same_pending_covered_and_credits(tmp_path):
    market, _ = make(tmp_path)
    truth = Truth(start=10, base=8, best=6)
    a = _join(market, "a", ("f",))
    b = _join(market, "b", ())
    big = experiment(features=("f",), cpu_ms=4000)
    assert market.propose("a", big).accepted
    # the same identity, active
    again = market.propose("a", big)
    assert (again.accepted, again.reason, again.by) == (False, R.SAME, big.identity)
    # covered by an active experiment: wait for it
    small = experiment(features=(), cpu_ms=2000, seeds=(3, 4))
    pending = market.propose("b", small)
    assert (pending.reason, pending.by) == (R.PENDING, big.identity)
    # it finishes with a program b cannot use (needs f): b's question is still open
    routine = market.routines[routine_id("r0")]
    market.settle(big.identity, claim_for(routine, truth, 7, 4000, 1000))
    assert market.state.experiments[big.identity].features_used == {"f"}
    assert market.propose("b", small).accepted
    market.settle(small.identity, claim_for(routine, truth, 8, 2000, 1000))
    # now the same search with other seeds is answered: for b by its own, for a by its own
    # (whose program a can use)
    covered = market.propose("b", experiment(features=(), cpu_ms=2000, seeds=(9, 10)))
    assert (covered.reason, covered.by) == (R.COVERED, small.identity)
    covered = market.propose("a", experiment(features=(), cpu_ms=2000, seeds=(9, 10)))
    assert (covered.reason, covered.by) == (R.COVERED, big.identity)
    # and the same identity, done
    assert market.propose("b", small).reason == R.SAME
    # more budget than either: not redundant
    assert market.propose("b", experiment(features=(), cpu_ms=8000)).accepted
    poor = _join(market, "poor", (), credits=3.0)
    refused = market.propose(poor.key, experiment(routine="r1", cpu_ms=4000))
    assert refused.reason == R.CREDITS
    assert refused.alternative is not None and refused.alternative.cpu_seconds <= 3.0
    # stakes paid, and the improvements (10 -> 7, 10 -> 8 cycles, one recorded use) paid;
    # b's paid twice: "poor" joined late and adopted it
    assert a.credits == 100 - 4 + 3 and b.credits == 100 - 2 - 8 + 2 + 2
    assert market.state.best_of("poor", routine.id).instructions == 8


def test_the_alternative_is_untried_and_would_be_accepted(tmp_path):
    market, _ = make(tmp_path)
    _join(market, "a", ("f",))
    first = experiment()
    market.propose("a", first)
    decision = market.propose("a", first)
    assert decision.reason == R.SAME
    alt = decision.alternative
    assert alt is not None and alt.identity != first.identity
    assert market.redundancy(market.state.agents["a"], alt) is None
    assert market.propose("a", alt).accepted


def test_refused_proposals_are_ledger_entries_with_reason_and_alternative(tmp_path):
    market, ledger = make(tmp_path)
    _join(market, "a")
    e = experiment()
    market.propose("a", e)
    decision = market.propose("a", e)
    record = ledger.record(decision.index)
    assert record["type"] == R.REFUSED and record["reason"] == R.SAME
    assert record["by"] == e.identity and record["id"] == e.identity
    assert Experiment.from_record(record["alternative"]) == decision.alternative


def test_a_finished_experiment_is_never_settled_twice(tmp_path):
    market, _ = make(tmp_path)
    _join(market, "a")
    e = experiment()
    market.propose("a", e)
    routine = market.routines[e.routine]
    claim = claim_for(routine, Truth(10, 8, 6), 9, 2000, 500)
    market.settle(e.identity, claim)
    with pytest.raises(ValueError, match="never settled twice"):
        market.settle(e.identity, claim)


# -- posterior ---------------------------------------------------------------------------

def test_posterior_is_beta_and_gamma_exponential_with_class_pooling():
    state = MarketState(prior_size=2.0)
    p = state.posterior
    for saved in (4.0, None, None, 2.0):
        p.observe("stoke", "r0", "hd", saved)
    mean = p.mean("stoke", "r0", "hd")
    assert mean.chance == pytest.approx((1 + 2) / (2 + 4))  # Beta(1 + r, 1 + s)
    # Gamma(2 + n, b + sum) on the rate: mean size (b + sum) / (1 + n), b = prior size
    assert mean.size == pytest.approx((2.0 + 6.0) / (1 + 2))
    # another routine of the class borrows half of r0's evidence
    other = p.mean("stoke", "r1", "hd")
    assert other.chance == pytest.approx((1 + 1) / (2 + 2))
    # a routine of another class borrows none
    assert p.mean("stoke", "s0", "sort").chance == pytest.approx(0.5)


def test_the_class_weighs_at_most_a_few_of_a_routines_own_experiments():
    """Twenty improvements on r0 pool into r1's prior as four experiments of r1's own (at
    half weight they would be ten), so six failures of r2's own halve its chance."""
    p = MarketState().posterior
    for _ in range(20):
        p.observe("stoke", "r0", "hd", 1.0)
    for _ in range(6):
        p.observe("stoke", "r2", "hd", None)
    # r1 borrows 20 improvements and r2's 6 failures, 26 experiments, as 4
    assert p.mean("stoke", "r1", "hd").chance == pytest.approx(
        (1 + 4 * 20 / 26) / (2 + 4))
    # r2 borrows r0's 20 as 4 (its own failures are its own)
    assert p.mean("stoke", "r2", "hd").chance == pytest.approx((1 + 4) / (2 + 4 + 6))


def test_an_adoption_of_an_improvement_is_evidence_for_the_adopters_own_pair(tmp_path):
    """Board a (feature f) improves r0 from 10 to 8 with enumerate, a program without f,
    and b (no f) adopts it: b's pair (enumerate, r0 as b sees it) holds that improvement
    as its own, beside the class's pooled half of a's experiment; the class counts the
    experiment once.  a's search of r1 that ended on its start gives b that start, no
    evidence.  A replay of the ledger (a resumed market) holds the same."""
    pool = routines(2)
    market, ledger = make(tmp_path, pool=pool)
    _join(market, "a", ("f",))
    _join(market, "b")
    truth = Truth(start=10, base=8, best=6)
    for name, instructions in (("r0", 8), ("r1", 10)):
        e = experiment(name, features=("f",))
        assert market.propose("a", e).accepted
        market.settle(e.identity, claim_for(market.routines[routine_id(name)], truth,
                                            instructions, 2000, 500))
    assert [market.state.best_of("b", routine_id(r)).instructions for r in ("r0", "r1")] \
        == [8, 10]
    for state in (market.state, MarketState.replay(ledger_entries(ledger))):
        p = state.posterior

        def mine(name, strategy="enumerate", p=p):
            return p.evidence(strategy, target_of(routine_id(name), "x86_64", frozenset()),
                              "hd")

        assert (mine("r0").improvements, mine("r0").failures) == (1 + 0.5, 0.5 * 1)
        assert (mine("r1").improvements, mine("r1").failures) == (0.5, 0.5)
        assert mine("r0", "stoke").improvements == 0
        assert p.class_evidence("enumerate", "hd").improvements == 1


def test_thompson_draws_are_seedable(tmp_path):
    market, _ = make(tmp_path, seed=7)
    a = _join(market, "a")
    first = [market.suggest(a) for _ in range(3)]
    market2, _ = make(tmp_path, name="n.db", seed=7)
    a2 = _join(market2, "a")
    assert [market2.suggest(a2) for _ in range(3)] == first


# -- money -------------------------------------------------------------------------------

def test_payout_is_cycles_saved_times_recorded_uses(tmp_path):
    pool = [RoutineInfo(routine_id("r0"), "r0", "hd", uses=250)]
    market, _ = make(tmp_path, pool=pool, rules=Rules(budgets_ms=(2000,),
                                                      credit_per_cycle_use=0.01))
    _join(market, "a", ("f",), credits=10)
    _join(market, "b", (), credits=10)
    _join(market, "c", ("f",), credits=10)
    e = experiment(features=("f",))
    market.propose("a", e)
    truth = Truth(start=10, base=8, best=6)
    # 10 -> 7 instructions (cycles): it uses f, so c adopts it, b cannot
    market.settle(e.identity, claim_for(pool[0], truth, 7, 1500, 700))
    state = market.state
    payouts = [(p["agent"], p["why"], p["credits"]) for p in state.payouts]
    assert payouts == [("a", "improvement", pytest.approx(0.01 * 3 * 250)),
                       ("a", "adoption", pytest.approx(0.01 * 3 * 250))]
    # stake 2, refund 0.5 (1.5 s used), two payouts of 7.5
    assert state.agents["a"].credits == pytest.approx(10 - 2 + 0.5 + 15)
    assert state.best_of("c", pool[0].id).instructions == 7
    assert state.best_of("c", pool[0].id).adopted
    assert state.best_of("b", pool[0].id) is None


def test_a_claim_whose_proof_does_not_check_is_refused_and_loses_its_stake(tmp_path):
    market, ledger = make(tmp_path)
    _join(market, "a", ("f",), credits=10)
    _join(market, "c", ("f",), credits=10)
    e = experiment(features=("f",))
    market.propose("a", e)
    routine = market.routines[e.routine]
    forged = claim_for(routine, Truth(10, 8, 6), 3, 2000, 100, sound=False)
    settled = market.settle(e.identity, forged)
    record = ledger.record(settled[-1])
    assert record["type"] == R.REFUTED and "does not check" in record["reason"]
    state = market.state
    assert state.agents["a"].credits == 8  # the stake is gone, nothing paid
    assert state.payouts == [] and state.adoptions == []
    assert state.best_of("c", routine.id) is None and state.best_of("a", routine.id) is None
    assert state.experiments[e.identity].outcome == R.REFUTED
    # a refuted claim answers nothing: the same search may be staked again
    assert market.redundancy(state.agents["a"], experiment(features=("f",), seeds=(1, 2))) \
        is None


# -- whole runs --------------------------------------------------------------------------

def _world(pool, features_help=("r0", "r2")):
    truths = {}
    for i, r in enumerate(pool):
        helped = r.name in features_help
        truths[r.id] = Truth(start=12 + i % 3, base=8, best=5 if helped else 8)
    return World(truths, {("stoke", "hd"): 0.5, ("enumerate", "hd"): 0.2})


def _four_boards(market):
    # two ISAs, each with a board that has the feature and one that does not
    for name, isa, features in (("q64", "x86_64", ()), ("haswell", "x86_64", ("f",)),
                                ("rv64", "riscv64", ("f",)), ("rv64-nozb", "riscv64", ())):
        market.join(name, name, isa, frozenset(features), 60.0)


def test_a_shared_market_runs_no_redundant_experiment_and_isolated_boards_do(tmp_path):
    pool = routines(6)
    counts = {}
    for sharing in (True, False):
        market, ledger = make(tmp_path, name=f"{sharing}.db", sharing=sharing)
        _four_boards(market)
        Driver(market, _world(pool), limit_ms=400_000).run()
        entries = [(i, json.loads(b)) for i, b in ledger.entries()]
        counts[sharing] = (len(redundant_experiments(entries)), len(market.state.order))
        assert ledger.verify(ledger.public_key).ok
    assert counts[True][0] == 0 and counts[True][1] > 20
    assert counts[False][0] > 0  # the count can fail: isolated boards repeat each other


def test_replaying_the_ledger_rebuilds_the_live_state(tmp_path):
    pool = routines(4)
    market, ledger = make(tmp_path)
    _four_boards(market)
    Driver(market, _world(pool), limit_ms=120_000).run()
    live = market.state
    replayed = Book(ledger).state
    assert {k: round(a.credits, 6) for k, a in replayed.agents.items()} == \
        {k: round(a.credits, 6) for k, a in live.agents.items()}
    assert {k: a.history for k, a in replayed.agents.items()} == \
        {k: a.history for k, a in live.agents.items()}
    assert replayed.best == live.best and replayed.order == live.order
    assert [e.outcome for e in replayed.done()] == [e.outcome for e in live.done()]
    assert replayed.clock == live.clock and replayed.size == ledger.size


def test_boards_that_pay_grow_their_share_of_the_cpu(tmp_path):
    # one routine class where only board "good"'s feature leads anywhere
    pool = routines(8)
    truths = {r.id: Truth(start=20, base=20, best=10) for r in pool}
    world = World(truths, {("stoke", "hd"): 0.6, ("enumerate", "hd"): 0.6})
    pool = [RoutineInfo(r.id, r.name, r.klass, uses=10) for r in pool]
    market, _ = make(tmp_path, pool=pool, sharing=False)
    market.join("good", "good", "x86_64", frozenset({"f"}), 40.0)
    market.join("dull", "dull", "riscv64", frozenset(), 40.0)
    Driver(market, world, limit_ms=150_000).run()
    cpu = {k: a.cpu_ms for k, a in market.state.agents.items()}
    assert cpu["good"] > 2 * cpu["dull"]


def test_the_market_gives_the_best_strategy_most_of_the_cpu_after_30_experiments(tmp_path):
    """Three strategies, one clearly best for the class (known chances of progress per
    second 0.6, 0.08, 0.04), on 20 worlds and market seeds: after 30 experiments the best
    one holds >= 70% of the CPU on average and in at least 16 of the 20 runs (Thompson
    sampling explores; `./run bench market` shows the spread over 100 runs beside plain
    Bernoulli Thompson sampling and a fixed split)."""
    pool = routines(25)
    truths = {r.id: Truth(start=14, base=4, best=4) for r in pool}
    quality = {("good", "hd"): 0.6, ("fair", "hd"): 0.08, ("poor", "hd"): 0.04}
    strategies = tuple(Strategy(n) for n in ("poor", "fair", "good"))
    shares = []
    for seed in range(20):
        market, _ = make(tmp_path, name=f"s{seed}.db", strategies=strategies, seed=seed,
                         pool=pool)
        market.join("a", "a", "x86_64", frozenset(), 10_000.0)
        driver = Driver(market, World(truths, quality, seed))
        for _ in range(30):
            driver.step()
        done = market.state.done()
        assert len(done) == 30
        cpu = Counter()
        for e in done:
            cpu[e.experiment.strategy] += e.cpu_ms
        shares.append(cpu["good"] / sum(cpu.values()))
    assert sum(shares) / len(shares) >= 0.70, shares
    assert sum(share >= 0.70 for share in shares) >= 16, shares


# -- killed and resumed ------------------------------------------------------------------

def _outcomes(ledger) -> tuple[list[str], Counter]:
    return ledger_outcomes(raw for _, raw in ledger.entries())


def test_a_market_killed_mid_experiment_resumes_without_rerunning_or_losing_results(tmp_path):
    db, markers = tmp_path / "m.db", tmp_path / "started"
    child = [sys.executable, str(Path(__file__).with_name("market_child.py")), str(db),
             str(markers), "100000"]
    process = subprocess.Popen([*child, "0.15"])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for a search that started after results
            time.sleep(0.02)
            started = markers.read_text().split() if markers.exists() else []
            if len(started) >= 6:
                break
        else:
            pytest.fail("the market child did not start six searches in 60 s")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    killed = markers.read_text().split()
    ledger = Ledger.open(db)
    before = ledger.size
    accepted, settled = _outcomes(ledger)
    in_flight = [i for i in accepted if not settled[i]]
    assert in_flight == [killed[-1]]  # killed mid-search: accepted, no result
    assert all(settled[i] == 1 for i in accepted[:-1])
    old_root = ledger.root()

    subprocess.run([*child, "0"], check=True, timeout=120)
    ledger = Ledger.open(db)
    started = markers.read_text().split()
    accepted, settled = _outcomes(ledger)
    # every accepted experiment has exactly one outcome; the only search started twice is
    # the one the kill interrupted, and nothing written before the kill changed
    assert all(settled[i] == 1 for i in accepted) and len(accepted) > len(killed)
    assert [i for i, n in Counter(started).items() if n > 1] == [killed[-1]]
    proof = ledger.consistency(before)
    assert proof.old_root == old_root and proof.verify()
    assert ledger.verify(ledger.public_key).ok
    # and the resumed market counts no redundant experiment across the kill
    entries = [(i, json.loads(b)) for i, b in ledger.entries()]
    assert redundant_experiments(entries) == []


def test_recorded_uses_are_the_semantic_stores_measured_runs_over_the_class(tmp_path):
    from arch import X86_64
    from sem.library import hackers_delight as hd
    from sem.store import SemStore
    from stores.db import connect
    from stores.fingerprint import Fingerprint

    store = SemStore(connect(tmp_path / "sem.db"))
    p01 = store.add(hd.p01)
    assert recorded_uses(store, p01) == 1  # never measured: still worth its cycles
    impl = store.add_implementation(p01, X86_64, b"\x8d\x47\xff\x21\xf8\xc3", "lea/and", "test")
    board_a = Fingerprint(X86_64, "q35", (("vendor", 1),))
    board_b = Fingerprint(X86_64, "q35", (("vendor", 2),))
    store.record_performance(impl, board_a, "cycles", 40.0, 100, "tcg")
    store.record_performance(impl, board_b, "cycles", 38.0, 60, "tcg")
    assert recorded_uses(store, p01) == 160
    other = store.add(hd.p02)  # another routine's runs are not p01's
    store.record_performance(store.add_implementation(other, X86_64, b"\xc3", "ret", "test"),
                             board_a, "cycles", 30.0, 7, "tcg")
    assert recorded_uses(store, p01) == 160
    store.link_equivalent(p01, other, "test: pretend they are one class")
    assert recorded_uses(store, p01) == 167


def test_the_report_holds_every_experiment_with_its_ledger_index_and_the_bests(tmp_path):
    from market.report import SCHEMA, best_history, report, time_to_reach

    pool = routines(4)
    market, ledger = make(tmp_path)
    _four_boards(market)
    Driver(market, _world(pool), limit_ms=150_000).run()
    entries = [(i, json.loads(b)) for i, b in ledger.entries()]
    doc = report(entries, {r.id: r.name for r in pool}, sharing=True, seed=0, budget_s=150,
                 ledger={"size": ledger.size})
    assert doc["schema"] == SCHEMA and doc["redundant_experiments"] == 0
    for x in doc["experiments"]:
        record = ledger.record(x["ledger_index"])
        assert record["type"] == R.ACCEPTED and record["id"] == x["identity"]
        assert Experiment.from_record(record["experiment"]).identity == x["identity"]
    for r in doc["refused"]:
        assert ledger.record(r["ledger_index"])["reason"] == r["reason"]
    state = market.state
    history = best_history(entries)
    for row in doc["best"]:
        assert row["instructions"] == state.best_of(row["agent"], row["routine"]).instructions
        steps = [n for _, n, _ in row["steps"]]
        assert steps == sorted(steps, reverse=True) and len(set(steps)) == len(steps)
    finals = {k: v[-1][1] for k, v in history.items()}
    assert time_to_reach(history, finals) == max(v[-1][0] for v in history.values())
    assert time_to_reach(history, {k: n - 1 for k, n in finals.items()}) is None
    for agent in doc["agents"].values():  # credits over time end at the final balance
        assert agent["credits_over_time"][-1][1] == pytest.approx(agent["credits"])


def test_a_board_with_one_instruction_and_the_return_trades_that_routine_no_more(tmp_path):
    market, _ = make(tmp_path)
    a = _join(market, "a")
    e = experiment()
    market.propose("a", e)
    routine = market.routines[e.routine]
    assert any(c.routine == routine.id for c in market.candidates(a))
    market.settle(e.identity, claim_for(routine, Truth(start=9, base=2, best=2), 2, 2000, 10))
    assert not any(c.routine == routine.id for c in market.candidates(a))
    assert market.candidates(a)  # the other routines are still traded


def test_experiments_are_scored_per_cpu_second_they_really_cost(tmp_path):
    """Two routines alike but for what their searches cost beyond the budget (a sort's
    proofs): once the ledger shows it, the cheap one is suggested first."""
    pool = routines(2)
    truths = {pool[0].id: Truth(20, 10, 10), pool[1].id: Truth(20, 10, 10, overrun_ms=20_000)}
    picks = Counter()
    for seed in range(20):
        market, _ = make(tmp_path, name=f"o{seed}.db", pool=pool, seed=seed,
                         strategies=(Strategy("stoke"),))
        a = _join(market, "a", credits=1000)
        world = World(truths, {("stoke", "hd"): 0.5}, seed)
        for routine in pool:
            e = experiment(routine=routine.name, strategy="stoke")
            market.propose("a", e)
            market.settle(e.identity, world.run(a, routine, e))
        assert market.overruns(a) == {(pool[0].id, "x86_64"): 0.0, (pool[1].id, "x86_64"): 20.0}
        picks[market.routines[market.suggest(a).routine].name] += 1
    assert picks["r0"] >= 16, picks


def test_a_resumed_market_leaves_absent_boards_experiments_for_their_return(tmp_path):
    pool = routines(3)
    market, ledger = make(tmp_path)
    _four_boards(market)
    q64 = market.state.agents["q64"]
    e = market.suggest(q64)
    market.propose("q64", e)  # accepted, then the market dies before running it
    resumed = Market(Book(ledger), pool, STRATEGIES, SyntheticVerifier(), rules=RULES)
    world = _world(pool)
    driver = Driver(resumed, world, limit_ms=30_000, present={"haswell", "rv64"})
    driver.run()
    assert e.identity not in world.runs and resumed.state.experiments[e.identity].active
    assert {resumed.state.experiments[i].agent for i in world.runs} <= {"haswell", "rv64"}
    before = len(world.runs)
    Driver(resumed, world, limit_ms=60_000).run()  # q64 is back: its experiment runs first
    assert world.runs[before] == e.identity and world.runs.count(e.identity) == 1
    assert not resumed.state.experiments[e.identity].active


def test_a_board_away_is_not_checked_for_adoptions_and_catches_up_on_its_return(tmp_path):
    """A market resumed without one of its boards has no guest to check a program in
    for it (the live verifier holds only the boards booted this run: it failed with a
    KeyError): what the others find meanwhile is not offered to it, and it adopts what
    it can use when it joins again."""
    pool = routines(1)
    market, ledger = make(tmp_path, pool=pool)
    market.join("a", "a", "x86_64", frozenset(), 100.0)
    market.join("b", "b", "x86_64", frozenset(), 100.0)
    r0 = pool[0].id
    verifier = SyntheticVerifier()
    resumed = Market(Book(ledger), pool, STRATEGIES, verifier, rules=RULES)
    resumed.join("a", "a", "x86_64", frozenset(), 100.0)  # b stays away this run
    e = experiment("r0")
    resumed.propose("a", e)
    resumed.settle(e.identity, claim_for(resumed.routines[r0], Truth(10, 8, 6), 8, 2000, 0))
    assert "b" not in verifier.asked and resumed.state.best_of("b", r0) is None
    back = Market(Book(ledger), pool, STRATEGIES, verifier, rules=RULES)
    back.join("b", "b", "x86_64", frozenset(), 100.0)
    assert verifier.asked[-1] == "b"
    assert back.state.best_of("b", r0).adopted and back.state.best_of("b", r0).instructions == 8


def test_a_returning_board_does_not_check_again_what_it_refused():
    """A program a board's own check refused is not offered to it again each time the
    market resumes with it (its check costs Z3 and a run in its guest)."""
    class RefusingB(SyntheticVerifier):
        def check(self, agent, routine, artifact, code):
            verdict = super().check(agent, routine, artifact, code)
            return AdoptionCheck(False, "b's guest disagrees", 1) if agent.key == "b" \
                else verdict

    pool = routines(1)
    verifier = RefusingB()
    market, ledger = make(None, pool=pool, verifier=verifier)
    market.join("a", "a", "x86_64", frozenset(), 100.0)
    market.join("b", "b", "x86_64", frozenset(), 100.0)
    r0 = pool[0].id
    e = experiment("r0")
    market.propose("a", e)
    market.settle(e.identity, claim_for(market.routines[r0], Truth(10, 8, 6), 8, 2000, 0))
    assert verifier.asked.count("b") == 1 and market.state.best_of("b", r0) is None
    resumed = Market(Book(ledger), pool, STRATEGIES, verifier, rules=RULES)
    resumed.join("b", "b", "x86_64", frozenset(), 100.0)
    assert verifier.asked.count("b") == 1


def test_without_sharing_a_board_learns_only_from_its_own_experiments(tmp_path):
    pool = routines(6)
    market, _ = make(tmp_path, sharing=False, pool=pool)
    _join(market, "a", credits=1000)
    _join(market, "b", credits=1000)
    world = _world(pool)
    a = market.state.agents["a"]
    for _ in range(6):  # only a runs
        e = market.suggest(a)
        market.propose("a", e)
        market.settle(e.identity, world.run(a, market.routines[e.routine], e))
    klass = "hd"
    tried = {(e.experiment.strategy, e.experiment.routine) for e in market.state.done()}
    for strategy, routine in tried:
        shared = market.state.posterior.mean(strategy, routine, klass)
        assert market.state.own_posterior("a").mean(strategy, routine, klass) == shared
        assert market.state.own_posterior("b").mean(strategy, routine, klass).chance == 0.5
    # and b's candidates ignore a's experiments: it would start where a started
    b = market.state.agents["b"]
    assert all(c.seeds == (0, 1) for c in market.candidates(b))
    # the same experiment proposed by b is still refused: one experiment per identity
    first = market.state.done()[0].experiment
    assert market.propose("b", first).reason == R.SAME


def test_a_search_that_improved_nothing_still_gives_its_program_to_boards_without_one(
        tmp_path):
    market, ledger = make(tmp_path)
    _join(market, "a", ("f",))
    _join(market, "b")
    e = experiment(features=("f",))
    market.propose("a", e)
    routine = market.routines[e.routine]
    # a's search ends on its start (10): nothing new for a, a first program for b
    settled = market.settle(e.identity, claim_for(routine, Truth(10, 8, 6), 10, 2000, 0))
    types = [ledger.record(i)["type"] for i in settled]
    assert types == [R.RESULT, R.ADOPTED, R.PAYOUT]
    assert ledger.record(settled[0])["outcome"] == R.NONE
    assert market.state.best_of("b", routine.id).instructions == 10
    assert market.state.payouts[-1]["why"] == "adoption"


def test_motherboard_payments_are_credits_the_agents_of_that_fingerprint_can_stake(tmp_path):
    """The meta-motherboard pays boards for tasks into the shared ledger, keyed by their
    hardware fingerprint (motherboard/credits.py, written here by its own code through a
    connection of its own, as its process would): the market's agents on that fingerprint
    can stake those credits, live and after a replay."""
    from motherboard.credits import accounts, pay
    from motherboard.entries import Payment

    db = tmp_path / "m.db"
    pool = routines(4)
    market = Market(Book(Ledger.open(db)), pool, STRATEGIES, SyntheticVerifier(), rules=RULES)
    motherboard = Ledger.open(db)
    x86, rv, other = "ab" * 32, "cd" * 32, "ef" * 32

    def paid(fingerprint: str, credits: float, task: str) -> None:
        pay(motherboard, [Payment("q35:qemu64", fingerprint, task, credits, 0.5)])

    paid(x86, 1.5, "t0")  # before any agent on it joined: it waits for the first
    market.join("q64", "qemu64", "x86_64", frozenset(), 2.0, x86)
    market.join("haswell", "haswell", "x86_64", frozenset({"f"}), 2.0, other)
    assert market.state.agents["q64"].credits == 3.5
    big = experiment(cpu_ms=8000)
    assert market.propose("q64", big).reason == R.CREDITS  # 3.5 credits cannot stake 8
    paid(x86, 2.25, "t1")
    paid(x86, 2.25, "t2")
    paid("00" * 32, 50.0, "t3")  # a fingerprint no agent has: nobody here is richer
    decision = market.propose("q64", big)  # the market reads what the motherboard wrote
    assert decision.accepted and market.state.agents["q64"].credits == pytest.approx(0.0)
    assert market.state.agents["haswell"].credits == 2.0
    # two agents on one fingerprint (QEMU's rv64 with and without Zb*) share its payments
    market.join("rv64", "rv64", "riscv64", frozenset({"f"}), 2.0, rv)
    market.join("rv64-nozb", "rv64-nozb", "riscv64", frozenset(), 2.0, rv)
    paid(rv, 3.0, "t4")
    market.book.refresh()
    assert [market.state.agents[k].credits for k in ("rv64", "rv64-nozb")] == [3.5, 3.5]
    # the driver runs on, reading payments between its turns
    driver = Driver(market, _world(pool))
    for turn in range(12):
        driver.step()
        paid(x86 if turn % 2 else rv, 1.25, f"d{turn}")
    market.book.refresh()  # the last payment came after the last turn
    assert len(market.state.done()) >= 6  # experiments settled between payments
    live = market.state
    # nothing minted: what the agents of a fingerprint were paid is its account's balance
    balances = accounts(Ledger.open(db))
    for fingerprint in (x86, rv):
        got = sum(a.paid for a in live.agents.values() if a.fingerprint == fingerprint)
        assert got == pytest.approx(balances[fingerprint].credits)
    assert balances["00" * 32].credits == 50.0 and live.unclaimed == {"00" * 32: 50.0}
    # a replay of the ledger (a resumed market) holds the same credits, to the entry
    replayed = Book(Ledger.open(db)).state
    assert {k: (a.credits, a.paid, a.history) for k, a in replayed.agents.items()} == \
        {k: (a.credits, a.paid, a.history) for k, a in live.agents.items()}
    assert replayed.order == live.order and replayed.size == live.size == motherboard.size


def test_agents_whose_proposals_others_covered_stop_asking(tmp_path):
    """Board a (feature f) searched r0 and found a program without f: that answers r0 for
    b and c (no f), whose own proposals (their features, so other identities) the market
    refuses as covered, with no alternative left.  Each refusal is a ledger entry; counted
    as news, b's and c's refusals had them ask each other again without end."""
    pool = routines(1)
    market, _ = make(tmp_path, pool=pool, rules=Rules(budgets_ms=(2000,)),
                     strategies=(Strategy("enumerate"),))
    for name, features in (("a", ("f",)), ("b", ()), ("c", ())):
        _join(market, name, features)
    e = experiment("r0", features=("f",))
    assert market.propose("a", e).accepted
    market.settle(e.identity, claim_for(market.routines[pool[0].id], Truth(10, 8, 6), 8,
                                        2000, 500))
    driver = Driver(market, _world(pool), present={"b", "c"})
    steps = 0
    while driver.step():
        steps += 1
        assert steps < 10, "the driver kept asking agents that had nothing left"
    assert {r["agent"] for r in market.state.refusals} == {"b", "c"}
    assert {r["reason"] for r in market.state.refusals} == {R.COVERED}


def test_every_routine_of_every_board_gets_a_first_search_before_any_is_searched_again(
        tmp_path):
    """Sampling alone repeats what paid and can leave a routine untried for a whole run;
    a routine no search answered for a board comes first (with sharing or without): a
    board searches a routine already answered for it only once all of them are, but (with
    sharing) for its first search of a routine only others' searches answered, which
    refines the program it took (Rules.refine_ms) with an arm none of those played."""
    pool = routines(6)
    everything = {r.id for r in pool}
    for sharing in (False, True):
        market, _ = make(tmp_path, name=f"{sharing}.db", sharing=sharing, pool=pool)
        _four_boards(market)
        Driver(market, _world(pool), limit_ms=200_000).run()
        done = market.state.done()
        for agent in market.state.agents.values():
            def answered(before: int, agent=agent, done=done, sharing=sharing) -> set[str]:
                """Routines a search finished before ledger index `before` answered for
                the agent: its own, or (sharing) one with its features and more whose
                program it can use."""
                return {e.experiment.routine for e in done if e.result < before
                        and (sharing or e.agent == agent.key)
                        and e.experiment.isa == agent.isa
                        and e.experiment.features >= agent.features
                        and e.features_used <= agent.features}
            own = [e for e in done if e.agent == agent.key]
            assert own
            for e in own:
                if e.experiment.routine not in answered(e.accepted):
                    continue
                earlier = [o for o in own if o.accepted < e.accepted
                           and o.experiment.routine == e.experiment.routine]
                if answered(e.accepted) != everything:
                    assert sharing and not earlier and e.experiment.cpu_ms == RULES.refine_ms
                    assert (e.experiment.strategy, e.experiment.params) not in {
                        (o.experiment.strategy, o.experiment.params) for o in done
                        if o.result < e.accepted and o.experiment.routine == e.experiment.routine
                        and o.experiment.isa == agent.isa
                        and o.experiment.features >= agent.features}
            assert answered(market.state.size) == everything


def test_a_routine_only_others_searched_gets_a_second_arm_from_the_program_taken(tmp_path):
    """With sharing, Haswell's enumerate answered r0 for q64 (8, a program without f,
    which q64 took): q64's first search of r0 is still due, refining that program
    (Rules.refine_ms) with stoke, the arm no search of r0 played; once made, finding
    nothing, r0 is answered.  Without sharing q64 sees no other search: r0 is its own
    first search on the ladder."""
    pool = routines(1)
    r0 = pool[0].id
    for sharing in (True, False):
        market, _ = make(tmp_path, name=f"{sharing}.db", pool=pool, sharing=sharing)
        _join(market, "haswell", ("f",))
        q64 = _join(market, "q64")
        e = experiment("r0", features=("f",))
        assert market.propose("haswell", e).accepted
        market.settle(e.identity, claim_for(market.routines[r0], Truth(10, 8, 6), 8, 2000, 0))
        assert market.first_searches(q64)[0] == {r0}
        second = market.suggest(q64)
        assert (second.strategy, second.cpu_ms) == (
            ("stoke", RULES.refine_ms) if sharing else (second.strategy, min(RULES.budgets_ms)))
        if sharing:
            assert r0 not in market.unexplored(q64)  # answered, by Haswell's search
            assert market.propose("q64", second).accepted
            market.settle(second.identity, claim_for(market.routines[r0], Truth(10, 8, 6), 8,
                                                     RULES.refine_ms, 0, start=8))
            assert market.first_searches(q64) == (set(), set())


def test_a_search_begins_where_its_board_is_and_that_start_is_no_news(tmp_path):
    """The runner is given the board's best proven program (its own, or adopted from
    another board with sharing) to start from; a result that began there does not put
    that program at the clock's 0 in the board's history, where it was not."""
    from market.report import best_history

    pool = routines(1)
    market, ledger = make(tmp_path, pool=pool)
    market.join("a", "a", "x86_64", frozenset(), 100.0)
    market.join("b", "b", "x86_64", frozenset({"f"}), 100.0)
    r0 = pool[0].id
    world = World({r0: Truth(start=10, base=8, best=6)}, {("stoke", "hd"): 1.0,
                                                          ("enumerate", "hd"): 1.0})
    # b is away at first (the market would let b, with more features, search first)
    Driver(market, world, present={"a"}).step()  # a: 10 -> 8 in 2 s; b adopts 8
    assert world.begun == [None] and market.state.best_of("b", r0).adopted
    driver = Driver(market, world)
    driver.step()  # b: a's search lacked f, so r0 is b's to explore, from the 8 it holds
    # a first search from another board's program is staked at the refining budget (1 s:
    # one step of the synthetic search), not the ladder's first rung (2 s)
    assert market.state.experiments[world.runs[1]].experiment.cpu_ms == RULES.refine_ms
    assert world.begun == [None, 8] and market.state.best_of("b", r0).instructions == 7
    history = best_history((i, json.loads(raw)) for i, raw in ledger.entries())
    assert history[("a", r0)][0] == (0, 10, "start")
    assert [(n, how) for _, n, how in history[("b", r0)]] == [(8, "adopted"), (7, "found")]
    assert history[("b", r0)][0][0] > 0


def test_a_refining_search_that_finds_nothing_leaves_the_first_search_due(tmp_path):
    """A first search from another board's program is staked at the refining budget once;
    if it finds nothing shorter, the routine's first search on the ladder is still the
    board's to make, and comes first."""
    pool = routines(1)
    market, _ = make(tmp_path, pool=pool)
    market.join("a", "a", "x86_64", frozenset(), 100.0)
    market.join("b", "b", "x86_64", frozenset({"f"}), 100.0)
    r0 = pool[0].id
    # the strategies never progress: every search ends where it began
    world = World({r0: Truth(start=10, base=8, best=6)}, {})
    e = experiment("r0")
    market.propose("a", e)
    market.settle(e.identity, claim_for(market.routines[r0], Truth(10, 8, 6), 8, 2000, 0))
    b = market.state.agents["b"]
    assert market.state.best_of("b", r0).adopted and market.refining(b) == {r0}
    Driver(market, world, present={"b"}).step()
    refined = market.state.experiments[world.runs[-1]]
    assert refined.experiment.cpu_ms == RULES.refine_ms and refined.outcome == R.NONE
    assert r0 in market.unexplored(b) and market.refining(b) == set()
    assert market.suggest(b).cpu_ms == min(RULES.budgets_ms)


@pytest.mark.parametrize("sharing", [True, False])
def test_a_strategy_that_found_nothing_on_a_routine_yields_it_to_one_untried_there(
        tmp_path, sharing):
    """A search is nearly a function of its strategy and beginning, so the same strategy
    again from where its last search left the routine mostly finds nothing: after
    `enumerate` improved r0 twice, Thompson sampling draws it again for r0 on some seeds;
    once its last search of r0 found nothing, every draw gives r0 to `stoke`, which has
    not tried it."""
    pool = routines(1)
    truth = Truth(start=10, base=4, best=4)
    picks: dict[bool, Counter] = {}
    for failed in (False, True):
        picks[failed] = Counter()
        for seed in range(20):
            market, _ = make(tmp_path, pool=pool, sharing=sharing, seed=seed)
            market.join("a", "a", "x86_64", frozenset(), 100.0)
            routine = market.routines[pool[0].id]
            # the ladder's last rung (8 s) is left for enumerate either way
            runs = [(2000, 8), (4000, 8 if failed else 7)]
            for cpu_ms, instructions in runs:
                e = experiment("r0", cpu_ms=cpu_ms)
                assert market.propose("a", e).accepted
                market.settle(e.identity, claim_for(routine, truth, instructions, cpu_ms, 500))
            picks[failed][market.suggest(market.state.agents["a"]).strategy] += 1
    assert picks[False]["enumerate"] > 0
    assert picks[True] == Counter({"stoke": 20})


def test_a_search_with_fewer_features_has_not_tried_the_routine_for_a_richer_board(tmp_path):
    """With sharing, q (no f) searched r0 with stoke; b (f) searched it twice with
    enumerate, the second finding nothing: stoke has not tried r0 with f, so b's next
    search of r0 is stoke's, on every seed (a program with f is one q's search could not
    find)."""
    pool = routines(1)
    truth = Truth(start=10, base=8, best=4)
    picks = Counter()
    for seed in range(20):
        market, _ = make(tmp_path, pool=pool, seed=seed)
        market.join("q", "q", "x86_64", frozenset(), 100.0)
        market.join("b", "b", "x86_64", frozenset({"f"}), 100.0)
        routine = market.routines[pool[0].id]
        q_stoke = experiment("r0", strategy="stoke", params={"iterations": 1000})
        assert market.propose("q", q_stoke).accepted
        market.settle(q_stoke.identity, claim_for(routine, truth, 8, 2000, 500))
        for cpu_ms, instructions in ((2000, 7), (4000, 7)):
            e = experiment("r0", features=("f",), cpu_ms=cpu_ms)
            assert market.propose("b", e).accepted
            market.settle(e.identity, claim_for(routine, truth, instructions, cpu_ms, 500))
        picks[market.suggest(market.state.agents["b"]).strategy] += 1
    assert picks == Counter({"stoke": 20})


def test_a_richer_boards_search_that_ended_on_its_feature_says_nothing_of_the_others_pair(
        tmp_path):
    """q (no f) holds 8 for r0 from its own enumerate; Haswell (f) reached 6 with f, then
    enumerate again from there found nothing shorter.  That failure is about Haswell's 6,
    not q's 8: q's next search of r0 may be enumerate again (Thompson draws it on some
    seeds), not always the arm that has not tried r0."""
    pool = routines(1)
    truth = Truth(start=10, base=8, best=6)
    picks = Counter()
    for seed in range(20):
        market, _ = make(tmp_path, pool=pool, seed=seed)
        _join(market, "hw", ("f",))
        _join(market, "q")
        routine = market.routines[pool[0].id]
        runs = [("q", (), 2000, 8, None), ("hw", ("f",), 2000, 6, None),
                ("hw", ("f",), 4000, 6, 6)]
        for agent, features, cpu_ms, instructions, start in runs:
            e = experiment("r0", features=features, cpu_ms=cpu_ms)
            assert market.propose(agent, e).accepted
            market.settle(e.identity, claim_for(routine, truth, instructions, cpu_ms, 500,
                                                start=start))
        assert market.state.best_of("q", routine.id).instructions == 8
        picks[market.suggest(market.state.agents["q"]).strategy] += 1
    assert picks["enumerate"] > 0


def test_an_arm_is_a_strategy_with_its_parameters(tmp_path):
    """STOKE at 1,000 iterations and at 5,000 are two arms: after enumerate and STOKE at
    5,000 each searched r0 last without finding anything shorter, r0's next search is
    STOKE at 1,000, the one arm that has not tried it, on every seed (counting strategies,
    STOKE would have tried it, and the posterior's draws would pick among all three)."""
    pool = routines(1)
    truth = Truth(start=10, base=8, best=4)
    strategies = (Strategy("stoke", ((("iterations", 1000),), (("iterations", 5000),))),
                  Strategy("enumerate"))
    picks = Counter()
    for seed in range(20):
        market, _ = make(tmp_path, pool=pool, seed=seed, strategies=strategies)
        market.join("a", "a", "x86_64", frozenset(), 100.0)
        routine = market.routines[pool[0].id]
        runs = [("enumerate", None, 2000, 8), ("stoke", {"iterations": 5000}, 2000, 8),
                ("enumerate", None, 4000, 8)]
        for strategy, params, cpu_ms, instructions in runs:
            e = experiment("r0", strategy=strategy, params=params, cpu_ms=cpu_ms)
            assert market.propose("a", e).accepted
            market.settle(e.identity, claim_for(routine, truth, instructions, cpu_ms, 500))
        pick = market.suggest(market.state.agents["a"])
        picks[pick.strategy, pick.params] += 1
    assert picks == Counter({("stoke", (("iterations", 1000),)): 20})


LEARNING = Rules(budgets_ms=(4000, 8000), settle_margin=2.0, settle_floor_ms=1000,
                 settle_step_ms=1000)


def _settled(market, agent: str, routine: RoutineInfo, *, instructions: int, settled_ms: int,
             cpu_ms: int = 4000, isa: str = "x86_64", features=(), begun: bool = False,
             strategy: str = "enumerate") -> Experiment:
    """An experiment of `agent` accepted and settled by hand: its search reached
    `instructions` `settled_ms` into its CPU (from the engine's start, or from the board's
    best when `begun`)."""
    e = experiment(routine.name, features, strategy=strategy, cpu_ms=cpu_ms, isa=isa,
                   params={"iterations": 1000} if strategy == "stoke" else None)
    assert market.propose(agent, e).accepted
    truth = Truth(10, 8, 6)
    start = 9 if begun else None
    market.settle(e.identity, claim_for(routine, truth, instructions, cpu_ms, settled_ms,
                                        start=start))
    return e


@pytest.mark.parametrize("sharing", [True, False])
def test_a_first_search_is_staked_at_what_searches_of_the_routine_took_to_settle(
        tmp_path, sharing):
    """Board a's search of r0 reached its program 1.5 s into its 4 s: board b (the other
    ISA) stakes its first search of r0 at twice that, rounded up (3 s) instead of the
    ladder's 4 s, with sharing; without, b sees no search of r0 but its own and stakes
    the ladder.  A routine no search has settled (r1) is the ladder's for both."""
    pool = routines(2)
    market, ledger = make(tmp_path, pool=pool, rules=LEARNING, sharing=sharing)
    market.join("a", "a", "x86_64", frozenset(), 100.0)
    market.join("b", "b", "riscv64", frozenset(), 100.0)
    _settled(market, "a", pool[0], instructions=8, settled_ms=1500)
    b = market.state.agents["b"]
    assert ledger.record(market.state.experiments[market.state.order[0]].result)[
        "settled_ms"] == 1500
    first = {e.routine: e.cpu_ms for e in market.candidates(b)}
    assert first == {pool[0].id: 3000 if sharing else 4000, pool[1].id: 4000}
    assert market.learned_budget(b, pool[0].id) == (3000 if sharing else None)


def test_the_learned_budget_counts_searches_from_the_engines_start_on_the_ladder(tmp_path):
    """Evidence is the longest settle time of the searches of the routine that were staked
    on the ladder and began from the engine's starts: a refining search (below the ladder)
    and one begun from its board's best say nothing of how long the routine takes; twice
    the longest at least the ladder's first rung is the ladder."""
    pool = routines(1)
    market, _ = make(tmp_path, pool=pool, rules=LEARNING)
    for key in "abcd":
        market.join(key, key, "x86_64", frozenset({key}), 100.0)
    r0 = pool[0].id
    _settled(market, "a", pool[0], instructions=8, settled_ms=200, features=("a",))
    assert market.learned_budget(market.state.agents["d"], r0) == 1000  # the floor
    _settled(market, "b", pool[0], instructions=8, settled_ms=3000, features=("b",),
             cpu_ms=2000)  # below the ladder: cut at its budget
    _settled(market, "c", pool[0], instructions=8, settled_ms=3500, features=("c",),
             begun=True)  # from its board's best
    assert market.learned_budget(market.state.agents["d"], r0) == 1000
    _settled(market, "c", pool[0], instructions=8, settled_ms=1200, features=("c",),
             strategy="stoke")
    assert market.learned_budget(market.state.agents["d"], r0) == 3000  # 2.4 s, rounded up
    _settled(market, "b", pool[0], instructions=8, settled_ms=2000, features=("b",))
    assert market.learned_budget(market.state.agents["d"], r0) is None  # 4 s: the ladder


def test_a_first_search_at_the_learned_budget_answers_the_routine_for_its_board(tmp_path):
    """A first search staked at the learned budget, below the ladder, is the board's first
    search whatever it finds (unlike a refining one): the routine is explored, and the
    board's next search of it is on the ladder."""
    pool = routines(1)
    market, _ = make(tmp_path, pool=pool, rules=LEARNING)
    market.join("a", "a", "x86_64", frozenset(), 100.0)
    market.join("b", "b", "riscv64", frozenset(), 100.0)
    r0 = pool[0].id
    _settled(market, "a", pool[0], instructions=8, settled_ms=1000)
    b = market.state.agents["b"]
    (first,) = market.candidates(b, own_only=True)[:1]
    assert first.cpu_ms == 2000 and r0 in market.unexplored(b)
    # the strategies never progress: the search ends on the engine's start
    Driver(market, World({r0: Truth(start=10, base=8, best=6)}, {}), present={"b"}).step()
    (done,) = [e for e in market.state.done() if e.agent == "b"]
    assert done.experiment.cpu_ms == 2000 and done.outcome == R.NONE and not done.begun
    assert r0 not in market.unexplored(b)
    assert {e.cpu_ms for e in market.candidates(b)} == {4000}


def test_a_board_holds_its_start_once_the_search_that_proved_it_has(tmp_path):
    """CPU-seconds to reach a count include proving it: a start the engine proved 1.5 s
    into a search that began at the market's 4 s is the board's at 5.5 s, not at 0."""

    from market.report import best_history

    pool = routines(2)
    market, ledger = make(tmp_path, pool=pool)
    _join(market, "a")
    truth = Truth(start=10, base=8, best=6)
    first, second = experiment("r1"), experiment("r0")
    market.propose("a", first)
    market.settle(first.identity, claim_for(market.routines[first.routine], truth, 9, 4000,
                                            3000))
    assert market.state.clock == 4000 + SyntheticVerifier().cpu_ms  # its check
    started = market.state.clock
    market.propose("a", second)
    routine = market.routines[second.routine]
    claim = dataclasses.replace(claim_for(routine, truth, 10, 2000, 0), start_ms=1500)
    market.settle(second.identity, claim, started=started)
    history = best_history((i, json.loads(raw)) for i, raw in ledger.entries())
    assert history[("a", routine.id)] == [(started + 1500, 10, "start")]
    assert market.state.best_of("a", routine.id).t == started + 1500


def test_with_sharing_a_board_leaves_first_searches_to_a_board_with_more_features(tmp_path):
    """A search with more features may answer a routine for the board without them too
    (a program that does not use them), never the other way round: with sharing, a board
    takes first the routines such a board (same ISA) has searched already, and the others
    once none of those is left."""
    pool = routines(6)
    r1 = pool[1].id
    chosen = set()
    for seed in range(8):
        market, _ = make(tmp_path, seed=seed, pool=pool)
        _join(market, "haswell", ("f",))
        q64 = _join(market, "q64")
        # haswell searched r1 and found a program that uses f: r1 is still q64's to search
        e = experiment("r1", features=("f",))
        market.propose("haswell", e)
        market.settle(e.identity, claim_for(market.routines[r1], Truth(10, 8, 6), 7, 2000, 0))
        assert market.unexplored(q64) == {r.id for r in pool}
        assert market.suggest(q64).routine == r1
        # r1 set aside, the routines haswell has yet to search are next
        mine = market.suggest(q64, exclude=[x.identity for x in market.candidates(q64)
                                            if x.routine == r1])
        chosen.add(mine.routine)
    assert len(chosen) > 1  # among those, sampling still decides


def test_a_board_with_no_first_search_of_its_own_lets_one_that_has_go_first(tmp_path):
    """With sharing, a board whose routines all wait for a board with more features
    (whose search may answer them for both) gives its turn to that board, though it is
    further below its share of the CPU; without sharing nothing waits."""
    pool = routines(3)
    for sharing in (True, False):
        market, _ = make(tmp_path, name=f"{sharing}.db", sharing=sharing, pool=pool)
        market.join("atom", "atom", "x86_64", frozenset(), 100.0)  # first by name, alone
        market.join("zen", "zen", "x86_64", frozenset({"f"}), 100.0)
        assert market.next_agent().key == ("zen" if sharing else "atom")
    # zen's search of r0 ends on a program using f: r0 is atom's to search now
    e = experiment("r0", features=("f",))
    market, _ = make(tmp_path, name="again.db", pool=pool)
    market.join("atom", "atom", "x86_64", frozenset(), 100.0)
    market.join("zen", "zen", "x86_64", frozenset({"f"}), 100.0)
    market.propose("zen", e)
    market.settle(e.identity, claim_for(market.routines[e.routine], Truth(10, 8, 6), 7, 2000, 0))
    atom = market.state.agents["atom"]
    assert market.first_searches(atom) == ({e.routine}, {pool[1].id, pool[2].id})
    # zen has routines no board has searched, whose results may reach atom: those first
    assert market.fresh() == {pool[1].id, pool[2].id} and market.next_agent().key == "zen"
    for name in ("r1", "r2"):
        e = experiment(name, features=("f",))
        market.propose("zen", e)
        market.settle(e.identity, claim_for(market.routines[e.routine], Truth(10, 8, 6), 7,
                                            2000, 0))
    assert market.first_searches(atom) == ({r.id for r in pool}, set())
    assert market.next_agent().key == "atom"


def test_a_board_does_not_wait_on_a_richer_board_that_will_not_search(tmp_path):
    """A board leaves a routine to a board of its ISA with more features only while that
    board will search it: not once it holds the routine at the floor, which it searches
    no more (adopted from a third board whose program it can run), nor while it is away."""
    pool = routines(2)
    r0 = pool[0].id
    market, _ = make(tmp_path, pool=pool)
    atom = _join(market, "atom")
    _join(market, "zen", ("f", "g"))
    _join(market, "mid", ("g",))
    assert market.first_searches(atom) == (set(), {r0, pool[1].id})  # zen first
    # mid's search ends on a 2-instruction program using g: zen adopts it, at the floor
    e = experiment("r0", features=("g",))
    market.propose("mid", e)
    market.settle(e.identity, claim_for(market.routines[r0], Truth(10, 8, 2, "g"), 2, 2000, 0))
    assert market.state.best_of("zen", r0).instructions == market.rules.floor
    assert market.state.best_of("atom", r0) is None  # without g, atom cannot run it
    assert market.first_searches(atom) == ({r0}, {pool[1].id})
    # boards away are no reason to wait either: mid's r1 is zen's too, then no one's
    market.here.discard("mid")
    assert market.first_searches(atom) == ({r0}, {pool[1].id})
    market.here.discard("zen")
    assert market.first_searches(atom) == ({r0, pool[1].id}, set())


def test_with_sharing_routines_no_board_has_searched_come_first(tmp_path):
    """A routine one ISA's board has searched reaches the other ISA's boards as a
    translation before they search it: with sharing, a board of the other ISA takes the
    routines no board has searched first; without sharing, every routine of its own is as
    new to it as any other."""
    pool = routines(6)
    for sharing in (True, False):
        chosen = set()
        for seed in range(8):
            market, _ = make(tmp_path, name=f"{sharing}{seed}.db", seed=seed, pool=pool,
                             sharing=sharing)
            _join(market, "x86")
            rv = _join(market, "rv", isa="riscv64")
            for name in ("r0", "r1", "r2", "r3"):
                e = experiment(name)
                market.propose("x86", e)
                market.settle(e.identity, claim_for(market.routines[e.routine],
                                                    Truth(10, 8, 6), 9, 2000, 0))
            assert market.fresh() == ({pool[4].id, pool[5].id} if sharing else set())
            chosen.add(market.suggest(rv).routine)
        searched = {r.id for r in pool[:4]}
        assert (chosen & searched == set()) == sharing


def test_a_program_a_board_could_not_take_answers_nothing_for_it(tmp_path):
    """A search with more features that ends on a program without them answers the
    routine for the board without them, if that board's own check takes the program; if
    its check refuses it, the routine is still that board's to search."""

    class Refusing(SyntheticVerifier):
        def check(self, agent, routine, artifact, code):
            if agent.key == "q64":
                return AdoptionCheck(False, "synthetic: this board's check failed", 10)
            return super().check(agent, routine, artifact, code)

    pool = routines(2)
    for verifier, answered in ((SyntheticVerifier(), True), (Refusing(), False)):
        market, _ = make(tmp_path, pool=pool, verifier=verifier)
        _join(market, "haswell", ("f",))
        q64 = _join(market, "q64")
        e = experiment("r0", features=("f",))
        market.propose("haswell", e)
        market.settle(e.identity, claim_for(market.routines[e.routine], Truth(10, 8, 6), 8,
                                            2000, 0))
        assert (e.routine not in market.unexplored(q64)) == answered
        assert (market.state.best_of("q64", e.routine) is not None) == answered


@pytest.mark.parametrize("sharing", [True, False])
def test_searches_are_handed_the_counterexamples_of_the_experiments_their_board_sees(
        tmp_path, sharing):
    pool = routines(2)
    market, _ = make(tmp_path, sharing=sharing, pool=pool)
    _join(market, "a", credits=1000)
    _join(market, "b", credits=1000)
    _join(market, "rv", credits=1000, isa="riscv64")
    world = _world(pool)
    a = market.state.agents["a"]
    e = market.suggest(a)
    market.propose("a", e)
    claim = world.run(a, market.routines[e.routine], e)
    assert claim.counterexamples  # the synthetic search improved, and met a wrong candidate
    market.settle(e.identity, claim)
    met = tuple(dict(v) for v in claim.counterexamples)
    assert market.counterexamples_for("a", e.routine) == met
    # the other x86-64 board: only when the market shares; the riscv64 board never (its
    # vectors are another ISA's machine states)
    assert market.counterexamples_for("b", e.routine) == (met if sharing else ())
    assert market.counterexamples_for("rv", e.routine) == ()
    assert market.counterexamples_for("a", pool[1].id if e.routine == pool[0].id
                                      else pool[0].id) == ()
    # the ledger holds them: a market replayed from it hands out the same
    replayed = Market(Book(market.book.ledger), pool, STRATEGIES,
                      SyntheticVerifier(), rules=RULES, sharing=sharing)
    assert replayed.counterexamples_for("b", e.routine) == (met if sharing else ())


def test_the_driver_hands_each_search_what_its_board_may_know(tmp_path):
    pool = routines(4)
    handed = {}
    for sharing in (True, False):
        market, _ = make(tmp_path, name=f"{sharing}.db", sharing=sharing, pool=pool)
        _four_boards(market)
        world = _world(pool)
        Driver(market, world, limit_ms=200_000).run()
        handed[sharing] = sum(world.handed)
        assert len(world.handed) == len(world.runs)
    assert handed[True] > handed[False] > 0
