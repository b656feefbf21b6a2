"""One loop serving four boards (two x86-64 q35, two riscv64 virt) from one thread:
one of them SIGKILLed mid-campaign and restarted while the others go on; every
probe answered exactly once, and twin boards agree with each other."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from arch import RISCV64, X86_64
from kernel.guest import build_guest
from link.qemu_link import QemuLink
from probes.board_loop import BoardJob, serve
from probes.families.cpuid import cpuid_sweep
from probes.families.csr import csr_probe
from probes.vet import vet
from qemu.boards import board

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(120)]

MIP = 0x344  # its MEIP shows whether the probe line's interrupt happens to be pending
COUNTERS = range(0xB00, 0xC20)  # mcycle, minstret, hpm counters and their user views: they move
CSRS = [n for n in range(0x000, 0x1000, 3) if n != MIP and n not in COUNTERS]


def vetted(probes):
    items = []
    for probe in probes:
        verdict = vet(probe)
        assert verdict.accepted, probe
        items.append((probe, verdict.prediction))
    return items


def test_four_boards_one_loop_one_killed_and_restarted_while_the_others_go_on():
    guests = {arch: build_guest(arch) for arch in (X86_64, RISCV64)}
    work = {X86_64: vetted(cpuid_sweep()), RISCV64: vetted(csr_probe(n) for n in CSRS)}
    specs = [(X86_64, "q35", False), (X86_64, "q35", False), (RISCV64, "virt", True),
             (RISCV64, "virt", True)]
    victim = 0  # an x86-64 board: SeaBIOS makes its boot the slowest to come back
    links = [QemuLink(board(name, accel="tcg"), guests[arch], privileged=privileged)
             for arch, name, privileged in specs]
    try:
        batches: list[tuple[int, float, list]] = []  # (board, when, results)
        killed_at: list[float] = []

        def on_batch(index):
            def take(batch):
                batches.append((index, time.monotonic(), batch))
                if index == victim and not killed_at:  # mid-campaign: after its first batch
                    os.kill(links[victim].machine.pid, signal.SIGKILL)
                    killed_at.append(time.monotonic())
            return take

        jobs = [BoardJob(link, work[arch], on_batch=on_batch(i))
                for i, (link, (arch, _, _)) in enumerate(zip(links, specs, strict=True))]
        started = time.monotonic()
        outcomes = serve(jobs)
        seconds = time.monotonic() - started
        running = [link.machine is not None and link.machine.running for link in links]
    finally:
        for link in links:
            link.close()

    assert [o.error for o in outcomes] == [None] * 4 and all(running)
    restarts = [o.report.restarts for o in outcomes]
    assert [link.restarts for link in links] == [1, 0, 0, 0] == restarts
    assert not any(o.report.quarantined for o in outcomes)  # the kill was no probe's doing
    for index, (arch, _, _) in enumerate(specs):  # every probe answered, exactly once
        answered = Counter(r.probe.content_hash
                           for i, _, batch in batches if i == index for r in batch)
        assert set(answered) == {p.content_hash for p, _ in work[arch]}
        assert set(answered.values()) == {1}
        assert set(outcomes[index].report.results) == set(answered)

    # The others went on while the victim was down: results of theirs arrived between
    # the kill and the victim's first result from its new boot.
    (kill,) = killed_at
    back = min(when for i, when, _ in batches if i == victim and when > kill)
    assert any(kill < when < back for i, when, _ in batches if i != victim)
    assert len(links[victim].boots) == 2 and links[victim].boots[1].final is not None

    # Twins agree: the same probes on the same board model give the same answers
    # (the victim's reruns included).
    def answers(index):
        return {r.probe.content_hash: (r.observation.outcome, r.observation.output)
                for i, _, batch in batches if i == index for r in batch}
    assert answers(0) == answers(1)
    assert answers(2) == answers(3)
    assert seconds < 60
