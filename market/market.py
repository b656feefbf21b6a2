"""The mutation market: agents (one per board) stake credits on experiments, the market
refuses the redundant ones and offers the most promising untried one instead, settles
every result (checking claims itself), pays for verified improvements and lets every
other board adopt them after checking them itself.  Every decision is a ledger entry
(market/records.py); the state is what the ledger says (market/state.py).

Credits.  One credit is one CPU-second of search.  Accepting an experiment costs its
budget; CPU it did not use comes back with its result, CPU it used beyond it is
charged.  A verified improvement pays
    credits = credit_per_cycle_use x cycles saved per call x recorded uses of the routine
to the agent that found it, on its own board, and again (a royalty) for every board
that adopts it, with that board's cycles saved.  "Cycles saved" is the performance
model's estimate of the old best minus the new; "recorded uses" is how many runs of the
routine the semantic store has recorded (market/uses.py), at least 1.  A claim whose
proof does not check is refuted: no payout, and the stake stays lost.

Who runs.  Agents get CPU in proportion to their credits (`next_agent`: the agent
furthest below its credit-weighted share runs next), so boards whose experiments pay
grow their share and boards whose experiments do not shrink theirs.  Strategies get CPU
through Thompson sampling: each candidate experiment's score is a draw of chance x size
x uses from the posterior of its (strategy, routine as its feature set sees it:
Experiment.target) (market/posterior.py), per CPU-second it will cost (its budget plus
what experiments on that routine have used beyond theirs), so strategies that paid are
drawn high more often.  A routine searched again by an arm (a strategy with its
parameters) whose last search of it found nothing shorter is searched by one that has
not tried it yet, while one has not (`_untried_after_failure`).  Routines no search has
answered for the board yet (`unexplored`) are drawn among first, so every board's every
routine gets its first search, and a board with no such routine (with sharing: none that
is not waiting for a board of its ISA with more features to search it first) gives its
turn to one that has.  With sharing, of those first the routines no board has searched
at all (`fresh`): what one board finds reaches the others before they search (adopted on
its ISA, translated for the other), so a board's first search of a routine it already
holds another board's program for (as it is, not a translation) begins there and is
staked at Rules.refine_ms, below the ladder (`refining`); so is one of a routine only
others' searches answered for it, with an arm none of them played (`_second_arms`):
without sharing, two boards of an ISA often searched a routine first with two arms.

How long a search needs is learned too: every result records how far into its CPU the
search reached the program it ended on, and a board's first search of a routine that
searches it sees have settled is staked at a margin over the longest of those times
(`learned_budget`, Rules.settle_margin), below the ladder's first rung where that is
more than enough.  Without sharing a board sees only its own, so its first searches are
the ladder's.

Learnings cross ISAs (with sharing, given a `Translator`): a settled program is lifted to
the semantic core and lowered for each board that cannot run it, of the other ISA or
lacking a feature it uses (market/translate.py, evolution/lift.py); the board checks the
translation's own artifact and code as it checks an adoption, and takes it when it is
shorter than what it holds.

Redundancy (what `propose` refuses, in this order):
    same     an experiment with the same identity is active or done;
    covered  a finished experiment covers it (Experiment.covers) and answered it for
             this board: its claim checked and its program uses only features this
             board has (a search that found a BMI2 program answers nothing about the
             best program without BMI2);
    pending  an active experiment covers it: wait for its result;
    credits  the agent cannot stake the budget.
With `sharing` off, each agent only sees its own experiments, learns only from them and
adopts nothing: the same market run as isolated boards, for comparison.  Even then an
identity is accepted once: the ledger holds one experiment per identity.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from market import records as R
from market.experiment import Experiment, Param
from market.posterior import Belief
from market.state import AgentState, Best, ExperimentState, MarketState
from stores.ledger import Ledger


def ledger_entries(ledger: Ledger, start: int = 0, stop: int | None = None
                   ) -> Iterable[tuple[int, dict]]:
    """(index, record) of the entries from `start` (to `stop`) the market's state is
    rebuilt from: its own and the meta-motherboard's payments (market/records.py)."""
    for index, raw in ledger.entries(start):
        if stop is not None and index >= stop:
            return
        if any(tag in raw for tag in R.TAGS):
            record = json.loads(raw)
            if R.concerns_market(record):
                yield index, record


def _arm(experiment: Experiment) -> tuple[str, tuple[Param, ...]]:
    """The bandit arm an experiment plays: its strategy with its parameter setting."""
    return experiment.strategy, experiment.params


@dataclass(frozen=True)
class RoutineInfo:
    id: str  # the semantic store's ID
    name: str
    klass: str  # routines of a class share evidence (posterior pooling)
    uses: int = 1  # recorded uses (market/uses.py), at least 1


@dataclass(frozen=True)
class Strategy:
    """A named way of searching, the parameter settings the market may propose for it,
    and the routine classes it applies to (None: all).  How it calls the engine is the
    runner's business (market/engine.py)."""
    name: str
    grid: tuple[tuple[Param, ...], ...] = ((),)
    classes: frozenset[str] | None = None

    def applies(self, routine: RoutineInfo) -> bool:
        return self.classes is None or routine.klass in self.classes


