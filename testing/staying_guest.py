"""A guest booted to stay after FINAL (Board(stay=True)) under qemu.machine.Machine,
for tests that talk to its probe command loop, on either architecture.

    with StayingGuest(board("q35", accel="tcg"), image=image) as guest:
        guest.discovery                        # the boot's frames, up to FINAL
        (loaded,) = guest.exchange(guest.frame(Msg.PROBE_LOAD, body))

It is a probes.campaign.Link (now, send, poll, restart), and `exchange` sends
host frames and returns the guest's answers to exactly those frames: the
protocol gives each request its answers (PROBE_LOAD: the PROBE_LOADED of that
slot and tag; PROBE_RUN and PROBE_LOAD_RUN: the PROBE_RESULT of that run id; a
batch: one per run id; PROBE_STATUS_REQUEST: PROBE_STATUS), and the guest
answers in order.

Why matching: a campaign resends a run (PROBE_LOAD_RUN) whose result is late, and
returns once every run has a result, so the answers to resends still queued in
the guest (the cached PROBE_RESULT) arrive after it has
returned.  Taken as the answers to the next request, they once made a trivial
probe look like a random probe's FAULT.  `exchange` skips (into `skipped`) only
answers to requests sent earlier and not yet answered; any other frame fails.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from pathlib import Path
from types import TracebackType

from contract.frames import Frame, FrameDecoder, ProtocolError, encode_frame
from contract.protocol import FRAME_DELIMITER, Msg
from kernel.guest import Guest
from link.qemu_link import QemuLink
from qemu.boards import Board
from qemu.errors import GuestTimeoutError, QemuExitedError
from qemu.machine import Machine

BOOT_TIMEOUT = 60.0  # seconds to FINAL; TCG boots take a second or two
ANSWER_TIMEOUT = 20.0  # seconds an exchange waits for its answers

DELIMITER = bytes([FRAME_DELIMITER])

AnswerKey = tuple[int, ...]


def answer_keys(frame: Frame) -> list[AnswerKey]:
    """The answers a host frame asks for, in order (none for anything else, nor for a
    body too short for its message, which the guests ignore)."""
    try:
        return _answer_keys(frame)
    except ProtocolError:
        return []


def _answer_keys(frame: Frame) -> list[AnswerKey]:
    if frame.type == Msg.PROBE_LOAD:
        fields, _ = frame.fields()
        return [(Msg.PROBE_LOADED, fields["slot"], fields["tag"])]
    if frame.type == Msg.PROBE_RUN:
        return [(Msg.PROBE_RESULT, frame.fields()[0]["run_id"])]
    # a refused load answers PROBE_LOADED instead: unexpected here
    if frame.type == Msg.PROBE_LOAD_RUN:
        return [(Msg.PROBE_RESULT, frame.fields()[0]["run_id"])]
    if frame.type == Msg.PROBE_RUN_BATCH:
        fields, slots = frame.fields()
        if len(slots) < 2 * fields["count"]:
            return []  # fewer slots than it says: ignored
        return [(Msg.PROBE_RESULT, (fields["first_run_id"] + i) % 2**32)
                for i in range(fields["count"])]
    if frame.type == Msg.PROBE_STATUS_REQUEST:
        return [(Msg.PROBE_STATUS,)]
    return []


def answered_key(frame: Frame) -> AnswerKey | None:
    """Which request a guest frame answers (None: it answers none)."""
    if frame.type == Msg.PROBE_LOADED:
        fields, _ = frame.fields()
        return (Msg.PROBE_LOADED, fields["slot"], fields["tag"])
    if frame.type == Msg.PROBE_RESULT:
        return (Msg.PROBE_RESULT, frame.fields()[0]["run_id"])
    if frame.type == Msg.PROBE_STATUS:
        return (Msg.PROBE_STATUS,)
    return None


def describe(frame: Frame) -> str:
    """A frame as a failure message should show it (a FAULT's vector, ip and address too)."""
    try:
        fields, tail = frame.fields()
    except ProtocolError as error:  # unknown or malformed: worth reporting as it is
        return f"{frame} ({error})"
    return f"{Msg(frame.type).name} {fields}" + (f" + {len(tail)} bytes" if tail else "")


class StayingGuest:
    """`board` with stay (and `privileged`) switched on, running `image` (x86-64) or
    `kernel` (RISC-V), through probes.qemu_link.QemuLink (which launches it, boots it
    to FINAL and never blocks on a busy guest).  Use as a context manager."""

    def __init__(self, board: Board, *, image: str | os.PathLike[str] | None = None,
                 kernel: str | os.PathLike[str] | None = None, privileged: bool = False,
                 line: str = "serial") -> None:
        built = Path(image or kernel)
        self._guest = Guest(board.arch, image and Path(image), kernel and Path(kernel), built, hex)
        self.board = dataclasses.replace(board, stay=True, privileged=privileged)
        self.line = line  # QemuLink's: these tests talk over the serial port unless told
        self.link: QemuLink | None = None
        self.discovery: list[Frame] = []
        self.skipped: list[Frame] = []  # late answers to earlier requests, passed over by exchange
        self._rx = FrameDecoder()  # every byte after the boot's FINAL goes through it, once
        self._tx = FrameDecoder()  # the host's own frames, to know what they ask for
        for decoder in (self._rx, self._tx):
            decoder.feed(DELIMITER)  # both start at a frame boundary
        self._unread = b""  # received, not yet decoded (exchange stops at a frame's end)
        self._unanswered: Counter[AnswerKey] = Counter()
        self._seq = 0

    def __enter__(self) -> StayingGuest:
        self.link = QemuLink(self.board, self._guest, boot_timeout=BOOT_TIMEOUT, line=self.line)
        self.discovery = list(self.link.boots[0].frames)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.link is not None:
            self.link.close()

    @property
    def machine(self) -> Machine:
        assert self.link is not None and self.link.machine is not None, "not running"
        return self.link.machine

    def _context(self) -> dict[str, object]:
        m = self.machine
        return {"command_line": m.command_line, "stderr": m.stderr_text,
                "exit_status": m.exit_status}

    # -- probes.campaign.Link ------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def send(self, data: bytes) -> None:
        self._record(data)
        self.link.send(data)

    def _record(self, data: bytes) -> list[AnswerKey]:
        """The answers the host frames in `data` ask for, now owed by the guest."""
        keys = [key for frame in self._tx.feed(data) for key in answer_keys(frame)]
        self._unanswered.update(keys)
        return keys

    def poll(self, timeout: float) -> bytes:
        data, self._unread = self._unread or self.link.poll(timeout), b""
        for frame in self._rx.feed(data):
            self._settle(answered_key(frame))
        return data

    def restart(self) -> None:
        raise QemuExitedError(
            "the guest stopped answering (board died or hung); these tests expect it to "
            f"survive every probe. QEMU running: {self.machine.running}", **self._context())

    # -- request and answers -------------------------------------------------------

    def frame(self, msg: Msg, body: bytes) -> bytes:
        """One host frame, numbered in this guest's own sequence."""
        self._seq = (self._seq + 1) % (1 << 16)
        return encode_frame(msg, self._seq, body)

    def request(self, msg: Msg, body: bytes, timeout: float = ANSWER_TIMEOUT) -> list[Frame]:
        return self.exchange(self.frame(msg, body), timeout)

    def exchange(self, data: bytes, timeout: float = ANSWER_TIMEOUT) -> list[Frame]:
        """Send host frames; return the guest's answers to them, in order."""
        before = self._unanswered.copy()  # earlier requests still owed an answer
        wanted = self._record(data)
        self.link.send(data)
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(got) < len(wanted):
            frame = self._next_frame(deadline, got, wanted)
            key = answered_key(frame)
            self._settle(key)
            if not got and key is not None and before[key] > 0:
                before[key] -= 1  # the guest answers in order: earlier requests come first
                self.skipped.append(frame)
            elif key == wanted[len(got)]:
                got.append(frame)
            else:
                raise AssertionError(
                    f"the guest sent {describe(frame)} where the answer to "
                    f"{wanted[len(got)]} was due (answers so far: {[describe(f) for f in got]})")
        return got

    def _settle(self, key: AnswerKey | None) -> None:
        if key is not None and self._unanswered[key] > 0:
            self._unanswered[key] -= 1

    def _next_frame(self, deadline: float, got: list[Frame], wanted: list[AnswerKey]) -> Frame:
        """The next whole frame; bytes after it stay unread (for `poll` or the next call)."""
        while True:
            if not self._unread:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GuestTimeoutError(
                        f"{len(got)} of {len(wanted)} answers ({wanted}) within the time allowed; "
                        f"got {[describe(f) for f in got]}", **self._context())
                self._unread = self.link.poll(min(left, 0.5))
                if not self._unread and not self.machine.running:
                    raise QemuExitedError(
                        f"QEMU exited while {len(wanted) - len(got)} answers were due",
                        **self._context())
            end = self._unread.find(DELIMITER)
            cut = len(self._unread) if end < 0 else end + 1
            chunk, self._unread = self._unread[:cut], self._unread[cut:]
            frames = self._rx.feed(chunk)  # one delimiter ends at most one frame
            if frames:
                return frames[0]
