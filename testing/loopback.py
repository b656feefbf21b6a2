"""A byte link from the host to an in-process FakeGuest, with fault injection.

It stands where the serial line will: `send` carries host bytes to the guest,
`poll` returns guest bytes.  Time is virtual (an empty poll advances it by the
timeout), so campaign tests with timeouts and retransmissions run instantly.
Drop and flip rates apply per byte, in both directions, from a seeded RNG.
"""

from __future__ import annotations

from link.line_faults import LineDamage, LineFaults
from testing.fake_guest import FakeGuest


class Loopback:
    def __init__(self, guest: FakeGuest, *, drop_rate: float = 0.0, flip_rate: float = 0.0,
                 seed: int = 0) -> None:
        self.guest = guest
        self._damage = LineDamage(LineFaults(drop_rate, flip_rate, seed))
        self.clock = 0.0
        self.restarts = 0
        self._inbox = bytearray(guest.restart())

    @property
    def dropped(self) -> int:
        return self._damage.dropped

    @property
    def flipped(self) -> int:
        return self._damage.flipped

    def now(self) -> float:
        return self.clock

    def send(self, data: bytes) -> None:
        self._inbox += self._damage(self.guest.receive(self._damage(data)))

    def poll(self, timeout: float) -> bytes:
        if not self._inbox:
            self.clock += timeout
            return b""
        data, self._inbox = bytes(self._inbox), bytearray()
        return data

    def restart(self) -> None:
        """Power-cycle the board (the real one: QMP system_reset or a new QEMU)."""
        self.restarts += 1
        self._inbox = bytearray(self.guest.restart())
