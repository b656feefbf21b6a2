"""PCI configuration space as both sides read it: register offsets, header
types, sizes and the ECAM address layout (PCI Local Bus Spec 3.0 ch. 6,
PCI-to-PCI Bridge Spec 1.2, PCIe Base Spec 7.2.2).  The kernels scan with
these offsets; the host decodes with them (discovery/pci.py)."""

from __future__ import annotations

# Configuration-space offsets (PCI 3.0 section 6.1).
VENDOR_ID, DEVICE_ID, COMMAND, STATUS = 0x00, 0x02, 0x04, 0x06
REVISION, PROG_IF, SUBCLASS, BASE_CLASS = 0x08, 0x09, 0x0A, 0x0B
HEADER_TYPE = 0x0E
BAR0 = 0x10
SUBSYSTEM_VENDOR, SUBSYSTEM_ID = 0x2C, 0x2E  # type 0 header
CAPABILITIES_POINTER = 0x34  # type 0 and 1 headers
CARDBUS_CAPABILITIES_POINTER = 0x14
CARDBUS_SUBSYSTEM_VENDOR, CARDBUS_SUBSYSTEM_ID = 0x40, 0x42
INTERRUPT_LINE, INTERRUPT_PIN = 0x3C, 0x3D
PRIMARY_BUS, SECONDARY_BUS, SUBORDINATE_BUS = 0x18, 0x19, 0x1A  # type 1 header
STATUS_CAPABILITIES_LIST = 1 << 4
HEADER_MULTI_FUNCTION = 0x80
EXTENDED_CAPABILITIES = 0x100
CONFIG_SPACE_LEGACY, CONFIG_SPACE_EXTENDED = 256, 4096
# ECAM: address = base + (bus << 20 | device << 15 | function << 12 | offset), PCIe base spec 7.2.2
ECAM_BUS_SHIFT, ECAM_DEVICE_SHIFT, ECAM_FUNCTION_SHIFT = 20, 15, 12

HEADER_NORMAL, HEADER_BRIDGE, HEADER_CARDBUS = 0, 1, 2
BARS_PER_HEADER = {HEADER_NORMAL: 6, HEADER_BRIDGE: 2, HEADER_CARDBUS: 0}

CAP_SUBSYSTEM_ID = 0x0D  # bridge subsystem vendor/device (PCI-to-PCI bridge spec 1.2)
