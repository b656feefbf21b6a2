"""One discovery run: boot the guest on a board and collect its frames.

The run ends at the guest's FINAL frame and its exit (on a board with `stay`, at
FINAL: the guest then waits and QEMU is quit when the run ends).  Booting to
FINAL is link/boot.py's; whatever goes wrong (silence, a reset, a fault, a failed
boot stage, QEMU refusing its options) raises its BootError, which carries the
frames decoded so far (`.run`, never lost), the text the guest printed outside
frames, QEMU's command line and stderr.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from contract.frames import Frame
from kernel.guest import Guest
from link.boot import EXIT_TIMEOUT, Boot, BootError, BootReader, read_to_final
from link.boot import silence_timeout as boot_silence
from qemu.boards import Board
from qemu.errors import BoardError, QemuError
from qemu.machine import Machine

RUN_TIMEOUT = 120.0  # seconds a whole run may take (TCG on a loaded machine included)


def discover(
    board: Board,
    guest: Guest,
    *,
    on_frame: Callable[[Frame], None] | None = None,
    on_machine: Callable[[Machine, Boot], None] | None = None,
    silence_timeout: float | None = None,
    timeout: float = RUN_TIMEOUT,
) -> Boot:
    """Boot `guest` on `board` and collect frames until FINAL and the guest's exit
    (or, on a board with `stay`, until FINAL).

    `on_frame` sees every frame as it is decoded (live consoles); `on_machine`
    runs once FINAL has arrived, while QEMU still runs (ground-truth queries)."""
    run = Boot(board)
    if silence_timeout is None:
        silence_timeout = boot_silence(board)
    boot = BootReader(guest, run, silence_timeout=silence_timeout, on_frame=on_frame)
    try:
        with Machine(board, image=guest.image, kernel=guest.kernel, timeout=timeout) as machine:
            run.command_line = machine.command_line
            assert machine.started_at is not None
            boot.begin(machine.started_at)
            try:
                read_to_final(machine, boot)
                if on_machine is not None:
                    on_machine(machine, run)
                if not board.stay:
                    run.exit_status = machine.wait_exit(EXIT_TIMEOUT)
                    while data := machine.read_serial(silence_timeout):  # what is left, to EOF
                        boot.feed(data, time.monotonic())
            finally:
                run.stderr = machine.stderr_text
    except (BootError, BoardError):  # BoardError: an option QEMU refused, the user's to change
        raise
    except QemuError as error:
        raise _failure(boot, error) from None
    failure = boot.failure()
    if failure is not None:
        raise failure
    return run


def _failure(boot: BootReader, error: QemuError) -> BootError:
    failure = boot.failure(error)
    assert failure is not None  # QEMU's error: always a failure
    return failure
