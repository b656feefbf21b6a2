"""Booting the RISC-V kernel under QEMU for tests: run to exit, run until
FINAL with the guest staying so QMP can still be asked about the machine, or
talk to a staying guest's probe command loop (ServingGuest).

Uses QEMU directly (`-serial file:`, or a socket chardev for two-way talk) and
the shared frame decoder; once qemu/machine.py can write to the serial line
these helpers can become a thin layer over it.
"""

from __future__ import annotations

import functools
import select
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from qemu.qmp.legacy import QEMUMonitorProtocol

from host.frames import Frame, FrameDecoder, encode_frame
from host.protocol import STAY_BOOTARG, Msg
from kernel.riscv64.build import build

QEMU = "qemu-system-riscv64"
TIMEOUT = 60  # seconds; TCG boots take well under one
PARK = STAY_BOOTARG  # /chosen bootargs that keep the guest up after FINAL


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


class ServingGuest:
    """A guest asked to stay after FINAL, serving probe commands over its serial
    line: a UNIX socket the test listens on and QEMU connects to (chardev
    socket), so bytes flow both ways.  Implements probes.campaign.Link."""

    def __init__(self, *, privileged: bool = False, extra: tuple[str, ...] = ()) -> None:
        from kernel.riscv64.probing import PRIVILEGED_BOOTARG
        self.bootargs = PARK + (f" {PRIVILEGED_BOOTARG}" if privileged else "")
        self.extra = extra
        self.boot_frames: list[Frame] = []
        self.decoder = FrameDecoder()
        self.seq = 0
        self._process: subprocess.Popen | None = None
        self._connection: socket.socket | None = None

    def __enter__(self) -> "ServingGuest":
        self._tmp = tempfile.TemporaryDirectory()
        try:
            self._launch()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self._stop()
        self._tmp.cleanup()

    def _launch(self) -> None:
        path = Path(self._tmp.name) / "serial.sock"
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        argv = qemu_argv("virt", 1, self.extra) + [
            "-chardev", f"socket,id=serial0,path={path}", "-serial", "chardev:serial0",
            "-append", self.bootargs]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        listener.settimeout(TIMEOUT)
        try:
            self._connection, _ = listener.accept()
        finally:
            listener.close()
        self.decoder, self.seq = FrameDecoder(), 0
        self.boot_frames = []
        deadline = time.monotonic() + TIMEOUT
        while not any(f.type == Msg.FINAL for f in self.boot_frames):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise AssertionError(f"no FINAL from the staying guest: {self.stderr()}")
            self.boot_frames += self.decoder.feed(self.poll(0.1))

    def _stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(timeout=TIMEOUT)
            self._process.stderr.close()
            self._process = None

    def stderr(self) -> str:
        if self._process is None or self._process.poll() is None:
            return "(QEMU still running)"
        return self._process.stderr.read().decode(errors="replace")

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- probes.campaign.Link ------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def send(self, data: bytes) -> None:
        self._connection.sendall(data)

    def poll(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._connection], [], [], timeout)
        return self._connection.recv(65536) if ready else b""

    def restart(self) -> None:
        self._stop()
        self._launch()

    # -- one command at a time -----------------------------------------------------

    def command(self, msg: Msg, body: bytes, answers: int = 1,
                timeout: float = 10.0) -> list[Frame]:
        """Send one host frame and collect `answers` frames back."""
        self.send(encode_frame(msg, self.seq, body))
        self.seq = (self.seq + 1) % (1 << 16)
        frames: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(frames) < answers:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(frames)} of {answers} answers to {msg.name} within"
                                     f" {timeout}s; QEMU alive: {self.alive}")
            frames += self.decoder.feed(self.poll(0.05))
        return frames
