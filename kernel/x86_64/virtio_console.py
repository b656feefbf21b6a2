"""The x86-64 virtio console driver's state record (contract/x86_64/memory_map.py
CONSOLE_STATE), as the assembly names its fields: CONSOLE_<FIELD> is the
field's address."""

from __future__ import annotations

from contract.x86_64 import memory_map as layout
from contract.protocol import Layout

CONSOLE = Layout("CONSOLE", (
    ("rx_cursor", "Q"),  # the next unread byte of the receive buffer being read
    ("rx_left", "I"),  # bytes of it not read yet (0: take the next used buffer)
    ("rx_id", "I"),  # its descriptor, handed back once it is read
    ("port", "H"),  # the legacy registers' I/O base (BAR0)
    ("rx_used", "H"),  # used entries of the receive queue taken so far (wraps at 2**16)
    ("rx_avail", "H"),  # avail entries of the receive queue published so far
    ("tx_avail", "H"),  # avail entries of the transmit queue published so far
    ("active", "B"),  # 1 once the console is the probe line
    ("irq", "B"),  # its 8259 line, from config space (the firmware routed INTx there)
    ("master_mask", "B"),  # the 8259 masks that let only that line through (while asleep)
    ("slave_mask", "B"),
))


def asm_constants() -> dict[str, int]:
    if CONSOLE.size > layout.PAGE_SIZE:
        raise ValueError("the console state outgrew its page in contract/x86_64/memory_map.py")
    return {f"CONSOLE_{f.upper()}": layout.CONSOLE_STATE + o for f, o in CONSOLE.offsets().items()}