@dataclass(frozen=True)
class Rules:
    budgets_ms: tuple[int, ...] = (2000, 4000, 8000, 16000, 32000)  # the budget ladder
    seeds: int = 1  # seeds per experiment
    # no search beats one instruction and the return (unless the routine is the identity
    # of an argument already in the result register): a board that has it trades no more
    floor: int = 2
    credit_per_cycle_use: float = 1.0
    prior_size: float = 1.0  # cycles an improvement saves, before any evidence
    # with sharing, a board's first search of a routine it holds another board's program
    # for (adopted as it is) is staked at this budget, below the
    # ladder: it begins from that program, which is most of the way, and refines it (None:
    # the ladder's first rung, as any first search)
    refine_ms: int | None = 1000
    # a board's first search of a routine (from the engine's starts) is staked at what the
    # searches of that routine it sees took to settle (Market.learned_budget): their
    # longest time to their final program, times this margin, at least settle_floor_ms,
    # rounded up to settle_step_ms; the ladder's first rung while there is no such search,
    # or when that is no less (None: always the ladder)
    settle_margin: float | None = None
    settle_floor_ms: int = 500
    settle_step_ms: int = 250
    # counterexamples a search is handed to start with (the latest; 0: none).  A vector
    # costs every candidate one more evaluation until it fails; a few dozen stay cheap
    # beside the search's own 32
    known_vectors: int = 32


@dataclass(frozen=True)
class Claim:
    """What a finished search hands back: the best proven program it holds (instructions
    None: it holds none, not even its start)."""
    instructions: int | None  # every instruction, the return included
    cycles: float  # the performance model's estimate
    text: str
    code: bytes
    features_used: frozenset[str]
    artifact: Mapping  # the proof artifact (market/proofs.py), JSON-able
    cpu_ms: int  # CPU the search used
    reached_ms: int  # CPU into the search when it reached `instructions`
    start_instructions: int | None  # the correct program the search began from
    start_cycles: float
    start_text: str = ""
    counterexamples: tuple[Mapping, ...] = ()  # JSON-able machine vectors
    failure: str = ""  # why the search ended without a program, when it failed
    # the start was the board's best so far (the runner's `begin`), not the engine's own:
    # it is no news, and was reached when the board first held it
    start_begun: bool = False
    start_ms: int = 0  # CPU into the search when its start was proven


@dataclass(frozen=True)
class AdoptionCheck:
    ok: bool
    detail: str
    cpu_ms: int


@dataclass(frozen=True)
class Translation:
    """Another ISA's proven program written for a board's ISA (lifted to the semantic
    core and lowered: evolution/lift.py).  Not proven: the adopter's check proves it."""
    instructions: int
    cycles: float
    text: str
    code: bytes
    features_used: frozenset[str]
    artifact: Mapping  # the proof artifact for the board's ISA (market/proofs.py)
    cpu_ms: int  # CPU the translation took


class Translator(Protocol):
    def translate(self, agent: AgentState, routine: RoutineInfo, isa: str,
                  text: str) -> Translation | None:
        """`text`, a program proven for `routine` on `isa`, for `agent`'s ISA and features;
        None when it has no such form (its lowering branches, say)."""
        ...


class Verifier(Protocol):
    def check(self, agent: AgentState, routine: RoutineInfo, artifact: Mapping,
              code: bytes) -> AdoptionCheck:
        """Check a proof artifact from scratch (not trusting anyone's verdict) and run the
        code on `agent`'s own vectors (its board's guest when it has one)."""
        ...


@dataclass(frozen=True)
class Decision:
    accepted: bool
    identity: str
    index: int  # the ledger index of its accepted / refused entry
    reason: str | None = None
    by: str | None = None  # the identity of the experiment that makes it redundant
    alternative: Experiment | None = None


@dataclass
class Book:
    """The ledger and the state it rebuilds: `write` appends entries in one transaction
    and applies them.  Others append to the same ledger (the meta-motherboard's payments,
    from another process): `refresh` applies what they wrote, and `write` does before
    applying its own, so the live state is always the replay of the ledger up to its size."""
    ledger: Ledger
    state: MarketState = field(init=False)
    prior_size: float = 1.0

    def __post_init__(self) -> None:
        self.state = MarketState.replay(ledger_entries(self.ledger), self.prior_size)
        self.state.size = self.ledger.size

    def _catch_up(self, stop: int) -> None:
        for index, record in ledger_entries(self.ledger, self.state.size, stop):
            self.state.apply(index, record)
        self.state.size = max(self.state.size, stop)

    def refresh(self) -> None:
        """Apply the entries others appended since this book last looked."""
        self._catch_up(self.ledger.size)

    def write(self, records: Sequence[Mapping]) -> range:
        indexes = self.ledger.append_records(records)
        self._catch_up(indexes.start)  # what others appended before these
        for index, record in zip(indexes, records, strict=True):
            self.state.apply(index, record)
        return indexes


