"""The market's runner on the evolution engine: a strategy is a named way of calling
`evolution.evolve.evolve` with parameters (the registry `STRATEGIES`), run for a board's
ISA and discovered features, and its result turned into a claim with a proof artifact.

What the engine exposes today, and so what a strategy can vary: the number of chain
batches, the iterations per batch, the seed and the time budget.  Every search starts
from the engine's own starts (the lowering, a sorting network) and, when the board holds
a better proven program for the routine (its own earlier result, or, with sharing, one
it adopted from another board), from that one too (`SearchTask.begin`, evolve's
`extra_starts`): the search goes on where the board is instead of from its lowering, and
the lowering, which is longer, is never proven again; nor is the board's best, which the
board checked itself when it took it (`SearchTask.begin_checked`).  The engine knobs the
market would add next:
  - forms=: search a subset of the instruction forms (evolution.search.space takes it
    already): a "sortnet" strategy over compare/min/max/cmov only for the sorts;
  - an enumerative search with a length bound, whose "nothing below N" is a proof and
    would make the market's cover rule exact for it;
  - a budget that bounds the start proofs too (budget_s, counted in the search process's
    CPU time here, is checked between chain batches; a start proof may take minutes):
    the market runs searches in a worker process and stops them at a CPU cap
    (market/worker.py), charging the CPU used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from evolution.evolve import Evolved, NoProgram, evolve
from evolution.program import ParseError, parse
from evolution.proof import Proof
from evolution.registry import ISAS
from evolution.starts import Start
from evolution.targets import MachineTarget
from evolution.testset import MachineVector
from market.boards import Seat
from market.experiment import Experiment
from market.market import Claim, RoutineInfo, Strategy
from market.proofs import features_used, make_artifact
from market.state import AgentState, Best
from sem.ir import Routine

# (spec, target, budget seconds, seed, parameters, starts besides the engine's, the count
# at which to stop, counterexamples met before) -> Evolved
Call = Callable[[Routine, MachineTarget, float, int, Mapping[str, int | str], Sequence[Start],
                 int | None, Sequence[MachineVector]], Evolved]
# the name of the start that is the board's best proven program so far (evolve() names
# each start; its result says which one the search began from)
BEGIN = "the board's best so far"


@dataclass(frozen=True)
class EngineStrategy:
    strategy: Strategy  # what the market trades: name, parameter grid, routine classes
    call: Call  # how it runs: (spec, target, budget seconds, seed, parameters) -> Evolved


# The budget is CPU time of the process searching (its Z3 included): what the market
# charges, and what a loaded machine does not shrink (in wall time, a 6-s budget on a
# machine shared four ways searched for about 1 CPU-second)
CLOCK = time.process_time


def _descend(spec: Routine, target: MachineTarget, budget_s: float, seed: int,
             params: Mapping[str, int | str], starts: Sequence[Start] = (),
             stop_at: int | None = None, vectors: Sequence[MachineVector] = ()) -> Evolved:
    """The best start (lowering, sorting network or the board's best), then local search
    from it (delete one instruction, replace another) while that proves shorter, then one
    short chain."""
    return evolve(spec, target, budget_s=budget_s, batches=1, seed=seed, stop_at=stop_at,
                  iterations=int(params["iterations"]), extra_starts=starts, vectors=vectors,
                  clock=CLOCK)


def _stoke(spec: Routine, target: MachineTarget, budget_s: float, seed: int,
           params: Mapping[str, int | str], starts: Sequence[Start] = (),
           stop_at: int | None = None, vectors: Sequence[MachineVector] = ()) -> Evolved:
    """STOKE chains (MCMC over programs) for the whole budget, restarting from the best."""
    return evolve(spec, target, budget_s=budget_s, seed=seed, stop_at=stop_at,
                  iterations=int(params["iterations"]), extra_starts=starts, vectors=vectors,
                  clock=CLOCK)


STRATEGIES: dict[str, EngineStrategy] = {s.strategy.name: s for s in (
    EngineStrategy(Strategy("descend", ((("iterations", 2000),),)), _descend),
    EngineStrategy(Strategy("stoke", ((("iterations", 20_000),), (("iterations", 100_000),))),
                   _stoke),
)}


def _vector(v: MachineVector) -> dict:
    return {"args": list(v.args), "registers": list(v.registers), "flags": list(v.flags),
            "undefined": v.undefined, "memory": v.memory.hex()}


def _machine_vector(d: Mapping) -> MachineVector:
    """_vector's record read back (as the ledger holds it)."""
    return MachineVector(tuple(d["args"]), tuple(d["registers"]), tuple(d["flags"]),
                         d["undefined"], bytes.fromhex(d["memory"]))


@dataclass(frozen=True)
class SearchTask:
    """One experiment's search, as plain data (it crosses into the worker process)."""
    spec: Routine
    isa: str
    features: frozenset[str]
    board: str
    strategy: str
    params: tuple[tuple[str, int | str], ...]
    seeds: tuple[int, int]
    cpu_seconds: float
    begin: str = ""  # the board's best proven program so far (text), to start from too
    # `begin` is a program this board checked itself (its artifact decided by Z3 in the
    # market's check of its claim or of its adoption): the search does not prove it again
    # (riscv64 sort5's proof alone is a minute of Z3).  False: proven like every start
    begin_checked: bool = False
    # the market's floor (Rules.floor): a search that reaches it stops there, since the
    # market trades the routine no more on that board; the CPU it did not use comes back
    stop_at: int | None = None
    # counterexamples searches of this routine on this ISA met before (_vector's records):
    # test vectors from the start
    vectors: tuple[Mapping, ...] = ()


def search(task: SearchTask, strategies: Mapping[str, EngineStrategy] | None = None) -> Claim:
    """Run a task's strategy over its seeds (the budget shared between them) and turn the
    shortest proven program into a claim with its proof artifact."""
    isa = ISAS[task.isa]
    target = MachineTarget(task.board, task.isa, task.features)
    call = (strategies or STRATEGIES)[task.strategy].call
    # proven again in the search like every start, unless the board checked it itself
    failures: list[str] = []
    checked = Proof(True, "checked by this board before: its artifact decided by Z3 in the "
                          "market's check") if task.begin_checked else None
    try:
        begin = (Start(BEGIN, parse(isa, task.begin), checked),) if task.begin else ()
    except ParseError as error:  # our own text, so not expected: the search goes on without
        begin, failures = (), [f"the board's best did not parse ({error}): not a start"]
    known = [_machine_vector(v) for v in task.vectors]
    seeds = range(*task.seeds)
    share = task.cpu_seconds / len(seeds)
    started = time.process_time()
    best: Evolved | None = None
    offset = reached = begun = 0.0  # begun: CPU into the task when best's search began
    for seed in seeds:
        try:
            found = call(task.spec, target, share, seed, dict(task.params), begin,
                         task.stop_at, known)
        except NoProgram:
            found = None
        except Exception as error:  # noqa: BLE001 - a crashed search is a failed experiment
            # the engine is another layer's code: whatever stops a search ends this
            # experiment with no program and the reason, in the ledger, not the market
            found = None
            failures.append(f"seed {seed}: {type(error).__name__}: {error}")
        if found is not None and (best is None or found.instructions < best.instructions):
            best, reached, begun = found, offset + found.history[-1][0], offset
        offset += found.seconds if found is not None else share
        if task.stop_at is not None and best is not None and best.instructions <= task.stop_at:
            break
    cpu_ms = round((time.process_time() - started) * 1000)
    if best is None:
        return Claim(None, 0.0, "", b"", frozenset(), {}, cpu_ms, cpu_ms, None, 0.0,
                     failure="; ".join(failures))
    # the first proven program is the start the search began from, unless the search had
    # to find one (no start proved)
    start = best.history[0] if best.start != "search" else None
    return Claim(
        best.instructions, best.history[-1][1], best.text, best.code,
        features_used(isa, best.program), make_artifact(isa, task.spec, best.program), cpu_ms,
        min(cpu_ms, round(reached * 1000)), start[2] if start else None,
        start[1] if start else 0.0, best.start,
        tuple(_vector(v) for v in best.counterexamples), start_begun=best.start == BEGIN,
        start_ms=min(cpu_ms, round((begun + start[0]) * 1000)) if start else 0)


@dataclass
class EngineRunner:
    """Runs experiments on the engine: in a worker process whose CPU is capped (the
    market's runs: market/worker.py), or in this process (`worker` None: tests)."""
    specs: Mapping[str, Routine]  # by routine ID
    seats: Mapping[str, Seat]  # by agent key
    strategies: Mapping[str, EngineStrategy]
    worker: Callable[[SearchTask], Claim] | None = None  # market/worker.py SearchWorker
    stop_at: int | None = None  # the market's floor (Rules.floor)

    def run(self, agent: AgentState, routine: RoutineInfo, experiment: Experiment,
            begin: Best | None = None, vectors: tuple[dict, ...] = ()) -> Claim:
        seat = self.seats[agent.key]
        task = SearchTask(self.specs[routine.id], seat.isa.name, experiment.features,
                          seat.name, experiment.strategy, experiment.params, experiment.seeds,
                          experiment.cpu_seconds, begin.text if begin else "",
                          # a board's best is one it checked itself: its own claim, checked
                          # by the market on its board, or an adoption it checked
                          begin_checked=begin is not None, stop_at=self.stop_at,
                          vectors=vectors)
        if self.worker is None:
            return search(task, self.strategies)
        return self.worker(task)
