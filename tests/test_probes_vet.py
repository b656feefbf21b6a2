"""The vetter: random code, budgets, self-modification, areas; and containment in
the fake guest of everything it accepts."""

import random

import keystone
import pytest

from arch import RISCV64, X86_64
from contract.probe_abi import AREA, Outcome, Privilege
from probes.emulator import ProbeEmulator
from probes.probe import Probe
from probes.vet import vet
from testing.fake_guest import KERNEL_CANARY, FakeGuest
from toolchain.riscvasm import assemble_snippet


def x86(source: str, **kw) -> Probe:
    code = bytes(keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64).asm(source)[0])
    return Probe(X86_64, code, **kw)


def rv(*words: int, **kw) -> Probe:
    return Probe(RISCV64, b"".join(w.to_bytes(4, "little") for w in words), **kw)


RET = 0x00008067  # jalr x0, 0(ra)


@pytest.mark.parametrize("arch", [X86_64, RISCV64])
def test_random_code_every_rejection_has_a_reason_and_accepted_ones_stay_contained(arch):
    rng = random.Random(4)
    guest = FakeGuest(arch)
    accepted = 0
    for _ in range(5000):  # x2 arches = 10,000 random byte strings
        probe = Probe(arch, rng.randbytes(rng.randrange(1, 33)))
        verdict = vet(probe)
        if not verdict.accepted:
            assert verdict.reason, probe.code.hex()
            continue
        accepted += 1
        run = guest.emulator.run(probe, guest._ring3(probe))
        assert run.memory_violation is None, (probe.code.hex(), run.memory_violation)
        assert run.observation.outcome in (Outcome.RETURNED, Outcome.FAULT), probe.code.hex()
    assert accepted > 500  # random code is often accepted (it faults harmlessly)
    assert guest.emulator.kernel_area_intact()


def test_canary_check_sees_a_write_to_the_kernel_area():
    """The containment assertion above is only meaningful if it can fail."""
    machine = ProbeEmulator(X86_64, kernel_canary=KERNEL_CANARY)
    target = X86_64.probes.kernel_area[0] + 0x1000
    machine.run(x86(f"mov rax, {target}; mov byte ptr [rax], 1; ret"))
    assert not machine.kernel_area_intact()


def test_infinite_loop_is_over_budget():
    for probe in (x86("loop: jmp loop", budget=500), rv(0x0000006F, budget=500)):  # j .
        verdict = vet(probe)
        assert not verdict.accepted and "over budget" in verdict.reason


def test_probe_within_budget_is_accepted_with_its_instruction_count():
    verdict = vet(x86("mov ecx, 100; l: dec ecx; jnz l; ret", budget=300))
    assert verdict.accepted and verdict.instructions == 1 + 2 * 100 + 1


def test_self_modifying_code_is_rejected():
    verdict = vet(x86("lea rax, [rip]; mov byte ptr [rax], 0x90; ret"))
    assert not verdict.accepted and "own code" in verdict.reason
    verdict = vet(rv(0x00000297, 0x00028023, RET))  # auipc t0, 0; sb zero, 0(t0); ret
    assert not verdict.accepted and "own code" in verdict.reason


def test_memory_outside_the_areas_is_rejected_inside_is_accepted():
    assert not vet(x86("mov rax, 0x100000; mov rax, [rax]; ret")).accepted
    scratch_end = AREA["scratch"].size
    ok = vet(x86(f"mov qword ptr [rdx + {scratch_end - 8}], 7; "
                 "mov rax, [rdi]; mov [rsi], rax; ret"))
    assert ok.accepted, ok.reason
    assert not vet(x86(f"mov qword ptr [rdx + {scratch_end}], 7; ret")).accepted
    assert not vet(x86("mov byte ptr [rdi], 1; ret")).accepted  # input is read-only
    assert not vet(x86("jmp rsi")).accepted  # data is not executable


def rv_asm(source: str, **kw) -> Probe:
    """RISC-V assembly (rv64g, `.option rvc` for compressed) as a probe at the code base."""
    return Probe(RISCV64, assemble_snippet(source, address=AREA["code"].base(RISCV64.probes),
                                             march="rv64g"), **kw)


