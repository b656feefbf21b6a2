"""The x86-64 kernel's probe command loop, booted under QEMU (TCG) and driven over
its serial line: runs, containment of every exception a probe can raise (vectors
and error codes as the Intel SDM vol. 3A ch. 6 defines them), the watchdog,
refusals, the result cache, and random vetted probes checked against Unicorn.

QEMU 7.2 TCG quirks these tests allow for, each checked rather than skipped:
TCG does not implement alignment checking (#AC) nor deliver #XM for unmasked
SSE exceptions (it only sets the MXCSR flag), and it has no PMU (instret 0).
"""

import random
import struct
import time

import pytest

from arch import X86_64
from contract.probe_abi import AREA, DEFAULT_BUDGET, Outcome, Privilege, watchdog_ns
from contract.protocol import LAYOUTS, PROBE_RUN_FLAG_MEASURE_LENGTH, PROBE_SLOTS, Msg, ProbeRefusal
from kernel.x86_64.build import build
from probes.campaign import Campaign
from probes.campaign_state import Policy
from probes.probe import Probe
from probes.vet import vet
from testing.asm import x86 as assemble
from testing.x86_probe_guest import ProbeGuest

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]

CODE, INPUT, SCRATCH = (AREA[n].base(X86_64.probes) for n in ("code", "input", "scratch"))
# Intel SDM vol. 3A table 6-1 and 4.7 (page-fault error code bits).
DE, DB, BP, OF, BR, UD, NM, GP, PF, MF, AC, XM = 0, 1, 3, 4, 5, 6, 7, 13, 14, 16, 17, 19
PF_PRESENT, PF_WRITE, PF_USER, PF_FETCH = 1, 2, 4, 16
MXCSR_ZE, MXCSR_ZM = 1 << 2, 1 << 9
RFLAGS_AC = 1 << 18


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("x86probes"))


@pytest.fixture(scope="module")
def guest(built):
    with ProbeGuest(built.image) as g:
        yield g


@pytest.fixture(scope="module")
def privileged_guest(built):
    with ProbeGuest(built.image, privileged=True) as g:
        yield g


_run_ids = iter(range(1_000_000, 1 << 31))  # clear of the campaign's ids (from 0)


def run(guest, source, *, privilege=Privilege.USER, slot=0, flags=0, budget=DEFAULT_BUDGET,
        output_size=16, input=b""):
    code = source if isinstance(source, bytes) else assemble(source)
    probe = Probe(X86_64, code, privilege, input, budget=budget, output_size=output_size)
    loaded, result, tail = guest.load_and_run(probe, next(_run_ids), slot=slot, flags=flags)
    assert loaded["status"] == ProbeRefusal.OK
    return result, tail


def status(guest) -> dict[str, int]:
    (answer,) = guest.request(Msg.PROBE_STATUS_REQUEST, b"")
    assert answer.type == Msg.PROBE_STATUS
    return answer.fields()[0]


def size(source: str) -> int:
    return len(assemble(source)) if source else 0


def assert_alive(guest):
    """The kernel still serves: a fresh probe returns its status."""
    result, _ = run(guest, "mov eax, 0x600d; ret", slot=PROBE_SLOTS - 1)
    assert (result["outcome"], result["status"]) == (Outcome.RETURNED, 0x600D), explain(result)


def explain(result: dict[str, int]) -> str:
    """A PROBE_RESULT as a failure message: which run, and where it faulted."""
    return (f"run {result['run_id']} slot {result['slot']} tag {result['tag']:#x}: "
            f"{Outcome(result['outcome']).name}, status {result['status']:#x}, "
            f"vector {result['fault_vector']}, error {result['fault_error']:#x}, "
            f"ip {result['fault_ip']:#x}, address {result['fault_address']:#x}")


def test_probe_returns_status_writes_output_and_is_counted(guest):
    result, tail = run(guest, "mov rax, rcx; mov qword ptr [rsi], rdi;"
                              " mov qword ptr [rsi + 8], rdx; ret", input=b"12345")
    assert result["outcome"] == Outcome.RETURNED
    assert result["status"] == 5  # rcx = input length
    assert struct.unpack("<QQ", tail) == (INPUT, SCRATCH)  # rdi, rsi, rdx per the ABI
    assert result["cycles"] > 0
    # The input block arrives, read-only, at its area.
    result, tail = run(guest, "mov rax, qword ptr [rdi]; mov qword ptr [rsi], rax; ret",
                       input=b"ABCDEFGH")
    assert tail[:8] == b"ABCDEFGH"


