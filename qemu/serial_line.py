"""The host end of a guest's serial port: a UNIX socket QEMU connects to.

The socket listens before QEMU starts, and QEMU connects during its startup, so
every byte the guest sends is buffered by the kernel until the host reads it.
"""

from __future__ import annotations

import select
import socket
import time

READ_SIZE = 65536


class SerialLine:
    def __init__(self, path: str) -> None:
        self.path = path
        self._log = bytearray()  # every byte received so far (appending stays linear)
        self.closed = False  # QEMU closed its end (it is exiting)
        self._pending = b""  # received on the caller's behalf, not yet handed out
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._connection: socket.socket | None = None

    @property
    def log(self) -> bytes:
        """Every byte received so far."""
        return bytes(self._log)

    def connect(self, exited_fd: int, deadline: float) -> bool:
        """Accept QEMU's connection (once).  False when `exited_fd` became readable (QEMU
        exited) without connecting; raises TimeoutError at `deadline`."""
        if self._connection is not None:
            return True
        ready, _, _ = select.select([self._listener, exited_fd], [], [], _left(deadline))
        if self._listener in ready:
            self._connection, _ = self._listener.accept()
            return True
        if exited_fd in ready:
            self.closed = True
            return False
        raise TimeoutError("QEMU did not open the serial line in time")

    def fileno(self) -> int:
        assert self._connection is not None
        return self._connection.fileno()

    def receive(self, *, log: bool = True) -> bytes:
        """One read from the socket (blocking); b"" marks the end of the line.
        `log=False` leaves the bytes out of `log` (a probe campaign's megabytes)."""
        assert self._connection is not None
        data = self._connection.recv(READ_SIZE)
        if log:
            self._log += data
        self.closed = not data
        return data

    def send_now(self, data: memoryview) -> int:
        """What the socket takes of `data` without waiting (MSG_DONTWAIT: the
        socket's own mode stays blocking); BlockingIOError when it takes nothing."""
        assert self._connection is not None
        return self._connection.send(data, socket.MSG_DONTWAIT)

    def keep(self, data: bytes) -> None:
        """Hold bytes read on the caller's behalf (while waiting for QEMU to exit)."""
        self._pending += data

    def take_kept(self) -> bytes:
        data, self._pending = self._pending, b""
        return data

    @property
    def connected(self) -> bool:
        return self._connection is not None

    def close(self) -> None:
        for sock in (self._connection, self._listener):
            if sock is not None:
                sock.close()


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
