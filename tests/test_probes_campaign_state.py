"""The campaign state machine on a virtual clock, against the fake guest (Unicorn).

Nothing here sleeps: `VirtualLine` moves frames between a CampaignState and a
FakeGuest, lets a test lose or damage chosen frames in either direction, gives
the guest a processing time per command if asked (it answers in order, as the
kernels do), and jumps the clock to the state's next deadline when nothing is
on the line.  So "resent at once" is checkable exactly: no virtual time passes
between the loss showing and the resend."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from arch import X86_64
from contract.frames import Frame, FrameDecoder, encode_frame
from contract.protocol import LAYOUTS, Msg
from probes.campaign_state import CampaignResult, CampaignState, Policy
from probes.probe import Probe
from probes.vet import vet
from testing.fake_guest import FakeGuest

FramePredicate = Callable[[Frame, int], bool]  # (frame, how many such frames came before)


def vetted(n: int, seed: int) -> list[tuple[Probe, bytes | None]]:
    rng, out = random.Random(seed), []
    while len(out) < n:
        probe = Probe(X86_64, rng.randbytes(rng.randrange(2, 24)), output_size=16)
        verdict = vet(probe)
        if verdict.accepted:
            out.append((probe, verdict.prediction))
    return out


def run_id(frame: Frame) -> int | None:
    if frame.type == Msg.PROBE_LOAD_RUN:
        return LAYOUTS[Msg.PROBE_LOAD_RUN].unpack(frame.body)[0]["run_id"]
    if frame.type == Msg.PROBE_RESULT:
        return LAYOUTS[Msg.PROBE_RESULT].unpack(frame.body)[0]["run_id"]
    return None


def never(_frame: Frame, _seen: int) -> bool:
    return False


def decode(data: bytes) -> list[Frame]:
    return FrameDecoder().feed(b"\0" + data)


def encode(frame: Frame) -> bytes:
    return encode_frame(frame.type, frame.seq, frame.body, frame.flags)


class VirtualLine:
    """A CampaignState, a FakeGuest, the line between them and a virtual clock."""

    def __init__(self, state: CampaignState, guest: FakeGuest, *,
                 lose_command: FramePredicate = never, lose_answer: FramePredicate = never,
                 damage_answer: FramePredicate = never,
                 busy: Callable[[Frame], float] = lambda _frame: 0.0,
                 stopped: Callable[[], str | None] = lambda: None) -> None:
        self.state, self.guest = state, guest
        self.lose_command, self.lose_answer = lose_command, lose_answer
        self.damage_answer = damage_answer
        self.busy, self.stopped = busy, stopped
        self.now = 0.0
        self.sent: list[tuple[float, Frame]] = []  # every host frame, when it was sent
        self.results: list[CampaignResult] = []
        self.quarantined: list[tuple[Probe, str]] = []
        self.restarts_at: list[float] = []
        # ("sent" | "answered", run id), ("restart", None): in the order they happened
        self.log: list[tuple[str, int | None]] = []
        self._seen: Counter = Counter()  # (direction, msg type, run id) -> frames so far
        self._answers: list[tuple[float, bytes]] = []  # (when it arrives, bytes), in order
        self._guest_free_at = 0.0
        self._arrive(self.guest.restart())

    def run(self, items: list[tuple[Probe, bytes | None]], limit: float = 60.0) -> None:
        source = iter(items)
        out = self.state.start(self.now)
        while True:
            out = self._act(out)
            if out.done:
                return
            for _ in range(self.state.wants):
                item = next(source, None)
                if item is None:
                    self.state.end_of_items()
                    break
                self.state.submit(*item)
            out = self._act(self.state.tick(self.now))
            if out.done:
                return
            due = [when for when, _ in self._answers if when <= self.now]
            if not due:  # nothing on the line now: jump to the next thing that happens
                coming = [when for when, _ in self._answers[:1]]
                nexts = [t for t in (out.deadline, *coming) if t is not None]
                self.now = max(self.now, min(nexts))
                assert self.now < limit, "the campaign did not finish"
            arrived = b"".join(data for when, data in self._answers if when <= self.now)
            self._answers = [(when, data) for when, data in self._answers if when > self.now]
            self.log += [("answered", run_id(f))
                         for f in decode(arrived) if f.type == Msg.PROBE_RESULT]
            out = self.state.feed(arrived, self.now)

    def _act(self, out):
        while True:
            for data in out.send:
                self._deliver(data)
            for batch in out.batches:
                self.results += batch
            self.quarantined += out.quarantined
            if out.restart is not None:
                self.restarts_at.append(self.now)
                self.log.append(("restart", None))
                self._answers, self._guest_free_at = [], self.now
                self._arrive(self.guest.restart())
                out = self.state.restarted(self.now)
            elif out.check_board:
                out = self.state.board_stopped(self.stopped(), self.now)
            else:
                return out

    def _deliver(self, data: bytes) -> None:
        """One host send (a frame, or a lone delimiter) into the guest, which answers
        in order, each command `busy(frame)` seconds after the one before."""
        for frame in decode(data):
            self.sent.append((self.now, frame))
            if frame.type == Msg.PROBE_LOAD_RUN:
                self.log.append(("sent", run_id(frame)))
            if self._nth(self.lose_command, "command", frame):
                continue
            start = max(self.now, self._guest_free_at)
            self._guest_free_at = done = start + self.busy(frame)
            for answer in decode(self.guest.receive(encode(frame))):
                if self._nth(self.lose_answer, "answer", answer):
                    continue
                raw = encode(answer)
                if self._nth(self.damage_answer, "damaged", answer):  # one bit, never into a 0
                    raw = raw[:5] + bytes([raw[5] ^ (0x40 if raw[5] != 0x40 else 0x20)]) + raw[6:]
                self._answers.append((done, raw))

    def _nth(self, predicate: FramePredicate, direction: str, frame: Frame) -> bool:
        key = (direction, frame.type, run_id(frame))
        seen, self._seen[key] = self._seen[key], self._seen[key] + 1
        return predicate(frame, seen)

    def _arrive(self, data: bytes) -> None:
        self._answers.append((self.now, data))

    # -- what happened ----------------------------------------------------------------

    def sends_of(self, msg_type: Msg) -> list[tuple[float, Frame]]:
        return [(when, f) for when, f in self.sent if f.type == msg_type]

    def runs_sent(self, run: int) -> list[float]:
        return [when for when, f in self.sends_of(Msg.PROBE_LOAD_RUN) if run_id(f) == run]


def answered(line: VirtualLine) -> Counter:
    """How many results each probe got."""
    return Counter(r.probe.content_hash for r in line.results)


def result_of(line: VirtualLine) -> dict[bytes, CampaignResult]:
    return {r.probe.content_hash: r for r in line.results}


def the(run: int, msg_type: Msg = Msg.PROBE_LOAD_RUN, nth: int = 0) -> FramePredicate:
    """The nth frame of `msg_type` about run id `run`."""
    return lambda frame, seen: frame.type == msg_type and run_id(frame) == run and seen == nth


def answered_once_and_right(line: VirtualLine, items) -> None:
    """Every item has exactly one result, the vetter's prediction (the fake guest is
    the same emulator), and the guest ran each probe exactly once."""
    assert answered(line) == Counter(p.content_hash for p, _ in items)
    assert not any(r.diverges for r in line.results)
    assert line.guest.runs == len(items)


# -- loss seen from evidence: resent at once ---------------------------------------------

def test_a_lost_command_is_resent_as_soon_as_a_later_answer_shows_it():
    items = vetted(8, seed=21)
    line = VirtualLine(CampaignState(Policy(window=4)), FakeGuest(X86_64), lose_command=the(1))
    line.run(items)
    answered_once_and_right(line, items)
    assert line.runs_sent(1) == [0.0, 0.0]  # resent at the very instant run 2's answer came
    counters = line.state.counters
    assert counters.resent_on_evidence == counters.retransmissions == 1
    assert line.now == 0.0  # no timer was waited out


def test_a_lost_answer_is_resent_at_once_and_answered_from_the_guests_cache():
    items = vetted(8, seed=22)
    line = VirtualLine(CampaignState(Policy(window=4)), FakeGuest(X86_64),
                       lose_answer=the(2, Msg.PROBE_RESULT))
    line.run(items)
    answered_once_and_right(line, items)  # guest.runs == 8: the resend was not run again
    assert line.runs_sent(2) == [0.0, 0.0] and line.state.decoder.lost == 1  # a gap in seq
    assert line.state.counters.resent_on_evidence == 1 and line.now == 0.0


def test_a_damaged_answer_followed_by_a_good_one_is_resent_at_once():
    items = vetted(8, seed=23)
    line = VirtualLine(CampaignState(Policy(window=4)), FakeGuest(X86_64),
                       damage_answer=the(1, Msg.PROBE_RESULT))
    line.run(items)
    answered_once_and_right(line, items)
    assert line.state.decoder.crc_errors == 1 and line.runs_sent(1) == [0.0, 0.0]
    assert line.state.counters.retransmissions == 1 and line.now == 0.0


def test_a_damaged_last_answer_resends_the_run_owed_first_and_asks_the_guest_at_once():
    """Nothing comes after the damaged frame: the earliest run still owed is resent (answers
    come in order: the damaged frame was most likely its answer), and a loss probe goes
    with it, whose answer would show whatever else was lost."""
    items = vetted(4, seed=24)
    line = VirtualLine(CampaignState(Policy(window=4)), FakeGuest(X86_64),
                       damage_answer=the(3, Msg.PROBE_RESULT))
    line.run(items)
    answered_once_and_right(line, items)
    assert line.runs_sent(3) == [0.0, 0.0]
    assert [t for t, _ in line.sends_of(Msg.PROBE_STATUS_REQUEST)] == [0.0]
    assert line.state.counters.resent_on_reject == 1 and line.now == 0.0


def test_a_lost_last_command_on_a_lossy_line_is_found_by_a_loss_probe_long_before_the_timer():
    policy = Policy(window=4)
    items = vetted(8, seed=25)
    # run 1's command is lost (evidence shows it: the line is lossy now), then the
    # last command of all, which no later answer can show
    line = VirtualLine(CampaignState(policy), FakeGuest(X86_64),
                       lose_command=lambda f, seen: the(1)(f, seen) or the(7)(f, seen))
    line.run(items)
    answered_once_and_right(line, items)
    (probe_at, _), = line.sends_of(Msg.PROBE_STATUS_REQUEST)
    assert probe_at == pytest.approx(policy.loss_probe_after, abs=1e-5)
    assert line.runs_sent(7) == [0.0, probe_at]  # the probe's answer showed it lost
    assert line.state.counters.resent_on_timer == 0 and line.now < policy.retransmit_after / 10


def test_on_a_line_that_never_lost_anything_the_timer_is_the_last_resort():
    policy = Policy(window=4)
    items = vetted(4, seed=26)
    line = VirtualLine(CampaignState(policy), FakeGuest(X86_64), lose_command=the(3))
    line.run(items)
    answered_once_and_right(line, items)
    assert not line.sends_of(Msg.PROBE_STATUS_REQUEST)
    assert line.runs_sent(3) == [0.0, pytest.approx(policy.retransmit_after, abs=1e-5)]
    counters = line.state.counters  # the silence rule and the run's timer fall due together
    assert counters.retransmissions == counters.resent_on_timer + counters.resent_on_silence == 1


def test_loss_probes_back_off_while_a_probe_runs_long_and_nothing_is_resent():
    """A guest busy 0.2 s with one run: loss probes double their wait (a long probe is
    no loss), and the answers, in order behind it, show nothing was lost."""
    policy = Policy(window=4, retransmit_after=1.0)
    items = vetted(8, seed=27)
    slow = items[5][0].tag
    line = VirtualLine(
        CampaignState(policy), FakeGuest(X86_64), lose_command=the(1),  # the line is lossy
        busy=lambda f: 0.2 if f.type == Msg.PROBE_LOAD_RUN and LAYOUTS[Msg.PROBE_LOAD].unpack(
            LAYOUTS[Msg.PROBE_LOAD_RUN].unpack(f.body)[1])[0]["tag"] == slow else 0.0)
    line.run(items)
    answered_once_and_right(line, items)
    probes = [t for t, _ in line.sends_of(Msg.PROBE_STATUS_REQUEST)]
    gaps = [b - a for a, b in zip(probes, probes[1:], strict=False)]
    assert 2 <= len(probes) <= 8 and all(b > 1.5 * a for a, b in zip(gaps, gaps[1:], strict=False))
    assert line.state.counters.retransmissions == 1  # run 1's, nothing for the slow run


@pytest.mark.parametrize("rate", [0.003, 0.01])
def test_a_damaged_line_ends_with_the_clean_results_with_no_storm_and_few_timers(rate):
    """Drops and flips on both directions of the loopback: the results are the clean
    run's, every resend has damage behind it, and nearly all are resent on evidence."""
    from probes.campaign import Campaign
    from testing.loopback import Loopback

    items = vetted(400, seed=28)
    clean = Campaign(Loopback(FakeGuest(X86_64))).run(items)
    link = Loopback(FakeGuest(X86_64), drop_rate=rate / 2, flip_rate=rate / 2, seed=7)
    faulty = Campaign(link).run(items)
    assert {h: r.observation for h, r in faulty.results.items()} == \
        {h: r.observation for h, r in clean.results.items()}
    damaged = link.dropped + link.flipped
    counters = faulty.counters
    assert 0 < counters.retransmissions <= 3 * damaged  # each resend is paid for by damage
    assert counters.resent_on_timer + counters.resent_on_silence <= counters.retransmissions / 10
    assert faulty.restarts == 0


