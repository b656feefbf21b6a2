"""The x86-64 kernel booted on q35 (TCG) to stay and serve probes, with helpers
to load and run one probe (testing/staying_guest.py does the launching, through
qemu.machine.Machine, and matches answers to requests)."""

from __future__ import annotations

import os

from contract.protocol import LAYOUTS, Msg
from probes.campaign_state import load_body
from probes.probe import Probe
from qemu.boards import Board, board
from testing.staying_guest import StayingGuest


class ProbeGuest(StayingGuest):
    """`with ProbeGuest(image) as guest:` -- discovery frames in guest.discovery.
    `on`: another x86-64 board than q35 under TCG (another CPU model, KVM)."""

    def __init__(self, image: str | os.PathLike[str], *, privileged: bool = False,
                 on: Board | None = None) -> None:
        super().__init__(on or board("q35", accel="tcg"), image=image, privileged=privileged)

    def load_and_run(self, probe: Probe, run_id: int, slot: int = 0, flags: int = 0,
                     tag: int | None = None) -> tuple[dict[str, int], dict[str, int], bytes]:
        """LOAD + RUN one probe: (PROBE_LOADED fields, PROBE_RESULT fields, output tail).
        `tag` (default: the probe's) is the one the run asks for."""
        loaded, result = self.exchange(self.load_frame(probe, slot) + self.run_frame(
            run_id, slot, flags, probe.tag if tag is None else tag))
        fields, tail = result.fields()
        return loaded.fields()[0], fields, tail

    def load_frame(self, probe: Probe, slot: int) -> bytes:
        return self.frame(Msg.PROBE_LOAD, load_body(probe, slot))

    def run_frame(self, run_id: int, slot: int, flags: int = 0, tag: int = 0) -> bytes:
        return self.frame(Msg.PROBE_RUN, LAYOUTS[Msg.PROBE_RUN].pack(
            run_id=run_id, slot=slot, flags=flags, tag=tag))
