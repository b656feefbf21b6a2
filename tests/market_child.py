"""A market process for the resume test: four synthetic boards, each search taking real
time, every search's start written to MARKERS before it runs.

    python tests/market_child.py DB MARKERS LIMIT_MS SECONDS_PER_SEARCH
"""

import sys
import time
from pathlib import Path

from market.driver import Driver
from market.market import Book, Market, RoutineInfo, Rules, Strategy
from stores.ledger import Ledger
from testing.market_world import SyntheticVerifier, Truth, World, routine_id


class SlowWorld(World):
    def __init__(self, truths, quality, markers: Path, seconds: float) -> None:
        super().__init__(truths, quality)
        self.markers = markers
        self.seconds = seconds  # wall time per search: long enough to be killed in one

    def run(self, agent, routine, experiment, begin=None, vectors=()):
        with self.markers.open("a") as out:
            out.write(experiment.identity + "\n")
        time.sleep(self.seconds)
        return super().run(agent, routine, experiment, begin, vectors)


def main(db: str, markers: str, limit_ms: str, seconds: str) -> None:
    pool = [RoutineInfo(routine_id(f"r{i}"), f"r{i}", "hd") for i in range(4)]
    truths = {r.id: Truth(start=12, base=8, best=5 if i % 2 else 8) for i, r in enumerate(pool)}
    world = SlowWorld(truths, {("stoke", "hd"): 0.5, ("enumerate", "hd"): 0.2}, Path(markers),
                      float(seconds))
    strategies = (Strategy("stoke"), Strategy("enumerate"))
    market = Market(Book(Ledger.open(db)), pool, strategies, SyntheticVerifier(),
                    rules=Rules(budgets_ms=(2000, 4000, 8000)), seed=3)
    for name, isa, features in (("q64", "x86_64", ()), ("haswell", "x86_64", ("f",)),
                                ("rv64", "riscv64", ("f",)), ("rv64-nozb", "riscv64", ())):
        market.join(name, name, isa, frozenset(features), 60.0)
    Driver(market, world, limit_ms=int(limit_ms)).run()


if __name__ == "__main__":
    main(*sys.argv[1:])
