"""A campaign Link (probes/campaign.py) to a QEMU board.

The board boots with `stay`: the guest first streams its discovery frames up to
FINAL over its serial port (kept: `first_boot`, the hardware
fingerprint), then serves probe commands.  By default the board also gets a
virtio console (Board.probe_console), and the guest serves probes there: FINAL
says which line it chose (ProbeLine), and a guest that could not drive the
console is an error, not a silent fallback.  `line="serial"` keeps the probes
on the serial port.  `send` and `poll` carry raw bytes; the campaign frames them.

Sending never blocks the campaign: what it sends waits in an outbox that the
next `poll` hands to QEMU in one write (a round of commands, one wake-up of
QEMU), and what the guest cannot take yet (it is busy with a probe, or hung)
stays there for later polls.  A dead board is seen at once: QEMU exiting (a
guest reset exits it too, -no-reboot) closes the line, `poll` returns nothing
and records `died_at`.  A hung guest is simply silent.  Either way the campaign
sees silence past its deadline and calls `restart()`, which relaunches QEMU
and waits for the new boot's FINAL.

Transport fault injection (a test option): `LineFaults` drops and flips bytes
at given rates in both directions, between the frame encoder and the socket.
Boot frames are never damaged (the inventory must be right).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time

from contract.frames import FrameDecoder
from contract.protocol import ProbeLine
from kernel.guest import Guest
from link.session import SILENCE_TIMEOUT, Run
from qemu.boards import Board
from qemu.errors import QemuError, QemuExitedError
from qemu.machine import Machine
from link.line_faults import LineDamage, LineFaults

CAMPAIGN_TIME_LIMIT = 24 * 3600.0  # seconds one QEMU may serve probes (Machine timeout)
# QEMU run states a guest never leaves by itself (QMP RunState): KVM's emulator
# gave up, the guest panicked, it shut down, or a disk failed.
STOPPED_STATES = frozenset({"internal-error", "guest-panicked", "shutdown", "io-error"})
RUN_STATE_TIMEOUT = 0.1  # seconds QMP gets to say how the board is (a SIGSTOPped QEMU says nothing)
LINES = {"console": ProbeLine.VIRTIO_CONSOLE, "serial": ProbeLine.SERIAL}  # QemuLink(line=...)


class BoardBootError(QemuError):
    """The board did not reach FINAL (at launch or after a restart)."""


class QemuLink:
    """probes.campaign.Link over `board` running `guest`.  Use as a context manager
    (or call `close()`): the constructor boots the board."""

    def __init__(self, board: Board, guest: Guest, *, privileged: bool = False,
                 faults: LineFaults | None = None, keep_sent: bool = False,
                 boot_timeout: float = SILENCE_TIMEOUT, line: str = "console") -> None:
        if line not in LINES:
            raise ValueError(f"unknown probe line {line!r}: choose one of {', '.join(LINES)}")
        self.line = LINES[line]
        self._console = self.line == ProbeLine.VIRTIO_CONSOLE
        self.board = dataclasses.replace(board, stay=True, privileged=board.privileged or privileged,
                                         probe_console=self._console)
        self.guest = guest
        self.boot_timeout = boot_timeout
        self._damage = LineDamage(faults or LineFaults())
        self.keep_sent = keep_sent
        self.sent = bytearray()  # every byte the host handed to send() (before damage), if keep_sent
        self.boots: list[Run] = []  # one per launch; the first gives the inventory
        self.restarts = 0
        self.died_at: float | None = None  # when this link saw QEMU gone (monotonic)
        self.restarted_at: list[float] = []  # when each restart() was called (monotonic)
        self.machine: Machine | None = None
        self._launch()

    def __enter__(self) -> QemuLink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.machine is not None:
            self.machine.shutdown()
            self.machine = None

    # -- what the boot said ----------------------------------------------------------

    @property
    def first_boot(self) -> Run:
        """The first boot's frames up to FINAL (the inventory's and fingerprint's source)."""
        return self.boots[0]

    @property
    def accelerator(self) -> str:
        return self.board.resolved_accel()

    @property
    def dropped(self) -> int:
        return self._damage.dropped

    @property
    def flipped(self) -> int:
        return self._damage.flipped

    # -- probes.campaign.Link ---------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def send(self, data: bytes) -> None:
        """Queue `data` for the guest; the next `poll` hands it over, with whatever else
        was queued, in one write (a write wakes QEMU, and in a VM that can cost 0.2 ms)."""
        if self.keep_sent:
            self.sent += data
        self._outbox += self._damage(data)

    def poll(self, timeout: float) -> bytes:
        machine = self.machine
        assert machine is not None, "the link is closed"
        self._flush()
        data = machine.poll_serial(timeout, console=self._console)
        if not data and not machine.running:
            self._note_death()
        return self._damage(data)

    def stopped(self) -> str | None:
        """Why the board can no longer answer, when QEMU knows: it exited, or its run
        state is one the guest never leaves (STOPPED_STATES: under KVM, for one, an
        instruction the hypervisor cannot emulate).  None otherwise, a hung guest too."""
        machine = self.machine
        if machine is None or not machine.running:
            return "QEMU exited"
        state = machine.run_state(RUN_STATE_TIMEOUT)
        return f"QEMU reports the guest {state}" if state in STOPPED_STATES else None

    def restart(self) -> None:
        """Relaunch QEMU and wait for the new boot's FINAL."""
        self.restarts += 1
        self.restarted_at.append(time.monotonic())
        machine = self.machine
        if machine is not None and machine.running and machine.pid is not None:
            os.kill(machine.pid, signal.SIGKILL)  # dead or hung: a polite QMP quit would only wait
        self.close()
        self._launch()

    # -- launching --------------------------------------------------------------------

    def _flush(self) -> None:
        """Hand the guest what it will take now; a busy guest gets the rest on later polls."""
        machine = self.machine
        if not self._outbox or machine is None or not machine.running:
            return
        try:
            del self._outbox[: machine.write_serial(bytes(self._outbox), timeout=0, console=self._console)]
        except QemuExitedError:
            self._note_death()

    def _note_death(self) -> None:
        if self.died_at is None:
            self.died_at = time.monotonic()

    def _launch(self) -> None:
        self.died_at = None
        self._outbox = bytearray()  # what the guest has not taken yet
        machine = Machine(self.board, image=self.guest.image, kernel=self.guest.kernel,
                          timeout=CAMPAIGN_TIME_LIMIT)
        self.machine = machine
        run = Run(self.board, command_line=machine.command_line)
        try:
            machine.launch()
            run.command_line = machine.command_line
            started = time.monotonic()
            decoder = FrameDecoder()
            while run.final is None:
                data = machine.poll_serial(0.1)
                if not data and not machine.running:
                    raise BoardBootError(f"QEMU exited during boot (status {machine.exit_status})",
                                         command_line=machine.command_line, stderr=machine.stderr_text)
                if not data and time.monotonic() - started > self.boot_timeout:
                    raise BoardBootError(f"no FINAL frame within {self.boot_timeout:g}s of boot",
                                         command_line=machine.command_line, stderr=machine.stderr_text)
                run.frames += decoder.feed(data)
            run.seconds = time.monotonic() - started
            run.crc_errors, run.noise = decoder.crc_errors, decoder.noise_text
            self._check_final(run)
        except BaseException:
            self.close()
            raise
        self.boots.append(run)

    def _check_final(self, run: Run) -> None:
        fields, _ = run.final.fields()
        if fields["status"] != 0:
            raise BoardBootError(f"discovery ended with status {fields['status']}; see `./run discover`",
                                 command_line=run.command_line)
        served = fields["probe_line"]
        if served == self.line:
            return
        if served not in {line.value for line in ProbeLine}:
            raise BoardBootError(f"FINAL names probe line {served}, which this host does not know:"
                                 " rebuild the guest (./run build)", command_line=run.command_line)
        raise BoardBootError(
            f"the guest serves probes on its {ProbeLine(served).name} line, not the {self.line.name} one"
            " asked for: it found no virtio console it can drive (a legacy virtio-serial device,"
            " contract/virtio.py); the serial port needs none (--line serial)", command_line=run.command_line)

