"""PCI configuration mechanism #1 and the config-space offsets the scan reads
(PCI Local Bus Spec 3.0 ch. 6; PCI-to-PCI Bridge Spec 1.2)."""

from __future__ import annotations

from contract import pci as config

from contract.bits import Field, Register

CONFIG_ADDRESS_PORT = 0xCF8
CONFIG_DATA_PORT = 0xCFC
CONFIG_ADDRESS = Register("PCI_ADDR", (
    Field("REGISTER", 2, 6, "dword index into the 256-byte space"),
    Field("FUNCTION", 8, 3),
    Field("DEVICE", 11, 5),
    Field("BUS", 16, 8),
    Field("ENABLE", 31),
))
COMMAND = Register("PCI_COMMAND", (
    Field("IO", 0, meaning="I/O space decoding"),
    Field("MEMORY", 1, meaning="memory space decoding"),
    Field("BUS_MASTER", 2, meaning="the device may start memory accesses (DMA)"),
))
BAR = Register("PCI_BAR", (
    Field("IO", 0, meaning="an I/O space BAR"),
    Field("IO_ADDRESS", 2, 30, "its I/O base, in dwords (x86 uses the low 16 bits)"),
))
HEADER_TYPE = Register("PCI_HEADER_TYPE", (
    Field("LAYOUT", 0, 7, "0 device, 1 PCI-to-PCI bridge, 2 CardBus bridge"),
    Field("MULTI_FUNCTION", 7),
))

# Config-space offsets the kernel reads (discovery/pci.py defines them; dword-aligned
# where read with 32-bit accesses).
OFFSETS = {
    "VENDOR_ID": config.VENDOR_ID,
    "COMMAND": config.COMMAND,
    "HEADER_TYPE": config.HEADER_TYPE,
    "BAR0": config.BAR0,
    "INTERRUPT_LINE": config.INTERRUPT_LINE,  # byte 0 of its dword: the 8259 line INTx was routed to
    "SECONDARY_BUS": config.SECONDARY_BUS,  # type 1 header
}
BARS_BY_LAYOUT = {0: 6, 1: 2}  # other layouts (CardBus): no BARs probed
CONFIG_SPACE_SIZE = 256
BUSES, DEVICES, FUNCTIONS = 256, 32, 8
NO_DEVICE_VENDOR = 0xFFFF


def asm_constants() -> dict[str, int]:
    consts: dict[str, int] = {}
    for reg in (CONFIG_ADDRESS, COMMAND, HEADER_TYPE, BAR):
        consts.update(reg.asm_constants())
    consts.update({f"PCI_{name}": off for name, off in OFFSETS.items()})
    consts.update(
        PCI_CONFIG_ADDRESS_PORT=CONFIG_ADDRESS_PORT,
        PCI_CONFIG_DATA_PORT=CONFIG_DATA_PORT,
        # The command register with I/O and memory decoding cleared.
        PCI_COMMAND_DECODE_OFF=0xFFFF & ~COMMAND.value(IO=1, MEMORY=1),
        # A byte register read through the aligned dword that holds it.
        PCI_HEADER_TYPE_DWORD=OFFSETS["HEADER_TYPE"] & ~3,
        PCI_HEADER_TYPE_SHIFT=(OFFSETS["HEADER_TYPE"] & 3) * 8,
        PCI_LAYOUT_DEVICE=0,
        PCI_LAYOUT_BRIDGE=1,
        PCI_DEVICE_BARS=BARS_BY_LAYOUT[0],
        PCI_BRIDGE_BARS=BARS_BY_LAYOUT[1],
        PCI_CONFIG_SPACE_SIZE=CONFIG_SPACE_SIZE,
        PCI_CONFIG_DWORDS=CONFIG_SPACE_SIZE // 4,
        PCI_DEVICES=DEVICES,
        PCI_BUS0_END=CONFIG_ADDRESS.value(ENABLE=1, BUS=1),  # config address past bus 0's devices
        PCI_FUNCTIONS=FUNCTIONS,
        PCI_NO_DEVICE_VENDOR=NO_DEVICE_VENDOR,
        PCI_BAR_PROBE=0xFFFFFFFF,
    )
    return consts
