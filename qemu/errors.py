"""Why a QEMU run failed, with what the user can do about it.

Every error about a QEMU process carries the command line and what QEMU wrote
on stderr, so a failure report can be reproduced by hand.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class BoardError(ValueError):
    """A board profile or option that cannot be used (unknown name, bad value)."""


class QemuError(Exception):
    """A QEMU process did not do what we asked."""

    def __init__(
        self,
        message: str,
        *,
        command_line: Sequence[str] = (),
        stderr: str = "",
        exit_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.command_line = list(command_line)
        self.stderr = stderr
        self.exit_status = exit_status

    def __str__(self) -> str:
        parts = [self.message]
        if self.command_line:
            parts.append("command: " + shlex.join(self.command_line))
        if self.stderr.strip():
            parts.append("QEMU said:\n  " + "\n  ".join(self.stderr.strip().splitlines()[-10:]))
        return "\n".join(parts)


class QemuNotInstalledError(QemuError):
    """The qemu-system-* binary for the board's architecture is not on PATH."""


class KvmUnavailableError(QemuError):
    """accel='kvm' was asked for but this host cannot give KVM to the guest."""


class QemuStartError(QemuError):
    """QEMU refused the command line (unknown CPU model, bad -device...) and never ran the guest."""


class UnknownCpuModel(QemuStartError, BoardError):
    """QEMU has no CPU model of the name the board gave (QEMU: "unable to find CPU model")."""


class QemuExitedError(QemuError):
    """QEMU stopped in a way no guest exit convention explains (its own error, a signal)."""


class GuestResetError(QemuError):
    """The guest reset the machine (on x86, usually a triple fault); -no-reboot made QEMU stop."""


class GuestTimeoutError(QemuError, TimeoutError):
    """The guest was silent, or did not exit, within the time allowed."""
