"""Benchmark: RISC-V boot-to-final-frame under TCG, next to the floor.

The floor is QEMU booting an ELF that exits through sifive_test at once; the
kernel run ends right after its FINAL frame (it exits on the next store), so
the process wall time is boot-to-FINAL plus QEMU's teardown, for both alike.

    .venv/bin/python bench/riscv_bench.py [--runs 10] [--smp 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from kernel.riscv64.build import build, build_floor

TARGET_RATIO = 1.5


def _run(elf: Path, smp: int, serial: Path) -> float:
    argv = ["qemu-system-riscv64", "-machine", "virt", "-bios", "none", "-kernel", str(elf),
            "-smp", str(smp), "-display", "none", "-monitor", "none", "-nic", "none",
            "-accel", "tcg", "-serial", f"file:{serial}"]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, timeout=60)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{elf.name} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--smp", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        kernel, floor = build(out).elf, build_floor(out)
        times: dict[str, list[float]] = {"floor": [], "kernel": []}
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            times["floor"].append(_run(floor, args.smp, out / "floor.serial"))
            times["kernel"].append(_run(kernel, args.smp, out / "kernel.serial"))
    floor_ms = statistics.median(times["floor"]) * 1000
    kernel_ms = statistics.median(times["kernel"]) * 1000
    ratio = kernel_ms / floor_ms
    print(f"riscv64 virt TCG -smp {args.smp}, {args.runs} runs (median):")
    print(f"  floor  {floor_ms:7.1f} ms")
    print(f"  kernel {kernel_ms:7.1f} ms  ({ratio:.2f}x the floor; target {TARGET_RATIO}x)")


if __name__ == "__main__":
    main()
