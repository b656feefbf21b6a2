"""Booting the RISC-V kernel on QEMU virt (TCG) for tests, through
qemu.machine.Machine: run to the guest's own exit (run_guest), boot to FINAL
with the guest staying so QMP can still be asked about the machine
(run_parked), or talk to a staying guest's probe command loop (ServingGuest).
Only QEMU's `-machine virt,dumpdtb=` runs (tests/test_riscv_devicetree.py) start
QEMU directly: they exit before any guest runs."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from contract.frames import Frame, FrameDecoder
from contract.protocol import Msg
from kernel.riscv64.build import build
from qemu.boards import Board, board
from qemu.machine import Machine
from testing.staying_guest import StayingGuest

TIMEOUT = 60  # seconds; TCG boots take well under one
QEMU = board("virt").qemu_binary


@functools.cache
def kernel_elf() -> Path:
    """Built once per test process, into a folder removed when the process ends."""
    folder = tempfile.mkdtemp(prefix="riscv-kernel-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return build(Path(folder)).elf


def virt(smp: int = 1, cpu: str | None = None, memory: int | None = None,
         extra: Sequence[str] = ()) -> Board:
    """The virt board under TCG; `extra` QEMU arguments (-device, -dtb ...) go last."""
    return board("virt", accel="tcg", smp=smp, cpu=cpu, memory=memory, qemu_args=tuple(extra))


@dataclass
class GuestRun:
    status: int
    frames: list[Frame]
    stderr: str

    def of_type(self, msg: Msg) -> list[Frame]:
        return [f for f in self.frames if f.type == msg]


def run_guest(smp: int = 1, *, cpu: str | None = None, memory: int | None = None,
              extra: Sequence[str] = ()) -> GuestRun:
    """Boot to the guest's own exit; its status (sifive_test: 0 = pass) and frames."""
    with Machine(virt(smp, cpu, memory, extra), kernel=kernel_elf(), timeout=TIMEOUT) as machine:
        status = machine.wait_exit(TIMEOUT)
        return GuestRun(status, FrameDecoder().feed(machine.serial_log), machine.stderr_text)


def run_parked(smp: int = 1, extra: Sequence[str] = (), commands: Sequence[str] = ("query-pci",)
               ) -> tuple[list[Frame], dict[str, object]]:
    """Boot with the guest asked to stay after FINAL; once FINAL has arrived, ask
    QMP `commands` about the machine the guest left behind."""
    with StayingGuest(virt(smp, extra=extra), kernel=kernel_elf()) as guest:
        return guest.discovery, {command: guest.machine.qmp(command) for command in commands}


class ServingGuest(StayingGuest):
    """A staying guest serving probe commands (probes.campaign.Link; `request`
    sends one host frame and returns its answers)."""

    def __init__(self, *, privileged: bool = False, cpu: str | None = None) -> None:
        super().__init__(virt(cpu=cpu), kernel=kernel_elf(), privileged=privileged)