def test_instret_is_zero_without_a_pmu(guest):
    """CPUID leaf 0xA (from discovery) says whether there is an architectural PMU."""
    leaves = {struct.unpack_from("<II", f.body)[:2]: struct.unpack_from("<4I", f.body, 8)
              for f in guest.discovery if f.type == Msg.CPUID}
    pmu_version = leaves.get((0xA, 0), (0, 0, 0, 0))[0] & 0xFF
    result, _ = run(guest, "nop; nop; ret")
    if pmu_version < 2:
        assert result["instret"] == 0
    else:
        assert result["instret"] >= 3


# (name, source, vector, faulting instruction's offset source, error code, privileged)
FAULTS = [
    ("#DE", "xor ecx, ecx; div rcx; ret", DE, "xor ecx, ecx", 0, False),
    # Single-step traps after the instruction following the popfq that set TF.
    ("#DB", "pushfq; or qword ptr [rsp], 0x100; popfq; nop; ret", DB,
     "pushfq; or qword ptr [rsp], 0x100; popfq; nop", 0, False),
    ("#BP", "int3; ret", BP, "int3", 0, False),  # a trap: RIP after it
    ("#OF", "int 4; ret", OF, "int 4", 0, False),  # `into` is #UD in 64-bit mode
    ("#BR", "int 5; ret", BR, "int 5", 0, True),  # `bound` is #UD in 64-bit mode
    ("#UD", "nop; ud2", UD, "nop", 0, False),
    ("#NM", "mov rax, cr0; or rax, 8; mov cr0, rax; fld1; ret", NM,
     "mov rax, cr0; or rax, 8; mov cr0, rax", 0, True),
    ("#GP hlt", "hlt", GP, "", 0, False),
    ("#GP mov cr3", "mov rax, cr3; ret", GP, "", 0, False),
    ("#GP out", "out 0x80, al; ret", GP, "", 0, False),
    ("#GP in", "mov dx, 0x3f8; in al, dx; ret", GP, "mov dx, 0x3f8", 0, False),
    ("#GP wrmsr", "wrmsr; ret", GP, "", 0, False),
    ("#GP cli", "cli; ret", GP, "", 0, False),
    # Error code: IDT index 0x80, IDT bit; QEMU 7.2 TCG scales the index by 16
    # (seg_helper.c do_interrupt64 `intno * 16 + 2`, fixed upstream later).
    ("#GP int 0x80", "int 0x80", GP, "", {0x80 * 8 + 2, 0x80 * 16 + 2}, False),
    ("#MF", "push 0x37b; fldcw word ptr [rsp]; pop rax; fld1; fldz; fdivp st(1), st(0); fwait; ret",
     MF, "push 0x37b; fldcw word ptr [rsp]; pop rax; fld1; fldz; fdivp st(1), st(0)", 0, False),
]


@pytest.mark.parametrize("name, source, vector, before, error, privileged", FAULTS,
                         ids=[f[0] for f in FAULTS])
def test_exception_is_contained_with_vector_and_rip(guest, privileged_guest, name, source, vector,
                                                   before, error, privileged):
    target = privileged_guest if privileged else guest
    privilege = Privilege.PRIVILEGED if privileged else Privilege.USER
    result, _ = run(target, source, privilege=privilege)
    assert result["outcome"] == Outcome.FAULT
    assert result["fault_vector"] == vector
    assert result["fault_error"] in (error if isinstance(error, set) else {error})
    assert result["fault_ip"] == CODE + size(before)
    assert_alive(target)


PF_USER_WRITE = PF_PRESENT | PF_WRITE | PF_USER


@pytest.mark.parametrize("name, source, address, error, before", [
    ("write kernel code", "mov qword ptr [0x9000], rax; ret", 0x9000, PF_USER_WRITE, ""),
    ("read the guard after code", "mov rax, qword ptr [0x1004000]; ret", 0x1004000, PF_USER, ""),
    ("write its own code", "nop; mov byte ptr [rip], 0x90; ret", None, PF_USER_WRITE, "nop"),
    ("write its input", "mov byte ptr [rdi], 1; ret", INPUT, PF_USER_WRITE, ""),
    ("execute its input", "jmp rdi", INPUT, PF_PRESENT | PF_USER | PF_FETCH, None),
])
def test_page_faults_report_cr2_and_error_code(guest, built, name, source, address, error, before):
    result, _ = run(guest, source)
    assert (result["outcome"], result["fault_vector"]) == (Outcome.FAULT, PF)
    assert result["fault_error"] == error
    if before is None:  # an instruction fetch: the faulting RIP is the address
        assert result["fault_ip"] == address
    else:
        assert result["fault_ip"] == CODE + size(before)
    assert result["fault_address"] == (address if address is not None else CODE + size(source) - 1)
    assert_alive(guest)


