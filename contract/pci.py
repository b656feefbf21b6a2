"""PCI configuration space as both sides read it, declared once: the three header
layouts, the registers' bits, and the ECAM address layout (PCI Local Bus Spec 3.0
ch. 6, PCI-to-PCI Bridge Spec 1.2 ch. 3, PC Card Standard 8.0 (CardBus bridge),
PCIe Base Spec 7.2.2).  Both kernels scan with these offsets (x86-64 through port
I/O, contract/x86_64/pci_io.py; RISC-V through ECAM); the host decodes with them
(discovery/pci.py)."""

from __future__ import annotations

from enum import IntEnum

from contract.constants import ConstantSet, collect, enum_constants
from contract.layout import Bits, Record, Register

# The first 16 bytes, the same in every header layout (PCI 3.0 figure 6-1).
_COMMON = (
    ("vendor_id", "H"), ("device_id", "H"), ("command", "H"), ("status", "H"),
    ("revision", "B"), ("prog_if", "B"), ("subclass", "B"), ("base_class", "B"),
    ("cache_line_size", "B"), ("latency_timer", "B"), ("header_type", "B"), ("bist", "B"),
)
# Header type 0: a device (PCI 3.0 figure 6-1).
DEVICE = Record("PCI", _COMMON + tuple((f"bar{i}", "I") for i in range(6)) + (
    ("cardbus_cis", "I"), ("subsystem_vendor", "H"), ("subsystem_id", "H"),
    ("expansion_rom", "I"), ("capabilities_pointer", "B"), ("_reserved", "7x"),
    ("interrupt_line", "B"), ("interrupt_pin", "B"), ("min_gnt", "B"), ("max_lat", "B"),
))
# Header type 1: a PCI-to-PCI bridge (PCI-to-PCI Bridge Spec 1.2 figure 3-2).
BRIDGE = Record("PCI_BRIDGE", _COMMON + (
    ("bar0", "I"), ("bar1", "I"),
    ("primary_bus", "B"), ("secondary_bus", "B"), ("subordinate_bus", "B"),
    ("secondary_latency_timer", "B"), ("io_base", "B"), ("io_limit", "B"),
    ("secondary_status", "H"), ("memory_base", "H"), ("memory_limit", "H"),
    ("prefetchable_base", "H"), ("prefetchable_limit", "H"),
    ("prefetchable_base_upper", "I"), ("prefetchable_limit_upper", "I"),
    ("io_base_upper", "H"), ("io_limit_upper", "H"), ("capabilities_pointer", "B"),
    ("_reserved", "3x"), ("expansion_rom", "I"), ("interrupt_line", "B"),
    ("interrupt_pin", "B"), ("bridge_control", "H"),
))
# Header type 2: a CardBus bridge (PC Card Standard 8.0 vol. 10; Linux pci_regs.h PCI_CB_*).
CARDBUS = Record("PCI_CARDBUS", _COMMON + (
    ("socket_base", "I"), ("capabilities_pointer", "B"), ("_reserved", "x"),
    ("secondary_status", "H"), ("pci_bus", "B"), ("cardbus_bus", "B"),
    ("subordinate_bus", "B"), ("cardbus_latency_timer", "B"),
    ("memory_base0", "I"), ("memory_limit0", "I"), ("memory_base1", "I"),
    ("memory_limit1", "I"), ("io_base0", "I"), ("io_limit0", "I"), ("io_base1", "I"),
    ("io_limit1", "I"), ("interrupt_line", "B"), ("interrupt_pin", "B"),
    ("bridge_control", "H"), ("subsystem_vendor", "H"), ("subsystem_id", "H"),
    ("legacy_mode_base", "I"),
))


class HeaderLayout(IntEnum):
    """Header type bits 6:0."""

    DEVICE = 0
    BRIDGE = 1
    CARDBUS = 2


HEADERS = {HeaderLayout.DEVICE: DEVICE, HeaderLayout.BRIDGE: BRIDGE,
           HeaderLayout.CARDBUS: CARDBUS}
# The BARs each layout has (the CardBus bridge's socket base is not sized as a BAR).
BARS_PER_HEADER = {layout: sum(1 for name in record.names if name.startswith("bar"))
                   for layout, record in HEADERS.items()}

