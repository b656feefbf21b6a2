"""How much a routine is used: what an improvement to it is worth.

The semantic store records every measured run of a routine's implementations
(`sem_performance`: one row per measurement, with how many runs it covered).  A routine's
recorded uses are those runs summed over every member of its equivalence class (they are
one function under different IDs), at least 1 so that an improvement to a routine
nobody has measured yet still pays for its cycles.
"""

from __future__ import annotations

from sem.store import SemStore


def recorded_uses(store: SemStore, routine_id: str) -> int:
    members = store.members(store.class_of(routine_id))
    runs = sum(m.samples for member in members for m in store.performance(member))
    return max(1, runs)
