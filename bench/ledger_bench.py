"""Ledger figures (stores/ledger.py), each beside its floor measured in the same run:

  appends/s    entries of ~100 bytes of canonical JSON appended through Ledger.append_many,
               1,000 per transaction (hashing, node rows, commit with fsync included), with
               a signed head every 1,000 entries; beside it the same appends with no head
               signed, and the floor: plain executemany INSERTs of the same bytes into a
               one-table database opened the same way (WAL, synchronous=FULL).  Also one
               entry per transaction (`append`), beside one plain INSERT per transaction.
  proof        at N entries: Ledger.prove(index, N) (reads the entry and its stored nodes)
               and InclusionProof.verify(), median over random indexes; floor: reading one
               entry by its index.
  verify       Ledger.verify of all N entries (every leaf rehashed, every node and head
               checked); floor: reading every entry and SHA-256-hashing it once.

    .venv/bin/python bench/ledger_bench.py [--entries N] [--single N] [--proofs N]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

from stores.db import connect
from stores.ledger import Ledger, canonical_json, load_or_create_key

BATCH = 1000


def entries(n: int) -> list[bytes]:
    rng = random.Random(7)
    return [canonical_json({"experiment": i, "mutation": f"sem:p{rng.randrange(100):02d}/swap",
                            "outcome": rng.choice(("kept", "dropped", "crashed")),
                            "score": round(rng.random(), 6), "worker": rng.randrange(16)})
            for i in range(n)]


def batched_appends(db: Path, data: list[bytes], head_every: int) -> float:
    ledger = Ledger(connect(db), load_or_create_key(str(db) + ".ledger-key"), head_every)
    t = time.perf_counter()
    for start in range(0, len(data), BATCH):
        ledger.append_many(data[start:start + BATCH])
    return time.perf_counter() - t


def plain_inserts(db: Path, data: list[bytes], per_transaction: int) -> float:
    conn = connect(db)
    conn.execute("CREATE TABLE IF NOT EXISTS floor (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL)")
    t = time.perf_counter()
    for start in range(0, len(data), per_transaction):
        with conn:
            conn.executemany("INSERT INTO floor VALUES (?, ?)",
                             enumerate(data[start:start + per_transaction], start))
    return time.perf_counter() - t


def single_appends(db: Path, data: list[bytes]) -> float:
    ledger = Ledger(connect(db), load_or_create_key(str(db) + ".ledger-key"))
    t = time.perf_counter()
    for entry in data:
        ledger.append(entry)
    return time.perf_counter() - t


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>9,.0f}/s ({seconds:.2f} s for {n:,})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument("--proofs", type=int, default=10_000)
    args = parser.parse_args()
    n = args.entries
    data = entries(n)
    print(f"{n:,} entries of {statistics.mean(map(len, data)):.0f} bytes on average, "
          f"{BATCH:,} per transaction")
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        work = Path(tmp)
        signed = batched_appends(work / "signed.db", data, 1000)
        unsigned = batched_appends(work / "unsigned.db", data, n + 1)
        floor = plain_inserts(work / "floor.db", data, BATCH)
        print(f"appends, signed head every 1,000  {rate(n, signed)}")
        print(f"appends, no signed head           {rate(n, unsigned)}")
        print(f"floor: plain INSERT of the bytes  {rate(n, floor)}")
        few = data[:args.single]
        one = single_appends(work / "single.db", few)
        one_floor = plain_inserts(work / "single-floor.db", few, 1)
        print(f"one entry per transaction          {rate(len(few), one)}")
        print(f"floor: one plain INSERT per commit {rate(len(few), one_floor)}")

        ledger = Ledger.open(work / "signed.db", read_only=True)
        rng = random.Random(11)
        picks = [rng.randrange(n) for _ in range(args.proofs)]
        prove, check, read, hashes = [], [], [], set()
        for index in picks:
            t0 = time.perf_counter()
            proof = ledger.prove(index, n)
            t1 = time.perf_counter()
            assert proof.verify()
            hashes.add(len(proof.path))
            t2 = time.perf_counter()
            ledger.entry(index)
            t3 = time.perf_counter()
            prove.append(t1 - t0)
            check.append(t2 - t1)
            read.append(t3 - t2)
        both = [a + b for a, b in zip(prove, check, strict=True)]
        print(f"inclusion proof at {n:,} entries, median of {len(picks):,} random entries "
              f"({min(hashes)}-{max(hashes)} hashes): "
              f"prove {1e6 * statistics.median(prove):.0f} us + "
              f"verify {1e6 * statistics.median(check):.0f} us = "
              f"{1e6 * statistics.median(both):.0f} us (99th percentile "
              f"{1e6 * sorted(both)[int(0.99 * len(both))]:.0f} us)")
        print(f"floor: read one entry by index     {1e6 * statistics.median(read):.0f} us")

        trusted = Ledger.open(work / "signed.db").public_key
        t = time.perf_counter()
        audit = ledger.verify(trusted)
        verify = time.perf_counter() - t
        assert audit.ok, audit.reason
        conn = connect(work / "signed.db")
        t = time.perf_counter()
        for (entry,) in conn.execute("SELECT entry FROM ledger_entries ORDER BY idx"):
            hashlib.sha256(b"\x00" + entry).digest()
        read_hash = time.perf_counter() - t
        print(f"verify {audit.entries:,} entries and {audit.heads:,} signed heads: "
              f"{verify:.1f} s")
        print(f"floor: read and hash every entry   {read_hash:.1f} s")
        size = sum(f.stat().st_size for f in work.glob("signed.db*"))
        print(f"database with its WAL: {size / 1e6:.0f} MB ({size / n:.0f} bytes per entry)")


if __name__ == "__main__":
    main()
