"""PROPOSAL for host/protocol.py: the probe command messages (issue 4).

NOT YET PART OF THE PROTOCOL.  The lead merges these into `Msg` / `LAYOUTS`
(the numbers below are free in protocol.py today); until then the host campaign
code and the fake guest use them from here.  Frames are the ordinary protocol
frames (COBS + CRC, host/frames.py) in both directions; the host numbers its
own frames with its own `seq`.

Host -> guest (0x80-0xFF):
  PROBE_LOAD   put a probe in a slot.  Tail: code bytes then input bytes.
  PROBE_RUN    run the probe in `slot` once as run `run_id`.  `tag` must equal
               the slot's tag (the low 32 bits of the probe's content hash),
               else the guest answers outcome REFUSED: a RUN whose LOAD was lost
               can never run the wrong probe.
  PROBE_RUN_BATCH  runs `count` probes: slot i of the tail (H each) as run
               first_run_id + i; one PROBE_RESULT per run.
  PROBE_STATUS_REQUEST  ask for a PROBE_STATUS.

Guest -> host (0x01-0x7F):
  PROBE_LOADED the slot took the probe (status 0) or why not (PROBE_REFUSE_*).
  PROBE_RESULT one run: outcome (abi.Outcome), the probe's status, the fault,
               cycle and instruction deltas.  Tail: output bytes (output_size).
  PROBE_STATUS counters, so the host can tell a slow board from a dead one.

Retransmission: commands are idempotent.  The guest keeps the results of its
last RESULT_CACHE runs; a PROBE_RUN with a run_id it already ran gets the cached
result again (it is not rerun), so the host simply resends any command whose
answer did not arrive in time.  Run ids increase by one per run and wrap at 2**32.
"""

from __future__ import annotations

from enum import IntEnum

from host.protocol import Layout


class ProbeMsg(IntEnum):
    PROBE_LOADED = 0x10
    PROBE_RESULT = 0x11
    PROBE_STATUS = 0x12
    PROBE_LOAD = 0x80
    PROBE_RUN = 0x81
    PROBE_RUN_BATCH = 0x82
    PROBE_STATUS_REQUEST = 0x83


class Refuse(IntEnum):
    OK = 0
    BAD_SLOT = 1
    TOO_BIG = 2  # code or input larger than the ABI areas
    PRIVILEGED_NOT_ALLOWED = 3  # the guest was booted without privileged probing
    TAG_MISMATCH = 4  # RUN named a tag the slot does not hold


SLOTS = 64  # probes the guest holds at once
RESULT_CACHE = 256  # recent results the guest can resend
RUN_FLAG_MEASURE_LENGTH = 1  # single-step the first instruction to report its length

LAYOUTS: dict[ProbeMsg, Layout] = {
    ProbeMsg.PROBE_LOAD: Layout(
        "PROBE_LOAD",
        (("slot", "H"), ("privilege", "B"), ("_pad", "x"), ("budget", "I"), ("tag", "I"),
         ("code_length", "H"), ("input_length", "H"), ("output_size", "H"), ("_pad2", "2x")),
    ),
    ProbeMsg.PROBE_RUN: Layout(
        "PROBE_RUN", (("run_id", "I"), ("slot", "H"), ("flags", "H"), ("tag", "I"))
    ),
    ProbeMsg.PROBE_RUN_BATCH: Layout(
        "PROBE_RUN_BATCH", (("first_run_id", "I"), ("count", "H"), ("flags", "H"))
    ),
    ProbeMsg.PROBE_STATUS_REQUEST: Layout("PROBE_STATUS_REQUEST", ()),
    ProbeMsg.PROBE_LOADED: Layout(
        "PROBE_LOADED", (("slot", "H"), ("status", "H"), ("tag", "I"))
    ),
    ProbeMsg.PROBE_RESULT: Layout(
        "PROBE_RESULT",
        (("run_id", "I"), ("slot", "H"), ("outcome", "B"), ("_pad", "x"), ("tag", "I"),
         ("length", "I"),  # first-instruction length when RUN_FLAG_MEASURE_LENGTH, else 0
         ("status", "Q"), ("fault_vector", "Q"), ("fault_error", "Q"), ("fault_ip", "Q"),
         ("fault_address", "Q"), ("cycles", "Q"), ("instret", "Q")),
    ),
    ProbeMsg.PROBE_STATUS: Layout(
        "PROBE_STATUS",
        (("slots", "H"), ("loaded", "H"), ("last_run_id", "I"), ("runs", "I"),
         ("faults", "I"), ("timeouts", "I")),
    ),
}


def asm_constants() -> dict[str, int]:
    """The proposal's constants, named as protocol.asm_constants() would name them."""
    consts = {f"MSG_{m.name}": m.value for m in ProbeMsg}
    consts.update({f"PROBE_REFUSE_{r.name}": r.value for r in Refuse})
    consts.update({"PROBE_SLOTS": SLOTS, "PROBE_RESULT_CACHE": RESULT_CACHE,
                   "PROBE_RUN_FLAG_MEASURE_LENGTH": RUN_FLAG_MEASURE_LENGTH})
    for msg, layout in LAYOUTS.items():
        consts[f"{msg.name}_SIZE"] = layout.size
        consts.update({f"{msg.name}_{f.upper()}": off for f, off in layout.offsets().items()})
    return consts
