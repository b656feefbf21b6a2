"""The frame codec against its contract (contract/protocol.py) and zlib/COBS as truth."""

import struct
import zlib

import pytest
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.frames import (
    MAX_ENCODED,
    Frame,
    FrameDecoder,
    MalformedBody,
    ProtocolError,
    encode_frame,
)
from contract.protocol import LAYOUTS, MAX_BODY, Msg, crc32_slicing_tables

bodies = st.binary(max_size=600)
types = st.integers(min_value=1, max_value=0x7F)
seqs = st.integers(min_value=0, max_value=0xFFFF)


def test_encoding_matches_protocol_definition_built_independently():
    body = LAYOUTS[Msg.HELLO].pack(version=1, arch=1)
    raw = struct.pack("<BBH", 0x01, 0, 0) + body
    expected = cobs.encode(raw + struct.pack("<I", zlib.crc32(raw))) + b"\x00"
    assert encode_frame(Msg.HELLO, 0, body) == expected


@given(types, seqs, bodies)
def test_round_trip(msg_type, seq, body):
    decoder = FrameDecoder()
    frames = decoder.feed(b"\x00" + encode_frame(msg_type, seq, body))
    assert len(frames) == 1
    frame = frames[0]
    assert int(frame.type) == msg_type and frame.seq == seq and frame.body == body
    assert decoder.crc_errors == 0


@given(st.lists(st.tuples(types, bodies), min_size=1, max_size=8), st.data())
def test_arbitrary_chunking_gives_the_same_frames(items, data):
    stream = b"\x00" + b"".join(encode_frame(t, i, b) for i, (t, b) in enumerate(items))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder()
    frames = []
    for a, b in zip([0] + cuts, cuts + [len(stream)], strict=True):
        frames += decoder.feed(stream[a:b])
    assert [(int(f.type), f.body) for f in frames] == [(t, b) for t, b in items]
    assert decoder.lost == 0


def _corruptions(frame: bytes, data) -> bytes:
    """One byte of the frame (delimiter excluded) flipped, replaced or dropped."""
    inner = frame[:-1]
    pos = data.draw(st.integers(0, len(inner) - 1))
    how = data.draw(st.sampled_from(["flip", "replace", "drop"]))
    if how == "drop":
        damaged = inner[:pos] + inner[pos + 1 :]
    elif how == "flip":
        bit = data.draw(st.integers(0, 7))
        damaged = inner[:pos] + bytes([inner[pos] ^ (1 << bit)]) + inner[pos + 1 :]
    else:
        value = data.draw(st.integers(0, 255).filter(lambda v: v != inner[pos]))
        damaged = inner[:pos] + bytes([value]) + inner[pos + 1 :]
    return damaged + b"\x00"


@settings(max_examples=300)
@given(types, bodies, bodies, st.data())
def test_single_damaged_byte_never_yields_wrong_content_and_next_frame_survives(
    msg_type, body, next_body, data
):
    first = encode_frame(msg_type, 0, body)
    damaged = _corruptions(first, data)
    decoder = FrameDecoder()
    frames = decoder.feed(b"\x00" + damaged + encode_frame(Msg.LOG, 1, next_body))
    # A replaced byte may become 0x00 and split the frame: every piece is rejected.
    assert all(f.type == Msg.LOG and f.body == next_body for f in frames)
    assert frames and frames[-1].seq == 1
    assert decoder.crc_errors >= 1


@given(st.binary(max_size=300), st.binary(max_size=300), bodies)
def test_garbage_before_and_between_frames_resyncs(prefix, between, body):
    decoder = FrameDecoder()
    stream = (
        prefix + b"\x00" + encode_frame(Msg.LOG, 0, body)
        + between + b"\x00" + encode_frame(Msg.LOG, 1, body)
    )
    frames = decoder.feed(stream)
    assert [f.seq for f in frames][-1] == 1
    assert all(f.body == body for f in frames)


@given(st.binary(max_size=2000))
def test_feed_never_raises_on_garbage(garbage):
    decoder = FrameDecoder()
    decoder.feed(garbage)
    decoder.feed(b"\x00" + garbage + b"\x00")


def test_boot_text_before_first_delimiter_is_kept_as_noise():
    decoder = FrameDecoder()
    decoder.feed(b"MetaOS boot: no INT 13h extensions\r\n\x00" + encode_frame(Msg.LOG, 0, b"x"))
    assert "no INT 13h extensions" in decoder.noise_text
    assert decoder.crc_errors == 0


