"""Evolve a routine for a target: start from correct programs we have, search for
shorter ones, and keep only what is proven.

    result = evolve(hackers_delight.p01, TARGETS["x86-64 qemu64"], budget_s=60, seed=1)
    result.text, result.code, result.instructions, result.proof, result.history

The loop: the correct starts (starts.py) are proven and the shortest is the best;
a local search (one instruction deleted, one replaced or two registers exchanged)
runs from every new best; STOKE chains run batches of iterations, restarts
alternating between optimising from the best and synthesising from nothing in a
few slots.  Every correct candidate a batch met that is better than the best so
far is proven by Z3 at full width (proof.py).  A refuted one's counterexample joins
the test vectors (so the chain stops meeting it); a proven one runs in Unicorn
against the interpreter (check.py) and becomes the best.  Only proven programs are
ever returned: if the search is interrupted (KeyboardInterrupt), the best proven
result so far is.  Beside the best, an Evolved keeps the proven programs met on the way
(starts, earlier bests, alternatives of less latency: Kept), for the guest to time.
Searches are deterministic for a seed and a number of batches; a time budget
only decides how many batches run.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from evolution.check import unicorn_cannot, unicorn_check, unicorn_verdict
from evolution.compaction import Sizes, smaller
from evolution.copies import recomputed, result_coalesced, result_copy_hoisted, rewrites, right
from evolution.costmodel import PerformanceModel, fallback
from evolution.enumeration import Enumerator, masks, peephole, shortest
from evolution.isa import Isa
from evolution.program import MachineProgram, assemble, encode, text
from evolution.proof import Proof, prove
from evolution.registry import isa_named
from evolution.search import Chain, SearchSpace, neighbours, space
from evolution.starts import Start, starts
from evolution.targets import MachineTarget
from evolution.testset import MachineVector, TestSet, machine_vectors
from sem.ir import Routine
from toolchain.program import AssemblyError

TRAINING_VECTORS = 32
CHECK_VECTORS = 1000  # Unicorn vectors for a result
ITERATIONS = 100_000  # per batch
STALE_BATCHES = 8  # batches without progress before the chain restarts from the best
LOCAL_SEARCH_LIMIT = 1_000_000  # candidates per local search (a second or two)
# a candidate Z3 cannot settle in this time is set aside.  Sorts take longer: Z3 proves two
# different sort5 networks equal in 20 s to 5 min (riscv's branch-free swaps the slowest),
# and the starts, which a search cannot do without, get the longest.
PROOF_TIMEOUT_MS = 10_000
MEMORY_PROOF_TIMEOUT_MS = 120_000
START_PROOF_TIMEOUT_MS = 600_000
# Enumeration (enumeration.py), before and beside the chains: whole programs of up to
# ENUMERATE_LENGTH instructions over a space with one scratch register, and windows of a
# new best replaced by shorter sequences; each call stops after its limit of instances
# executed (a few seconds) or at the budget's end.
ENUMERATE_LENGTH = 3
SHORT_LENGTH = 2  # enumerated first, before the local search
ENUMERATE_LIMIT = 8_000_000
ENUMERATE_SHARE = 0.4  # of a time budget, at most, for whole-program enumeration
PEEPHOLE_WINDOW = 4
PEEPHOLE_REPLACEMENT = 2
PEEPHOLE_LIMIT = 20_000_000
# of a time budget, at most, for one peephole of two-instruction windows where STOKE's
# chains follow (a search of one batch gives it the rest: _peephole)
PEEPHOLE_SHARE = 0.3
ENUMERATE_ROUNDS = 8  # counterexamples a whole-program enumeration may learn from


KEEP = 8  # proven programs an Evolved keeps, the best among them (the guest chooses)
ALTERNATIVES = 3  # alternatives of less modelled latency, at most, proven beside the best
ALTERNATIVE_LIMIT = 4_000_000  # instances executed looking for them (a second or two)


@dataclass(frozen=True)
class Kept:
    """A proven program the search met: a best of its time, a start, or an alternative
    proven beside the best (as many instructions or one more, of less latency in the
    performance model, or the same instructions in critical-path order).
    Only what `consider` proved gets here, so whatever the guest chooses among them is
    proven."""

    program: MachineProgram
    proof: Proof
    origin: str  # the step that found it (Evolved.found_by's words, or "alternative")

    @property
    def instructions(self) -> int:
        return self.program.instructions


@dataclass
class Evolved:
    routine: str
    target: MachineTarget
    program: MachineProgram
    text: str
    code: bytes
    instructions: int  # every instruction, the return included
    proof: Proof
    start: str  # the correct program the search began from
    unicorn: str  # the machine check's verdict
    counterexamples: list[MachineVector] = field(default_factory=list)
    vectors: list[MachineVector] = field(default_factory=list)
    history: list[tuple[float, float, int]] = field(default_factory=list)  # (s, cost, insns)
    evaluations: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    # the step that found this program: a start's name (the start itself), "enumeration"
    # (whole programs from nothing), "synthesis" (a chain from an empty program), or one
    # that changed the best: "local search", "peephole", "search" (a chain from the best)
    found_by: str = ""
    # the proven programs met on the way (the best among them), fewest instructions first,
    # at most KEEP: the guest may find one of them faster than the shortest
    kept: list[Kept] = field(default_factory=list)


@dataclass(frozen=True)
class Progress:
    """Where a search is, for a live display: after every start proof and chain batch."""

    seconds: float
    phase: str  # "proving the starts", "enumeration", "local search", "peephole", "STOKE chains",
    # "alternatives", "compaction"
    instructions: int | None  # the best proven program's, the return included
    cost: float | None  # its performance-model cost
    evaluations: int  # candidates evaluated so far
    proofs: int  # Z3 proofs tried
    proven: int
    counterexamples: int


class NoProgram(RuntimeError):
    """No correct program to start from and none found in the budget."""


@dataclass
class _Search:
    isa: Isa
    spec: Routine
    target: MachineTarget
    testset: TestSet
    space: SearchSpace
    model: PerformanceModel
    seed: int
    started: float
    clock: Callable[[], float] = time.perf_counter  # what budget_s and the history count
    best: MachineProgram | None = None
    best_proof: Proof | None = None
    best_start: str = ""
    best_origin: str = ""  # the step that found the best (Evolved.found_by)
    history: list = field(default_factory=list)
    counterexamples: list = field(default_factory=list)
    refuted: set = field(default_factory=set)
    evaluations: int = 0
    proofs: int = 0
    proven: int = 0
    enumerators: dict = field(default_factory=dict)  # (scratch, extra registers) -> one
    on_batch: Callable[[Progress], None] | None = None
    kept: list = field(default_factory=list)  # Kept, every program proven, in order

    def report(self, phase: str) -> None:
        if self.on_batch is not None:
            best = self.best
            self.on_batch(Progress(
                self.clock() - self.started, phase,
                None if best is None else best.instructions,
                None if best is None else self.cost(best), self.evaluations, self.proofs,
                self.proven, len(self.counterexamples)))

    def consider(self, program: MachineProgram, origin: str, timeout: int | None = None,
                 proof: Proof | None = None, keep_only: bool = False) -> bool:
        """Prove `program` (unless `proof`, one the caller holds, says it is proven); a
        counterexample joins the vectors.  True: the new best (with `keep_only`: proven and
        kept beside the best, which stays)."""
        key = text(self.isa, program)
        if key in self.refuted:
            return False
        if timeout is None:
            timeout = MEMORY_PROOF_TIMEOUT_MS if self.spec.uses_memory else PROOF_TIMEOUT_MS
        if proof is None or not proof.proven:
            self.proofs += 1
            proof = prove(self.isa, self.spec, program, timeout)
        if not proof.proven:
            self.refuted.add(key)  # refuted, or Z3 gave up: either way not tried again
            if proof.counterexample is not None:
                self.counterexamples.append(proof.counterexample)
                self.testset.add(proof.counterexample)
            return False
        try:
            code = assemble(self.isa, program, self.target.features)
        except AssemblyError:
            # proven, but the project's assembler will not write it (or its capstone check
            # reads back something else): a program the board cannot be given is no
            # candidate, and the search goes on without it
            self.refuted.add(key)
            return False
        if unicorn_cannot(self.isa, program) is None and unicorn_check(
                self.isa, self.spec, code, self.testset.vectors):
            self.refuted.add(key)  # proven yet the machine disagrees: never use it
            return False
        self.proven += 1
        self._keep(Kept(program, proof, origin))
        if keep_only:
            return True
        self.best, self.best_proof, self.best_start = program, proof, self.best_start or origin
        self.best_origin = origin
        self.history.append((self.clock() - self.started, self.cost(program),
                             program.instructions))
        return True

    def _keep(self, kept: Kept) -> None:
        """Keep a proven program (once); past KEEP, one goes, never the best nor the one
        just proven: of the instruction count most kept programs have, the one kept first
        (of equal numbers, the most instructions).  Not simply the longest: variants of
        the best (its renamings, schedules, alternatives) would push out every program
        one instruction longer, and those are other computations the guest may find
        faster (Haswell p20 under the model timed on its board, where `pext` costs 2
        cycles: eight 7-instruction `pext` programs left none of the 8-instruction
        `tzcnt` ones, 5.6 ticks of latency against 3.7 padded)."""
        if any(k.program == kept.program for k in self.kept):
            return
        self.kept.append(kept)
        if len(self.kept) > KEEP:
            candidates = [k for k in self.kept[:-1] if k.program != self.best]
            sizes = Counter(k.instructions for k in candidates)
            crowded = max(sizes, key=lambda n: (sizes[n], n))
            self.kept.remove(next(k for k in candidates if k.instructions == crowded))

    def enumerator(self, scratch: int | None, program: MachineProgram | None = None
                   ) -> Enumerator:
        """Over the search space (None) or one with `scratch` scratch registers; with
        `program`, also over the registers it names (our lowering's r8: a window replaced
        may leave its value there)."""
        extra = tuple(sorted({r for i in program.insns for r in i.regs} - set(
            self.space.write_registers))) if program is not None else ()
        key = (scratch, extra)
        if key not in self.enumerators:
            s = self.space if scratch is None else space(
                self.isa, self.spec, self.target.features, scratch=scratch,
                avoid=self.target.avoid)
            if extra:
                s = replace(s, read_registers=s.read_registers + extra,
                            write_registers=s.write_registers + extra)
            self.enumerators[key] = Enumerator.build(self.isa, s)
        return self.enumerators[key]

    def cost(self, program: MachineProgram) -> float:
        """The performance model's cost (instructions and latency)."""
        return self.model.cost(program)

    def better(self, program: MachineProgram) -> bool:
        """Fewer instructions, or as many at a lower cost."""
        if self.best is None:
            return True
        return (program.instructions, self.cost(program)) < (self.best.instructions,
                                                             self.cost(self.best))


