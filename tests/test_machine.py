"""Launching QEMU: exit statuses, resets, timeouts, startup errors and cleanup."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from arch import X86_64
from contract.x86_64.exits import DEBUG_EXIT_FAIL, DEBUG_EXIT_PASS, debug_exit_status
from kernel.riscv64.build import build_floor
from qemu import boards
from qemu.boards import Board, board
from qemu.errors import (
    GuestResetError,
    GuestTimeoutError,
    KvmUnavailableError,
    QemuError,
    QemuNotInstalledError,
    QemuStartError,
)
from qemu.machine import Machine
from testing.riscv_tiny_guests import write_elf
from testing.x86_boot_sectors import MARK, write_image

HARD_TIMEOUT = 30  # seconds any one QEMU may live in these tests


def tcg(name: str = "q35", **options) -> Board:
    return board(name, accel="tcg", **options)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bootsectors")
    names = ("exit_pass", "exit_fail", "halt", "silent", "triple_fault")
    return {name: write_image(directory, name) for name in names}


@pytest.mark.qemu
@pytest.mark.parametrize("machine", ["q35", "pc"])
@pytest.mark.parametrize("qmp", [True, False])
def test_exit_device_status_round_trip(images, machine, qmp):
    with Machine(tcg(machine), image=images["exit_pass"], timeout=HARD_TIMEOUT, qmp=qmp) as m:
        assert m.read_serial(timeout=10) == bytes([MARK])
        assert m.wait_exit(timeout=10) == debug_exit_status(DEBUG_EXIT_PASS) == 33
        assert m.read_serial(timeout=1) == b""  # the line is closed, nothing was left over


@pytest.mark.qemu
def test_cpu_seconds_is_qemus_own_cpu_time_as_proc_counts_it(images):
    """The process CPU-time clock read for QEMU agrees with what /proc/PID/stat says its
    threads used (utime + stime, in clock ticks), and there is none once it is gone."""
    tick = 1 / os.sysconf("SC_CLK_TCK")
    with Machine(tcg("pc"), image=images["halt"], timeout=HARD_TIMEOUT) as m:
        assert m.read_serial(timeout=10) == bytes([MARK])  # booted: it has used some CPU
        before = m.cpu_seconds()
        with open(f"/proc/{m.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        after = m.cpu_seconds()
        counted = (int(fields[11]) + int(fields[12])) * tick  # utime, stime (proc(5))
        assert before is not None and after is not None and 0 < before <= after
        assert before - 2 * tick <= counted <= after + 2 * tick
    assert m.cpu_seconds() is None


@pytest.mark.qemu
def test_failure_exit_status_and_serial_kept_when_only_waiting(images):
    with Machine(tcg("pc"), image=images["exit_fail"], timeout=HARD_TIMEOUT) as m:
        assert m.wait_exit(timeout=10) == debug_exit_status(DEBUG_EXIT_FAIL)
        assert m.read_serial(timeout=1) == bytes([MARK])
        assert m.serial_log == bytes([MARK])


@pytest.mark.qemu
def test_default_cpu_model_runs_under_tcg_without_warnings(images):
    with Machine(tcg("q35"), image=images["exit_pass"], timeout=HARD_TIMEOUT) as m:
        m.wait_exit(timeout=10)
        assert m.stderr_text == ""


@pytest.mark.qemu
def test_unknown_cpu_model_surfaces_qemus_message(images):
    with pytest.raises(QemuStartError) as error:
        with Machine(tcg(cpu="no-such-cpu"), image=images["exit_pass"], timeout=HARD_TIMEOUT):
            pass
    assert "unable to find CPU model 'no-such-cpu'" in str(error.value)
    assert "-cpu" in error.value.command_line and error.value.exit_status == 1


@pytest.mark.qemu
@pytest.mark.parametrize("qmp", [True, False])
def test_bad_device_surfaces_qemus_message(images, qmp):
    with pytest.raises(QemuStartError, match="'no-such-device' is not a valid device model"):
        with Machine(tcg(qemu_args="-device no-such-device"), image=images["exit_pass"],
                     timeout=HARD_TIMEOUT, qmp=qmp) as m:
            m.wait_exit(timeout=10)


def test_missing_binary_says_which_package_to_install(images, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(QemuNotInstalledError, match="apt-get install qemu-system-x86"):
        with Machine(tcg(), image=images["exit_pass"]):
            pass
    riscv = dataclasses.replace(tcg("virt"), binary="qemu-system-riscv64-missing")
    with pytest.raises(QemuNotInstalledError, match="qemu-system-misc"):
        Machine(riscv, kernel=images["exit_pass"]).launch()


@pytest.mark.qemu
def test_cleanup_when_the_body_raises(images):
    with pytest.raises(RuntimeError, match="body failed"):
        with Machine(tcg(), image=images["halt"], timeout=HARD_TIMEOUT) as m:
            pid, directory = m.pid, m.temp_dir
            assert (directory / "serial.sock").exists() and (directory / "qmp.sock").exists()
            m.read_serial(timeout=10)
            raise RuntimeError("body failed")
    assert process_gone(pid)
    assert not directory.exists()
    assert m.exit_status is not None


@pytest.mark.qemu
def test_silent_guest_times_out_on_serial(images):
    with Machine(tcg("pc"), image=images["silent"], timeout=HARD_TIMEOUT) as m:
        with pytest.raises(GuestTimeoutError, match="sent nothing"):
            m.read_serial(timeout=2)


@pytest.mark.qemu
def test_halted_guest_times_out_on_exit_and_stays_queryable(images):
    with Machine(tcg("pc"), image=images["halt"], timeout=HARD_TIMEOUT) as m:
        assert m.read_serial(timeout=10) == bytes([MARK])
        with pytest.raises(GuestTimeoutError, match="did not exit"):
            m.wait_exit(timeout=0.5)
        assert m.qmp("query-status")["status"] == "running"


@pytest.mark.qemu
def test_machine_timeout_bounds_every_wait(images):
    with Machine(tcg("pc"), image=images["halt"], timeout=1.5) as m:
        with pytest.raises(GuestTimeoutError, match="time limit"):
            m.wait_exit(timeout=HARD_TIMEOUT)
        assert time.monotonic() - m.started_at < HARD_TIMEOUT


@pytest.mark.qemu
def test_triple_fault_is_reported_as_a_reset_with_qmp_event(images):
    with Machine(tcg("q35"), image=images["triple_fault"], timeout=HARD_TIMEOUT) as m:
        assert m.read_serial(timeout=10) == bytes([MARK])
        with pytest.raises(GuestResetError, match="triple fault"):
            m.wait_exit(timeout=10)
        shutdowns = [e for e in m.events if e["event"] == "SHUTDOWN"]
        assert [e["data"]["reason"] for e in shutdowns] == ["guest-reset"]


@pytest.mark.qemu
def test_triple_fault_without_qmp_is_known_by_exit_status_zero(images):
    with Machine(tcg("pc"), image=images["triple_fault"], timeout=HARD_TIMEOUT, qmp=False) as m:
        with pytest.raises(GuestResetError) as error:
            m.wait_exit(timeout=10)
    assert error.value.exit_status == 0


@pytest.mark.qemu
def test_qmp_is_refused_clearly_when_off(images):
    with Machine(tcg("pc"), image=images["halt"], timeout=HARD_TIMEOUT, qmp=False) as m:
        with pytest.raises(QemuError, match="qmp=True"):
            m.qmp("query-status")


@pytest.mark.qemu
def test_riscv_guest_passes_through_sifive_test(tmp_path):
    elf = build_floor(tmp_path)
    with Machine(tcg("virt"), kernel=elf, timeout=HARD_TIMEOUT) as m:
        assert m.wait_exit(timeout=10) == 0
        assert not any(e["event"] == "SHUTDOWN" for e in m.events)


def test_missing_guest_file_is_reported_before_starting(tmp_path):
    with pytest.raises(FileNotFoundError, match="build it first"):
        Machine(tcg(), image=tmp_path / "nothing.img")


@pytest.mark.qemu
def test_two_machines_can_boot_the_same_image_at_once(images):
    with Machine(tcg("pc"), image=images["halt"], timeout=HARD_TIMEOUT) as first:
        with Machine(tcg("pc"), image=images["halt"], timeout=HARD_TIMEOUT) as second:
            assert second.read_serial(timeout=10) == bytes([MARK])
        assert first.read_serial(timeout=10) == bytes([MARK])


@pytest.mark.qemu
def test_riscv_reset_through_sifive_test_is_a_guest_reset(tmp_path):
    with Machine(tcg("virt"), kernel=write_elf(tmp_path, "reset"), timeout=HARD_TIMEOUT) as m:
        with pytest.raises(GuestResetError):
            m.wait_exit(timeout=10)
        assert [e["data"]["reason"] for e in m.events if e["event"] == "SHUTDOWN"] == [
            "guest-reset"
        ]


def seconds_to_first_byte(chosen: Board, image) -> float:
    with Machine(chosen, image=image, timeout=HARD_TIMEOUT) as machine:
        assert machine.read_serial(timeout=HARD_TIMEOUT) == bytes([MARK])
        assert machine.started_at is not None
        return time.monotonic() - machine.started_at


@pytest.mark.qemu
@pytest.mark.skipif(bool(boards.kvm_problem(X86_64)) or not boards.kvm_slower_than_tcg(X86_64),
                    reason="auto turns KVM down only where it is usable but slower than TCG")
def test_a_kvm_auto_turns_down_really_boots_slower_than_tcg(images):
    """QEMU start to the boot sector's first byte: SeaBIOS, then one out (x86_boot_sectors)."""
    assert board("q35").resolved_accel() == "tcg"
    kvm = seconds_to_first_byte(board("q35", accel="kvm"), images["exit_pass"])
    tcg_ = min(seconds_to_first_byte(tcg(), images["exit_pass"]) for _ in range(3))
    assert kvm > 2 * tcg_, (kvm, tcg_)