def test_endless_garbage_keeps_memory_bounded_and_counts_one_rejection():
    decoder = FrameDecoder()
    decoder.feed(b"\x00")
    chunk = b"\x55" * 65536
    for _ in range(8):
        decoder.feed(chunk)
    assert len(decoder._buffer) <= MAX_ENCODED
    frames = decoder.feed(b"\x00" + encode_frame(Msg.LOG, 0, b"ok"))
    assert [f.body for f in frames] == [b"ok"]
    assert decoder.rejected["overlong"] == 1


def test_largest_legal_body_is_accepted():
    body = bytes(range(256)) * (MAX_BODY // 256) + b"\x00" * (MAX_BODY % 256)
    frames = FrameDecoder().feed(b"\x00" + encode_frame(Msg.ACPI_TABLE, 0, body))
    assert frames[0].body == body


def test_oversized_body_or_seq_refused_by_encoder():
    for args in [(Msg.LOG, 0, b"x" * (MAX_BODY + 1)), (Msg.LOG, 1 << 16, b"")]:
        try:
            encode_frame(*args)
        except ProtocolError:
            continue
        raise AssertionError(f"encode_frame{args[:2]} accepted")


def test_sequence_gaps_are_counted_including_wraparound():
    decoder = FrameDecoder()
    stream = b"\x00" + b"".join(encode_frame(Msg.LOG, s, b"") for s in [0xFFFE, 0xFFFF, 2, 3])
    decoder.feed(stream)
    assert decoder.lost == 2  # 0 and 1 never arrived


def test_hello_with_seq_zero_starts_a_new_boot():
    decoder = FrameDecoder()
    hello = LAYOUTS[Msg.HELLO].pack(version=1, arch=1)
    decoder.feed(b"\x00" + encode_frame(Msg.LOG, 7, b"") + encode_frame(Msg.HELLO, 0, hello))
    assert decoder.lost == 0


def test_unknown_type_is_kept_with_its_raw_number():
    frames = FrameDecoder().feed(b"\x00" + encode_frame(0x55, 0, b"future"))
    assert frames[0].type == 0x55 and not frames[0].known
    try:
        frames[0].fields()
    except ProtocolError as exc:
        assert "0x55" in str(exc)
    else:
        raise AssertionError("fields() of an unknown type must raise ProtocolError")


def test_fields_unpack_with_layout_and_short_body_is_malformed():
    body = LAYOUTS[Msg.MEMORY].pack(base=0x100000, length=0x7EE0000, type=1)
    named, tail = Frame(Msg.MEMORY, 0, body).fields()
    assert named == {"base": 0x100000, "length": 0x7EE0000, "type": 1} and tail == b""
    try:
        Frame(Msg.MEMORY, 0, body[:5]).fields()
    except MalformedBody:
        pass
    else:
        raise AssertionError("short MEMORY body accepted")


def test_fields_after_a_pad_keep_their_values():
    layout = LAYOUTS[Msg.PROBE_LOAD]  # padding in the middle and at the end
    values = dict(slot=1, privilege=1, budget=3, tag=4, code_length=5, input_length=6,
                  output_size=7)
    named, tail = Frame(Msg.PROBE_LOAD, 0, layout.pack(b"code", **values)).fields()
    assert named == values and tail == b"code"


@pytest.mark.parametrize("slices", [4, 8])
def test_guest_crc_tables_compute_zlib_crc32(slices):
    """The kernels' loop (riscv64 four bytes a step, x86-64 eight): the step's bytes
    xored with the CRC so far, byte i looked up in table slices-1-i; then a byte at a
    time with table 0 for the rest."""
    tables, data = crc32_slicing_tables(slices), bytes(range(256)) * 3 + b"MetaOS"
    crc, at = 0xFFFFFFFF, 0
    while len(data) - at >= slices:
        word = int.from_bytes(data[at:at + slices], "little") ^ crc
        crc = 0
        for i in range(slices):
            crc ^= tables[slices - 1 - i][(word >> 8 * i) & 0xFF]
        at += slices
    for byte in data[at:]:
        crc = tables[0][(crc ^ byte) & 0xFF] ^ (crc >> 8)
    assert crc ^ 0xFFFFFFFF == zlib.crc32(data)
