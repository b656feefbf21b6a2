"""PCI configuration mechanism #1, the PC's port-I/O way into config space (PCI
Local Bus Spec 3.0 section 3.2.2.3.2): write an address to 0xCF8, move the
dword at 0xCFC.  It reaches the 256-byte legacy space only; the offsets, header
layouts and BAR counts are PCI's own (contract/pci.py)."""

from __future__ import annotations

from contract import pci
from contract.constants import ConstantSet, collect
from contract.layout import Bits, Register

CONFIG_ADDRESS_PORT = 0xCF8
CONFIG_DATA_PORT = 0xCFC
CONFIG_ADDRESS = Register("PCI_ADDR", (
    Bits("REGISTER", 2, 6, "dword index into the 256-byte space"),
    Bits("FUNCTION", 8, 3),
    Bits("DEVICE", 11, 5),
    Bits("BUS", 16, 8),
    Bits("ENABLE", 31),
), width=32)


def asm_constants() -> ConstantSet:
    return collect(__name__, CONFIG_ADDRESS, {
        "PCI_CONFIG_ADDRESS_PORT": CONFIG_ADDRESS_PORT,
        "PCI_CONFIG_DATA_PORT": CONFIG_DATA_PORT,
        # The header type byte, read through the aligned dword that holds it.
        "PCI_HEADER_TYPE_DWORD": pci.HEADER_TYPE & ~3,
        "PCI_HEADER_TYPE_SHIFT": (pci.HEADER_TYPE & 3) * 8,
        "PCI_CONFIG_DWORDS": pci.CONFIG_SPACE_LEGACY // 4,
        "PCI_BUS0_END": CONFIG_ADDRESS.pack(ENABLE=1, BUS=1),  # config address past bus 0's devices
    })
