"""Benchmark: QEMU-start-to-FINAL of a discovery boot, next to the floor.

The floor is QEMU (+ SeaBIOS on x86-64) booting a guest that sends one byte
and exits at once: no kernel can report sooner than that.  Both are launched the
same way (qemu.machine.Machine, TCG, default board), interleaved so that load
from elsewhere hits both alike; medians are printed with their ratio.

    ./run bench [--arch riscv64] [--runs 10]
"""

from __future__ import annotations

import statistics
import time

from link.session import discover
from arch import X86_64, Arch
from kernel.guest import build_floor, build_guest
from qemu.boards import board
from qemu.machine import Machine

TARGET_RATIO = 1.5


def _floor_seconds(chosen, floor_path) -> float:
    """QEMU start to the floor guest's one serial byte (its last word, like FINAL)."""
    kwargs = {"image": floor_path} if chosen.boots_from_disk else {"kernel": floor_path}
    with Machine(chosen, **kwargs, timeout=60) as machine:
        if not machine.read_serial(30):
            raise RuntimeError(f"the floor guest sent nothing: {machine.stderr_text}")
        assert machine.started_at is not None
        seconds = time.monotonic() - machine.started_at
        machine.wait_exit(30)
        return seconds


def main(arch: Arch = X86_64, runs: int = 10) -> dict[str, float]:
    chosen = board(arch.default_board, accel="tcg")
    guest = build_guest(arch)
    floor_path = build_floor(arch, guest.elf.parent)
    floor, final = [], []
    for _ in range(runs):
        floor.append(_floor_seconds(chosen, floor_path))
        final.append(discover(chosen, guest).seconds)
    figures = {"floor": statistics.median(floor), "final": statistics.median(final)}
    ratio = figures["final"] / figures["floor"]
    print(f"{arch} {chosen.machine} ({chosen.cpu}), TCG, median of {runs} runs:")
    print(f"  floor (QEMU start to a guest's first and only byte)   {figures['floor'] * 1000:7.1f} ms")
    print(f"  MetaOS discovery (QEMU start to FINAL frame)          {figures['final'] * 1000:7.1f} ms")
    print(f"  ratio {ratio:.2f}x the floor (target {TARGET_RATIO}x): "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    return figures