def test_kernel_survives_writes_to_its_own_memory(guest, built):
    for symbol in ("frame_send", "probe_run", "syscall_entry"):
        address = built.program.symbols[symbol].address
        result, _ = run(guest, f"mov rax, {address}; mov qword ptr [rax], rax; ret")
        assert (result["fault_vector"], result["fault_address"]) == (PF, address)
    assert_alive(guest)


def test_alignment_check_is_contained_or_not_modelled(guest):
    """#AC needs CR0.AM (set) and RFLAGS.AC at ring 3; TCG ignores alignment altogether."""
    result, _ = run(guest, "pushfq; or qword ptr [rsp], 0x40000; popfq;"
                           " mov rax, qword ptr [rsi + 1]; pushfq; pop rax; ret")
    if result["outcome"] == Outcome.FAULT:
        assert result["fault_vector"] == AC
    else:  # TCG: returned, and RFLAGS.AC really was set when it did not fault
        assert result["outcome"] == Outcome.RETURNED and result["status"] & RFLAGS_AC
    assert_alive(guest)


def test_simd_exception_is_contained_or_only_flagged(guest):
    """Unmasked divide-by-zero: #XM (CR4.OSXMMEXCPT set); QEMU 7.2 TCG only sets MXCSR.ZE."""
    result, tail = run(guest, "push 0x1d80; ldmxcsr dword ptr [rsp]; pop rax; xorps xmm0, xmm0;"
                              " mov eax, 1; cvtsi2ss xmm1, eax; divss xmm1, xmm0;"
                              " stmxcsr dword ptr [rsi]; ret")
    if result["outcome"] == Outcome.FAULT:
        assert result["fault_vector"] == XM
    else:
        mxcsr = struct.unpack_from("<I", tail)[0]
        assert result["outcome"] == Outcome.RETURNED
        assert mxcsr & MXCSR_ZE and not mxcsr & MXCSR_ZM
    assert_alive(guest)


def test_a_probe_starts_from_clean_fpu_and_zeroed_areas(guest):
    # A probe dirties x87 control, MXCSR, xmm0, output, stack and scratch ...
    run(guest, "push 0x7f; fldcw word ptr [rsp]; push 0; ldmxcsr dword ptr [rsp]; add rsp, 16;"
               " mov eax, 1; movd xmm0, eax; mov qword ptr [rsi], rax; mov qword ptr [rdx], rax;"
               " mov qword ptr [rdx + 0x7ff000], rax; push rax; push rax; pop rax; pop rax; ret")
    # ... the next one sees the reset state (FCW 0x37f, MXCSR 0x1f80) and zeros.
    result, tail = run(guest, "fnstcw word ptr [rsi]; stmxcsr dword ptr [rsi + 4]; movd eax, xmm0;"
                              " mov qword ptr [rsi + 8], rax; mov rax, qword ptr [rdx];"
                              " or rax, qword ptr [rdx + 0x7ff000];"
                              " or rax, qword ptr [rsp - 16]; ret",
                       output_size=24)
    fcw, mxcsr, xmm0 = struct.unpack_from("<HxxIQ", tail)
    assert (fcw, mxcsr, xmm0, result["status"]) == (0x37F, 0x1F80, 0, 0)
    assert tail[16:] == bytes(8)


def test_infinite_loop_times_out_and_the_next_probe_runs(guest):
    started = time.monotonic()
    result, _ = run(guest, b"\xeb\xfe")  # jmp $
    assert result["outcome"] == Outcome.TIMEOUT
    assert time.monotonic() - started < 5  # the watchdog, not the host, ended it
    assert result["cycles"] > 0
    assert_alive(guest)
    assert status(guest)["timeouts"] >= 1