# -- dead and hung boards, suspects, quarantine ---------------------------------------------

def test_a_hung_board_is_declared_dead_after_a_resend_and_its_killer_quarantined_alone():
    policy = Policy(window=4)
    items = vetted(10, seed=29)
    killer = items[5][0]
    guest = FakeGuest(X86_64, killers=frozenset({killer.content_hash}))
    line = VirtualLine(CampaignState(policy), guest)
    line.run(items)
    assert [p for p, _ in line.quarantined] == [killer]
    assert line.quarantined[0][1] == "the board stopped answering while it ran alone"
    assert set(result_of(line)) == {p.content_hash for p, _ in items} - {killer.content_hash}
    first, second = line.restarts_at
    # silent for retransmit_after, everything resent, then dead after dead_after of silence
    assert policy.dead_after <= first <= policy.dead_after + policy.retransmit_after + 0.01
    assert line.state.counters.resent_on_silence >= 1
    # The killer was the first suspect, so it ran alone between the deaths; after the
    # second, the other three ran one at a time (each answered before the next went).
    restarts = [i for i, (kind, _) in enumerate(line.log) if kind == "restart"]
    between = {run for kind, run in line.log[restarts[0]:restarts[1]] if kind == "sent"}
    assert len(between) == 1
    after = line.log[restarts[1]:]
    sends = [i for i, (kind, _) in enumerate(after) if kind == "sent"]
    for this, following in zip(sends[:3], sends[1:4], strict=True):
        assert ("answered", after[this][1]) in after[this:following]
    assert line.state.counters.restarts == 2


