"""The transport-independent campaign driver against the fake guest."""

import random

import pytest

from arch import RISCV64, X86_64
from contract.probe_abi import Privilege
from probes.campaign import Campaign
from probes.campaign_state import CampaignError, Policy
from probes.probe import Probe
from probes.vet import vet
from testing.fake_guest import FakeGuest
from testing.loopback import Loopback


def _vetted(arch: str, n: int, seed: int) -> list[tuple[Probe, bytes | None]]:
    rng, out = random.Random(seed), []
    while len(out) < n:
        probe = Probe(arch, rng.randbytes(rng.randrange(2, 24)), output_size=16)
        verdict = vet(probe)
        if verdict.accepted:
            out.append((probe, verdict.prediction))
    return out


def _observations(report):
    return {h: r.observation for h, r in report.results.items()}


@pytest.mark.parametrize("arch", [X86_64, RISCV64])
def test_drop_and_flip_end_with_the_same_results_as_a_clean_run(arch):
    items = _vetted(arch, 300, seed=11)
    clean = Campaign(Loopback(FakeGuest(arch))).run(items)
    assert len(clean.results) == len(items) and clean.retransmissions == 0
    assert clean.divergences == 0  # the fake guest is the emulator: it must agree with the vetter
    faulty_link = Loopback(FakeGuest(arch), drop_rate=0.003, flip_rate=0.003, seed=5)
    faulty = Campaign(faulty_link).run(items)
    assert faulty.frames_rejected > 0 and faulty.retransmissions > 0  # the faults really happened
    assert _observations(faulty) == _observations(clean)


def test_a_probe_that_kills_the_board_is_quarantined_and_nothing_else_is_lost():
    items = _vetted(X86_64, 120, seed=12)
    killer = items[70][0]
    quarantined = []
    link = Loopback(FakeGuest(X86_64, killers=frozenset({killer.content_hash})))
    report = Campaign(link, Policy(window=16),
                      on_quarantine=lambda p, why: quarantined.append(p)).run(items)
    assert quarantined == [killer] and report.quarantined == [killer]
    assert set(report.results) == {p.content_hash for p, _ in items} - {killer.content_hash}
    assert link.restarts == report.restarts == 2  # once in the window, once alone
    assert link.clock < 10  # noticed within about a second each time (virtual clock)


def test_privileged_probes_only_from_privileged_families():
    # csrr a1, mstatus; ret
    probe = Probe(RISCV64, bytes.fromhex("f3252030" "67800000"), Privilege.PRIVILEGED)
    with pytest.raises(CampaignError, match="only"):
        Campaign(Loopback(FakeGuest(RISCV64))).run([(probe, None)])


def test_privileged_probe_refused_by_a_guest_without_privileged_probing():
    probe = Probe(RISCV64, bytes.fromhex("f3252030" "67800000"), Privilege.PRIVILEGED, family="csr")
    report = Campaign(Loopback(FakeGuest(RISCV64, allow_privileged=False))).run([(probe, None)])
    assert report.results[probe.content_hash].observation.outcome.name == "REFUSED"


def test_batches_are_handed_over_whole():
    items = _vetted(RISCV64, 100, seed=13)
    batches = []
    Campaign(Loopback(FakeGuest(RISCV64)), Policy(batch_size=32),
             on_batch=batches.append).run(items)
    assert [len(b) for b in batches] == [32, 32, 32, 4]


def test_a_second_run_on_the_same_boot_gets_fresh_results():
    from probes.campaign import Campaign
    from probes.probe import Probe
    from testing.fake_guest import FakeGuest
    from testing.loopback import Loopback

    campaign = Campaign(Loopback(FakeGuest(X86_64)))
    first = [(Probe(X86_64, bytes.fromhex("b801000000c3")), None)]  # mov eax, 1; ret
    second = [(Probe(X86_64, bytes.fromhex("b802000000c3")), None)]  # mov eax, 2; ret
    campaign.run(first)
    (result,) = campaign.run(second).results.values()
    assert result.observation.status == 2  # not run 0's cached answer


