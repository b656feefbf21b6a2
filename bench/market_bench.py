"""Market figures, each beside its alternative measured in the same run:

  sharing      the four boards (qemu64, Haswell, rv64, rv64 without Zb*) evolving
               p01-p25 and sort3-5 on the evolution engine, once with sharing and once
               without (--no-sharing: each board sees only its own experiments and adopts
               nothing), same seed, same CPU budget, one run each, one after the other.
               "CPU-seconds to reach": the market clock (CPU of searches, proof checks and
               guest runs, all boards together) at which every (board, routine) had reached
               the best instruction count the run without sharing ended with, in each run
               (a pair holds a program from when a search proved it, or its board's check
               of another board's program ended); the figure is sharing's clock over no
               sharing's.  Goal: with sharing at most half of without (<= 0.5x).
               Also: redundant experiments (goal 0 with sharing), refusals, adoptions,
               the CPU-seconds to the counts both runs reached (per pair the longer of the
               two finals), how many (board, routine) pairs each run had improved by each
               quarter of the budget, and where the final counts differ.
  allocation   a synthetic routine class (25 routines) and three strategies of known
               chance of progress per CPU-second (0.6, 0.08, 0.04), 30 experiments of
               2 s each: the best strategy's share of the CPU, over many worlds and seeds;
               beside plain Bernoulli Thompson sampling on the same chances per experiment,
               and a fixed split (1/3).  Goal: >= 70%.

  --quick      the same comparison on five routines (QUICK_ROUTINES) for QUICK_SECONDS per
               run, and 30 allocation worlds: a few minutes instead of most of an hour.

    .venv/bin/python bench/market_bench.py [--quick] [--seconds N] [--routines p01,...]
        [--runs N] [--seed N] [--skip-boards] [--reports DIR] [--compare]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.progress import ProgressLine
from cli.market import MarketOptions, run_market
from market import records as R
from market.driver import Driver, Step
from market.market import Book, Market, RoutineInfo, Rules, Strategy
from market.report import time_to_reach
from stores.ledger import Ledger
from testing.market_world import SyntheticVerifier, Truth, World, routine_id

REPORTS = {False: "market-no-sharing.json", True: "market-sharing.json"}  # in --reports DIR
QUALITY = {"good": 0.6, "fair": 0.08, "poor": 0.04}  # chance of progress per CPU-second
EXPERIMENT_S = 2
QUICK_ROUTINES = ("p01", "p03", "p16", "p22", "sort3")
QUICK_SECONDS = 150.0
QUICK_RUNS = 30


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


def histories_of(doc: dict) -> dict[tuple[str, str], list]:
    """(agent, routine) -> [(t ms, instructions, how)] from a report's best rows."""
    return {(row["agent"], row["routine"]): [(round(t * 1000), n, how) for t, n, how
                                             in row["steps"]] for row in doc["best"]}


def improved(history: dict, limit_ms: float) -> int:
    return sum(1 for steps in history.values()
               if any(t <= limit_ms and how != "start" for t, _, how in steps))


def pair_times(history: dict, targets: dict) -> list[float] | None:
    """Per (board, routine), the market clock (s) at which it first reached its target."""
    out = []
    for key, target in targets.items():
        when = next((t for t, n, _ in history.get(key, ()) if n <= target), None)
        if when is None:
            return None
        out.append(when / 1000)
    return out


def own_searches(doc: dict, history: dict, targets: dict) -> tuple[int, float]:
    """(pairs, CPU-s): the pairs that first reached their target through a search of their
    own board (its program found, or its start proven, not another board's adopted), and
    the CPU their board's experiments on the routine used up to and including the one
    that got there, less what the last of those used after it got there.  As long as a
    search runs to its budget (no one knows sooner that it has found its best), the clock
    at which the last pair reaches its target is at least this, however the market orders
    its work (adoptions' checks come on top)."""
    pairs, cpu, after = 0, 0.0, 0.0
    for key, target in targets.items():
        step = next((s for s in history.get(key, ()) if s[1] <= target), None)
        if step is None or step[2] == "adopted":
            continue
        pairs += 1
        for e in doc["experiments"]:
            if (e["agent"], e["routine"]) != key:
                continue
            cpu += e["cpu_used_seconds"]
            if e["instructions"] is not None and e["instructions"] <= target:
                after = max(after, e["cpu_used_seconds"] - (e["settled_seconds"] or 0.0))
                break
    return pairs, cpu - after