class Market:
    def __init__(self, book: Book, routines: Iterable[RoutineInfo],
                 strategies: Iterable[Strategy], verifier: Verifier, *, rules: Rules = Rules(),
                 sharing: bool = True, seed: int = 0,
                 translator: Translator | None = None) -> None:
        self.book = book
        # with sharing: a program written for the boards that cannot run it as it is
        self.translator = translator
        self.routines = {r.id: r for r in routines}
        self.strategies = {s.name: s for s in strategies}
        self.verifier = verifier
        self.rules = rules
        self.sharing = sharing
        self.seed = seed
        # the boards joined to this market object: a resumed market's others are away,
        # with no guest to check a program in, and adopt what they missed when they return
        self.here: set[str] = set()

    @property
    def state(self) -> MarketState:
        return self.book.state

    def rng(self, salt: str = "") -> random.Random:
        """A generator fixed by the seed and the ledger's size: a resumed market draws
        what the killed one would have drawn at the same point."""
        return random.Random(f"{self.seed}:{self.state.size}:{salt}")

    # -- agents -------------------------------------------------------------------------

    def join(self, key: str, board: str, isa: str, features: frozenset[str],
             credits: float, fingerprint: str | None = None) -> AgentState:
        """Register a board's agent (once: a resumed market's boards are already there),
        then let it adopt what the others found that it can use (a board back after
        runs without it: what they found meanwhile).  `fingerprint`: the hex digest of its
        hardware fingerprint, whose meta-motherboard payments it may spend."""
        self.book.refresh()
        if key not in self.state.agents:
            self.book.write([R.entry(R.JOINED, self.state.clock, agent=key, board=board,
                                     isa=isa, features=sorted(features), credits=credits,
                                     fingerprint=fingerprint)])
        self.here.add(key)
        if self.sharing:
            self._catch_up(self.state.agents[key])
        return self.state.agents[key]

    def next_agent(self, exclude: Iterable[str] = ()) -> AgentState | None:
        """The agent furthest below its credit-weighted share of the CPU, among those that
        can stake the smallest budget; and among those, first the ones with a first search
        to make (`first_searches`): a board whose routines other boards' searches answered
        lets one whose routines no search has answered go first, instead of searching
        again what it has."""
        least = min(self.rules.budgets_ms) / 1000
        skip = set(exclude)
        able = [a for a in self.state.agents.values() if a.credits >= least and a.key not in skip]
        if not able:
            return None
        exploring = [a for a in able if self.first_searches(a)[0]]
        # with sharing, first the boards with a routine no board has searched yet: its
        # result reaches the others (adopted on the ISA, translated for the other) before
        # they search it themselves
        fresh = self.fresh()
        pioneers = [a for a in exploring if self.first_searches(a)[0] & fresh]
        return min(pioneers or exploring or able, key=lambda a: (a.cpu_ms / a.credits, a.key))

    # -- what is known ------------------------------------------------------------------

    def _visible(self, agent: str, e: ExperimentState) -> bool:
        return self.sharing or e.agent == agent

    def _answered(self, agent: AgentState, e: ExperimentState) -> bool:
        """A finished experiment whose result this agent can use."""
        return e.outcome in (R.IMPROVEMENT, R.NONE) and e.features_used <= agent.features

    def redundancy(self, agent: AgentState, experiment: Experiment,
                   own_only: bool = False) -> tuple[str, str] | None:
        """(reason, identity of the experiment that makes it redundant), or None."""
        visible = (lambda e: e.agent == agent.key) if own_only else (
            lambda e: self._visible(agent.key, e))
        # an identity is one experiment of the ledger: never accepted twice, sharing or not
        same = self.state.experiments.get(experiment.identity)
        if same is not None:
            return R.SAME, same.identity
        pending = None
        for e in self.state.by_search.get(experiment.search, ()):
            if not visible(e) or not e.experiment.covers(experiment):
                continue
            if e.active:
                pending = pending or e.identity
            elif self._answered(agent, e):
                return R.COVERED, e.identity
        return (R.PENDING, pending) if pending else None

    def candidates(self, agent: AgentState, own_only: bool = False) -> list[Experiment]:
        """The untried experiments for this agent: per routine, applicable strategy and
        parameter setting, the smallest budget on the ladder that is not redundant (below
        it, with sharing, Rules.refine_ms for a first search from another board's program;
        for a first search with evidence, the learned budget)."""
        now, later = self.first_searches(agent)
        refine = self.refining(agent, now)
        learned = {r: b for r in now | later
                   if (b := self.learned_budget(agent, r)) is not None}
        out = []
        for routine in self.routines.values():
            best = self.state.best_of(agent.key, routine.id)
            if best is not None and best.instructions <= self.rules.floor:
                continue
            for strategy in self.strategies.values():
                if not strategy.applies(routine):
                    continue
                for params in strategy.grid:
                    found = self._rung(agent, routine, strategy, params, own_only,
                                       routine.id in refine, learned.get(routine.id))
                    if found is not None:
                        out.append(found)
        return out

    def _rung(self, agent: AgentState, routine: RoutineInfo, strategy: Strategy,
              params: tuple[Param, ...], own_only: bool, refine: bool = False,
              learned: int | None = None) -> Experiment | None:
        search = (routine.id, agent.isa, strategy.name, params)
        tried = sum(1 for e in self.state.by_search.get(search, ())
                    if e.agent == agent.key or not own_only and self._visible(agent.key, e))
        n = self.rules.seeds
        ladder = sorted(self.rules.budgets_ms)
        if refine and self.rules.refine_ms is not None:
            ladder = [self.rules.refine_ms]
        elif learned is not None:
            ladder = [learned]
        for budget in ladder:
            experiment = Experiment(routine.id, agent.isa, agent.features, strategy.name, params,
                                    (tried * n, (tried + 1) * n), budget)
            if self.redundancy(agent, experiment, own_only) is None:
                return experiment
        return None

    def unexplored(self, agent: AgentState) -> set[str]:
        """The routines no finished search has answered for this board: none it sees
        searched them with at least its features and ended on a program it can use (and
        holds, or better: its own check may refuse it), or on none (a search with POPCNT
        that found a POPCNT program leaves the board without it where it was; one that
        found a program without it, or failed, answered it too)."""
        def answers(e: ExperimentState) -> bool:
            if e.active or not self._visible(agent.key, e) or e.experiment.isa != agent.isa \
                    or not e.experiment.features >= agent.features or not self._answered(agent, e):
                return False
            # a refining search (below the ladder, begun from another board's program) that
            # found nothing shorter was a cheap try: the routine's first search on the
            # ladder is still due.  One staked at the learned budget (from the engine's
            # starts) was the first search
            if e.experiment.cpu_ms < min(self.rules.budgets_ms) and e.outcome == R.NONE \
                    and e.begun:
                return False
            # a program the board could not take (its own check failed) answered nothing
            best = self.state.best_of(agent.key, e.experiment.routine)
            return e.instructions is None or (best is not None
                                              and best.instructions <= e.instructions)

        return set(self.routines) - {e.experiment.routine
                                     for e in self.state.experiments.values() if answers(e)}

    def _second_arms(self, agent: AgentState, answered: set[str]) -> set[str]:
        """With sharing (and Rules.refine_ms), the `answered` routines this board has not
        searched itself, of which some arm (a strategy with its parameters) has made no
        search that bears on the board's pair (`_bears_on`): the board's first search of such
        a routine refines the program it adopted (`refining`, Rules.refine_ms), with an
        arm that has not searched it (the others' searches cover it).  Without sharing a
        board searches every routine itself, and two boards of an ISA with different arms
        first: at f6d6445 Haswell's first search of p21, STOKE, ended at 9 and qemu64
        took it, never searching p21; alone, qemu64's first search, descend, found 6."""
        if not self.sharing or self.rules.refine_ms is None:
            return set()
        own = {e.experiment.routine for e in self.state.experiments.values()
               if e.agent == agent.key}
        return {r for r in answered - own
                if self._arms_untried(agent, self.routines[r])}

    def _arms_untried(self, agent: AgentState, routine: RoutineInfo
                      ) -> set[tuple[str, tuple[Param, ...]]]:
        """The arms applicable to `routine` that no search bearing on the agent's pair
        (`_bears_on`) has played."""
        arms = {(s.name, params) for s in self.strategies.values() if s.applies(routine)
                for params in s.grid}
        return arms - {_arm(e.experiment) for e in self.state.experiments.values()
                       if e.experiment.routine == routine.id and self._bears_on(agent, e)}

    def _bears_on(self, agent: AgentState, e: ExperimentState) -> bool:
        """Whether a search says anything about the agent's own pair: one it sees, on its
        ISA, with at least its features (one with fewer asked less: at f2a5f78 qemu64's
        STOKE of p17 kept Haswell's repeats on descend, which ended at 5; Haswell's own
        STOKE without sharing, 4), and its own or ending on a program it can use (or
        none).  Another board's search that ended on a program with a feature the agent
        lacks says nothing about the agent's best: at 90861eb Haswell's descend of p15
        from its 5 (with BMI) found nothing shorter, and qemu64's next search of p15, which
        alone went from 6 to 5 by descend, went to STOKE."""
        return (e.experiment.isa == agent.isa and e.experiment.features >= agent.features
                and self._visible(agent.key, e)
                and (e.agent == agent.key or self._answered(agent, e)))

    def first_searches(self, agent: AgentState) -> tuple[set[str], set[str]]:
        """(now, later): the routines above the floor no search has answered for the
        agent's board, split into those to search now and (sharing) those waiting for a
        board of its ISA with more features to search them first."""
        unexplored = self._due(agent)
        waiting = self._richer_unexplored(agent) if self.sharing else set()
        return unexplored - waiting, unexplored & waiting

    def _due(self, agent: AgentState) -> set[str]:
        """The routines no search has answered for the agent's board, and (sharing) those
        only others' searches answered that it has a second arm for (`_second_arms`), but
        those it holds at the floor (Rules.floor), which it searches no more."""
        floor = self.rules.floor
        unexplored = self.unexplored(agent)
        due = unexplored | self._second_arms(agent, set(self.routines) - unexplored)
        return {r for r in due
                if (best := self.state.best_of(agent.key, r)) is None
                or best.instructions > floor}

    def fresh(self) -> set[str]:
        """With sharing, the routines no board has searched yet (none running either)."""
        if not self.sharing:
            return set()
        return set(self.routines) - {e.experiment.routine for e in self.state.experiments.values()}

    def refining(self, agent: AgentState, first: set[str] | None = None) -> set[str]:
        """With sharing, the routines whose first search by this board begins from a
        program another board's search found (adopted; not a translation, which is no
        begin: `begin_of`): staked at Rules.refine_ms, once (one that finds nothing shorter
        leaves the first search on the ladder due).  `first`: the agent's first searches
        to make now, when the caller has them (`first_searches`)."""
        if not self.sharing or self.rules.refine_ms is None:
            return set()
        refined = {e.experiment.routine for e in self.state.experiments.values()
                   if e.agent == agent.key and e.experiment.cpu_ms == self.rules.refine_ms}
        now = self.first_searches(agent)[0] if first is None else first
        return {r for r in now - refined
                if (best := self.state.best_of(agent.key, r)) is not None and best.adopted
                and not best.translated}

    def _richer_unexplored(self, agent: AgentState) -> set[str]:
        """Routines some board of the agent's ISA with more features, joined here, has yet
        to search: not those it holds at the floor (rv64 holding a 2-instruction `max` for
        p16, adopted, never searches it, and rv64 without Zb* waited on it for a whole
        run), and none of a board away."""
        out: set[str] = set()
        for other in self.state.agents.values():
            if other.isa == agent.isa and other.features > agent.features \
                    and other.key in self.here:
                out |= self._due(other)
        return out

    def begin_of(self, agent: str, routine: str) -> Best | None:
        """Where the agent's next search of `routine` begins besides the engine's own
        starts: the best proven program its board holds, found by itself or (with sharing)
        adopted from another board after its own check; None while it holds only the
        engine's start, which the engine has anyway, or a translation: a lowering of
        another ISA's program is a basin of its own, and searches begun there stayed above
        what the engine's starts reach (the full bench of 2026-12-05, 11:00: Haswell's p11
        from an 11-instruction translation stayed at 11 in three searches, 8 from the
        lowering without sharing); the board holds it meanwhile."""
        best = self.state.best_of(agent, routine)
        if best is None or best.source == "start" or not best.text or best.translated:
            return None
        return best

    def learned_budget(self, agent: AgentState, routine: str) -> int | None:
        """The budget for the agent's first search of `routine` that the searches of it it
        sees say is enough (every board's with sharing, its own without, so without
        sharing a first search has none): the longest CPU any of them took to reach the
        program it ended on, times Rules.settle_margin, at least Rules.settle_floor_ms,
        rounded up to Rules.settle_step_ms; None without such a search, or when that is no
        less than the ladder's first rung.  Counted are searches staked on the ladder (a
        shorter one's time is cut at its budget), begun from the engine's starts (one begun
        from a board's best says how long refining took, not searching) and ending on a
        program, of either ISA: how long a routine takes to settle is the routine's (the
        quick bench's 20 first searches settled 0.1-0.9 s into 3-s budgets, each at the
        count its board ended the run on)."""
        rules = self.rules
        if rules.settle_margin is None:
            return None
        rung = min(rules.budgets_ms)
        times = [e.settled_ms for e in self.state.experiments.values()
                 if e.experiment.routine == routine and self._visible(agent.key, e)
                 and e.outcome in (R.IMPROVEMENT, R.NONE) and e.instructions is not None
                 and e.settled_ms is not None and not e.begun and e.experiment.cpu_ms >= rung]
        if not times:
            return None
        step = rules.settle_step_ms
        budget = max(rules.settle_floor_ms, -(-round(rules.settle_margin * max(times)) // step)
                     * step)
        return budget if budget < rung else None

    def counterexamples_for(self, agent: str, routine: str) -> tuple[dict, ...]:
        """The inputs on which candidate programs for `routine` on the agent's ISA were
        wrong (Z3's models, as the ledger holds them), from the experiments it sees (every
        board's with sharing, its own without), at most Rules.known_vectors of the latest:
        its next search starts with them among its test vectors, so a wrong candidate
        another search has already met is turned away by the vectors, not by Z3 again."""
        state = self.state
        isa = state.agents[agent].isa
        seen = [v for identity, v in state.counterexamples.get((routine, isa), ())
                if self._visible(agent, state.experiments[identity])]
        return tuple(seen[-self.rules.known_vectors:]) if self.rules.known_vectors else ()

    def overruns(self, agent: AgentState) -> dict[tuple[str, str], float]:
        """(routine, ISA) -> the mean CPU-seconds experiments on it used beyond their budget,
        among the finished ones this agent sees.  The engine proves every candidate it
        keeps, its starts included, whatever the budget: a sort's proofs cost tens of
        seconds, and that is what an experiment on it really costs."""
        total: dict[tuple[str, str], list[float]] = {}
        for e in self.state.experiments.values():
            if self._visible(agent.key, e) and not e.active:
                x = e.experiment
                over = max(0, e.cpu_ms - x.cpu_ms) / 1000
                total.setdefault((x.routine, x.isa), []).append(over)
        return {k: sum(v) / len(v) for k, v in total.items()}

    def _gain(self, belief: Belief, uses: float, experiment: Experiment,
              overruns: Mapping[tuple[str, str], float]) -> float:
        """Credits an experiment may earn per CPU-second it will really cost."""
        gain = belief.chance * belief.size * uses * self.rules.credit_per_cycle_use
        cost = experiment.cpu_seconds + overruns.get((experiment.routine, experiment.isa), 0.0)
        return gain / cost

    def suggest(self, agent: AgentState, own_only: bool = False,
                exclude: Iterable[str] = ()) -> Experiment | None:
        """The untried experiment with the highest expected gain per CPU-second, among
        those the agent can afford, by hierarchical Thompson sampling (market/posterior.py):
        one draw per (strategy, routine class) picks the strategy and class, one draw per
        routine of it picks the experiment.  `own_only`: among the experiments the agent
        itself has not tried, whatever others do (what an agent proposes: checking what
        others do is the market's job).  What works is learned from every experiment with
        sharing, from the agent's own without."""
        skip = set(exclude)
        rng = self.rng(agent.key + (":own" if own_only else ""))
        affordable = [e for e in self.candidates(agent, own_only)
                      if e.identity not in skip and e.cpu_seconds <= agent.credits]
        # a routine no search has answered for this board yet comes first: its first
        # experiment is the one most likely to pay (it starts from the lowering), and
        # sampling alone can leave a board's routine untried for a whole run.  With
        # sharing, of those first the ones no board with more features (same ISA) still has
        # to search: that board's search may answer it for this one too (a program without
        # its features), and one this board makes cannot answer it for that one
        now, later = self.first_searches(agent)
        fresh = self.fresh()
        first = ([e for e in affordable if e.routine in now & fresh]
                 or [e for e in affordable if e.routine in now]
                 or [e for e in affordable if e.routine in later])
        groups: dict[tuple[str, str], list[Experiment]] = {}
        for experiment in first or affordable:
            klass = self.routines[experiment.routine].klass
            groups.setdefault((experiment.strategy, klass), []).append(experiment)
        if not groups:
            return None
        posterior = (self.state.posterior if self.sharing
                     else self.state.own_posterior(agent.key))
        overruns = self.overruns(agent)

        def group_score(key: tuple[str, str]) -> float:
            members = groups[key]
            uses = sum(self.routines[e.routine].uses for e in members) / len(members)
            cheapest = min(members, key=lambda e: e.cpu_ms + 1000 * overruns.get(
                (e.routine, e.isa), 0.0))
            return self._gain(posterior.sample_class(rng, *key), uses, cheapest, overruns)

        chosen = max(sorted(groups), key=group_score)

        def score(e: Experiment) -> float:
            routine = self.routines[e.routine]
            belief = posterior.sample(rng, e.strategy, e.target, routine.klass)
            return self._gain(belief, routine.uses, e, overruns)

        pick = max(groups[chosen], key=score)
        if first:
            return pick
        untried = self._untried_after_failure(agent, pick, affordable)
        return max(untried, key=score) if untried else pick

    def _untried_after_failure(self, agent: AgentState, pick: Experiment,
                               affordable: Sequence[Experiment]) -> list[Experiment]:
        """A repeat of a routine by an arm (a strategy with its parameters) whose last
        search of it that bears on the agent's pair (`_bears_on`) found nothing shorter:
        the affordable experiments of that routine by the arms no such search has tried
        yet, if any.  Arms, not strategies: STOKE at
        20,000 iterations and at 100,000 walk differently (at f833b46 without sharing,
        qemu64 reached 9 for p19 by STOKE at 100,000 after STOKE at 20,000 had found 10,
        and rv64 without Zb* 4 for p18 by STOKE at 20,000 after 100,000 had found 5).  A
        search's seed changes little: it is nearly a function of its strategy, budget
        and beginning (2026-12-07: x86 p09 on Haswell, descend 6 instructions with each
        of four seeds, STOKE 4 with each), so the same strategy again from the same best
        mostly finds what it found: with sharing, in the full bench at c4f103a, x86 p09
        got two descends and no STOKE, and ended at 5 where the run without sharing
        reached 4.  The class's posterior still picks which routine is searched again;
        this picks the arm once per untried one."""
        routine = pick.routine
        searched = sorted((e for e in self.state.experiments.values()
                           if e.experiment.routine == routine and self._bears_on(agent, e)),
                          key=lambda e: e.accepted)
        by_pick = [e for e in searched if _arm(e.experiment) == _arm(pick)]
        if not by_pick or by_pick[-1].active or by_pick[-1].outcome == R.IMPROVEMENT:
            return []
        untried = self._arms_untried(agent, self.routines[routine])
        return [e for e in affordable if e.routine == routine and _arm(e) in untried]

    # -- proposals ----------------------------------------------------------------------

    def propose(self, agent_key: str, experiment: Experiment) -> Decision:
        self.book.refresh()  # credits the meta-motherboard paid meanwhile count
        agent = self.state.agents[agent_key]
        if experiment.isa != agent.isa or not experiment.features <= agent.features:
            raise ValueError(f"agent {agent.board} cannot run an experiment for "
                             f"{experiment.isa} with features {sorted(experiment.features)}: "
                             "propose for its own ISA and discovered features")
        if experiment.routine not in self.routines or experiment.strategy not in self.strategies:
            raise ValueError("the experiment names a routine or strategy the market does not "
                             "trade: use one of its candidates")
        identity = experiment.identity
        found = self.redundancy(agent, experiment)
        if found is None and experiment.cpu_seconds > agent.credits:
            found = (R.CREDITS, None)
        t = self.state.clock
        if found is None:
            routine = self.routines[experiment.routine]
            (index,) = self.book.write([R.entry(
                R.ACCEPTED, t, agent=agent_key, id=identity, experiment=experiment.to_record(),
                stake=experiment.cpu_seconds, **{"class": routine.klass})])
            return Decision(True, identity, index)
        reason, by = found
        alternative = self.suggest(agent, exclude=[identity])
        (index,) = self.book.write([R.entry(
            R.REFUSED, t, agent=agent_key, id=identity, experiment=experiment.to_record(),
            reason=reason, by=by,
            alternative=alternative.to_record() if alternative else None)])
        return Decision(False, identity, index, reason, by, alternative)

    # -- results ------------------------------------------------------------------------

    def settle(self, identity: str, claim: Claim, started: int | None = None) -> range:
        """Write a finished experiment's outcome: the claim checked by the market itself,
        the payout, and the adoptions by every other board that can use it, in one
        transaction.  `started`: the market clock when the search began."""
        e = self.state.experiments[identity]
        if not e.active:
            raise ValueError(f"experiment {identity[:12]} already has a result (ledger entry "
                             f"{e.result}): a finished experiment is never settled twice")
        agent = self.state.agents[e.agent]
        routine = self.routines[e.experiment.routine]
        started = self.state.clock if started is None else started
        t = self.state.clock + claim.cpu_ms
        entries = [R.entry(R.COUNTEREXAMPLE, t, id=identity, routine=routine.id, isa=agent.isa,
                           vector=dict(v)) for v in claim.counterexamples]
        current = self.state.best_of(agent.key, routine.id)
        known = [(current.instructions, current.cycles)] if current else []
        if claim.start_instructions is not None:
            known.append((claim.start_instructions, claim.start_cycles))
        before = min(known) if known else None
        # the board holds its start once the search has proven it, not before
        start = {"instructions": claim.start_instructions, "cycles": claim.start_cycles,
                 "text": claim.start_text, "begun": claim.start_begun,
                 "reached": started + claim.start_ms}
        improved = claim.instructions is not None and (
            before is None or claim.instructions < before[0])
        if improved:
            check = self.verifier.check(agent, routine, claim.artifact, claim.code)
            t += check.cpu_ms
            if not check.ok:
                entries.append(R.entry(R.REFUTED, t, id=identity, agent=agent.key,
                                       cpu_ms=claim.cpu_ms, check_ms=check.cpu_ms,
                                       reason=check.detail, instructions=claim.instructions,
                                       text=claim.text, lost=e.stake))
                return self.book.write(entries)
        # one credit is one CPU-second: what the search did not use comes back, and what it
        # used beyond its budget (a proof inside may overrun it) is charged
        refund = round(e.stake - claim.cpu_ms / 1000, 3)
        result = {"id": identity, "agent": agent.key, "cpu_ms": claim.cpu_ms, "refund": refund,
                  "instructions": claim.instructions, "cycles": claim.cycles,
                  "text": claim.text, "code": claim.code.hex(),
                  "features_used": sorted(claim.features_used), "start": start,
                  "reached": started + claim.reached_ms, "settled_ms": claim.reached_ms,
                  "before": before[0] if before else None}
        if claim.failure:
            result["failure"] = claim.failure
        if claim.instructions is not None and self.sharing:
            result["artifact"] = dict(claim.artifact)  # others may adopt it: see below
        if not improved:
            entries.append(R.entry(R.RESULT, t, outcome=R.NONE,
                                   bound=before[0] if before else None, **result))
        else:
            # a first program where there was none saves no cycles anyone measured
            saved = max(0.0, before[1] - claim.cycles) if before else 0.0
            entries.append(R.entry(R.RESULT, t, outcome=R.IMPROVEMENT, cycles_saved=saved,
                                   check=check.detail, check_ms=check.cpu_ms, **result))
            entries.append(self._payout(t, agent.key, identity, saved, routine, "improvement"))
        # what the search holds goes to every other board that can use it and has nothing
        # as good, improvement on the finder's board or not (its start may be news to them)
        if self.sharing and claim.instructions is not None:
            for other in self.state.agents.values():
                if other.key == agent.key or other.key not in self.here:
                    continue  # (a board away takes it on its return: join)
                # the program itself where the board can run it; else written for the
                # board: for the other ISA, or for this one without the features it uses
                # (Haswell's blsr for p01 is qemu64's lea and and)
                if other.isa == agent.isa and claim.features_used <= other.features:
                    found = self._adopt(other, identity, claim, routine, t)
                else:
                    found = self._translate(other, identity, claim, routine, t)
                if found:
                    t = found[-1]["t"]
                    entries += found
        return self.book.write(entries)

    def _payout(self, t: int, agent: str, identity: str, saved: float, routine: RoutineInfo,
                why: str, adopter: str | None = None) -> dict:
        credits = round(self.rules.credit_per_cycle_use * saved * routine.uses, 6)
        return R.entry(R.PAYOUT, t, agent=agent, id=identity, credits=credits,
                       cycles_saved=saved, uses=routine.uses, why=why, adopter=adopter)

    def _usable(self, agent: AgentState, isa: str, features_used: frozenset[str],
                routine: str, instructions: int) -> bool:
        best = self.state.best_of(agent.key, routine)
        return (agent.isa == isa and features_used <= agent.features
                and (best is None or instructions < best.instructions))

    def _adopt(self, other: AgentState, identity: str, claim: Claim, routine: RoutineInfo,
               t: int) -> list[dict]:
        """Entries for `other` taking the improvement of experiment `identity`, if it can
        use it: its own check of the artifact and of the code, then a royalty."""
        finder = self.state.experiments[identity]
        if not self._usable(other, finder.experiment.isa, claim.features_used, routine.id,
                            claim.instructions):
            return []
        check = self.verifier.check(other, routine, claim.artifact, claim.code)
        t += check.cpu_ms
        if not check.ok:
            return [R.entry(R.NOT_ADOPTED, t, agent=other.key, id=identity, reason=check.detail,
                            check_ms=check.cpu_ms)]
        best = self.state.best_of(other.key, routine.id)
        baseline = best.cycles if best else claim.start_cycles
        known = best is not None or claim.start_instructions is not None
        saved = max(0.0, baseline - claim.cycles) if known else 0.0
        return [R.entry(R.ADOPTED, t, agent=other.key, id=identity, routine=routine.id,
                        instructions=claim.instructions, cycles=claim.cycles, text=claim.text,
                        code=claim.code.hex(), check=check.detail, check_ms=check.cpu_ms),
                self._payout(t, finder.agent, identity, saved, routine, "adoption", other.key)]

    def _translate(self, other: AgentState, identity: str, claim: Claim,
                   routine: RoutineInfo, t: int) -> list[dict]:
        """Entries for `other` (of another ISA, or of this one without a feature the
        program uses) taking the program of experiment `identity` written for its ISA and
        features (Translator), if that is shorter than what it holds: its
        own check of the translation's artifact and code, then a royalty to the finder.
        The translation's CPU and the check's are the market's, whatever the verdict."""
        if self.translator is None:
            return []
        finder = self.state.experiments[identity]
        best = self.state.best_of(other.key, routine.id)
        # a board at the market's floor trades the routine no more; a program translated
        # for it once is not translated again (a search that began from it holds it still)
        if best is not None and best.instructions <= self.rules.floor or (
                other.key, routine.id, claim.text) in self.state.translated:
            return []
        found = self.translator.translate(other, routine, finder.experiment.isa, claim.text)
        if found is None:
            return []
        t += found.cpu_ms
        # every translation is an entry: its CPU is on the market clock, and a resumed
        # market knows it was made
        tried = {"agent": other.key, "id": identity, "routine": routine.id,
                 "translated_from": finder.experiment.isa, "from_text": claim.text,
                 "translate_ms": found.cpu_ms}
        if best is not None and found.instructions >= best.instructions:
            return [R.entry(R.NOT_ADOPTED, t, check_ms=0, **tried,
                            reason=f"the translation has {found.instructions} instructions, "
                                   f"the board holds {best.instructions}")]
        check = self.verifier.check(other, routine, found.artifact, found.code)
        t += check.cpu_ms
        if not check.ok:
            return [R.entry(R.NOT_ADOPTED, t, reason=check.detail, check_ms=check.cpu_ms,
                            **tried)]
        saved = max(0.0, best.cycles - found.cycles) if best else 0.0
        return [R.entry(R.ADOPTED, t, instructions=found.instructions, cycles=found.cycles,
                        text=found.text, code=found.code.hex(),
                        features_used=sorted(found.features_used), check=check.detail,
                        check_ms=check.cpu_ms, **tried),
                self._payout(t, finder.agent, identity, saved, routine, "translation",
                             other.key)]

    def _catch_up(self, agent: AgentState) -> None:
        """A board that joins late, or returns after runs without it, adopts the best
        program of each routine it can use; not one it refused before (its check is not
        run again each time the market resumes)."""
        refused = {r["id"] for r in self.state.rejected_adoptions if r["agent"] == agent.key}
        for routine in self.routines.values():
            offers = [e for e in self.state.done() if e.outcome in (R.IMPROVEMENT, R.NONE)
                      and e.instructions is not None and e.experiment.routine == routine.id
                      and e.identity not in refused
                      and "artifact" in self.book.ledger.record(e.result)]
            offers.sort(key=lambda e: (e.instructions, e.accepted))
            for e in offers:
                claim = self.claim_of(e)
                if not self._usable(agent, e.experiment.isa, claim.features_used, routine.id,
                                    claim.instructions):
                    continue
                entries = self._adopt(agent, e.identity, claim, routine, self.state.clock)
                self.book.write(entries)
                if entries[0]["type"] == R.ADOPTED:
                    break

    def claim_of(self, e: ExperimentState) -> Claim:
        """A result's claim, as its entry keeps it (with its artifact: kept when shared)."""
        r = self.book.ledger.record(e.result)
        return Claim(r["instructions"], r["cycles"], r["text"], bytes.fromhex(r["code"]),
                     frozenset(r["features_used"]), r["artifact"], r["cpu_ms"], 0,
                     r["start"]["instructions"], r["start"]["cycles"], r["start"]["text"])
