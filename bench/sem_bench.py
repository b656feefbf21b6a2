"""Semantic core figures: hashing + storing 100,000 routines, `sem show` latency,
lowering + assembling + vetting time per routine on each architecture, and a batch of
vectors drawn and interpreted by the batch forms beside one vector at a time.

    .venv/bin/python bench/sem_bench.py [--routines N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from arch import ARCHES, RISCV64, X86_64
from cli import sem as cli
from sem import interp
from sem.batch_interp import run_many
from sem.batch_vectors import generate_batch
from sem.canon import canonicalize
from sem.ir import Node, Routine, bv32, lshr
from sem.library import FILES, hackers_delight, sorting
from sem.lower import lower_for
from sem.store import Name, SemStore
from sem.unicorn_check import check
from sem.vectors import generate
from stores.db import connect

OPS = ("add", "sub", "and", "or", "xor", "mul")


def random_routine(rng: random.Random) -> Routine:
    """A random 2-input expression of 4-12 operations (distinct with high probability)."""
    values = [Node("param", 32, (), 0), Node("param", 32, (), 1)]
    for _ in range(rng.randrange(4, 13)):
        a, b = rng.choice(values), rng.choice(values)
        op = rng.choice(OPS)
        values.append(lshr(a, rng.randrange(32)) if rng.random() < 0.15 else
                      Node(op, 32, (a, b if rng.random() < 0.7
                                    else Node("const", 32, (), rng.getrandbits(32)))))
    return Routine((bv32, bv32), values[-1], None)


def bench_store(n: int, db: Path) -> None:
    rng = random.Random(1)
    routines = [random_routine(rng) for _ in range(n)]
    t = time.perf_counter()
    for r in routines:
        canonicalize(r)
    hashing = time.perf_counter() - t
    store = SemStore(connect(db))
    t = time.perf_counter()
    for start in range(0, n, 1000):  # 1,000 routines (with a name each) per transaction
        store.add_many((r, (Name("bench", f"r{start + i}"),))
                       for i, r in enumerate(routines[start:start + 1000]))
    storing = time.perf_counter() - t
    print(f"hash {n} routines: {hashing:.2f} s ({1e6 * hashing / n:.0f} us each)")
    print(f"hash+store {n} routines (1000 per transaction): {storing:.2f} s "
          f"({n / storing:,.0f} routines/s); database {db.stat().st_size / 1e6:.1f} MB")


def bench_show(db: Path) -> None:
    for f in FILES:
        cli.add(str(f), str(db))
    for arch in ARCHES:  # first asm show makes and vets the implementation; later ones read it
        cli.show("hd:p20", "asm", arch, str(db))
    for view, arch in (("semantic", None), ("c", None), ("smtlib", None),
                       ("asm", X86_64), ("asm", RISCV64)):
        times = []
        for _ in range(50):
            t = time.perf_counter()
            cli.show("hd:p20", view, arch or X86_64, str(db))
            times.append(time.perf_counter() - t)
        label = view + (f" {arch}" if arch else "")
        print(f"sem show p20 --view {label}: median {1e3 * statistics.median(times):.2f} ms")


def bench_lowering() -> None:
    starter = [getattr(hackers_delight, n) for n in hackers_delight.__all__] + [
        sorting.sort3, sorting.sort4, sorting.sort5]
    for arch in ARCHES:
        lower_t = asm_t = vet_t = 0.0
        for r in starter:
            t0 = time.perf_counter()
            text = lower_for(arch)(r).text
            t1 = time.perf_counter()
            code = arch.assemble(text)
            t2 = time.perf_counter()
            assert check(r, arch, code, count=1000).ok
            t3 = time.perf_counter()
            lower_t, asm_t, vet_t = lower_t + t1 - t0, asm_t + t2 - t1, vet_t + t3 - t2
        k = 1e3 / len(starter)
        print(f"{arch}: per routine (mean of {len(starter)}): lower {k * lower_t:.2f} ms, "
              f"assemble {k * asm_t:.2f} ms, vet 1000 vectors in Unicorn {k * vet_t:.1f} ms")


BATCH = 50_000  # vectors a batch form is timed on (a motherboard task holds 20,000-50,000)
ONE_AT_A_TIME = 2_000  # of those, the ones the reference interpreter is timed on


def bench_batches() -> None:
    """Per vector: drawing (vectors.generate against batch_vectors.generate_batch) and
    interpreting (interp.run against batch_interp.run_many) on the same routines."""
    print(f"a batch of {BATCH:,} vectors, per vector (one at a time timed on the first"
          f" {ONE_AT_A_TIME:,}):")
    for r in (hackers_delight.p01, hackers_delight.p16, hackers_delight.p20,
              hackers_delight.p23, hackers_delight.p25, sorting.sort3, sorting.sort5):
        t = time.perf_counter()
        drawn = generate_batch(r, BATCH, seed=1)
        drawing = (time.perf_counter() - t) / BATCH
        t = time.perf_counter()
        vectors = generate(r, ONE_AT_A_TIME, seed=1)
        drawing_one = (time.perf_counter() - t) / ONE_AT_A_TIME
        t = time.perf_counter()
        run_many(r, drawn.args, drawn.memory)
        batch = (time.perf_counter() - t) / BATCH
        t = time.perf_counter()
        for v in vectors:
            interp.run(r, v.args, v.memory)
        one = (time.perf_counter() - t) / ONE_AT_A_TIME
        print(f"  {r.hint_name:<6} draw {1e6 * drawing:6.3f} us (one at a time"
              f" {1e6 * drawing_one:6.2f} us, {drawing_one / drawing:4.0f}x);  interpret"
              f" {1e6 * batch:6.3f} us (one at a time {1e6 * one:6.2f} us,"
              f" {one / batch:4.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routines", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, {_cpu_model()}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_store(args.routines, Path(tmp) / "bench.db")
        bench_show(Path(tmp) / "show.db")
    bench_lowering()
    bench_batches()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