def test_a_board_the_link_knows_is_gone_is_restarted_without_waiting_out_the_silence():
    policy = Policy(window=4)
    items = vetted(10, seed=29)
    killer = items[5][0]
    guest = FakeGuest(X86_64, killers=frozenset({killer.content_hash}))
    line = VirtualLine(CampaignState(policy), guest,
                       stopped=lambda: None if guest.alive else "QEMU exited")
    line.run(items)
    assert [(p, why) for p, why in line.quarantined] == [(killer, "QEMU exited while it ran alone")]
    first, _ = line.restarts_at
    assert first <= policy.retransmit_after + 0.01  # asked at the first silence, not dead_after


def test_suspects_that_are_innocent_are_not_quarantined_and_every_probe_is_answered_once():
    """The board dies under four runs, none guilty (the 'killer' kills only on its first
    boot): each is rerun alone after the restart, and answered."""

    class DiesOnce(FakeGuest):
        def restart(self) -> bytes:
            if self.boots >= 2:  # made, booted by the line: from the next boot on, no killer
                self.killers = frozenset()
            return super().restart()

    items = vetted(10, seed=30)
    guest = DiesOnce(X86_64, killers=frozenset({items[6][0].content_hash}))
    line = VirtualLine(CampaignState(Policy(window=4)), guest)
    line.run(items)
    assert not line.quarantined and len(line.restarts_at) == 1
    assert answered(line) == Counter(p.content_hash for p, _ in items)


