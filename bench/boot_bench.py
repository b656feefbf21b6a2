"""Benchmark: QEMU-start-to-FINAL of a discovery boot, next to the floor; and the
whole `./run discover` command, next to its own boot and the interpreter's start.

The floor is QEMU (+ SeaBIOS on x86-64) booting a guest that sends one byte
and exits at once: no kernel can report sooner than that.  Both are launched the
same way (qemu.machine.Machine, TCG, default board), interleaved so that load
from elsewhere hits both alike; medians are printed with their ratio.

The command figure is the wall time of `./run discover --accel tcg --json -`
as a user starts it (the shell script, its checks, Python, invoke, the guest
build or its reuse, the boot, the JSON), each run's own boot time (QEMU start to
FINAL, from its JSON) subtracted to give what the command adds; beside it
`python -c pass`, the interpreter's own start.  Goal: the command adds at
most 0.5 s to its boot.

    ./run bench [--arch riscv64] [--runs 10]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from link.session import discover
from arch import X86_64, Arch
from kernel.guest import build_floor, build_guest
from qemu.boards import board
from qemu.machine import Machine

TARGET_RATIO = 1.5
COMMAND_OVERHEAD_GOAL = 0.5  # seconds the whole command may add to its boot
REPO = Path(__file__).resolve().parents[1]


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


def _wall(argv: list[str]) -> tuple[float, str]:
    """Seconds from starting `argv` to its exit, and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def command_figures(arch: Arch = X86_64, runs: int = 10) -> dict[str, float]:
    """Medians of the whole discover command, its boots, what it adds, and the interpreter's
    start, over `runs` interleaved runs (the first command, which may build, not counted)."""
    command = [str(REPO / "run"), "discover", "--arch", arch.name, "--accel", "tcg", "--json", "-"]
    _wall(command)  # builds the guest if the build directory has none for these sources
    whole, boots, floor = [], [], []
    for _ in range(runs):
        seconds, out = _wall(command)
        whole.append(seconds)
        boots.append(json.loads(out)["boot"]["seconds"])
        floor.append(_wall([sys.executable, "-c", "pass"])[0])
    added = [w - b for w, b in zip(whole, boots, strict=True)]
    figures = {"command": statistics.median(whole), "boot": statistics.median(boots),
               "added": statistics.median(added), "python": statistics.median(floor)}
    rows = [("python -c pass (the interpreter's start)", "python"),
            ("./run discover --accel tcg --json - (whole command)", "command"),
            ("  its boot (QEMU start to FINAL, from its JSON)", "boot"),
            ("  what the command adds to its boot", "added")]
    for label, key in rows:
        print(f"  {label:<52}  {figures[key] * 1000:7.1f} ms")
    print(f"  command goal: at most {COMMAND_OVERHEAD_GOAL * 1000:.0f} ms added to the boot: "
          f"{'met' if figures['added'] <= COMMAND_OVERHEAD_GOAL else 'NOT met'}")
    return figures


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
    figures.update(command_figures(arch, runs))
    return figures
