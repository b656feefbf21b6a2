"""The 16550 UART, the chip: its registers and the bits we use.

A chip provides the UART, a board says where it is (Tock's split): each board
module calls `asm_constants(base, reg_shift)` with its own placement, x86-64's
COM1 at I/O port 0x3F8 (contract/x86_64/serial.py), RISC-V virt's UART0 at the
address its device tree gives, so that kernel gets offsets (contract/riscv64/virt.py).

Register numbers and bits: National Semiconductor PC16550D datasheet (table II,
"Register Summary"), as QEMU models the chip (hw/char/serial.c).
"""

from __future__ import annotations

from contract.constants import ConstantSet, collect
from contract.layout import Bits, Register

# Register numbers (DLL/DLM replace RBR/THR and IER while LCR.DLAB=1); a board with
# reg-shift s puts register n at base + (n << s).
REGISTERS = {"RBR": 0, "THR": 0, "DLL": 0, "IER": 1, "DLM": 1, "IIR": 2, "FCR": 2, "LCR": 3,
             "MCR": 4, "LSR": 5, "MSR": 6, "SCR": 7}
FIFO_DEPTH = 16  # bytes the transmitter FIFO takes once LSR.THRE says it is empty

LCR = Register("UART_LCR", (
    Bits("WORD_LENGTH", 0, 2, "0b11 = 8 data bits"),
    Bits("STOP_BITS", 2, meaning="0 = one stop bit"),
    Bits("PARITY", 3, 3, "0 = none"),
    Bits("BREAK", 6),
    Bits("DLAB", 7, meaning="divisor latch access"),
), width=8)
FCR = Register("UART_FCR", (
    Bits("ENABLE", 0),
    Bits("CLEAR_RX", 1),
    Bits("CLEAR_TX", 2),
    Bits("TRIGGER", 6, 2, "receive trigger level: 1, 4, 8, 14 bytes"),
), width=8)
MCR = Register("UART_MCR", (Bits("DTR", 0), Bits("RTS", 1), Bits("OUT1", 2),
                            Bits("OUT2", 3, meaning="on a PC, gates the interrupt line"),
                            Bits("LOOP", 4)), width=8)
LSR = Register("UART_LSR", (
    Bits("DR", 0, meaning="data ready: the receive FIFO holds a byte"),
    Bits("OE", 1, meaning="overrun: a received byte was lost"),
    Bits("THRE", 5, meaning="transmit holding register (FIFO) empty"),
    Bits("TEMT", 6, meaning="transmitter empty"),
), width=8)
IER = Register("UART_IER", (
    Bits("RX_DATA", 0, meaning="interrupt on received data (trigger level or character timeout)"),
    Bits("THR_EMPTY", 1),
    Bits("LINE_STATUS", 2),
    Bits("MODEM_STATUS", 3),
), width=8)
# Receive trigger level 3 = 14 bytes.  QEMU offers the chardev's input only up to
# the trigger level at a time: at level 0 (1 byte) every received byte would cost
# QEMU a main-loop round trip.  The receive interrupt (which only wakes an idle
# guest) comes at the level or after the FIFO's character timeout.
RX_TRIGGER_14_BYTES = 3
LCR_8N1 = LCR.pack(WORD_LENGTH=0b11, STOP_BITS=0, PARITY=0)
FCR_INIT = FCR.pack(ENABLE=1, CLEAR_RX=1, CLEAR_TX=1, TRIGGER=RX_TRIGGER_14_BYTES)
MCR_INIT = MCR.pack(DTR=1, RTS=1, OUT2=1)


def divisor(clock_hz: int, baud: int) -> int:
    """The divisor latch value: the chip divides its input clock by 16 x divisor."""
    return clock_hz // (16 * baud)


def asm_constants(base: int, reg_shift: int = 0) -> ConstantSet:
    """`UART_<REGISTER>` at `base` with the board's `reg_shift`, and the bits and
    values the kernels use."""
    return collect(
        __name__, IER, LCR, FCR, MCR, LSR,
        {f"UART_{name}": base + (number << reg_shift) for name, number in REGISTERS.items()},
        {
            "UART_FIFO_DEPTH": FIFO_DEPTH,
            "UART_LCR_8N1": LCR_8N1,
            "UART_FCR_INIT": FCR_INIT,
            "UART_MCR_INIT": MCR_INIT,
            "UART_IER_NONE": 0,  # discovery is polled: no interrupts
        },
    )
