"""A board's performance history: the fitted line of seconds over batch sizes, and, where
runs' CPU is known, CPU-seconds at the board's recent share of a CPU.  The truth: runs
made up from a known cost (1 us of CPU per vector, 10 ms outside each run) and a known
share of a CPU, as a board on a loaded host sees them."""

from __future__ import annotations

import pytest

from motherboard.history import History

CPU_PER_VECTOR = 1e-6
OUTSIDE = 0.010
SIZES = (20_000, 30_000, 40_000, 50_000)


def run(history: History, routine: str, size: int, share: float, cpu_known: bool = True):
    """One run of `size` vectors while the board had `share` of a CPU."""
    cpu = CPU_PER_VECTOR * size
    wall = cpu / share
    history.record(routine, "lowered", size, wall + OUTSIDE, cpu=cpu if cpu_known else None,
                   run=wall if cpu_known else None)


def test_a_board_calibrated_on_a_busy_host_predicts_its_runs_once_it_has_a_cpu():
    """Calibrated while it had half a CPU (every board calibrating at once), a routine it
    has not run since is predicted at the share its latest runs had, not at the share
    its samples were taken under."""
    history = History()
    for size in SIZES * 3:
        run(history, "sort3", size, share=0.5)
        run(history, "p23", size, share=0.5)
    assert history.predict("p23", "lowered", 30_000) == pytest.approx(0.06 + OUTSIDE)
    for size in SIZES * 2:  # the host quietens: sort3 runs with a whole CPU
        run(history, "sort3", size, share=1.0)
    predicted = history.predict("p23", "lowered", 30_000)
    assert predicted == pytest.approx(0.03 + OUTSIDE, rel=0.03)
    # the seconds' line still holds the busy host's times
    assert history.model("p23", "lowered").predict(30_000) == pytest.approx(0.06 + OUTSIDE)


def test_without_cpu_figures_the_prediction_is_the_line_of_seconds():
    """A simulated board (no host CPU to read) predicts from what its runs took."""
    history = History()
    for size in SIZES:
        run(history, "p01", size, share=0.5, cpu_known=False)
    model = history.model("p01", "lowered")
    assert model.line() == pytest.approx((OUTSIDE, 2 * CPU_PER_VECTOR))
    assert history.predict("p01", "lowered", 25_000) == pytest.approx(0.05 + OUTSIDE)
    assert history.share.count == 0


def test_a_run_hardly_on_a_cpu_does_not_make_predictions_endless():
    history = History()
    for size in SIZES:
        run(history, "p01", size, share=1e-4)
    assert history.share.value >= 0.05
    assert history.predict("p01", "lowered", 20_000) <= 20_000 * CPU_PER_VECTOR / 0.05 + 1


def test_a_boards_first_run_is_counted_but_not_fitted():
    """The board's first run warms what later runs find ready (measured: 2-23x the wall
    time of the routine's others): it counts towards calibration, not into the line."""
    history = History()
    history.record("p20", "lowered", 20_000, 20 * 0.02, cpu=2.5 * 0.02, run=20 * 0.02)
    model = history.model("p20", "lowered")
    assert model.count == 1 and model.seconds.n == 0 and history.share.count == 0
    assert model.predict(20_000) == pytest.approx(20 * 0.02)  # all it knows, until more
    for size in SIZES:
        run(history, "p20", size, share=0.5)
    assert model.count == 5
    assert history.predict("p20", "lowered", 20_000) == pytest.approx(0.04 + OUTSIDE)
    assert model.line() == pytest.approx((OUTSIDE, 2 * CPU_PER_VECTOR))


def test_a_board_that_runs_nothing_predicts_at_the_hosts_share_now():
    """Two boards calibrated side by side on a busy host (half a CPU each), told the
    host's share as it goes (the board host's, over every board's runs): one board
    then runs alone with a whole CPU while the other, winning nothing, runs nothing.
    Its own latest runs still say half a CPU -- it would go on bidding twice its time
    and never win -- but its ratio to the host (1) times the host's share now (1)
    says what a run would get."""
    busy, idle = History(), History()
    for size in SIZES * 3:
        for history in (busy, idle):
            history.host_share = 0.5
            run(history, "p23", size, share=0.5)
    assert idle.predict("p23", "lowered", 30_000) == pytest.approx(0.06 + OUTSIDE)
    for size in SIZES * 2:  # the host quietens, and only `busy` runs
        busy.host_share = idle.host_share = 1.0
        run(busy, "p23", size, share=1.0)
    assert idle.share.value == pytest.approx(0.5)  # its own: stale
    assert idle.predict("p23", "lowered", 30_000) == pytest.approx(0.03 + OUTSIDE)
    assert busy.predict("p23", "lowered", 30_000) == pytest.approx(0.03 + OUTSIDE, rel=0.03)
    idle.host_share = None  # a host that says nothing: its own latest runs, as before
    assert idle.predict("p23", "lowered", 30_000) == pytest.approx(0.06 + OUTSIDE)


