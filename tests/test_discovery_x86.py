"""x86-64 discovery end to end: our image booted in QEMU (TCG), its frames decoded
into an inventory, compared with what QEMU itself says (QMP query-pci, CPU model
expansion) and read back by the standard tools (lspci -F, lstopo)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arch import X86_64
from cli.schemas import inventory_document
from contract.frames import encode_frame
from contract.protocol import LAYOUTS, PROTOCOL_VERSION, Msg, WireArch
from contract.x86_64.memory_map import BOOT_SECTOR_BASE
from discovery.cpufeatures import LINUX_RULES, cpuid_flag_names
from discovery.cpuid import REGISTERS
from discovery.dumps import write_dump_dir
from discovery.inventory import Inventory
from discovery.verify import pci_differences
from kernel.guest import Guest, build_guest
from link.boot import BootError
from link.session import discover
from qemu.boards import board, kvm_problem
from qemu.errors import BoardError, UnknownCpuModel
from qemu.groundtruth import (
    cpu_model_expectation,
    linux_flags,
    query_pci,
    recognized_cpuid_flags,
    running_cpu_feature_words,
    running_cpu_property,
)
from testing.x86_boot_sectors import write_image
from toolchain.image import disk_image
from toolchain.x86asm import assemble_snippet

pytestmark = pytest.mark.qemu
REPO = Path(__file__).resolve().parents[1]

TOPOLOGIES = {
    "q35": ("q35", []),
    "q35-bridges-multifunction": ("q35", [
        "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=4",
        "-device", "nvme,bus=rp1,serial=metaos",
        "-device", "pcie-pci-bridge,id=br1,bus=pcie.0,addr=5",
        "-device", "e1000,bus=br1,addr=1",
        "-device", "virtio-rng-pci,bus=br1,addr=2",
        "-device", "virtio-net-pci,bus=pcie.0,addr=6.0,multifunction=on",
        "-device", "virtio-rng-pci,bus=pcie.0,addr=6.1",
    ]),
    "pc-pci-bridge": ("pc", [
        "-device", "pci-bridge,id=b1,chassis_nr=1,addr=5",
        "-device", "e1000,bus=b1,addr=2",
        "-device", "virtio-rng-pci,bus=b1,addr=3",
    ]),
}


@pytest.fixture(scope="module")
def guest(tmp_path_factory) -> Guest:
    return build_guest(X86_64, tmp_path_factory.mktemp("x86_64"))


def _staying(name: str, **overrides):
    return dataclasses.replace(board(name, accel="tcg", **overrides), stay=True)


def _discover_with(guest: Guest, chosen, query):
    """Discovery plus `query(machine)` run while the staying guest still runs."""
    found = {}
    run = discover(chosen, guest,
                   on_machine=lambda machine, _run: found.update(truth=query(machine)))
    return run, found["truth"]


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_pci_list_equals_qmp_query_pci(guest, topology):
    name, args = TOPOLOGIES[topology]
    run, truth = _discover_with(guest, _staying(name, qemu_args=args), query_pci)
    pci = Inventory.from_boot(run).to_json()["pci"]
    assert pci_differences(pci, truth) == []
    assert len(pci) == len(truth) >= 4
    if topology != "q35":  # the devices behind bridges really were found there
        behind = [f for f in pci if not f["bdf"].startswith("00:")]
        assert {f["device"] for f in behind} >= {0x100E, 0x1005}  # e1000, virtio-rng (legacy id)


@pytest.fixture(scope="module")
def qemu_flag_names() -> frozenset[str]:
    return recognized_cpuid_flags(board("q35").qemu_binary)


# Linux's amd.c sets these on AMD CPUs whatever CPUID says (arat: family 0x12 on;
# 3dnowprefetch: long mode), so they may come on top of the model's own bits.
LINUX_AMD_ADDITIONS = {"arat", "3dnowprefetch"}


@pytest.mark.parametrize("model", ["qemu64", "Haswell", "Skylake-Server", "EPYC", "max"])
def test_cpuid_agrees_with_qemu_cpu_model(guest, qemu_flag_names, model):
    def query(machine):
        return cpu_model_expectation(machine, model), running_cpu_feature_words(machine)

    run, (expected, words) = _discover_with(guest, _staying("q35", cpu=model), query)
    inventory = Inventory.from_boot(run)
    cpu = inventory.to_json()["cpu"]
    # The flags: QEMU's feature names for the model, as Linux names those bits.
    named = linux_flags(expected, qemu_flag_names)
    extra = LINUX_AMD_ADDITIONS if expected.vendor == "AuthenticAMD" else set()
    assert named <= set(cpu["flags"]) <= named | extra
    flags_line = dict(inventory.cpu.summary())["Flags"]  # the lscpu-like report
    assert flags_line.split() == cpu["flags"]
    if model == "EPYC":  # what Linux showed and the report lacked, on this command line
        assert {"arat", "3dnowprefetch", "npt"} <= set(flags_line.split())
    raw = {(e["leaf"], e["subleaf"]): e for e in cpu["cpuid"]}
    assert cpu["vendor"] == expected.vendor
    assert cpu["brand"] == expected.model_id
    assert (cpu["family"], cpu["model"], cpu["stepping"]) == (
        expected.family, expected.model, expected.stepping)
    assert raw[(0, 0)]["eax"] == expected.level
    assert raw[(0x80000000, 0)]["eax"] == expected.xlevel
    assert raw[(1, 0)]["eax"] == expected.signature
    assert {leaf for leaf, _ in raw if leaf <= expected.level} == set(range(expected.level + 1))
    for word, bits in words.items():  # every feature bit QEMU gives the CPU, the guest saw
        if word.leaf <= expected.level or 0x80000000 <= word.leaf <= expected.xlevel:
            entry = raw.get((word.leaf, word.subleaf or 0))  # subleaves past the max: none
            seen = entry[word.register.lower()] if entry else 0
            assert seen & bits == bits, word


@pytest.mark.skipif(bool(kvm_problem(X86_64)), reason=kvm_problem(X86_64) or "kvm")
def test_flags_agree_with_qemu_host_cpu_under_kvm(guest, qemu_flag_names):
    """-cpu host under KVM: the host's own features, as QEMU names them, are the flags."""
    host = dataclasses.replace(board("q35", accel="kvm", cpu="host"), stay=True)

    def query(machine):
        return cpu_model_expectation(machine, "host"), running_cpu_feature_words(machine)

    try:
        run, (expected, words) = _discover_with(guest, host, query)
    except BootError as error:
        if error.run.frames or "QEMU said:" not in str(error):
            raise
        pytest.skip("QEMU cannot start -cpu host on this KVM: "
                    + str(error).rsplit("QEMU said:", 1)[1].strip().splitlines()[0])
    table = Inventory.from_boot(run).cpu.table
    vendor, seen = table.vendor, set(cpuid_flag_names(table.get, table.vendor))
    given = set(cpuid_flag_names(_reader(words), vendor))
    if seen - given - {"ospke"}:  # OSPKE follows the guest's CR4.PKE, not QEMU
        pytest.skip("this KVM does not give the guest the CPUID QEMU set (KVM-PVM does not):"
                    f" the guest saw {sorted(seen - given)} too")
    assert given - seen == set()  # every feature bit QEMU set reached the decoder
    # Linux's vendor rules (discovery/cpufeatures.py LINUX_RULES, from amd.c/hygon.c/intel.c)
    # bound the difference between the bits and the flags.
    rules = [r for r in LINUX_RULES if vendor in r.vendors]
    named, flags = linux_flags(expected, qemu_flag_names), set(table.flags)
    assert flags - named <= {r.name for r in rules if r.sets}
    assert named - flags <= {r.name for r in rules if not r.sets}


