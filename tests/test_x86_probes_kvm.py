"""The x86-64 probe loop under KVM (accel="kvm"): runs, faults, the probe's own
syscall, the watchdog and the FPU/AVX reset, checked against the Intel SDM and
the guest's own CPUID, as the TCG tests are.  Skipped where /dev/kvm cannot be
opened read-write (qemu.boards.kvm_problem).

Why a file of its own: the KVM here may be KVM-PVM (nested clouds), which runs
ring 3 natively but emulates ring 0.  It carries out a ring-3 `syscall` without
the switch to ring 0 (every probe came back as #PF 0x15 at syscall_entry until
the kernel's #PF gate recognised that), and its emulator has no xrstor nor VEX
instructions (the kernel resets the AVX state from ring 3).  These tests keep
both working on whichever KVM the host has.
"""

import struct

import pytest

from arch import X86_64
from contract.probe_abi import AREA, SYSCALL_PSEUDO_VECTOR, Outcome, Privilege
from contract.protocol import Msg, ProbeRefusal
from kernel.x86_64.build import build
from probes.probe import Probe
from qemu.boards import board, kvm_problem
from testing.asm import x86 as assemble
from testing.x86_probe_guest import ProbeGuest

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.timeout(120),
    pytest.mark.skipif(bool(kvm_problem(X86_64)), reason=kvm_problem(X86_64) or "kvm"),
]

CODE, INPUT, SCRATCH = (AREA[n].base(X86_64.probes) for n in ("code", "input", "scratch"))
# Intel SDM vol. 3A table 6-1 and 4.7 (page-fault error code bits).
BP, UD, GP, PF = 3, 6, 13, 14
PF_PRESENT, PF_WRITE, PF_USER, PF_FETCH = 1, 2, 4, 16
CPUID_1_ECX_AVX = 1 << 28
FSW_TOP = 0x3800  # x87 status word: the stack top, 0 after finit / reset


KVM_Q35 = board("q35", accel="kvm")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("x86kvm"))


@pytest.fixture(scope="module")
def guest(built):
    with ProbeGuest(built.image, on=KVM_Q35) as g:
        yield g


_run_ids = iter(range(2_000_000, 1 << 31))


def run(guest, source, *, privilege=Privilege.USER, output_size=32, input=b""):
    probe = Probe(X86_64, assemble(source), privilege, input, output_size=output_size)
    loaded, result, tail = guest.load_and_run(probe, next(_run_ids))
    assert loaded["status"] == ProbeRefusal.OK
    return result, tail


def fault_of(result) -> tuple[int, int, int, int]:
    return (result["outcome"], result["fault_vector"], result["fault_error"], result["fault_ip"])


@pytest.mark.qemu
def test_probe_returns_with_the_abi_registers_and_output(guest):
    result, tail = run(guest, "mov rax, rcx; mov qword ptr [rsi], rdi;"
                              " mov qword ptr [rsi + 8], rdx; ret", input=b"12345")
    assert (result["outcome"], result["status"]) == (Outcome.RETURNED, 5)
    assert struct.unpack("<QQ", tail[:16]) == (INPUT, SCRATCH)
    assert result["cycles"] > 0


@pytest.mark.parametrize("source, vector, error, offset, address", [
    ("nop; ud2", UD, 0, 1, 0),
    ("nop; int3; ret", BP, 0, 2, 0),  # a trap: RIP after it
    ("hlt", GP, 0, 0, 0),  # privileged instruction at CPL 3
    ("mov rax, qword ptr [0]; ret", PF, PF_USER | PF_PRESENT, 0, 0),  # the kernel's page
    (f"mov rax, qword ptr [{CODE + 0x5000}]; ret", PF, PF_USER, 0, CODE + 0x5000),  # a guard
    ("mov byte ptr [rip], 1; ret", PF, PF_USER | PF_WRITE | PF_PRESENT, 0, CODE + 7),
])
def test_exceptions_are_contained_with_vector_error_and_rip(guest, source, vector, error,
                                                            offset, address):
    result, _ = run(guest, source)
    assert fault_of(result) == (Outcome.FAULT, vector, error, CODE + offset)
    assert result["fault_address"] == address


def test_the_probes_own_syscall_is_the_pseudo_vector(guest):
    result, _ = run(guest, "nop; syscall; ret")
    assert fault_of(result) == (Outcome.FAULT, SYSCALL_PSEUDO_VECTOR, 0, CODE + 1)


def test_a_jump_to_the_syscall_entry_is_an_ordinary_page_fault(guest, built):
    """Only a syscall is continued as one: a ring-3 fetch of the kernel's entry with
    RCX set as the exit stub would leave it is still a user-mode fetch fault."""
    entry = built.program.symbols["syscall_entry"].address
    exit_return = AREA["exit"].base(X86_64.probes) + 2
    result, _ = run(guest, f"mov rcx, {exit_return}; mov eax, {entry}; jmp rax")
    assert fault_of(result) == (Outcome.FAULT, PF, PF_PRESENT | PF_USER | PF_FETCH, entry)
    assert result["fault_address"] == entry


def test_infinite_loop_times_out_and_the_next_probe_runs(guest):
    result, _ = run(guest, "spin: jmp spin")
    assert result["outcome"] == Outcome.TIMEOUT
    result, _ = run(guest, "mov eax, 0x600d; ret")
    assert (result["outcome"], result["status"]) == (Outcome.RETURNED, 0x600D)


def test_avx_runs_as_cpuid_says_and_starts_from_init(guest):
    """AVX runs when the guest's CPUID says AVX (KVM-PVM passes the host's through even
    for qemu64), #UD otherwise; a probe never sees the YMM upper halves of the last."""
    (ecx,) = [struct.unpack_from("<I", f.body, 16)[0] for f in guest.discovery
              if f.type == Msg.CPUID and struct.unpack_from("<II", f.body) == (1, 0)]
    result, _ = run(guest, "vpcmpeqb ymm1, ymm1, ymm1; mov eax, 1; ret")
    if not ecx & CPUID_1_ECX_AVX:
        assert fault_of(result) == (Outcome.FAULT, UD, 0, CODE)
        return
    assert (result["outcome"], result["status"]) == (Outcome.RETURNED, 1)
    result, tail = run(guest, "vmovdqu ymmword ptr [rsi], ymm1; ret")
    assert result["outcome"] == Outcome.RETURNED
    assert tail == bytes(32)


def test_x87_starts_from_reset(guest):
    run(guest, "fld1; fld1; ret")
    result, _ = run(guest, "fnstsw ax; movzx eax, ax; ret")
    assert result["outcome"] == Outcome.RETURNED
    assert result["status"] & FSW_TOP == 0


@pytest.mark.qemu
def test_privileged_probe_returns_from_ring_0(built):
    with ProbeGuest(built.image, privileged=True, on=KVM_Q35) as privileged:
        result, _ = run(privileged, "mov rax, cs; ret", privilege=Privilege.PRIVILEGED)
    assert result["outcome"] == Outcome.RETURNED
    assert result["status"] & 3 == 0
