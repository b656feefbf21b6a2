"""Benchmark: QEMU-start-to-FINAL of a discovery boot, next to the floor.

The floor is QEMU (+ SeaBIOS on x86-64) booting a guest that sends one byte
and exits at once: no kernel can report sooner than that.  Both are launched the
same way (qemu.machine.Machine, default board), interleaved so that load from
elsewhere hits both alike; medians are printed with their ratio.

Then the same pair under each accelerator this host has (TCG, and KVM when
/dev/kvm is usable: fewer runs, a boot under a software KVM takes seconds), the
one `--accel auto` picks and why, and `./run demo` itself as a user runs it:
process start to the report printed, several times.

    ./run bench [--arch riscv64] [--runs 10]
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from pathlib import Path

from arch import X86_64, Arch
from kernel.guest import Guest, build_floor, build_guest
from link.session import discover
from qemu.boards import board, kvm_problem
from qemu.machine import Machine

TARGET_RATIO = 1.5
TARGET_REPORT_SECONDS = 1.0  # the demo's time to its report, whichever accelerator it picks
DEMO_ARCH = X86_64  # `./run demo` boots the default x86-64 board
KVM_RUNS = 3  # boots per KVM figure: under a software KVM (kvm_pvm) each takes seconds
DEMO_RUNS = 3  # `./run demo` runs end to end
RUN = Path(__file__).resolve().parents[1] / "run"


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


def _pair(chosen, guest: Guest, floor_path: Path, runs: int) -> tuple[float, float]:
    """Medians of the floor and of QEMU start to FINAL, interleaved, on `chosen`."""
    floor, final = [], []
    for _ in range(runs):
        floor.append(_floor_seconds(chosen, floor_path))
        final.append(discover(chosen, guest).seconds)
    return statistics.median(floor), statistics.median(final)


def _demo_once() -> tuple[float, str, str]:
    """`./run demo`: seconds from its start to its exit (the report printed), and the
    Boot and Accelerator lines of its report."""
    started = time.monotonic()
    done = subprocess.run([str(RUN), "demo"], capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"./run demo failed ({done.returncode}): {done.stderr.strip()}")
    lines = {m.group(1): m.group(2) for m in re.finditer(r"^(Boot|Accelerator): (.*)$",
                                                          done.stdout, re.MULTILINE)}
    return seconds, lines.get("Boot", "?"), lines.get("Accelerator", "?")


def _met(seconds: float) -> str:
    return "met" if seconds <= TARGET_REPORT_SECONDS else "NOT met"


def main(arch: Arch = X86_64, runs: int = 10) -> dict[str, float]:
    guest = build_guest(arch)
    floor_path = build_floor(arch, guest.elf.parent)
    tcg = board(arch.default_board, accel="tcg")
    floor, final = _pair(tcg, guest, floor_path, runs)
    figures = {"floor": floor, "final": final}
    ratio = final / floor
    print(f"{arch} {tcg.machine} ({tcg.cpu}), TCG, median of {runs} runs:")
    print(f"  floor (QEMU start to a guest's first and only byte)   {floor * 1000:7.1f} ms")
    print(f"  MetaOS discovery (QEMU start to FINAL frame)          {final * 1000:7.1f} ms")
    print(f"  ratio {ratio:.2f}x the floor (target {TARGET_RATIO}x): "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}")

    print(f"\nTime to the report by accelerator (QEMU start to FINAL, target "
          f"{TARGET_REPORT_SECONDS:.1f} s; floor beside it, medians, interleaved):")
    by_accel = {"tcg": (floor, final, runs)}
    problem = kvm_problem(arch)
    if not problem:
        kvm = board(arch.default_board, accel="kvm")
        by_accel["kvm"] = (*_pair(kvm, guest, floor_path, KVM_RUNS), KVM_RUNS)
    for name, (accel_floor, accel_final, count) in by_accel.items():
        figures[f"{name}_floor"], figures[f"{name}_final"] = accel_floor, accel_final
        print(f"  {name}  floor {accel_floor * 1000:7.1f} ms   MetaOS {accel_final * 1000:7.1f} ms"
              f"   ({count} runs)  {_met(accel_final)}")
    if problem:
        print(f"  kvm  not measured: {problem}")
    choice = board(arch.default_board).accel_choice()
    picked = by_accel[choice.name][1]
    print(f"  auto picks {choice.name}, so {picked * 1000:.1f} ms to the report: {_met(picked)}"
          f"\n    why: {choice.reason}")

    if arch is DEMO_ARCH:
        started = time.monotonic()
        build_guest(arch)
        build = time.monotonic() - started
        demos = [_demo_once() for _ in range(DEMO_RUNS)]
        figures["demo"] = statistics.median(seconds for seconds, _, _ in demos)
        print(f"\n./run demo end to end (process start to the report printed; ./run, Python, "
              f"the guest's build, boot, report), median of {DEMO_RUNS}:")
        print(f"  {figures['demo'] * 1000:7.1f} ms, of which the guest's build "
              f"{build * 1000:.1f} ms (measured apart); each run's report said "
              f"Boot: {', '.join(boot.split(',')[0] for _, boot, _ in demos)}")
        print(f"  its report: Accelerator: {demos[-1][2]}")
    return figures
