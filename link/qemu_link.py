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
and waits for the new boot's FINAL (link/boot.py; a failed boot raises its
BootError).  A loop serving many boards takes the same steps one at a time, so
no board waits for another's boot: `kill`, `spawn` (QEMU started; returns the
BootReader to feed from `boot_fileno`), `finish_boot`; and between them `fileno`,
`receive`, `flush` and `wants_write` on the probe line.

Transport fault injection (a test option): `LineFaults` drops and flips bytes
at given rates in both directions, between the frame encoder and the socket.
Boot frames are never damaged (the inventory must be right).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time

from contract.protocol import ProbeLine
from kernel.guest import Guest
from link.boot import Boot, BootError, BootReader, read_to_final, silence_timeout
from link.line_faults import LineDamage, LineFaults
from qemu.boards import Board
from qemu.errors import BoardError, QemuError, QemuExitedError
from qemu.machine import Machine

CAMPAIGN_TIME_LIMIT = 24 * 3600.0  # seconds one QEMU may serve probes (Machine timeout)
# QEMU run states a guest never leaves by itself (QMP RunState): KVM's emulator
# gave up, the guest panicked, it shut down, or a disk failed.
STOPPED_STATES = frozenset({"internal-error", "guest-panicked", "shutdown", "io-error"})
RUN_STATE_TIMEOUT = 0.1  # seconds QMP gets to say how the board is (a SIGSTOPped QEMU says nothing)
LINES = {"console": ProbeLine.VIRTIO_CONSOLE, "serial": ProbeLine.SERIAL}  # QemuLink(line=...)