def _reader(words: dict):
    """QEMU's feature words as a CPUID source (the other bits of each register zero)."""
    rows: dict[tuple[int, int], dict[str, int]] = {}
    for word, bits in words.items():
        row = rows.setdefault((word.leaf, word.subleaf or 0), dict.fromkeys(REGISTERS, 0))
        row[word.register.lower()] |= bits
    return lambda leaf, subleaf: rows.get((leaf, subleaf))


def test_centaur_leaves_are_enumerated_up_to_qemus_xlevel2(guest):
    # QEMU answers 0xC000_0000 with its xlevel2 (0 unless set): the guest sends the
    # leaves up to it, and the base leaf alone when the CPU has none.
    centaur = _staying("q35", cpu="qemu64,vendor=CentaurHauls,xlevel2=0xc0000002")
    run, xlevel2 = _discover_with(guest, centaur,
                                  lambda machine: running_cpu_property(machine, "xlevel2"))
    cpu = Inventory.from_boot(run).to_json()["cpu"]
    leaves = sorted(e["leaf"] for e in cpu["cpuid"] if e["leaf"] >= 0xC0000000)
    assert cpu["vendor"] == "CentaurHauls"
    assert leaves == list(range(0xC0000000, xlevel2 + 1)) and xlevel2 == 0xC0000002


