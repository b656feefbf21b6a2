"""The board loop's open serving, on boards without QEMU (testing/socket_board.py: a
socket pair a FakeGuest answers): work put in while the loop runs comes back per work,
in order, as the interpreter computes it; a board with nothing to do waits; a board
that dies without restarts stays dead and says so at once while the others go on; a
board added while serving serves."""

from __future__ import annotations

import functools
import time
from dataclasses import replace

import pytest

from arch import RISCV64, X86_64
from contract.probe_abi import Outcome, watchdog_ns
from motherboard.routines import RoutineBook
from probes.board_loop import BoardJob, BoardLoop, Intake, Work, WorkDone
from probes.campaign_state import CampaignState, Output, Policy
from probes.routine import batch_form
from sem.vectors import generate
from testing import packed
from testing.fake_guest import FakeGuest
from testing.socket_board import SocketBoard

BOOK = RoutineBook.library()
POLICY = Policy(retransmit_after=0.05, dead_after=0.3)


def task(rid: str, arch, count: int, seed: int) -> tuple[Work, list]:
    """A Work running routine `rid` on `count` vectors (cut into batch probes, as the
    motherboard cuts a task), and what the interpreter says each vector gives."""
    r = BOOK.routine(rid)
    form = batch_form(r, arch)
    vectors = generate(r, count, seed=seed)
    records = packed.pack_inputs(r, vectors)
    probes = [form.packed_probe(c) for c in form.packed_chunks(records)]
    return (Work((rid, arch.name, count, seed), tuple((p, None) for p in probes)),
            [packed.evaluate(BOOK, rid, v) for v in vectors])


def answers(rid: str, arch, done: WorkDone) -> list:
    form = batch_form(BOOK.routine(rid), arch)
    out = []
    for result in done.results:
        obs = result.observation
        assert obs.outcome == Outcome.RETURNED and obs.status == 0
        count = int.from_bytes(result.probe.input[:8], "little")  # the probe's first word
        out += form.results(count, obs.output)
    return out


def test_work_put_in_while_serving_comes_back_per_work_in_order_and_right():
    p23, sort3 = BOOK.resolve("hd:p23"), BOOK.resolve("sort:sort3")
    x86, rv = SocketBoard(FakeGuest(X86_64)), SocketBoard(FakeGuest(RISCV64), seed=3,
                                                          drop_rate=2e-5, flip_rate=2e-5)
    intakes = [Intake(), Intake()]
    done: list[tuple[int, WorkDone]] = []
    truth = {}
    loop = BoardLoop(POLICY, keep_serving=True)
    for i, (link, intake) in enumerate(zip((x86, rv), intakes, strict=True)):
        loop.add(BoardJob(link, intake, on_work=lambda d, i=i: done.append((i, d)),
                          restart=False))
    plan = [(0.05, 0, p23, X86_64, 1100, 1), (0.05, 1, sort3, RISCV64, 600, 2),
            (0.3, 0, sort3, X86_64, 40, 3), (0.3, 1, p23, RISCV64, 1, 4),
            (0.3, 1, p23, RISCV64, 530, 5)]
    started = time.monotonic()
    idle_seen = []

    def hook(now: float) -> float | None:
        while plan and now - started >= plan[0][0]:
            _, board, rid, arch, count, seed = plan.pop(0)
            work, expected = task(rid, arch, count, seed)
            truth[work.key] = (rid, arch, expected)
            intakes[board].put(work)
        if not plan and not any(i.pending for i in intakes):
            idle_seen.append(now)
            if now - idle_seen[0] > 0.2:  # idle a while, not finished: then stop
                loop.stop()
        if now - started > 20:
            loop.stop()
        return started + plan[0][0] if plan else None

    try:
        outcomes = loop.run(hook)
    finally:
        loop.close()
        x86.close()
        rv.close()
    assert [o.died for o in outcomes] == [None, None] and not idle_seen[-1] - started > 20
    assert sorted(d.key for _, d in done) == sorted(truth)  # each work once
    for board, d in done:
        rid, arch, expected = truth[d.key]
        assert (arch is X86_64) == (board == 0) and d.error is None
        assert answers(rid, arch, d) == expected  # in order, as the interpreter says
    assert len(next(d for _, d in done if d.key[2] == 1100).results) == 3  # 511 a probe
    assert rv.damaged > 0  # the line really was lossy


