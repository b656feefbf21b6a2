"""One PCI function decoded from its raw configuration space and BAR size probes.

Layouts follow the PCI Local Bus spec 3.0 (type 0/1 headers, capability list)
and PCI Express base spec (extended capabilities at 0x100).  Everything here is
numbers; names come from pci.ids at render time (discovery/pciids.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from contract.pci import (
    BAR0,
    BARS_PER_HEADER,
    BASE_CLASS,
    CAP_SUBSYSTEM_ID,
    CAPABILITIES_POINTER,
    CARDBUS_CAPABILITIES_POINTER,
    CARDBUS_SUBSYSTEM_ID,
    CARDBUS_SUBSYSTEM_VENDOR,
    CONFIG_SPACE_EXTENDED,
    CONFIG_SPACE_LEGACY,
    DEVICE_ID,
    EXTENDED_CAPABILITIES,
    HEADER_BRIDGE,
    HEADER_CARDBUS,
    HEADER_MULTI_FUNCTION,
    HEADER_NORMAL,
    HEADER_TYPE,
    INTERRUPT_LINE,
    INTERRUPT_PIN,
    PROG_IF,
    REVISION,
    SECONDARY_BUS,
    STATUS,
    STATUS_CAPABILITIES_LIST,
    SUBCLASS,
    SUBORDINATE_BUS,
    SUBSYSTEM_ID,
    SUBSYSTEM_VENDOR,
    VENDOR_ID,
)

CAPABILITY_NAMES = {
    0x01: "Power Management", 0x02: "AGP", 0x03: "VPD", 0x04: "Slot ID", 0x05: "MSI",
    0x06: "CompactPCI Hot Swap", 0x07: "PCI-X", 0x08: "HyperTransport",
    0x09: "Vendor Specific", 0x0A: "Debug port", 0x0B: "CompactPCI central resource",
    0x0C: "PCI Hot-plug", 0x0D: "Subsystem ID", 0x0E: "AGP 8x", 0x0F: "Secure device",
    0x10: "Express", 0x11: "MSI-X", 0x12: "SATA", 0x13: "Advanced Features",
    0x14: "Enhanced Allocation", 0x15: "Flattening Portal Bridge",
}
EXTENDED_CAPABILITY_NAMES = {
    0x0001: "Advanced Error Reporting", 0x0002: "Virtual Channel",
    0x0003: "Device Serial Number", 0x0004: "Power Budgeting",
    0x0005: "Root Complex Link Declaration", 0x000B: "Vendor Specific",
    0x000D: "Access Control Services", 0x000E: "Alternative Routing-ID",
    0x000F: "Address Translation Service", 0x0010: "SR-IOV", 0x0013: "Page Request",
    0x0015: "Resizable BAR", 0x0018: "Latency Tolerance Reporting",
    0x0019: "Secondary PCI Express", 0x001B: "Process Address Space ID",
    0x001E: "L1 PM Substates", 0x0025: "Data Link Feature",
}

_MAX_CAPABILITIES = 48  # (256 - 64) / 4: more means the list loops


@dataclass(frozen=True)
class Bar:
    index: int
    kind: str  # "io" | "mem32" | "mem64"
    prefetchable: bool
    address: int
    size: int

    def to_json(self) -> dict:
        return {"index": self.index, "kind": self.kind, "prefetchable": self.prefetchable,
                "address": self.address, "size": self.size}


@dataclass(frozen=True)
class PciFunction:
    segment: int
    bus: int
    device: int
    function: int
    config: bytes
    bar_readbacks: tuple[int, ...]
    config_source: int = 0
    bars: tuple[Bar, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bars", tuple(decode_bars(self)))

    def _u8(self, offset: int) -> int:
        return self.config[offset] if offset < len(self.config) else 0xFF

    def _u16(self, offset: int) -> int:
        return self._u8(offset) | self._u8(offset + 1) << 8

    def _u32(self, offset: int) -> int:
        return self._u16(offset) | self._u16(offset + 2) << 16

    @property
    def bdf(self) -> str:
        prefix = f"{self.segment:04x}:" if self.segment else ""
        return f"{prefix}{self.bus:02x}:{self.device:02x}.{self.function:x}"

    vendor = property(lambda self: self._u16(VENDOR_ID))
    device_id = property(lambda self: self._u16(DEVICE_ID))
    revision = property(lambda self: self._u8(REVISION))
    prog_if = property(lambda self: self._u8(PROG_IF))
    status = property(lambda self: self._u16(STATUS))
    interrupt_line = property(lambda self: self._u8(INTERRUPT_LINE))
    interrupt_pin = property(lambda self: self._u8(INTERRUPT_PIN))

    @property
    def class_code(self) -> int:
        """24-bit class: base class << 16 | subclass << 8 | programming interface."""
        return self._u8(BASE_CLASS) << 16 | self._u8(SUBCLASS) << 8 | self._u8(PROG_IF)

    @property
    def header_type(self) -> int:
        return self._u8(HEADER_TYPE) & 0x7F

    @property
    def multi_function(self) -> bool:
        return bool(self._u8(HEADER_TYPE) & HEADER_MULTI_FUNCTION)

    @property
    def is_bridge(self) -> bool:
        return self.header_type == HEADER_BRIDGE

    @property
    def secondary_bus(self) -> int | None:
        return self._u8(SECONDARY_BUS) if self.is_bridge else None

    @property
    def subordinate_bus(self) -> int | None:
        return self._u8(SUBORDINATE_BUS) if self.is_bridge else None

    @property
    def subsystem(self) -> tuple[int, int]:
        """(subsystem vendor, subsystem device); bridges carry it in capability 0x0D."""
        if self.header_type == HEADER_NORMAL:
            return self._u16(SUBSYSTEM_VENDOR), self._u16(SUBSYSTEM_ID)
        if self.header_type == HEADER_CARDBUS:
            return self._u16(CARDBUS_SUBSYSTEM_VENDOR), self._u16(CARDBUS_SUBSYSTEM_ID)
        for cap_id, offset in self.capability_offsets():
            if cap_id == CAP_SUBSYSTEM_ID:
                return self._u16(offset + 4), self._u16(offset + 6)
        return 0, 0

    def capability_offsets(self) -> list[tuple[int, int]]:
        """(id, offset) of each standard capability in list order (loops cut)."""
        if not self.status & STATUS_CAPABILITIES_LIST or self.status == 0xFFFF:
            return []
        head = (CARDBUS_CAPABILITIES_POINTER if self.header_type == HEADER_CARDBUS
                else CAPABILITIES_POINTER)
        result, seen, pointer = [], set(), self._u8(head) & 0xFC
        while pointer >= 0x40 and pointer not in seen and len(result) < _MAX_CAPABILITIES:
            seen.add(pointer)
            result.append((self._u8(pointer), pointer))
            pointer = self._u8(pointer + 1) & 0xFC
        return result

    @property
    def capabilities(self) -> list[int]:
        return [cap_id for cap_id, _ in self.capability_offsets()]

    @property
    def extended_capabilities(self) -> list[int]:
        """PCIe extended capability IDs from 0x100, when 4 KiB config space was read."""
        if len(self.config) < CONFIG_SPACE_EXTENDED:
            return []
        result, seen, offset = [], set(), EXTENDED_CAPABILITIES
        while offset >= EXTENDED_CAPABILITIES and offset not in seen:
            header = self._u32(offset)
            if header in (0, 0xFFFFFFFF):
                break
            seen.add(offset)
            result.append(header & 0xFFFF)
            offset = (header >> 20) & 0xFFC
        return result

    def to_json(self, names: PciNames | None = None) -> dict:
        sub_vendor, sub_device = self.subsystem
        return {
            "bdf": self.bdf, "vendor": self.vendor, "device": self.device_id,
            "class": self.class_code, "revision": self.revision,
            "subsystem_vendor": sub_vendor, "subsystem_device": sub_device,
            "header_type": self.header_type,
            "bars": [bar.to_json() for bar in self.bars],
            "capabilities": self.capabilities,
            "vendor_name": names.vendor_name(self.vendor) if names else None,
            "device_name": names.device_name(self.vendor, self.device_id) if names else None,
        }


class PciNames(Protocol):
    """What to_json needs from a name database (host.pciids.PciIds provides it)."""

    def vendor_name(self, vendor: int) -> str | None: ...

    def device_name(self, vendor: int, device: int) -> str | None: ...


def _io_size(readback: int) -> int:
    mask = readback & ~0x3 & 0xFFFFFFFF
    if mask >> 16 == 0:  # devices decoding only 16 I/O address bits read 0 above
        mask |= 0xFFFF0000
    return (~mask + 1) & 0xFFFFFFFF


def decode_bars(function: PciFunction) -> list[Bar]:
    """BARs from the original values (address) and the all-ones probe readbacks (size)."""
    count = BARS_PER_HEADER.get(function.header_type, 0)
    bars: list[Bar] = []
    index = 0
    while index < count:
        readback = function.bar_readbacks[index] if index < len(function.bar_readbacks) else 0
        original = function._u32(BAR0 + 4 * index)
        if readback & 0x1:  # I/O space
            if readback & ~0x3:
                bars.append(Bar(index, "io", False, original & ~0x3 & 0xFFFFFFFF,
                                _io_size(readback)))
            index += 1
            continue
        prefetchable = bool(readback & 0x8)
        if (readback >> 1) & 0x3 == 0x2 and index + 1 < count:  # 64-bit memory: a BAR pair
            high_readback = (function.bar_readbacks[index + 1]
                             if index + 1 < len(function.bar_readbacks) else 0)
            mask = high_readback << 32 | (readback & ~0xF & 0xFFFFFFFF)
            if mask:
                address = (function._u32(BAR0 + 4 * (index + 1)) << 32
                           | (original & ~0xF & 0xFFFFFFFF))
                size = (~mask + 1) & 0xFFFFFFFFFFFFFFFF
                bars.append(Bar(index, "mem64", prefetchable, address, size))
            index += 2
            continue
        mask = readback & ~0xF & 0xFFFFFFFF
        if mask:
            bars.append(Bar(index, "mem32", prefetchable, original & ~0xF & 0xFFFFFFFF,
                            (~mask + 1) & 0xFFFFFFFF))
        index += 1
    return bars


def function_from_fields(fields: dict[str, int], config: bytes) -> PciFunction:
    """A PciFunction from an unpacked PCI_FUNCTION frame (protocol.LAYOUTS): the
    config space comes with its trailing run of equal dwords cut to one, which is
    repeated back up to config_size."""
    size, sent = fields["config_size"], bytes(config)
    if (size not in (CONFIG_SPACE_LEGACY, CONFIG_SPACE_EXTENDED) or not sent
            or len(sent) % 4 or len(sent) > size):
        raise ValueError(f"PCI_FUNCTION {fields['bus']:02x}:{fields['device']:02x}."
                         f"{fields['function']}: config_size {size} with {len(sent)} bytes sent")
    return PciFunction(
        segment=fields["segment"], bus=fields["bus"], device=fields["device"],
        function=fields["function"], config=sent + sent[-4:] * ((size - len(sent)) // 4),
        bar_readbacks=tuple(fields[f"bar{i}_readback"] for i in range(6)),
        config_source=fields["config_source"],
    )


def capability_name(cap_id: int) -> str:
    return CAPABILITY_NAMES.get(cap_id, f"Capability 0x{cap_id:02x}")


def extended_capability_name(cap_id: int) -> str:
    return EXTENDED_CAPABILITY_NAMES.get(cap_id, f"Extended capability 0x{cap_id:04x}")
