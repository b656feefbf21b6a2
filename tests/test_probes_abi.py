"""The probe ABI layout and the probe messages are consistent as data."""

import dataclasses
import struct

import pytest

from arch import ARCHES, RISCV64, X86_64
from contract.probe_abi import AREAS, PAGE_SIZE, PROBE_REGION_SIZE, Outcome, Privilege
from contract.protocol import LAYOUTS, Msg
from contract.protocol import asm_constants as protocol_constants
from probes.emulator import ProbeEmulator
from probes.probe import Probe


@pytest.mark.parametrize("arch", ARCHES)
def test_areas_are_naturally_aligned_disjoint_and_inside_the_region(arch):
    spans = sorted((a.base(arch.probes), a.end(arch.probes)) for a in AREAS)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end < start  # a guard gap between any two areas
    for area in AREAS:
        assert area.size % PAGE_SIZE == 0 and area.size & (area.size - 1) == 0
        assert area.base(arch.probes) % area.size == 0  # one NAPOT PMP entry / whole pages each
        region = arch.probes.region_base
        assert (region <= area.base(arch.probes)
                and area.end(arch.probes) <= region + PROBE_REGION_SIZE)
    kernel_base, kernel_size = arch.probes.kernel_area
    assert kernel_base + kernel_size <= arch.probes.region_base


@pytest.mark.parametrize("arch", ARCHES)
def test_asm_constants_match_the_entry_convention(arch):
    consts = arch.probes.asm_constants()
    regs = arch.probes.entry_state(0).registers
    first_arg = regs[arch.probes.argument_registers[0]]
    assert first_arg == consts["PROBE_INPUT_BASE"]
    assert consts["PROBE_STACK_TOP"] == consts["PROBE_STACK_BASE"] + consts["PROBE_STACK_SIZE"]
    assert all(isinstance(v, int) and v >= 0 for v in consts.values())


def test_probe_messages_have_their_direction_and_aligned_fields():
    host_to_guest = {"PROBE_LOAD", "PROBE_RUN", "PROBE_LOAD_RUN", "PROBE_RUN_BATCH",
                     "PROBE_STATUS_REQUEST"}
    for msg in Msg:
        if msg.name.startswith("PROBE_"):
            assert (msg.value >= 0x80) == (msg.name in host_to_guest)
            layout = LAYOUTS[msg]
            assert layout.size == struct.calcsize("<" + "".join(c for _, c in layout.fields))
    consts = protocol_constants()
    assert consts["PROBE_RESULT_STATUS"] % 8 == 0  # 64-bit fields naturally aligned for the guest
    assert consts["MSG_PROBE_RUN"] == Msg.PROBE_RUN


def test_content_hash_covers_everything_that_changes_a_result_and_no_bookkeeping():
    # Budget and output size are sent with the probe and change what a run returns (a
    # budget too small turns RETURNED into TIMEOUT; output_size is how many output bytes
    # come back: see the emulator test below), so results stored under one hash must
    # come from one budget and one output size.  `family` only says which generator made
    # the probe: the same experiment from two families is one probe.
    a = Probe(X86_64, b"\xc3", input=b"x", budget=10)
    assert a.content_hash == Probe(X86_64, b"\xc3", input=b"x", budget=10,
                                   family="other").content_hash
    assert a.content_hash != Probe(X86_64, b"\xc3", input=b"x", budget=99).content_hash
    assert a.content_hash != Probe(X86_64, b"\xc3", input=b"y").content_hash
    assert (Probe(X86_64, b"\xc3\x00").content_hash
            != Probe(X86_64, b"\xc3", input=b"\x00").content_hash)


BASE = Probe(X86_64, b"\x90\xc3", input=b"in", budget=10, output_size=8)
# One other value for each field that makes up a probe's identity.  A field added to
# Probe without an entry here (or compare=False) fails the test below: decide first
# whether it changes what a run returns.
IDENTITY_CHANGES = {
    "arch": dict(arch=RISCV64),  # the same bytes mean something else on another ISA
    "code": dict(code=b"\x90\x90\xc3"),
    "privilege": dict(privilege=Privilege.PRIVILEGED),
    "input": dict(input=b"IN"),
    "budget": dict(budget=11),
    "output_size": dict(output_size=16),
    "measure_length": dict(measure_length=True),  # the guest then reports a length
}
BOOKKEEPING = {"family": dict(family="isa"), "meta": dict(meta={"candidate": 1})}


def test_every_field_is_either_identity_or_bookkeeping():
    compared = {f.name for f in dataclasses.fields(Probe) if f.compare}
    assert compared == set(IDENTITY_CHANGES)
    assert {f.name for f in dataclasses.fields(Probe)} - compared == set(BOOKKEEPING)


@pytest.mark.parametrize("name", sorted(IDENTITY_CHANGES))
def test_each_identity_field_changes_the_hash_the_tag_and_equality(name):
    other = dataclasses.replace(BASE, **IDENTITY_CHANGES[name])
    assert other.content_hash != BASE.content_hash and other != BASE
    assert other.tag != BASE.tag  # the guest's slot check sees another probe


@pytest.mark.parametrize("name", sorted(BOOKKEEPING))
def test_bookkeeping_changes_neither_hash_nor_equality(name):
    other = dataclasses.replace(BASE, **BOOKKEEPING[name])
    assert other.content_hash == BASE.content_hash and other == BASE and hash(other) == hash(BASE)


def test_budget_and_output_size_change_what_the_emulator_returns():
    """Why both are identity, by Unicorn: the same code and input, other results."""
    code = X86_64.assemble("mov rax, 0x1122334455667788\nmov [rsi], rax\nmov [rsi+8], rax\n"
                           "nop\nnop\nnop\nnop\nret")
    emulator = ProbeEmulator(X86_64)
    whole = emulator.run(Probe(X86_64, code, budget=64, output_size=16)).observation
    short = emulator.run(Probe(X86_64, code, budget=64, output_size=8)).observation
    starved = emulator.run(Probe(X86_64, code, budget=4, output_size=16)).observation
    assert (whole.outcome == Outcome.RETURNED
            and whole.output == bytes.fromhex("8877665544332211") * 2)
    assert short.output == whole.output[:8]
    assert starved.outcome == Outcome.TIMEOUT
