"""What a family's campaign results mean beyond the counts every campaign keeps.

A family in probes/catalogue.py may name a summariser: it gets the campaign's
results as (probe, observation) pairs and the campaign's context, and returns a
record of its own kind (timing estimates, a latency curve, discovery findings)
that says how it reads as JSON (Summary); the CLI shows each kind as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from arch import Arch
from discovery.inventory import Inventory
from probes.probe import Observation, Probe

Results = Sequence[tuple[Probe, Observation]]

# What cycle counts describe, by accelerator.
ACCELERATOR_MEANING = {"tcg": "TCG: this measures QEMU's emulation, not silicon",
                       "kvm": "KVM: hardware"}


def accelerator_meaning(accelerator: str) -> str:
    return ACCELERATOR_MEANING.get(accelerator, f"{accelerator}: unknown what these cycles measure")


class Summary(Protocol):
    """What a family's summariser returns."""

    def to_json(self) -> dict:
        """The keys it adds to the campaign's JSON document."""
        ...

    def result_json(self, probe: Probe) -> dict:
        """The keys it adds to one result's entry in that document."""
        ...


@dataclass(frozen=True)
class CampaignContext:
    """Where a campaign ran: what a summariser may consult besides the results."""

    arch: Arch
    accelerator: str  # "tcg" or "kvm": what the cycle counts describe
    inventory: Inventory  # the board's first discovery (its CPU's claims)
    sequence: str | None = None  # what the timing family measured
