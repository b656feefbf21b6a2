"""The device tree: the blob the guest sends equals QEMU's own `dumpdtb` for the
same command line, except /chosen/rng-seed, which QEMU fills with fresh random
bytes on every start (normalised to zeros here); it decodes into the machine
the command line asked for; and a device tree without a UART or a PCIe host
bridge ends the guest with a clear message instead of a hang."""

from __future__ import annotations

import re
import subprocess

import fdt
import pytest

from contract.protocol import Msg
from contract.riscv64.exits import GuestExit, explain_exit
from discovery.devicetree import parse_devicetree
from testing.riscv_guest import QEMU, run_guest

pytestmark = pytest.mark.qemu

MEMORY_MIB = 256
DEVICES = ("-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1")


def _dumpdtb(tmp_path, smp: int, extra=("-m", f"{MEMORY_MIB}M", *DEVICES)) -> bytes:
    path = tmp_path / "qemu.dtb"
    subprocess.run([QEMU, "-machine", f"virt,dumpdtb={path}", "-bios", "none", "-smp", str(smp),
                    "-display", "none", "-nic", "none", *extra],
                   check=True, capture_output=True, timeout=60)
    blob = path.read_bytes()
    return blob[:int.from_bytes(blob[4:8], "big")]  # the dump is padded; totalsize ends it


def _without_rng_seed(blob: bytes) -> bytes:
    seed = fdt.parse_dtb(blob).get_property("rng-seed", "/chosen")
    raw = b"".join(word.to_bytes(4, "big") for word in seed.data)
    assert blob.count(raw) == 1
    return blob.replace(raw, bytes(len(raw)))


def _guest_blob(run) -> bytes:
    (frame,) = run.of_type(Msg.DEVICETREE)
    fields, blob = frame.fields()
    return blob


def test_guest_blob_equals_dumpdtb(tmp_path):
    run = run_guest(smp=2, memory=MEMORY_MIB, extra=DEVICES)
    assert run.status == 0, run.stderr
    assert _without_rng_seed(_guest_blob(run)) == _without_rng_seed(_dumpdtb(tmp_path, 2))


def test_decoded_harts_and_memory_match_the_command_line():
    run = run_guest(smp=3, memory=MEMORY_MIB, extra=DEVICES)
    tree = parse_devicetree(_guest_blob(run))
    assert [h.hartid for h in tree.harts] == [0, 1, 2]
    assert all(h.isa.startswith("rv64i") for h in tree.harts)
    assert [(m.base, m.size) for m in tree.memory] == [(0x80000000, MEMORY_MIB << 20)]
    assert tree.uart.base == 0x10000000 and tree.pcie.ecam_base == 0x30000000
    assert (tree.pcie.bus_first, tree.pcie.bus_last) == (0, 255)


def _doctored(tmp_path, node: str) -> str:
    """QEMU's own device tree with every node named `node@...` removed (via dtc)."""
    source = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", "-q", "-"],
                            input=_dumpdtb(tmp_path, 1, ()), capture_output=True, check=True).stdout
    text, count = re.subn(rf"\n(\t+){node}@[0-9a-f]+ {{.*?\n\1}};", "", source.decode(), flags=re.S)
    assert count == 1
    path = tmp_path / f"without-{node}.dtb"
    subprocess.run(["dtc", "-I", "dts", "-O", "dtb", "-q", "-o", str(path), "-"],
                   input=text.encode(), check=True)
    return str(path)


@pytest.mark.parametrize("node, code, words", [
    ("serial", GuestExit.NO_UART, "no UART"),
    ("pci", GuestExit.NO_PCIE, "no PCIe host bridge"),
])
def test_missing_device_gives_a_clear_message(tmp_path, node, code, words):
    run = run_guest(extra=("-dtb", _doctored(tmp_path, node)))
    assert run.status == code
    assert words in explain_exit(run.status)


def test_exit_messages_cover_every_code():
    assert "pass" in explain_exit(0)
    for code in GuestExit:
        assert explain_exit(code).startswith(f"guest exit {int(code)}:")
    assert "does not produce" in explain_exit(1)
