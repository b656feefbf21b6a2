"""A probing campaign over one link, blocking: the thin driver of CampaignState.

The campaign itself -- windowed launch, loss seen from evidence and resent at
once, the retransmission timer as the last resort, "is the board gone?", dead
boards, suspects rerun alone, quarantine, unexpected-TIMEOUT reruns, batches --
is the state machine in probes/campaign_state.py.  `Campaign.run` feeds it what
the link returns, sends what it hands back and does what it asks (restart the
board, say whether it is gone), until every item has a result or is quarantined.
A loop serving many boards at once drives the same state machine instead
(probes/board_loop.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from probes.campaign_state import (
    CampaignResult,
    CampaignState,
    Counters,
    Item,
    Output,
    Policy,
)
from probes.probe import Probe


class Link(Protocol):
    """A byte line to a board.  A link may also have `stopped() -> str | None`: why the
    board cannot answer any more, when it knows (then a silence ends at once), and
    `accelerator` ("kvm", "tcg": the campaign's timers follow it, Policy.under)."""

    def now(self) -> float: ...
    def send(self, data: bytes) -> None: ...
    def poll(self, timeout: float) -> bytes: ...
    def restart(self) -> None: ...


@dataclass
class CampaignReport:
    results: dict[bytes, CampaignResult] = field(default_factory=dict)  # by probe content hash
    quarantined: list[Probe] = field(default_factory=list)
    retransmissions: int = 0
    restarts: int = 0
    frames_rejected: int = 0
    counters: Counters = field(default_factory=Counters)  # this run's, every kind of resend

    @property
    def divergences(self) -> int:
        return sum(r.diverges for r in self.results.values())

    def take(self, out: Output, on_batch: Callable[[list[CampaignResult]], None] | None,
             on_quarantine: Callable[[Probe, str], None] | None) -> None:
        """Record the results and quarantines of one Output, passing them on."""
        for batch in out.batches:
            self.results.update((r.probe.content_hash, r) for r in batch)
            if on_batch is not None:
                on_batch(batch)
        for probe, why in out.quarantined:
            self.quarantined.append(probe)
            if on_quarantine is not None:
                on_quarantine(probe, why)

    def count(self, before: Counters, after: Counters) -> None:
        """This run's counters: the state's at the end less those at the start."""
        self.counters = Counters(**{name: getattr(after, name) - getattr(before, name)
                                    for name in vars(after)})
        self.retransmissions, self.restarts = self.counters.retransmissions, self.counters.restarts
        self.frames_rejected = self.counters.frames_rejected


class ProbesBroughtBoardDown(RuntimeError):
    """Probes that a campaign had to quarantine where none was expected to: each was the
    one running when the board stopped answering, again after a restart."""

    def __init__(self, count: int, kind: str) -> None:
        super().__init__(
            f"{count} {kind} probe(s) brought the board down (it stopped answering while they"
            " ran, again after a restart; the campaign report keeps their bytes); under"
            " nested KVM on a busy host the line can be slower than the campaign's timers:"
            " run again when the host is quieter, or with --accel tcg")


class Campaign:
    def __init__(self, link: Link, policy: Policy | None = None,
                 on_batch: Callable[[list[CampaignResult]], None] | None = None,
                 on_quarantine: Callable[[Probe, str], None] | None = None) -> None:
        self.link = link
        self.policy = (policy or Policy()).under(getattr(link, "accelerator", None))
        self.on_batch, self.on_quarantine = on_batch, on_quarantine
        self.state = CampaignState(self.policy)  # one for the link's life: run ids keep growing

    def run(self, items: Iterable[Item]) -> CampaignReport:
        """Run every (probe, prediction) once; returns when all have a result or are
        quarantined.  `items` is drawn from as runs are launched, so whoever makes
        them (the vetting) goes on while the board runs the first ones."""
        report, state, link = CampaignReport(), self.state, self.link
        before = Counters(**vars(state.counters))
        source = iter(items)
        act, feed, poll, now = self._act, state.feed, link.poll, link.now  # the hot loop
        poll_interval = self.policy.poll_interval
        out = act(state.start(now()), report)
        while not out.done:
            if draw(state, source) and state.has_room:  # else the next feed() launches them
                out = act(state.tick(now()), report)
                if out.done:
                    break
            wait = poll_interval
            if out.deadline is not None and out.deadline - now() < wait:
                wait = max(0.0, out.deadline - now())
            out = act(feed(poll(wait), now()), report)
        report.count(before, state.counters)
        return report

    def _act(self, out: Output, report: CampaignReport) -> Output:
        """Do what `out` asks; returns the state's last word."""
        state, link = self.state, self.link
        while True:
            for data in out.send:  # a send per frame, as a line that counts frames sees them
                link.send(data)
            if out.batches or out.quarantined:
                report.take(out, self.on_batch, self.on_quarantine)
            if out.restart is not None:
                link.restart()
                out = state.restarted(link.now())
            elif out.check_board:
                stopped = getattr(link, "stopped", None)
                out = state.board_stopped(stopped() if stopped is not None else None, link.now())
            else:
                return out


def draw(state: CampaignState, source: Iterator[Item]) -> bool:
    """Hand `state` as many items as it wants from `source` (or say there are no more);
    whether it wanted any."""
    wanted = state.wants
    for _ in range(wanted):
        item = next(source, None)
        if item is None:
            state.end_of_items()
            break
        state.submit(*item)
    return wanted > 0
