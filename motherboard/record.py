"""A run's record: the figures the issue's goals are judged by, and the JSON of a run
(schema metaos.motherboard/1).

    {"schema": "metaos.motherboard/1",
     "workload": {"name", "tasks": [workload file tasks]},
     "boards": [{"board", "spec", "arch", "fingerprint", "accelerator", "features",
                 "energy": {"joules_per_cycle", "kind", "detail"}, "liar": kind|null,
                 "joined", "left", "exit", "won", "accepted", "wrong_caught", "vectors",
                 "busy_s", "credits", "trust", "weight", "evidence",
                 "history": {routine name: {implementation: model}}}],
     "tasks": [{"id", "routine", "size", "arrival", "after", "board", "accepted_at",
                "verified", "attempts": [{"board", "implementation", "bid_s", "bid_price",
                "bid_joules", "calibrated", "payment", "awarded", "measured_s", "joules",
                "outcome", "check", "checked", "wrong"}]}],
     "trust": [[t, board, trust, evidence], ...],      # per board over time
     "events": [[t, kind, board, detail], ...],
     "measured": {task: {board: seconds}},             # per-task per-board (graph runs):
                                                       # the median of
     "measured_runs": {task: {board: [seconds]}},      # every profiling run
     "comparison": {...},                              # makespans side by side (graph runs)
     "totals": {"makespan", "wrong_accepted", "lost", "accepted_twice", "tasks_to_liars",
                "tasks_to_liars_last", "last", "wrong_caught", "reroutes",
                "reroute_latency_s", "throughput_tasks_s", "vectors"}}

Times are seconds from the start of the run.  `wrong_accepted` comes from an audit
after the run: every accepted answer (not just those the oracle checked) recomputed
with the interpreter.
"""

from __future__ import annotations

from collections.abc import Iterable

from motherboard.entries import TaskEntry, TaskState
from motherboard.market import Motherboard
from motherboard.oracle import FULL

SCHEMA = "metaos.motherboard/1"


def audit(mb: Motherboard) -> int:
    """Accepted workload tasks whose answers the interpreter disagrees with (inside the
    routine's domain: outside it every answer is right)."""
    return sum(1 for task in mb.workload_tasks() if task.state == TaskState.ACCEPTED
               and mb.book.disagreements(task.routine, task.packed, task.outputs or b"",
                                         range(task.size)))


def to_liars(tasks: Iterable[TaskEntry], liars: set[str]) -> int:
    """Tasks awarded, at least once, to a liar's identity."""
    return sum(any(a.board in liars for a in t.attempts) for t in tasks)


def totals(mb: Motherboard, liars: set[str], last: int = 100, start: float = 0.0,
           kills: dict[str, float] | None = None) -> dict:
    tasks = mb.workload_tasks()
    accepted = [t for t in tasks if t.state == TaskState.ACCEPTED]
    end = max((t.accepted_at for t in accepted), default=start)
    latencies = []
    for t in tasks:
        for lost_at, again in t.reroutes:
            if again is not None:
                killed = min((k for k in (kills or {}).values() if k <= lost_at), default=lost_at)
                latencies.append(again - killed)
    return {
        "makespan": end - start,
        "wrong_accepted": audit(mb),
        "lost": len(tasks) - len(accepted),
        "accepted_twice": sum(sum(a.outcome == "accepted" for a in t.attempts) > 1 for t in tasks),
        "tasks_to_liars": to_liars(tasks, liars),
        "tasks_to_liars_last": to_liars(tasks[-last:], liars),
        "last": min(last, len(tasks)),
        "wrong_caught": sum(a.outcome == "wrong" for t in mb.tasks.values() for a in t.attempts),
        "reroutes": sum(len(t.reroutes) for t in tasks),
        # tasks moved to a board with nothing to run before their own board began them
        "moved": sum(a.outcome == "moved" for t in tasks for a in t.attempts),
        "reroute_latency_s": latencies,
        "throughput_tasks_s": len(accepted) / (end - start) if end > start else 0.0,
        "vectors": sum(t.size for t in accepted),
    }


def board_json(mb: Motherboard, liar_kinds: dict[str, str]) -> list[dict]:
    out = []
    for board, entry in mb.boards.items():
        r = entry.report
        trust = mb.trust.of(board)
        history = {}
        for (rid, impl), model in mb.records.measured[board].models.items():
            history.setdefault(mb.book.name(rid), {})[impl] = model.to_json()
        out.append({
            "board": board, "spec": r.spec, "arch": r.arch, "fingerprint": r.fingerprint,
            "accelerator": r.accelerator, "features": list(r.features), "cpu": r.cpu,
            "energy": {"joules_per_cycle": r.energy.joules_per_cycle, "kind": r.energy.kind,
                       "detail": r.energy.detail},
            "liar": liar_kinds.get(board), "joined": entry.joined, "left": entry.left_at,
            "exit": entry.exit_reason, "won": entry.won, "accepted": entry.accepted,
            "wrong_caught": trust.wrong, "vectors": entry.vectors, "busy_s": entry.busy,
            "credits": entry.credits, "trust": trust.expected, "weight": trust.weight,
            "evidence": trust.evidence, "history": history,
        })
    return out


def task_json(mb: Motherboard, task: TaskEntry) -> dict:
    accepted = next((a for a in task.attempts if a.outcome == "accepted"), None)
    return {
        "id": task.id, "routine": mb.book.name(task.routine), "size": task.size,
        "arrival": task.arrived, "after": list(task.after),
        "board": accepted.board if accepted else None, "accepted_at": task.accepted_at,
        "verified": bool(accepted and accepted.check and accepted.check.kind == FULL),
        "attempts": [{
            "board": a.board, "implementation": a.bid.implementation, "bid_s": a.bid.seconds,
            "bid_price": a.bid.price, "bid_joules": a.bid.joules, "calibrated": a.bid.calibrated,
            "payment": a.payment, "awarded": a.awarded, "measured_s": a.measured,
            "joules": a.joules, "outcome": a.outcome, "late": a.late,
            "check": a.check.kind if a.check else None,
            "checked": a.check.checked if a.check else 0,
            "wrong": a.check.wrong if a.check else 0,
        } for a in task.attempts],
    }


def to_json(mb: Motherboard, workload_json: dict, liar_kinds: dict[str, str], totals_: dict,
            extra: dict | None = None) -> dict:
    doc = {
        "schema": SCHEMA,
        "workload": workload_json,
        "boards": board_json(mb, liar_kinds),
        "tasks": [task_json(mb, t) for t in mb.workload_tasks()],
        "trust": [[t, b, trust, evidence] for t, b, trust, evidence in mb.trust.series],
        "events": [list(e) for e in mb.events],
        "totals": totals_,
    }
    doc.update(extra or {})
    return doc
