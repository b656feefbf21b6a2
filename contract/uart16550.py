"""The 16550 UART (COM1) as data: port, register offsets, the bits we use."""

from __future__ import annotations

from contract.bits import Field, Register

COM1 = 0x3F8
CLOCK_HZ = 115200  # the divisor latch divides this
BAUD = 115200
FIFO_DEPTH = 16  # bytes the transmitter FIFO takes once LSR.THRE says it is empty

# Register offsets from the base port (DLL/DLM replace THR/IER while LCR.DLAB=1).
OFFSETS = {"THR": 0, "RBR": 0, "IER": 1, "DLL": 0, "DLM": 1, "FCR": 2, "LCR": 3, "MCR": 4, "LSR": 5}

LCR = Register("UART_LCR", (
    Field("WORD_LENGTH", 0, 2, "0b11 = 8 data bits"),
    Field("STOP_BITS", 2, meaning="0 = one stop bit"),
    Field("PARITY", 3, 3, "0 = none"),
    Field("DLAB", 7, meaning="divisor latch access"),
))
FCR = Register("UART_FCR", (
    Field("ENABLE", 0),
    Field("CLEAR_RX", 1),
    Field("CLEAR_TX", 2),
    Field("TRIGGER", 6, 2),
))
MCR = Register("UART_MCR", (Field("DTR", 0), Field("RTS", 1), Field("OUT2", 3)))
LSR = Register("UART_LSR", (
    Field("DR", 0, meaning="data ready: the receive FIFO holds a byte"),
    Field("THRE", 5, meaning="transmit holding register (FIFO) empty"),
))
IER = Register("UART_IER", (
    Field("RX_DATA", 0, meaning="interrupt on received data (trigger level or character timeout)"),
))
# Receive trigger level 3 = 14 bytes.  QEMU offers the chardev's input only up to
# the trigger level at a time: at level 0 (1 byte) every received byte would cost
# QEMU a main-loop round trip.  The receive interrupt (which only wakes an idle
# guest) comes at the level or after the FIFO's character timeout.
RX_TRIGGER_14_BYTES = 3


def asm_constants() -> dict[str, int]:
    consts = {f"UART_{name}": COM1 + offset for name, offset in OFFSETS.items()}
    for reg in (IER, LCR, FCR, MCR, LSR):
        consts.update(reg.asm_constants())
    divisor = CLOCK_HZ // BAUD
    consts.update(
        UART_COM1=COM1,
        UART_DIVISOR_LOW=divisor & 0xFF,
        UART_DIVISOR_HIGH=divisor >> 8,
        UART_FIFO_DEPTH=FIFO_DEPTH,
        UART_LCR_8N1=LCR.value(WORD_LENGTH=0b11, STOP_BITS=0, PARITY=0),
        UART_FCR_INIT=FCR.value(ENABLE=1, CLEAR_RX=1, CLEAR_TX=1, TRIGGER=RX_TRIGGER_14_BYTES),
        UART_MCR_INIT=MCR.value(DTR=1, RTS=1, OUT2=1),
        UART_IER_NONE=0,  # discovery is polled: no interrupts
    )
    return consts
