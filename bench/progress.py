"""Progress lines for the long benchmarks: on stderr, at most every EVERY_S wall
seconds, so minutes of boots, searches and rounds are not silence while stdout keeps
the figures."""

from __future__ import annotations

import sys
import time

EVERY_S = 20.0


class ProgressLine:
    def __init__(self, label: str) -> None:
        self.label = label
        self.started = self.last = time.monotonic()

    def due(self) -> bool:
        """Whether a line is due now (and, if so, the next one EVERY_S from now)."""
        now = time.monotonic()
        if now - self.last < EVERY_S:
            return False
        self.last = now
        return True

    def say(self, text: str) -> None:
        print(f"  [{self.label}] {self.last - self.started:.0f} s: {text}", file=sys.stderr,
              flush=True)
