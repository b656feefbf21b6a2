"""Serial-console view: one line per decoded frame.

Used by `./run boot` (every frame of one boot) and `./run console` (live, or
replayed from a raw capture).  Addresses the guest reports (fault instruction
pointers) are named through the kernel's ELF symbols when they are given.
"""

from __future__ import annotations

from typing import Callable

from contract.frames import Frame, ProtocolError
from contract.protocol import ARCH_NAMES, Msg

Symbolizer = Callable[[int], str]


def _text(tail: bytes) -> str:
    return tail.decode("ascii", "replace").rstrip("\x00")


def _summary(frame: Frame, symbolize: Symbolizer | None) -> str:
    fields, tail = frame.fields()
    match frame.type:
        case Msg.HELLO:
            arch = ARCH_NAMES.get(fields["arch"], f"unknown ({fields['arch']})")
            return f"protocol v{fields['version']}, arch {arch}"
        case Msg.LOG:
            return _text(tail)
        case Msg.MEMORY:
            end = fields["base"] + fields["length"] - 1
            return f"[{fields['base']:#014x}-{end:#014x}] type {fields['type']}"
        case Msg.CPUID:
            return ("leaf {leaf:#010x}.{subleaf:<2} eax={eax:08x} ebx={ebx:08x} "
                    "ecx={ecx:08x} edx={edx:08x}").format(**fields)
        case Msg.PCI_FUNCTION:
            vendor, device = int.from_bytes(tail[0:2], "little"), int.from_bytes(tail[2:4], "little")
            return (f"{fields['bus']:02x}:{fields['device']:02x}.{fields['function']} "
                    f"[{vendor:04x}:{device:04x}] config {len(tail)} bytes")
        case Msg.ACPI_RSDP | Msg.DEVICETREE:
            return f"at {fields['address']:#x}, {len(tail)} bytes"
        case Msg.ACPI_TABLE:
            return f"{_text(tail[:4])} at {fields['address']:#x}, {len(tail)} bytes"
        case Msg.HART:
            return "hart {hartid} misa={misa:#x} mvendorid={mvendorid:#x} marchid={marchid:#x}".format(
                **fields)
        case Msg.FAULT:
            where = symbolize(fields["ip"]) if symbolize else f"{fields['ip']:#x}"
            return (f"vector {fields['vector']} error {fields['error_code']:#x} at {where} "
                    f"(address {fields['address']:#x})")
        case Msg.FINAL:
            return f"{fields['frames']} frames before this one, status {fields['status']}"
    return f"{len(frame.body)} bytes"


def describe(frame: Frame, symbolize: Symbolizer | None = None, hex_dump: bool = False) -> str:
    """`seq TYPE summary`, plus the body in hex when asked."""
    name = frame.type.name if frame.known else f"0x{int(frame.type):02x}?"
    try:
        summary = _summary(frame, symbolize) if frame.known else "unknown message type"
    except (ProtocolError, ValueError) as error:
        summary = f"malformed: {error}"
    line = f"{frame.seq:5d} {name:<12} {summary}"
    if hex_dump:
        line += "\n" + "\n".join(
            f"      {offset:04x}: {frame.body[offset:offset + 16].hex(' ')}"
            for offset in range(0, len(frame.body), 16)
        )
    return line
