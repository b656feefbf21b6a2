"""How a RISC-V guest run can end, defined once for guest and host.

The guest leaves QEMU through sifive_test: pass = exit status 0; a failure
stores (code << 16) | 0x3333, so QEMU exits with status `code`.  Codes start at
2 because QEMU itself exits with 1 on its own errors.
"""

from __future__ import annotations

from enum import IntEnum


class GuestExit(IntEnum):
    BAD_DEVICETREE = 2
    NO_UART = 3
    NO_PCIE = 4
    DEVICETREE_TOO_BIG = 5
    FAULT = 6


EXIT_MESSAGES = {
    GuestExit.BAD_DEVICETREE: "the device tree QEMU passed in a1 is not a valid FDT "
                              "(bad magic or unknown token); check -dtb",
    GuestExit.NO_UART: "the device tree has no UART (no node compatible with \"ns16550a\"), "
                       "so the guest had nowhere to report; check -dtb / the machine",
    GuestExit.NO_PCIE: "the device tree has no PCIe host bridge (no node compatible with "
                       "\"pci-host-ecam-generic\"); check -dtb / the machine",
    GuestExit.DEVICETREE_TOO_BIG: "the device tree is larger than one frame body "
                                  "(protocol MAX_BODY); the guest cannot send it",
    GuestExit.FAULT: "the guest kernel took an unexpected trap (see the FAULT frame if any)",
}


class FinalStatus(IntEnum):
    """FINAL frame `status` values on RISC-V."""

    COMPLETE = 0
    HARTS_MISSING = 1  # fewer harts reported within the wait than /cpus lists


def explain_exit(status: int) -> str:
    """A sentence for a QEMU exit status produced by the RISC-V guest."""
    if status == 0:
        return "the guest finished and exited through sifive_test (pass)"
    try:
        return f"guest exit {status}: {EXIT_MESSAGES[GuestExit(status)]}"
    except ValueError:
        return f"QEMU exited with status {status}, which the RISC-V guest does not produce"


def asm_constants() -> dict[str, int]:
    consts = {f"EXIT_{e.name}": e.value for e in GuestExit}
    consts.update({f"FINAL_{s.name}": s.value for s in FinalStatus})
    return consts
