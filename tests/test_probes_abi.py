"""The probe ABI layout and the probe messages are consistent as data."""

import struct

import pytest

from arch import ARCHES, X86_64
from contract.probe_abi import AREAS, PAGE_SIZE, PROBE_REGION_SIZE
from probes.probe import Probe
from contract.protocol import LAYOUTS, Msg
from contract.protocol import asm_constants as protocol_constants


@pytest.mark.parametrize("arch", ARCHES)
def test_areas_are_naturally_aligned_disjoint_and_inside_the_region(arch):
    spans = sorted((a.base(arch.probes), a.end(arch.probes)) for a in AREAS)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end < start  # a guard gap between any two areas
    for area in AREAS:
        assert area.size % PAGE_SIZE == 0 and area.size & (area.size - 1) == 0
        assert area.base(arch.probes) % area.size == 0  # one NAPOT PMP entry / whole pages each
        region = arch.probes.region_base
        assert region <= area.base(arch.probes) and area.end(arch.probes) <= region + PROBE_REGION_SIZE
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
    host_to_guest = {"PROBE_LOAD", "PROBE_RUN", "PROBE_LOAD_RUN", "PROBE_RUN_BATCH", "PROBE_STATUS_REQUEST"}
    for msg in Msg:
        if msg.name.startswith("PROBE_"):
            assert (msg.value >= 0x80) == (msg.name in host_to_guest)
            layout = LAYOUTS[msg]
            assert layout.size == struct.calcsize("<" + "".join(c for _, c in layout.fields))
    consts = protocol_constants()
    assert consts["PROBE_RESULT_STATUS"] % 8 == 0  # 64-bit fields naturally aligned for the guest
    assert consts["MSG_PROBE_RUN"] == Msg.PROBE_RUN


def test_content_hash_covers_arch_class_code_input_only():
    a = Probe(X86_64, b"\xc3", input=b"x", budget=10)
    assert a.content_hash == Probe(X86_64, b"\xc3", input=b"x", budget=99, family="other").content_hash
    assert a.content_hash != Probe(X86_64, b"\xc3", input=b"y").content_hash
    assert Probe(X86_64, b"\xc3\x00").content_hash != Probe(X86_64, b"\xc3", input=b"\x00").content_hash