def offered_starts(isa: Isa, spec: Routine, target: MachineTarget,
                   extra: Sequence[Start] = ()) -> list[Start]:
    """Our starts and `extra`, but none using a form the board lacks (x86's lowering writes
    popcnt for a popcount, which qemu64 has not) or was seen to run otherwise."""
    usable = {f.name for f in isa.available(target.features)} - target.avoid
    return [start for start in (*starts(isa, spec, target.features), *extra)
            if all(i.form in usable for i in start.program.insns)]


def evolve(spec: Routine, target: MachineTarget, *, budget_s: float | None = 60.0,
           batches: int | None = None, seed: int = 0, stop_at: int | None = None,
           model: PerformanceModel | None = None, iterations: int = ITERATIONS,
           on_progress: Callable[[Evolved], None] | None = None, workers: int = 1,
           on_batch: Callable[[Progress], None] | None = None,
           extra_starts: Sequence[Start] = (), vectors: Sequence[MachineVector] = (),
           clock: Callable[[], float] = time.perf_counter) -> Evolved:
    """The shortest proven program found for `spec` on `target`.  Stops after `budget_s`
    seconds or `batches` batches (whichever comes first), or once `stop_at` instructions
    (return included) are reached.  `workers` > 1: that many processes search from the
    same proven starts with their own seeds (on_progress and on_batch are not called
    then); the shortest result wins, the lowest worker on a tie.  `on_progress` gets each
    new best (checked in Unicorn), `on_batch` a Progress after every start proof and
    batch.  `extra_starts`: programs to start from besides our own (another board's best,
    say), proven like every candidate before any is used (unless one carries a proof its
    giver vouches for: Start.proof).  `vectors`: inputs known to refute candidates (other
    searches' counterexamples), test vectors from the start, checked first.  `clock`: the
    seconds budget_s and the history count, wall time by default; time.process_time makes
    the budget CPU time, which a loaded machine does not shrink (one process: not with
    workers > 1).  Interrupted (KeyboardInterrupt), it returns the best proven so far, marked
    `interrupted`."""
    if workers > 1 and clock is not time.perf_counter:
        raise ValueError("a CPU clock counts one process: parallel workers take the wall clock")
    isa = isa_named(target.isa)
    started = clock()
    search_space = space(isa, spec, target.features, avoid=target.avoid)
    testset = TestSet(isa, spec, machine_vectors(isa, spec, TRAINING_VECTORS, seed),
                      search_space.write_registers)
    for v in vectors:
        testset.add(v)
    s = _Search(isa, spec, target, testset, search_space, model or fallback(isa), seed, started,
                clock, on_batch=on_batch)
    offered = offered_starts(isa, spec, target, extra_starts)
    interrupted = False
    try:
        # fewest instructions first; of equals, one proven already (Start.proof) first:
        # the others are then no better and never proven
        for start in sorted(offered, key=lambda x: (x.program.instructions, x.proof is None)):
            s.report("proving the starts")
            if s.better(start.program) and s.consider(start.program, start.name,
                                                      START_PROOF_TIMEOUT_MS, start.proof):
                s.best_start = start.name
            elif _alternative(s, start.program):  # as short: the guest may find it faster
                s.consider(start.program, start.name, START_PROOF_TIMEOUT_MS, start.proof,
                           keep_only=True)
    except KeyboardInterrupt:
        interrupted = True
    if workers > 1 and not interrupted:
        return _parallel(s, workers, budget_s, batches, stop_at, iterations)
    try:
        if not interrupted:
            _run(s, budget_s, batches, stop_at, iterations, on_progress)
            _alternatives(s)
            _compacted(s)
    except KeyboardInterrupt:
        interrupted = True
    if s.best is None:
        if interrupted:
            raise KeyboardInterrupt  # nothing proven to keep
        raise NoProgram(f"no proven program for {spec.hint_name or 'the routine'} on {target.name}"
                        " yet; give the search more time")
    return _result(s, interrupted)


