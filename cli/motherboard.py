"""What `./run motherboard` does: live boards onboard, bid, earn trust and leave, shown
as a live table; the run's record as JSON (metaos.motherboard/1) and as a plot.

Returns a process exit status and prints errors as sentences, never tracebacks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from cli import terminal
from cli.errors import Failure, Interrupted, UsageError
from motherboard.compare import compare
from motherboard.entries import BoardStatus, TaskState
from motherboard.live import (
    BoardSpecError,
    LiveRun,
    Plan,
    check_models,
    named_declines,
    parse_boards,
    run_live,
)
from motherboard.market import MarketConfig, Motherboard
from motherboard.record import to_json, totals
from motherboard.routines import RoutineBook, UnknownRoutineName
from motherboard.workload import WorkloadError, calibration_sizes, load
from sem.store import SemStore
from stores.db import connect


class MotherboardArgumentError(ValueError):
    """A command-line value that cannot be used as given."""


def board_table(mb: Motherboard, liars: dict[str, str], now: float, start: float,
                title: str = "") -> Table:
    """Boards, trust, evidence, tasks won, throughput, wrong answers caught."""
    table = Table(title=title or None, box=box.SIMPLE_HEAVY)
    for column in ("board", "cpu / accel", "state", "trust", "weight", "evidence", "won",
                   "accepted", "vectors/s", "wrong caught", "credits"):
        table.add_column(column, justify="left" if column in ("board", "cpu / accel", "state")
                         else "right")
    for board, entry in mb.boards.items():
        trust = mb.trust.of(board)
        if entry.status == BoardStatus.LEFT:
            state = entry.exit_reason.split(":")[0]
        else:
            state = "calibrating" if mb.calibrating(board) else "bidding"
        name = board + (f" [red](liar: {liars[board]})[/red]" if board in liars else "")
        rate = entry.vectors / entry.busy if entry.busy else 0.0
        table.add_row(name, f"{entry.report.cpu[:28]} / {entry.report.accelerator}", state,
                      f"{trust.expected:.3f}", f"{trust.weight:.3f}", f"{trust.evidence:.0f}",
                      str(entry.won), str(entry.accepted), f"{rate:,.0f}", str(trust.wrong),
                      f"{entry.credits:.3f}")
    tasks = mb.workload_tasks()
    done = sum(t.state == TaskState.ACCEPTED for t in tasks)
    table.caption = (f"{now - start:6.2f} s   tasks accepted {done}/{len(tasks)}"
                     f"   wrong answers caught {sum(mb.trust.of(b).wrong for b in mb.boards)}")
    return table


def _plans(kill: Sequence[str], leave: Sequence[str], join: Sequence[str]) -> list[Plan]:
    out = []
    for action, items in (("kill", kill), ("leave", leave), ("join", join)):
        for item in items:
            what, sep, when = item.rpartition("@")
            try:
                at = float(when)
            except ValueError:
                at = -1.0
            if not sep or not what or at < 0:
                raise MotherboardArgumentError(f"--{action} {item!r}: give BOARD@SECONDS, e.g."
                                               f" q35:qemu64@5")
            if action == "join":  # a board to start later is refused now, not then
                try:
                    check_models(parse_boards(what))
                except BoardSpecError as error:
                    raise MotherboardArgumentError(f"--join {item!r}: {error}") from None
            out.append(Plan(at, action, what))
    return out


def _declines(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        board, sep, routines = item.rpartition("=")
        if not sep or not board or not routines:
            raise MotherboardArgumentError(f"--decline {item!r}: give BOARD=ROUTINE[+ROUTINE],"
                                           " e.g. virt:rv64=sort5+p23")
        out[board] = out.get(board, ()) + tuple(routines.split("+"))
    return out


def plot(record: dict, path: str) -> None:
    """Trust over time per board, and the tasks each board ran (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    liars = {b["board"] for b in record["boards"] if b["liar"]}
    fig, (trust_ax, tasks_ax) = plt.subplots(1, 2, figsize=(13, 5))
    series: dict[str, list[tuple[float, float]]] = {}
    for t, board, trust, _ in record["trust"]:
        series.setdefault(board, []).append((t, trust))
    for board, points in series.items():
        xs, ys = zip(*points, strict=True)
        trust_ax.step(xs, ys, where="post", label=board, linestyle="--" if board in liars else "-")
    trust_ax.set(title="trust (this motherboard's view; dashed: liars)", xlabel="seconds",
                 ylabel="expected trust", ylim=(0, 1.02))
    trust_ax.legend(fontsize=7)
    boards = [b["board"] for b in record["boards"]]
    accepted = [b["accepted"] for b in record["boards"]]
    wrong = [b["wrong_caught"] for b in record["boards"]]
    colors = ["tab:red" if b in liars else "tab:blue" for b in boards]
    tasks_ax.bar(boards, accepted, color=colors)
    tasks_ax.bar(boards, wrong, bottom=accepted, color="black")
    top = max([a + w for a, w in zip(accepted, wrong, strict=True)], default=0)
    # headroom above the tallest bar for the legend, which would otherwise cover it
    tasks_ax.set(title="tasks per board (red: liars)", ylabel="tasks", ylim=(0, 1.25 * top + 1))
    tasks_ax.tick_params(axis="x", rotation=45, labelsize=7)
    # the legend's own patches: drawn from the bars, its colour would be the first
    # board's, a liar's red over every honest board's blue
    tasks_ax.legend(handles=[Patch(color="tab:blue", label="tasks accepted"),
                             Patch(color="tab:red", label="tasks accepted (liar)"),
                             Patch(color="black", label="wrong answers caught")],
                    fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def motherboard_command(boards: str, workload: str = "stream", *, liars: int = 0,
                        kill: Sequence[str] = (), leave: Sequence[str] = (),
                        join: Sequence[str] = (), decline: Sequence[str] = (),
                        json_path: str | None = None, plot_path: str | None = None,
                        calibration: int = 10, seed: int = 0, timeout: float = 600.0,
                        db: str | None = None, console: Console | None = None) -> int:
    console = console or terminal.console()
    try:
        choices = parse_boards(boards)
        check_models(choices)
        work = load(workload)
        plans = _plans(kill, leave, join)
        declines = _declines(decline)
        # every name the run will look up, looked up now, before anything is said or booted
        book = RoutineBook.library()
        for routine in work.routines():
            book.resolve(routine)
        named_declines([c for c in choices if c.board is not None], plans, declines, book)
    except (BoardSpecError, WorkloadError, MotherboardArgumentError,
            UnknownRoutineName) as error:
        raise UsageError(str(error)) from None
    for c in choices:
        if c.board is None:
            console.print(f"[yellow]skipped[/yellow] {c.spec}: {c.skipped}")
    usable = sum(c.board is not None for c in choices)
    if liars > usable:
        can = f"{usable} board can" if usable == 1 else f"{usable} boards can"
        raise UsageError(f"--liars {liars}: only {can} start; give fewer liars")
    # calibrated at the workload's own sizes, streams as graphs (workload.calibration_sizes)
    config = MarketConfig(calibration_samples=calibration, seed=seed,
                          calibration_sizes=calibration_sizes(work))
    console.print(f"booting {usable} board{'s' if usable != 1 else ''}; workload {work.name}:"
                  f" {len(work.tasks)} tasks{' (a task graph)' if work.is_graph else ''}")
    # No refresh thread: the boards are forked processes, and a fork must not copy a
    # thread holding a lock; the loop refreshes the table itself.
    with terminal.TaskLive(console=console, auto_refresh=False, transient=False) as live:
        def update(run: LiveRun, now: float) -> None:
            live.update(board_table(run.motherboard, run.liars, now, run.onboarded),
                        refresh=True)

        try:
            run = run_live(choices, work, config=config, liars=liars, plans=plans,
                           declines=declines, timeout=timeout, seed=seed,
                           profile=work.is_graph, on_update=update,
                           store=SemStore(connect(db)))
        except (BoardSpecError, UnknownRoutineName) as error:
            raise UsageError(str(error)) from None
    mb = run.motherboard
    if run.interrupted and not mb.boards:
        raise Interrupted("interrupted before any board onboarded: nothing was done")
    if not mb.boards:  # nothing was done: nothing to write
        raise Failure("no board onboarded: " + ("; ".join(
            f"{name}: {why}" for name, why in run.failed.items()) or
            f"none had reported within --timeout {timeout:g} s; give it longer"))
    for name, why in run.failed.items():
        console.print(f"[red]board {name} did not onboard:[/red] {why}")
    accepted = sum(t.state == TaskState.ACCEPTED for t in mb.workload_tasks())
    # the audit recomputes every answer with the interpreter: seconds for a large graph
    with console.status(f"auditing the {accepted} accepted answers with the interpreter"):
        figures = totals(mb, set(run.liars), start=run.onboarded, kills=run.kills)
    extra: dict = {}
    if work.is_graph and run.profile and not run.interrupted:
        try:
            comparison = compare(mb, run.profile, run.onboarded, seed, executed=run.executed)
            extra = {"measured": run.profile, "measured_runs": run.profile_runs,
                     "comparison": comparison.to_json()}
            live = ", ".join(f"{name} {x:.3f} s" for name, x in comparison.executed.items()
                             if x is not None)
            console.print(f"makespan: motherboard in the run (first award to last result)"
                          f" {comparison.motherboard_live:.3f} s; the list schedules run live"
                          f" after it: {live or 'none (a board left)'}; on the measured table"
                          f" HEFT {comparison.heft:.3f} s, the motherboard's assignment"
                          f" {comparison.motherboard:.3f} s ({comparison.ratio_to_heft:.2f}x),"
                          f" round-robin {comparison.round_robin:.3f} s,"
                          f" random {comparison.random:.3f} s")
        except ValueError as error:
            console.print(f"[yellow]no comparison with HEFT:[/yellow] {error}")
    # an interrupted run's tasks not accepted were cut off by the user, not lost by it
    unaccepted = "outstanding" if run.interrupted else "lost"
    console.print(f"makespan {figures['makespan']:.2f} s, wrong answers accepted"
                  f" {figures['wrong_accepted']}, {unaccepted} {figures['lost']}, accepted twice"
                  f" {figures['accepted_twice']}, tasks to liars {figures['tasks_to_liars']}"
                  f" (last {figures['last']}: {figures['tasks_to_liars_last']}), reroutes"
                  f" {figures['reroutes']}" + (" (latency after the kill: "
                  + ", ".join(f"{x:.3f} s" for x in figures["reroute_latency_s"]) + ")"
                  if figures["reroute_latency_s"] else "")
                  + f", moved to an idle board {figures['moved']}")
    if run.timed_out:
        console.print(f"[red]timed out[/red] after {timeout:g} s with tasks outstanding")
    if run.interrupted:
        extra["interrupted"] = True
    record = to_json(mb, work.to_json(), run.liars, figures, extra)
    if db is not None or mb.payments:
        from motherboard.credits import pay
        from stores.ledger import Ledger

        pay(Ledger.open(db), mb.payments)
        console.print(f"{len(mb.payments)} payments ({sum(p.credits for p in mb.payments):.3f}"
                      " credits) written to the ledger, per board fingerprint")
    if json_path:
        Path(json_path).write_text(json.dumps(record, indent=1))
        console.print(f"record written to {json_path} (schema metaos.motherboard/1)")
    if plot_path:
        plot(record, plot_path)
        console.print(f"plot written to {plot_path}")
    if run.interrupted:
        kept = ["the accepted tasks' payments are in the ledger"] if mb.payments else []
        kept += [f"the record in {json_path}"] if json_path else []
        submitted = len(mb.workload_tasks())
        raise Interrupted((f"the run was stopped with {figures['lost']} of the {submitted} tasks"
                           " submitted so far not accepted" if submitted else
                           "the run was stopped before its first task")
                          + (f"; {' and '.join(kept)}" if kept else ""))
    if run.stranded:
        raise Failure(f"{run.stranded} with tasks outstanding; start boards that stay"
                      " (--boards), or --join one")
    if run.timed_out or figures["wrong_accepted"] or figures["lost"]:
        raise Failure(f"the run ended with {figures['lost']} tasks lost,"
                      f" {figures['wrong_accepted']} wrong answers accepted"
                      f"{' and tasks outstanding at the timeout' if run.timed_out else ''};"
                      " see the table above")
    return 0
