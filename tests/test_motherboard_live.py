"""The motherboard with live QEMU boards (TCG): two boards onboard through discovery
(inventory, fingerprint, CPU features, the implementations those allow), calibrate,
bid and run a stream of routine tasks as batch probes; one is killed mid-run.  Every
accepted answer is checked afterwards against the interpreter, and the hand-written
POPCNT and Zbb implementations, offered only where discovery saw the feature, ran and
were right."""

from __future__ import annotations

import multiprocessing
import queue
import statistics
import subprocess
import threading
import time

import pytest

from motherboard.entries import TaskEntry
from motherboard.live import (
    CPU_ALIASES,
    PIPE_BYTES,
    BoardChoice,
    BoardSpecError,
    Plan,
    check_models,
    identities,
    parse_boards,
    roomy,
    run_live,
)
from motherboard.live_schedules import (
    EXECUTE_ROUNDS,
    PROFILE,
    PROFILE_ROUNDS,
    Reach,
    bid_implementations,
    execute,
    profile,
    rotations,
)
from motherboard.market import MarketConfig
from motherboard.messages import Award, Bid, BidRequest, Cancel, Exit, Result
from motherboard.record import audit, totals
from motherboard.workload import poisson_stream
from qemu.boards import board, cpu_models
from testing import packed


def test_the_profiles_rotations_place_every_task_on_every_board_once_in_order():
    tasks = [f"g{i}" for i in range(31)]
    boards = ["a", "b", "c", "d"]
    schedules = rotations(tasks, boards)
    assert len(schedules) == len(boards)
    for schedule in schedules:  # each is a schedule of the whole graph, in the given order
        assert sorted(t for ts in schedule.values() for t in ts) == sorted(tasks)
        assert all(ts == sorted(ts, key=tasks.index) for ts in schedule.values())
    for t in tasks:  # across them, every task on every board exactly once
        assert sorted(b for s in schedules for b, ts in s.items() if t in ts) == boards


class FakeBoards:
    """Boards behind `Reach` without QEMU: each bids at once, answers each award at once
    (10 ms later by the stamp), or, named in `dies`, leaves instead of its answer number
    n; `forwarded` is what reached the session."""

    def __init__(self, boards: list[str], dies: dict[str, int] | None = None) -> None:
        self.alive_boards = set(boards)
        self.dies = dies or {}
        self.answered = dict.fromkeys(boards, 0)
        self.arrived: queue.Queue = queue.Queue()
        self.forwarded: list[object] = []
        self.cancelled: list[Cancel] = []
        self.reach = Reach(self.tell, self.arrived, self.forward, self.alive_boards.__contains__,
                           time.monotonic, timeout=30.0)

    def tell(self, board: str, message: object) -> None:
        assert board in self.alive_boards, f"{message} sent to {board}, which left"
        now = time.monotonic()
        if isinstance(message, BidRequest):
            self.arrived.put((now, board, Bid(message.task, board, f"{board}-code", 0.1, 0.0,
                                              0.1, True)))
        elif isinstance(message, Cancel):
            self.cancelled.append(message)
        elif isinstance(message, Award):
            self.answered[board] += 1
            if self.answered[board] == self.dies.get(board):
                self.arrived.put((now, board, Exit(board, False, "killed")))
                # what the motherboard's own board says meanwhile is not the runs'
                self.arrived.put((now, "other", Result("g9", "other", "x", b"")))
            else:
                self.arrived.put((now + 0.01, board, Result(message.task, board, "x", b"")))

    def forward(self, sender: str, message: object, stamp: float) -> None:
        self.forwarded.append(message)
        if isinstance(message, Exit):  # the session's take: the motherboard marks it gone
            self.alive_boards.discard(message.board)


GRAPH = [TaskEntry("g0", "p01", 10, 0, 0), TaskEntry("g1", "p03", 10, 0, 1, ("g0",)),
         TaskEntry("g2", "p05", 10, 0, 2, ("g0",))]