def _alternative(s: _Search, program: MachineProgram) -> bool:
    """Worth proving beside the best: a routine without memory (the sorts' proofs take
    minutes), no more instructions than the best, not kept already."""
    return (not s.spec.uses_memory and s.best is not None
            and program.instructions <= s.best.instructions
            and all(k.program != program for k in s.kept))


def _latency(s: _Search, program: MachineProgram) -> tuple[float, float]:
    """The performance model's latency of `program`: along its critical path (the longest
    chain of instructions each reading what one before wrote, from the arguments to the
    result), then summed over every instruction."""
    rows = encode(s.isa, program, max(len(program.insns), 1))
    reads, writes = masks(s.isa, rows)
    ready: dict[int, float] = {}  # register (or flags) bit -> when its value is ready
    for insn, read, written in zip(program.insns, reads, writes, strict=False):
        end = max((t for bit, t in ready.items() if int(read) & bit), default=0.0) + \
            s.model.latency[insn.form]
        w = int(written)
        while w:
            ready[w & -w] = end
            w &= w - 1
    path = ready.get(1 << s.isa.number(s.isa.abi.result), 0.0)
    return path, sum(s.model.latency[i.form] for i in program.insns)


def _scheduled(s: _Search, program: MachineProgram, inputs: int) -> MachineProgram:
    """`program`'s instructions in critical-path order (list scheduling): of those whose
    inputs are ready and whose registers no earlier one still needs, the one with the
    longest chain of latency after it first, then one reading the arguments (`inputs`,
    a register mask) or what came of them, then the earlier.  The chained calls
    measure the order under KVM (p18 on qemu64: our `xor; cmp; setne; lea; and; sete; and`
    2.89-2.99 ticks of latency, the same with `lea` first 2.47-2.54)."""
    n = len(program.insns)
    reads, writes = masks(s.isa, encode(s.isa, program, max(n, 1)))
    reads, writes = [int(r) for r in reads[:n]], [int(w) for w in writes[:n]]
    # j after i: it reads what i wrote, or writes what i read or wrote
    after = [[j for j in range(i + 1, n) if reads[j] & writes[i] or writes[j] & (
        reads[i] | writes[i])] for i in range(n)]
    # the latency from i to the result, along what reads what: the core renames
    # registers and flags, so a later write costs no time, it only keeps the order
    height = [0.0] * n
    for i in reversed(range(n)):
        height[i] = s.model.latency[program.insns[i].form] + max(
            (height[j] for j in after[i] if reads[j] & writes[i]), default=0.0)
    # which read the arguments, or what was computed from them: of equals, these first
    # (a constant or zero made ready early does not wait for the arguments)
    late, derived = [], inputs
    for r, w in zip(reads, writes, strict=True):
        late.append(bool(r & derived))
        derived = derived | w if late[-1] else derived & ~w
    waiting = [sum(i in after[k] for k in range(i)) for i in range(n)]
    order: list[int] = []
    while len(order) < n:
        i = max((i for i in range(n) if waiting[i] == 0 and i not in order),
                key=lambda i: (height[i], late[i], -i))
        order.append(i)
        for j in after[i]:
            waiting[j] -= 1
    return replace(program, insns=tuple(program.insns[i] for i in order))


