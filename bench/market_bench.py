"""Market figures, each beside its alternative measured in the same run:

  sharing      the four boards (qemu64, Haswell, rv64, rv64 without Zb*) evolving
               p01-p25 and sort3-5 on the evolution engine, once with sharing and once
               without (--no-sharing: each board sees only its own experiments and adopts
               nothing), same seed, same CPU budget, one run each, one after the other.
               "CPU-seconds to reach": the market clock (CPU of searches, proof checks and
               guest runs, all boards together) at which every (board, routine) had reached
               the best instruction count the run without sharing ended with.  Goal: with
               sharing at most half of without.  Also: redundant experiments (goal 0 with
               sharing), refusals, adoptions, and where each run's bests differ.
  allocation   a synthetic routine class (25 routines) and three strategies of known
               chance of progress per CPU-second (0.6, 0.08, 0.04), 30 experiments of
               2 s each: the best strategy's share of the CPU, over many worlds and seeds;
               beside plain Bernoulli Thompson sampling on the same chances per experiment,
               and a fixed split (1/3).  Goal: >= 70%.

    .venv/bin/python bench/market_bench.py [--seconds N] [--runs N] [--skip-boards]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from cli.market import MarketOptions, run_market
from market.driver import Driver
from market.market import Book, Market, RoutineInfo, Rules, Strategy
from market.report import best_history, market_records, time_to_reach
from stores.ledger import Ledger
from testing.market_world import SyntheticVerifier, Truth, World, routine_id

QUALITY = {"good": 0.6, "fair": 0.08, "poor": 0.04}  # chance of progress per CPU-second
EXPERIMENT_S = 2


def allocation_share(seed: int, directory: Path) -> float:
    pool = [RoutineInfo(routine_id(f"r{i}"), f"r{i}", "hd") for i in range(25)]
    truths = {r.id: Truth(start=14, base=4, best=4) for r in pool}
    quality = {(name, "hd"): p for name, p in QUALITY.items()}
    market = Market(Book(Ledger.open(directory / f"alloc{seed}.db")), pool,
                    [Strategy(n) for n in QUALITY], SyntheticVerifier(),
                    rules=Rules(budgets_ms=(EXPERIMENT_S * 1000, 4000, 8000)), seed=seed)
    market.join("a", "a", "x86_64", frozenset(), 10_000.0)
    driver = Driver(market, World(truths, quality, seed))
    for _ in range(30):
        driver.step()
    cpu = Counter()
    for e in market.state.done():
        cpu[e.experiment.strategy] += e.cpu_ms
    return cpu["good"] / sum(cpu.values())


def bernoulli_thompson_share(seed: int) -> float:
    """Plain Thompson sampling over Beta(1 + r, 1 + s) per strategy, on the chance that a
    2-s experiment makes progress: the textbook baseline."""
    chances = {n: 1 - (1 - p) ** EXPERIMENT_S for n, p in QUALITY.items()}
    rng = random.Random(seed)
    wins, losses, pulls = Counter(), Counter(), Counter()
    for _ in range(30):
        name = max(chances, key=lambda n: rng.betavariate(1 + wins[n], 1 + losses[n]))
        pulls[name] += 1
        if rng.random() < chances[name]:
            wins[name] += 1
        else:
            losses[name] += 1
    return pulls["good"] / 30


def allocation(runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        shares = sorted(allocation_share(seed, Path(directory)) for seed in range(runs))
        seconds = time.perf_counter() - started
    plain = sorted(bernoulli_thompson_share(seed) for seed in range(runs))

    def row(name: str, values: list[float]) -> str:
        tenth = values[len(values) // 10]
        at_least = sum(v >= 0.70 for v in values) / len(values)
        return (f"  {name:<34} mean {statistics.mean(values):5.1%}  10th pct {tenth:5.1%}  "
                f"runs >= 70%: {at_least:5.1%}")

    print(f"strategy allocation after 30 experiments, {runs} worlds and seeds "
          f"({seconds:.1f} s):")
    print(row("market (hierarchical Thompson)", shares))
    print(row("plain Bernoulli Thompson sampling", plain))
    print(f"  {'fixed split':<34} {1 / 3:5.1%}")


def boards(seconds: float, seed: int) -> None:
    docs, histories = {}, {}
    with tempfile.TemporaryDirectory() as directory:
        for sharing in (False, True):
            db = str(Path(directory) / f"market-{sharing}.db")
            started = time.perf_counter()
            doc = run_market(MarketOptions(seconds=seconds, sharing=sharing, seed=seed, db=db))
            doc["wall_seconds"] = time.perf_counter() - started
            entries = [(i, json.loads(raw)) for i, raw in Ledger.open(db).entries()]
            docs[sharing] = doc
            histories[sharing] = best_history(market_records(entries))
            Path(f"build/market-{'sharing' if sharing else 'no-sharing'}.json").parent.mkdir(
                exist_ok=True)
            Path(f"build/market-{'sharing' if sharing else 'no-sharing'}.json").write_text(
                json.dumps(doc, indent=2))
    isolated = {k: steps[-1][1] for k, steps in histories[False].items()}
    t_isolated = time_to_reach(histories[False], isolated)
    t_shared = time_to_reach(histories[True], isolated)
    print(f"four boards, p01-p25 and sort3-5, {seconds:.0f} CPU-seconds per run, seed {seed}:")
    print(f"  {'':<44} {'no sharing':>12} {'sharing':>12}")
    for label, key in (("experiments done", "done"), ("refused proposals", "refused"),
                       ("improvements found", "improvements"), ("adoptions", "adopted"),
                       ("claims refuted", "refuted")):
        print(f"  {label:<44} {docs[False]['counts'][key]:>12} {docs[True]['counts'][key]:>12}")
    print(f"  {'redundant experiments (goal 0 with sharing)':<44} "
          f"{docs[False]['redundant_experiments']:>12} {docs[True]['redundant_experiments']:>12}")
    print(f"  {'wall seconds':<44} {docs[False]['wall_seconds']:>12.0f} "
          f"{docs[True]['wall_seconds']:>12.0f}")
    shared_text = f"{t_shared / 1000:.1f}" if t_shared is not None else "never"
    print(f"  {'CPU-s to every best count of no sharing':<44} {t_isolated / 1000:>12.1f} "
          f"{shared_text:>12}")
    if t_shared is not None and t_isolated:
        print(f"  sharing / no sharing: {t_shared / t_isolated:.2f} (goal <= 0.50)")
    boards_of = {k: a["board"] for k, a in docs[False]["agents"].items()}
    shared_final = {k: steps[-1][1] for k, steps in histories[True].items()}
    better = sorted((boards_of[k[0]], n, shared_final.get(k)) for k, n in isolated.items()
                    if shared_final.get(k, 10**9) < n)
    worse = sorted((boards_of[k[0]], n, shared_final.get(k)) for k, n in isolated.items()
                   if shared_final.get(k, 10**9) > n)
    print(f"  (board, routine) bests: sharing shorter on {len(better)}, longer or missing on "
          f"{len(worse)}, of {len(isolated)}; reports in build/market-*.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-boards", action="store_true")
    args = parser.parse_args()
    allocation(args.runs)
    if not args.skip_boards:
        boards(args.seconds, args.seed)


if __name__ == "__main__":
    main()
