"""The RISC-V guest on QEMU virt (TCG): every hart reports, the ISA it reports
agrees with the device tree QEMU built, and the run ends cleanly."""

from __future__ import annotations

import subprocess

import pytest

from contract.protocol import PROTOCOL_VERSION, Msg, WireArch
from contract.riscv64.exits import FinalStatus
from discovery.devicetree import parse_devicetree
from discovery.fingerprint import fingerprint_of
from discovery.harts import decode_hart, isa_string_letters
from discovery.inventory import Inventory
from testing.riscv_guest import QEMU, TIMEOUT, run_guest

pytestmark = pytest.mark.qemu

# misa has bits for privilege modes (S, U) that riscv,isa strings do not list.
PRIVILEGE_LETTERS = set("su")


def _devicetree(run):
    (frame,) = run.of_type(Msg.DEVICETREE)
    return parse_devicetree(frame.fields()[1])


@pytest.mark.parametrize("smp", [1, 4])
def test_every_hart_reports(smp):
    run = run_guest(smp=smp)
    assert run.status == 0, run.stderr
    hello = run.frames[0]
    assert hello.type == Msg.HELLO
    assert hello.fields()[0] == {"version": PROTOCOL_VERSION, "arch": WireArch.RISCV64}
    harts = [decode_hart(f.body) for f in run.of_type(Msg.HART)]
    assert sorted(h.hartid for h in harts) == list(range(smp))
    assert len(_devicetree(run).harts) == smp
    final = run.frames[-1]
    assert final.type == Msg.FINAL
    fields, _ = final.fields()
    assert fields["status"] == FinalStatus.COMPLETE
    assert fields["frames"] == len(run.frames) - 1
    for hart in harts:
        assert hart.xlen == 64
        assert {"mhartid", "misa", "mstatus", "mtvec"} <= set(hart.csr_names)
        assert "mstatush" not in hart.csr_names  # RV32 only: must trap on RV64
        assert "dcsr" not in hart.csr_names  # debug mode only


@pytest.mark.parametrize("cpu", ["rv64", "rv64,c=false,f=false,d=false,h=false"])
def test_misa_agrees_with_riscv_isa(cpu):
    run = run_guest(smp=2, cpu=cpu)
    assert run.status == 0, run.stderr
    isa_by_hart = {h.hartid: h.isa for h in _devicetree(run).harts}
    for hart in (decode_hart(f.body) for f in run.of_type(Msg.HART)):
        assert (set(hart.extensions) - PRIVILEGE_LETTERS
                == set(isa_string_letters(isa_by_hart[hart.hartid])))
    if "c=false" in cpu:
        assert "c" not in hart.extensions and "f" not in hart.extensions
        assert "fcsr" not in hart.csr_names or "f" in hart.extensions


NO_ZB = "rv64,zba=false,zbb=false,zbc=false,zbs=false"


def _dumped_isa(tmp_path, cpu: str) -> str:
    """Hart 0's riscv,isa as QEMU itself writes the device tree (dumpdtb: no guest runs)."""
    path = tmp_path / "virt.dtb"
    subprocess.run([QEMU, "-machine", f"virt,dumpdtb={path}", "-cpu", cpu, "-nographic"],
                   check=True, capture_output=True, timeout=TIMEOUT)
    (hart,) = [h for h in parse_devicetree(path.read_bytes()).harts if h.hartid == 0]
    return hart.isa


def test_fingerprint_tells_cpu_models_with_the_same_misa_apart(tmp_path):
    """rv64 with and without Zb* have one misa and the same ids: the fingerprint (the key of
    every store) must still differ, through the riscv,isa string QEMU gives each."""
    prints = {}
    for cpu in ("rv64", NO_ZB):
        run = run_guest(cpu=cpu)
        assert run.status == 0, run.stderr
        inventory = Inventory.from_frames(run.frames, board={"name": "virt"}, boot={})
        prints[cpu] = fingerprint_of(inventory, "virt")
        assert dict(prints[cpu].identity)["isa"] == _dumped_isa(tmp_path, cpu)
    first, second = prints.values()
    assert dict(first.identity)["misa"] == dict(second.identity)["misa"]
    assert first.digest != second.digest


def test_isa_string_letters():
    assert isa_string_letters("rv64imafdch_zicsr_zifencei") == "acdfhim"
    assert isa_string_letters("rv64gc") == "acdfim"


def test_extension_names_follow_the_isa_string():
    from discovery.riscv_extensions import extension_names

    named = dict(extension_names("rv64gc_zicsr_zba_zfoo"))
    assert list(named) == ["i", "m", "a", "f", "d", "c", "zicsr", "zba", "zfoo"]
    assert named["c"] == "compressed instructions" and named["zfoo"] == "?"
