"""The command line as a user meets it: ./run and its tasks, end to end (TCG)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from arch import X86_64
from contract.frames import FrameDecoder
from kernel.guest import build_guest

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(REPO / "run"), *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    if check and done.returncode != 0:
        raise AssertionError(f"./run {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


@pytest.mark.qemu
def test_boot_shows_every_frame_from_hello_to_final():
    lines = run("boot", "--accel", "tcg").stdout.splitlines()
    frames = [line for line in lines if not line.startswith("--")]
    assert "HELLO" in frames[0] and "FINAL" in frames[-1]
    assert [int(line.split()[0]) for line in frames] == list(range(len(frames)))  # seq numbers
    assert f"-- {len(frames)} frames, 0 CRC errors, 0 lost" in lines[-1]


@pytest.mark.qemu
def test_discover_json_is_the_inventory():
    inventory = json.loads(run("discover", "--accel", "tcg", "--json", "-").stdout)
    assert inventory["schema"] == "metaos.inventory/1"
    assert inventory["board"]["machine"] == "q35" and inventory["pci"]


@pytest.mark.qemu
@pytest.mark.parametrize("arch, extra", [
    ("x86_64", "-device pcie-root-port,id=rp1,chassis=1 -device nvme,bus=rp1,serial=m"),
    ("riscv64", "-device pcie-root-port,id=rp1,chassis=1 -device nvme,bus=rp1,serial=m"),
])
def test_verify_agrees_with_qmp(arch, extra):
    done = run("discover", "--arch", arch, "--accel", "tcg", "--verify", "--qemu-args", extra)
    assert "equal QMP query-pci" in done.stdout


@pytest.mark.qemu
def test_console_replays_a_capture_and_counts_corruption(tmp_path):
    """A raw capture made by QEMU itself (-serial file:), one byte flipped."""
    guest = build_guest(X86_64, tmp_path / "build")
    capture = tmp_path / "serial.raw"
    subprocess.run(["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-display", "none",
                    "-nic", "none", "-no-reboot", "-serial", f"file:{capture}",
                    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                    "-drive", f"file={guest.image},format=raw"], timeout=60)
    raw = bytearray(capture.read_bytes())
    clean = FrameDecoder()
    clean.feed(bytes(raw))
    raw[len(raw) // 2] ^= 0x40
    capture.write_bytes(raw)
    lines = run("console", "--replay", str(capture)).stdout.splitlines()
    assert f"-- {clean.frames - 1} frames, 1 rejected" in lines[-1]
    assert "HELLO" in lines[0]


def test_unknown_arch_and_board_are_clear_errors():
    done = run("discover", "--board", "virt", "--arch", "x86_64", check=False)
    assert done.returncode == 2 and "pass --arch riscv64" in done.stderr


def test_sem_tasks_take_the_issue_spelling(tmp_path):
    db = str(tmp_path / "metaos.db")
    run("sem", "add", "sem/library/hackers_delight.py", "--db", db)
    shown = run("sem", "show", "p09", "--view", "c", "--db", db).stdout
    assert "int32_t" in shown or "uint32_t" in shown


@pytest.mark.qemu
def test_market_runs_boards_writes_its_schema_and_every_entry_is_in_the_verified_ledger(tmp_path):
    db, report = tmp_path / "m.db", tmp_path / "market.json"
    run("market", "--boards", "qemu64,haswell", "--routines", "p01", "--seconds", "4",
        "--db", str(db), "--json", str(report), "--plot", str(tmp_path / "m.png"))
    doc = json.loads(report.read_text())
    assert doc["schema"] == "metaos.market/1" and doc["redundant_experiments"] == 0
    assert {a["board"] for a in doc["agents"].values()} == {"qemu64", "haswell"}
    assert doc["experiments"] and (tmp_path / "m.png").stat().st_size > 10_000
    haswell = next(a for a in doc["agents"].values() if a["board"] == "haswell")
    assert {"bmi1", "bmi2", "lzcnt", "popcnt"} <= set(haswell["features"])
    from stores.ledger import Ledger

    ledger = Ledger.open(db, read_only=True)
    for x in doc["experiments"][:3]:  # each experiment's entry, proven in the signed tree
        entry = ledger.entry(x["ledger_index"])
        assert json.loads(entry)["id"] == x["identity"]
        proof = run("ledger", "prove", str(x["ledger_index"]), "--db", str(db)).stdout
        leaf = hashlib.sha256(b"\x00" + entry).hexdigest()  # RFC 9162 leaf hash
        assert f"leaf    {leaf}" in proof and "verified: the entry is in the signed tree" in proof
    assert run("ledger", "verify", "--db", str(db)).returncode == 0
    for row in doc["best"]:  # p01 never needs more than its lowering's 6
        assert row["instructions"] <= 6
