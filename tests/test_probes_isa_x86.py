"""x86-64 instruction discovery checked against the CPU's CPUID claims."""

import io
import json

import pytest
from rich.console import Console

from arch import X86_64
from contract.probe_abi import Outcome
from probes.families.discovery import Candidate, finding
from probes.families.x86_claims import claimed_supported, required_features
from probes.probe import Fault, Observation
from toolchain.x86asm import assemble_snippet


def candidate(source: str) -> Candidate:
    code = assemble_snippet(source, bits=64)
    return Candidate(code, "test", len(code), source)


@pytest.mark.parametrize("source, needed", [
    ("vaddps ymm0, ymm1, ymm2", {"avx"}),
    ("aesenc xmm0, xmm1", {"aes"}),
    ("andn rax, rbx, rcx", {"bmi1"}),
    ("pshufb xmm0, xmm1", {"ssse3"}),
])
def test_capstone_groups_name_the_linux_flag(source, needed):
    assert required_features(candidate(source)) == needed


def test_base_instructions_carry_no_claim():
    assert required_features(candidate("add rax, rbx")) is None
    assert claimed_supported(candidate("add rax, rbx"), frozenset()) is None


def test_mismatches_in_both_directions_are_findings():
    avx = candidate("vaddps ymm0, ymm1, ymm2")
    runs = Observation(Outcome.RETURNED)
    undefined = Observation(Outcome.FAULT, fault=Fault(6, 0, 0))
    without, with_avx = frozenset({"sse2"}), frozenset({"sse2", "avx"})
    assert "does not claim" in finding(
        X86_64, avx, runs, claimed_supported=claimed_supported(avx, without)).disagreement
    assert "claims the extension" in finding(
        X86_64, avx, undefined, claimed_supported=claimed_supported(avx, with_avx)).disagreement
    assert finding(X86_64, avx, undefined,
                   claimed_supported=claimed_supported(avx, without)).disagreement is None


@pytest.mark.qemu
def test_isa_run_on_a_board_states_the_claims(tmp_path):
    from cli.probe import probe_command
    from qemu.boards import board

    out = io.StringIO()
    status = probe_command(board("q35", accel="tcg"), "isa", limit=150, db=str(tmp_path / "db"),
                           console=Console(file=out, width=200),
                           json_path=str(tmp_path / "isa.json"))
    report = out.getvalue()
    assert status == 0 and "instruction discovery findings" in report
    assert "claimed:" in report and "sse2" in report and "lahf_lm" in report
    # The guest single-stepped each candidate: where it executes and capstone decodes it,
    # the two lengths agree (TCG's decoder against capstone's).
    results = json.loads((tmp_path / "isa.json").read_text())["results"]
    measured = [r["candidate"] for r in results
                if r["outcome"] == "returned" and r["candidate"]["capstone"] is not None]
    assert len(measured) > 20
    assert all(c["measured_length"] == c["capstone_length"] for c in measured
               if not c["capstone"].startswith(("j", "call", "ret", "loop")))