def test_the_profile_goes_on_without_a_board_that_leaves_and_the_session_learns_it():
    """A board that leaves during the profile ends the run it was in at once; the round
    is run again over the boards still there, none is sent a task again, the table has no
    row for it, and its Exit -- with anything else not the profile's own -- reaches the
    session.  (These runs took every message off the loop's queue: an Exit was lost to
    the motherboard, and every later run with that board in it waited out its timeout.)"""
    for task in GRAPH:
        task.outputs = b""
    fake = FakeBoards(["a", "b", "c"], dies={"b": 3})
    started = time.monotonic()
    table, runs, chosen = profile(GRAPH, ["a", "b", "c"], fake.reach)
    assert time.monotonic() - started < 5.0  # no timeout waited out
    assert fake.forwarded == [Exit("b", False, "killed"), Result("g9", "other", "x", b"")]
    assert all(set(row) == {"a", "c"} for row in table.values())
    assert all(len(runs[t][b]) >= PROFILE_ROUNDS for t in table for b in ("a", "c"))
    assert all(table[t][b] == pytest.approx(0.01, abs=0.005) for t in table for b in ("a", "c"))
    assert set(chosen) == {(t.id, b) for t in GRAPH for b in "abc"}
    # a schedule with a board gone is not run at all
    assert execute("heft/0", {"a": ["g0", "g1"], "b": ["g2"]}, GRAPH, chosen,
                   fake.reach).makespan is None
    ran = execute("heft/1", {"a": ["g0", "g1"], "c": ["g2"]}, GRAPH, chosen, fake.reach)
    assert ran.makespan is not None and set(ran.seconds) == {"g0", "g1", "g2"}


def test_a_run_a_board_leaves_is_ended_and_what_the_others_hold_of_it_cancelled():
    """Two independent tasks on two boards; the first board leaves instead of answering,
    before the other's answer is read: the run ends at once, and the other board's task
    is cancelled, so that it does not run on into the next run."""
    tasks = [TaskEntry("t0", "p01", 10, 0, 0), TaskEntry("t1", "p03", 10, 0, 1)]
    fake = FakeBoards(["b", "a"], dies={"b": 1})
    chosen = {(t.id, b): "x" for t in tasks for b in "ab"}
    ran = execute("heft/0", {"b": ["t0"], "a": ["t1"]}, tasks, chosen, fake.reach)
    assert ran.makespan is None and fake.forwarded[0] == Exit("b", False, "killed")
    assert fake.cancelled == [Cancel("executed/heft/0/t1", "a")]


def test_the_profile_waits_for_every_boards_bid_but_not_for_a_board_gone():
    """The profile asks every board for its bid on every task (the implementation each
    would run); a board that leaves is not waited for, and what it bid before is dropped."""
    arrived: queue.Queue = queue.Queue()
    asked: list[tuple[str, str]] = []

    def bid(task: str, board: str) -> None:
        arrived.put((0.0, board, Bid(f"{PROFILE}{task}", board, f"{board}-code", 0.1, 0.0,
                                     0.1, True)))

    def tell(board: str, message: object) -> None:
        asked.append((board, message.task))
        if board == "a":
            bid(message.task.removeprefix(PROFILE), board)
        elif board == "gone" and message.task == f"{PROFILE}g0":
            bid("g0", board)  # one bid, then it leaves
            arrived.put((0.0, board, Exit(board, False, "killed")))
        elif board == "slow" and message.task == f"{PROFILE}g1":  # its bids come last
            bid("g0", board)
            bid("g1", board)

    forwarded: list[object] = []
    reach = Reach(tell, arrived, lambda sender, message, stamp: forwarded.append(message),
                  lambda board: True, time.monotonic, timeout=30.0)
    started = time.monotonic()
    chosen = bid_implementations(GRAPH[:2], ["a", "gone", "slow"], reach)
    assert time.monotonic() - started < 5.0  # not the timeout
    assert len(asked) == 6 and forwarded == [Exit("gone", False, "killed")]
    assert chosen == {("g0", "a"): "a-code", ("g1", "a"): "a-code",
                      ("g0", "slow"): "slow-code", ("g1", "slow"): "slow-code"}


@pytest.mark.parametrize("enlarged", [False, True])
def test_the_board_hosts_pipe_takes_a_graph_tasks_inputs_without_its_reader(enlarged):
    """A send down the board host's command pipe returns while the host reads nothing,
    for a message nearly PIPE_BYTES long (a 50,000-vector task's inputs are 800 KB); a
    pipe the kernel left at its 64 KiB default holds the sender until it is read."""
    receive, send = multiprocessing.Pipe(duplex=False)
    if enlarged:
        roomy(send)
    message = bytes(PIPE_BYTES - 4096)
    sender = threading.Thread(target=send.send_bytes, args=(message,), daemon=True)
    sender.start()
    sender.join(2.0)
    assert sender.is_alive() != enlarged
    assert receive.recv_bytes() == message  # and it arrives whole, either way
    sender.join(5.0)
    assert not sender.is_alive()
    send.close()
    receive.close()


