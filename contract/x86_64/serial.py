"""COM1, where the PC board puts its 16550 (contract/uart16550.py is the chip):
I/O port 0x3F8 with registers one port apart, IRQ 4 on the master 8259, and the
PC's 1.8432 MHz UART clock."""

from __future__ import annotations

from contract import uart16550
from contract.constants import ConstantSet, collect

COM1 = 0x3F8
COM1_IRQ = 4
CLOCK_HZ = 1_843_200
BAUD = 115_200


def asm_constants() -> ConstantSet:
    divisor = uart16550.divisor(CLOCK_HZ, BAUD)
    return collect(__name__, uart16550.asm_constants(COM1, reg_shift=0), {
        "UART_DIVISOR_LOW": divisor & 0xFF,
        "UART_DIVISOR_HIGH": divisor >> 8,
    })
