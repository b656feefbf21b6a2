"""Tasks and workloads: Poisson streams of independent tasks, and task graphs.

A task is a routine (by ID or name) and a batch of inputs; its result is the outputs.
A task's own inputs are `size` vectors drawn from its `seed` (sem/batch_vectors.py), so a
workload file stays small and anyone can regenerate the exact inputs.  In a task
graph an edge carries outputs to inputs: see `compose_inputs`.

The workload file (JSON, schema "metaos.workload/1") lists tasks, or asks for a
generated stream or graph, or both (generated tasks come after listed ones):

    {"schema": "metaos.workload/1",
     "name": "my-run",
     "tasks": [                                   # optional: explicit tasks
        {"id": "a", "routine": "hd:p23", "size": 1000, "seed": 1, "arrival": 0.0},
        {"id": "b", "routine": "sort:sort5", "size": 50, "seed": 2, "after": ["a"]}],
     "stream": {"count": 200, "rate": 20.0,       # optional: Poisson arrivals, tasks/s
                "mix": ["hd:p01", "...", "sort:sort5"],   # routines, drawn uniformly
                "sizes": [1, 10000],              # batch sizes, log-uniform between
                "seed": 7},
     "graph": {"layers": 5, "width": 4, "fan_in": 2,      # optional: a layered DAG
               "mix": ["hd:p23"], "sizes": [100, 2000], "seed": 7}}

`arrival` is in seconds from the start of the run; `after` names the tasks whose
outputs feed this one (they must be listed before it).  `sizes` run 1..100,000
(MAX_SIZE); the built-in streams draw theirs from 1..10,000 (STREAM_MAX_SIZE), and
`graph-long` has tasks of 20,000-50,000 vectors, so that on a shared host a graph
runs long enough (about 1-2 s on four TCG boards) for scheduling to outweigh the
host's stalls (a board's run 100-400 ms longer now and then, measured) and the
auctions (one at a time, 10-40 ms each under load).

FILE_SCHEMA is this format as a JSON Schema; a file is checked against it before
anything is made of it, so what is wrong is named by where it is ("tasks/0: 'id' is a
required property").
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from sem.interp import Evaluation
from sem.ir import Routine
from sem.vectors import Vector

SCHEMA = "metaos.workload/1"
MAX_SIZE = 100_000
STREAM_MAX_SIZE = 10_000

HD = tuple(f"hd:p{i:02d}" for i in range(1, 26))
SORTS = ("sort:sort3", "sort:sort4", "sort:sort5")
FULL_MIX = HD + SORTS
# the routines some board has hardware for (POPCNT on Haswell, Zbb on rv64: the feature
# code of motherboard/implementations.py)
FEATURE_MIX = ("hd:p22", "hd:p23", "hd:p16", "hd:p20") + SORTS


class WorkloadError(ValueError):
    """A workload that cannot be run as written."""


def _sizes(most: int) -> dict:
    size = {"type": "integer", "minimum": 1, "maximum": most}
    return {"type": "array", "prefixItems": [size, size], "minItems": 2, "maxItems": 2}


_ID = {"type": ["string", "integer"]}
_MIX = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_SEED = {"type": "integer", "minimum": 0}
# The file format above as a JSON Schema (draft 2020-12).  A key it does not name is
# refused: a misspelt "stream" or "fan_in" would otherwise be a default silently taken.
FILE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA},
        "name": {"type": "string"},
        "tasks": {"type": "array", "items": {
            "type": "object", "required": ["id", "routine", "size"],
            "additionalProperties": False,
            "properties": {"id": _ID, "routine": {"type": "string"},
                           "size": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
                           "seed": _SEED, "arrival": {"type": "number", "minimum": 0},
                           "after": {"type": "array", "items": _ID}}}},
        "stream": {"type": "object", "additionalProperties": False, "properties": {
            "count": {"type": "integer", "minimum": 1}, "rate": {"type": "number",
                                                               "exclusiveMinimum": 0},
            "mix": _MIX, "sizes": _sizes(MAX_SIZE), "seed": _SEED}},
        "graph": {"type": "object", "additionalProperties": False, "properties": {
            "layers": {"type": "integer", "minimum": 1}, "width": {"type": "integer",
                                                                 "minimum": 1},
            "fan_in": {"type": "integer", "minimum": 1}, "mix": _MIX,
            "sizes": _sizes(MAX_SIZE), "seed": _SEED}},
    },
}


def check_file(doc: object) -> None:
    """Refuse a document FILE_SCHEMA does not admit, naming the first place that is wrong
    (a schema of another name says only that, whatever else is in the file)."""
    if isinstance(doc, dict) and doc.get("schema") != SCHEMA:
        raise WorkloadError(f"a workload file has \"schema\": \"{SCHEMA}\", not"
                            f" {doc.get('schema')!r}")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(FILE_SCHEMA).iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the file"
        raise WorkloadError(f"{where}: {error.message} (the format: motherboard/workload.py)")


@dataclass(frozen=True)
class TaskSpec:
    id: str
    routine: str  # ID or name, resolved by the motherboard's RoutineBook
    size: int
    seed: int
    arrival: float = 0.0  # seconds from the start of the run
    after: tuple[str, ...] = ()  # tasks whose outputs feed this one's inputs

    def to_json(self) -> dict:
        out: dict = {"id": self.id, "routine": self.routine, "size": self.size, "seed": self.seed,
                     "arrival": round(self.arrival, 6)}
        if self.after:
            out["after"] = list(self.after)
        return out


@dataclass(frozen=True)
class Workload:
    name: str
    tasks: tuple[TaskSpec, ...]
    generators: dict = field(default_factory=dict, compare=False)  # as the file asked

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for t in self.tasks:
            if t.id in seen:
                raise WorkloadError(f"task id {t.id!r} appears twice; give every task its own id")
            if not 1 <= t.size <= MAX_SIZE:
                raise WorkloadError(f"task {t.id!r} has {t.size} inputs; a batch holds"
                                    f" 1..{MAX_SIZE}")
            missing = [a for a in t.after if a not in seen]
            if missing:
                raise WorkloadError(f"task {t.id!r} comes after {missing}, which are not listed"
                                    " before it (a graph lists parents first)")
            seen.add(t.id)

    @property
    def is_graph(self) -> bool:
        return any(t.after for t in self.tasks)

    def routines(self) -> list[str]:
        """The routines the workload names, in first-use order."""
        return list(dict.fromkeys(t.routine for t in self.tasks))

    def children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {t.id: [] for t in self.tasks}
        for t in self.tasks:
            for parent in t.after:
                out[parent].append(t.id)
        return out

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "name": self.name, "tasks": [t.to_json() for t in self.tasks]}

    @classmethod
    def from_json(cls, doc: dict) -> Workload:
        check_file(doc)
        # ids may be written as numbers; every other type is as FILE_SCHEMA checked it
        tasks = [TaskSpec(str(t["id"]), t["routine"], t["size"], t.get("seed", 0),
                          float(t.get("arrival", 0.0)), tuple(str(a) for a in t.get("after", ())))
                 for t in doc.get("tasks", ())]
        if "stream" in doc:
            tasks += poisson_stream(**_generator_args(doc["stream"]), first=len(tasks)).tasks
        if "graph" in doc:
            tasks += layered_graph(**_generator_args(doc["graph"]), first=len(tasks)).tasks
        if not tasks:
            raise WorkloadError("the workload has no tasks: list some, or ask for a stream or"
                                " a graph")
        generators = {k: doc[k] for k in ("stream", "graph") if k in doc}
        return cls(str(doc.get("name", "workload")), tuple(tasks), generators)


def _generator_args(spec: dict) -> dict:
    args = dict(spec)
    if "mix" in args:
        args["mix"] = tuple(args["mix"])
    if "sizes" in args:
        low, high = args["sizes"]
        if low > high:
            raise WorkloadError(f"\"sizes\": [{low}, {high}] runs from the smallest batch to"
                                " the largest; give the smaller first")
        args["sizes"] = (low, high)
    return args


def load(path: str | Path) -> Workload:
    """A workload file, or a built-in by name (BUILTINS)."""
    if str(path) in BUILTINS:
        return BUILTINS[str(path)]()
    p = Path(path)
    if not p.is_file():
        raise WorkloadError(f"{path}: no such workload file, and no built-in of that name"
                            f" (built-ins: {', '.join(BUILTINS)})")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as error:
        raise WorkloadError(f"{path}: not JSON ({error})") from None
    return Workload.from_json(doc)


# -- generators -------------------------------------------------------------------------------

def log_uniform(rng: random.Random, low: int, high: int) -> int:
    """A batch size between low and high, uniform in its logarithm (as many 1-10 as
    1,000-10,000)."""
    return max(low, min(high, int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))))


def poisson_stream(count: int = 200, rate: float = 20.0, mix: Sequence[str] = FULL_MIX,
                   sizes: tuple[int, int] = (1, STREAM_MAX_SIZE), seed: int = 0,
                   first: int = 0) -> Workload:
    """`count` independent tasks arriving as a Poisson process of `rate` tasks/s."""
    rng = random.Random(seed)
    now, tasks = 0.0, []
    for i in range(count):
        now += rng.expovariate(rate)
        tasks.append(TaskSpec(f"s{first + i}", rng.choice(list(mix)), log_uniform(rng, *sizes),
                              rng.randrange(2**31), now))
    return Workload(f"poisson-{count}", tuple(tasks))


def layered_graph(layers: int = 5, width: int = 4, fan_in: int = 2, mix: Sequence[str] = HD,
                  sizes: tuple[int, int] = (100, 2_000), seed: int = 0, first: int = 0) -> Workload:
    """A layered DAG: `layers` layers of up to `width` tasks (at least 1), each task
    after up to `fan_in` tasks of the layer above; every task is released at time 0."""
    rng = random.Random(seed)
    tasks: list[TaskSpec] = []
    above: list[str] = []
    n = first
    for _ in range(layers):
        here = []
        for _ in range(rng.randint(max(1, width // 2), width)):
            parents = tuple(sorted(rng.sample(above, min(len(above), rng.randint(1, fan_in)))))
            tasks.append(TaskSpec(f"g{n}", rng.choice(list(mix)), log_uniform(rng, *sizes),
                                  rng.randrange(2**31), 0.0, parents))
            here.append(f"g{n}")
            n += 1
        above = here
    return Workload(f"graph-{layers}x{width}", tuple(tasks))


def long_graph(seed: int = 7) -> Workload:
    """The task graph bench B runs (and the built-in `graph-long`): 8 layers of 3-5 tasks
    over p01-p25, 20,000-50,000 vectors each (see the module's docstring for why).

    Nearly homogeneous on the four TCG boards of bench B (measured 2026-12-05): a task's
    time on the x86-64 boards is ~10% under its mean over the four and ~5-8% over it on
    the riscv64 ones, the same for every task within the tables' noise (Haswell's and
    Zb*'s code change nothing at these costs: a vector costs more in the transport than
    in the routine), and the host CPU a run burns is the same on both architectures
    (1.0-1.3 s of QEMU per million vectors on x86-64, 1.1-1.4 on riscv64).  With the
    boards sharing two cores, the graph's makespan hardly depends on its schedule: all
    of it on one board took 1.03-1.43x as long as HEFT's schedule on four (medians of
    3-5 runs, four runs), and round-robin's and random's on four were at times slower
    than one board (bench B runs that reference beside the list schedules)."""
    return layered_graph(8, 5, 2, HD, (20_000, 50_000), seed=seed)


def feature_graph(seed: int = 7) -> Workload:
    """Bench B's second graph (the built-in `graph-features`): `graph-long`'s shape over the
    routines some board has hardware for, on which the boards differ: 6.1-6.2 s for the
    whole graph's tasks on each x86-64 board, 6.7-7.1 on rv64 and 7.8-8.2 on rv64 without
    Zb* (sums of the table's medians, two bench-B runs of 2026-12-06), where `graph-long`
    is within ~15% on all four."""
    return layered_graph(8, 5, 2, FEATURE_MIX, (20_000, 50_000), seed=seed)


def heft_paper_graph(mix: Sequence[str] = HD, size: int = 1_000, seed: int = 0) -> Workload:
    """The shape of Topcuoglu et al.'s 10-task example DAG (Fig. 2), with routines."""
    rng = random.Random(seed)
    edges = {2: (1,), 3: (1,), 4: (1,), 5: (1,), 6: (1,), 7: (3,), 8: (2, 4, 6), 9: (2, 4, 5),
             10: (7, 8, 9)}
    tasks = [TaskSpec(f"n{i}", rng.choice(list(mix)), size, rng.randrange(2**31), 0.0,
                      tuple(f"n{p}" for p in edges.get(i, ()))) for i in range(1, 11)]
    return Workload("heft-paper-shape", tuple(tasks))


def calibration_sizes(workload: Workload, count: int = 4) -> tuple[int, ...]:
    """Batch sizes to calibrate boards at for this workload: `count` sizes spread evenly
    in their logarithm from its smallest batch to its largest.  A run's time is a fixed
    cost plus a cost per vector, and a line fitted to samples of 1-512 vectors, where
    the fixed cost and the host's noise are all there is, says next to nothing about
    one of 10,000 (measured: bids of 3-5 ms for runs of 20-50 ms); samples across the
    sizes the tasks have pin down the line where it is used."""
    low = min(t.size for t in workload.tasks)
    high = max(t.size for t in workload.tasks)
    if count < 2 or low == high:
        return (high,)
    step = math.log(high / low) / (count - 1)
    return tuple(dict.fromkeys(round(low * math.exp(step * k)) for k in range(count)))


BUILTINS = {
    "stream": lambda: poisson_stream(200, 20.0, FULL_MIX, (1, STREAM_MAX_SIZE), seed=1),
    "stream-small": lambda: poisson_stream(40, 50.0, ("hd:p01", "hd:p23", "sort:sort3"),
                                           (1, 200), seed=1),
    "graph": lambda: layered_graph(6, 5, 2, HD, (100, 4_000), seed=1),
    "graph-long": long_graph,
    "graph-features": feature_graph,
    "heft-paper": lambda: heft_paper_graph(HD, 2_000, seed=1),
}


# -- edges carry outputs to inputs --------------------------------------------------------------

def compose_inputs(routine: Routine, own: Sequence[Vector],
                   parents: Sequence[tuple[tuple[Vector, ...], tuple[Evaluation, ...]]]
                   ) -> tuple[Vector, ...]:
    """A graph task's inputs: its own vectors with the parents' outputs written in.

    Vector i takes, for its k-th scalar parameter, the result of parent k (cycling
    through the parents) at index i (cycling through that parent's outputs), cut to
    the parameter's width; a routine with memory takes the memory window of the
    first parent that produced one.  Parameters no parent fills keep the task's own
    values.  So the child's inputs exist only once its parents' outputs were accepted.
    """
    results = [[e.result for e in outs] for _, outs in parents]
    results = [r for r in results if r and r[0] is not None]
    windows = next(([e.memory for e in outs] for _, outs in parents
                    if outs and outs[0].memory is not None), None)
    scalars = [i for i, t in enumerate(routine.params) if t.name != "ptr"]
    out = []
    for i, v in enumerate(own):
        args = list(v.args)
        for k, position in enumerate(scalars):
            if results:
                source = results[k % len(results)]
                mask = (1 << routine.params[position].width) - 1
                args[position] = source[i % len(source)] & mask
        memory = v.memory
        if routine.uses_memory and windows:
            memory = windows[i % len(windows)]
        out.append(Vector(tuple(args), memory))
    return tuple(out)
