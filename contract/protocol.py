"""The guest -> host wire protocol, defined once.

The host decoder reads these definitions, and the guest kernels get them as
assembler constants through `asm_constants()`; nothing here is typed twice.

A frame on the wire is COBS(header + body + crc32) followed by one 0x00 byte.
COBS guarantees the payload holds no 0x00, so 0x00 always ends a frame and a
receiver that lost sync recovers at the next one (the guest also sends a lone
0x00 before its first frame to cut off firmware noise).

    header  <B type> <B flags> <H seq>          little-endian, 4 bytes
    body    message-specific (layouts below); at most MAX_BODY bytes
    crc     <I crc32>   IEEE 802.3 CRC-32 (zlib.crc32) of header + body

`seq` counts frames from 0 within one boot and wraps at 2**16.  The first frame
is always HELLO, which states the protocol version; a host that sees a newer
version or an unknown message type reports it instead of failing.
"""

from __future__ import annotations

from enum import IntEnum

from contract.constants import ConstantSet, collect, enum_constants
from contract.layout import Record

PROTOCOL_VERSION = 1
FRAME_DELIMITER = 0x00
HEADER = Record("FRAME_HEADER", (("type", "B"), ("flags", "B"), ("seq", "H")))
CRC = Record("FRAME_CRC", (("value", "I"),))
CRC32_POLYNOMIAL_REFLECTED = 0xEDB88320  # IEEE 802.3, as zlib.crc32 computes it
MAX_BODY = 0xFFF0  # the largest body a guest may send (big enough for any ACPI table we meet)


class WireArch(IntEnum):
    """The architecture code HELLO carries (arch.Arch objects hold theirs as `.wire`)."""

    X86_64 = 1
    RISCV64 = 2


ARCH_NAMES = {WireArch.X86_64: "x86_64", WireArch.RISCV64: "riscv64"}  # HELLO.arch -> name


class Msg(IntEnum):
    """Message types.  0x01-0x7F travel guest -> host; 0x80-0xFF host -> guest
    (the host numbers its own frames with its own `seq`)."""

    HELLO = 0x01  # first frame of every boot
    LOG = 0x02  # free text from the guest (ASCII)
    MEMORY = 0x03  # one memory region (E820 entry on x86-64)
    CPUID = 0x04  # one CPUID leaf/subleaf result
    PCI_FUNCTION = 0x05  # one PCI function: BAR size-probe readbacks + raw config space
    ACPI_RSDP = 0x06  # the RSDP, raw
    ACPI_TABLE = 0x07  # one ACPI table, raw
    DEVICETREE = 0x08  # the flattened device tree blob, raw
    HART = 0x09  # one RISC-V hart's identity
    FAULT = 0x0A  # the guest kernel itself took an exception it did not expect
    PROBE_LOADED = 0x10  # a slot took a probe, or why not (ProbeRefusal)
    PROBE_RESULT = 0x11  # one probe run: outcome, status, fault, counts; tail = output bytes
    PROBE_STATUS = 0x12  # counters, so the host can tell a slow board from a dead one
    FINAL = 0x7F  # last frame of a discovery run
    # host -> guest: probe commands, every one idempotent (see PROBE_* below)
    PROBE_LOAD = 0x80  # put a probe in a slot; tail = code bytes then input bytes
    PROBE_RUN = 0x81  # run the probe in `slot` as run `run_id` (tag must match the slot's)
    PROBE_RUN_BATCH = 0x82  # tail: `count` slots (H each), run as first_run_id + i
    PROBE_STATUS_REQUEST = 0x83
    # a PROBE_LOAD and a PROBE_RUN of the slot it loads, in one frame: answered by
    # the PROBE_RESULT alone, or by PROBE_LOADED when the load is refused
    PROBE_LOAD_RUN = 0x84


