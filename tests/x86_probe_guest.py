"""A stayed x86-64 guest under QEMU as a probe link (probes.campaign.Link).

qemu/machine.py has no way to write to the guest's serial line yet, so this
helper runs QEMU itself: the board's own command line (qemu.boards), the
serial line on a UNIX socket this side listens on (bidirectional), no QMP.
It boots, reads discovery up to FINAL, and from then on carries probe frames.
"""

from __future__ import annotations

import select
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from host.frames import Frame, FrameDecoder, encode_frame
from host.protocol import LAYOUTS, STAY_FW_CFG_FILE, Msg
from probes.fake_guest import tag_of
from probes.probe import Probe
from kernel.x86_64.probe_env import PRIVILEGED_FW_CFG_FILE
from qemu.boards import board

BOOT_TIMEOUT = 60.0


class ProbeGuest:
    """`with ProbeGuest(image) as guest:` -- discovery frames in guest.discovery."""

    def __init__(self, image: Path, *, privileged: bool = False, extra_args: tuple[str, ...] = ()):
        args = ["-fw_cfg", f"name={STAY_FW_CFG_FILE},string=1", *extra_args]
        if privileged:
            args += ["-fw_cfg", f"name={PRIVILEGED_FW_CFG_FILE},string=1"]
        self.board = board("q35", accel="tcg", qemu_args=args)
        self.image = image
        self.discovery: list[Frame] = []
        self._dir = tempfile.TemporaryDirectory(prefix="metaos-probe-")
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> ProbeGuest:
        path = str(Path(self._dir.name) / "serial.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        argv = self.board.command_line(serial_socket=path, image=self.image)
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        listener.settimeout(BOOT_TIMEOUT)
        self._sock, _ = listener.accept()
        listener.close()
        self._read_discovery()
        return self

    def __exit__(self, *exc) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._dir.cleanup()

    def _read_discovery(self) -> None:
        decoder, deadline = FrameDecoder(), time.monotonic() + BOOT_TIMEOUT
        while not self.discovery or self.discovery[-1].type != Msg.FINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no FINAL within {BOOT_TIMEOUT}s: {decoder.noise_text[-300:]}")
            data = self.poll(1.0)
            if not data and self._proc.poll() is not None:
                raise RuntimeError(f"QEMU exited ({self._proc.returncode}) before FINAL")
            self.discovery += decoder.feed(data)

    # -- probes.campaign.Link ------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def poll(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._sock], [], [], timeout)
        return self._sock.recv(1 << 16) if ready else b""

    def restart(self) -> None:
        raise RuntimeError("the guest stopped answering (board died); "
                           "these tests expect it to survive every probe")

    def exchange(self, data: bytes, frames: int, timeout: float = 20.0) -> list[Frame]:
        """Send `data`, return the next `frames` frames from the guest."""
        decoder = getattr(self, "_decoder", None)
        if decoder is None:
            decoder = self._decoder = FrameDecoder()
            decoder.feed(b"\0")
        self.send(data)
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(got) < frames:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(got)} of {frames} frames in {timeout}s: {got}")
            got += decoder.feed(self.poll(0.5))
        return got

    def load_and_run(self, probe: Probe, run_id: int, slot: int = 0, flags: int = 0,
                     tag: int | None = None) -> tuple[dict[str, int], dict[str, int], bytes]:
        """LOAD + RUN one probe: (PROBE_LOADED fields, PROBE_RESULT fields, output tail)."""
        tag = tag_of(probe) if tag is None else tag
        load = LAYOUTS[Msg.PROBE_LOAD].pack(
            probe.code + probe.input, slot=slot, privilege=probe.privilege, budget=probe.budget,
            tag=tag_of(probe), code_length=len(probe.code), input_length=len(probe.input),
            output_size=probe.output_size)
        loaded, result = self.exchange(self.frame(Msg.PROBE_LOAD, load)
                                       + self.run_frame(run_id, slot, flags, tag), 2)
        assert (loaded.type, result.type) == (Msg.PROBE_LOADED, Msg.PROBE_RESULT), (loaded, result)
        fields, tail = result.fields()
        return loaded.fields()[0], fields, tail

    def run_frame(self, run_id: int, slot: int, flags: int = 0, tag: int = 0) -> bytes:
        return self.frame(Msg.PROBE_RUN, LAYOUTS[Msg.PROBE_RUN].pack(
            run_id=run_id, slot=slot, flags=flags, tag=tag))

    def frame(self, msg: Msg, body: bytes) -> bytes:
        self._seq = (getattr(self, "_seq", -1) + 1) % (1 << 16)
        return encode_frame(msg, self._seq, body)
