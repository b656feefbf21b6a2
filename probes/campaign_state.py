"""The host side of a probing campaign as a state machine (sans-IO, as h11 is).

`CampaignState` is fed the bytes a board sent and the time (`feed(data, now)`,
`tick(now)`), and is handed the (probe, prediction) items to run (`submit`, as
many as `wants` asks for, then `end_of_items`).  Every call returns an `Output`:
the frames to send, finished batches of results, quarantines, whether the board
must be restarted or asked if it is gone, and the time by which to call `tick`
again.  It never touches a socket, a thread, a clock or a sleep, so one loop can
drive many boards (probes/board_loop.py), the blocking `Campaign.run` is a thin
driver over one link (probes/campaign.py), and tests run it on a virtual clock.

Runs go out as PROBE_LOAD_RUN frames, `Policy.window` in flight so round trips
overlap.  Every command is idempotent (contract/protocol.py: the guest answers a
run id it has seen with its cached result), so resending is always safe; the
question is only when.

Loss is seen from evidence, at once; the timer is the last resort.  The guest
handles commands in the order they were sent and answers each in that order, and
the line neither reorders nor invents frames.  So an answer to the command sent
N-th proves that every command sent before it whose answer has not come never
will: the command or its answer was lost (dropped, or rejected by COBS/CRC at
either end).  Those runs are resent at once, as TCP's RACK does once a later
segment is acknowledged (a gap in the guest's sequence numbers, or a rejected
frame followed by a good one, is exactly such a case).  Each send has a number;
a run sent several times keeps the numbers whose answer may still come, and an
answer is credited to the earliest of them, so the evidence is never
overstated and a resend never triggers another without new evidence: no storms.
What no later answer can reveal -- a loss at the tail, with nothing sent after
it -- is asked about: a frame rejected with nothing good after it, or, once the
line has lost a frame, a quiet line with runs in flight (`Policy.loss_probe_after`,
or twice a run's round trip), sends a PROBE_STATUS_REQUEST, which the guest
answers after everything sent before it, so its answer is evidence like any
other.  (On a rejected frame the earliest run still owed is also resent at once:
answers come in order, so the damaged frame was most likely its answer.)  Loss
probes back off (doubling) while the line stays quiet: a probe that runs long is
not a loss.

The rest is as before the state machine.  A run whose answer has not come after
`retransmit_after` seconds (stretched to a few times the time the runs in flight
take at the measured pace) is resent.  If nothing at all has come back for
`retransmit_after` seconds while runs are outstanding, the IO side is asked
whether the board is gone (`check_board`; answered with `board_stopped`); if not,
every run in flight is resent, and only a silence that lasts `dead_after`
seconds and outlives that resend declares the board dead.  The runs in flight
then become suspects, rerun one at a time after the restart, and a probe that
kills the board on its own is quarantined (bytes kept) and never sent again.  A
TIMEOUT no prediction expected is rerun a few times, spaced out, before it stands.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

from contract.frames import FrameDecoder, encode_frame
from contract.probe_abi import Outcome, Privilege, watchdog_ns
from contract.protocol import (
    LAYOUTS,
    PROBE_SLOTS,
    Msg,
    ProbeRefusal,
)
from probes.families import PRIVILEGED_FAMILIES
from probes.probe import Fault, Observation, Probe

BOARD_SILENT = "the board stopped answering"
NEVER = math.inf
# A run that has cost this many times the sends an average result has cost on this
# line is no longer bad luck (at 1% of bytes damaged, 110 straight losses: 1e-10).
ATTEMPTS_OVER_COST = 20


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
    poll_interval: float = 0.02  # the longest a blocking driver waits on its link at once
    batch_size: int = 256
    # sends of one run before the campaign gives up -- at least: a line that needs many
    # sends per result (1% of its bytes damaged: 5 or so) stretches it to
    # ATTEMPTS_OVER_COST times what a result has cost on it so far
    max_attempts: int = 50
    # Under TCG the guest's watchdog runs on host time, so a QEMU the host
    # descheduled looks like a hung probe (four boards on two cores: about one
    # CPUID run in 2,000): a TIMEOUT no prediction expected (the vetter predicted
    # another outcome, or could not predict) is run again this many times before it
    # stands, the n-th time after n x timeout_rerun_after seconds (a host busy now
    # is often less busy then; meanwhile the campaign goes on with other runs).
    timeout_reruns: int = 2
    timeout_rerun_after: float = 0.1
    # seconds of quiet, runs in flight, before asking the guest where it is (a loss
    # probe) -- at least: twice the measured round trip of a run when that is longer
    loss_probe_after: float = 0.002
    # Floors for a board under KVM (`under`).  There every port I/O of the probe line
    # exits to QEMU, through two hypervisors when nested: measured on this project's
    # nested kvm_pvm host (AMD EPYC, 2 cores, load 3.4), a boot's first answer came 1.3 s
    # after its probe was sent and a 2 KiB probe's round trip took 0.18 s, so the 0.9 s of
    # silence above declared the board dead, its reboot did the same, and the first
    # probe was quarantined (ProbesBroughtBoardDown); the second probe of a boot took 12 ms.
    kvm_retransmit_after: float = 1.0
    kvm_dead_after: float = 6.0

    def under(self, accelerator: str | None) -> Policy:
        """This policy for a board under `accelerator` ("kvm", "tcg"; None: not known):
        under KVM the silence and resend timers are at least the KVM floors."""
        if accelerator != "kvm":
            return self
        return replace(self, retransmit_after=max(self.retransmit_after,
                                                  self.kvm_retransmit_after),
                       dead_after=max(self.dead_after, self.kvm_dead_after))


@dataclass(frozen=True)
class CampaignResult:
    probe: Probe
    observation: Observation
    prediction: bytes | None

    @property
    def diverges(self) -> bool:
        return self.prediction is not None and self.prediction != self.observation.comparable()


class CampaignError(Exception):
    pass


@dataclass(slots=True)  # one per call: thousands a second
class Output:
    """What the IO side must do after a call into CampaignState, in this order."""

    send: list[bytes] = field(default_factory=list)  # to the board, in order: frames (and cut-offs)
    # (tuples: most calls hand over neither, and an empty tuple costs nothing to make)
    batches: tuple[list[CampaignResult], ...] = ()  # each: one transaction
    quarantined: tuple[tuple[Probe, str], ...] = ()  # (probe, why)
    restart: str | None = None  # why the board must be restarted; then call restarted()
    check_board: bool = False  # ask whether the board is gone; answer with board_stopped()
    deadline: float | None = None  # call tick() by then at the latest
    done: bool = False  # every item submitted has a result or is quarantined; none are coming


@dataclass
class Counters:
    """What a campaign had to do beyond sending each run once."""

    retransmissions: int = 0  # every resend, whatever the reason
    resent_on_evidence: int = 0  # a later answer (or a loss probe's) showed the run lost
    resent_on_reject: int = 0  # a frame rejected with nothing after it: the run owed first
    resent_on_timer: int = 0  # waited out the retransmission timer (the last resort)
    resent_on_silence: int = 0  # the whole window, after a silence
    loss_probes: int = 0  # PROBE_STATUS_REQUESTs sent to learn what was lost
    restarts: int = 0
    frames_rejected: int = 0  # by COBS/CRC, all boots of the board


@dataclass(slots=True)
class _Flight:
    probe: Probe
    prediction: bytes | None
    sent_at: float
    owed: list[int]  # send numbers whose answer may still come
    attempts: int = 1
    # TIMEOUTs no prediction expected, this submission of the probe: an equal probe
    # submitted again (a calibration task repeats its vectors) has its own allowance
    timeouts: int = 0


def load_body(probe: Probe, slot: int, tag: int | None = None) -> bytes:
    """The PROBE_LOAD body that puts `probe` in `slot` (under its own tag unless told)."""
    return LAYOUTS[Msg.PROBE_LOAD].pack(
        probe.code + probe.input, slot=slot, privilege=probe.privilege, budget=probe.budget,
        tag=probe.tag if tag is None else tag, code_length=len(probe.code),
        input_length=len(probe.input), output_size=probe.output_size)


Item = tuple[Probe, bytes | None]  # a probe and the vetter's prediction (None: unvetted)


class CampaignState:
    """One board's campaign.  Run ids keep growing for the life of the object: the
    guest answers a run id it has seen with its cached result, so reusing one on the
    same boot would be wrong."""

    def __init__(self, policy: Policy = Policy()) -> None:
        if not 0 < policy.window <= PROBE_SLOTS:
            raise ValueError(f"window {policy.window} must be 1..{PROBE_SLOTS} (the guest's slots)")
        self.policy = policy
        self.counters = Counters()
        self.decoder = FrameDecoder()
        self._rejected_before = 0  # frames the decoders of earlier boots rejected
        self._seq = 0
        self.next_run_id = 0
        self._sends = 0  # numbers every frame sent, runs and loss probes alike
        self._run_sends_log: deque[tuple[int, int]] = deque()  # (send number, run id), in order
        self._run_sends = self._results = 0  # what the results so far cost: sends, results
        self._queue: deque[Item] = deque()  # submitted, not launched yet
        self._ended = True  # no more items until start()
        self._suspects: deque[Item] = deque()  # in flight when the board died: rerun alone
        # (not before, item, its unexpected TIMEOUTs so far): run again after a TIMEOUT
        self._reruns: list[tuple[float, Item, int]] = []
        self._inflight: dict[int, _Flight] = {}  # run id -> flight
        # no flight was sent before this (kept cheaply: the timers need the oldest send)
        self._oldest_sent = NEVER
        self._serial = False  # after a board death: one run at a time until the suspects are done
        self._longest_watchdog = 0.0  # seconds: the longest watchdog of a probe launched so far
        self._dead_after_s = self._quiet = 0.0  # kept with it (see _watchdog_grew)
        self._watchdog_grew(0.0)
        self._pace = 0.0  # seconds between results, smoothed
        self._round_trip = 0.0  # seconds from a run's only send to its answer, smoothed
        self._last_result: float | None = None
        self._heard_at = 0.0  # when the board last sent a good frame
        self._prodded_at = 0.0  # when silence last made us resend everything in flight
        self._asked = False  # check_board is out, not answered yet
        self._restarting: str | None = None  # restart asked for, not done yet
        self._answered = -1  # the latest send number known to have been answered
        self._probes: list[int] = []  # send numbers of loss probes not answered yet
        self._probed_at = 0.0  # when the last loss probe went out
        self._probes_unheard = 0  # loss probes sent since the board last said anything
        self._rejects_seen = 0  # decoder.rejected_since_frame already acted on
        self._lossy = False  # the line has lost or damaged a frame: quiet is worth a loss probe
        self._batch: list[CampaignResult] = []
        self._out = Output()

    # -- items ----------------------------------------------------------------------------

    @property
    def wants(self) -> int:
        """How many more items the campaign would take now (submit that many, or call
        end_of_items): enough to fill the window and as many again waiting, so the
        slots an answer frees are refilled within the feed() that brings it."""
        if self._ended or self._restarting is not None:
            return 0
        limit = 1 if self._serial else self.policy.window
        return max(0, 2 * limit - len(self._inflight) - len(self._queue) - len(self._suspects))

    @property
    def has_room(self) -> bool:
        """The window has room: items submitted now go out at the next tick()."""
        return len(self._inflight) < self._limit()

    def submit(self, probe: Probe, prediction: bytes | None) -> None:
        if probe.privilege == Privilege.PRIVILEGED and probe.family not in PRIVILEGED_FAMILIES:
            raise CampaignError(f"privileged probe from family {probe.family!r}: only"
                                f" {sorted(PRIVILEGED_FAMILIES)} may run privileged")
        self._queue.append((probe, prediction))

    def end_of_items(self) -> None:
        self._ended = True

    @property
    def done(self) -> bool:
        return self._ended and self._restarting is None and not (
            self._queue or self._suspects or self._reruns or self._inflight)

    # -- events ---------------------------------------------------------------------------

    def start(self, now: float) -> Output:
        """Begin taking items (again: a state serves one campaign after another on the
        same boot).  Cuts off whatever the guest's decoder held."""
        self._ended = False
        self._heard_at = self._prodded_at = now
        self._last_result = None
        self._out.send.append(b"\0")
        return self._step(now)

    def tick(self, now: float) -> Output:
        return self.feed(b"", now)

    def feed(self, data: bytes, now: float) -> Output:
        """Bytes from the board (b"": only time has passed)."""
        if self._restarting is not None:
            return self._step(now)  # the old boot's last words
        frames = self.decoder.feed(data) if data else []
        if frames:
            self._heard_at = now
            self._probes_unheard = 0
        for frame in frames:
            if frame.type == Msg.PROBE_RESULT:  # nearly every frame: no dispatch
                self._result(frame.body, now)
            else:
                self._absorb(frame.type, frame.body, now)
        if frames:
            self._resend_what_was_lost(now)
        self._lossy = self._lossy or bool(self.decoder.crc_errors or self.decoder.lost)
        rejects = self.decoder.rejected_since_frame
        if rejects < self._rejects_seen:
            self._rejects_seen = 0  # a good frame came since
        if rejects > self._rejects_seen:  # damaged, and nothing good after it: act now
            self._rejects_seen = rejects
            self._resend_first_owed(now)
            self._loss_probe(now)
        return self._step(now)

    def board_stopped(self, why: str | None, now: float) -> Output:
        """The IO side's answer to `check_board` (None: the board is there, as far as it
        can tell), or its own news that the board is gone (`why`)."""
        self._asked = False
        if why is not None:
            if self._restarting is None:
                self._board_died(why, now)
            return self._step(now)
        if self._inflight and self._restarting is None:
            # Silence may only mean the line ate our commands: resend every run in
            # flight once, so a live guest has something to answer.
            for run_id, flight in list(self._inflight.items()):
                self._resend(run_id, flight, now)
                self.counters.resent_on_silence += 1
            self._prodded_at = now
        return self._step(now)

    def restarted(self, now: float) -> Output:
        """The board asked to be restarted is up again (a new boot)."""
        self._restarting = None
        self._rejected_before += self.decoder.crc_errors
        self.decoder = FrameDecoder()
        self._seq = 0
        self._answered, self._probes, self._rejects_seen, self._probes_unheard = -1, [], 0, 0
        self._run_sends_log.clear()
        self._heard_at = self._prodded_at = now
        self._out.send.append(b"\0")
        return self._step(now)

    # -- the step every event ends with ------------------------------------------------

    def _step(self, now: float) -> Output:
        if self._restarting is None:
            self._watch(now)
            if self._restarting is None and not self._asked:
                self._launch_what_fits(now)
        out, self._out = self._out, Output()
        out.done = done = self.done
        if done and self._batch:  # the last one, however short
            out.batches += (self._batch,)
            self._batch = []
        self.counters.frames_rejected = self._rejected_before + self.decoder.crc_errors
        if not done and self._restarting is None:
            out.deadline = self._deadline(now)
        return out

    def _limit(self) -> int:
        return 1 if self._serial else self.policy.window

    def _launch_what_fits(self, now: float) -> None:
        if self._serial and not self._suspects and not self._inflight:
            self._serial = False  # every suspect has been rerun alone
        while len(self._inflight) < self._limit():
            timeouts = 0
            if self._suspects:
                probe, prediction = self._suspects.popleft()
            elif self._reruns and (due := next((r for r in self._reruns if r[0] <= now), None)):
                self._reruns.remove(due)
                (probe, prediction), timeouts = due[1], due[2]
            elif self._queue:
                probe, prediction = self._queue.popleft()
            else:
                return
            run_id = self.next_run_id
            flight = _Flight(probe, prediction, now, [], timeouts=timeouts)
            if now < self._oldest_sent:
                self._oldest_sent = now
            self._inflight[run_id] = flight
            self._send_run(run_id, flight)
            self.next_run_id = (run_id + 1) % 2**32

    def _watch(self, now: float) -> None:
        """Timers: silence, a dead board, runs owed too long, a quiet line to probe."""
        if not self._inflight or self._asked:
            return
        silent, dead_after, quiet = now - self._heard_at, self._dead_after_s, self._quiet
        if silent > quiet and self._prodded_at <= self._heard_at:
            self._asked = True
            self._out.check_board = True
            return
        resent_unanswered = self._prodded_at > self._heard_at and now - self._prodded_at > quiet
        if silent > dead_after and resent_unanswered:
            self._board_died(BOARD_SILENT, now)
            return
        patience = self._patience()
        if now - self._oldest_sent > patience:  # some run may be due: look at each
            for run_id, flight in self._inflight.items():
                if now - flight.sent_at > patience:
                    self._resend(run_id, flight, now)
                    self.counters.resent_on_timer += 1
            self._oldest_sent = min(f.sent_at for f in self._inflight.values())
        if now >= self._next_probe_at():
            self._loss_probe(now)

    def _deadline(self, now: float) -> float | None:
        """When tick() must come at the latest: the earliest of the run timers, the
        silence rules, the next loss probe and the next rerun (once per call: cheap)."""
        when = min(at for at, _, _ in self._reruns) if self._reruns else NEVER
        if self._inflight:
            dead_after, quiet = self._dead_after_s, self._quiet
            if self._prodded_at <= self._heard_at:
                silence = self._heard_at + quiet
            else:
                silence = max(self._heard_at + dead_after, self._prodded_at + quiet)
            when = min(when, silence, self._oldest_sent + self._patience(), self._next_probe_at())
        if when == NEVER:
            return None
        # a hair past: the rules compare with ">", and a deadline must make progress
        return max(when, now) + 1e-6

    def _patience(self) -> float:
        return max(self.policy.retransmit_after, 3 * len(self._inflight) * self._pace)

    def _watchdog_grew(self, seconds: float) -> None:
        """A probe with a `seconds` watchdog was launched: the silence that means a dead
        board must be longer than any launched probe's watchdog, and the quiet before
        asking about the board is half of it (at most retransmit_after)."""
        self._longest_watchdog = seconds
        self._dead_after_s = max(self.policy.dead_after, 3 * seconds + 0.2)
        self._quiet = min(self.policy.retransmit_after, self._dead_after_s / 2)

    # -- evidence of loss ---------------------------------------------------------------

    def _next_probe_at(self) -> float:
        """When a quiet line is worth a loss probe: after the quiet threshold, doubling
        with every probe the board has not answered (a probe that runs long is no loss).
        Never on a line that has lost nothing so far (a quiet clean line only means a
        busy guest or host: probes would find nothing and cost frames), nor when the
        silence rule would come about as soon (a slow guest)."""
        if not self._lossy:
            return NEVER
        # The round trip, not the pace of results: on a lossy line results come slowly
        # because runs are lost, and a pace-based lull would stop the probes finding them.
        lull = max(self.policy.loss_probe_after, 2 * self._round_trip)
        quiet = self._quiet
        if lull > quiet / 2:
            return NEVER
        wait = min(lull * 2 ** self._probes_unheard, quiet)
        return max(self._heard_at, self._probed_at) + wait

    def _loss_probe(self, now: float) -> None:
        if not self._inflight:
            return
        self._probes.append(self._send_frame(Msg.PROBE_STATUS_REQUEST, b""))
        self._probed_at = now
        self._probes_unheard += 1
        self.counters.loss_probes += 1

    def _credit(self, owed: list[int]) -> None:
        """An answer to one of the sends numbered `owed` came: credit the earliest (the
        evidence is never overstated)."""
        if owed:
            self._answered = max(self._answered, owed.pop(0))

    def _resend_what_was_lost(self, now: float) -> None:
        """Every send numbered before the latest answered one and still owed is lost.
        The sends are looked at in order, each once: the log is cut as it is read."""
        answered, log = self._answered, self._run_sends_log
        while log and log[0][0] < answered:
            number, run_id = log.popleft()
            flight = self._inflight.get(run_id)
            if flight is None or not flight.owed or flight.owed[0] != number:
                continue  # answered since, or done
            flight.owed.pop(0)
            if not flight.owed:  # its resend is numbered past `answered`: not looked at again
                self._resend(run_id, flight, now)
                self.counters.resent_on_evidence += 1
                self._lossy = True
        if self._probes:
            self._probes = [n for n in self._probes if n > answered]

    def _resend_first_owed(self, now: float) -> None:
        owing = [(f.owed[0], run_id) for run_id, f in self._inflight.items() if f.owed]
        if owing:
            _, run_id = min(owing)
            self._resend(run_id, self._inflight[run_id], now)
            self.counters.resent_on_reject += 1

    # -- answers ----------------------------------------------------------------------------

    def _absorb(self, msg_type: int, body: bytes, now: float) -> None:
        """An answer other than a PROBE_RESULT."""
        if msg_type == Msg.PROBE_STATUS:
            if self._probes:
                self._answered = max(self._answered, self._probes.pop(0))
        elif msg_type == Msg.PROBE_LOADED:
            self._refused(body, now)

    def _refused(self, body: bytes, now: float) -> None:
        fields, _ = LAYOUTS[Msg.PROBE_LOADED].unpack(body)
        if fields["status"] in (ProbeRefusal.OK, ProbeRefusal.TAG_MISMATCH):
            return
        for run_id, flight in list(self._inflight.items()):  # the guest will never run it
            if flight.probe.tag == fields["tag"] and run_id % PROBE_SLOTS == fields["slot"]:
                self._credit(flight.owed)
                del self._inflight[run_id]
                self._finish(flight, Observation(Outcome.REFUSED), now)
                return

    def _result(self, body: bytes, now: float) -> None:
        fields, tail = LAYOUTS[Msg.PROBE_RESULT].unpack(body)
        run_id = fields["run_id"]
        flight = self._inflight.get(run_id)
        if flight is None or fields["tag"] != flight.probe.tag:
            return  # a duplicate of something already done, or stale
        owed = flight.owed  # credit the earliest send still owed (as _credit, inline: hot)
        if owed:
            number = owed.pop(0)
            if number > self._answered:
                self._answered = number
        outcome = Outcome(fields["outcome"])
        if outcome == Outcome.REFUSED:  # the slot did not hold its probe: reload it
            if not flight.owed:  # (unless a later send of it is still on its way)
                self._resend(run_id, flight, now)
                self.counters.resent_on_evidence += 1
            return
        del self._inflight[run_id]
        if outcome == Outcome.TIMEOUT:
            reruns = self._unexpected_timeouts(flight)
            if reruns:
                self._reruns.append((now + reruns * self.policy.timeout_rerun_after,
                                     (flight.probe, flight.prediction), reruns))
                return
        fault = (Fault(fields["fault_vector"], fields["fault_address"], fields["fault_ip"])
                 if outcome == Outcome.FAULT else None)
        # length 0: not measured
        length = fields["length"] or None if flight.probe.measure_length else None
        output = tail[: flight.probe.output_size]
        self._finish(flight, Observation(outcome, fields["status"], fault, output, fields["cycles"],
                                         fields["instret"], length), now)

    def _finish(self, flight: _Flight, observation: Observation, now: float) -> None:
        self._results += 1
        if flight.attempts == 1:  # its answer can only be to that send (Karn's rule)
            self._round_trip += 0.125 * (now - flight.sent_at - self._round_trip)
        self._run_sends += flight.attempts
        if self._last_result is not None:
            self._pace = 0.9 * self._pace + 0.1 * (now - self._last_result)
        self._last_result = now
        self._batch.append(CampaignResult(flight.probe, observation, flight.prediction))
        if len(self._batch) >= self.policy.batch_size:
            self._out.batches += (self._batch,)
            self._batch = []

    def _unexpected_timeouts(self, flight: _Flight) -> int:
        """After a TIMEOUT: how many TIMEOUTs no prediction expected this submission of
        the probe has had, while it has reruns left (0: expected, or none left: the
        outcome stands)."""
        if flight.prediction and flight.prediction[0] == Outcome.TIMEOUT:
            return 0
        flight.timeouts += 1
        return flight.timeouts if flight.timeouts <= self.policy.timeout_reruns else 0

    # -- sending --------------------------------------------------------------------------

    def _send_run(self, run_id: int, flight: _Flight) -> None:
        """One PROBE_LOAD_RUN: the slot's probe and the run of it, in one frame."""
        probe = flight.probe
        watchdog = watchdog_ns(probe.budget) / 1e9
        if watchdog > self._longest_watchdog:
            self._watchdog_grew(watchdog)
        body = LAYOUTS[Msg.PROBE_LOAD_RUN].pack(load_body(probe, run_id % PROBE_SLOTS),
                                                run_id=run_id, flags=probe.run_flags)
        number = self._send_frame(Msg.PROBE_LOAD_RUN, body)
        flight.owed.append(number)
        self._run_sends_log.append((number, run_id))

    def _resend(self, run_id: int, flight: _Flight, now: float) -> None:
        flight.attempts += 1
        cost = self._run_sends / max(1, self._results)  # sends per result on this line so far
        if flight.attempts > max(self.policy.max_attempts, ATTEMPTS_OVER_COST * cost):
            raise CampaignError(f"run {run_id} got no result after {flight.attempts - 1} sends"
                                f" ({cost:.1f} per result so far) while the board kept"
                                " answering; check the link's error rate")
        flight.sent_at = now
        self.counters.retransmissions += 1
        self._send_run(run_id, flight)

    def _send_frame(self, msg_type: Msg, body: bytes) -> int:
        """Queue one frame; returns its send number."""
        self._out.send.append(encode_frame(msg_type, self._seq, body))
        self._seq = (self._seq + 1) % (1 << 16)
        self._sends += 1
        return self._sends

    # -- a dead board ---------------------------------------------------------------------

    def _board_died(self, why: str, now: float) -> None:
        self.counters.restarts += 1
        self._restarting = why
        self._out.restart = why
        flights = [self._inflight[r] for r in sorted(self._inflight)]
        self._inflight.clear()
        self._probes = []
        if self._serial and len(flights) == 1:
            culprit = flights[0].probe
            self._out.quarantined += ((culprit, f"{why} while it ran alone"),)
            return
        # Unknown which one did it: rerun each alone, in the order they were sent.
        self._suspects.extendleft(reversed([(f.probe, f.prediction) for f in flights]))
        self._serial = True
