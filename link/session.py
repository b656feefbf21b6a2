"""One discovery run: build the guest, boot it on a board, collect its frames.

The run ends at the guest's FINAL frame and its exit.  Whatever goes wrong
(silence, a reset, a fault, a failed boot stage, QEMU refusing its options)
raises DiscoveryError carrying everything needed to see why: the last frames
decoded, the text the guest printed outside frames, QEMU's command line and
stderr.  Frames already decoded are kept on the error (`.run`), never lost.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from link.describe import describe
from contract.frames import Frame, FrameDecoder
from contract.protocol import Msg
from qemu.boards import Board
from qemu.errors import GuestTimeoutError, QemuError
from kernel.guest import Guest, Symbolizer
from qemu.machine import Machine

SILENCE_TIMEOUT = 20.0  # seconds the guest may stay silent before it is declared hung
RUN_TIMEOUT = 120.0  # seconds a whole run may take (TCG on a loaded machine included)
EXIT_TIMEOUT = 10.0  # seconds between FINAL and QEMU's exit
SHOWN_FRAMES = 8  # how many of the last frames a failure report shows



@dataclass
class Run:
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



class DiscoveryError(Exception):
    """A discovery run that did not end with FINAL and a clean exit."""

    def __init__(self, message: str, run: Run, symbolize: Symbolizer | None = None):
        super().__init__(message)
        self.run = run
        self.symbolize = symbolize

    def __str__(self) -> str:
        run = self.run
        parts = [str(self.args[0])]
        shown = run.frames[-SHOWN_FRAMES:]
        if shown:
            parts.append(f"last {len(shown)} of {len(run.frames)} frames decoded:")
            parts += ["  " + describe(f, self.symbolize) for f in shown]
        else:
            parts.append("no frame was decoded")
        if run.crc_errors:
            parts.append(f"{run.crc_errors} corrupted frame(s) were rejected")
        if run.noise.strip():
            parts.append("guest text outside frames:\n  " + "\n  ".join(run.noise.strip().splitlines()[-5:]))
        return "\n".join(parts)


def _fault(guest: Guest, run: Run) -> str | None:
    faults = [f for f in run.frames if f.type == Msg.FAULT]
    if not faults:
        return None
    fields, _ = faults[-1].fields()
    return (f"the guest kernel took exception {fields['vector']} at "
            f"{guest.symbolize(fields['ip'])} (address {fields['address']:#x})")


def _exit_failure(guest: Guest, run: Run) -> str | None:
    """Why the guest's exit status means failure, or None when it passed."""
    return guest.arch.exit_failure(run.exit_status, run.noise)


def discover(
    board: Board,
    guest: Guest,
    *,
    on_frame: Callable[[Frame], None] | None = None,
    on_machine: Callable[[Machine, Run], None] | None = None,
    silence_timeout: float = SILENCE_TIMEOUT,
    timeout: float = RUN_TIMEOUT,
) -> Run:
    """Boot `guest` on `board` and collect frames until FINAL and the guest's exit
    (or, on a board with `stay`, until FINAL: the guest then waits and QEMU is
    quit when the run ends).

    `on_frame` sees every frame as it is decoded (live consoles); `on_machine`
    runs once FINAL has arrived, while QEMU still runs (ground-truth queries)."""
    run = Run(board)
    decoder = FrameDecoder()
    try:
        with Machine(board, image=guest.image, kernel=guest.kernel, timeout=timeout) as machine:
            run.command_line = machine.command_line
            try:
                _collect(machine, decoder, run, on_frame, silence_timeout)
                if run.final is None:  # the line closed early: how QEMU ended says why
                    run.exit_status = machine.wait_exit(EXIT_TIMEOUT)
                elif on_machine is not None:
                    on_machine(machine, run)
                if run.final is not None and not board.stay:
                    run.exit_status = machine.wait_exit(EXIT_TIMEOUT)
                    _collect(machine, decoder, run, on_frame, silence_timeout)
            finally:
                run.stderr = machine.stderr_text
                _take_stats(decoder, run)
    except GuestTimeoutError as error:
        raise DiscoveryError(_with_qemu(f"the guest went silent: {error.message}", error), run,
                             guest.symbolize) from None
    except QemuError as error:
        run.exit_status = error.exit_status
        _take_stats(decoder, run)
        reason = _fault(guest, run)
        if reason is None and run.exit_status not in (None, 0, 1):
            reason = _exit_failure(guest, run)
        raise DiscoveryError(_with_qemu(reason or error.message, error), run,
                             guest.symbolize) from None
    failure = _fault(guest, run)
    if failure is None and run.exit_status is not None:
        failure = _exit_failure(guest, run)
    if failure is None and run.final is None:
        failure = "QEMU exited before the guest's FINAL frame"
    if failure:
        raise DiscoveryError(failure, run, guest.symbolize)
    return run


def _collect(machine: Machine, decoder: FrameDecoder, run: Run,
             on_frame: Callable[[Frame], None] | None, silence_timeout: float) -> None:
    """Before FINAL: read until it arrives.  After QEMU exited: drain what is left."""
    until_final = run.final is None
    while data := machine.read_serial(silence_timeout):
        for frame in decoder.feed(data):
            run.frames.append(frame)
            if on_frame is not None:
                on_frame(frame)
            if frame.type == Msg.FINAL and run.seconds is None:
                assert machine.started_at is not None
                run.seconds = time.monotonic() - machine.started_at
        if until_final and run.final is not None:
            return


def _take_stats(decoder: FrameDecoder, run: Run) -> None:
    run.crc_errors = decoder.crc_errors
    run.lost_frames = decoder.lost
    run.noise = decoder.noise_text


def _with_qemu(message: str, error: QemuError) -> str:
    lines = [message]
    if error.command_line:
        lines.append("command: " + shlex.join(error.command_line))
    if error.stderr.strip():
        lines.append("QEMU said:\n  " + "\n  ".join(error.stderr.strip().splitlines()[-10:]))
    return "\n".join(lines)