def test_board_specs_follow_the_grammar():
    choices = parse_boards("q35:qemu64,q35:Haswell,virt:rv64-nozb,q35:qemu64")
    assert [c.board.cpu for c in choices] == ["qemu64", "Haswell",
                                              "rv64,zba=false,zbb=false,zbc=false,zbs=false",
                                              "qemu64"]
    assert all(c.board.accel == "tcg" for c in choices)
    assert identities(choices) == ["q35:qemu64#1", "q35:Haswell", "virt:rv64-nozb", "q35:qemu64#2"]
    (kvm,) = parse_boards("q35-kvm:Haswell")  # not `host`: which host model, QEMU says
    assert (kvm.board is None) == bool(kvm.skipped)  # (tests/test_boards.py)
    if kvm.board is not None:
        assert kvm.board.accel == "kvm" and kvm.board.cpu == "Haswell"
    with pytest.raises(BoardSpecError, match="unknown board"):
        parse_boards("z80:foo")


@pytest.mark.parametrize("spec, refused", [("q35:qemu64,q35:Haswel", "'Haswel'"),
                                           ("virt:rv64,virt:rv32", "'rv32'"),
                                           ("virt:Haswell", "qemu-system-riscv64")])
def test_a_cpu_model_qemu_does_not_list_is_refused_before_a_board_boots(spec, refused):
    with pytest.raises(BoardSpecError, match="has no CPU model") as error:
        check_models(parse_boards(spec))
    assert refused in str(error.value) and "-cpu help" in str(error.value)


@pytest.mark.qemu
def test_every_cpu_model_a_board_spec_can_name_is_one_qemu_lists():
    """Our profiles' and aliases' models (their properties aside) against QEMU's own list,
    and the list against QEMU: a model it lists starts, one it does not is refused."""
    for spec in ["q35:Haswell", "pc:qemu64", "virt:rv64"] + [f"virt:{a}" for a in CPU_ALIASES]:
        check_models(parse_boards(spec))
    binary = "qemu-system-x86_64"
    for model, listed in (("Haswell", True), ("EPYC-v2", True), ("nosuch", False)):
        assert (model in cpu_models(binary)) == listed
        # with no machine QEMU stops at once either way, having looked the model up or not
        started = subprocess.run([binary, "-machine", "none", "-cpu", model, "-display", "none",
                                  "-nodefaults", "-no-user-config", "-S", "-accel", "tcg"],
                                 capture_output=True, text=True, timeout=30)
        assert ("unable to find CPU model" in started.stderr) != listed, started.stderr


def test_a_kvm_board_is_skipped_where_kvm_is_slower_than_tcg(monkeypatch):
    """As `--accel auto` picks TCG there; the reason is the skip's."""
    from motherboard import live

    monkeypatch.setattr(live, "kvm_problem", lambda arch: "")
    monkeypatch.setattr(live, "kvm_slower_than_tcg", lambda arch: "this host is nested")
    (kvm, tcg) = parse_boards("q35-kvm:qemu64,q35:qemu64")
    assert kvm.board is None and kvm.skipped == ("KVM here runs a board slower than TCG: this"
                                                 " host is nested")
    assert tcg.board is not None and not tcg.skipped
    monkeypatch.setattr(live, "kvm_slower_than_tcg", lambda arch: "")
    (kvm,) = parse_boards("q35-kvm:qemu64")
    assert kvm.board is not None and kvm.board.accel == "kvm"


