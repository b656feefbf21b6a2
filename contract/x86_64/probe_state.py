"""The x86-64 probe command loop's records, defined once: a slot, a result-cache
entry, the run under way, the environment, and the virtio console driver's
state.  contract/x86_64/memory_map.py places them; the ones at a fixed address
emit each field's address there (`RUN_STATUS`, `CONSOLE_PORT`), the others
their offsets."""

from __future__ import annotations

from contract.constants import ConstantSet, collect
from contract.layout import Record
from contract.protocol import LAYOUTS, PROBE_RESULT_CACHE, Msg

# One slot's record in the slot table (code and input live in the slot store).
SLOT = Record("SLOT", (("tag", "I"), ("budget", "I"), ("code_length", "H"), ("input_length", "H"),
                       ("output_size", "H"), ("privilege", "B"), ("loaded", "B")))
# The run under way, zeroed before each run from `status` to the end.
RUN = Record("RUN", (("status", "Q"), ("fault_vector", "Q"), ("fault_error", "Q"),
                     ("fault_ip", "Q"), ("fault_address", "Q"), ("cycles", "Q"), ("instret", "Q"),
                     ("outcome", "I"), ("length", "I")))
ENV = Record("ENV", (("kernel_rsp", "Q"), ("placed_code_length", "I"), ("placed_input_length", "I"),
                     ("tsc_start", "Q"), ("instret_start", "Q"),
                     ("xcr0", "Q"), ("page_entry_mask", "Q"), ("ticks_per_window", "Q"),
                     ("idle_spin_tsc", "Q"),
                     ("active", "B"), ("measuring", "B"), ("privileged_allowed", "B"),
                     ("pmu_present", "B"), ("xsave_enabled", "B"), ("_pad", "3x"),
                     ("code_slot", "I"), ("runs", "I"), ("faults", "I"), ("timeouts", "I"),
                     ("last_run_id", "I"), ("bad_frames", "I")))
# The head of one result-cache entry; the PROBE_RESULT body follows it.
CACHE_ENTRY = Record("CACHE", (("run_id", "I"), ("valid", "I"), ("length", "I"), ("_pad", "4x")))
# The virtio console driver's state.
CONSOLE = Record("CONSOLE", (
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
# PROBE_RESULT's 64-bit fields, in the order the RUN record holds them too, so the
# kernel copies them in one go (kernel/x86_64/probe_command.s, result_body).
RESULT_QWORDS = ("status", "fault_vector", "fault_error", "fault_ip", "fault_address", "cycles",
                 "instret")


def check() -> None:
    """Raise ValueError if a field the assembly copies in one go moved."""
    result, run = LAYOUTS[Msg.PROBE_RESULT].offsets, RUN.offsets
    for index, name in enumerate(RESULT_QWORDS):
        if result[name] - result["status"] != 8 * index or run[name] != 8 * index:
            raise ValueError(f"PROBE_RESULT / RUN field {name} moved: "
                             "fix kernel/x86_64/probe_command.s (result_body)")
    if PROBE_RESULT_CACHE & (PROBE_RESULT_CACHE - 1):
        raise ValueError("PROBE_RESULT_CACHE must be a power of two: "
                         "the kernel indexes its cache by run_id bits")


def asm_constants() -> ConstantSet:
    check()
    return collect(__name__, SLOT, CACHE_ENTRY, {"RUN_COPIED_QWORDS": len(RESULT_QWORDS)})
