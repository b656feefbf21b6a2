"""riscv64 instruction discovery cross-checked against what the hart claims
(misa and the device tree's riscv,isa), on TCG virt boards whose CPU options
say independently which extensions exist."""

from __future__ import annotations

import itertools

import pytest

from arch import RISCV64
from discovery.inventory import Inventory
from kernel.guest import build_guest
from link.qemu_link import QemuLink
from probes.families import discovery, isa_riscv, riscv_claims
from qemu.boards import board

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]

ILLEGAL_INSTRUCTION = 2  # mcause (RISC-V Privileged Architecture, "mcause values")


def compressed_results(cpu: str) -> tuple[frozenset[str], list]:
    """Every 4th compressed candidate, run on a virt board with `cpu`."""
    chosen = [c for c in isa_riscv.candidates() if len(c.encoding) == 2][::4]
    with QemuLink(board("virt", accel="tcg", cpu=cpu), build_guest(RISCV64)) as link:
        claims = riscv_claims.claimed_extensions(Inventory.from_boot(link.first_boot))
        runs = link_results(link, discovery.probes_for(RISCV64, chosen))
    return claims, runs


def link_results(link: QemuLink, probes) -> list:
    from probes.campaign import Campaign
    from probes.run import POLICY
    from probes.vet import vet

    items = [(p, None) for p in probes if vet(p).accepted]
    found: list = []
    Campaign(link, POLICY, on_batch=found.extend, on_quarantine=lambda *_: None).run(items)
    return found


def test_without_c_compressed_encodings_are_claimed_absent_and_illegal():
    claims, results = compressed_results("rv64,c=false")
    assert "c" not in claims and {"i", "m"} <= claims  # QEMU's c=false removes C, nothing else
    attributed = [r for r in results
                  if riscv_claims.claimed_supported(r.probe.meta["candidate"], claims) is False]
    assert len(attributed) > 50
    for r in attributed:
        assert r.observation.fault is not None and r.observation.fault.vector == ILLEGAL_INSTRUCTION
        finding = discovery.finding(RISCV64, r.probe.meta["candidate"], r.observation,
                                    claimed_supported=False)
        assert "CPU" not in (finding.disagreement or "")  # consistent: claimed absent, rejected


def test_with_c_claimed_compressed_encodings_execute_without_claim_findings():
    claims, results = compressed_results("rv64")
    assert {"c", "i", "m", "a", "f", "d"} <= claims
    attributed = [r for r in results
                  if riscv_claims.claimed_supported(r.probe.meta["candidate"], claims)]
    assert len(attributed) > 50
    executed = [r for r in attributed
                if discovery.behaviour(RISCV64, r.observation) == discovery.Behaviour.EXECUTES]
    assert len(executed) > 0.9 * len(attributed)
    # The guest measured each one's length (address triggers); the ISA's encoding rule says 2.
    lengths = {r.observation.length for r in executed
               if not r.probe.meta["candidate"].transfers_control}
    assert lengths == {2}


def test_a_claim_mismatch_is_a_finding_either_way():
    mul = next(c for c in itertools.islice(isa_riscv.candidates(), 2000) if c.capstone_text and
               c.capstone_text.startswith("mul "))
    assert riscv_claims.required_extensions(mul) == ("m",)
    assert riscv_claims.claimed_supported(mul, frozenset("ia")) is False
