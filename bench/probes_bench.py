"""Benchmark: Unicorn vetting rate, instruction-discovery candidates/s, and the
host-side pipeline end to end against the fake guest (generate, vet, run, store).

    .venv/bin/python bench/probes_bench.py [--count N]

A benchmark, not a test: it prints figures for the README, with the machine.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import tempfile
import time
from pathlib import Path

from host.capabilities import CapabilityStore, StoredResult, x86_fingerprint
from probes.campaign import Campaign, Policy
from probes.fake_guest import FakeGuest
from probes.families import csr, discovery, isa_riscv, isa_x86
from probes.loopback import Loopback
from probes.probe import Probe
from probes.vet import vet


def rate(label: str, items: list, work) -> float:
    work(items[0])  # warm the per-arch Unicorn instance
    start = time.perf_counter()
    for item in items:
        work(item)
    per_second = len(items) / (time.perf_counter() - start)
    print(f"{label:<52} {per_second:>10,.0f} /s  ({len(items)} items)")
    return per_second


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    count = parser.parse_args().count
    print(f"machine: {cpu_name()}, Python {platform.python_version()}, {platform.machine()}")
    rng = random.Random(0)
    for arch in ("x86_64", "riscv64"):
        probes = [Probe(arch, rng.randbytes(16)) for _ in range(count)]
        rate(f"vetting, random 16-byte probes, {arch}", probes, vet)
    rate("vetting, CSR sweep (riscv64, privileged)", list(csr.csr_sweep()), vet)

    def discover(arch):
        def one(candidate):
            probe = next(discovery.probes_for(arch, [candidate]))
            verdict = vet(probe)
            if verdict.observation is not None:
                discovery.finding(arch, candidate, verdict.observation)
        return one

    start = time.perf_counter()
    x86_candidates = list(itertools.islice(isa_x86.candidates(("legacy", "0f", "vex", "evex")), count))
    rv_candidates = list(isa_riscv.candidates())
    generated = len(x86_candidates) + len(rv_candidates)
    print(f"{'candidate generation incl. capstone decode':<52} {generated / (time.perf_counter() - start):>10,.0f} /s")
    rate("discovery candidates (capstone + Unicorn), x86_64", x86_candidates, discover("x86_64"))
    rate("discovery candidates (capstone + Unicorn), riscv64", rv_candidates, discover("riscv64"))

    with tempfile.TemporaryDirectory() as tmp:
        store = CapabilityStore(Path(tmp, "bench.db"))
        fp = x86_fingerprint("fake", "GenuineIntel", 6, 85, 4, {})
        campaign = Campaign(Loopback(FakeGuest("x86_64")), Policy(window=64, batch_size=1024),
                            on_batch=lambda b: store.record_batch(
                                fp, "unicorn", [StoredResult(r.probe, r.observation, r.prediction) for r in b]))
        n = count // 4
        start = time.perf_counter()
        vetted = []
        for _ in range(n):
            probe = Probe("x86_64", rng.randbytes(16))
            verdict = vet(probe)
            if verdict.accepted:
                vetted.append((probe, verdict.prediction))
        report = campaign.run(vetted)
        elapsed = time.perf_counter() - start
        print(f"{'end to end vs fake guest (gen+vet+run+store), x86_64':<52} {n / elapsed:>10,.0f} /s"
              f"  ({n} generated, {len(report.results)} run and stored)")


if __name__ == "__main__":
    main()