LAYOUTS: dict[Msg, Record] = {
    Msg.HELLO: Record("HELLO", (("version", "H"), ("arch", "H"))),
    Msg.LOG: Record("LOG", ()),
    # The first 20 bytes of an E820 entry, exactly as the BIOS returns them.
    Msg.MEMORY: Record("MEMORY", (("base", "Q"), ("length", "Q"), ("type", "I"))),
    Msg.CPUID: Record(
        "CPUID",
        (("leaf", "I"), ("subleaf", "I"), ("eax", "I"), ("ebx", "I"), ("ecx", "I"), ("edx", "I")),
    ),
    # bar_readback[i]: what BAR i read back after all-ones were written to it with
    # decoding disabled (the size probe); the original BARs are in the raw config
    # space that follows: config_size bytes (256 by port I/O, 4096 by ECAM) whose
    # trailing run of equal dwords is cut to its first one (the receiver repeats
    # the last dword up to config_size): most of a 4 KiB space is 0 or, for a
    # conventional PCI function behind ECAM, all-ones.
    Msg.PCI_FUNCTION: Record(
        "PCI_FUNCTION",
        (("segment", "H"), ("bus", "B"), ("device", "B"), ("function", "B"),
         ("config_source", "B"), ("config_size", "H"))
        + tuple((f"bar{i}_readback", "I") for i in range(6)),
    ),
    Msg.ACPI_RSDP: Record("ACPI_RSDP", (("address", "Q"),)),
    Msg.ACPI_TABLE: Record("ACPI_TABLE", (("address", "Q"),)),
    Msg.DEVICETREE: Record("DEVICETREE", (("address", "Q"),)),
    # csrs: bit i set when the i-th CSR of the guest's CSR catalogue exists.
    Msg.HART: Record(
        "HART",
        (("hartid", "Q"), ("misa", "Q"), ("mvendorid", "Q"), ("marchid", "Q"),
         ("mimpid", "Q"), ("csrs", "Q")),
    ),
    Msg.FAULT: Record(
        "FAULT", (("vector", "Q"), ("error_code", "Q"), ("ip", "Q"), ("address", "Q"))
    ),
    # frames: how many frames preceded this one; status: 0 when discovery completed.
    # probe_line: where a staying guest serves probe commands (ProbeLine).
    Msg.FINAL: Record(
        "FINAL", (("frames", "I"), ("status", "H"), ("probe_line", "B"), ("_pad", "x"))),
    # tag: the low 32 bits of the probe's content hash; a RUN naming another tag
    # than its slot holds is refused, so a RUN whose LOAD was lost never runs the
    # wrong probe.
    Msg.PROBE_LOAD: Record(
        "PROBE_LOAD",
        (("slot", "H"), ("privilege", "B"), ("_pad", "x"), ("budget", "I"), ("tag", "I"),
         ("code_length", "H"), ("input_length", "H"), ("output_size", "H"), ("_pad2", "2x")),
    ),
    Msg.PROBE_RUN: Record(
        "PROBE_RUN", (("run_id", "I"), ("slot", "H"), ("flags", "H"), ("tag", "I"))
    ),
    # tail: a whole PROBE_LOAD body (its fields, code, input)
    Msg.PROBE_LOAD_RUN: Record("PROBE_LOAD_RUN", (("run_id", "I"), ("flags", "H"), ("_pad", "2x"))),
    Msg.PROBE_RUN_BATCH: Record(
        "PROBE_RUN_BATCH", (("first_run_id", "I"), ("count", "H"), ("flags", "H"))
    ),
    Msg.PROBE_STATUS_REQUEST: Record("PROBE_STATUS_REQUEST", ()),
    Msg.PROBE_LOADED: Record("PROBE_LOADED", (("slot", "H"), ("status", "H"), ("tag", "I"))),
    Msg.PROBE_RESULT: Record(
        "PROBE_RESULT",
        (("run_id", "I"), ("slot", "H"), ("outcome", "B"), ("_pad", "x"), ("tag", "I"),
         ("length", "I"),  # first-instruction length when RUN_FLAG_MEASURE_LENGTH, else 0
         ("status", "Q"), ("fault_vector", "Q"), ("fault_error", "Q"), ("fault_ip", "Q"),
         ("fault_address", "Q"), ("cycles", "Q"), ("instret", "Q")),
    ),
    Msg.PROBE_STATUS: Record(
        "PROBE_STATUS",
        (("slots", "H"), ("loaded", "H"), ("last_run_id", "I"), ("runs", "I"),
         ("faults", "I"), ("timeouts", "I")),
    ),
}

# Probe commands are idempotent: the guest keeps the results of its last
# PROBE_RESULT_CACHE runs and answers a PROBE_RUN with a run_id it already ran
# with the cached result (not a rerun), so the host simply resends a command
# whose answer did not arrive in time.  Run ids grow by one and wrap at 2**32.
PROBE_SLOTS = 64  # probes a guest holds at once
PROBE_RESULT_CACHE = 256  # recent results a guest can resend
# Report the first instruction's length (x86-64: single-step with TF; riscv64:
# address triggers where it can fall through to).  The probe then runs on.
PROBE_RUN_FLAG_MEASURE_LENGTH = 1


