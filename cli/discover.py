"""What `./run build`, `discover`, `demo`, `boot` and `console` do: build the guest,
boot a board, and show what it said (the report, the inventory as JSON, frames).

This module is imported by every one of those commands, so it imports only what
they all use; each command loads the rest itself.  `./run discover` must not pay
for the probe layer, the semantic core or their engines (Z3, Unicorn, keystone).
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable
from pathlib import Path

from arch import Arch
from cli import arguments
from cli.errors import Failure
from cli.schemas import inventory_document
from kernel.guest import Guest, build_guest
from qemu.boards import Board


def build(arch: str | Arch = "x86_64") -> list[Path]:
    """Assemble the guest for `arch`; the files written."""
    guest = build_guest(arguments.arch(arch))
    return [path for path in (guest.image, guest.kernel, guest.elf) if path]


def _discover(board: Board, on_frame: Callable | None = None,
              on_machine: Callable | None = None):
    """Build and boot; (guest, run).  A failed boot raises BootError with its report."""
    from link.session import discover

    guest = build_guest(board.arch)
    return guest, discover(board, guest, on_frame=on_frame, on_machine=on_machine)


def discover(board: Board, json: str | None = None, dump_dir: str | None = None,
             verify: bool = False) -> None:
    """Boot, discover, print the report (or the inventory as JSON to stdout with json="-");
    also write the JSON to a file, the dumps, and check PCI against QEMU's own list."""
    from discovery.inventory import Inventory

    # refused before the boot, not after it
    arguments.output(json, "--json")
    arguments.output_folder(dump_dir, "--dump-dir")
    truth: list = []
    on_machine = None
    if verify:
        from dataclasses import replace

        from qemu.groundtruth import query_pci

        board = replace(board, stay=True)

        def on_machine(machine, _run):
            truth.extend(query_pci(machine))

    _, run = _discover(board, on_machine=on_machine)
    inventory = Inventory.from_boot(run)
    if json == "-":
        print(jsonlib.dumps(inventory_document(inventory), indent=2))
    else:
        from cli.report import render

        render(inventory)
        if json:
            Path(json).write_text(jsonlib.dumps(inventory_document(inventory), indent=2))
            print(f"inventory written to {json}")
    if dump_dir:
        from discovery.dumps import write_dump_dir

        write_dump_dir(inventory, dump_dir)
        print(f"dumps written to {dump_dir} (lspci -F {dump_dir}/lspci.txt; "
              f"HWLOC_CPUID_PATH={dump_dir}/cpuid HWLOC_COMPONENTS=x86,-linux lstopo)")
    if verify:
        from discovery.verify import pci_differences

        differences = pci_differences(inventory.to_json()["pci"], truth)
        if differences:
            print("verify: the guest's PCI list differs from QMP query-pci:")
            for line in differences:
                print("  " + line)
            raise Failure(f"the guest's PCI list differs from QMP query-pci in {len(differences)}"
                          " places (listed above); report it with the --json inventory")
        print(f"verify: the guest's {len(truth)} PCI functions equal QMP query-pci")


def boot(board: Board, hex_bodies: bool = False) -> None:
    """Boot and print every decoded frame as it arrives, then the run's counts."""
    from link.describe import describe

    symbolize = build_guest(board.arch).symbolize
    _, run = _discover(board, on_frame=lambda f: print(describe(f, symbolize, hex_bodies),
                                                       flush=True))
    print(f"-- {len(run.frames)} frames, {run.crc_errors} CRC errors, {run.lost_frames} lost, "
          f"FINAL after {run.seconds:.3f} s, QEMU exit status {run.exit_status}")


def console(board: Board, hex_bodies: bool = False) -> None:
    """Frames live as they arrive, the text outside frames, the counts."""
    from link.describe import describe

    symbolize = build_guest(board.arch).symbolize
    _, run = _discover(board, on_frame=lambda f: print(describe(f, symbolize, hex_bodies),
                                                       flush=True))
    if run.noise.strip():
        print("-- text outside frames:\n" + run.noise.strip())
    print(f"-- {len(run.frames)} frames, {run.crc_errors} rejected, {run.lost_frames} lost")


def replay(arch: str | Arch, capture: str, hex_bodies: bool = False) -> None:
    """Decode a raw serial capture (e.g. from QEMU's -serial file:X) as the console would."""
    from contract.frames import FrameDecoder
    from link.describe import describe

    data = Path(capture).read_bytes()  # a missing or unreadable file ends in one line
    guest: Guest = build_guest(arguments.arch(arch))
    decoder = FrameDecoder()
    for frame in decoder.feed(data):
        print(describe(frame, guest.symbolize, hex_bodies))
    if decoder.noise_text.strip():
        print("-- text outside frames:\n" + decoder.noise_text.strip())
    print(f"-- {decoder.frames} frames, {decoder.crc_errors} rejected, {decoder.lost} lost")

