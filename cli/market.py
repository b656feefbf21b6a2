"""What `./run market` does: boot the boards, run the mutation market over the starter
routines with a live table, write the `metaos.market/1` JSON and a plot.

`run_market` is the task's body without the printing (the bench calls it); everything
it decides is in the ledger of the database, so running it again on the same database
resumes the market (whatever was accepted and not finished runs first).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from cli import terminal
from cli.errors import Interrupted, UsageError
from evolution.warm import compiled
from market import records as R
from market.boards import PROFILES, Seat, open_seat
from market.checks import BoardVerifier
from market.driver import Driver, Step
from market.engine import STRATEGIES, EngineRunner
from market.market import Book, Market, RoutineInfo, Rules, ledger_entries
from market.report import report
from market.translate import LiftTranslator
from market.uses import recorded_uses
from market.worker import SearchWorker, compile_kernels
from sem.ir import Routine
from sem.library import FILES
from sem.loader import load_file
from sem.store import SemStore
from stores.db import connect
from stores.ledger import Ledger

DEFAULT_BOARDS = ("qemu64", "haswell", "rv64", "rv64-nozb")
DEFAULT_BUDGETS_MS = (3000, 6000, 12000, 24000, 48000)
# a first search with evidence is staked at twice the longest time a search of the routine
# took to settle (Rules.settle_margin): 3-s searches of p01-p25 reached the program they
# ended on 0.07-2.7 s in, median 1.0 s; on the four boards the slowest of a routine's
# four took a median 2.7x the quickest's, so a board learning from one other's search
# may stop short of its count (its next search, on the ladder, goes on from there)
SETTLE_MARGIN = 2.0


@dataclass(frozen=True)
class MarketOptions:
    boards: tuple[str, ...] = DEFAULT_BOARDS
    seconds: float = 300.0  # this run's CPU budget (market clock), all boards together
    sharing: bool = True
    seed: int = 0
    db: str | None = None
    routines: tuple[str, ...] | None = None  # names (p01, sort3, ...); None: all starters
    budgets_ms: tuple[int, ...] = DEFAULT_BUDGETS_MS
    accel: str = "tcg"


def starter_library() -> list[tuple[str, list]]:
    """(class, [(routine, name)]) per starter library file: p01-p25, sort3-5."""
    return [(path.stem, load_file(path)) for path in FILES]


def check_routines(only: tuple[str, ...] | None) -> None:
    """Refuse names that are not starter routines, before anything is stored or booted."""
    known = {name.name for _, found in starter_library() for _, name in found}
    missing = set(only or ()) - known
    if missing:
        raise UsageError(f"no starter routine {', '.join(sorted(missing))}: choose from "
                         "p01..p25, sort3, sort4, sort5")


def starter_routines(store: SemStore, only: tuple[str, ...] | None = None
                     ) -> tuple[list[RoutineInfo], dict[str, Routine]]:
    """The starter library (p01-p25, sort3-5), stored in the semantic store, each with
    its class (its library module) and recorded uses."""
    check_routines(only)
    infos, specs = [], {}
    for klass, found in starter_library():
        ids = store.add_many([(r, (name,)) for r, name in found])
        for rid, (r, name) in zip(ids, found, strict=True):
            if only is None or name.name in only:
                infos.append(RoutineInfo(rid, name.name, klass, recorded_uses(store, rid)))
                specs[rid] = r
    return infos, specs


def run_market(options: MarketOptions, on_step: Callable[[Market, Step], None] | None = None,
               on_ready: Callable[[Market], None] | None = None,
               on_compile: Callable[[list[str]], None] | None = None) -> dict:
    """Boot the boards, run the market for `options.seconds` of CPU, return the report.
    `on_compile`: told the ISAs whose search kernels are compiled first (their first use
    on this machine: minutes, before the market's clock starts)."""
    unknown = [b for b in options.boards if b not in PROFILES]
    if unknown:
        raise UsageError(f"no board profile {', '.join(unknown)}: choose from "
                         f"{', '.join(PROFILES)}")
    twice = sorted({b for b in options.boards if options.boards.count(b) > 1})
    if twice:
        raise UsageError(f"board profile {', '.join(twice)} given twice: a market board is"
                         " its hardware fingerprint, so two of one profile are one board;"
                         " name each profile once")
    check_routines(options.routines)
    conn = connect(options.db)
    routines, specs = starter_routines(SemStore(conn), options.routines)
    ledger = Ledger.open(options.db)
    seats: dict[str, Seat] = {}
    worker = SearchWorker()
    try:
        for profile in options.boards:
            seat = open_seat(profile, options.accel)
            seats[seat.key] = seat
        cold = sorted(isa for isa in {s.isa.name for s in seats.values()} if not compiled(isa))
        if cold:
            if on_compile is not None:
                on_compile(cold)
            compile_kernels(cold)
        strategies = [s.strategy for s in STRATEGIES.values()]
        market = Market(Book(ledger), routines, strategies, BoardVerifier(seats),
                        rules=Rules(budgets_ms=options.budgets_ms, settle_margin=SETTLE_MARGIN),
                        sharing=options.sharing,
                        seed=options.seed, translator=LiftTranslator(specs))
        # a fair split of the budget to start with, and at least one smallest stake
        credits = max(options.seconds / len(seats), min(options.budgets_ms) / 1000)
        for seat in seats.values():
            market.join(seat.key, seat.name, seat.isa.name, seat.features, credits,
                        seat.account)
        if on_ready is not None:
            on_ready(market)
        limit = market.state.clock + round(options.seconds * 1000)
        runner = EngineRunner(specs, seats, STRATEGIES, worker, stop_at=market.rules.floor)
        driver = Driver(market, runner, limit_ms=limit,
                        present=set(seats),
                        on_step=(lambda step: on_step(market, step)) if on_step else None)
        driver.run()
    finally:
        try:
            worker.close()
        finally:  # whatever the worker did, the boards' QEMU processes end with the market
            for seat in seats.values():
                seat.close()
    head = ledger.latest_head()
    entries = list(ledger_entries(ledger))
    return report(entries, {r.id: r.name for r in routines}, sharing=options.sharing,
                  seed=options.seed, budget_s=options.seconds,
                  ledger={"size": ledger.size, "root": ledger.root().hex(),
                          "signed_size": head.size if head else 0})


# -- the live table ------------------------------------------------------------------------

def live_table(market: Market, budget_ms: int | None, last: str) -> Group:
    state = market.state
    accepted, done, refused, adopted = Counter(), Counter(), Counter(), Counter()
    improvements = Counter()
    for e in state.experiments.values():
        accepted[e.agent] += 1
        done[e.agent] += not e.active
        improvements[e.agent] += e.outcome == R.IMPROVEMENT
    for r in state.refusals:
        refused[r["agent"]] += 1
    for r in state.adoptions:
        adopted[r["agent"]] += 1
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("board", "features", "credits", "CPU s", "active", "done", "refused",
                   "improved", "adopted"):
        table.add_column(column, justify="left" if column in ("board", "features") else "right",
                         no_wrap=True)
    for key, a in state.agents.items():
        table.add_row(a.board, ",".join(sorted(a.features)) or "-", f"{a.credits:.1f}",
                      f"{a.cpu_ms / 1000:.1f}", str(accepted[key] - done[key]), str(done[key]),
                      str(refused[key]), str(improvements[key]), str(adopted[key]))
    clock = f"market clock {state.clock / 1000:.1f} s" + (
        f" of {budget_ms / 1000:.0f} s" if budget_ms else "")
    return Group(Text(f"{clock}; ledger {state.size} entries"), table, Text(last))


def describe(market: Market, step: Step) -> str:
    state = market.state
    board = state.agents[step.agent].board
    if step.ran is None:
        return f"{board}: nothing left to try"
    e = state.experiments[step.ran]
    x = e.experiment
    name = market.routines[x.routine].name
    refused = ""
    if step.proposal is not None and not step.proposal.accepted:
        refused = f"its proposal refused ({step.proposal.reason}); "
    outcome = e.outcome or "running"
    reached = f" -> {e.instructions} instructions" if e.instructions else ""
    return (f"{board}: {refused}{x.strategy} on {name} for {x.cpu_seconds:.0f} s: "
            f"{outcome}{reached}")


def market_command(options: MarketOptions, json_path: str | None = None,
                   plot_path: str | None = None, console: Console | None = None) -> None:
    """Run the market with a live table; its errors end the task in one line (cli/errors)."""
    console = console or terminal.console()
    live = terminal.TaskLive(console=console, refresh_per_second=4, transient=False)
    budget = {"ms": None}

    def ready(market: Market) -> None:
        budget["ms"] = market.state.clock + round(options.seconds * 1000)
        live.update(live_table(market, budget["ms"], "boards booted; the market opens"))

    def step(market: Market, s: Step) -> None:
        live.update(live_table(market, budget["ms"], describe(market, s)))

    def compiling(isas: list[str]) -> None:
        live.update(Text(f"compiling the search kernels for {' and '.join(isas)}, side by side:"
                         " their first use on this machine (x86_64's takes about 6 minutes,"
                         " riscv64's 1); numba keeps them for the next runs"))

    try:
        with live:
            doc = run_market(options, step, ready, compiling)
    except KeyboardInterrupt:
        raise Interrupted("every finished experiment is in the ledger; run again on the same "
                          "database to resume") from None
    if not console.is_terminal:
        console.line()  # Live's last render ends without one when not on a terminal
    counts = doc["counts"]
    console.print(f"{counts['done']} experiments done, {counts['refused']} refused, "
                  f"{counts['improvements']} improvements, {counts['adopted']} adoptions, "
                  f"{doc['redundant_experiments']} redundant; ledger {doc['ledger']['size']} "
                  f"entries, signed head at {doc['ledger']['signed_size']}", highlight=False)
    if json_path:
        Path(json_path).write_text(json.dumps(doc, indent=2))
        console.print(f"report written to {json_path} (schema {doc['schema']})")
    if plot_path:
        plot(doc, plot_path)
        console.print(f"plot written to {plot_path}")


def plot(doc: dict, path: str) -> None:
    """Credits over the market clock per board, and each strategy's (with its parameters)
    share of the CPU as experiments finish."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (credits, shares) = plt.subplots(1, 2, figsize=(12, 4.5))
    for agent in doc["agents"].values():
        points = agent["credits_over_time"]
        credits.step([t for t, _ in points], [c for _, c in points], where="post",
                     label=agent["board"])
    credits.set_xlabel("market clock (CPU-seconds)")
    credits.set_ylabel("credits (1 = one CPU-second)")
    credits.set_title("credits per board")
    credits.legend()
    used: Counter = Counter()
    series: dict[str, list[float]] = {}
    finished = [x for x in doc["experiments"] if x["outcome"] != "active"]

    def arm(x: dict) -> str:
        return " ".join([x["strategy"], *(f"{k}={v}" for k, v in sorted(x["params"].items()))])

    for x in finished:
        used[arm(x)] += x["cpu_used_seconds"]
        total = sum(used.values()) or 1.0
        for name in {arm(e) for e in finished}:
            series.setdefault(name, []).append(used[name] / total)
    for name, values in sorted(series.items()):
        shares.plot(range(1, len(values) + 1), values, label=name,
                    marker="." if len(values) <= 40 else None)
    shares.xaxis.set_major_locator(MaxNLocator(integer=True))  # experiments are counted
    shares.set_xlabel("experiments finished")
    shares.set_ylabel("share of the CPU")
    shares.set_ylim(0, 1.05)  # a share of 1 drawn on the frame would not show
    shares.set_title("CPU share per strategy")
    shares.legend()
    fig.suptitle(f"market ({'sharing' if doc['sharing'] else 'no sharing'}): "
                 f"{doc['counts']['done']} experiments, "
                 f"{doc['redundant_experiments']} redundant")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
