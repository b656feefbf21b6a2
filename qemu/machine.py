"""One QEMU process running one MetaOS guest, as a context manager.

    with Machine(board("q35", accel="tcg"), image="boot.img", timeout=30) as m:
        data = m.read_serial(timeout=5)      # bytes; b"" once the line is closed
        status = m.wait_exit(timeout=5)      # 33 = DEBUG_EXIT_PASS

The host listens on UNIX sockets in a private temporary directory and QEMU
connects to them as a client, so the sockets exist before the guest runs and no
serial byte or QMP event is ever lost.  With QMP on (the default) QEMU starts
paused (-S): the QMP handshake completes only once QEMU has accepted its whole
command line, then `cont` lets the guest run.  Measured, this costs 0.5-3 ms
against a run without QMP, and makes the SHUTDOWN event of a guest reset
certain to be seen.  Leaving the `with` block always stops QEMU (QMP quit, then
SIGTERM, then SIGKILL), reaps it and removes the temporary directory.
"""

from __future__ import annotations

import os
import queue
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from qemu.boards import Board
from qemu.errors import (
    GuestResetError,
    GuestTimeoutError,
    QemuError,
    QemuExitedError,
    QemuNotInstalledError,
    QemuStartError,
    UnknownCpuModel,
)
from qemu.monitor import Monitor
from qemu.qmp import ExecInterruptedError, QMPError
from qemu.serial_line import SerialLine

QEMU_ERROR_STATUS = 1  # QEMU's own exit status when it fails (bad option, fatal error)
START_TIMEOUT = 15.0  # seconds QEMU has to come up and answer QMP
STOP_GRACE = 1.0  # seconds each shutdown step (quit, SIGTERM) is given before the next
QMP_TIMEOUT = 10.0  # seconds a QMP command may take
# QEMU is started through util-linux's setpriv (Debian: always installed), which asks Linux to
# SIGKILL it when the thread that started it ends.  The context manager always shuts QEMU
# down, but nothing runs in a process that is itself SIGKILLed: without this its QEMUs would
# run on, orphaned (a killed market's boards did).  Linux ties the signal to a thread, not a
# process, so every QEMU is started from one thread that lives as long as the process
# (_launcher): a board restarted from a short-lived worker thread must not die with it.
PARENT_DEATH_SIGNAL = ("setpriv", "--pdeathsig", "KILL")


