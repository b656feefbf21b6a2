"""Every x86-64 probe starts from the reset FPU state, AVX included: on a CPU model
with XSAVE and AVX (QEMU's `max` under TCG) the kernel resets the XSAVE state by
xrstor in a short ring-3 trip (kernel/x86_64/probe_run.s, fpu_reset_in_ring3), so
these tests run that path under TCG; test_x86_probes_kvm.py runs it under KVM.
Init values from the Intel SDM vol. 1 (FNINIT, MXCSR) and vol. 3A 13.6 (XSAVE)."""

import struct

import pytest

from arch import X86_64
from contract.probe_abi import Outcome
from contract.protocol import ProbeRefusal
from kernel.x86_64.build import build
from kernel.x86_64.probe_env import FPU_RESET_VIRTUAL
from probes.probe import Probe
from qemu.boards import board
from testing.asm import x86 as assemble
from testing.x86_probe_guest import ProbeGuest

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(120)]

PF, PF_USER = 14, 4
FSW_TOP, FCW_INIT, MXCSR_INIT = 0x3800, 0x037F, 0x1F80


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    # QEMU's `max` CPU model: XSAVE and AVX under TCG
    max_cpu = board("q35", accel="tcg", cpu="max")
    with ProbeGuest(build(tmp_path_factory.mktemp("x86fpu")).image, on=max_cpu) as g:
        yield g


_run_ids = iter(range(3_000_000, 1 << 31))


def run(guest, source):
    probe = Probe(X86_64, assemble(source), output_size=32)
    loaded, result, tail = guest.load_and_run(probe, next(_run_ids))
    assert loaded["status"] == ProbeRefusal.OK
    assert result["outcome"] == Outcome.RETURNED, result
    return result, tail


def test_ymm_upper_halves_do_not_leak_to_the_next_probe(guest):
    run(guest, "vpcmpeqb ymm1, ymm1, ymm1; vpcmpeqb ymm15, ymm15, ymm15; ret")
    _, tail = run(guest, "vmovdqu ymmword ptr [rsi], ymm1; ret")
    assert tail == bytes(32)
    _, tail = run(guest, "vmovdqu ymmword ptr [rsi], ymm15; ret")
    assert tail == bytes(32)


def test_x87_and_mxcsr_start_from_init(guest):
    run(guest, "fld1; fld1; fldz; mov dword ptr [rsi], 0x7f80; ldmxcsr dword ptr [rsi];"
               " mov word ptr [rsi], 0x27f; fldcw word ptr [rsi]; ret")
    _, tail = run(guest, "fnstsw word ptr [rsi]; fnstcw word ptr [rsi + 2];"
                         " stmxcsr dword ptr [rsi + 4]; ret")
    fsw, fcw, mxcsr = struct.unpack_from("<HHI", tail)
    assert (fsw & FSW_TOP, fcw, mxcsr) == (0, FCW_INIT, MXCSR_INIT)


def test_the_reset_page_is_not_mapped_while_a_probe_runs(guest):
    probe = Probe(X86_64, assemble(f"mov rax, qword ptr [{FPU_RESET_VIRTUAL}]; ret"))
    _, result, _ = guest.load_and_run(probe, next(_run_ids))
    assert (result["outcome"], result["fault_vector"], result["fault_error"],
            result["fault_address"]) == (Outcome.FAULT, PF, PF_USER, FPU_RESET_VIRTUAL)