def test_an_unexpected_timeout_is_run_again_before_it_stands():
    from contract.probe_abi import Outcome
    from probes.campaign import Campaign
    from probes.campaign_state import Policy
    from probes.probe import Observation, Probe
    from testing.fake_guest import FakeGuest
    from testing.loopback import Loopback

    class Descheduled(FakeGuest):  # the first run of every probe "hangs", as a starved QEMU does
        seen: set = set()

        def _contained(self, run):
            observation = super()._contained(run)
            key = bytes(self.emulator.uc.mem_read(self.emulator._code[0], 6))
            if key not in self.seen:
                self.seen.add(key)
                return Observation(Outcome.TIMEOUT)
            return observation

    probe = Probe(X86_64, bytes.fromhex("b801000000c3"))  # mov eax, 1; ret
    predicted = Observation(Outcome.RETURNED, 1, output=bytes(probe.output_size)).comparable()
    campaign = Campaign(Loopback(Descheduled(X86_64)), Policy())
    (result,) = campaign.run([(probe, predicted)]).results.values()
    assert result.observation.outcome == Outcome.RETURNED and not result.diverges


def test_an_equal_probe_submitted_again_has_its_own_timeout_reruns():
    # A calibration task repeats its vectors, so the same probe comes again on the same
    # boot; a host busy at both submissions must not use up the second's reruns.
    from contract.probe_abi import Outcome
    from probes.probe import Observation

    class BusyAtEachSubmission(FakeGuest):  # every other run of a probe "hangs"
        def __init__(self, arch):
            super().__init__(arch)
            self.of_probe: dict[bytes, int] = {}

        def _contained(self, run):
            observation = super()._contained(run)
            key = bytes(self.emulator.uc.mem_read(self.emulator._code[0], 6))
            self.of_probe[key] = self.of_probe.get(key, 0) + 1
            return Observation(Outcome.TIMEOUT) if self.of_probe[key] % 2 else observation

    probe = Probe(X86_64, bytes.fromhex("b801000000c3"))  # mov eax, 1; ret
    predicted = Observation(Outcome.RETURNED, 1, output=bytes(probe.output_size)).comparable()
    guest = BusyAtEachSubmission(X86_64)
    campaign = Campaign(Loopback(guest), Policy(timeout_reruns=1, timeout_rerun_after=0.0))
    for submission in (1, 2):
        (result,) = campaign.run([(probe, predicted)]).results.values()
        assert result.observation.outcome == Outcome.RETURNED, submission
    assert guest.runs == 4  # each submission: one TIMEOUT, one rerun


def test_a_line_that_eats_commands_to_a_live_guest_is_not_a_dead_board():
    class SlowLossy(Loopback):
        """Each frame back takes 100 ms, and the line eats the host's 50th to 59th sends."""
        sends = 0

        def send(self, data: bytes) -> None:
            self.sends += 1
            if not 50 <= self.sends < 60:
                super().send(data)

        def poll(self, timeout: float) -> bytes:
            end = self._inbox.find(0, 1)  # one frame per poll (each ends with its 0 delimiter)
            if end < 0:
                return super().poll(timeout)
            data, self._inbox = bytes(self._inbox[: end + 1]), self._inbox[end + 1:]
            self.clock += 0.1
            return data

    items = _vetted(X86_64, 60, seed=14)
    link = SlowLossy(FakeGuest(X86_64))
    # A retransmit timer longer than dead_after, as a slow guest's measured pace makes it:
    # the silence after the lost commands must bring a resend, not a restart.
    report = Campaign(link, Policy(window=8, retransmit_after=5.0)).run(items)
    assert len(report.results) == len(items) and report.retransmissions >= 10
    assert report.restarts == link.restarts == 0


def test_a_link_that_knows_the_board_stopped_ends_the_silence_at_once():
    """A board that QEMU reports stopped (say KVM's internal-error) is restarted as soon
    as the silence starts, not after the whole dead_after."""
    class Reporting(Loopback):
        def stopped(self) -> str | None:
            return None if self.guest.alive else "QEMU reports the guest internal-error"

    items = _vetted(X86_64, 120, seed=12)
    killer = items[70][0]
    clocks, reasons = {}, []
    for link in (Loopback(FakeGuest(X86_64, killers=frozenset({killer.content_hash}))),
                 Reporting(FakeGuest(X86_64, killers=frozenset({killer.content_hash})))):
        report = Campaign(link, Policy(window=16),
                          on_quarantine=lambda _p, why: reasons.append(why)).run(items)
        assert report.quarantined == [killer] and link.restarts == 2
        clocks[type(link)] = link.clock
    assert clocks[Reporting] < clocks[Loopback] - 1.0  # two deaths, each seen ~0.75 s sooner
    assert reasons[1] == "QEMU reports the guest internal-error while it ran alone"