def test_inventory_json_has_the_documented_shape(guest):
    run = discover(board("q35", accel="tcg"), guest)
    inventory = inventory_document(Inventory.from_boot(run))
    assert list(inventory) == ["schema", "arch", "board", "boot", "memory", "pci", "cpu", "acpi"]
    assert inventory["schema"] == "metaos.inventory/1" and inventory["arch"] == "x86_64"
    assert inventory["board"] == {"machine": "q35", "cpu": "qemu64", "smp": 1, "accel": "tcg",
                                  "accel_reason": "asked for", "qemu_args": []}
    assert inventory["boot"]["frames"] == len(run.frames) and inventory["boot"]["crc_errors"] == 0
    assert 0 < inventory["boot"]["seconds"] < 60
    usable = sum(r["length"] for r in inventory["memory"] if r["type"] == 1)
    assert 120 * 2**20 < usable <= 128 * 2**20  # -m 128, less firmware areas
    assert set(inventory["pci"][0]) == {
        "bdf", "vendor", "device", "class", "revision", "subsystem_vendor", "subsystem_device",
        "header_type", "bars", "capabilities", "vendor_name", "device_name"}
    assert set(inventory["cpu"]) == {"vendor", "brand", "family", "model", "stepping", "count",
                                     "flags", "cpuid"}
    assert {"pni", "lahf_lm", "sse2"} <= set(inventory["cpu"]["flags"])
    centaur = [e for e in inventory["cpu"]["cpuid"] if e["leaf"] >= 0xC0000000]
    assert [(e["leaf"], e["eax"]) for e in centaur] == [(0xC0000000, 0)]  # qemu64: no such range
    assert {t["signature"] for t in inventory["acpi"]} >= {"FACP", "APIC", "MCFG", "DSDT"}


def test_smp_count_from_madt(guest):
    run = discover(board("q35", accel="tcg", smp=4), guest)
    assert Inventory.from_boot(run).to_json()["cpu"]["count"] == 4


@pytest.mark.skipif(not shutil.which("lspci") or not shutil.which("lstopo-no-graphics"),
                    reason="pciutils / hwloc not installed (./run installs them)")
def test_dumps_are_read_by_lspci_and_lstopo(guest, tmp_path):
    name, args = TOPOLOGIES["q35-bridges-multifunction"]
    chosen = board(name, accel="tcg", smp=2, qemu_args=args)
    inventory = Inventory.from_boot(discover(chosen, guest))
    write_dump_dir(inventory, tmp_path)
    listing = subprocess.run(["lspci", "-F", str(tmp_path / "lspci.txt"), "-n"], check=True,
                             capture_output=True, text=True).stdout
    ids = {(line.split()[0], line.split()[2]) for line in listing.splitlines()}
    assert ids == {(f["bdf"], f"{f['vendor']:04x}:{f['device']:04x}")
                   for f in inventory.to_json()["pci"]}
    env = dict(os.environ, HWLOC_CPUID_PATH=str(tmp_path / "cpuid"), HWLOC_COMPONENTS="x86,-linux")
    topology = subprocess.run(["lstopo-no-graphics", "--of", "console", "--only", "pu"], env=env,
                              check=True, capture_output=True, text=True).stdout
    assert topology.count("PU") == 2