RV_STACK_TOP = AREA["stack"].end(RISCV64.probes)


@pytest.mark.parametrize("source, access, address", [
    ("fsd fa2, 0x18(zero)", "write", 0x18),
    (".option rvc\nc.fsd fa2, 0x18(a4)", "write", 0x18),  # a4 = 0 at entry
    ("fld fa2, 0x18(zero)", "read", 0x18),
    (".option rvc\nc.fld fa2, 0x18(a4)", "read", 0x18),
    (".option rvc\nc.fldsp fa2, 0(sp)", "read", RV_STACK_TOP),
    (".option rvc\nc.fsdsp fa2, 8(sp)", "write", RV_STACK_TOP + 8),
    ("flw fa2, -4(a0)", "read", AREA["input"].base(RISCV64.probes) - 4),
    ("fsw fa2, 0(a0)", "write", AREA["input"].base(RISCV64.probes)),  # input is read-only
    (".option rvc\nc.fsd fa2, 0(a0)", "write", AREA["input"].base(RISCV64.probes)),
    (f"li t0, {RISCV64.probes.kernel_area[0]:#x}\nfsd fa2, 0(t0)", "write",
     RISCV64.probes.kernel_area[0]),
])
def test_fp_memory_outside_the_areas_is_rejected(source, access, address):
    verdict = vet(rv_asm(source + "\nret"))
    assert not verdict.accepted and f"{access} at 0x{address:x} is outside" in verdict.reason


def test_fp_memory_inside_the_areas_is_accepted_and_predicted():
    value = (0x4045000000000000).to_bytes(8, "little")
    verdict = vet(rv_asm(".option rvc\nfld fa0, 0(a0)\nc.fsd fa0, 8(a1)\nfsd fa0, 8(a2)\n"
                         "addi sp, sp, -8\nc.fsdsp fa0, 0(sp)\nc.fldsp fa1, 0(sp)\n"
                         "fsd fa1, 0(a1)\nret",
                         input=value, output_size=16))
    assert verdict.accepted and verdict.prediction is not None, verdict.reason
    assert verdict.observation.output == value + value


def test_fp_state_does_not_leak_between_probes():
    vet(rv_asm("li t0, -1\nfscsr t0\nfmv.d.x ft5, t0\nret"))
    verdict = vet(rv_asm("fmv.x.d t0, ft5\nsd t0, 0(a1)\nfrcsr a0\nret", output_size=8))
    assert verdict.observation.status == 0 and verdict.observation.output == bytes(8)


def test_compressed_fp_access_with_fp_switched_off_is_an_illegal_instruction():
    """Unicorn would skip it silently; a hart raises illegal instruction (FS = Off)."""
    verdict = vet(rv_asm(".option rvc\nli t0, 0x6000\ncsrc mstatus, t0\nc.fsd fa2, 0x18(a4)\nret",
                         privilege=Privilege.PRIVILEGED))
    fault = verdict.observation.fault
    assert verdict.accepted and fault is not None and fault.vector == 2
    assert fault.ip == AREA["code"].base(RISCV64.probes) + 2 + 4  # after c.lui/c.li and csrc


def test_classes_outside_the_privilege_are_rejected():
    for source in ("in al, dx", "hlt", "mov cr3, rax", "int 0x80", "syscall", "ljmp [rax]",
                   "wrmsr"):
        verdict = vet(x86(source + "; ret"))
        assert not verdict.accepted and "not allowed" in verdict.reason, source
    assert vet(x86("mov ecx, 0x10; rdmsr; ret", privilege=Privilege.PRIVILEGED)).accepted
    assert not vet(rv(0x30051073, RET)).accepted  # csrw mstatus, a0
    assert vet(rv(0x30051073, RET, privilege=Privilege.PRIVILEGED)).accepted
    assert not vet(rv(0x00000073)).accepted  # ecall


