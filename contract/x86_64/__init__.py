"""x86-64 hardware layouts (CPU, 16550 UART, PCI, ACPI, fw_cfg, APIC/PIC/PIT) as data.

`asm_constants()` gathers every constant of these modules the boot stage and
kernel assemble against; nothing here is typed a second time in assembly."""

from __future__ import annotations

from contract import acpi as acpi_tables
from contract import pci as pci_config
from contract.constants import ConstantSet
from contract.x86_64 import acpi, cpu, exceptions, fwcfg, serial, timers
from contract.x86_64 import pci_io as pci


def asm_constants() -> ConstantSet:
    result = ConstantSet()
    for module in (cpu, exceptions, serial, pci_config, pci, acpi_tables, acpi, fwcfg, timers):
        result.add(module.__name__, module.asm_constants())
    return result
