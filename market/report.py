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

SCHEMA = "metaos.market/1"


def market_records(entries: Iterable[tuple[int, Mapping]]) -> list[tuple[int, Mapping]]:
    return [(i, r) for i, r in entries if R.is_market(r)]


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