COMMAND_BITS = Register("PCI_COMMAND", (
    Bits("IO", 0, meaning="I/O space decoding"),
    Bits("MEMORY", 1, meaning="memory space decoding"),
    Bits("BUS_MASTER", 2, meaning="the device may start memory accesses (DMA)"),
), width=16)
COMMAND_DECODE = COMMAND_BITS.pack(IO=1, MEMORY=1)
STATUS_BITS = Register("PCI_STATUS", (
    Bits("CAPABILITIES_LIST", 4, meaning="a capability list starts at capabilities_pointer"),
), width=16)
HEADER_TYPE_BITS = Register("PCI_HEADER_TYPE", (
    Bits("LAYOUT", 0, 7, "0 device, 1 PCI-to-PCI bridge, 2 CardBus bridge"),
    Bits("MULTI_FUNCTION", 7, meaning="function 0 says: functions 1-7 may exist"),
), width=8)
BAR_BITS = Register("PCI_BAR", (
    Bits("IO", 0, meaning="an I/O space BAR"),
    Bits("IO_ADDRESS", 2, 30, "its I/O base, in dwords (x86 uses the low 16 bits)"),
), width=32)
BAR_PROBE = 0xFFFF_FFFF  # the size probe writes all-ones and reads back the size mask
# A bridge's bus numbers, the dword at primary_bus read as one register.
BUS_NUMBERS = Register("PCI_BUS_NUMBERS", tuple(
    Bits(name.upper(), 8 * (BRIDGE.offsets[name] - BRIDGE.offsets["primary_bus"]), 8)
    for name in ("primary_bus", "secondary_bus", "subordinate_bus", "secondary_latency_timer")
), width=32)

# ECAM: address = base + (bus << 20 | device << 15 | function << 12 | offset), PCIe 7.2.2.
ECAM = Register("ECAM", (
    Bits("OFFSET", 0, 12), Bits("FUNCTION", 12, 3), Bits("DEVICE", 15, 5), Bits("BUS", 20, 8),
), width=28)
BUSES, DEVICES, FUNCTIONS = (ECAM.field(f).max + 1 for f in ("BUS", "DEVICE", "FUNCTION"))
NO_DEVICE_VENDOR = 0xFFFF  # what an absent function's vendor id reads
CONFIG_SPACE_LEGACY, CONFIG_SPACE_EXTENDED = 256, 4096
EXTENDED_CAPABILITIES = CONFIG_SPACE_LEGACY  # the PCIe extended capability list starts here
CAP_SUBSYSTEM_ID = 0x0D  # bridge subsystem vendor/device (PCI-to-PCI bridge spec 1.2)

# The host reads single fields by offset (discovery/pci.py, qemu/groundtruth.py).
VENDOR_ID, DEVICE_ID, COMMAND, STATUS, REVISION, PROG_IF, SUBCLASS, BASE_CLASS, HEADER_TYPE = (
    DEVICE.offsets[f] for f in ("vendor_id", "device_id", "command", "status", "revision",
                                "prog_if", "subclass", "base_class", "header_type"))
BAR0, SUBSYSTEM_VENDOR, SUBSYSTEM_ID, CAPABILITIES_POINTER, INTERRUPT_LINE, INTERRUPT_PIN = (
    DEVICE.offsets[f] for f in ("bar0", "subsystem_vendor", "subsystem_id",
                                "capabilities_pointer", "interrupt_line", "interrupt_pin"))
PRIMARY_BUS, SECONDARY_BUS, SUBORDINATE_BUS = (
    BRIDGE.offsets[f] for f in ("primary_bus", "secondary_bus", "subordinate_bus"))
CARDBUS_CAPABILITIES_POINTER, CARDBUS_SUBSYSTEM_VENDOR, CARDBUS_SUBSYSTEM_ID = (
    CARDBUS.offsets[f] for f in ("capabilities_pointer", "subsystem_vendor", "subsystem_id"))
STATUS_CAPABILITIES_LIST = STATUS_BITS.field("CAPABILITIES_LIST").mask
HEADER_MULTI_FUNCTION = HEADER_TYPE_BITS.field("MULTI_FUNCTION").mask
HEADER_NORMAL, HEADER_BRIDGE, HEADER_CARDBUS = HeaderLayout
ECAM_BUS_SHIFT, ECAM_DEVICE_SHIFT, ECAM_FUNCTION_SHIFT = (
    ECAM.field(f).shift for f in ("BUS", "DEVICE", "FUNCTION"))


def asm_constants() -> ConstantSet:
    return collect(
        __name__, DEVICE, BRIDGE, CARDBUS, COMMAND_BITS, STATUS_BITS, HEADER_TYPE_BITS,
        BAR_BITS, BUS_NUMBERS, ECAM, enum_constants("PCI_LAYOUT", HeaderLayout),
        {
            "PCI_DEVICE_BARS": BARS_PER_HEADER[HeaderLayout.DEVICE],
            "PCI_BRIDGE_BARS": BARS_PER_HEADER[HeaderLayout.BRIDGE],
            "PCI_COMMAND_DECODE": COMMAND_DECODE,
            # the 16-bit command register with I/O and memory decoding cleared
            "PCI_COMMAND_DECODE_OFF": 0xFFFF & ~COMMAND_DECODE,
            "PCI_BAR_PROBE": BAR_PROBE,
            "PCI_DEVICES": DEVICES,
            "PCI_FUNCTIONS": FUNCTIONS,
            "PCI_NO_DEVICE_VENDOR": NO_DEVICE_VENDOR,
            "PCI_CONFIG_SPACE_LEGACY": CONFIG_SPACE_LEGACY,
            "PCI_CONFIG_SPACE_EXTENDED": CONFIG_SPACE_EXTENDED,
        },
    )