def _alternatives(s: _Search, rounds: int = 2, base: MachineProgram | None = None) -> None:
    """Programs of as many instructions as the best, or one more, of less latency in the
    performance model (its critical path, then its sum: _latency) than `base` (the best
    unless given), right on every vector: each instruction of `base` replaced by one
    enumerated instance (enumeration.py; p20 on qemu64: `bsf` reading `x & -x` in place of
    the value computed two instructions later), and a slow one (more than a cycle), alone
    or with a neighbour, by two; and the last copy into the result hoisted beside the work
    (copies.result_copy_hoisted).  Up to ALTERNATIVES of them, fewest instructions and
    least latency first, and `base` and these in critical-path order (_scheduled), are
    proven and kept beside the best, which stays unless one is shorter.  Then, `rounds`
    times at most, the same from the new best if there is one, else from the quickest
    alternative proven, so that two replacements can combine (p20 on qemu64: the 3-cycle
    `imul eax, edi, -1` as `mov; neg`, and `bsf` reading the argument, not the chain):
    the search weighs instructions first, the guest decides (p03 on qemu64: `imul eax,
    edi, -1; and eax, edi` is one instruction shorter than `mov eax, edi; neg eax; and
    eax, edi`, and slower under KVM)."""
    if s.spec.uses_memory or s.spec.result is None or s.best is None:
        return
    base = base or s.best
    most = s.best.instructions + 1
    s.report("alternatives")
    e = s.enumerator(None, base)
    n = len(base.insns)
    _, writes = masks(s.isa, encode(s.isa, base, max(n, 1)))
    defined = [e.arguments_defined(len(s.spec.params))]
    for w in writes:
        defined.append(defined[-1] | int(w))
    slow = [a for a, i in enumerate(base.insns) if s.model.latency[i.form] > 1]
    windows = [(a, a + 1, 1) for a in range(n)] + sorted(
        {(x, y, 2) for a in slow for x, y in ((a, a + 1), (a - 1, a + 1), (a, a + 2))
         if x >= 0 and y <= n})
    latency = {base: _latency(s, base)}  # each program's once: _latency takes ~1 ms
    found = []
    for x, y, j in windows:
        programs, executed = e.replace(s.testset, base, x, y, j, defined[x],
                                       ALTERNATIVE_LIMIT // len(windows), copy=False)
        s.evaluations += executed
        for p in programs:
            if p.instructions <= most and p not in latency:
                latency[p] = _latency(s, p)
                if latency[p] < latency[base]:
                    found.append(p)
    # the last copy into the result hoisted beside the work: as many instructions
    for p in right(s.isa, s.testset, result_copy_hoisted(s.isa, s.space, base)):
        if p not in latency:
            latency[p] = _latency(s, p)
            if latency[p] < latency[base]:
                found.append(p)
    fresh = [p for p in sorted(found, key=lambda p: (p.instructions, latency[p]))
             if all(k.program != p for k in s.kept)]
    chosen = fresh[:ALTERNATIVES]
    # each in critical-path order too: the same instructions, another schedule
    chosen += [p for p in dict.fromkeys(_scheduled(s, q, defined[0]) for q in (base, *chosen))
               if p not in chosen and all(k.program != p for k in s.kept)]
    improved, proven = False, []
    for program in chosen:
        # one shorter than the best (a window the peephole had not replaced) becomes it
        if s.consider(program, "alternative", keep_only=not s.better(program)):
            proven.append(program)
            improved |= s.best is program
    s.report("alternatives")
    if rounds > 1 and (improved or proven):
        quickest = None if improved else min(proven, key=lambda p: latency.get(p) or _latency(s, p))
        _alternatives(s, rounds - 1, quickest)


def _compacted(s: _Search) -> None:
    """Each kept program of no more instructions than the best in fewer bytes, where the
    ISA's instructions differ in length (compaction.py: p23 on qemu64, 73 bytes to 61,
    the call as fast as gcc's under KVM once the code fits a cache line), proven like any
    candidate; it takes the place of the program it came from, the best's too."""
    if not s.isa.variable_length or s.spec.uses_memory or s.best is None:
        return
    s.report("compaction")
    sizes = Sizes(s.isa, s.target.features)
    for kept in [k for k in s.kept if k.instructions <= s.best.instructions]:
        program = smaller(s.isa, s.testset, kept.program, sizes)
        if program is None or not s.consider(program, kept.origin, keep_only=True):
            continue
        if kept in s.kept:  # (keeping the new one may have let it go already)
            s.kept.remove(kept)
        if kept.program == s.best:
            s.best, s.best_proof = program, s.kept[-1].proof
    s.report("compaction")


def _worker(s: _Search, index: int, results, budget_s, batches, stop_at, iterations) -> None:
    """One process of a parallel search (forked: it shares the compiled kernels)."""
    s.seed = s.seed * 1000 + index
    s.on_batch = None  # the parent process shows the progress, not its workers
    interrupted = False
    try:
        _run(s, budget_s, batches, stop_at, iterations, None)
        _alternatives(s)
        _compacted(s)
    except KeyboardInterrupt:
        interrupted = True
    results.put((index, None if s.best is None else _result(s, interrupted)))


def _parallel(s: _Search, workers: int, budget_s, batches, stop_at, iterations) -> Evolved:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=_worker, daemon=True,
                                 args=(s, i, results, budget_s, batches, stop_at, iterations))
                 for i in range(workers)]
    for p in processes:
        p.start()
    found: dict[int, Evolved | None] = {}
    interrupted = False
    while len(found) < workers:
        try:
            index, result = results.get()
            found[index] = result
        except KeyboardInterrupt:
            interrupted = True  # the workers stop too and still report their best
    for p in processes:
        p.join()
    done = [found[i] for i in sorted(found) if found[i] is not None]
    if not done:
        raise NoProgram(f"no proven program for {s.spec.hint_name or 'the routine'} on "
                        f"{s.target.name} yet; give the search more time")
    best = min(done, key=lambda r: r.instructions)  # min keeps the first of equals
    best.evaluations = sum(r.evaluations for r in done)
    best.counterexamples = [c for r in done for c in r.counterexamples]
    best.seconds = s.clock() - s.started
    best.interrupted = interrupted or best.interrupted
    return best