def test_unusable_kvm_is_refused_before_qemu_starts(images, monkeypatch, tmp_path):
    monkeypatch.setattr(boards, "KVM_DEVICE", str(tmp_path / "no-kvm"))
    machine = Machine(board("q35", accel="kvm"), image=images["exit_pass"])
    with pytest.raises(KvmUnavailableError, match="accel='tcg'"):
        with machine:
            pass
    assert machine.pid is None and machine.temp_dir is None


ORPHAN = """
import sys, time
from qemu.boards import board
from qemu.machine import Machine
with Machine(board("pc", accel="tcg"), image=sys.argv[1], timeout=60) as m:
    print(m.pid, flush=True)
    time.sleep(60)
"""


@pytest.mark.qemu
def test_a_killed_owner_takes_its_qemu_with_it(images, tmp_path):
    """The context manager cannot run in a SIGKILLed process: Linux's parent-death signal
    (setpriv --pdeathsig) ends the QEMU instead of leaving it orphaned.  (Its temporary
    directory stays: here, in the test's.)"""
    import signal
    import subprocess
    import sys

    owner = subprocess.Popen([sys.executable, "-c", ORPHAN, str(images["halt"])],
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    qemu_pid = int(owner.stdout.readline())
    os.kill(qemu_pid, 0)  # running
    owner.send_signal(signal.SIGKILL)
    owner.wait(5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(qemu_pid, 0)
        except ProcessLookupError:
            return  # gone (reaped by init)
        if _zombie(qemu_pid):
            return  # dead, waiting for init to reap it
        time.sleep(0.05)
    os.kill(qemu_pid, signal.SIGKILL)
    pytest.fail("QEMU outlived the process that owned it by 5 s")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return False


@pytest.mark.qemu
def test_a_qemu_started_from_a_thread_that_ends_lives_on(images):
    """The parent-death signal belongs to a thread; QEMU is started from one that lives as
    long as the process, so a board restarted by a worker thread outlives that thread."""
    import threading

    machine = Machine(tcg("pc"), image=images["halt"], timeout=HARD_TIMEOUT)
    starter = threading.Thread(target=machine.launch)
    starter.start()
    starter.join()
    try:
        time.sleep(0.5)  # Linux delivers the signal as the thread exits
        assert machine.running
    finally:
        machine.shutdown()
