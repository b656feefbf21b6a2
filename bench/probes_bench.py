"""Benchmark: Unicorn vetting rate, instruction-discovery candidates/s, and the
pipeline end to end (generate, vet, run, store) against the fake guest and
against the real guests on QEMU boards under TCG.

    .venv/bin/python bench/probes_bench.py [--count N] [--qemu-count N] [--only qemu|batch|faults]

A benchmark, not a test: it prints figures for the README, with the machine.
End-to-end figures come as two rates: generated/s counts every probe the family
made (vetting and rejecting included), executed/s those run in the guest and
stored.
"""

from __future__ import annotations

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
from discovery.inventory import Inventory
from probes.campaign import Campaign
from probes.campaign_state import Policy
from probes.catalogue import random_probes
from probes.families import cpuid, csr, discovery, isa_riscv, isa_x86
from probes.probe import Probe
from probes.store import CapabilityStore, StoredResult
from probes.vet import vet
from probes.vet_pool import usable_cpus, vet_stream
from testing.fake_guest import FakeGuest
from testing.loopback import Loopback


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
    parser.add_argument("--qemu-count", type=int, default=5_000,
                        help="random probes offered per QEMU board")
    parser.add_argument("--only", choices=("qemu", "batch", "faults"),
                        help="only the QEMU end-to-end figures, the batch probes' or the"
                             " faulty line's")
    options = parser.parse_args()
    print(f"machine: {cpu_name()}, Python {platform.python_version()}, {platform.machine()}")
    if options.only is None:
        in_process(options.count)
    if options.only in (None, "qemu"):
        qemu_end_to_end(options.qemu_count)
    if options.only in (None, "batch"):
        batch_vectors()
    if options.only in (None, "faults"):
        faulty_line()


def in_process(count: int) -> None:
    """Vetting, discovery candidates and the campaign against the fake guest."""
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
    spaces = ("legacy", "0f", "vex", "evex")
    x86_candidates = list(itertools.islice(isa_x86.candidates(spaces), count))
    rv_candidates = list(isa_riscv.candidates())
    generated = (len(x86_candidates) + len(rv_candidates)) / (time.perf_counter() - start)
    print(f"{'candidate generation incl. capstone decode':<52} {generated:>10,.0f} /s")
    rate("discovery candidates (capstone + Unicorn), x86_64", x86_candidates, discover(X86_64))
    rate("discovery candidates (capstone + Unicorn), riscv64", rv_candidates, discover(RISCV64))
    pooled(x86_candidates, rv_candidates, count)

    with tempfile.TemporaryDirectory() as tmp:
        store = CapabilityStore(Path(tmp, "bench.db"))
        fp = x86_fingerprint("fake", "GenuineIntel", 6, 85, 4, {})

        def stored(batch):
            store.record_batch(fp, "unicorn",
                               [StoredResult(r.probe, r.observation, r.prediction) for r in batch])

        campaign = Campaign(Loopback(FakeGuest(X86_64)), Policy(window=64, batch_size=1024),
                            on_batch=stored)
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
        executed = len(report.results)
        print(f"{'end to end vs fake guest (gen+vet+run+store), x86_64':<52}"
              f" {n / elapsed:>10,.0f} generated/s  {executed / elapsed:,.0f} executed/s"
              f"  ({n} generated, {executed} run and stored)")


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
SWEEPS = {X86_64: ("q35", "CPUID sweep", cpuid.cpuid_sweep, False),
          RISCV64: ("virt", "CSR sweep", csr.csr_sweep, True)}  # board, name, probes, privileged


