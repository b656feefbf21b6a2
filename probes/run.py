"""One probing campaign end to end: generate, vet, run on a board, store.

Probes from a family are vetted one by one in Unicorn (probes/vet.py); the
rejected never reach the guest and are counted by reason.  The accepted run
through probes/campaign.py over a link (QemuLink for real boards); every result
is stored in the capability store under the board's hardware fingerprint, with
the vetter's prediction so that disagreements become divergences; a probe that
killed the board is quarantined there, bytes kept, and skipped by later runs.

`unsafe_unvetted` skips the vetter entirely and sends user probes as they come:
it exists to test containment, never to gather capabilities worth trusting.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from contract.probe_abi import Privilege
from probes.campaign import Campaign, Link
from probes.campaign_state import CampaignResult, Counters, Policy
from probes.probe import Probe
from probes.store import CapabilityStore, StoredResult
from probes.vet_pool import vet_stream
from stores.fingerprint import Fingerprint

DEAD_AFTER = 0.9  # seconds of silence, runs in flight, before the board counts as dead
BATCH = 64  # results per store transaction (and per progress update)
POLICY = Policy(dead_after=DEAD_AFTER, batch_size=BATCH)  # every campaign ./run probe runs
SILENT_BOARD_QUARANTINES = 3  # probes "killing" a board that never answered: the board is broken
class ProbeRunError(Exception):
    """A campaign that cannot start as asked."""


@dataclass
class Tally:
    """What a campaign has done so far: the progress bar's numbers and the summary's."""

    generated: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason (numbers elided) -> count
    duplicates: int = 0
    skipped_quarantined: int = 0  # quarantined by an earlier run: never sent again
    sent: int = 0
    outcomes: Counter = field(default_factory=Counter)  # Outcome name -> count
    divergences: int = 0
    quarantined: list[Probe] = field(default_factory=list)
    restarts: int = 0
    retransmissions: int = 0
    frames_rejected: int = 0
    resends: Counters = field(default_factory=Counters)  # the retransmissions by cause
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def stored(self) -> int:
        return sum(self.outcomes.values())

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def executed(self) -> int:
        """Probes run in the guest and stored (a refusal was stored, never run)."""
        return self.stored - self.outcomes["refused"]

    @property
    def generated_per_second(self) -> float:
        """Probes generated per second, vetting (and rejecting) included."""
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    @property
    def executed_per_second(self) -> float:
        """Probes run in the guest and stored, per second."""
        return self.executed / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {"generated": self.generated, "rejected": sum(self.rejected.values()),
                "rejected_by_reason": dict(self.rejected), "duplicates": self.duplicates,
                "skipped_quarantined": self.skipped_quarantined, "sent": self.sent,
                "stored": self.stored, "outcomes": dict(self.outcomes),
                "divergences": self.divergences,
                "quarantined": [{"hash": p.content_hash.hex(), "code": p.code.hex()}
                                for p in self.quarantined],
                "restarts": self.restarts, "retransmissions": self.retransmissions,
                "resends": {"on_evidence": self.resends.resent_on_evidence,
                            "on_reject": self.resends.resent_on_reject,
                            "on_timer": self.resends.resent_on_timer,
                            "on_silence": self.resends.resent_on_silence,
                            "loss_probes": self.resends.loss_probes},
                "frames_rejected": self.frames_rejected, "seconds": round(self.seconds, 3),
                "executed": self.executed,
                "generated_per_second": round(self.generated_per_second, 1),
                "executed_per_second": round(self.executed_per_second, 1)}


def reason_kind(reason: str) -> str:
    """A rejection reason with its addresses and numbers elided, for counting."""
    reason = re.sub(r"'[^']*'", "'…'", reason)
    reason = re.sub(r"\([0-9a-f]{2,}\)", "(…)", reason)
    return re.sub(r"\+?0x[0-9a-f]+|\b\d+\b", "N", reason)


def prepare(probes: Iterable[Probe], tally: Tally, *, unsafe_unvetted: bool = False,
            skip: frozenset[bytes] = frozenset(),
            on_progress: Callable[[Tally], None] | None = None
            ) -> Iterator[tuple[Probe, bytes | None]]:
    """Vet each probe (unless unsafe), on every core: the (probe, prediction) pairs worth
    sending, as they are vetted (the campaign runs the first while the rest are vetted)."""
    seen: set[bytes] = set()

    def fresh() -> Iterator[Probe]:
        for probe in probes:
            tally.generated += 1
            digest = probe.content_hash
            if digest in seen:
                tally.duplicates += 1
            elif digest in skip:
                tally.skipped_quarantined += 1
            else:
                seen.add(digest)
                yield probe
            if on_progress is not None and tally.generated % 256 == 0:
                on_progress(tally)

    if unsafe_unvetted:
        for probe in fresh():
            if probe.privilege != Privilege.USER:
                raise ProbeRunError("unsafe mode sends user probes only;"
                                    " privileged families must be vetted")
            tally.sent += 1
            yield probe, None
        return
    for probe, verdict in vet_stream(fresh()):
        if verdict.accepted:
            tally.sent += 1
            yield probe, verdict.prediction
        else:
            tally.rejected[reason_kind(verdict.reason or "")] += 1


def run_campaign(link: Link, probes: Iterable[Probe], store: CapabilityStore,
                 fingerprint: Fingerprint, accelerator: str, *, unsafe_unvetted: bool = False,
                 policy: Policy | None = None,
                 on_progress: Callable[[Tally], None] | None = None,
                 on_results: Callable[[list[CampaignResult]], None] | None = None) -> Tally:
    """Vet, run and store every probe; returns the tally (also fed to `on_progress`)."""
    tally = Tally()
    if on_progress is not None:
        on_progress(tally)  # the same tally throughout: whoever keeps it sees it grow
    skip = frozenset(store.quarantined(fingerprint))
    items = prepare(probes, tally, unsafe_unvetted=unsafe_unvetted, skip=skip,
                    on_progress=on_progress)

    def stored(batch: list[CampaignResult]) -> None:
        store.record_batch(fingerprint, accelerator,
                           [StoredResult(r.probe, r.observation, r.prediction) for r in batch])
        tally.outcomes.update(r.observation.outcome.name.lower() for r in batch)
        tally.divergences += sum(r.diverges for r in batch)
        release()
        if on_results is not None:
            on_results(batch)
        if on_progress is not None:
            on_progress(tally)

    # Quarantines wait until the board has answered once: a board that answers nothing
    # (a broken guest, an accelerator it cannot run on) must not condemn good probes.
    held: list[tuple[Probe, str]] = []

    def release() -> None:
        for probe, reason in held:
            store.quarantine(fingerprint, probe, reason)
        held.clear()

    def quarantined(probe: Probe, reason: str) -> None:
        tally.quarantined.append(probe)
        held.append((probe, reason))
        if tally.stored:
            release()
        elif len(held) >= SILENT_BOARD_QUARANTINES:
            raise ProbeRunError(f"the board stopped answering on each of the first {len(held)}"
                                " probes it ran alone and answered none: its probe command loop"
                                " does not work here (try --accel tcg); nothing was quarantined")

    campaign = Campaign(link, policy or POLICY, on_batch=stored,
                        on_quarantine=quarantined)
    try:
        report = campaign.run(items)
    finally:
        items.close()  # a campaign that stopped early stops the vetting pool now
    release()
    tally.restarts, tally.retransmissions = report.restarts, report.retransmissions
    tally.frames_rejected, tally.resends = report.frames_rejected, report.counters
    tally.finished = time.monotonic()
    return tally

