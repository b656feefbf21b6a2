"""Vetting on every core the host gives us.

Unicorn emulates one probe at a time per process and vetting is the host's
heaviest work, so a long stream of probes is vetted by a pool of worker
processes (forked: each inherits the imported modules and the vetter the
parent built for the stream's arch, a Unicorn instance that takes ~165 ms to
build), chunk by chunk, and the verdicts come back in the stream's order.
A short stream stays in this process: starting the workers would cost more
than it saves.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from probes.probe import Probe
from probes.vet import VetVerdict, vet

IN_PROCESS_FIRST = 512  # a stream this long is worth a pool (~25 ms to start; measured x86-64)
CHUNK = 256  # probes per task sent to a worker
FIRST_CHUNK = 64  # the head goes out in small tasks: the first verdicts (and runs) come sooner
AHEAD = 4  # chunks in flight per worker, so none waits for the next
# Pools a stream may lose before it gives up: a worker that dies (Unicorn 2.1.4 aborted
# inside emu_start in workers that had vetted random bytes for minutes) breaks its pool,
# and the chunks in flight go to a new one
POOLS_LOST = 2


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0))


def _ignore_interrupts() -> None:
    """Ctrl-C is for the parent, which ends the pool; a worker would only die noisily."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _vet_chunk(chunk: list[Probe]) -> list[VetVerdict]:
    return [vet(p) for p in chunk]


class VetPoolLost(RuntimeError):
    """The pool's workers kept dying: the stream's verdicts from there on are unknown."""


def vet_stream(probes: Iterable[Probe],
               workers: int | None = None) -> Iterator[tuple[Probe, VetVerdict]]:
    """(probe, verdict) for every probe, in order; the same verdicts `vet` gives."""
    stream = iter(probes)
    head = list(itertools.islice(stream, IN_PROCESS_FIRST))
    workers = usable_cpus() if workers is None else workers
    if len(head) < IN_PROCESS_FIRST or workers < 2:
        for probe in itertools.chain(head, stream):
            yield probe, vet(probe)
        return
    chunks = iter(lambda: list(itertools.islice(stream, CHUNK)), [])
    chunks = itertools.chain((head[i:i + FIRST_CHUNK] for i in range(0, len(head), FIRST_CHUNK)),
                             chunks)
    vet(head[0])  # the workers inherit this arch's vetter built (~165 ms each otherwise)
    context = multiprocessing.get_context("fork")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, context, initializer=_ignore_interrupts)

    lost = 0
    pool = new_pool()
    try:
        pending: deque[tuple[list[Probe], Future]] = deque(
            (chunk, pool.submit(_vet_chunk, chunk))
            for chunk in itertools.islice(chunks, AHEAD * workers))
        while pending:
            chunk, verdicts = pending[0]
            try:
                done = _waited(verdicts)
            except BrokenProcessPool:
                lost += 1
                if lost > POOLS_LOST:
                    raise VetPoolLost(f"{lost} vetting pools lost their workers; the probes"
                                      " from here on are not vetted") from None
                pool.shutdown(wait=True)
                pool = new_pool()
                pending = deque((c, pool.submit(_vet_chunk, c)) for c, _ in pending)
                continue
            pending.popleft()
            following = next(chunks, None)
            if following is not None:
                pending.append((following, pool.submit(_vet_chunk, following)))
            yield from zip(chunk, done, strict=True)  # one verdict per probe
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _waited(result: Future) -> list[VetVerdict]:
    """The chunk's verdicts, waited for in short steps: Ctrl-C's signal may be taken by
    one of the pool's threads, and then a wait without a timeout in this one never ends
    (the test's Ctrl-C hung here until pytest's timeout with the host's load at 8)."""
    while True:
        try:
            return result.result(timeout=0.1)
        except FutureTimeout:
            continue
