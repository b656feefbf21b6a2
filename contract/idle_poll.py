"""How long a staying guest polls its idle probe line before it sleeps.

A staying guest polls its probe line (the serial port or the virtio console)
this long after its last byte, so back-to-back commands never wait for an
interrupt, then sleeps (hlt / wfi) until the line's interrupt.  Short: a guest
polling while the host vets the next probes takes a core from the vetting
(50 ms cost the end-to-end rate ~10% on two cores, measured)."""

from __future__ import annotations

STAY_IDLE_POLL_NS = 500_000
NS_PER_SECOND = 1_000_000_000
