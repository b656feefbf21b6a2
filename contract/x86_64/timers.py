"""Interrupt controllers and timers the probe watchdog uses, as data: the local
APIC (xAPIC MMIO, Intel SDM vol. 3A ch. 11), the two 8259 PICs and PIT channel 2
(the reference clock the APIC timer is calibrated against, gated through port
0x61 as on every PC since the AT).  The PICs are remapped and kept masked but for
COM1's receive interrupt, unmasked only to end an idle staying guest's hlt
(Intel 8259A data sheet; PC wiring: slave on master IRQ2)."""

from __future__ import annotations

from contract.protocol import STAY_IDLE_POLL_NS

from contract.bits import Field, Register

APIC_BASE_MSR = 0x1B
APIC_BASE_MSR_FIELDS = Register("APIC_BASE_MSR", (
    Field("ENABLE", 11, meaning="xAPIC globally on"),
))
LAPIC_BASE = 0xFEE0_0000  # xAPIC default; the kernel maps it uncached
# Register offsets from LAPIC_BASE (each a 32-bit register on a 16-byte boundary).
LAPIC_OFFSETS = {"TPR": 0x80, "EOI": 0xB0, "SVR": 0xF0, "LVT_TIMER": 0x320,
                 "TIMER_INITIAL": 0x380, "TIMER_CURRENT": 0x390, "TIMER_DIVIDE": 0x3E0}
LAPIC_SVR = Register("LAPIC_SVR", (
    Field("VECTOR", 0, 8, "spurious-interrupt vector"),
    Field("ENABLE", 8, meaning="APIC software enable"),
))
LAPIC_LVT = Register("LAPIC_LVT", (
    Field("VECTOR", 0, 8),
    Field("MASKED", 16),
    Field("TIMER_MODE", 17, 2, "0 = one-shot"),
))
# TIMER_DIVIDE encoding 0b0011: the timer counts the APIC bus clock divided by 16,
# so even a 4 GHz bus gives over a second of range in the 32-bit counter.
LAPIC_TIMER_DIVIDE_BY_16 = 0b0011
LAPIC_TIMER_MAX_COUNT = 0xFFFF_FFFF

PIC_MASTER_COMMAND, PIC_MASTER_DATA = 0x20, 0x21
PIC_SLAVE_COMMAND, PIC_SLAVE_DATA = 0xA0, 0xA1
PIC_ICW1 = 0x11  # initialisation; edge-triggered, cascaded, ICW4 follows
PIC_CASCADE_LINE = 2  # the master line the slave hangs on
PIC_ICW3_MASTER = 1 << PIC_CASCADE_LINE  # ICW3 to the master: a bit per line with a slave
PIC_ICW3_SLAVE = PIC_CASCADE_LINE  # ICW3 to the slave: its cascade identity
PIC_ICW4 = 0x01  # 8086/88 mode, normal (not automatic) EOI
PIC_EOI = 0x20  # OCW2: non-specific end of interrupt
PIC_LINES = 8
# The BIOS leaves the PICs on vectors 0x08 and 0x70, among the CPU exceptions; moved
# clear of them, of WATCHDOG_VECTOR (0x40) and of the APIC's spurious vector (0xFF).
PIC_MASTER_VECTOR, PIC_SLAVE_VECTOR = 0x30, 0x38
PIC_SPURIOUS_LINE = 7  # an 8259 answers a request that vanished before INTA as its IRQ7
PIC_MASK_ALL = 0xFF  # writing it to a data port masks every line of that PIC
COM1_IRQ = 4
COM1_VECTOR = PIC_MASTER_VECTOR + COM1_IRQ
IDLE_SPIN_NS = STAY_IDLE_POLL_NS  # an idle staying guest's polling before hlt (contract/protocol.py)

PIT_HZ = 1_193_182  # the PIT input clock (14.31818 MHz / 12)
PIT_CHANNEL2_DATA, PIT_COMMAND = 0x42, 0x43
# Command: channel 2, low then high byte, mode 0 (OUT goes high at terminal count), binary.
PIT_CHANNEL2_MODE0 = 0b10_11_000_0
PC_SPEAKER_PORT = 0x61
PC_SPEAKER = Register("PC_SPEAKER", (
    Field("GATE2", 0, meaning="PIT channel 2 counts while set"),
    Field("SPEAKER", 1, meaning="speaker output enabled (kept off)"),
    Field("OUT2", 5, meaning="PIT channel 2 output, read-only"),
))
# The calibration window: 11932 PIT ticks = 10.0001 ms.
CALIBRATION_PIT_TICKS = 11932
CALIBRATION_NS = CALIBRATION_PIT_TICKS * 1_000_000_000 // PIT_HZ


def asm_constants() -> dict[str, int]:
    consts: dict[str, int] = {f"LAPIC_{name}": offset for name, offset in LAPIC_OFFSETS.items()}
    for reg in (APIC_BASE_MSR_FIELDS, LAPIC_SVR, LAPIC_LVT, PC_SPEAKER):
        consts.update(reg.asm_constants())
    consts.update(
        APIC_BASE_MSR=APIC_BASE_MSR,
        LAPIC_BASE=LAPIC_BASE,
        LAPIC_TIMER_DIVIDE_BY_16=LAPIC_TIMER_DIVIDE_BY_16,
        LAPIC_TIMER_MAX_COUNT=LAPIC_TIMER_MAX_COUNT,
        PIC_MASTER_COMMAND=PIC_MASTER_COMMAND,
        PIC_MASTER_DATA=PIC_MASTER_DATA,
        PIC_SLAVE_COMMAND=PIC_SLAVE_COMMAND,
        PIC_SLAVE_DATA=PIC_SLAVE_DATA,
        PIC_ICW1=PIC_ICW1,
        PIC_ICW3_MASTER=PIC_ICW3_MASTER,
        PIC_ICW3_SLAVE=PIC_ICW3_SLAVE,
        PIC_CASCADE_LINE=PIC_CASCADE_LINE,
        PIC_ICW4=PIC_ICW4,
        PIC_EOI=PIC_EOI,
        PIC_MASTER_VECTOR=PIC_MASTER_VECTOR,
        PIC_SLAVE_VECTOR=PIC_SLAVE_VECTOR,
        PIC_MASTER_SPURIOUS_VECTOR=PIC_MASTER_VECTOR + PIC_SPURIOUS_LINE,
        PIC_SLAVE_SPURIOUS_VECTOR=PIC_SLAVE_VECTOR + PIC_SPURIOUS_LINE,
        PIC_MASK_ALL=PIC_MASK_ALL,
        PIC_LINES=PIC_LINES,
        PIC_MASK_ALL_BUT_COM1=PIC_MASK_ALL & ~(1 << COM1_IRQ),
        COM1_VECTOR=COM1_VECTOR,
        IDLE_SPIN_NS=IDLE_SPIN_NS,
        PIT_CHANNEL2_DATA=PIT_CHANNEL2_DATA,
        PIT_COMMAND=PIT_COMMAND,
        PIT_CHANNEL2_MODE0=PIT_CHANNEL2_MODE0,
        PC_SPEAKER_PORT=PC_SPEAKER_PORT,
        CALIBRATION_PIT_TICKS=CALIBRATION_PIT_TICKS,
        CALIBRATION_NS=CALIBRATION_NS,
    )
    return consts
