"""Probe families: generated spaces, their encodings, and the statistics."""

import random

import pytest

from arch import RISCV64, X86_64
from contract.probe_abi import Outcome, Privilege
from probes.families import cpuid, csr, discovery, isa_riscv, isa_x86, memlat, msr, timing
from probes.probe import Probe
from probes.vet import vet
from tests.test_probes_classify import _gnu_as_riscv


def test_csr_sweep_covers_all_4096_and_matches_gnu_as():
    probes = list(csr.csr_sweep())
    assert len(probes) == 4096 and len({p.content_hash for p in probes}) == 4096
    assert all(p.privilege == Privilege.PRIVILEGED for p in probes)
    words = _gnu_as_riscv(["csrr t0, mstatus", "csrr t0, 0x7c0", "rdcycle t0"])
    assert [probes[n].code[:4] for n in (0x300, 0x7C0, 0xC00)] == words


def test_csr_probe_runs_privileged_and_faults_on_a_missing_csr():
    assert vet(csr.csr_probe(0x300)).observation.outcome == Outcome.RETURNED  # mstatus exists
    # the same code as a user probe
    assert not vet(Probe(RISCV64, csr.csr_probe(0x300).code)).accepted


def test_cpuid_sweep_reads_the_vendor_string():
    probes = list(cpuid.cpuid_sweep(subleaves=1))
    leaf0 = next(p for p in probes if p.meta["leaf"] == 0)
    out = vet(leaf0).observation.output
    vendor = out[4:8] + out[12:16] + out[8:12]  # ebx, edx, ecx
    assert vendor in (b"GenuineIntel", b"AuthenticAMD")
    assert {p.meta["leaf"] for p in probes} >= {0, 1, 7, 0x8000_0000, 0x4000_0000}


@pytest.mark.parametrize("leaf, subleaf", [(0, 0), (7, 1), (0x4000_0000, 0), (0x8000_0023, 7)])
def test_a_cpuid_probe_is_its_source_assembled(leaf, subleaf):
    assert cpuid.cpuid_probe(leaf, subleaf).code == X86_64.assemble(
        cpuid.SOURCE.format(leaf=leaf, subleaf=subleaf))


def test_msr_sweep_is_privileged_over_documented_ranges():
    probes = msr.msr_sweep(((0x10, 0x12), (0xC000_0080, 0xC000_0081)))
    assert [p.meta["msr"] for p in probes] == [0x10, 0x11, 0xC000_0080]
    assert all(vet(msr.msr_probe(m)).accepted for m in (0x10, 0xC000_0080))


@pytest.mark.parametrize("arch, generate", [(X86_64, lambda: isa_x86.candidates(("0f",))),
                                            (RISCV64, isa_riscv.candidates)])
def test_discovery_candidates_are_classified_and_cross_checked(arch, generate):
    findings = []
    for probe in discovery.probes_for(arch, generate()):
        verdict = vet(probe)
        if verdict.accepted and verdict.observation is not None:
            findings.append(discovery.finding(arch, probe.meta["candidate"], verdict.observation))
    behaviours = {f.behaviour for f in findings}
    assert (discovery.Behaviour.EXECUTES in behaviours
            and discovery.Behaviour.UNDEFINED in behaviours)


def test_finding_flags_both_directions():
    known = discovery.Candidate(b"\x0f\xa2", "0f", 2, "cpuid")
    unknown = discovery.Candidate(b"\x0f\x04", "0f", None, None)
    from probes.probe import Fault, Observation
    ud = Observation(Outcome.FAULT, fault=Fault(6, 0, 0))
    ok = Observation(Outcome.RETURNED)
    assert discovery.finding(X86_64, known, ud).disagreement
    assert discovery.finding(X86_64, unknown, ok).disagreement
    assert discovery.finding(X86_64, known, ok).disagreement is None
    assert discovery.finding(X86_64, known, ok, measured_length=3).disagreement
    assert discovery.finding(X86_64, known, ok, claimed_supported=False).disagreement
    # A taken jump's measured "length" is its target: no finding.
    jump = discovery.Candidate(b"\xeb\x05", "legacy", 2, "jmp 7", transfers_control=True)
    assert discovery.finding(X86_64, jump, ok, measured_length=7).disagreement is None
    branch = discovery.Candidate(bytes.fromhex("6300b500"), "base", 4, "beq a0, a1, 0",
                                 transfers_control=True)
    assert discovery.finding(RISCV64, branch, ok, measured_length=0).disagreement is None
    bit_clear = discovery.Candidate(bytes.fromhex("33 15 b5 48"), "zbs", 4, "bclr a0, a0, a1")
    assert discovery.finding(RISCV64, bit_clear, ok, measured_length=2).disagreement  # not a branch


def test_nanobench_estimate_recovers_cost_despite_outliers():
    rng = random.Random(1)
    per, overhead, n = 3.0, 40.0, 100

    def runs(unroll):
        samples = [overhead + per * unroll + rng.uniform(-2, 2) for _ in range(15)]
        samples[0] += 5000  # warm-up
        samples[9] += 900  # an interrupt
        return samples
    est = timing.estimate(runs(n), runs(2 * n), n)
    assert est.per_instance == pytest.approx(per, abs=0.05)
    assert est.overhead == pytest.approx(overhead, abs=5)


def test_timing_probes_are_vetted():
    for probe in timing.timing_pair(X86_64, X86_64.assemble("add rax, rbx"), 50):
        assert vet(probe).accepted
        assert vet(probe).prediction is None  # rdtsc: only hardware can answer


@pytest.mark.parametrize("arch", [X86_64, RISCV64])
def test_pointer_chase_visits_every_line_and_levels_are_found(arch):
    from contract.probe_abi import AREA

    size = 16384
    verdict = vet(memlat.chase_probe(size, steps=size // memlat.LINE, arch=arch))
    assert verdict.accepted, verdict.reason
    # after exactly `lines` steps a full cycle returns to the start of scratch
    scratch = AREA["scratch"].base(arch.probes)
    assert int.from_bytes(verdict.observation.output[8:16], "little") == scratch
    partway = vet(memlat.chase_probe(size, steps=37, arch=arch)).observation.output[8:16]
    assert int.from_bytes(partway, "little") == memlat.chase_end(arch, size, 37) != scratch
    curve = [(4096, 4.0), (8192, 4.1), (32768, 4.0), (65536, 12.0), (262144, 12.5), (1 << 20, 40.0)]
    assert [lv.up_to for lv in memlat.levels(curve)] == [32768, 262144, 1 << 20]
