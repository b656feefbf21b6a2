"""Booting the RISC-V kernel under QEMU for tests: run to exit, or run until
FINAL with the guest parked so QMP can still be asked about the machine.

Uses QEMU directly (`-serial file:`) and the shared frame decoder; once
qemu/machine.py lands these helpers can become a thin layer over it.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from qemu.qmp.legacy import QEMUMonitorProtocol

from host.frames import Frame, FrameDecoder
from host.protocol import Msg
from kernel.riscv64.build import build

QEMU = "qemu-system-riscv64"
TIMEOUT = 60  # seconds; TCG boots take well under one
PARK = "metaos.park"  # /chosen bootargs that keep the guest up after FINAL


@functools.cache
def kernel_elf() -> Path:
    return build(Path(tempfile.mkdtemp(prefix="riscv-kernel-"))).elf


def qemu_argv(machine: str = "virt", smp: int = 1, extra: tuple[str, ...] = ()) -> list[str]:
    return [QEMU, "-machine", machine, "-bios", "none", "-kernel", str(kernel_elf()),
            "-smp", str(smp), "-display", "none", "-monitor", "none", "-nic", "none",
            "-accel", "tcg", *extra]


@dataclass
class GuestRun:
    status: int
    frames: list[Frame]
    stderr: str

    def of_type(self, msg: Msg) -> list[Frame]:
        return [f for f in self.frames if f.type == msg]


def run_guest(smp: int = 1, extra: tuple[str, ...] = (), machine: str = "virt") -> GuestRun:
    """Boot to the guest's own exit; return its status and frames."""
    with tempfile.TemporaryDirectory() as tmp:
        serial = Path(tmp) / "serial"
        argv = qemu_argv(machine, smp, extra) + ["-serial", f"file:{serial}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
        frames = FrameDecoder().feed(serial.read_bytes()) if serial.exists() else []
    return GuestRun(done.returncode, frames, done.stderr)


def run_parked(smp: int = 1, extra: tuple[str, ...] = (), commands: tuple[str, ...] = ("query-pci",)
               ) -> tuple[list[Frame], dict[str, object]]:
    """Boot with the guest asked (bootargs) to park after FINAL; once FINAL has
    arrived, ask QMP `commands` about the machine the guest left behind."""
    with tempfile.TemporaryDirectory() as tmp:
        serial, socket = Path(tmp) / "serial", Path(tmp) / "qmp.sock"
        argv = qemu_argv("virt", smp, extra) + [
            "-serial", f"file:{serial}", "-append", PARK,
            "-qmp", f"unix:{socket},server=on,wait=off"]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            frames = _wait_for_final(serial, process)
            monitor = QEMUMonitorProtocol(str(socket))
            monitor.connect()
            answers = {command: monitor.cmd(command) for command in commands}
            monitor.cmd("quit")
            try:
                monitor.close()
            except EOFError:
                pass  # QEMU closed the socket first, as `quit` asks it to
            process.wait(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return frames, answers


def _wait_for_final(serial: Path, process: subprocess.Popen) -> list[Frame]:
    decoder, frames, deadline = FrameDecoder(), [], time.monotonic() + TIMEOUT
    with_offset = 0
    while time.monotonic() < deadline:
        if serial.exists():
            data = serial.read_bytes()
            frames += decoder.feed(data[with_offset:])
            with_offset = len(data)
            if any(f.type == Msg.FINAL for f in frames):
                return frames
        if process.poll() is not None:
            raise AssertionError(f"QEMU exited ({process.returncode}) before FINAL: "
                                 f"{process.stderr.read().decode(errors='replace')}")
        time.sleep(0.05)
    raise AssertionError("no FINAL frame within the timeout")