def campaign_on_qemu(arch, board_name: str, probes, privileged: bool, faults=None):
    """One campaign end to end on a fresh board (TCG; its boot not counted): the tally,
    and every stored result by probe (outcome, status, fault vector, output)."""
    from discovery.fingerprint import fingerprint_of
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from probes.run import run_campaign
    from qemu.boards import board

    chosen = board(board_name, accel="tcg")
    with tempfile.TemporaryDirectory() as tmp, \
            QemuLink(chosen, build_guest(arch), privileged=privileged, faults=faults) as link:
        store = CapabilityStore(Path(tmp, "bench.db"))
        try:
            fingerprint = fingerprint_of(Inventory.from_boot(link.first_boot), board_name)
            tally = run_campaign(link, probes, store, fingerprint, "tcg")
            rows = store.conn.execute("SELECT probe_hash, outcome, status, fault_vector, output"
                                      " FROM cap_result").fetchall()
        finally:
            store.close()
    return tally, {bytes(h): (o, s, v, bytes(out)) for h, o, s, v, out in rows}


def spread(values: list[float]) -> str:
    values = sorted(values)
    return f"{statistics.median(values):,.0f} ({values[0]:,.0f}-{values[-1]:,.0f})"


def qemu_end_to_end(count: int) -> None:
    """Generated, vetted, executed in the guest on a QEMU board (TCG), stored: per arch,
    random probes and the arch's sweep, over the virtio console (the default line).
    Then the campaign alone (probes vetted beforehand) on each line, the console
    against the serial port, which shows what the line costs.  Boots are not counted."""
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from probes.run import POLICY
    from qemu.boards import board

    for arch, (board_name, sweep_name, sweep, privileged) in SWEEPS.items():
        def random_family(arch=arch):
            return itertools.islice(random_probes(arch, seed=1), count)

        for label, probes, on_privileged in (("random", random_family, False),
                                             (sweep_name, sweep, privileged)):
            # each campaign on a fresh board: a guest remembers the run ids it saw
            tallies = [campaign_on_qemu(arch, board_name, probes(), on_privileged)[0]
                       for _ in range(E2E_RUNS)]
            print(f"{f'end to end on QEMU {board_name} (TCG), {label}, {arch}':<52}"
                  f" {spread([t.generated_per_second for t in tallies])} generated/s,"
                  f" {spread([t.executed_per_second for t in tallies])} executed/s"
                  f"  (median of {E2E_RUNS}; {tallies[0].generated} generated,"
                  f" {tallies[0].executed} run in the guest and stored)")
        offered = itertools.islice(random_probes(arch, seed=2), 4 * count)
        vetted = [(p, v.prediction) for p, v in vet_stream(offered) if v.accepted]
        rates = {}
        guest = build_guest(arch)
        for line in ("console", "serial"):
            with QemuLink(board(board_name, accel="tcg"), guest, line=line) as link:
                start = time.perf_counter()
                report = Campaign(link, POLICY).run(vetted)
                rates[line] = len(report.results) / (time.perf_counter() - start)
            print(f"{f'campaign alone, random, {arch}, {line} line':<52} {rates[line]:>10,.0f} /s"
                  f"  ({len(report.results)} vetted probes run)")
        print(f"{f'  console / serial, {arch}':<52} {rates['console'] / rates['serial']:>10.1f}x")


# Batch probes (the motherboard's tasks): rounds of the two probe sizes in turn on one
# board, since the host's noise comes in spells; probes of a size a round.
BATCH_ROUNDS = 8
BATCH_PROBES = 12


