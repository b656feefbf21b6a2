"""Searches run in a worker process, so that an experiment spends at most what its stake
allows.

The engine's time budget is wall time between chain batches; proving its starts is not
bounded by it (evolution gives a start proof up to 10 minutes: riscv64 sort5's takes Z3
about 5).  One such experiment staked at 3 CPU-seconds used 574 in a bench run and
left no CPU for any other.  So the market runs each search in a worker process and stops
it once its CPU (read from /proc, the worker's own and its children's, such as the RISC-V
assembler) passes the cap: the budget times CAP_FACTOR plus CAP_ALLOWANCE_S.  A stopped
search is a result with no program, its CPU charged and the reason in the ledger; the
market's cost estimate then steers away from that routine (market/market.py overruns).

A worker that dies (a signal, a crash in Z3's or Unicorn's native code, the kernel's
OOM killer) is the same: a result with no program, the CPU it had used charged, and the
next search gets a new worker.

The worker is started with `spawn` (the market's process has threads: QEMU links, the
live table) and kept for the next search, so the engine's compiled kernels are reused;
it is started again only after it was stopped.
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from evolution.warm import warm
from market.engine import SearchTask, search
from market.market import Claim

CAP_FACTOR = 3.0
# riscv64 sort5's start (its network without Zbb, 65 instructions) takes Z3 60-70 CPU-s
# to prove on this host: at 60 s the first search of it was stopped at its cap (69 s) in
# one of two full bench runs, and the board had no sort5 at all
CAP_ALLOWANCE_S = 120.0
WALL_FACTOR = 10.0  # a search that sleeps (a hung solver) is stopped after this much wall
POLL_S = 0.2
STARTUP_S = 120.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def process_cpu(pid: int) -> float:
    """CPU-seconds of process `pid` and its waited-for children (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def _die_with(parent: int) -> None:
    """Have Linux SIGKILL this worker once the market that started it is gone (SIGKILLed,
    say): its search would otherwise run on to its end, and a start proof may take Z3
    minutes.  A signal, not a thread watching the parent: a compiled kernel or its first
    compilation holds the GIL for seconds, and such a thread would wait behind it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the market died before the request was in place
        os._exit(0)


def _serve(conn: Connection, run: Callable[[SearchTask], Claim]) -> None:
    _die_with(os.getppid())
    conn.send("ready")  # imported: what follows is searching, and is what is counted
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the market is gone
            return
        if task is None:
            return
        conn.send(run(task))


def compile_kernels(isas: Sequence[str]) -> None:
    """Compile the search kernels of `isas` (evolution/warm.py), each in a process of its
    own side by side, before any search is timed: on a cold numba cache a search would
    otherwise spend minutes of its CPU cap compiling them, and be stopped before they were
    cached."""
    with ProcessPoolExecutor(max_workers=len(isas),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(warm, isas))


class SearchWorker:
    """Runs `run` (market.engine.search; a module-level function: it crosses into the
    worker by name) on each task in the worker process, within the task's CPU cap."""

    def __init__(self, cap_factor: float = CAP_FACTOR,
                 cap_allowance_s: float = CAP_ALLOWANCE_S,
                 run: Callable[[SearchTask], Claim] = search) -> None:
        self.cap_factor = cap_factor
        self.cap_allowance_s = cap_allowance_s
        self.run = run
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._conn: Connection | None = None

    def cap(self, task: SearchTask) -> float:
        return task.cpu_seconds * self.cap_factor + self.cap_allowance_s

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child, self.run), daemon=True,
                                              name="market-search")
        self._process.start()
        child.close()
        self._conn = parent
        try:
            ready = parent.poll(STARTUP_S) and parent.recv() == "ready"
        except (EOFError, OSError):  # it ended before it was ready: its traceback is above
            ready = False
        if not ready:
            self._stop()
            raise RuntimeError(f"the search process did not start within {STARTUP_S:g} s "
                               "(its error, if it had one, is on stderr above)")

    def __call__(self, task: SearchTask) -> Claim:
        if self._process is None or not self._process.is_alive():
            self._start()
        pid = self._process.pid
        before, wall = process_cpu(pid), time.monotonic()
        cap = self.cap(task)
        used = 0.0
        try:
            self._conn.send(task)
        except OSError:  # it ended since the last search (BrokenPipeError)
            return self._died(pid, before, used)
        # a dead worker closes its end of the pipe: poll() then returns and recv() fails
        while not self._conn.poll(POLL_S):
            try:
                used = process_cpu(pid) - before
            except FileNotFoundError:  # gone already: charge what it had used
                break
            if used > cap:
                self._stop()
                return self._failed(used, f"stopped at its CPU cap ({cap:.0f} s: the budget "
                                          f"x {self.cap_factor:g} + {self.cap_allowance_s:g} s)")
            if time.monotonic() - wall > cap * WALL_FACTOR:
                self._stop()
                return self._failed(used, f"stopped after {cap * WALL_FACTOR:.0f} s of wall "
                                          f"time ({WALL_FACTOR:g} x its CPU cap) with "
                                          f"{used:.1f} CPU-s used: a hung solver, or a "
                                          "host too busy to run it")
        try:
            claim = self._conn.recv()
        except (EOFError, OSError):
            return self._died(pid, before, used)
        used = process_cpu(pid) - before
        # the worker's own reading leaves out its children (the assembler): use /proc's
        return dataclasses.replace(claim, cpu_ms=round(used * 1000),
                                   reached_ms=min(claim.reached_ms, round(used * 1000)),
                                   start_ms=min(claim.start_ms, round(used * 1000)))

    def _died(self, pid: int, before: float, last: float) -> Claim:
        """The worker ended in the middle of a search: its CPU until then is charged (read
        while it is a zombie, before join reaps it; else the last reading)."""
        try:
            used = process_cpu(pid) - before
        except FileNotFoundError:
            used = last
        self._process.join(timeout=5)
        code = self._process.exitcode
        if code is not None and code < 0:
            names = {s.value: s.name for s in signal.Signals}
            how = f"killed by {names.get(-code, f'signal {-code}')}"
        else:
            how = f"exit status {code}"
        self._stop()
        return self._failed(used, f"the search process died ({how})")

    @staticmethod
    def _failed(used: float, why: str) -> Claim:
        ms = round(used * 1000)
        return Claim(None, 0.0, "", b"", frozenset(), {}, ms, ms, None, 0.0, failure=why)

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send(None)
                self._process.join(timeout=5)
            except OSError:  # it ended meanwhile: nothing to ask
                pass
        self._stop()