@pytest.mark.parametrize("lost", [0.0, 0.75])
def test_a_run_never_answered_while_the_board_answers_others_ends_the_campaign(lost):
    """Run 2's answer never arrives.  The campaign gives up on it after max_attempts sends
    on a clean line; on a line that loses three answers in four (a result costs about
    four sends), after 20 times what a result has cost: bad luck is not a broken run."""
    import math

    from probes.campaign_state import ATTEMPTS_OVER_COST, CampaignError

    rng = random.Random(5)

    def lose(frame: Frame, _seen: int) -> bool:
        return run_id(frame) == 2 or (frame.type == Msg.PROBE_RESULT and rng.random() < lost)

    policy = Policy(window=4, batch_size=1)
    line = VirtualLine(CampaignState(policy), FakeGuest(X86_64), lose_answer=lose)
    with pytest.raises(CampaignError, match="run 2 got no result after") as failure:
        line.run(vetted(40, seed=31))
    sent = Counter(run for kind, run in line.log if kind == "sent")
    done = {run for kind, run in line.log if kind == "answered"} - {2}
    cost = sum(sent[run] for run in done) / len(line.results)  # sends per result, counted here
    assert len(done) == len(line.results) and not line.restarts_at
    assert sent[2] == math.floor(max(policy.max_attempts, ATTEMPTS_OVER_COST * cost))
    assert f"after {sent[2]} sends ({cost:.1f} per result so far)" in str(failure.value)
    assert (cost > 3) == (lost > 0)


