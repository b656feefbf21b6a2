"""Use drives evolution: which routines a board should evolve first.

The semantic store records every measured run of a routine's implementations per hardware
fingerprint (`sem run`, the motherboard's tasks, `./run evolve`'s own measurements).  The
routines with the most runs on this board come first; routines with none follow in the
order given (the starter library's), so a board with no history still has work.
"""

from __future__ import annotations

from collections.abc import Sequence

from sem.store import SemStore
from stores.fingerprint import Fingerprint


def by_recorded_runs(store: SemStore, hardware: Fingerprint, others: Sequence[str],
                     limit: int) -> list[tuple[str, int]]:
    """At most `limit` (routine ID, runs on `hardware`) pairs, most runs first (ties in ID
    order), then routines of `others` with no runs there, in their order."""
    runs = store.recorded_runs(hardware)
    used = sorted(runs.items(), key=lambda item: (-item[1], item[0]))
    unused = [(rid, 0) for rid in dict.fromkeys(others) if rid not in runs]
    return (used + unused)[:limit]