@pytest.mark.qemu
@pytest.mark.timeout(240)
def test_two_live_boards_onboard_bid_run_and_one_is_killed():
    work = poisson_stream(16, 8.0, ("hd:p23", "sort:sort3"), (200, 3000), seed=4)
    run = run_live(parse_boards("q35:Haswell,virt:rv64"), work,
                   config=MarketConfig(calibration_samples=2, calibration_sizes=(64, 512)),
                   plans=[Plan(1.0, "kill", "virt:rv64")], timeout=180, seed=1)
    mb = run.motherboard
    assert not run.failed and not run.timed_out
    haswell, rv64 = mb.boards["q35:Haswell"].report, mb.boards["virt:rv64"].report
    assert "popcnt" in haswell.features and "zbb" in rv64.features
    assert haswell.fingerprint != rv64.fingerprint and haswell.accelerator == "tcg"
    p23, sort3 = mb.book.resolve("hd:p23"), mb.book.resolve("sort:sort3")
    assert {o.implementation for o in haswell.offers if o.routine == p23} == {"lowered", "popcnt"}
    assert {o.implementation for o in rv64.offers if o.routine == sort3} == {"lowered", "zbb"}
    ran = {(a.board, a.bid.implementation) for t in mb.tasks.values() for a in t.attempts
           if a.outcome == "accepted"}
    assert ("q35:Haswell", "popcnt") in ran and ("virt:rv64", "zbb") in ran
    figures = totals(mb, set(), start=run.onboarded, kills=run.kills)
    assert figures["lost"] == 0 and figures["accepted_twice"] == 0
    assert audit(mb) == 0 and figures["wrong_accepted"] == 0
    assert mb.boards["virt:rv64"].exit_reason.startswith("killed")
    assert all(latency < 1.0 for latency in figures["reroute_latency_s"])


@pytest.mark.qemu
@pytest.mark.timeout(120)
def test_a_run_without_boards_ends_at_once_instead_of_at_its_timeout():
    """No board onboards (QEMU knows no such CPU), or the only one is killed: the run
    ends saying so, not after its 600-s timeout with nothing that could run the tasks."""
    work = poisson_stream(8, 8.0, ("hd:p01",), (50, 100), seed=2)
    config = MarketConfig(calibration_samples=2, calibration_sizes=(64, 512))
    # refused by check_models, so given as a choice: QEMU's own refusal at the start
    unknown = [BoardChoice("q35:nosuch", board("q35", cpu="nosuch", accel="tcg"))]
    none = run_live(unknown, work, config=config, timeout=600)
    assert none.stranded == "no board onboarded" and not none.timed_out
    assert "no CPU model 'nosuch'" in none.failed["q35:nosuch"]
    gone = run_live(parse_boards("q35:qemu64"), work, config=config, timeout=600,
                    plans=[Plan(0.0, "kill", "q35:qemu64")])
    assert gone.stranded == "every board left" and not gone.timed_out
    assert "q35:qemu64" in gone.kills and not gone.motherboard.done


@pytest.mark.qemu
@pytest.mark.timeout(300)
def test_a_live_graph_runs_twice_with_inputs_sent_on_arrival_and_is_compared_with_heft():
    """A layered graph on two live boards, twice: children are awarded before their
    parents answer and get their inputs in an Inputs message; every accepted child's
    inputs are its parents' interpreter answers composed in; the profile times every
    task of the first round on both boards, and the comparison has both rounds and the
    list schedulers' schedules run live."""
    from motherboard.compare import compare, knowledge
    from motherboard.workload import layered_graph

    work = layered_graph(3, 2, 2, ("hd:p01", "hd:p23"), (100, 600), seed=5)
    run = run_live(parse_boards("q35:qemu64,virt:rv64"), work, rounds=2, profile=True,
                   config=MarketConfig(calibration_samples=2, calibration_sizes=(64, 512)),
                   timeout=240, seed=3)
    mb = run.motherboard
    assert not run.failed and not run.timed_out and mb.done and audit(mb) == 0
    assert [len(r) for r in run.rounds] == [len(work.tasks)] * 2
    early = 0
    for child in (t for t in mb.workload_tasks() if t.after):
        assert tuple(packed.task_inputs(mb, child)) == packed.composed_inputs(mb, child)
        accepted = next(a for a in child.attempts if a.outcome == "accepted")
        early += accepted.sent > accepted.awarded  # awarded first, its inputs later
    assert early >= 1
    assert set(run.profile) == set(run.rounds[0])
    assert all(set(row) == {"q35:qemu64", "virt:rv64"} for row in run.profile.values())
    # every task's profile is PROFILE_ROUNDS runs on each board, the table their median
    assert all(len(runs) == PROFILE_ROUNDS and run.profile[t][b] == statistics.median(runs)
               for t, row in run.profile_runs.items() for b, runs in row.items())
    # the list schedules ran live after each of the motherboard's rounds, taking turns
    # with it: the second round began after the first turn
    assert len(run.between) == 2
    second = min(a.awarded for t in run.rounds[1] for a in mb.tasks[t].attempts)
    first_end = max(a.ended for t in run.rounds[0] for a in mb.tasks[t].attempts)
    assert first_end < run.between[0] < second
    assert all(len(r) == EXECUTE_ROUNDS for r in run.executed_runs.values())
    c = compare(mb, run.profile, run.onboarded, 3, run.rounds, run.executed)
    assert len(c.live_rounds) == 2 and c.heft > 0 and c.motherboard_live > 0
    # the assignment on the table is every round's, their median the figure
    assert len(c.table_rounds) == 2 and c.motherboard == statistics.median(c.table_rounds)
    for ids, on_table in zip(run.rounds, c.table_rounds, strict=True):
        known = knowledge(mb, ids, run.profile, run.profile_runs)
        if known is not None:  # the same replay, worked out from that round's own ids
            assert known.assignment * c.heft == pytest.approx(on_table)
    # each list scheduler's schedule ran live too, and the reference with every task on
    # one board, every task answered
    assert set(c.executed) == {"heft", "round_robin", "random", "one_board"}
    assert all(x is not None and x > 0 for x in c.executed.values())


