"""The market's loop: pick the agent whose turn it is, let it propose what it would try
next among the experiments it has not tried itself (with what the market has learned
works, when it shares), let the market refuse a redundant proposal and offer its
alternative, run the accepted experiment, settle it.  A market restarted on the same
ledger first runs again whatever it had accepted and not finished (a kill mid-experiment
loses only that run's CPU, never a written result), then carries on.

The runner does the searching (market/engine.py on real boards; a synthetic world in
the tests); the driver only sequences, so it runs on a virtual clock in tests: the
market clock is the CPU the runner reports, not the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from market.experiment import Experiment
from market.market import Claim, Decision, Market, RoutineInfo
from market.state import AgentState, Best


class Runner(Protocol):
    def run(self, agent: AgentState, routine: RoutineInfo, experiment: Experiment,
            begin: Best | None = None, vectors: tuple[dict, ...] = ()) -> Claim:
        """Run the experiment's search for the agent's board and return the best proven
        program it holds (its CPU use in Claim.cpu_ms).  `begin`: the board's best proven
        program for the routine so far, to start from besides the engine's own starts;
        `vectors`: counterexamples met before (Market.counterexamples_for), JSON-able
        machine vectors, to test candidates on from the start."""
        ...


@dataclass(frozen=True)
class Step:
    """What one turn did, for the live table."""
    agent: str
    proposal: Decision | None  # the agent's own proposal (None: resumed or exhausted)
    ran: str | None  # the identity of the experiment that ran
    settled: range | None


@dataclass
class Driver:
    market: Market
    runner: Runner
    limit_ms: int | None = None  # stop once the market clock reaches this
    # the agents whose boards are here this run (None: all): a resumed market's other
    # agents keep their credits and their unfinished experiments until their boards return
    present: set[str] | None = None
    on_step: Callable[[Step], None] | None = None
    # agents that found nothing left to try, with the news then (`_news`): a result or a
    # royalty may open something, so they are asked again once there was some
    exhausted: dict[str, int] = field(default_factory=dict)

    def run(self) -> int:
        """Turns until the clock limit, or until no agent can stake anything; returns the
        number of turns."""
        turns = 0
        while self.step():
            turns += 1
        self.market.book.ledger.sign_head()  # a batch of work ended: sign what it wrote
        return turns

    def _here(self, agent: str) -> bool:
        return self.present is None or agent in self.present

    def _news(self) -> int:
        """Ledger entries that may open an experiment for an agent: all but refusals.  A
        refused proposal opens nothing, and counted, two agents each proposing what others'
        searches covered (no alternative left) asked each other again without end."""
        state = self.market.state
        return state.size - len(state.refusals)

    def _time_left(self) -> bool:
        return self.limit_ms is None or self.market.state.clock < self.limit_ms

    def step(self) -> bool:
        self.market.book.refresh()  # what others wrote meanwhile (the motherboard's payments)
        state = self.market.state
        if not self._time_left():
            return False
        active = [e for e in state.active() if self._here(e.agent)]
        if active:  # accepted before a restart and never finished: run it again
            e = active[0]
            return self._execute(Step(e.agent, None, e.identity, None), e.identity)
        news = self._news()
        skip = [k for k, seen in self.exhausted.items() if seen == news]
        skip += [k for k in state.agents if not self._here(k)]
        agent = self.market.next_agent(exclude=skip)
        if agent is None:
            return False
        own = self.market.suggest(agent, own_only=True)
        if own is None:  # alone it sees nothing left; the shared ledger may still know some
            own = self.market.suggest(agent)
        if own is None:
            self.exhausted[agent.key] = self._news()
            self._report(Step(agent.key, None, None, None))
            return True
        decision = self.market.propose(agent.key, own)
        chosen = decision
        if not decision.accepted:
            if decision.alternative is None:
                self.exhausted[agent.key] = self._news()
                self._report(Step(agent.key, decision, None, None))
                return True
            chosen = self.market.propose(agent.key, decision.alternative)
            if not chosen.accepted:
                raise RuntimeError("the market refused its own alternative "
                                   f"({chosen.reason}): candidates and propose disagree")
        return self._execute(Step(agent.key, decision, chosen.identity, None), chosen.identity)

    def _execute(self, step: Step, identity: str) -> bool:
        e = self.market.state.experiments[identity]
        agent = self.market.state.agents[e.agent]
        routine = self.market.routines[e.experiment.routine]
        started = self.market.state.clock
        claim = self.runner.run(agent, routine, e.experiment,
                                self.market.begin_of(agent.key, routine.id),
                                self.market.counterexamples_for(agent.key, routine.id))
        settled = self.market.settle(identity, claim, started)
        self._report(Step(step.agent, step.proposal, identity, settled))
        return True

    def _report(self, step: Step) -> None:
        if self.on_step is not None:
            self.on_step(step)