def compare(docs: dict[bool, dict]) -> None:
    """Print the two runs side by side (docs: sharing -> report)."""
    histories = {sharing: histories_of(doc) for sharing, doc in docs.items()}
    names = {row["routine"]: row["routine_name"] for doc in docs.values() for row in doc["best"]}
    seconds, seed = docs[True]["budget_seconds"], docs[True]["seed"]
    isolated = {k: steps[-1][1] for k, steps in histories[False].items()}
    t_isolated = time_to_reach(histories[False], isolated)
    t_shared = time_to_reach(histories[True], isolated)
    # the counts both runs reached: per (board, routine) the longer of the two finals
    common = {k: max(n, histories[True][k][-1][1]) for k, n in isolated.items()
              if k in histories[True]}
    c_isolated = time_to_reach(histories[False], common)
    c_shared = time_to_reach(histories[True], common)
    boards = sorted({a["board"] for a in docs[True]["agents"].values()})
    routines = sorted(set(names.values()))
    print(f"{len(boards)} boards ({', '.join(boards)}), {len(routines)} routines "
          f"({', '.join(routines)}), {seconds:.0f} CPU-seconds per run, seed {seed}:")
    print(f"  {'':<52} {'no sharing':>11} {'sharing':>16}")

    def line(label: str, a: object, b: object) -> None:
        print(f"  {label:<52} {a!s:>11} {b!s:>16}")

    for label, key in (("experiments done", "done"), ("refused proposals", "refused"),
                       ("improvements found", "improvements"), ("adoptions", "adopted"),
                       ("claims refuted", "refuted")):
        line(label, docs[False]["counts"][key], docs[True]["counts"][key])
    line("redundant experiments (goal 0 with sharing)", docs[False]["redundant_experiments"],
         docs[True]["redundant_experiments"])
    if "wall_seconds" in docs[True]:
        line("wall seconds", f"{docs[False]['wall_seconds']:.0f}",
             f"{docs[True]['wall_seconds']:.0f}")
    line("(board, routine) pairs with a proven program", len(histories[False]),
         len(histories[True]))
    for fraction in (0.25, 0.5, 0.75, 1.0):
        limit = fraction * seconds * 1000
        line(f"pairs improved on their start by {fraction * seconds:.0f} CPU-s",
             improved(histories[False], limit), improved(histories[True], limit))

    def secs(ms: int | None) -> str:
        return "never" if ms is None else f"{ms / 1000:.1f}"

    def shared_secs(ms: int | None, alone: int | None) -> str:
        """Sharing's clock, and its ratio to no sharing's (the goal's figure)."""
        if ms is None or not alone:
            return secs(ms)
        return f"{ms / 1000:.1f} ({ms / alone:.2f}x)"

    # as many pairs improved on their start as no sharing improved by its end: the fleet's
    # progress in one number, whichever pairs they are
    firsts = {sharing: sorted(next(t for t, _, how in steps if how != "start")
                              for steps in histories[sharing].values()
                              if any(how != "start" for _, _, how in steps))
              for sharing in (False, True)}
    count = len(firsts[False])
    reached = {s: firsts[s][count - 1] if count and len(firsts[s]) >= count else None
               for s in (False, True)}
    line(f"CPU-s until {count} pairs were improved (no sharing's final)",
         secs(reached[False]), shared_secs(reached[True], reached[False]))
    line("CPU-s to every final count of no sharing (goal: <= 0.5x)", secs(t_isolated),
         shared_secs(t_shared, t_isolated))
    # the floor under the strict figure: what the pairs that got there by their own search
    # spent on it, in each run (sharing's ratio is over no sharing's strict figure)
    floors = {s: own_searches(docs[s], histories[s], isolated) for s in (False, True)}
    line("  its floor: the CPU-s of the searches pairs needed (pairs)",
         f"{floors[False][1]:.1f} ({floors[False][0]})",
         f"{shared_secs(round(floors[True][1] * 1000), t_isolated)} ({floors[True][0]})")
    # the clock at which the last pair got there is one pair's luck; per pair, the clock
    # at which it reached the same target shows the whole fleet
    per_pair = {sharing: pair_times(histories[sharing], isolated) for sharing in (False, True)}
    for name, stat in (("mean", statistics.mean), ("median", statistics.median)):
        line(f"  per pair, the {name} CPU-s to it", *(
            "never" if per_pair[s] is None else f"{stat(per_pair[s]):.1f}" for s in (False, True)))
    line(f"CPU-s to the counts both reached ({len(common)} pairs)", secs(c_isolated),
         shared_secs(c_shared, c_isolated))
    boards_of = {k: a["board"] for k, a in docs[False]["agents"].items()}
    final = {k: steps[-1][1] for k, steps in histories[True].items()}
    better = sum(1 for k, n in isolated.items() if k in final and final[k] < n)
    worse = sorted(f"{boards_of[k[0]]}:{names[k[1]]} {n}->{final.get(k, '-')}"
                   for k, n in isolated.items() if final.get(k, 10**9) > n)
    print(f"  final counts, sharing vs no sharing: shorter on {better}, longer or missing on "
          f"{len(worse)} ({', '.join(worse)}), of {len(isolated)} pairs no sharing reached")