class QemuLink:
    """probes.campaign.Link over `board` running `guest`.  Use as a context manager
    (or call `close()`): the constructor boots the board (unless `launch` is False)."""

    def __init__(self, board: Board, guest: Guest, *, privileged: bool = False,
                 faults: LineFaults | None = None, keep_sent: bool = False,
                 boot_timeout: float | None = None, line: str = "console",
                 launch: bool = True) -> None:
        if line not in LINES:
            raise ValueError(f"unknown probe line {line!r}: choose one of {', '.join(LINES)}")
        self.line = LINES[line]
        self._console = self.line == ProbeLine.VIRTIO_CONSOLE
        self.board = dataclasses.replace(board, stay=True, probe_console=self._console,
                                         privileged=board.privileged or privileged)
        self.guest = guest
        # seconds of silence while it boots (None: link.boot.silence_timeout, per accelerator)
        self.boot_timeout = silence_timeout(board) if boot_timeout is None else boot_timeout
        self._damage = LineDamage(faults or LineFaults())
        self.keep_sent = keep_sent
        self.sent = bytearray()  # every byte handed to send() (before damage), if keep_sent
        self.boots: list[Boot] = []  # one per launch; the first gives the inventory
        self.restarts = 0
        self.died_at: float | None = None  # when this link saw QEMU gone (monotonic)
        self.restarted_at: list[float] = []  # when each restart() was called (monotonic)
        self.machine: Machine | None = None
        self.booting: BootReader | None = None  # a launch between spawn() and finish_boot()
        self._outbox = bytearray()  # what the guest has not taken yet
        if launch:  # else whoever holds it spawns it (a loop serving many boards boots
            self._launch()  # each from its selector: `spawn`, `boot_fileno`, `finish_boot`)

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
    def first_boot(self) -> Boot:
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
        self.flush()
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
        self.kill()
        self._launch()

    def kill(self) -> None:
        """The first step of a restart: end this QEMU (dead or hung: a polite QMP quit
        would only wait) and count the restart."""
        self.restarts += 1
        self.restarted_at.append(time.monotonic())
        machine = self.machine
        if machine is not None and machine.running and machine.pid is not None:
            os.kill(machine.pid, signal.SIGKILL)
        self.close()

    # -- the probe line, for a loop that selects on many boards ------------------------

    def fileno(self) -> int:
        """The probe line's socket (readable when the guest sent something or QEMU left)."""
        assert self.machine is not None, "the link is closed"
        return self.machine.line_fileno(console=self._console)

    def receive(self) -> bytes:
        """What the guest sent, without waiting (b"": nothing, or QEMU is gone)."""
        return self.poll(0)

    @property
    def wants_write(self) -> bool:
        """Bytes wait in the outbox for the guest to take them."""
        return bool(self._outbox)

    def flush(self) -> None:
        """Hand the guest what it will take now; a busy guest gets the rest later."""
        machine = self.machine
        if not self._outbox or machine is None or not machine.running:
            return
        try:
            taken = machine.write_serial(bytes(self._outbox), timeout=0, console=self._console)
            del self._outbox[:taken]
        except QemuExitedError:
            self._note_death()

    # -- launching --------------------------------------------------------------------

    def spawn(self) -> BootReader:
        """Start QEMU (this waits until QEMU has taken its command line, tens of
        milliseconds) and return the BootReader to feed from `boot_fileno` until FINAL,
        then call `finish_boot`.  Raises BootError when QEMU does not start."""
        self.died_at = None
        self._outbox = bytearray()
        machine = Machine(self.board, image=self.guest.image, kernel=self.guest.kernel,
                          timeout=CAMPAIGN_TIME_LIMIT)
        self.machine = machine
        boot = BootReader(self.guest, Boot(self.board, command_line=machine.command_line),
                    silence_timeout=self.boot_timeout)
        try:
            machine.launch()
        except BoardError:  # an option QEMU refused (its CPU model): the user's to change
            self.close()
            raise
        except QemuError as error:
            self.close()
            failure = boot.failure(error)
            assert failure is not None  # QEMU's error: always a failure
            raise failure from None
        assert machine.started_at is not None
        boot.run.command_line = machine.command_line
        boot.begin(machine.started_at)
        self.booting = boot
        return boot

    def boot_fileno(self) -> int:
        """The serial port the boot's frames come on."""
        assert self.machine is not None, "the link is closed"
        return self.machine.line_fileno()

    def boot_receive(self) -> bytes:
        """What the booting guest sent on its serial port, without waiting (b"": nothing,
        or QEMU is gone: check `machine.running`).  Boot frames are never damaged."""
        assert self.machine is not None, "the link is closed"
        return self.machine.poll_serial(0)

    def finish_boot(self) -> None:
        """The boot fed so far has reached FINAL: check FINAL says the board serves
        probes as asked (else BootError) and keep the boot."""
        boot = self.booting
        assert boot is not None and boot.reached_final, "feed the boot until FINAL first"
        self.booting = None
        if self.machine is not None:
            boot.run.stderr = self.machine.stderr_text
        self._check_final(boot)
        self.boots.append(boot.run)

    def _launch(self) -> None:
        try:
            boot = self.spawn()
            assert self.machine is not None
            read_to_final(self.machine, boot)
            self.finish_boot()
        except BaseException:
            self.close()
            raise

    def _note_death(self) -> None:
        if self.died_at is None:
            self.died_at = time.monotonic()

    def _check_final(self, boot: BootReader) -> None:
        run = boot.run
        assert run.final is not None
        fields, _ = run.final.fields()
        if fields["status"] != 0:
            raise BootError(f"discovery ended with status {fields['status']}; see `./run discover`",
                            run, boot.guest.symbolize)
        served = fields["probe_line"]
        if served == self.line:
            return
        if served not in {line.value for line in ProbeLine}:
            raise BootError(f"FINAL names probe line {served}, which this host does not know:"
                            " rebuild the guest (./run build)", run, boot.guest.symbolize)
        raise BootError(
            f"the guest serves probes on its {ProbeLine(served).name} line, not the"
            f" {self.line.name} one asked for: it found no virtio console it can drive (a"
            " legacy virtio-serial device, contract/virtio.py); the serial port needs none"
            " (--line serial)",
            run, boot.guest.symbolize)
