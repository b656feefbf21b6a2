"""An experiment: what an agent stakes credits on, and its identity.

An experiment is the canonical tuple (routine ID, instruction set, the feature set it
targets, search strategy and its parameters, seed range, CPU-seconds).  Its identity
is SHA-256 of that tuple's canonical JSON (stores/ledger.canonical_json): two proposals
are the same experiment exactly when every one of those is the same, whoever proposes
them.  CPU-seconds are kept as integer milliseconds so the JSON holds no float.

Cover: a finished experiment E covers a proposal P when P asks nothing E did not
already answer (`covers`): the same routine, instruction set, strategy and parameters,
a feature set E's includes (E searched every program P could find, and more), and no
more budget than E had.  Seeds do not matter to the cover: trying the same search
again at the same budget with other seeds is refused; stake more to try again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from stores.ledger import canonical_json

Param = tuple[str, int | str]


@dataclass(frozen=True)
class Experiment:
    routine: str  # the routine's ID in the semantic store (hex)
    isa: str  # Arch.name of the instruction set the search writes
    features: frozenset[str]  # the features the search may use
    strategy: str  # a name in the strategy registry (market/strategies.py)
    params: tuple[Param, ...]  # the strategy's parameters, sorted by name
    seeds: tuple[int, int]  # [first, stop): the seeds the search runs, in turn
    cpu_ms: int  # the budget: CPU-milliseconds

    def __post_init__(self) -> None:
        if self.cpu_ms <= 0:
            raise ValueError(f"an experiment needs a positive budget, not {self.cpu_ms} ms")
        if not self.seeds[0] < self.seeds[1]:
            raise ValueError(f"seed range {self.seeds} is empty: give [first, stop) with "
                             "first < stop")
        if tuple(sorted(self.params)) != self.params:
            raise ValueError("parameters must be sorted by name: build them with params_of")

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_ms / 1000

    def to_record(self) -> dict:
        return {"routine": self.routine, "isa": self.isa, "features": sorted(self.features),
                "strategy": self.strategy, "params": dict(self.params),
                "seeds": list(self.seeds), "cpu_ms": self.cpu_ms}

    @classmethod
    def from_record(cls, record: Mapping) -> Experiment:
        return cls(record["routine"], record["isa"], frozenset(record["features"]),
                   record["strategy"], params_of(record["params"]), tuple(record["seeds"]),
                   record["cpu_ms"])

    @property
    def identity(self) -> str:
        """SHA-256 of the canonical tuple, hex."""
        return hashlib.sha256(canonical_json(self.to_record())).hexdigest()

    @property
    def search(self) -> tuple[str, str, str, tuple[Param, ...]]:
        """What decides whether one experiment can cover another, features and budget
        aside: the routine, the instruction set and the search with its parameters."""
        return (self.routine, self.isa, self.strategy, self.params)

    @property
    def target(self) -> str:
        """The routine as one feature set of one instruction set sees it: what the
        market's evidence about a strategy is kept by (market/posterior.py), since a
        search with POPCNT and one without are not the same question."""
        return target_of(self.routine, self.isa, self.features)

    def covers(self, other: Experiment) -> bool:
        """This experiment, finished, answers everything `other` would ask."""
        return (self.search == other.search and self.features >= other.features
                and self.cpu_ms >= other.cpu_ms)


def params_of(values: Mapping[str, int | str]) -> tuple[Param, ...]:
    for name, value in values.items():
        if isinstance(value, float) or not isinstance(value, int | str):
            raise ValueError(f"parameter {name}={value!r}: parameters are integers or strings "
                             "(scale a fraction to an integer), so identities stay exact")
    return tuple(sorted(values.items()))


def target_of(routine: str, isa: str, features: frozenset[str]) -> str:
    """Experiment.target: `routine` as a board of `isa` with `features` sees it."""
    return f"{routine}|{isa}|{','.join(sorted(features))}"
