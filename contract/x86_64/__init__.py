"""x86-64 hardware layouts (CPU, 16550 UART, PCI, ACPI, fw_cfg, APIC/PIC/PIT) as data.

`asm_constants()` gathers every constant the boot stage and kernel assemble
against; nothing here is typed a second time in assembly."""

from __future__ import annotations

from contract import uart16550 as uart
from contract.x86_64 import acpi, cpu, fwcfg, pci_io as pci, timers


def asm_constants() -> dict[str, int]:
    consts: dict[str, int] = {}
    for module in (cpu, uart, pci, acpi, fwcfg, timers):
        for name, value in module.asm_constants().items():
            if name in consts and consts[name] != value:
                raise ValueError(f"hardware constant {name} declared twice, with different values")
            consts[name] = value
    return consts
