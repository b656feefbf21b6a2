"""Parity on x86-64 without popcnt (qemu64): the reformulation `popcount(x) & 1` lowered
through the parity flag (fold to 16 bits, `xor al, ah`, setnp), as gcc writes
__builtin_parity.  Independent truths: the issue's gcc count (7 with the return, gcc 12
-O3 on the clean reference C), Z3 and Unicorn inside evolve(), and the QEMU guest (a
qemu64 board, TCG) running the evolved code against the interpreter."""

from __future__ import annotations

import time

import pytest

from evolution.evolve import evolve
from evolution.registry import ISAS
from evolution.targets import TARGETS
from sem.library import hackers_delight as hd

X86 = ISAS["x86_64"]
QEMU64 = TARGETS["x86-64 qemu64"]


def _p22_on_qemu64():
    return evolve(hd.p22, QEMU64, budget_s=60, seed=1, stop_at=7, clock=time.process_time)


def test_p22_on_qemu64_reaches_the_issues_gcc_count_through_the_parity_flag():
    """17 before (the routine's cascade of shifts and xors, as gcc writes our C view)."""
    result = _p22_on_qemu64()
    assert result.instructions <= 7, result.text
    assert result.proof.proven
    assert "setnp" in result.text or "setp" in result.text or "cmovp" in result.text
    assert "popcnt" not in result.text


@pytest.mark.qemu
@pytest.mark.timeout(300)
def test_p22_evolved_on_qemu64_runs_right_in_the_guest():
    from evolution.fitness import run_in_guest
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from qemu.boards import board

    result = _p22_on_qemu64()
    with QemuLink(board("q35", cpu="qemu64", accel="tcg"), build_guest(X86.arch)) as link:
        runs = run_in_guest(link, X86, hd.p22, {"evolved": result.code}, 64, seed=3)
    assert runs["evolved"].ok, runs["evolved"].detail