def test_the_watchdog_striking_at_the_exit_stub_is_a_return_not_a_timeout(privileged_guest):
    """A probe that reaches the exit stub just as its watchdog fires (a busy host left the
    vCPU off a core past the deadline) has returned: its status is whole.  This
    privileged probe keeps the watchdog's interrupt pending (IF clear) well past its
    deadline, then `sti; ret`: sti holds interrupts off for one more instruction (Intel
    SDM vol. 2B, STI), so the interrupt is taken at the exit stub, before its syscall."""
    budget = 100
    past_deadline = 10 * watchdog_ns(budget)  # TSC ticks: twice the deadline up to 5 GHz
    result, _ = run(privileged_guest, f"""
        cli
        rdtsc
        shl rdx, 32
        or rax, rdx
        mov rcx, rax
    spin:
        rdtsc
        shl rdx, 32
        or rax, rdx
        sub rax, rcx
        cmp rax, {past_deadline}
        jb spin
        mov eax, 42
        sti
        ret
    """, privilege=Privilege.PRIVILEGED, budget=budget)
    assert (result["outcome"], result["status"]) == (Outcome.RETURNED, 42), explain(result)
    assert_alive(privileged_guest)


def test_refusals(guest, privileged_guest):
    probe = Probe(X86_64, assemble("ret"))
    loaded, result, _ = guest.load_and_run(probe, next(_run_ids), slot=5, tag=probe.tag ^ 1)
    assert loaded["status"] == ProbeRefusal.OK
    assert (result["outcome"], result["tag"]) == (Outcome.REFUSED, probe.tag ^ 1)
    # A run of a slot that never held a probe, and of no slot at all.
    for slot in (PROBE_SLOTS - 2, PROBE_SLOTS + 3):
        (answer,) = guest.exchange(guest.run_frame(next(_run_ids), slot))
        assert answer.fields()[0]["outcome"] == Outcome.REFUSED
    load = LAYOUTS[Msg.PROBE_LOAD]

    def loaded_status(target, **fields):
        (answer,) = target.request(Msg.PROBE_LOAD, load.pack(b"\xc3", **fields))
        return answer.fields()[0]["status"]
    ok = dict(slot=1, budget=10, code_length=1, output_size=8)
    assert loaded_status(guest, **ok) == ProbeRefusal.OK
    assert loaded_status(guest, **{**ok, "slot": PROBE_SLOTS}) == ProbeRefusal.BAD_SLOT
    assert loaded_status(guest, **{**ok, "code_length": 0x4001}) == ProbeRefusal.TOO_BIG
    assert loaded_status(guest, **{**ok, "output_size": 0x1001}) == ProbeRefusal.TOO_BIG
    assert loaded_status(guest, **{**ok, "privilege": Privilege.PRIVILEGED}) \
        == ProbeRefusal.PRIVILEGED_NOT_ALLOWED
    privileged = {**ok, "privilege": Privilege.PRIVILEGED}
    assert loaded_status(privileged_guest, **privileged) == ProbeRefusal.OK


def test_privileged_probe_runs_at_ring_0(privileged_guest):
    result, _ = run(privileged_guest, "mov rax, cs; ret", privilege=Privilege.PRIVILEGED)
    assert result["outcome"] == Outcome.RETURNED and result["status"] & 3 == 0
    result, _ = run(privileged_guest, "mov rax, cs; ret")
    assert result["status"] & 3 == 3


def test_repeated_run_id_resends_the_cached_result(guest):
    result, tail = run(guest, "rdtsc; shl rdx, 32; or rax, rdx; mov qword ptr [rsi], rax; ret",
                       slot=7)
    runs_before = status(guest)["runs"]
    (again,) = guest.exchange(guest.run_frame(result["run_id"], 7, tag=result["tag"]))
    assert again.fields() == (result, tail)  # same rdtsc value: not a rerun
    assert status(guest)["runs"] == runs_before


def test_a_late_resend_is_answered_from_the_cache_and_not_taken_for_the_next_probe(guest):
    """A campaign resends LOAD + RUN when a result is late and is done with the run when the
    first answer comes, so the resend's answers arrive after it returned (on a loaded host,
    tens of frames).  The guest answers the resend again without rerunning; the next probe's
    answers are still its own.  (assert_alive once read a random probe's FAULT as its own.)"""
    probe = Probe(X86_64, assemble("nop; ud2"))
    slot = 3
    _, first, _ = guest.load_and_run(probe, run_id := next(_run_ids), slot=slot)
    assert first["outcome"] == Outcome.FAULT
    runs = status(guest)["runs"]
    skipped = len(guest.skipped)
    guest.send(guest.load_frame(probe, slot) + guest.run_frame(run_id, slot, tag=probe.tag))
    assert_alive(guest)
    late = guest.skipped[skipped:]
    assert [f.type for f in late] == [Msg.PROBE_LOADED, Msg.PROBE_RESULT]
    assert late[1].fields()[0] == first  # the cached result, not a rerun ...
    assert status(guest)["runs"] == runs + 1  # ... only assert_alive's probe ran