def test_a_work_of_equal_probes_fills_every_place():
    """Repeated inputs make equal probes (one content hash): each place gets a result."""
    p01 = BOOK.resolve("hd:p01")
    r = BOOK.routine(p01)
    form = batch_form(r, X86_64)
    vectors = generate(r, 100, seed=9)
    probe_a, probe_b = (form.packed_probe(packed.pack_inputs(r, vectors)) for _ in range(2))
    assert probe_a == probe_b and probe_a is not probe_b
    intake, state = Intake(), CampaignState(Policy(batch_size=1))
    intake.put(Work("w", ((probe_a, None), (probe_b, None))))
    guest = FakeGuest(X86_64)
    guest.receive(b"".join(state.start(0.0).send))
    state.feed(guest.restart(), 0.0)  # its boot's bytes: the host's decoder in sync
    done = []
    for step in range(10):
        intake.draw(state)
        out = state.tick(step * 0.01)
        reply = b"".join(guest.receive(frame) for frame in out.send)
        out = state.feed(reply, step * 0.01 + 0.001)
        done += intake.answered(out)
    (work,) = done
    assert [r.probe for r in work.results] == [probe_a, probe_b]
    assert work.results[0].probe is probe_a and work.results[1].probe is probe_b
    assert intake.pending == ()


def test_a_quarantined_probe_fails_its_work_and_closed_intakes_refuse_work():
    p01 = BOOK.resolve("hd:p01")
    (work, _), (other, _) = task(p01, X86_64, 600, 1), task(p01, X86_64, 10, 2)
    intake = Intake()
    intake.put(work)
    intake.put(other)
    with pytest.raises(ValueError, match="already"):
        intake.put(work)
    culprit = work.items[1][0]
    (failed,) = intake.answered(Output(quarantined=((culprit, "QEMU exited while it ran"),)))
    assert failed.key == work.key and "QEMU exited" in failed.error and not failed.results
    assert intake.pending == (other.key,)
    intake.close()
    with pytest.raises(ValueError, match="closed"):
        intake.put(task(p01, X86_64, 5, 3)[0])


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_board_that_dies_without_restarts_stays_dead_and_says_so_while_the_other_goes_on(how):
    p23 = BOOK.resolve("hd:p23")
    boards = [SocketBoard(FakeGuest(X86_64)), SocketBoard(FakeGuest(X86_64))]
    intakes = [Intake(), Intake()]
    ended: dict[int, tuple[float, str]] = {}
    done: list[tuple[int, WorkDone]] = []
    # one run at a time: the next work's first probe is queued, not yet on the line, when
    # the answer to the first work comes (the guest double answers at once)
    loop = BoardLoop(replace(POLICY, window=1))
    killed_at: list[float] = []
    started = time.monotonic()

    def on_work(i: int, work: WorkDone) -> None:
        done.append((i, work))
        if i == 0 and not killed_at:  # board 0 answered its first work: it dies now, its
            (boards[0].kill if how == "killed" else boards[0].hang)()  # next work unsent
            killed_at.append(time.monotonic())

    jobs = [BoardJob(link, intake, on_work=functools.partial(on_work, i),
                     on_end=lambda why, i=i: ended.setdefault(i, (time.monotonic(), why)),
                     restart=False)
            for i, (link, intake) in enumerate(zip(boards, intakes, strict=True))]
    for job in jobs:
        loop.add(job)
    works = [task(p23, X86_64, size, seed)[0] for seed, size in enumerate((500, 1500) * 2)]
    for i, work in enumerate(works):
        intakes[i % 2].put(work)

    def hook(now: float) -> None:
        if len([i for i, _ in done if i == 1]) == 2:
            intakes[1].close()
        if now - started > 30:
            loop.stop()  # (a failure: the asserts below say which)

    try:
        outcomes = loop.run(hook)
    finally:
        loop.close()
        for b in boards:
            b.close()
    assert outcomes[0].died is not None and outcomes[1].died is None
    when, why = ended[0]
    assert why == outcomes[0].died
    # a closed line is seen at once; a hung guest after the silence that means a dead
    # board (dead_after, stretched to 3 x the longest probe watchdog + 0.2 s), plus slack
    # for the other board's probes run in Unicorn in this same thread
    watchdog = max(watchdog_ns(p.budget) for w in works for p, _ in w.items) / 1e9
    limit = 0.25 if how == "killed" else 2 * max(POLICY.dead_after, 3 * watchdog + 0.2)
    assert when - killed_at[0] < limit
    assert ("QEMU exited" in why) == (how == "killed")
    assert intakes[0].pending == (works[2].key,)  # the work it held: not done, not lost
    assert [d.key for i, d in done if i == 1] == [works[1].key, works[3].key]
    assert ended[1][1] == "done"
    assert not boards[0].closed or how == "hung" or boards[0].killed