# -- a slow line: KVM ----------------------------------------------------------------------

def first_after_boot_slow(first: float, rest: float) -> tuple[Callable[[Frame], float],
                                                                 Callable[[VirtualLine], None]]:
    """A guest's time per run as measured under nested KVM: the first run of each boot
    `first` seconds, every other `rest`.  Returns busy() and the hook that binds a line."""
    seen: dict = {}

    def busy(frame: Frame) -> float:
        if frame.type != Msg.PROBE_LOAD_RUN:
            return 0.0
        line = seen["line"]
        boot = len(line.restarts_at)
        if seen.get("boot") != boot:
            seen["boot"] = boot
            return first
        return rest

    def bind(line: VirtualLine) -> None:
        seen["line"] = line

    return busy, bind


@pytest.mark.parametrize("accelerator", ["tcg", "kvm"])
def test_under_kvm_a_boots_slow_first_answer_is_waited_for_not_taken_for_a_dead_board(
        accelerator):
    """A boot's first answer 1.3 s after its probe, the rest 12 ms after theirs (nested
    KVM, measured): with TCG's timers the board is declared dead on every boot, and as
    each suspect runs first on a new boot every probe is quarantined; with KVM's floors
    every probe is answered once and the board never restarted."""
    from probes.run import POLICY

    items = vetted(6, seed=40)
    busy, bind = first_after_boot_slow(1.3, 0.012)
    line = VirtualLine(CampaignState(POLICY.under(accelerator)), FakeGuest(X86_64), busy=busy)
    bind(line)
    line.run(items)
    if accelerator == "tcg":
        assert [p for p, _ in line.quarantined] == [p for p, _ in items]
        assert line.state.counters.restarts == 1 + len(items)
    else:
        answered_once_and_right(line, items)
        assert line.state.counters.restarts == 0


def test_a_campaign_takes_its_links_accelerator_into_its_timers():
    from probes.campaign import Campaign
    from probes.run import POLICY
    from testing.loopback import Loopback

    link = Loopback(FakeGuest(X86_64))
    assert Campaign(link, POLICY).policy == POLICY  # a link that does not say: as given
    link.accelerator = "kvm"
    kvm = Campaign(link, POLICY).policy
    assert kvm.dead_after == POLICY.kvm_dead_after > POLICY.dead_after
    assert kvm.retransmit_after == POLICY.kvm_retransmit_after > POLICY.retransmit_after
    assert POLICY.under("tcg") == POLICY
