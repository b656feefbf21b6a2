"""Frames on the serial line: encoding (for tests and tools) and incremental decoding.

The layout is defined in `host.protocol`: COBS(header + body + crc32) then 0x00.
The decoder is fed whatever bytes arrive, in any chunking; it never raises on
garbage, keeps memory bounded, and counts what it had to throw away.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

from cobs import cobs

from contract.protocol import CRC, FRAME_DELIMITER, HEADER, LAYOUTS, MAX_BODY, Msg

# The longest COBS encoding of a legal frame: one overhead byte per 254 data
# bytes plus one.  Anything longer without a delimiter cannot be a frame.
_MAX_RAW = HEADER.size + MAX_BODY + CRC.size
MAX_ENCODED = _MAX_RAW + _MAX_RAW // 254 + 1
# Bytes seen before the first delimiter (firmware/boot text) kept for display.
MAX_NOISE = 64 * 1024
SEQ_MODULO = 1 << 16


class ProtocolError(Exception):
    """A frame or body that does not follow contract/protocol.py."""


class MalformedBody(ProtocolError):
    """A frame whose body does not match its message layout."""


@dataclass(frozen=True)
class Frame:
    """One accepted frame.  `type` is a `Msg` when known, else the raw byte."""

    type: Msg | int
    seq: int
    body: bytes
    flags: int = 0

    @property
    def known(self) -> bool:
        return isinstance(self.type, Msg)

    def fields(self) -> tuple[dict[str, int], bytes]:
        """The body's named fields and its variable tail, per protocol.LAYOUTS."""
        if not self.known:
            raise ProtocolError(f"message type 0x{int(self.type):02x} is unknown to this host")
        layout = LAYOUTS[self.type]
        try:
            return layout.unpack(self.body)
        except ValueError as error:
            raise MalformedBody(f"frame seq {self.seq}: {error}") from None


def encode_frame(msg_type: Msg | int, seq: int, body: bytes, flags: int = 0) -> bytes:
    """The bytes a guest sends for one frame, delimiter included."""
    if len(body) > MAX_BODY:
        raise ProtocolError(f"body of {len(body)} bytes exceeds MAX_BODY={MAX_BODY}; split it")
    if not 0 <= seq < SEQ_MODULO:
        raise ProtocolError(f"seq {seq} is outside 0..65535; wrap it modulo 2**16")
    raw = HEADER.pack(int(msg_type), flags, seq) + bytes(body)
    raw += CRC.pack(zlib.crc32(raw))
    return cobs.encode(raw) + bytes([FRAME_DELIMITER])


def _parse(encoded: bytes) -> Frame | str:
    """A frame from one delimiter-free chunk, or the reason it was rejected."""
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError:
        return "cobs"
    if len(raw) < HEADER.size + CRC.size or len(raw) > _MAX_RAW:
        return "length"
    payload, (crc,) = raw[: -CRC.size], CRC.unpack(raw[-CRC.size :])
    if zlib.crc32(payload) != crc:
        return "crc"
    type_byte, flags, seq = HEADER.unpack_from(payload)
    try:
        msg_type: Msg | int = Msg(type_byte)
    except ValueError:
        msg_type = type_byte
    return Frame(msg_type, seq, bytes(payload[HEADER.size :]), flags)


@dataclass
class FrameDecoder:
    """Incremental decoder: `feed()` chunks as they arrive, get whole frames back.

    Counters: `frames` accepted, `crc_errors` rejected chunks of any kind (bad
    COBS, bad length, bad CRC, overlong), `rejected` the same by reason, `lost`
    frames missing according to gaps in `seq`.
    """

    noise: bytearray = field(default_factory=bytearray)
    frames: int = 0
    crc_errors: int = 0
    lost: int = 0
    rejected: Counter = field(default_factory=Counter)
    _synced: bool = False
    _buffer: bytearray = field(default_factory=bytearray)
    _overflow: bool = False
    _next_seq: int | None = None

    def feed(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        start = 0
        while start < len(data):
            end = data.find(FRAME_DELIMITER, start)
            chunk = data[start:] if end < 0 else data[start:end]
            self._absorb(chunk)
            if end < 0:
                break
            self._end_of_chunk(out)
            start = end + 1
        return out

    @property
    def noise_text(self) -> str:
        """Boot text seen before the first frame (firmware messages, our own boot stage)."""
        return self.noise.decode("ascii", errors="replace")

    def _absorb(self, chunk: bytes) -> None:
        if not self._synced:
            room = MAX_NOISE - len(self.noise)
            self.noise += chunk[:room]
            return
        if self._overflow:
            return
        if len(self._buffer) + len(chunk) > MAX_ENCODED:
            self._overflow = True
            self._buffer.clear()
            return
        self._buffer += chunk

    def _end_of_chunk(self, out: list[Frame]) -> None:
        if not self._synced:
            self._synced = True
            return
        if self._overflow:
            self._reject("overlong")
        elif self._buffer:
            result = _parse(bytes(self._buffer))
            if isinstance(result, Frame):
                self._accept(result, out)
            else:
                self._reject(result)
        self._buffer.clear()
        self._overflow = False

    def _reject(self, reason: str) -> None:
        self.crc_errors += 1
        self.rejected[reason] += 1

    def _accept(self, frame: Frame, out: list[Frame]) -> None:
        if frame.type == Msg.HELLO and frame.seq == 0:
            self._next_seq = None  # a new boot starts counting again
        if self._next_seq is not None:
            self.lost += (frame.seq - self._next_seq) % SEQ_MODULO
        self._next_seq = (frame.seq + 1) % SEQ_MODULO
        self.frames += 1
        out.append(frame)