class ProbeRefusal(IntEnum):
    """PROBE_LOADED status."""

    OK = 0
    BAD_SLOT = 1
    TOO_BIG = 2  # code or input larger than the ABI areas
    PRIVILEGED_NOT_ALLOWED = 3  # the guest was booted without privileged probing
    TAG_MISMATCH = 4  # RUN named a tag the slot does not hold


class ProbeLine(IntEnum):
    """FINAL.probe_line: the line a staying guest reads probe commands from and
    answers on, from FINAL on.  A guest uses the virtio console when its board
    has one it can drive (contract/virtio.py), else the serial port it booted on."""

    SERIAL = 0  # the serial port discovery streamed on (COM1; the virt UART)
    VIRTIO_CONSOLE = 1  # port 0 of a virtio-serial device: no per-byte exits


class ConfigSource(IntEnum):
    PORT_IO = 0  # configuration mechanism #1 (0xCF8/0xCFC), 256 bytes
    ECAM = 1  # memory-mapped (PCIe), 4096 bytes


def crc32_table() -> list[int]:
    """The byte-at-a-time lookup table guests compute the frame CRC with."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (CRC32_POLYNOMIAL_REFLECTED if crc & 1 else 0)
        table.append(crc)
    return table


CRC32_SLICES = 8  # bytes a step of the x86-64 guest's frame CRC (riscv64 takes four)
CRC32_TABLE_SIZE = 256 * 4  # bytes of one table: a 32-bit entry per byte value


def crc32_slicing_tables(slices: int = CRC32_SLICES) -> list[list[int]]:
    """Tables for `slices` bytes a step (slicing-by-N, Kounavis and Berry, Intel 2005):
    table k advances a byte's CRC past k more zero bytes, so the byte at offset i of
    an N-byte step is looked up in table N-1-i and the N lookups are xored."""
    tables = [crc32_table()]
    for _ in range(1, slices):
        last = tables[-1]
        tables.append([(v >> 8) ^ tables[0][v & 0xFF] for v in last])
    return tables


def check_guest_assumptions() -> None:
    """Raise if a layout changed in a way the kernels' assembly does not follow:
    they index the CPUID registers and the BAR readbacks as arrays, and send
    ACPI_RSDP and ACPI_TABLE with one routine."""
    cpuid = LAYOUTS[Msg.CPUID].offsets
    if [cpuid[r] - cpuid["eax"] for r in ("eax", "ebx", "ecx", "edx")] != [0, 4, 8, 12]:
        raise ValueError("CPUID body no longer holds eax..edx in a row; fix kernel/x86_64/cpuid.s")
    pci = LAYOUTS[Msg.PCI_FUNCTION].offsets
    if [pci[f"bar{i}_readback"] - pci["bar0_readback"] for i in range(6)] != list(range(0, 24, 4)):
        raise ValueError("PCI_FUNCTION BAR readbacks are not in a row; fix both kernels' pci.s")
    if LAYOUTS[Msg.ACPI_RSDP].fields != LAYOUTS[Msg.ACPI_TABLE].fields:
        raise ValueError("ACPI_RSDP and ACPI_TABLE bodies differ now; fix kernel/x86_64/acpi.s")
    for msg, layout in LAYOUTS.items():
        if layout.name != msg.name:
            raise ValueError(f"LAYOUTS[{msg.name}] is named {layout.name}: "
                             "name it after its message")


def asm_constants() -> ConstantSet:
    """Every protocol constant a guest needs, named as the assembly uses them."""
    check_guest_assumptions()
    return collect(
        __name__, HEADER, CRC, *LAYOUTS.values(),
        {
            "PROTOCOL_VERSION": PROTOCOL_VERSION,
            "FRAME_DELIMITER": FRAME_DELIMITER,
            "FRAME_MAX_BODY": MAX_BODY,
            "PROBE_SLOTS": PROBE_SLOTS,
            "PROBE_RESULT_CACHE": PROBE_RESULT_CACHE,
            "PROBE_RUN_FLAG_MEASURE_LENGTH": PROBE_RUN_FLAG_MEASURE_LENGTH,
            "CRC32_TABLE_SIZE": CRC32_TABLE_SIZE,  # table k at crc32_tables + k * this
            # the most raw table bytes one ACPI_TABLE frame carries
            "ACPI_TABLE_MAX_RAW": MAX_BODY - LAYOUTS[Msg.ACPI_TABLE].size,
        },
        enum_constants("ARCH", WireArch), enum_constants("MSG", Msg),
        enum_constants("CONFIG_SOURCE", ConfigSource), enum_constants("PROBE_LINE", ProbeLine),
        enum_constants("PROBE_REFUSE", ProbeRefusal),
    )
