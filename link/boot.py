"""Boot to FINAL, written once: for discovery runs (link/session.py), for a probe
board's launch and every restart (link/qemu_link.py), and for a loop serving many
boards (probes/board_loop.py).

`BootReader` is the state machine: fed the serial line's bytes and the time, it decodes
frames into a `Boot`, notes when FINAL arrives and when the guest has been silent
too long; it never reads a socket, sleeps or looks at a clock.  `read_to_final`
drives it from a blocking read of one Machine; a selector loop feeds it instead.

Every way a boot can fail raises (or returns) a BootError: QEMU refusing its
command line or missing, the guest faulting, resetting or exiting before FINAL,
going silent, or a FINAL that says the board cannot serve as asked.  It carries
the run so far (the frames decoded, never lost, and the text the guest printed
outside frames), QEMU's command line and stderr, as the QEMU harness style asks.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from contract.frames import Frame, FrameDecoder
from contract.protocol import Msg
from kernel.guest import Guest, Symbolizer
from link.describe import describe
from qemu.boards import Board
from qemu.errors import GuestTimeoutError, QemuError
from qemu.machine import Machine

SILENCE_TIMEOUT = 20.0  # seconds the guest may stay silent before it is declared hung
# Under KVM the firmware's port I/O (SeaBIOS reads our image from the IDE disk a word per
# exit) exits to QEMU, through two hypervisors when nested: measured on this project's
# nested kvm_pvm host (AMD EPYC, 2 cores, load 4.8), 9.8 s from QEMU's start to the
# guest's first frame (TCG: 0.35 s), so a host a little busier passed 20 s of silence.
KVM_SILENCE_TIMEOUT = 90.0
EXIT_TIMEOUT = 10.0  # seconds from the line closing (or a leaving board's FINAL) to QEMU's exit
SHOWN_FRAMES = 8  # how many of the last frames a failure report shows
SHOWN_TEXT_LINES = 5  # lines of guest text outside frames a failure report shows


@dataclass
class Boot:
    """What one boot produced so far."""

    board: Board
    frames: list[Frame] = field(default_factory=list)
    crc_errors: int = 0
    lost_frames: int = 0
    noise: str = ""  # text the guest (or its firmware) printed outside frames
    seconds: float | None = None  # QEMU start to the FINAL frame
    exit_status: int | None = None
    command_line: list[str] = field(default_factory=list)
    stderr: str = ""

    @property
    def final(self) -> Frame | None:
        return next((f for f in reversed(self.frames) if f.type == Msg.FINAL), None)


class BootError(QemuError):
    """A board that did not come up as asked.  `run` keeps what the boot produced;
    str() shows the message, the last frames, the guest's text outside frames, the
    command line and what QEMU said."""

    def __init__(self, message: str, run: Boot, symbolize: Symbolizer | None = None) -> None:
        super().__init__(message, command_line=run.command_line, stderr=run.stderr,
                         exit_status=run.exit_status)
        self.run = run
        self.symbolize = symbolize

    def __str__(self) -> str:
        run = self.run
        parts = [self.message]
        shown = run.frames[-SHOWN_FRAMES:]
        if shown:
            parts.append(f"last {len(shown)} of {len(run.frames)} frames decoded:")
            parts += ["  " + describe(f, self.symbolize) for f in shown]
        else:
            parts.append("no frame was decoded")
        if run.crc_errors:
            parts.append(f"{run.crc_errors} corrupted frame(s) were rejected")
        if run.noise.strip():
            text = run.noise.strip().splitlines()[-SHOWN_TEXT_LINES:]
            parts.append("guest text outside frames:\n  " + "\n  ".join(text))
        qemu = super().__str__().split("\n", 1)  # QemuError's: the message, command, QEMU said
        if len(qemu) > 1:
            parts.append(qemu[1])
        return "\n".join(parts)


def silence_timeout(board: Board) -> float:
    """How long a guest on `board` may stay silent while it boots: longer under KVM."""
    return KVM_SILENCE_TIMEOUT if board.resolved_accel() == "kvm" else SILENCE_TIMEOUT


class BootReader:
    """One boot up to FINAL, fed bytes and time.  Call `begin` when QEMU is spawned
    (Boot.seconds and the first silence count from there)."""

    def __init__(self, guest: Guest, run: Boot, *, silence_timeout: float = SILENCE_TIMEOUT,
                 on_frame: Callable[[Frame], None] | None = None) -> None:
        self.guest, self.run = guest, run
        self.started_at = self.heard_at = 0.0
        self.silence_timeout = silence_timeout
        self.on_frame = on_frame
        self.decoder = FrameDecoder()

    def begin(self, now: float) -> None:
        self.started_at = self.heard_at = now

    def feed(self, data: bytes, now: float) -> None:
        if not data:
            return
        self.heard_at = now
        run = self.run
        for frame in self.decoder.feed(data):
            run.frames.append(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
            if frame.type == Msg.FINAL and run.seconds is None:
                run.seconds = now - self.started_at
        run.crc_errors, run.lost_frames = self.decoder.crc_errors, self.decoder.lost
        run.noise = self.decoder.noise_text

    @property
    def reached_final(self) -> bool:
        return self.run.final is not None

    @property
    def deadline(self) -> float:
        """When the guest's silence becomes a failure."""
        return self.heard_at + self.silence_timeout

    def silence(self) -> BootError:
        """The error for a guest silent past the deadline."""
        return self.failure(GuestTimeoutError(
            f"the guest sent nothing on its serial line for {self.silence_timeout:g}s:"
            " it may be hung or halted"))

    def failure(self, error: QemuError | None = None) -> BootError | None:
        """Why the boot failed, or None: the guest's own account first (a FAULT frame,
        its exit status), then QEMU's (`error`), then the frames' (no FINAL)."""
        run = self.run
        if error is not None:
            if error.exit_status is not None:
                run.exit_status = error.exit_status
            run.command_line = error.command_line or run.command_line
            run.stderr = error.stderr or run.stderr
        if isinstance(error, GuestTimeoutError):
            return BootError(f"the guest went silent before its FINAL frame: {error.message}", run,
                             self.guest.symbolize)
        reason = self._fault()
        # QEMU's own statuses (0, 1) say nothing about the guest when QEMU also failed
        status = run.exit_status
        if reason is None and status is not None and status < 0:
            reason = _killed(status, run.stderr)
        if reason is None and status is not None and (error is None or status not in (0, 1)):
            reason = self.guest.arch.exit_failure(run.exit_status, run.noise)
        if reason is None and error is not None:
            reason = error.message
        if reason is None and run.final is None:
            status = f" (status {run.exit_status})" if run.exit_status is not None else ""
            reason = f"QEMU exited{status} before the guest's FINAL frame"
        return BootError(reason, run, self.guest.symbolize) if reason else None

    def _fault(self) -> str | None:
        faults = [f for f in self.run.frames if f.type == Msg.FAULT]
        if not faults:
            return None
        fields, _ = faults[-1].fields()
        return (f"the guest kernel took exception {fields['vector']} at "
                f"{self.guest.symbolize(fields['ip'])} (address {fields['address']:#x})")


def read_to_final(machine: Machine, boot: BootReader) -> None:
    """Feed `boot` from `machine`'s serial port until FINAL (blocking).  Raises
    BootError when the guest goes silent or QEMU exits first."""
    run = boot.run
    try:
        while not boot.reached_final:
            data = machine.read_serial(boot.silence_timeout)
            if not data:  # the line closed: QEMU is exiting, and how it ends says why
                run.exit_status = machine.wait_exit(EXIT_TIMEOUT)
                run.stderr = machine.stderr_text
                failure = boot.failure()
                assert failure is not None  # no FINAL: always a failure
                raise failure
            boot.feed(data, time.monotonic())
    except BootError:
        raise
    except QemuError as error:
        failure = boot.failure(error)
        assert failure is not None  # QEMU's error: always a failure
        raise failure from None


def _killed(status: int, stderr: str) -> str:
    """A negative status is QEMU ended by a signal (subprocess's convention), not the
    guest's exit: say which, and QEMU's first complaint (an abort says why on stderr)."""
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    said = [re.sub(r"^(qemu-system-\S+: )?(error: )?", "", line.strip())
            for line in stderr.splitlines() if line.strip()]
    return f"QEMU ended by {name}" + (f": {said[0]}" if said else "")