def _done(s: _Search, budget_s, batches, stop_at, count: int) -> bool:
    if stop_at is not None and s.best is not None and s.best.instructions <= stop_at:
        return True
    if batches is not None and count >= batches:
        return True
    return budget_s is not None and s.clock() - s.started >= budget_s


def _deadline(s: _Search, budget_s) -> float | None:
    return None if budget_s is None else s.started + budget_s


def _wall(s: _Search, deadline: float | None) -> float | None:
    """A deadline on the search's clock as one on time.perf_counter, which the enumeration
    kernels' callers read (with time.process_time as the clock they had compared one
    clock's seconds with the other's, and never ran)."""
    return None if deadline is None else time.perf_counter() + (deadline - s.clock())


def _enumerate(s: _Search, budget_s, batches, stop_at, length: int = ENUMERATE_LENGTH) -> None:
    """Whole programs shorter than the best, fewest instructions first (enumeration.py);
    a refuted one's counterexample joins the vectors and the enumeration runs again."""
    if s.spec.uses_memory or s.spec.result is None:
        return
    for _ in range(ENUMERATE_ROUNDS):
        if _done(s, budget_s, batches, stop_at, 0):
            return
        longest = length if s.best is None else min(length, len(s.best.insns) - 1)
        if longest < 1:
            return
        s.report("enumeration")
        deadline = None if budget_s is None else s.started + budget_s * ENUMERATE_SHARE
        found, executed = shortest(s.enumerator(1), s.testset, len(s.spec.params), longest,
                                   ENUMERATE_LIMIT, _wall(s, deadline))
        s.evaluations += executed
        found = sorted((p for p in found if s.better(p)), key=s.cost)
        if not found or any(s.consider(p, "enumeration") for p in found
                            if not _done(s, budget_s, batches, stop_at, 0)):
            return


