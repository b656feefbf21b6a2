"""The host side of a probing campaign, independent of the transport.

Vetted probes go out as PROBE_LOAD_RUN frames, `Policy.window` runs in flight,
so round trips overlap.  Every command is idempotent (contract/protocol.py), so a
run whose result has not arrived after `retransmit_after` seconds is simply
sent again.  If nothing at all has come back for `retransmit_after` seconds
while runs are outstanding, the link is asked whether the board is gone (QEMU
exited or stopped for good: restarted at once); if not, every run in flight is
resent (the line may have eaten the commands), and only a silence that lasts
`dead_after` seconds and outlives that resend declares the board dead.  The
runs that were in flight become suspects and are rerun one at a time, and a
probe that kills the board on its own is quarantined (bytes kept) and never
sent again.  Results are handed over in batches (`on_batch`), each to be stored
in one transaction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from contract.frames import FrameDecoder, encode_frame
from contract.probe_abi import Outcome, Privilege, watchdog_ns
from probes.families import PRIVILEGED_FAMILIES
from probes.probe import Fault, Observation, Probe
from contract.protocol import LAYOUTS, PROBE_RUN_FLAG_MEASURE_LENGTH, PROBE_SLOTS, Msg, ProbeRefusal


class Link(Protocol):
    """A byte line to a board.  A link may also have `stopped() -> str | None`: why the
    board cannot answer any more, when it knows (then a silence ends at once)."""

    def now(self) -> float: ...
    def send(self, data: bytes) -> None: ...
    def poll(self, timeout: float) -> bytes: ...
    def restart(self) -> None: ...


@dataclass(frozen=True)
class Policy:
    # Runs in flight (at most protocol.PROBE_SLOTS): half the guest's slots.  All 64
    # are no faster under TCG, and a window that takes the guest longer than the
    # retransmission timer to work through turns every lost frame into a storm
    # of retransmissions.
    window: int = PROBE_SLOTS // 2
    # seconds without a result before resending a run -- at least; a guest that
    # needs longer per run (KVM exits, a loaded host) stretches it to a few
    # times the time the runs in flight take at its measured pace
    retransmit_after: float = 0.25
    # seconds of total silence with runs outstanding, all resent once -- at least:
    # a probe's own watchdog stretches it to 3 x the longest launched + 0.2 s
    dead_after: float = 1.0
    poll_interval: float = 0.02
    batch_size: int = 256
    max_attempts: int = 50  # sends of one run before the campaign gives up
    # Under TCG the guest's watchdog runs on host time, so a QEMU the host
    # descheduled looks like a hung probe: a TIMEOUT the prediction did not
    # expect is run again this many times before it stands.
    timeout_reruns: int = 2


@dataclass(frozen=True)
class CampaignResult:
    probe: Probe
    observation: Observation
    prediction: bytes | None

    @property
    def diverges(self) -> bool:
        return self.prediction is not None and self.prediction != self.observation.comparable()


@dataclass
class CampaignReport:
    results: dict[bytes, CampaignResult] = field(default_factory=dict)  # by probe content hash
    quarantined: list[Probe] = field(default_factory=list)
    retransmissions: int = 0
    restarts: int = 0
    frames_rejected: int = 0

    @property
    def divergences(self) -> int:
        return sum(r.diverges for r in self.results.values())


@dataclass
class _Flight:
    probe: Probe
    prediction: bytes | None
    sent_at: float
    attempts: int = 1


class CampaignError(Exception):
    pass


def load_body(probe: Probe, slot: int, tag: int | None = None) -> bytes:
    """The PROBE_LOAD body that puts `probe` in `slot` (under its own tag unless told)."""
    return LAYOUTS[Msg.PROBE_LOAD].pack(
        probe.code + probe.input, slot=slot, privilege=probe.privilege, budget=probe.budget,
        tag=probe.tag if tag is None else tag, code_length=len(probe.code),
        input_length=len(probe.input), output_size=probe.output_size)


class Campaign:
    def __init__(self, link: Link, policy: Policy = Policy(),
                 on_batch: Callable[[list[CampaignResult]], None] | None = None,
                 on_quarantine: Callable[[Probe, str], None] | None = None) -> None:
        if not 0 < policy.window <= PROBE_SLOTS:
            raise ValueError(f"window {policy.window} must be 1..{PROBE_SLOTS} (the guest's slots)")
        self.link, self.policy = link, policy
        self.on_batch, self.on_quarantine = on_batch, on_quarantine
        self.decoder = FrameDecoder()
        self._rejected_before = 0  # frames the decoders of earlier boots rejected
        self.seq = 0
        # run ids keep growing across run() calls: the guest answers a run id it
        # has seen with its cached result, so reusing one on the same boot is wrong
        self.next_run_id = 0
        self._reruns: deque[tuple[Probe, bytes | None]] = deque()
        self._timeouts: dict[bytes, int] = {}  # content hash -> unexpected TIMEOUTs so far
        self._pace = 0.0  # seconds between results, smoothed
        self._last_result: float | None = None
        self._serial = False  # after a board death: one run at a time until the suspects are done
        self._longest_watchdog = 0.0  # seconds: the longest watchdog of a probe launched so far

    def run(self, items: Iterable[tuple[Probe, bytes | None]]) -> CampaignReport:
        """Run every (probe, prediction) once; returns when all have a result or are
        quarantined.  `items` is drawn from as runs are launched, so whoever makes
        them (the vetting) goes on while the board runs the first ones."""
        report, batch = CampaignReport(), []
        source = iter(items)
        queue: deque[tuple[Probe, bytes | None]] = deque()  # drawn, not launched yet

        def more() -> bool:
            """Whether an item waits in `queue`, drawing one if need be."""
            if not queue:
                item = next(source, None)
                if item is None:
                    return False
                probe = item[0]
                if probe.privilege == Privilege.PRIVILEGED and probe.family not in PRIVILEGED_FAMILIES:
                    raise CampaignError(f"privileged probe from family {probe.family!r}: only"
                                        f" {sorted(PRIVILEGED_FAMILIES)} may run privileged")
                queue.append(item)
            return True

        suspects: deque[tuple[Probe, bytes | None]] = deque()
        inflight: dict[int, _Flight] = {}
        last_heard, self._last_result = self.link.now(), None
        prodded_at = last_heard  # when silence last made us resend everything in flight
        self.link.send(b"\0")  # cut off whatever the guest's decoder held
        while suspects or inflight or self._reruns or more():
            if self._serial and not suspects and not inflight:
                self._serial = False  # every suspect has been rerun alone
            limit = 1 if self._serial else self.policy.window
            while len(inflight) < limit and (suspects or self._reruns or more()):
                probe, prediction = (suspects or self._reruns or queue).popleft()
                run_id = self.next_run_id
                inflight[run_id] = _Flight(probe, prediction, self.link.now())
                self._launch(run_id, probe)
                self.next_run_id = (run_id + 1) % 2**32
            frames = self.decoder.feed(self.link.poll(self.policy.poll_interval))
            now = self.link.now()
            if frames:
                last_heard = now
            for frame in frames:
                done = self._absorb(frame.type, frame.body, inflight)
                if done is not None:
                    self._paced(now)
                    report.results[done.probe.content_hash] = done
                    batch.append(done)
                    if len(batch) >= self.policy.batch_size:
                        self._flush(batch)
            silent, quiet = now - last_heard, min(self.policy.retransmit_after, self._dead_after() / 2)
            if inflight and silent > quiet and prodded_at <= last_heard:
                stopped = self.link.stopped() if hasattr(self.link, "stopped") else None
                if stopped is not None:  # the link knows the board is gone: no need to wait
                    self._board_died(inflight, suspects, report, stopped)
                    last_heard = self.link.now()
                    continue
                # Silence may only mean the line ate our commands: resend every run
                # in flight once, so a live guest has something to answer.
                for run_id, flight in inflight.items():
                    self._resend(run_id, flight, now)
                    report.retransmissions += 1
                prodded_at = now
                continue
            resent_unanswered = prodded_at > last_heard and now - prodded_at > quiet
            if inflight and silent > self._dead_after() and resent_unanswered:
                self._board_died(inflight, suspects, report)
                last_heard = self.link.now()
                continue
            patience = max(self.policy.retransmit_after, 3 * len(inflight) * self._pace)
            for run_id, flight in inflight.items():
                if now - flight.sent_at > patience:
                    self._resend(run_id, flight, now)
                    report.retransmissions += 1
        self._flush(batch)
        report.frames_rejected = self._rejected_before + self.decoder.crc_errors
        return report

    # -- pieces ------------------------------------------------------------------------

    def _dead_after(self) -> float:
        """Silence that means a dead board: longer than any launched probe's watchdog."""
        return max(self.policy.dead_after, 3 * self._longest_watchdog + 0.2)

    def _launch(self, run_id: int, probe: Probe) -> None:
        """One PROBE_LOAD_RUN: the slot's probe and the run of it, in one frame."""
        self._longest_watchdog = max(self._longest_watchdog, watchdog_ns(probe.budget) / 1e9)
        flags = PROBE_RUN_FLAG_MEASURE_LENGTH if probe.measure_length else 0
        self.link.send(self._frame(Msg.PROBE_LOAD_RUN, LAYOUTS[Msg.PROBE_LOAD_RUN].pack(
            load_body(probe, run_id % PROBE_SLOTS), run_id=run_id, flags=flags)))

    def _resend(self, run_id: int, flight: _Flight, now: float) -> None:
        flight.attempts += 1
        if flight.attempts > self.policy.max_attempts:
            raise CampaignError(f"run {run_id} got no result after {self.policy.max_attempts} sends"
                                " while the board kept answering; check the link's error rate")
        flight.sent_at = now
        self._launch(run_id, flight.probe)

    def _absorb(self, msg_type: int, body: bytes, inflight: dict[int, _Flight]) -> CampaignResult | None:
        if msg_type == Msg.PROBE_LOADED:
            fields, _ = LAYOUTS[Msg.PROBE_LOADED].unpack(body)
            if fields["status"] in (ProbeRefusal.OK, ProbeRefusal.TAG_MISMATCH):
                return None
            for run_id, flight in list(inflight.items()):  # the guest will never run it
                if flight.probe.tag == fields["tag"] and run_id % PROBE_SLOTS == fields["slot"]:
                    del inflight[run_id]
                    return CampaignResult(flight.probe, Observation(Outcome.REFUSED), flight.prediction)
            return None
        if msg_type != Msg.PROBE_RESULT:
            return None
        fields, tail = LAYOUTS[Msg.PROBE_RESULT].unpack(body)
        flight = inflight.get(fields["run_id"])
        if flight is None or fields["tag"] != flight.probe.tag:
            return None  # a duplicate of something already done, or stale
        outcome = Outcome(fields["outcome"])
        if outcome == Outcome.REFUSED:
            return None  # the slot did not hold its probe: the retransmission reloads it
        del inflight[fields["run_id"]]
        if self._unexpected_timeout(outcome, flight):
            self._reruns.append((flight.probe, flight.prediction))
            return None
        fault = (Fault(fields["fault_vector"], fields["fault_address"], fields["fault_ip"])
                 if outcome == Outcome.FAULT else None)
        length = fields["length"] or None if flight.probe.measure_length else None  # 0: not measured
        obs = Observation(outcome, fields["status"], fault, tail[: flight.probe.output_size],
                          fields["cycles"], fields["instret"], length)
        return CampaignResult(flight.probe, obs, flight.prediction)

    def _paced(self, now: float) -> None:
        if self._last_result is not None:
            self._pace = 0.9 * self._pace + 0.1 * (now - self._last_result)
        self._last_result = now

    def _unexpected_timeout(self, outcome: Outcome, flight: _Flight) -> bool:
        """A TIMEOUT the prediction did not expect, with reruns left."""
        if outcome != Outcome.TIMEOUT or not flight.prediction:
            return False
        if flight.prediction[0] == Outcome.TIMEOUT:
            return False
        key = flight.probe.content_hash
        self._timeouts[key] = self._timeouts.get(key, 0) + 1
        return self._timeouts[key] <= self.policy.timeout_reruns

    def _board_died(self, inflight: dict[int, _Flight], suspects: deque, report: CampaignReport,
                    why: str = "the board stopped answering") -> None:
        report.restarts += 1
        self.link.restart()
        self._rejected_before += self.decoder.crc_errors
        self.decoder = FrameDecoder()
        self.seq = 0
        flights = [inflight[r] for r in sorted(inflight)]
        inflight.clear()
        if self._serial and len(flights) == 1:
            culprit = flights[0].probe
            report.quarantined.append(culprit)
            if self.on_quarantine is not None:
                self.on_quarantine(culprit, f"{why} while it ran alone")
            return
        # Unknown which one did it: rerun each alone, in the order they were sent.
        suspects.extendleft(reversed([(f.probe, f.prediction) for f in flights]))
        self._serial = True

    def _flush(self, batch: list[CampaignResult]) -> None:
        if batch and self.on_batch is not None:
            self.on_batch(list(batch))
        batch.clear()

    def _frame(self, msg_type: int, body: bytes) -> bytes:
        frame = encode_frame(msg_type, self.seq, body)
        self.seq = (self.seq + 1) % (1 << 16)
        return frame