def test_the_oracles_checkers_run_only_on_cpu_nothing_else_wants():
    """A checker process answers a check, and the kernel reports it under SCHED_IDLE."""
    import multiprocessing
    import os

    from motherboard.live import ORACLE, _checker_main
    from motherboard.oracle import FULL, CheckRequest
    from motherboard.routines import RoutineBook

    book = RoutineBook.library()
    rid = book.resolve("hd:p01")
    r = book.routine(rid)
    vectors = packed.own_inputs(book, rid, 8, 1)
    truth = packed.pack_outputs(r, [packed.evaluate(book, rid, v) for v in vectors])
    context = multiprocessing.get_context("fork")
    requests, outbox = context.Queue(), context.Queue()
    checker = context.Process(target=_checker_main, args=(requests, outbox), daemon=True)
    checker.start()
    try:
        requests.put(CheckRequest("t", "b", rid, FULL, None, packed.pack_inputs(r, vectors),
                                  truth))
        sender, (task, check) = outbox.get(timeout=30)
        assert (sender, task, check.ok, check.checked) == (ORACLE, "t", True, 8)
        assert os.sched_getscheduler(checker.pid) == os.SCHED_IDLE
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the test itself is not
    finally:
        requests.put(None)
        checker.join(10)


@pytest.mark.qemu
@pytest.mark.timeout(240)
def test_one_host_serves_a_board_joining_one_leaving_one_declining_and_a_liar():
    """Every board in the board host's one loop: a board that joins mid-run onboards,
    calibrates and wins tasks; a board that leaves says so and its tasks go elsewhere; a
    board that declines p23 is never awarded one; no liar's answer is accepted wrong
    (every accepted answer recomputed), no task lost or accepted twice."""
    work = poisson_stream(40, 5.0, ("hd:p23", "sort:sort3"), (200, 3000), seed=6)
    run = run_live(parse_boards("q35:qemu64,virt:rv64,virt:rv64"), work, liars=2,
                   config=MarketConfig(calibration_samples=2, calibration_sizes=(64, 512)),
                   plans=[Plan(0.5, "join", "q35:Haswell"), Plan(3.0, "leave", "q35:qemu64")],
                   declines={"q35:qemu64": ("hd:p23",)}, timeout=180, seed=2)
    mb = run.motherboard
    assert not run.failed and not run.timed_out and mb.done
    p23 = mb.book.resolve("hd:p23")
    assert set(run.liars.values()) == {"overstate", "wrong"}
    joined = "q35:Haswell@0.5s"
    assert joined in mb.boards and mb.boards[joined].joined > run.onboarded
    won = [next(a.board for a in t.attempts if a.outcome == "accepted")
           for t in mb.workload_tasks()]
    assert won.count(joined) >= 1
    assert mb.boards["q35:qemu64"].exit_reason == "left: leaving"
    assert not any(a.board == "q35:qemu64" and t.routine == p23
                   for t in mb.tasks.values() for a in t.attempts)
    figures = totals(mb, set(run.liars), start=run.onboarded, kills=run.kills)
    assert figures["lost"] == 0 and figures["accepted_twice"] == 0
    assert audit(mb) == 0 and figures["wrong_accepted"] == 0
