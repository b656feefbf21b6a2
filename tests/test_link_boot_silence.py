"""How long a booting guest may stay silent: under KVM the firmware's port I/O is slow
(link/boot.py, KVM_SILENCE_TIMEOUT), so the allowance follows the board's accelerator."""

from __future__ import annotations

import qemu.boards
from link.boot import KVM_SILENCE_TIMEOUT, SILENCE_TIMEOUT, silence_timeout
from qemu.boards import board


def test_a_tcg_board_keeps_the_usual_silence():
    assert silence_timeout(board("q35", accel="tcg")) == SILENCE_TIMEOUT
    assert silence_timeout(board("virt", accel="tcg")) == SILENCE_TIMEOUT


def test_a_kvm_board_may_stay_silent_longer_while_its_firmware_runs(monkeypatch):
    # as on a host where /dev/kvm opens (this test must pass on hosts without it too)
    monkeypatch.setattr(qemu.boards, "kvm_problem", lambda arch: "")
    monkeypatch.setattr(qemu.boards, "kvm_slower_than_tcg", lambda arch: "")
    chosen = board("q35", accel="kvm")
    assert chosen.resolved_accel() == "kvm"
    assert silence_timeout(chosen) == KVM_SILENCE_TIMEOUT > SILENCE_TIMEOUT
