"""What a market run did, read back from its ledger entries alone: the schema
`metaos.market/1` the CLI writes, and the count of redundant experiments.

`redundant_experiments` is computed here from the records, apart from the market's own
refusal logic, by the definition: an accepted experiment is redundant when, at its
acceptance, an experiment with the same identity had already been accepted, or an
experiment that covers it (same routine, ISA, strategy and parameters; a feature set
including its own; at least its budget) had finished, or was running and then finished,
with a checked result the proposer's board could use (a program using only features the
board has).  Without sharing, boards do not see each other, and this count shows what
that costs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from market import records as R
from market.experiment import Experiment
from market.state import MarketState

SCHEMA = "metaos.market/1"


def market_records(entries: Iterable[tuple[int, Mapping]]) -> list[tuple[int, Mapping]]:
    """The market's own entries and the meta-motherboard's payments its credits include."""
    return [(i, r) for i, r in entries if R.concerns_market(r)]


def redundant_experiments(entries: Iterable[tuple[int, Mapping]]) -> list[str]:
    """Identities of the redundant accepted experiments, in acceptance order."""
    records = market_records(entries)
    features: dict[str, frozenset[str]] = {}
    accepted: dict[str, tuple[int, Experiment, str]] = {}  # id -> (index, experiment, agent)
    finished: dict[str, tuple[int, str, frozenset[str]]] = {}  # id -> (index, outcome, used)
    for index, r in records:
        if r["type"] == R.JOINED:
            features.setdefault(r["agent"], frozenset(r["features"]))
        elif r["type"] == R.ACCEPTED:
            accepted.setdefault(r["id"], (index, Experiment.from_record(r["experiment"]),
                                          r["agent"]))
        elif r["type"] == R.RESULT:
            finished[r["id"]] = (index, r["outcome"], frozenset(r["features_used"]))
        elif r["type"] == R.REFUTED:
            finished[r["id"]] = (index, R.REFUTED, frozenset())
    out = []
    seen_identities: set[str] = set()
    for index, r in records:
        if r["type"] != R.ACCEPTED:
            continue
        if r["id"] in seen_identities:
            out.append(r["id"])
            continue
        seen_identities.add(r["id"])
        p = Experiment.from_record(r["experiment"])
        board = features[r["agent"]]
        for other, (at, e, _) in accepted.items():
            if other == r["id"] or at > index or other not in finished:
                continue
            _, outcome, used = finished[other]
            covers = (e.routine == p.routine and e.isa == p.isa and e.strategy == p.strategy
                      and e.params == p.params and e.features >= p.features
                      and e.cpu_ms >= p.cpu_ms)
            if covers and outcome in (R.IMPROVEMENT, R.NONE) and used <= board:
                out.append(r["id"])
                break
    return out


def best_history(entries: Iterable[tuple[int, Mapping]]) -> dict[tuple[str, str], list]:
    """(agent, routine) -> [(t ms, instructions, how)], each entry better than the one
    before: the start program when its search proved it, the agent's own improvements
    when they were reached in the search, adoptions when they were checked.  A search
    that began from the board's best so far (begun) adds its start nowhere: that step is
    here already."""
    steps: dict[tuple[str, str], list] = {}
    routine_of: dict[str, str] = {}
    for _, r in market_records(entries):
        if r["type"] == R.ACCEPTED:
            routine_of[r["id"]] = r["experiment"]["routine"]
        elif r["type"] == R.RESULT:
            key = (r["agent"], routine_of[r["id"]])
            # the engine's own start is the board's once its search proved it (ledgers
            # before `reached` was kept: at 0); a start that was the board's best already
            # (begun) was reached when it got it, and is in these steps then
            start = r["start"]
            if start["instructions"] is not None and not start.get("begun"):
                steps.setdefault(key, []).append((start.get("reached", 0),
                                                  start["instructions"], "start"))
            if r["outcome"] == R.IMPROVEMENT:
                steps.setdefault(key, []).append((r["reached"], r["instructions"], "found"))
        elif r["type"] == R.ADOPTED:
            steps.setdefault((r["agent"], r["routine"]), []).append(
                (r["t"], r["instructions"], "adopted"))
    out = {}
    for key, found in steps.items():
        best: list = []
        for step in sorted(found):
            if not best or step[1] < best[-1][1]:
                best.append(step)
        out[key] = best
    return out


def time_to_reach(history: Mapping[tuple[str, str], list],
                  targets: Mapping[tuple[str, str], int]) -> int | None:
    """The market clock (ms) at which every (agent, routine) had reached its target
    instruction count; None if one never did."""
    latest = 0
    for key, target in targets.items():
        when = next((t for t, n, _ in history.get(key, ()) if n <= target), None)
        if when is None:
            return None
        latest = max(latest, when)
    return latest


def report(entries: Iterable[tuple[int, Mapping]], names: Mapping[str, str], *,
           sharing: bool, seed: int, budget_s: float, ledger: Mapping) -> dict:
    """The `metaos.market/1` document of a run: every experiment, refusal and adoption
    with its ledger index, each agent's credits over time, the redundant experiments
    (must be 0 with sharing), and per routine and board the best count and when."""
    entries = market_records(entries)
    state = MarketState.replay(entries)
    boards = {k: a.board for k, a in state.agents.items()}
    experiments = []
    for identity in state.order:
        e = state.experiments[identity]
        x = e.experiment
        experiments.append({
            "identity": identity, "agent": e.agent, "board": boards[e.agent],
            "routine": x.routine, "routine_name": names.get(x.routine, x.routine[:12]),
            "strategy": x.strategy, "params": dict(x.params), "features": sorted(x.features),
            "seeds": list(x.seeds), "cpu_seconds": x.cpu_seconds,
            "cpu_used_seconds": e.cpu_ms / 1000, "outcome": e.outcome or "active",
            # CPU into the search when it reached the program it ended on
            "settled_seconds": None if e.settled_ms is None else e.settled_ms / 1000,
            "instructions": e.instructions, "ledger_index": e.accepted,
            "result_index": e.result})
    strategies: dict[str, dict] = {}
    for e in state.done():
        s = strategies.setdefault(e.experiment.strategy,
                                  {"experiments": 0, "cpu_seconds": 0.0, "improvements": 0})
        s["experiments"] += 1
        s["cpu_seconds"] += e.cpu_ms / 1000
        s["improvements"] += e.outcome == R.IMPROVEMENT
    history = best_history(entries)
    best = []
    for (agent, routine), steps in sorted(history.items(), key=lambda kv: (
            names.get(kv[0][1], kv[0][1]), boards[kv[0][0]])):
        t, n, how = steps[-1]
        best.append({"routine": routine, "routine_name": names.get(routine, routine[:12]),
                     "board": boards[agent], "agent": agent, "instructions": n,
                     "reached_seconds": t / 1000, "how": how,
                     "steps": [[s[0] / 1000, s[1], s[2]] for s in steps]})
    return {
        "schema": SCHEMA, "sharing": sharing, "seed": seed, "budget_seconds": budget_s,
        "clock_seconds": state.clock / 1000, "ledger": dict(ledger),
        "agents": {k: {"board": a.board, "isa": a.isa, "features": sorted(a.features),
                       "fingerprint": a.fingerprint,
                       "credits": round(a.credits, 6), "cpu_seconds": a.cpu_ms / 1000,
                       "paid_by_motherboard": round(a.paid, 6),
                       "credits_over_time": [[t / 1000, round(c, 6)] for t, c in a.history]}
                   for k, a in state.agents.items()},
        "experiments": experiments,
        "counts": {"accepted": len(state.order), "done": len(state.done()),
                   "active": len(state.active()), "refused": len(state.refusals),
                   "improvements": sum(e.outcome == R.IMPROVEMENT for e in state.done()),
                   "refuted": sum(e.outcome == R.REFUTED for e in state.done()),
                   "adopted": len(state.adoptions),
                   "not_adopted": len(state.rejected_adoptions)},
        "refused": [{"identity": r["id"], "agent": r["agent"], "board": boards[r["agent"]],
                     "reason": r["reason"], "by": r["by"],
                     "alternative": (Experiment.from_record(r["alternative"]).identity
                                     if r["alternative"] else None),
                     "ledger_index": r["index"]} for r in state.refusals],
        "adoptions": [{"agent": r["agent"], "board": boards[r["agent"]], "source": r["id"],
                       "routine": r["routine"],
                       "routine_name": names.get(r["routine"], r["routine"][:12]),
                       "instructions": r["instructions"], "ledger_index": r["index"]}
                      for r in state.adoptions],
        "strategies": strategies,
        "redundant_experiments": len(redundant_experiments(entries)),
        "best": best,
    }
