"""The PC BIOS services and legacy hardware the boot stage uses, as data
(INT 13h extensions: EDD 3.0; INT 15h E820: ACPI 6.5 ch. 15; A20 gate)."""

from __future__ import annotations

INT13_CHECK_EXTENSIONS = 0x41  # AH: installation check, BX = INT13_EXTENSIONS_MAGIC in
INT13_EXTENSIONS_MAGIC = 0x55AA  # returned byte-swapped (0xAA55) when present
INT13_EXTENDED_READ = 0x42  # AH: read sectors described by a disk address packet
INT13_FEATURE_PACKET_ACCESS = 0x01  # CX bit: AH=42h..44h,47h,48h supported
DISK_ADDRESS_PACKET_SIZE = 16

E820_FUNCTION = 0xE820
E820_SMAP = 0x534D4150  # "SMAP", in EDX on the way in and EAX on the way out
E820_ATTRIBUTES_OFFSET = 20  # ACPI 3.0 extended attributes dword in a 24-byte entry
E820_ATTRIBUTES_VALID = 0x1  # preset, as ACPI asks, for BIOSes that return 20 bytes

A20_BIOS_ENABLE = 0x2401  # INT 15h AX: enable the A20 gate
A20_FAST_PORT = 0x92  # "system control port A"
A20_FAST_ENABLE = 0x02  # bit 1: A20 on
A20_FAST_RESET = 0x01  # bit 0: resets the machine; must be written as 0
A20_FAST_KEEP = 0xFF & ~A20_FAST_RESET  # AND mask that never writes the reset bit
# A word tested for wrap-around at 1 MiB: the boot sector's own signature word,
# no longer needed once the BIOS has booted us.
A20_PROBE = 0x7DFE
A20_PROBE_PATTERN = 0x4D4F  # any value other than the boot signature
HIGH_SEGMENT = 0xFFFF  # FFFF:(x + 0x10) is x + 1 MiB

BOOT_SIGNATURE = 0xAA55  # last word of the boot sector
BOOT_SIGNATURE_OFFSET = 510


def asm_constants() -> dict[str, int]:
    return {name: value for name, value in globals().items() if name.isupper()}
