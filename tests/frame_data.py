"""What frames hold, for the kernels' COBS routines run in Unicorn: noise, and runs of
zeros (a probe's vectors are mostly zero bytes: most COBS blocks are a lone zero), full
254-byte blocks and their edges."""

from hypothesis import strategies as st

FRAME_LIKE = st.one_of(
    st.binary(max_size=800),
    st.lists(st.sampled_from([b"\0", b"\0" * 8, b"\0" * 13, b"\1" * 253, b"\2" * 254, b"\3",
                              b"\xff\x01"]), max_size=12).map(b"".join))