def batch_vectors() -> None:
    """What the motherboard's tasks are made of: p23 in batch probes on each arch's
    default board over the console, probes of a full batch and of 2 vectors in turn.
    A vector's time end to end is the difference between the two sizes over the vectors
    between them (the fixed cost of a probe cancels); beside it, the guest's own count
    of the probe's run a vector (the batch wrapper's loop and the routine).  The rest is
    the vectors' way in and out: the line, COBS, CRC-32 and the copies in the guest."""
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from probes.routine import batch_form
    from probes.run import POLICY
    from qemu.boards import board
    from sem.library import hackers_delight
    from sem.vectors import generate

    routine = hackers_delight.p23
    seeds = itertools.count(1)
    for arch, (board_name, *_) in SWEEPS.items():
        form = batch_form(routine, arch)
        sizes = (form.capacity, 2)
        seconds: dict[int, list[float]] = {n: [] for n in sizes}
        cycles: list[int] = []
        with QemuLink(board(board_name, accel="tcg"), build_guest(arch)) as link:
            campaign = Campaign(link, POLICY)
            for round_ in range(BATCH_ROUNDS + 1):  # the first warms the board: not counted
                for size in sizes:
                    probes = [form.probe(generate(routine, size, seed=next(seeds)))
                              for _ in range(BATCH_PROBES)]
                    vetted = [(p, vet(p).prediction) for p in probes]
                    start = time.perf_counter()
                    report = campaign.run(vetted)
                    if round_ and size == form.capacity:
                        cycles += [report.results[p.content_hash].observation.cycles
                                   for p in probes]
                    if round_:
                        seconds[size].append((time.perf_counter() - start) / len(probes))
        full, small = (statistics.median(seconds[size]) for size in sizes)
        per_vector = (full - small) / (sizes[0] - sizes[1])
        print(f"{f'batch probes of p23, {arch}, a vector end to end':<52}"
              f" {per_vector * 1e6:>10.2f} µs  (a probe of {sizes[0]} vectors {full * 1e3:.3f} ms,"
              f" of {sizes[1]} {small * 1e3:.3f} ms; the probe's own run a vector, wrapper and"
              f" routine, as the guest counted it: {statistics.median(cycles) / sizes[0]:.0f}"
              " cycles;"
              f" median of {BATCH_ROUNDS} rounds of {BATCH_PROBES} probes a size)")


# Shares of the probe line's bytes damaged, half dropped and half flipped, in both
# directions (`./run probe --line-faults R` drops R and flips R: 2R in all).
FAULT_RATES = (0.0, 0.001, 0.01)


def faulty_line() -> None:
    """Each arch's sweep end to end (generated, vetted, run, stored) with the probe
    line damaging 0%, 0.1% and 1% of its bytes: executed/s and its ratio to the clean
    rate, retransmissions, and whether every stored result equals the clean run's.
    Outputs that differ between clean runs on their own are compared by outcome only
    (how many there are is printed): counters and timers, and what the last trap
    left (mcause, mtval), which depends on the probe run before -- so the last clean
    run goes in reverse order, as resends reorder runs too."""
    from link.line_faults import LineFaults

    for arch, (board_name, label, sweep, privileged) in SWEEPS.items():
        clean_rate, clean, volatile = 0.0, {}, set()
        meta = {p.content_hash: p.meta for p in sweep()}
        for fault_rate in FAULT_RATES:
            runs = []
            for seed in range(E2E_RUNS):
                probes = list(sweep())
                if fault_rate == 0 and seed == E2E_RUNS - 1:
                    probes.reverse()
                faults = LineFaults(fault_rate / 2, fault_rate / 2, seed=seed)
                runs.append(campaign_on_qemu(arch, board_name, probes, privileged, faults))
            executed = statistics.median(t.executed_per_second for t, _ in runs)
            generated = statistics.median(t.generated_per_second for t, _ in runs)
            retransmissions = statistics.median(t.retransmissions for t, _ in runs)
            if fault_rate == 0:
                clean_rate, clean = executed, runs[0][1]
                volatile = {h for h in clean if len({stored.get(h) for _, stored in runs}) > 1}
                verdict = f"{len(volatile)} outputs vary between clean runs"
            else:
                differ = [(h, stored.get(h), clean[h]) for _, stored in runs for h in clean
                          if stored.get(h) is None or (stored[h] != clean[h] if h not in volatile
                                                       else stored[h][0] != clean[h][0])]
                verdict = f"{executed / clean_rate:.0%} of clean, results " + (
                    "identical" if not differ else
                    f"DIFFER in {len(differ)} (e.g. {meta[differ[0][0]]}: {differ[0][1]},"
                    f" clean {differ[0][2]})")
            print(f"{f'{label}, {arch}, {fault_rate:.1%} byte faults':<52}"
                  f" {executed:>10,.0f} executed/s  {generated:,.0f} generated/s;"
                  f" {retransmissions:,.0f} retransmissions; {verdict} (median of {len(runs)})")


if __name__ == "__main__":
    main()