def _descend(s: _Search, budget_s, batches, stop_at, count: int) -> bool:
    """Local search from the best, cheapest steps first, back to the first after every
    proven shorter program: copies taken out; one instruction deleted with registers
    exchanged or renamed; windows replaced by one enumerated instruction; one deleted and
    another replaced by any instance; windows replaced by up to PEEPHOLE_REPLACEMENT; the
    last copy into the result register coalesced.  True when it improved."""
    improved = False
    while s.best is not None and not _done(s, budget_s, batches, stop_at, count):
        s.report("local search")
        # copies taken out first: few candidates, and most of what our lowering wastes
        rewritten = [*rewrites(s.isa, s.space, s.best),
                     *recomputed(s.isa, s.space, s.testset, s.best)]
        if any(s.consider(p, "local search") for p in right(
                s.isa, s.testset, [p for p in rewritten if s.better(p)])):
            improved = True
            continue
        # the instances over the registers the best names too (our lowering's r9)
        table = s.enumerator(None, s.best).rows
        steps = [lambda t=table: _neighbours(s, t[:0]), lambda: _peephole(s, budget_s, 1),
                 lambda t=table: _neighbours(s, t),
                 lambda: _peephole(s, budget_s, PEEPHOLE_REPLACEMENT, chains=batches != 1),
                 # late: taken early, on a long program, it led to longer local optima
                 lambda: ("local search", right(s.isa, s.testset,
                                                result_coalesced(s.isa, s.space, s.best)))]
        for step in steps:
            phase, found = step()
            # every proof may take PROOF_TIMEOUT_MS: none begins once the budget is spent
            if any(s.consider(p, phase) for p in found
                   if s.better(p) and not _done(s, budget_s, batches, stop_at, count)):
                improved = True
                break
            if _done(s, budget_s, batches, stop_at, count):
                return improved
        else:
            return improved
    return improved


