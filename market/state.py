"""The market's state, rebuilt from its ledger entries and nothing else.

Every change the market makes is an entry (market/records.py) applied by `apply`, both
live (right after the ledger took it) and on resume (replaying the ledger from entry
0), so a resumed market is the market that was killed: the same credits, the same
experiments done, the same bests, the same posterior.  An experiment accepted but with
no result is `active`; after a restart it is the first one to run again (its stake was
already paid).

The meta-motherboard's payments (market/records.py) are credits for a hardware
fingerprint: each is shared evenly by the agents on that fingerprint at that point of the
ledger (QEMU's rv64 with and without Zb* have one fingerprint and two agents), and one
that comes before any of them joined waits in the fingerprint's account for the first
that does.  Nothing is minted twice: the agents' shares add up to what was paid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from market import records as R
from market.experiment import Experiment, target_of
from market.posterior import Posterior


@dataclass
class AgentState:
    key: str  # hex: the board's full fingerprint (market/boards.py agent_key)
    board: str  # a name for tables
    isa: str
    features: frozenset[str]  # what discovery found the board to have
    credits: float
    # the hex digest of its hardware fingerprint (stores/fingerprint.py), the account the
    # meta-motherboard pays; None for a board with no hardware behind it
    fingerprint: str | None = None
    paid: float = 0.0  # credits the meta-motherboard's payments brought it
    cpu_ms: int = 0  # CPU its experiments used
    history: list[tuple[int, float]] = field(default_factory=list)  # (t, credits)

    def credit(self, t: int, amount: float) -> None:
        self.credits += amount
        self.history.append((t, self.credits))


@dataclass
class ExperimentState:
    experiment: Experiment
    identity: str
    agent: str
    klass: str  # the routine's class (posterior pooling)
    stake: float
    accepted: int  # ledger index of its `accepted` entry
    t: int  # market clock when accepted
    outcome: str | None = None  # None while active; improvement | none | refuted
    result: int | None = None  # ledger index of its result (or refuted) entry
    cpu_ms: int = 0
    instructions: int | None = None  # what the search reached
    features_used: frozenset[str] = frozenset()
    # CPU into the search when it reached the program it ended on (None: not recorded)
    settled_ms: int | None = None
    begun: bool = False  # it began from the board's best, not from the engine's starts

    @property
    def active(self) -> bool:
        return self.outcome is None


@dataclass(frozen=True)
class Best:
    """A board's best proven program for a routine, and how it got there."""
    instructions: int
    cycles: float  # the performance model's estimate
    t: int  # market clock when it was reached
    source: str  # "start" (the engine's starting program) or an experiment's identity
    adopted: bool = False
    # a translation (another board's program lifted and lowered for this one), not a
    # program some search of this ISA and features found
    translated: bool = False
    text: str = ""
    code: str = ""  # hex
    features_used: frozenset[str] = frozenset()