def progress(label: str, seconds: float) -> Callable[[Market, Step], None]:
    """run_market's on_step: a progress line on stderr every so often (bench/progress.py)."""
    line = ProgressLine(label)

    def step(market: Market, _step: Step) -> None:
        if line.due():
            done = market.state.done()
            line.say(f"market clock {market.state.clock / 1000:.0f} of {seconds:.0f} CPU-s,"
                     f" {len(done)} experiments done,"
                     f" {sum(e.outcome == R.IMPROVEMENT for e in done)} improvements")
    return step


def boards(seconds: float, seed: int, routines: tuple[str, ...] | None, reports: Path) -> None:
    docs = {}
    with tempfile.TemporaryDirectory() as directory:
        for sharing in (False, True):
            db = str(Path(directory) / f"market-{sharing}.db")
            started = time.perf_counter()
            doc = run_market(MarketOptions(seconds=seconds, sharing=sharing, seed=seed, db=db,
                                           routines=routines),
                             on_step=progress("sharing" if sharing else "no sharing", seconds))
            doc["wall_seconds"] = time.perf_counter() - started
            docs[sharing] = doc
            out = reports / REPORTS[sharing]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(doc, indent=2))
    compare(docs)
    print(f"  reports: {reports / REPORTS[False]}, {reports / REPORTS[True]} (`./run bench "
          "market --compare` shows them again)")


def main() -> None:
    # stopped with SIGTERM, unwind (the boards' QEMU processes are closed in finally)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{', '.join(QUICK_ROUTINES)}, {QUICK_SECONDS:g} s per run, "
                             f"{QUICK_RUNS} allocation worlds (unless given)")
    parser.add_argument("--seconds", type=float, default=None, help="default 600")
    parser.add_argument("--routines", default=None,
                        help="comma-separated starter routines (default all: p01-p25, sort3-5)")
    parser.add_argument("--runs", type=int, default=None, help="default 100")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-boards", action="store_true")
    parser.add_argument("--reports", type=Path, default=Path("build"),
                        help="directory of the two runs' reports (default build)")
    parser.add_argument("--compare", action="store_true",
                        help="only compare the last run's reports (--reports DIR/market-*.json)")
    args = parser.parse_args()
    if args.compare:
        paths = {s: args.reports / name for s, name in REPORTS.items()}
        for path in paths.values():
            if not path.is_file():
                parser.error(f"no report {path} to compare; run the bench first")
        compare({s: json.loads(path.read_text()) for s, path in paths.items()})
        return
    quick = args.quick
    seconds = args.seconds or (QUICK_SECONDS if quick else 600.0)
    routines = (tuple(args.routines.split(",")) if args.routines
                else QUICK_ROUTINES if quick else None)
    allocation(args.runs or (QUICK_RUNS if quick else 100))
    if not args.skip_boards:
        boards(seconds, args.seed, routines, args.reports)


if __name__ == "__main__":
    main()