def _neighbours(s: _Search, table) -> tuple[str, list[MachineProgram]]:
    """One instruction deleted, registers exchanged or renamed, or one other replaced by
    an instance of `table`."""
    found, evaluations = neighbours(s.isa, s.space, s.testset, s.best, table,
                                    limit=LOCAL_SEARCH_LIMIT)
    s.evaluations += evaluations
    return "local search", found


def _peephole(s: _Search, budget_s, replacement: int, chains: bool = True
              ) -> tuple[str, list[MachineProgram]]:
    """Windows of the best replaced by at most `replacement` enumerated instructions.
    `chains`: STOKE's chains follow for the rest of the budget, and need their time too
    (PEEPHOLE_SHARE); a search of one batch (the market's `descend`) gives the peephole
    what is left: begun from a board's best, where every cheaper step has failed, x86
    p11's two-instruction windows needed 1.3 CPU-s (an AMD host; 1.8 on an Intel one), and
    at 0.9 s of a 3-s budget the search ended where it began (begun from the first
    search's program, p01-p25 on qemu64 and Haswell: qemu64 p11 and p12 one instruction
    shorter without the cap, Haswell p09 two, none longer; 2026-12-07)."""
    if s.spec.uses_memory:
        return "peephole", []
    s.report("peephole")
    deadline = _deadline(s, budget_s)
    if deadline is not None and replacement > 1 and chains:
        deadline = min(deadline, s.clock() + PEEPHOLE_SHARE * budget_s)
    found, executed = peephole(s.enumerator(None, s.best), s.testset, s.best, len(s.spec.params),
                               PEEPHOLE_WINDOW, replacement, PEEPHOLE_LIMIT, _wall(s, deadline))
    s.evaluations += executed
    return "peephole", sorted(found, key=s.cost)


