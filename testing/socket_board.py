"""A board for the board loop (probes/board_loop.py) without QEMU: a socket pair whose
far end a FakeGuest answers, in the loop's own thread.

It offers what the loop uses of a QemuLink on its probe line: `fileno` (a real socket,
so the loop's selector sees it readable), `send` / `flush` / `wants_write`,
`receive`, `stopped`, `close`, and `machine` (itself: launched, `running` until
killed).  What `flush` hands the guest is answered at once onto the socket, through
the same LineDamage a QEMU link's fault injection uses.  `kill()` closes the far end,
as a SIGKILLed QEMU closes its line; `hang()` makes the guest silent (its line stays
open), as a hung guest is.
"""

from __future__ import annotations

import socket

from link.line_faults import LineDamage, LineFaults
from testing.fake_guest import FakeGuest


class SocketBoard:
    def __init__(self, guest: FakeGuest, *, drop_rate: float = 0.0, flip_rate: float = 0.0,
                 seed: int = 0) -> None:
        self.guest = guest
        self._damage = LineDamage(LineFaults(drop_rate, flip_rate, seed))
        self._host, self._far = socket.socketpair()
        self._host.setblocking(False)
        self._far.setblocking(False)
        self._outbox = bytearray()
        self._answers = bytearray()  # the guest's, not on the socket yet (it was full)
        self.killed = self.hung = self.closed = False
        self._answers += self._damage(guest.restart())
        self._push()

    @property
    def damaged(self) -> int:
        """Bytes dropped or flipped so far, both ways."""
        return self._damage.dropped + self._damage.flipped

    @property
    def machine(self) -> SocketBoard | None:
        return None if self.closed else self

    @property
    def running(self) -> bool:
        return not self.killed

    def fileno(self) -> int:
        return self._host.fileno()

    def send(self, data: bytes) -> None:
        self._outbox += self._damage(data)

    @property
    def wants_write(self) -> bool:
        return bool(self._outbox)

    def flush(self) -> None:
        if not self._outbox or self.killed:
            return
        data, self._outbox = bytes(self._outbox), bytearray()
        if self.hung:  # a hung guest takes nothing in and runs nothing
            return
        answer = self.guest.receive(data)
        if answer:
            self._answers += self._damage(answer)
        self._push()

    def receive(self) -> bytes:
        try:
            data = self._host.recv(1 << 16)
        except BlockingIOError:
            data = b""
        self._push()  # room on the socket again
        return data

    def _push(self) -> None:
        """Put on the socket what of the guest's answers fits (never waiting)."""
        if self.killed or not self._answers:
            return
        try:
            sent = self._far.send(self._answers)
        except BlockingIOError:
            return
        del self._answers[:sent]

    def stopped(self) -> str | None:
        return "QEMU exited" if self.killed else None

    def kill(self) -> None:
        if not self.killed:
            self.killed = True
            self._far.close()

    def hang(self) -> None:
        self.hung = True

    def close(self) -> None:
        self.kill()
        if not self.closed:
            self.closed = True
            self._host.close()