class _Launcher:
    """A daemon thread that runs what it is given (starting processes) and lives as long
    as the process: the thread a parent-death signal is tied to."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="qemu-launcher", daemon=True).start()

    def _serve(self) -> None:
        while True:
            job, done = self._work.get()
            try:
                done.set_result(job())
            except BaseException as error:  # handed to the caller, raised there
                done.set_exception(error)

    def run(self, job: Callable[[], Any]) -> Any:
        done: Future = Future()
        self._work.put((job, done))
        return done.result()


_LAUNCHERS: dict[int, _Launcher] = {}
_LAUNCHER_LOCK = threading.Lock()


def _new_lock_in_child() -> None:
    global _LAUNCHER_LOCK  # a fork while another thread held it would copy it held
    _LAUNCHER_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def _launcher() -> _Launcher:
    """This process's launcher (a forked child gets its own: the parent's thread is not
    in it)."""
    with _LAUNCHER_LOCK:
        launcher = _LAUNCHERS.get(os.getpid())
        if launcher is None:
            launcher = _LAUNCHERS[os.getpid()] = _Launcher()
        return launcher


class Machine:
    """A QEMU process running `board` with a disk `image` (x86-64) or ELF `kernel` (RISC-V).

    `timeout` bounds the whole run: no call waits past `timeout` seconds after QEMU
    started, and a call that would raises GuestTimeoutError.  `qmp=False` runs
    without a QMP monitor (then `qmp()` is refused, `events` stays empty and a guest
    reset is recognised by exit status 0 alone, which only x86-64 allows)."""

    def __init__(
        self,
        board: Board,
        *,
        image: str | os.PathLike[str] | None = None,
        kernel: str | os.PathLike[str] | None = None,
        timeout: float = 60.0,
        qmp: bool = True,
    ) -> None:
        for what, path in (("image", image), ("kernel", kernel)):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(
                    f"guest {what} {os.fspath(path)} does not exist: build it first"
                )
        self.board = board
        self.image = image
        self.kernel = kernel
        self.timeout = timeout
        self.use_qmp = qmp
        self.command_line: list[str] = []
        self.started_at: float | None = None  # time.monotonic() just before QEMU was spawned
        self.exit_status: int | None = None  # QEMU's exit status once reaped (negative: signal)
        self._events: list[dict[str, Any]] = []
        self._stderr_cache: str | None = None
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._log_file: IO[bytes] | None = None
        self._serial: SerialLine | None = None
        self._console: SerialLine | None = None  # the board's probe console, if it has one
        self._monitor: Monitor | None = None
        self._guest_started = False  # QEMU accepted its command line and the guest may run

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> Machine:
        try:
            self.launch()
        except BaseException:
            self.shutdown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def launch(self) -> None:
        """Start QEMU and let the guest run.  Raises QemuNotInstalledError,
        KvmUnavailableError, or QemuStartError when QEMU refuses its command line."""
        if shutil.which(self.board.qemu_binary) is None:
            package = self.board.debian_package
            raise QemuNotInstalledError(
                f"{self.board.qemu_binary} is not installed (or not on PATH): install the "
                f"Debian package {package} (sudo apt-get install {package}), or use ./run, "
                "which installs what is missing"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="metaos-qemu-"))
        self._serial = SerialLine(str(self._dir / "serial.sock"))
        if self.board.probe_console:
            self._console = SerialLine(str(self._dir / "console.sock"))
        qmp_path = None
        if self.use_qmp:
            qmp_path = str(self._dir / "qmp.sock")
            self._monitor = Monitor(qmp_path, f"metaos-{self.board.name}")
        self.command_line = self.board.command_line(
            serial_socket=self._serial.path,
            console_socket=self._console.path if self._console is not None else None,
            qmp_socket=qmp_path,
            paused=self.use_qmp,
            image=self.image,
            kernel=self.kernel,
        )
        self._log_file = open(self._dir / "qemu.log", "wb")
        self.started_at = time.monotonic()
        dies_with_us = PARENT_DEATH_SIGNAL if shutil.which(PARENT_DEATH_SIGNAL[0]) else ()
        self._proc = _launcher().run(lambda: subprocess.Popen(
            [*dies_with_us, *self.command_line],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        ))
        self._pidfd = os.pidfd_open(self._proc.pid)
        if self._monitor is not None:
            self._start_paused_guest(self._monitor)

    def _start_paused_guest(self, monitor: Monitor) -> None:
        assert self._proc is not None and self._pidfd is not None
        outcome = monitor.accept(self._pidfd, min(START_TIMEOUT, self.timeout))
        if outcome == "ready":
            try:
                self.qmp("cont")
            except ExecInterruptedError:
                # a guest may run to its exit before QEMU answers `cont`: only
                # a QEMU that still runs has really lost its monitor
                try:
                    self._proc.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    raise QemuStartError("QEMU dropped its QMP connection while starting",
                                         **self._context()) from None
            self._guest_started = True
            return
        try:
            self._proc.wait(STOP_GRACE)  # a broken handshake means QEMU is exiting
        except subprocess.TimeoutExpired:
            raise QemuStartError(
                "QEMU did not answer QMP in time after starting; the host may be overloaded",
                **self._context(),
            ) from None
        self._reap()
        raise self._refusal(
            f"QEMU refused to start (exit status {self.exit_status}): {self._first_error_line()}")

    def shutdown(self) -> None:
        """Stop QEMU if it still runs (QMP quit, SIGTERM, SIGKILL), reap it, release every
        socket and remove the temporary directory.  Safe to call more than once."""
        if self._proc is not None and self._proc.poll() is None:
            self._stop(self._proc)
        if self._proc is not None:
            self._reap()
        if self._monitor is not None:
            self._collect_events()
            self._monitor.close(STOP_GRACE)
            self._monitor = None
        for line in (self._serial, self._console):
            if line is not None:
                line.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        if self._log_file is not None:
            self._stderr_cache = self.stderr_text
            self._log_file.close()
            self._log_file = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        if self._monitor is not None and self._monitor.connected:
            try:
                self._monitor.execute("quit", None, STOP_GRACE)
            except Exception:  # QEMU may close the socket before answering; that is fine
                pass
        for stop in (None, signal.SIGTERM, signal.SIGKILL):
            if stop is not None:
                proc.send_signal(stop)
            try:
                proc.wait(STOP_GRACE)
                return
            except subprocess.TimeoutExpired:
                continue

    # -- what QEMU said ------------------------------------------------------

    @property
    def stderr_text(self) -> str:
        """What QEMU wrote on stderr (and stdout) so far."""
        if self._stderr_cache is not None:
            return self._stderr_cache
        if self._dir is None:
            return ""
        return (self._dir / "qemu.log").read_bytes().decode(errors="replace")

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every QMP event received so far, oldest first, as QEMU sent it."""
        self._collect_events()
        return list(self._events)

    @property
    def serial_log(self) -> bytes:
        """Every byte the guest sent on its serial line so far."""
        return self._serial.log if self._serial is not None else b""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def cpu_seconds(self) -> float | None:
        """CPU time QEMU has used so far, all its threads (its vCPUs' guest time included),
        to the nanosecond; None when it is not running."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        try:  # the process's CPU-time clock: clock_getcpuclockid(3), CPUCLOCK_SCHED
            return time.clock_gettime(((~self._proc.pid) << 3) | 2)
        except OSError:  # it ended since
            return None

    @property
    def temp_dir(self) -> Path | None:
        """The private directory holding the sockets (None once shut down)."""
        return self._dir

    # -- serial line ---------------------------------------------------------

    def read_serial(self, timeout: float) -> bytes:
        """The next bytes from the guest's serial line, waiting up to `timeout` seconds for at
        least one.  b"" means the line is closed because QEMU has exited.  Raises
        GuestTimeoutError when nothing arrived in time, QemuStartError/QemuExitedError when
        QEMU itself failed."""
        serial = self._serial
        assert serial is not None, "launch() the machine (or use `with`) first"
        kept = serial.take_kept()
        if kept:
            return kept
        deadline = self._deadline(timeout)
        if not self._connect_serial(deadline) or serial.closed:
            return b""
        ready, _, _ = select.select([serial], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise self._timeout(
                f"the guest sent nothing on its serial line for {timeout:g}s: "
                "it may be hung or halted (see serial_log)"
            )
        data = serial.receive()
        if data:
            self._guest_started = True  # without QMP, serial output proves QEMU started
        else:
            self._reap_after_close()
        return data

    def poll_serial(self, timeout: float, *, console: bool = False) -> bytes:
        """Like read_serial, but for a host that polls: b"" when nothing arrived within
        `timeout` seconds *or* the line is closed (check `running` to tell them apart).
        Never raises because the guest was silent or QEMU exited; still raises
        GuestTimeoutError once the machine's own time limit has run out.  The bytes are
        not added to serial_log: a probe campaign moves megabytes through here.
        `console`: the board's probe console (Board.probe_console) instead."""
        serial = self._line(console)
        assert self._pidfd is not None, "launch() the machine first"
        kept = serial.take_kept()
        if kept:
            return kept
        deadline = self._deadline(timeout)
        if not self._connect_serial(deadline, serial) or serial.closed:
            time.sleep(max(0.0, deadline - time.monotonic()))  # a polling caller must not spin
            return b""
        ready, _, _ = select.select([serial, self._pidfd], [], [],
                                    max(0.0, deadline - time.monotonic()))
        if serial in ready:
            try:
                return serial.receive(log=False)  # not kept in serial_log: see above
            except ConnectionResetError:  # QEMU exited with host bytes still unread
                serial.closed = True
                return b""
        if not ready and time.monotonic() >= self.started_at + self.timeout:
            raise self._timeout("the run used up its time limit")
        return b""

    def write_serial(self, data: bytes, timeout: float = 1.0, *, console: bool = False) -> int:
        """Send `data` to the guest's serial port (`console`: its probe console); returns
        how many bytes were taken.  QEMU reads the socket only as fast as the guest takes
        bytes, so a guest that is busy (or hung) fills the line: then this waits up to
        `timeout` seconds (0: not at all) and returns short.  Raises QemuExitedError when
        QEMU is gone."""
        serial = self._line(console)
        deadline = self._deadline(timeout)
        if not self._connect_serial(deadline, serial) or serial.closed:
            raise QemuExitedError("the serial line is closed: QEMU has exited", **self._context())
        view = memoryview(data)
        while view:
            try:
                view = view[serial.send_now(view):]
            except BlockingIOError:  # the socket buffer is full: wait for QEMU to drain it
                _, writable, _ = select.select([], [serial], [],
                                               max(0.0, deadline - time.monotonic()))
                if not writable:
                    break
            except (BrokenPipeError, ConnectionResetError):
                raise QemuExitedError("the serial line broke: QEMU has exited",
                                      **self._context()) from None
        return len(data) - len(view)

    def line_fileno(self, *, console: bool = False) -> int:
        """The socket of the serial port (`console`: the probe console), for a caller
        that selects on many machines; it reads with poll_serial(0) when it is ready.
        QEMU connects its lines before it answers QMP, so after launch() this does
        not wait.  Raises QemuExitedError when QEMU left without connecting."""
        line = self._line(console)
        if not self._connect_serial(self._deadline(START_TIMEOUT), line):
            raise QemuExitedError("QEMU exited before connecting its serial line",
                                  **self._context())
        return line.fileno()

    @property
    def running(self) -> bool:
        """QEMU has been launched and has not exited (a guest reset exits it: -no-reboot)."""
        return self._proc is not None and self._proc.poll() is None

    def _line(self, console: bool) -> SerialLine:
        line = self._console if console else self._serial
        if line is None:
            raise QemuError("this machine has no probe console (Board.probe_console)" if console
                            else "launch() the machine (or use `with`) first")
        return line

    def _connect_serial(self, deadline: float, line: SerialLine | None = None) -> bool:
        """QEMU's end of the serial line (or `line`) is connected (False: QEMU exited
        without it)."""
        line = line or self._serial
        assert line is not None and self._pidfd is not None
        try:
            connected = line.connect(self._pidfd, deadline)
        except TimeoutError as error:
            raise self._timeout(str(error)) from None
        if not connected:
            self._reap_after_close()
        return connected

    # -- exit ----------------------------------------------------------------

    def wait_exit(self, timeout: float) -> int:
        """QEMU's exit status once the guest leaves (33 = DEBUG_EXIT_PASS through
        isa-debug-exit; 0 = sifive_test pass on RISC-V), waiting up to `timeout` seconds.
        Serial bytes arriving meanwhile are kept for read_serial.  Raises GuestResetError
        (triple fault / reset), QemuExitedError (QEMU's own failure or a signal),
        QemuStartError (QEMU refused its command line), GuestTimeoutError (still running)."""
        deadline = self._deadline(timeout)
        serial, proc = self._serial, self._proc
        assert serial is not None and proc is not None and self._pidfd is not None
        while proc.poll() is None:
            watched = [self._pidfd]
            if self._connect_serial(deadline) and not serial.closed:
                watched.append(serial.fileno())
            ready, _, _ = select.select(watched, [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise self._timeout(f"the guest did not exit within {timeout:g}s")
            if serial.connected and serial.fileno() in ready:
                serial.keep(serial.receive())
        self._reap()
        while serial.connected and not serial.closed:
            serial.keep(serial.receive())  # QEMU is gone: the rest is buffered, then EOF
        return self._judge_exit()

    def _judge_exit(self) -> int:
        status = self.exit_status
        assert status is not None
        if status < 0:
            raise QemuExitedError(f"QEMU was killed by signal {-status}", **self._context())
        shutdown = [e for e in self.events if e.get("event") == "SHUTDOWN"]
        reason = shutdown[-1].get("data", {}).get("reason") if shutdown else None
        if reason == "guest-reset" or (
            status == 0 and self.board.boots_from_disk and reason is None
        ):
            raise GuestResetError(
                "the guest reset the machine (on x86 usually a triple fault: an exception "
                "with no usable IDT); -no-reboot stopped QEMU. See serial_log for how far it got",
                **self._context(),
            )
        if status == QEMU_ERROR_STATUS:
            if not self._guest_started:
                raise self._refusal(f"QEMU failed: {self._first_error_line()}")
            raise QemuExitedError(f"QEMU failed: {self._first_error_line()}", **self._context())
        if status == 0 and self.board.boots_from_disk:
            raise QemuExitedError(
                f"QEMU stopped ({reason}) without the guest using its exit device",
                **self._context(),
            )
        return status

    def _reap_after_close(self) -> None:
        """QEMU closed the serial line: it is exiting.  Raise if it failed."""
        assert self._proc is not None
        try:
            self._proc.wait(STOP_GRACE * 2)
        except subprocess.TimeoutExpired:
            return  # it closed the line but lives on; wait_exit will tell
        self._reap()
        if self.exit_status is not None and (
            self.exit_status < 0 or self.exit_status == QEMU_ERROR_STATUS
        ):
            self._judge_exit()

    def _reap(self) -> None:
        assert self._proc is not None
        self.exit_status = self._proc.wait()

    # -- QMP -----------------------------------------------------------------

    def qmp(self, command: str, **arguments: Any) -> Any:
        """Run a QMP command and return its result.  Raises qemu.qmp.ExecuteError when
        QEMU answers with an error, QemuExitedError when QEMU is gone."""
        if self._monitor is None or not self._monitor.connected:
            if not self.use_qmp:
                raise QemuError("this machine runs without QMP: create it with qmp=True")
            raise QemuExitedError(f"QMP {command}: QEMU is no longer running", **self._context())
        try:
            return self._monitor.execute(command, arguments or None, QMP_TIMEOUT)
        finally:
            self._collect_events()

    def run_state(self, timeout: float) -> str | None:
        """QMP query-status's status ("running", "internal-error", ...), or None when
        QEMU does not say within `timeout` seconds (stopped, or gone)."""
        if self._monitor is None or not self._monitor.connected:
            return None
        try:
            return self._monitor.execute("query-status", None, timeout)["status"]
        except (TimeoutError, QMPError, OSError):
            return None
        finally:
            self._collect_events()

    def _collect_events(self) -> None:
        if self._monitor is None:
            return
        gone = self._proc is not None and self._proc.poll() is not None
        self._events += self._monitor.take_events(peer_gone=gone, timeout=STOP_GRACE)

    # -- helpers -------------------------------------------------------------

    def _deadline(self, timeout: float) -> float:
        assert self.started_at is not None, "launch() the machine (or use `with`) first"
        return min(time.monotonic() + timeout, self.started_at + self.timeout)

    def _timeout(self, message: str) -> GuestTimeoutError:
        assert self.started_at is not None
        if time.monotonic() >= self.started_at + self.timeout:
            message = f"the run used up its time limit (Machine timeout={self.timeout:g}s)"
        return GuestTimeoutError(message, **self._context())

    def _context(self) -> dict[str, Any]:
        return {
            "command_line": self.command_line,
            "stderr": self.stderr_text,
            "exit_status": self.exit_status,
        }

    def _refusal(self, message: str) -> QemuStartError:
        """The error for a command line QEMU refused; a CPU model it does not know is the
        user's to change (QEMU 7.2 says "unable to find CPU model 'NAME'")."""
        if "unable to find CPU model" in self._first_error_line():
            binary = self.board.qemu_binary
            return UnknownCpuModel(
                f"{binary} has no CPU model {self.board.cpu!r}; `{binary} -cpu help` lists them",
                **self._context())
        return QemuStartError(message, **self._context())

    def _first_error_line(self) -> str:
        lines = [line for line in self.stderr_text.splitlines() if line.strip()]
        errors = [line for line in lines if "warning:" not in line]
        return (errors or lines or ["(QEMU printed nothing)"])[0]