# -- bad input ------------------------------------------------------------------------

def _invoke(*args: str) -> subprocess.CompletedProcess:
    """A task as ./run runs it once the environment is ready."""
    return subprocess.run([sys.executable, "-m", "cli", *args],
                          check=False, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_unknown_board_lists_the_known_ones():
    done = _invoke("discover", "--board", "nosuchboard", "--accel", "tcg")
    assert done.returncode == 2
    assert "unknown board 'nosuchboard'" in done.stderr and "q35" in done.stderr


def test_unknown_cpu_model_surfaces_qemus_message(guest):
    with pytest.raises(UnknownCpuModel, match="no CPU model 'nosuchcpu'") as refused:
        discover(board("q35", accel="tcg", cpu="nosuchcpu"), guest)
    assert "unable to find CPU model 'nosuchcpu'" in refused.value.stderr  # QEMU's own words
    assert isinstance(refused.value, BoardError)  # the user's to change: ./run exits 2


def test_missing_qemu_says_what_to_install(guest):
    absent = dataclasses.replace(board("q35", accel="tcg"), binary="qemu-system-metaos-absent")
    with pytest.raises(BootError, match="apt-get install qemu-system-x86"):
        discover(absent, guest)


def _image(tmp_path: Path, code: str, blob: bytes = b"") -> Guest:
    data = "\n".join(f".byte {b}" for b in blob)
    sector = assemble_snippet(code + "\nblob:\n" + data + "\nblob_end:\n", bits=16,
                              address=BOOT_SECTOR_BASE)
    path = tmp_path / "guest.img"
    path.write_bytes(disk_image([sector.ljust(510, b"\0") + b"\x55\xaa"]))
    return Guest(X86_64, path, None, path, hex)


def test_silent_guest_times_out_with_last_frames_and_stderr(tmp_path):
    hello = encode_frame(Msg.HELLO, 0, LAYOUTS[Msg.HELLO].pack(version=PROTOCOL_VERSION,
                                                                arch=WireArch.X86_64))
    code = ("mov si, blob\nmov cx, blob_end - blob\nmov dx, 0x3f8\ncld\nrep outsb\n"
            "park:\ncli\nhlt\njmp park")
    warned = board("q35", accel="tcg", cpu="qemu64,+avx512f")  # TCG warns on stderr, runs on
    with pytest.raises(BootError) as failure:
        discover(board("q35", accel="tcg"), _image(tmp_path, code, b"SeaBIOS noise\r\n\0" + hello),
                 silence_timeout=2)
    report = str(failure.value)
    assert "went silent" in report and "HELLO" in report and "SeaBIOS noise" in report
    assert "qemu-system-x86_64" in report  # the command line, to reproduce by hand
    with pytest.raises(BootError, match="QEMU said:(.|\n)*avx512f"):  # stderr is carried
        discover(warned, _image(tmp_path, code, hello), silence_timeout=2)


def test_triple_fault_is_reported_not_hung(tmp_path):
    with pytest.raises(BootError, match="triple fault"):
        discover(board("q35", accel="tcg"), Guest(X86_64, write_image(tmp_path, "triple_fault"),
                                                  None, tmp_path, hex), silence_timeout=10)


def test_qemu_ended_by_a_signal_is_named_with_what_qemu_said():
    """A negative status is QEMU killed by a signal (subprocess's convention), not a guest
    exit status: the one line names the signal and QEMU's first complaint.  The stderr is
    QEMU 7.2's own, from `-cpu host` on a nested KVM that refuses MSR 0x10a."""
    from link.boot import Boot, BootReader

    said = ("qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n"
            "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion"
            " `ret == cpu->kvm_msr_buf->nmsrs' failed.\n")
    run = Boot(board("q35", cpu="host", accel="tcg"), exit_status=-6, stderr=said)
    error = BootReader(build_guest(X86_64), run).failure()
    assert error.message == "QEMU ended by SIGABRT: failed to set MSR 0x10a to 0x69"
    assert said.splitlines()[1] in str(error)  # the whole account stays behind --debug