def test_prediction_only_for_machine_independent_probes():
    pure = vet(x86("mov rax, [rdi]; imul rax, rax; mov [rsi], rax; ret",
                   input=(12).to_bytes(8, "little")))
    assert pure.accepted and pure.prediction is not None
    assert pure.observation.output[:8] == (144).to_bytes(8, "little")
    assert vet(x86("cpuid; ret")).prediction is None
    assert vet(x86("rdtsc; ret")).prediction is None


def test_faulting_probe_is_accepted_with_the_fault_as_prediction():
    verdict = vet(x86("xor ecx, ecx; div rcx; ret"))
    assert verdict.accepted and verdict.observation.fault.vector == 0  # #DE
    assert vet(Probe(X86_64, bytes.fromhex("0f0b"))).observation.fault.vector == 6  # ud2 -> #UD


@pytest.mark.parametrize("arch", [X86_64, RISCV64])
def test_a_pool_of_vetting_processes_gives_the_verdicts_vet_gives_in_order(arch):
    from probes import vet_pool

    rng = random.Random(21)
    probes = [Probe(arch, rng.randbytes(rng.randrange(1, 24)))
              for _ in range(vet_pool.IN_PROCESS_FIRST + 700)]
    pooled = list(vet_pool.vet_stream(iter(probes), workers=2))
    assert [p for p, _ in pooled] == probes
    assert [v for _, v in pooled] == [vet(p) for p in probes]
    assert any(v.accepted for _, v in pooled) and not all(v.accepted for _, v in pooled)


def _dies_first(chunk: list[Probe]) -> list:
    """A worker's task that ends its process abruptly the first time any worker runs it
    (the marker file says so), as a native crash would, and vets the chunk after."""
    import os
    from pathlib import Path

    marker = Path(os.environ["VET_POOL_DIED"])
    if not marker.exists():
        marker.write_text("died")
        os._exit(70)
    return [vet(p) for p in chunk]


def _always_dies(chunk: list[Probe]) -> list:
    import os

    os._exit(70)


def test_a_vetting_worker_that_dies_costs_its_pool_not_the_stream(monkeypatch, tmp_path):
    """A worker that dies (a clean clone's suite once had one abort inside Unicorn) broke
    the pool, and the stream waited for its chunk forever: now its chunks in flight go to
    a new pool, and the verdicts are all there, in order; a pool that keeps losing its
    workers ends the stream with an error instead of a hang."""
    from probes import vet_pool

    rng = random.Random(23)
    probes = [Probe(X86_64, rng.randbytes(rng.randrange(1, 24)))
              for _ in range(vet_pool.IN_PROCESS_FIRST + 300)]
    monkeypatch.setenv("VET_POOL_DIED", str(tmp_path / "died"))
    monkeypatch.setattr(vet_pool, "_vet_chunk", _dies_first)
    pooled = list(vet_pool.vet_stream(iter(probes), workers=2))
    assert (tmp_path / "died").exists()
    assert [p for p, _ in pooled] == probes
    assert [v for _, v in pooled] == [vet(p) for p in probes]
    monkeypatch.setattr(vet_pool, "_vet_chunk", _always_dies)
    with pytest.raises(vet_pool.VetPoolLost):
        list(vet_pool.vet_stream(iter(probes), workers=2))


def test_ctrl_c_while_a_pool_vets_ends_the_workers_too():
    import multiprocessing
    import os
    import signal
    import threading

    from probes import vet_pool

    rng = random.Random(22)
    endless = (Probe(X86_64, rng.randbytes(16)) for _ in iter(int, 1))
    vetted = 0
    # Ctrl-C as a terminal gives it, whatever this process inherited: a suite started in
    # the background of a shell without job control starts with SIGINT ignored (POSIX),
    # and Python then leaves it so; this test ran for its whole timeout there, the
    # workers vetting random bytes for minutes until Unicorn aborted in them
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            for _ in vet_pool.vet_stream(endless, workers=2):
                vetted += 1
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert vetted > vet_pool.IN_PROCESS_FIRST  # the pool was at work
    # none left but the suite's own compiles of the search kernels (tests/conftest.py)
    assert [p for p in multiprocessing.active_children()
            if not p.name.startswith("compiling")] == []