def test_a_board_that_gets_less_than_the_host_keeps_its_ratio():
    """A board whose runs get 0.8 of what the host's do (its QEMU waits on I/O more)
    predicts at 0.8 of the host's share, whatever that is now."""
    history = History()
    history.host_share = 0.5
    for size in SIZES * 2:
        run(history, "p01", size, share=0.4)
    history.host_share = 1.0
    assert history.share_now() == pytest.approx(0.8)
    assert history.predict("p01", "lowered", 40_000) == pytest.approx(0.04 / 0.8 + OUTSIDE)


def test_in_a_market_the_board_that_wins_nothing_still_predicts_its_runs():
    """Two identical simulated boards on one core (runs 2 ms + 2 us a vector alone, no
    noise), reading their runs' CPU and told the host's share, as live ones are.  They
    calibrate side by side, each with half the core; then a light stream, and the board
    that wins the first task wins every one (it runs alone: a whole core).  The other
    never runs again: its own share stays half a core, which would have it bid twice its
    time; at the host's share it predicts what a run takes now, as the winner does (the
    run alone, plus the 2 ms the messages take there and back)."""
    from motherboard.market import MarketConfig
    from motherboard.routines import RoutineBook
    from motherboard.sim import BoardPlan, RunTimeLine, SimProfile, simulate
    from motherboard.workload import calibration_sizes, poisson_stream

    book = RoutineBook.library()
    p01 = book.resolve("hd:p01")
    line = RunTimeLine(0.002, 2e-6)
    work = poisson_stream(40, 5.0, ("hd:p01",), (1000, 10_000), seed=7)
    config = MarketConfig(calibration_samples=3, calibration_sizes=calibration_sizes(work))
    profiles = [SimProfile(name, default=line, noise=0.0) for name in ("a", "b")]
    run = simulate(work, [BoardPlan(p.spec, p) for p in profiles], config=config, seed=1,
                   warm_up=True, cores=1, host_cpu=True, latency=0.001)
    winners = {next(a.board for a in t.attempts if a.outcome == "accepted")
               for t in run.motherboard.workload_tasks()}
    assert len(winners) == 1
    (loser,) = {"a", "b"} - winners
    history = run.boards[loser].agent.history
    assert history.share.value == pytest.approx(0.5)  # its own: calibration's, stale
    truth = line.seconds(5_000) + 2 * 0.001
    for board in run.boards.values():
        assert board.agent.history.predict(p01, "lowered", 5_000) == pytest.approx(truth, rel=0.02)
        # the time outside a run, pooled by the host: the messages' way there and back
        assert board.agent.history.host_outside == pytest.approx(2 * 0.001)
    stale = history.model(p01, "lowered").cpu.predict(5_000) / history.share.value
    assert stale + history.outside.value > 1.8 * truth  # what it would have bid


def test_a_board_that_runs_nothing_predicts_the_hosts_time_outside_a_run_now():
    """Calibrated while every board was busy, its tasks spent 40 ms outside their runs
    (their messages queued behind the others'); winning nothing since, its own figure
    stays 40 ms.  Told the host's time now (2 ms, over the boards that run), it predicts
    with that: the same host carries every board's messages."""
    history = History()
    for size in SIZES * 3:
        cpu = CPU_PER_VECTOR * size
        learnt = history.record("p23", "lowered", size, cpu + 0.040, cpu=cpu, run=cpu)
    assert learnt == pytest.approx(0.040)  # what the host pools
    assert history.predict("p23", "lowered", 30_000) == pytest.approx(0.03 + 0.040)
    history.host_outside = 0.002
    assert history.predict("p23", "lowered", 30_000) == pytest.approx(0.03 + 0.002)
    assert history.outside.value == pytest.approx(0.040)  # its own, kept for a silent host


def test_the_warm_up_run_and_a_run_without_its_cpu_teach_the_host_nothing():
    history = History()
    assert history.record("p23", "lowered", 1_000, 0.05, cpu=0.01, run=0.02) is None  # warm-up
    assert history.record("p23", "lowered", 1_000, 0.05) is None  # the host said no CPU
    assert history.record("p23", "lowered", 1_000, 0.05, cpu=0.01, run=0.02) == \
        pytest.approx(0.03)