def test_a_board_added_while_serving_serves():
    sort3 = BOOK.resolve("sort:sort3")
    first, second = SocketBoard(FakeGuest(X86_64)), SocketBoard(FakeGuest(RISCV64))
    intakes = [Intake(), Intake()]
    done: list[tuple[int, WorkDone]] = []
    loop = BoardLoop(POLICY, keep_serving=True)
    loop.add(BoardJob(first, intakes[0], on_work=lambda d: done.append((0, d))))
    work0, truth0 = task(sort3, X86_64, 300, 1)
    work1, truth1 = task(sort3, RISCV64, 300, 2)
    intakes[0].put(work0)
    added = []

    def hook(now: float) -> None:
        if done and not added:
            added.append(now)
            loop.add(BoardJob(second, intakes[1], on_work=lambda d: done.append((1, d))))
            intakes[1].put(work1)
        if len(done) == 2:
            loop.stop()

    try:
        loop.run(hook)
    finally:
        loop.close()
        first.close()
        second.close()
    assert [(i, d.key) for i, d in done] == [(0, work0.key), (1, work1.key)]
    assert answers(sort3, X86_64, done[0][1]) == truth0
    assert answers(sort3, RISCV64, done[1][1]) == truth1


class _KvmSocketBoard(SocketBoard):
    accelerator = "kvm"  # what a QemuLink of a KVM board says


def test_a_board_under_kvm_gets_the_kvm_floors_of_the_silence_timers():
    # nested KVM: a boot's first answer came 1.3 s after its probe (probes/campaign_state.py)
    tcg, kvm = SocketBoard(FakeGuest(X86_64)), _KvmSocketBoard(FakeGuest(X86_64))
    loop = BoardLoop(POLICY, keep_serving=True)
    try:
        for board in (tcg, kvm):
            loop.add(BoardJob(board, Intake(), on_work=lambda d: None))
        policies = [served.state.policy for served in loop.boards]
    finally:
        loop.close()
        tcg.close()
        kvm.close()
    assert policies[0] == replace(POLICY, batch_size=1)  # an Intake's work is not batched
    assert policies[1].dead_after == POLICY.kvm_dead_after > POLICY.dead_after
    assert policies[1].retransmit_after == POLICY.kvm_retransmit_after


def test_withdrawn_work_sends_nothing_more_and_its_late_results_complete_nothing():
    """A task taken back while it runs (the motherboard moved it, or gave up on it): its
    probes still waiting never reach the guest, the ones already out come back to nobody
    (also once the same task is put in again), and the other work is done as ever."""
    p01 = BOOK.resolve("hd:p01")
    (long, expected), (other, expected_other) = task(p01, X86_64, 5000, 1), task(p01, X86_64, 10, 2)
    assert len(long.items) == 10  # 511 vectors a probe: more than the window and its queue
    intake, state = Intake(), CampaignState(Policy(window=2, batch_size=1))
    intake.put(long)
    intake.put(other)
    guest = FakeGuest(X86_64)
    guest.receive(b"".join(state.start(0.0).send))
    state.feed(guest.restart(), 0.0)
    sent: list = []
    done: list[WorkDone] = []

    def deliver(out, now: float) -> None:
        """Frames to the guest and its replies fed back, as long as there are any."""
        while out.send:
            sent.extend(out.send)
            reply = b"".join(guest.receive(frame) for frame in out.send)
            out = state.feed(reply, now)
            done.extend(intake.answered(out))

    intake.draw(state)
    first = state.tick(0.0)
    assert len(first.send) == 2  # two of the long work's probes out, two more drawn
    replies = b"".join(guest.receive(frame) for frame in first.send)
    sent.extend(first.send)
    assert intake.withdraw(long.key) and not intake.withdraw(long.key)
    again, _ = task(p01, X86_64, 5000, 1)  # the same task, put in again: new probes
    intake.put(again)
    late = state.feed(replies, 0.001)
    assert sum(len(b) for b in late.batches) == 2 and intake.answered(late) == []
    deliver(late, 0.001)
    for k in range(1, 100):
        intake.draw(state)
        deliver(state.tick(k * 0.01), k * 0.01)
        if len(done) == 2:
            break
    assert [d.key for d in done] == [other.key, again.key]
    assert answers(p01, X86_64, done[0]) == expected_other
    assert answers(p01, X86_64, done[1]) == expected
    assert all(r.probe is p for r, (p, _) in zip(done[1].results, again.items, strict=True))
    assert intake.pending == ()
    # of the withdrawn work only the four drawn before went to the guest
    assert len(sent) == 4 + len(other.items) + len(again.items)
