"""Benchmark: Unicorn vetting rate, instruction-discovery candidates/s, and the
pipeline end to end (generate, vet, run, store) against the fake guest and
against the real guests on QEMU boards under TCG.

    .venv/bin/python bench/probes_bench.py [--count N] [--qemu-count N]

A benchmark, not a test: it prints figures for the README, with the machine.
"""

from __future__ import annotations

from discovery.inventory import Inventory
import argparse
import itertools
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from arch import ARCHES, RISCV64, X86_64
from discovery.fingerprint import x86_fingerprint
from probes.store import CapabilityStore, StoredResult
from probes.campaign import Campaign, Policy
from testing.fake_guest import FakeGuest
from probes.catalogue import random_probes
from probes.families import cpuid, csr, discovery, isa_riscv, isa_x86
from testing.loopback import Loopback
from probes.probe import Probe
from probes.vet import vet
from probes.vet_pool import usable_cpus, vet_stream


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
    parser.add_argument("--qemu-count", type=int, default=5_000, help="random probes offered per QEMU board")
    options = parser.parse_args()
    count = options.count
    print(f"machine: {cpu_name()}, Python {platform.python_version()}, {platform.machine()}")
    rng = random.Random(0)
    for arch in ARCHES:
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
    rate("discovery candidates (capstone + Unicorn), x86_64", x86_candidates, discover(X86_64))
    rate("discovery candidates (capstone + Unicorn), riscv64", rv_candidates, discover(RISCV64))
    pooled(x86_candidates, rv_candidates, count)

    with tempfile.TemporaryDirectory() as tmp:
        store = CapabilityStore(Path(tmp, "bench.db"))
        fp = x86_fingerprint("fake", "GenuineIntel", 6, 85, 4, {})
        campaign = Campaign(Loopback(FakeGuest(X86_64)), Policy(window=64, batch_size=1024),
                            on_batch=lambda b: store.record_batch(
                                fp, "unicorn", [StoredResult(r.probe, r.observation, r.prediction) for r in b]))
        n = count // 4
        start = time.perf_counter()
        vetted = []
        for _ in range(n):
            probe = Probe(X86_64, rng.randbytes(16))
            verdict = vet(probe)
            if verdict.accepted:
                vetted.append((probe, verdict.prediction))
        report = campaign.run(vetted)
        elapsed = time.perf_counter() - start
        print(f"{'end to end vs fake guest (gen+vet+run+store), x86_64':<52} {n / elapsed:>10,.0f} /s"
              f"  ({n} generated, {len(report.results)} run and stored)")
    qemu_end_to_end(options.qemu_count)


def pooled(x86_candidates: list, rv_candidates: list, count: int) -> None:
    """The same work on every usable core (probes/vet_pool.py), as `./run probe` vets."""
    workers = usable_cpus()
    rng = random.Random(1)
    for arch in ARCHES:
        probes = [Probe(arch, rng.randbytes(16)) for _ in range(count)]
        start = time.perf_counter()
        for _ in vet_stream(probes):
            pass
        print(f"{f'vetting, random 16-byte probes, {arch}, {workers} processes':<52}"
              f" {count / (time.perf_counter() - start):>10,.0f} /s")
    for arch, candidates in ((X86_64, x86_candidates), (RISCV64, rv_candidates)):
        start = time.perf_counter()
        for probe, verdict in vet_stream(discovery.probes_for(arch, candidates)):
            if verdict.observation is not None:
                discovery.finding(arch, probe.meta["candidate"], verdict.observation)
        print(f"{f'discovery candidates, {arch}, {workers} processes':<52}"
              f" {len(candidates) / (time.perf_counter() - start):>10,.0f} /s")


E2E_RUNS = 3  # end-to-end campaigns per figure: a sweep takes a fraction of a second


def qemu_end_to_end(count: int) -> None:
    """Generated, vetted, executed in the guest on a QEMU board (TCG), stored: per arch,
    random probes and the arch's sweep, over the virtio console (the default line).
    Then the campaign alone (probes vetted beforehand) on each line, the console
    against the serial port, which shows what the line costs.  Boots are not counted."""
    from kernel.guest import build_guest
    from discovery.fingerprint import fingerprint_of
    from probes.run import POLICY, run_campaign
    from link.qemu_link import QemuLink
    from qemu.boards import board

    sweeps = {X86_64: ("q35", "cpuid", cpuid.cpuid_sweep), RISCV64: ("virt", "csr", csr.csr_sweep)}
    for arch, (board_name, sweep_name, sweep) in sweeps.items():
        guest = build_guest(arch)
        for label, probes, privileged in (("random", lambda: random_probes(arch, seed=1), False),
                                          (sweep_name, sweep, sweep_name == "csr")):
            tallies = []
            for _ in range(E2E_RUNS):  # each on a fresh board: a guest remembers the run ids it saw
                with tempfile.TemporaryDirectory() as tmp, \
                        QemuLink(board(board_name, accel="tcg"), guest, privileged=privileged) as link:
                    store = CapabilityStore(Path(tmp, "bench.db"))
                    offered = itertools.islice(probes(), count)
                    tallies.append(run_campaign(link, offered, store, fingerprint_of(Inventory.from_boot(link.first_boot), board_name),
                                                "tcg"))
                    store.close()
            rates = sorted(t.probes_per_second for t in tallies)
            tally = tallies[0]
            print(f"{f'end to end on QEMU {board_name} (TCG), {label}, {arch}':<52} {statistics.median(rates):>10,.0f} /s"
                  f"  (median of {E2E_RUNS}, {rates[0]:,.0f}-{rates[-1]:,.0f}; {tally.generated} generated,"
                  f" {tally.stored} run in the guest and stored)")
        vetted = [(p, v.prediction) for p, v in vet_stream(itertools.islice(random_probes(arch, seed=2), 4 * count))
                  if v.accepted]
        rates = {}
        for line in ("console", "serial"):
            with QemuLink(board(board_name, accel="tcg"), guest, line=line) as link:
                start = time.perf_counter()
                report = Campaign(link, POLICY).run(vetted)
                rates[line] = len(report.results) / (time.perf_counter() - start)
            print(f"{f'campaign alone, random, {arch}, {line} line':<52} {rates[line]:>10,.0f} /s"
                  f"  ({len(report.results)} vetted probes run)")
        print(f"{f'  console / serial, {arch}':<52} {rates['console'] / rates['serial']:>10.1f}x")


if __name__ == "__main__":
    main()