def _run(s: _Search, budget_s, batches, stop_at, iterations, on_progress) -> None:
    count = restarts = stale = 0
    # the shortest programs (a second or less) before the local search, whose steps on a
    # long lowering can take the whole budget (p23 on Haswell: popcnt)
    for step in (lambda: _enumerate(s, budget_s, batches, stop_at, SHORT_LENGTH),
                 lambda: _descend(s, budget_s, batches, stop_at, count),
                 lambda: _enumerate(s, budget_s, batches, stop_at)):
        before = s.best
        step()
        if s.best is not before and on_progress is not None:
            on_progress(_result(s, False))
    chain, origin = _chain(s, restarts)
    while not _done(s, budget_s, batches, stop_at, count):
        batch = chain.run(iterations)
        count += 1
        s.evaluations += batch.evaluations
        s.report("STOKE chains")
        improved = False
        for _, program in batch.correct:
            if not s.better(program):
                continue
            if s.consider(program, origin):
                improved = True
                _descend(s, budget_s, batches, stop_at, count)
                if on_progress is not None:
                    on_progress(_result(s, False))
                break
        stale = 0 if improved else stale + 1
        if improved or stale >= STALE_BATCHES:
            restarts += 1
            stale = 0
            chain, origin = _chain(s, restarts)


SYNTHESIS_SLOTS = (4, 6, 3, 8, 5, 10)  # slot counts synthesis restarts cycle through


def _chain(s: _Search, restarts: int) -> tuple[Chain, str]:
    """Restarts alternate between optimising from the best program (a slot to spare, three
    temperatures in turn) and synthesising from nothing in a few slots, fewer than the
    best has (STOKE's two phases; short programs are what we are after, and a long best
    says little about where they are).  With no program yet, every chain synthesises.
    Also what its finds are: "synthesis" or "search" (from the best)."""
    phase = restarts % 2
    if s.best is None or phase == 1:
        slots = SYNTHESIS_SLOTS[(restarts // 2) % len(SYNTHESIS_SLOTS)]
        if s.best is not None:
            slots = min(slots, len(s.best.insns) - 1)
        if slots >= 1:
            return Chain.start(s.isa, s.testset, s.space, s.model, MachineProgram(s.isa.name, ()),
                               slots, seed=s.seed * 7919 + restarts, beta=1.0), "synthesis"
    program, beta = s.best, (1.0, 0.5, 2.0)[(restarts // 2) % 3]
    return Chain.start(s.isa, s.testset, s.space, s.model, program, len(program.insns) + 1,
                       seed=s.seed * 7919 + restarts, beta=beta), "search"


def _result(s: _Search, interrupted: bool) -> Evolved:
    code = assemble(s.isa, s.best, s.target.features)
    vectors = machine_vectors(s.isa, s.spec, CHECK_VECTORS, s.seed + 1)
    verdict = unicorn_verdict(s.isa, s.spec, s.best, code, vectors)
    return Evolved(s.spec.hint_name or "", s.target, s.best, text(s.isa, s.best), code,
                   s.best.instructions, s.best_proof, s.best_start, verdict,
                   list(s.counterexamples), list(s.testset.vectors), list(s.history),
                   s.evaluations, s.clock() - s.started, interrupted, s.best_origin,
                   sorted(s.kept, key=lambda k: k.instructions))
