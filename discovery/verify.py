"""The guest's PCI list against QEMU's own (qemu.groundtruth.query_pci).

Used by `./run discover --verify` and by the boot tests.  Every field QEMU
knows is compared; where it cannot know one (revision and prog-if on a machine
without ECAM, subsystem IDs of bridges, addresses of BARs it reports unmapped)
only what it does know is compared.
"""

from __future__ import annotations

from typing import Any


def _bar_key(bar: dict[str, Any]) -> tuple:
    return bar["index"], bar["kind"], bar["prefetchable"], bar["size"]


def _shown(value: Any) -> str:
    return f"{value:#x}" if isinstance(value, int) else repr(value)


def _function_differences(guest: dict[str, Any], truth: dict[str, Any]) -> list[str]:
    where = guest["bdf"]
    problems = []

    def compare(what: str, ours: Any, theirs: Any) -> None:
        if theirs is not None and ours != theirs:
            problems.append(f"{where}: {what} is {_shown(ours)}, QEMU says {_shown(theirs)}")

    compare("vendor", guest["vendor"], truth["vendor"])
    compare("device", guest["device"], truth["device"])
    compare("class", guest["class"] >> 8, truth["class_subclass"])
    compare("class (24-bit)", guest["class"], truth["class"])
    compare("revision", guest["revision"], truth["revision"])
    if not truth["is_bridge"]:
        compare("subsystem vendor", guest["subsystem_vendor"], truth["subsystem_vendor"])
        compare("subsystem device", guest["subsystem_device"], truth["subsystem_device"])
    ours = sorted(_bar_key(b) for b in guest["bars"])
    theirs = sorted(_bar_key(b) for b in truth["bars"])
    if ours != theirs:
        problems.append(f"{where}: BARs (index, kind, prefetchable, size) are {ours}, "
                        f"QEMU says {theirs}")
    addresses = {b["index"]: b["address"] for b in guest["bars"]}
    for bar in truth["bars"]:
        if bar["address"] is not None and addresses.get(bar["index"]) not in (None, bar["address"]):
            problems.append(f"{where}: BAR {bar['index']} at {addresses[bar['index']]:#x}, "
                            f"QEMU says {bar['address']:#x}")
    return problems


def pci_differences(guest: list[dict[str, Any]], truth: list[dict[str, Any]]) -> list[str]:
    """Every difference between the guest's PCI functions (inventory JSON "pci")
    and QEMU's (query_pci); an empty list when they agree."""
    ours = {f["bdf"]: f for f in guest}
    theirs = {f["bdf"]: f for f in truth}
    problems = [f"{bdf}: QEMU has it, the guest did not report it"
                for bdf in sorted(theirs.keys() - ours.keys())]
    problems += [f"{bdf}: the guest reported it, QEMU has no such function"
                 for bdf in sorted(ours.keys() - theirs.keys())]
    for bdf in sorted(ours.keys() & theirs.keys()):
        problems += _function_differences(ours[bdf], theirs[bdf])
    return problems