def test_an_answer_to_nothing_the_helper_sent_is_not_skipped(guest):
    """Only late answers to requests sent through the helper are passed over: a frame
    nobody asked for (here a RUN written behind the helper's back) fails the exchange."""
    probe = Probe(X86_64, assemble("mov eax, 7; ret"))
    run_id = next(_run_ids)
    guest.load_and_run(probe, run_id, slot=4)
    guest.machine.write_serial(guest.run_frame(run_id, 4, tag=probe.tag), timeout=5)
    with pytest.raises(AssertionError, match=f"PROBE_RESULT .*'run_id': {run_id}"):
        assert_alive(guest)
    assert_alive(guest)  # the interrupted exchange's own answers are now late ones: skipped


def test_batch_runs_each_slot_under_consecutive_run_ids(guest):
    for slot, value in ((10, 1), (11, 2), (12, 3)):
        run(guest, f"mov eax, {value}; ret", slot=slot)
    first = next(_run_ids) + 1000
    body = LAYOUTS[Msg.PROBE_RUN_BATCH].pack(struct.pack("<3H", 12, 10, 11), first_run_id=first,
                                             count=3)
    answers = [f.fields()[0] for f in guest.request(Msg.PROBE_RUN_BATCH, body)]
    assert [(a["run_id"], a["slot"], a["status"]) for a in answers] == \
        [(first, 12, 3), (first + 1, 10, 1), (first + 2, 11, 2)]


def test_corrupted_frames_are_dropped(guest):
    good_id, bad_id = next(_run_ids), next(_run_ids)
    bad = bytearray(guest.run_frame(bad_id, PROBE_SLOTS - 2))
    bad[3] ^= 0x10  # a flipped bit: the CRC no longer matches
    (answer,) = guest.exchange(bytes(bad) + guest.run_frame(good_id, PROBE_SLOTS - 2))
    assert answer.fields()[0]["run_id"] == good_id
    assert guest.poll(0.3) == b""  # and nothing for the corrupted one


@pytest.mark.parametrize("source", ["nop", "add eax, 1", "mov rax, 0x1122334455667788",
                                    "vzeroupper"])
def test_measure_length_single_steps_the_first_instruction(guest, source):
    code = assemble(source + "; ret")
    expected = next(X86_64.disassembler.disasm(code, 0, 1)).size
    result, _ = run(guest, code, flags=PROBE_RUN_FLAG_MEASURE_LENGTH)
    if result["outcome"] == Outcome.FAULT:  # vzeroupper without AVX: #UD before any step
        assert (result["fault_vector"], result["length"]) == (UD, 0)
    else:
        assert result["length"] == expected


def test_random_vetted_probes_match_unicorn_or_differ_explainably(guest):
    rng = random.Random(2024)
    items = []
    while len(items) < 200:
        probe = Probe(X86_64, rng.randbytes(rng.randrange(1, 33)))
        verdict = vet(probe)
        if verdict.accepted:
            items.append((probe, verdict.prediction))
    # The campaign's run ids (from 0) are clear of run()'s; no fresh boot is needed, and
    # none is wanted: a boot costs more than the whole campaign.
    report = Campaign(guest, Policy(window=32)).run(items)
    assert_alive(guest)
    assert report.restarts == 0 and len(report.results) == len({p.content_hash for p, _ in items})
    divergent = [r for r in report.results.values() if r.diverges]
    for r in divergent:
        # Where they disagree both sides faulted: Unicorn ignores IDT gate privilege
        # (`int N` from ring 3 is #GP on the guest) and QEMU 7.2 TCG decodes some
        # encodings real CPUs reject (e.g. C6 /5), running on into the int3 fill.
        print("divergence", r.probe.code.hex(), r.observation, r.prediction.hex())
        assert r.observation.outcome == Outcome.FAULT and r.prediction[0] == Outcome.FAULT
    assert len(divergent) <= len(report.results) // 10
