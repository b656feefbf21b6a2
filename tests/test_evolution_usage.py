"""Use drives evolution: with --auto, the routines with the most recorded runs on this
board come first, then routines never run there in the order given; runs on other
boards do not count (a store where the order is known: the runs recorded here)."""

from __future__ import annotations

from arch import X86_64
from evolution.usage import by_recorded_runs
from sem.library import hackers_delight as hd
from sem.store import Name, SemStore
from stores.db import connect
from stores.fingerprint import Fingerprint

HERE = Fingerprint(X86_64, "q35", (("family", 6), ("model", 60)))
ELSEWHERE = Fingerprint(X86_64, "q35", (("family", 6), ("model", 94)))


def test_most_recorded_runs_on_this_board_first(tmp_path):
    store = SemStore(connect(tmp_path / "metaos.db"))
    ids = {r.hint_name: store.add(r, (Name("hd", r.hint_name),))
           for r in (hd.p01, hd.p02, hd.p03, hd.p04, hd.p05)}
    runs = {"p02": [(HERE, 30), (HERE, 20), (ELSEWHERE, 9_000)], "p04": [(HERE, 70)],
            "p05": [(ELSEWHERE, 100_000)], "p03": [(HERE, 50)]}
    for name, measured in runs.items():
        impl = store.add_implementation(ids[name], X86_64, bytes([0xC3, len(name)]), "ret", "t")
        for hardware, samples in measured:
            store.record_performance(impl, hardware, "cycles", 10.0, samples, "tcg")
    library = [ids[n] for n in ("p01", "p02", "p03", "p04", "p05")]
    order = by_recorded_runs(store, HERE, library, limit=4)
    # p02 and p03 tie at 50: the tie goes by ID
    tied = sorted([ids["p02"], ids["p03"]])
    assert order == [(ids["p04"], 70), (tied[0], 50), (tied[1], 50), (ids["p01"], 0)]
    assert by_recorded_runs(store, ELSEWHERE, library, limit=2) == [(ids["p05"], 100_000),
                                                                    (ids["p02"], 9_000)]