def test_the_rates_count_generated_probes_and_executed_ones_apart(tmp_path):
    """generated/s counts every probe the family made (vetting included); executed/s
    only those the guest ran and the store kept: the fake guest and the store count
    them independently."""
    import itertools

    from discovery.fingerprint import x86_fingerprint
    from probes.catalogue import random_probes
    from probes.run import run_campaign
    from probes.store import CapabilityStore

    guest = FakeGuest(X86_64)
    offered = list(itertools.islice(random_probes(X86_64, seed=4), 600))
    store = CapabilityStore(tmp_path / "cap.db")
    fingerprint = x86_fingerprint("fake", "GenuineIntel", 6, 85, 4, {})
    tally = run_campaign(Loopback(guest), offered, store, fingerprint, "unicorn")
    (stored,) = store.conn.execute("SELECT COUNT(*) FROM cap_result").fetchone()
    store.close()
    assert tally.generated == 600 and 0 < tally.executed == stored == guest.runs < 300
    assert tally.generated_per_second == pytest.approx(600 / tally.seconds)
    assert tally.executed_per_second == pytest.approx(stored / tally.seconds)
    summary = tally.to_json()
    assert summary["generated_per_second"] == round(600 / tally.seconds, 1)
    assert summary["executed_per_second"] == round(stored / tally.seconds, 1)


def test_experiments_differing_only_in_budget_output_size_or_flags_each_get_their_result():
    code = X86_64.assemble("mov rax, 0x1122334455667788\nmov [rsi], rax\nmov [rsi+8], rax\n"
                           "nop\nnop\nret")
    base = Probe(X86_64, code, budget=64, output_size=16)
    variants = [base, Probe(X86_64, code, budget=3, output_size=16),
                Probe(X86_64, code, budget=64, output_size=8),
                Probe(X86_64, code, budget=64, output_size=16, measure_length=True)]
    report = Campaign(Loopback(FakeGuest(X86_64))).run([(p, None) for p in variants])
    assert set(report.results) == {p.content_hash for p in variants}  # none overwrote another
    seen = {p: report.results[p.content_hash].observation for p in variants}
    assert seen[base].output == bytes.fromhex("8877665544332211") * 2
    assert seen[variants[1]].outcome.name == "TIMEOUT"
    assert seen[variants[2]].output == seen[base].output[:8]
    assert seen[variants[3]].output == seen[base].output


def test_dedup_before_vetting_is_by_full_identity():
    from probes.run import Tally, prepare

    code = X86_64.assemble("xor eax, eax\nret")
    probes = [Probe(X86_64, code, budget=10), Probe(X86_64, code, budget=10, family="other"),
              Probe(X86_64, code, budget=11), Probe(X86_64, code, budget=10, measure_length=True)]
    tally = Tally()
    sent = [p for p, _ in prepare(probes, tally)]
    assert sent == [probes[0], probes[2], probes[3]] and tally.duplicates == 1


def test_probes_that_bring_the_board_down_end_the_task_in_one_line_not_as_a_bug():
    """A case probe that kills the board every time it runs (the fake guest goes silent) is
    quarantined; evolution's case run then stops with an error the CLI reports as a
    failure of the board, one line saying what to do, not as a bug of ours."""
    from cli.errors import FAILURE, judge
    from evolution.registry import ISAS
    from evolution.validate import cases, run_on_link
    from probes.campaign import ProbesBroughtBoardDown

    isa = ISAS["x86_64"]
    batch = cases(isa, isa.forms[0], 6, seed=1)
    link = Loopback(FakeGuest(X86_64, killers=frozenset({batch[3].probe.content_hash})))
    with pytest.raises(ProbesBroughtBoardDown) as raised:
        run_on_link(link, batch)
    verdict = judge(raised.value)
    assert verdict.status == FAILURE and len(verdict.line.splitlines()) == 1
    assert "1 case probe(s) brought the board down" in verdict.line
    assert "bug" not in verdict.line and "--accel tcg" in verdict.line
