"""Boot switches: what the host turns on in a guest when it starts the board.

An x86-64 guest reads each as a QEMU fw_cfg file (`-fw_cfg name=FILE,string=1`),
a RISC-V guest as a word of its kernel command line (the device tree's
/chosen/bootargs).  qemu/boards.py sets them; each kernel's build emits the names
it looks for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BootSwitch:
    name: str
    fw_cfg_file: str  # x86-64
    bootarg: str  # riscv64
    meaning: str


# After FINAL, serve probe commands instead of leaving QEMU (so the host can also
# still query QEMU).
STAY = BootSwitch("stay", "opt/metaos/stay", "metaos.park",
                  "serve probe commands after FINAL instead of leaving QEMU")
# Accept privileged probes (ring 0 / M-mode), from the host's privileged families only.
PRIVILEGED = BootSwitch("privileged", "opt/metaos/privileged", "metaos.privileged",
                        "accept privileged probes (ring 0 / M-mode)")
SWITCHES = (STAY, PRIVILEGED)