class MarketState:
    def __init__(self, prior_size: float = 1.0) -> None:
        self.agents: dict[str, AgentState] = {}
        self.experiments: dict[str, ExperimentState] = {}
        self.by_search: dict[tuple, list[ExperimentState]] = {}  # Experiment.search -> them
        self.order: list[str] = []  # identities in acceptance order
        self.refusals: list[dict] = []
        self.best: dict[tuple[str, str], Best] = {}  # (agent, routine) -> best
        self.adoptions: list[dict] = []
        self.rejected_adoptions: list[dict] = []
        # (agent, routine, program text of the other ISA) translated for that agent
        self.translated: set[tuple[str, str, str]] = set()
        # (routine, isa) -> (the experiment that met it, the vector), in ledger order
        self.counterexamples: dict[tuple[str, str], list[tuple[str, dict]]] = {}
        self.payouts: list[dict] = []
        self.payments: list[dict] = []  # the meta-motherboard's, as credited
        self.unclaimed: dict[str, float] = {}  # fingerprint -> paid before any agent joined
        self.prior_size = prior_size
        self.posterior = Posterior(prior_size)  # from every agent's experiments
        self.own_posteriors: dict[str, Posterior] = {}  # from each agent's own only
        self.clock = 0  # market CPU-milliseconds
        self.size = 0  # ledger entries applied (market's and others')

    @classmethod
    def replay(cls, entries: Iterable[tuple[int, Mapping]], prior_size: float = 1.0
               ) -> MarketState:
        state = cls(prior_size)
        for index, record in entries:
            state.apply(index, record)
        return state

    # -- applying entries -----------------------------------------------------------

    def apply(self, index: int, record: Mapping) -> None:
        self.size = max(self.size, index + 1)
        if R.is_payment(record):
            self._motherboard_payment(index, record)
            return
        if not R.is_market(record):
            return
        self.clock = max(self.clock, record["t"])
        getattr(self, "_" + record["type"].replace("-", "_"))(index, record)

    def _joined(self, index: int, r: Mapping) -> None:
        if r["agent"] in self.agents:
            return  # a resumed market's boards join again: once is what counts
        agent = AgentState(r["agent"], r["board"], r["isa"], frozenset(r["features"]), 0.0,
                           r.get("fingerprint"))
        agent.credit(r["t"], r["credits"])
        self.agents[r["agent"]] = agent
        waiting = self.unclaimed.pop(agent.fingerprint, 0.0) if agent.fingerprint else 0.0
        if waiting:
            agent.paid += waiting
            agent.credit(r["t"], waiting)

    def _motherboard_payment(self, index: int, r: Mapping) -> None:
        """Credits the meta-motherboard paid to a fingerprint (at the market clock: the
        payment's own `t` is the motherboard's)."""
        fingerprint, credits = r["fingerprint"], r["credits"]
        holders = [a for a in self.agents.values() if a.fingerprint == fingerprint]
        self.payments.append({"index": index, "fingerprint": fingerprint, "credits": credits,
                              "agents": [a.key for a in holders]})
        if not holders:
            self.unclaimed[fingerprint] = self.unclaimed.get(fingerprint, 0.0) + credits
            return
        for a in holders:
            a.paid += credits / len(holders)
            a.credit(self.clock, credits / len(holders))

    def _accepted(self, index: int, r: Mapping) -> None:
        experiment = Experiment.from_record(r["experiment"])
        state = ExperimentState(experiment, r["id"], r["agent"], r["class"], r["stake"], index,
                                r["t"])
        self.experiments[r["id"]] = state
        self.by_search.setdefault(experiment.search, []).append(state)
        self.order.append(r["id"])
        self.agents[r["agent"]].credit(r["t"], -r["stake"])

    def _refused(self, index: int, r: Mapping) -> None:
        self.refusals.append(dict(r, index=index))

    def _result(self, index: int, r: Mapping) -> None:
        e = self.experiments[r["id"]]
        e.outcome, e.result, e.cpu_ms = r["outcome"], index, r["cpu_ms"]
        e.instructions = r["instructions"]
        e.features_used = frozenset(r.get("features_used", ()))
        e.settled_ms = r.get("settled_ms")
        e.begun = bool(r["start"].get("begun"))
        agent = self.agents[e.agent]
        agent.cpu_ms += r["cpu_ms"]
        if r["refund"]:
            agent.credit(r["t"], r["refund"])
        key = (e.agent, e.experiment.routine)
        start = r["start"]
        # a start that was the board's best already (begun) is no news: it is in `best`
        if start["instructions"] is not None and not start.get("begun") and (
                key not in self.best or start["instructions"] < self.best[key].instructions):
            self.best[key] = Best(start["instructions"], start["cycles"],
                                  start.get("reached", 0), "start",
                                  text=start.get("text", ""))
        saved = None
        if r["outcome"] == R.IMPROVEMENT:
            saved = r["cycles_saved"]
            self.best[key] = Best(r["instructions"], r["cycles"], r["reached"], r["id"],
                                  text=r["text"], code=r["code"],
                                  features_used=e.features_used)
        self._observe(e, saved)

    def _counterexample(self, index: int, r: Mapping) -> None:
        self.counterexamples.setdefault((r["routine"], r["isa"]), []).append(
            (r["id"], r["vector"]))

    def _refuted(self, index: int, r: Mapping) -> None:
        e = self.experiments[r["id"]]
        e.outcome, e.result, e.cpu_ms = R.REFUTED, index, r["cpu_ms"]
        self.agents[e.agent].cpu_ms += r["cpu_ms"]
        self._observe(e, None)

    def _observe(self, e: ExperimentState, saved: float | None) -> None:
        for posterior in (self.posterior, self.own_posterior(e.agent)):
            posterior.observe(e.experiment.strategy, e.experiment.target, e.klass, saved)

    def own_posterior(self, agent: str) -> Posterior:
        if agent not in self.own_posteriors:
            self.own_posteriors[agent] = Posterior(self.prior_size)
        return self.own_posteriors[agent]

    def _adopted(self, index: int, r: Mapping) -> None:
        self.adoptions.append(dict(r, index=index))
        self._translation(r)
        source = self.experiments[r["id"]]
        key = (r["agent"], source.experiment.routine)
        if "translated_from" not in r and source.outcome == R.IMPROVEMENT:
            # the finder's strategy improved the routine for this board too (not so when
            # the search ended where it began, its start news to this board only; nor for
            # a translation, another basin, which its search did not reach)
            adopter = self.agents[r["agent"]]
            before = self.best.get(key)
            self.posterior.observe_adoption(
                source.experiment.strategy,
                target_of(source.experiment.routine, adopter.isa, adopter.features),
                max(0.0, before.cycles - r["cycles"]) if before else 0.0)
        # a translation (another ISA's program written for this one) says what it uses
        used = (frozenset(r["features_used"]) if "features_used" in r
                else source.features_used)
        self.best[key] = Best(
            r["instructions"], r["cycles"], r["t"], r["id"], adopted=True, text=r["text"],
            code=r["code"], features_used=used, translated="translated_from" in r)

    def _not_adopted(self, index: int, r: Mapping) -> None:
        self.rejected_adoptions.append(dict(r, index=index))
        self._translation(r)

    def _translation(self, r: Mapping) -> None:
        if "translated_from" in r:
            self.translated.add((r["agent"], r["routine"], r["from_text"]))

    def _payout(self, index: int, r: Mapping) -> None:
        self.payouts.append(dict(r, index=index))
        self.agents[r["agent"]].credit(r["t"], r["credits"])

    # -- questions --------------------------------------------------------------------

    def active(self) -> list[ExperimentState]:
        return [self.experiments[i] for i in self.order if self.experiments[i].active]

    def done(self) -> list[ExperimentState]:
        return [self.experiments[i] for i in self.order if not self.experiments[i].active]

    def best_of(self, agent: str, routine: str) -> Best | None:
        return self.best.get((agent, routine))
