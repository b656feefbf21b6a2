"""The RISC-V assembler back end: GNU as/ld behind the shared interface, every
instruction re-decoded by capstone, reproducible output."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import capstone
import pytest
from cobs import cobs
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st
from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV64, Uc, riscv_const
from unicorn.riscv_const import UC_RISCV_REG_A0, UC_RISCV_REG_RA, UC_RISCV_REG_SP

from contract.riscv64.csrs import CATALOGUE, csr_names
from kernel.riscv64 import build as kernel_build
from kernel.riscv64.generated import csr_probes_source
from tests.frame_data import FRAME_LIKE
from toolchain.program import AssemblyError, Section
from toolchain.riscvasm import assemble, assemble_snippet
from toolchain.riscvcheck import statement_mnemonic


def test_snippet_bytes_are_the_isa_encoding():
    # addi a0, a0, 1 = imm 1 | rs1 10 | funct3 0 | rd 10 | opcode 0x13 (RISC-V unprivileged spec)
    expected = (1 << 20 | 10 << 15 | 10 << 7 | 0x13).to_bytes(4, "little")
    assert assemble_snippet("addi a0, a0, 1", march="rv64i") == expected


def test_constants_arrive_as_symbols():
    code = assemble_snippet("li a0, ANSWER", constants={"ANSWER": 42}, march="rv64i")
    assert code == (42 << 20 | 10 << 7 | 0x13).to_bytes(4, "little")  # addi a0, zero, 42


def test_compressed_instructions_are_checked_too():
    assert len(assemble_snippet("c.nop\nc.nop")) == 4


def test_a_compressed_form_is_checked_against_each_statement_it_stands_for():
    """GNU as gives C.MV (funct4 1000, rd, rs2, op 10) for `add rd, zero, rs2`, which is
    what C.MV expands to in the RVC chapter, and for `mv` (`addi rd, rs, 0`): neither is
    refused (a search's `add a0, zero, a1` once stopped it), while `add a0, a1, zero` is
    not C.MV's pattern and stays four bytes."""
    c_mv = (0b1000 << 12 | 10 << 7 | 11 << 2 | 0b10).to_bytes(2, "little")  # c.mv a0, a1
    for statement in ("add a0, zero, a1", "mv a0, a1", "addi a0, a1, 0"):
        assert assemble_snippet(statement, march="rv64gc") == c_mv
    assert len(assemble_snippet("add a0, a1, zero", march="rv64gc")) == 4


def test_errors_name_file_and_line(tmp_path):
    source = tmp_path / "bad.s"
    source.write_text("nop\naddi a0, a0,\n")
    with pytest.raises(AssemblyError) as caught:
        assemble([Section("s", 0x80000000, (source,))])
    assert caught.value.file.endswith("bad.s") and caught.value.line == 2


def test_capstone_catches_code_the_listing_does_not_describe(tmp_path):
    # GNU as 2.40 pads `.align` after odd-sized data in code *after* the next
    # instruction, leaving `ret` misaligned: the check must refuse it.
    with pytest.raises(AssemblyError) as caught:
        assemble_snippet("x: .byte 1\n.align 2\nret\n", march="rv64i")
    assert "snippet.s:3" in str(caught.value)


def test_one_namespace_across_sections(tmp_path):
    a, b = tmp_path / "a.s", tmp_path / "b.s"
    a.write_text("start:\n    call helper\n")
    b.write_text("helper:\n    ret\n")
    program = assemble([Section("one", 0x80000000, (a,)), Section("two", 0x80001000, (b,))],
                       march="rv64i")
    assert program.symbols["helper"].address == 0x80001000
    assert program.symbols["helper"].file == str(b) and program.symbols["helper"].line == 1
    assert program.symbolize(0x80000004) == "start+0x4"
    b.write_text("start:\n    ret\n")
    with pytest.raises(AssemblyError, match="defined twice"):
        assemble([Section("one", 0x80000000, (a,)), Section("two", 0x80001000, (b,))])


def test_sections_may_not_be_switched_inside_sources(tmp_path):
    source = tmp_path / "s.s"
    source.write_text(".data\n.word 1\n")
    with pytest.raises(AssemblyError, match="must not switch sections"):
        assemble([Section("s", 0x80000000, (source,))])


def test_kernel_elf_is_reproducible_and_loads_at_dram(tmp_path):
    first = kernel_build.build(tmp_path / "a").elf.read_bytes()
    second = kernel_build.build(tmp_path / "b").elf.read_bytes()
    assert first == second
    with (tmp_path / "a" / "kernel.elf").open("rb") as f:
        elf = ELFFile(f)
        assert elf["e_machine"] == "EM_RISCV" and elf["e_entry"] == 0x80000000
        assert ([s["p_vaddr"] for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
                == [0x80000000])


def test_kernel_uses_no_compressed_instructions(tmp_path):
    # harts started with -cpu rv64,c=false must be able to run it
    program = kernel_build.build(tmp_path).program
    decoder = capstone.Cs(capstone.CS_ARCH_RISCV,
                          capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
    code, base = program.sections["kernel"], program.bases["kernel"]
    mnemonics = [i.mnemonic for line in program.listing
                 if line.size and statement_mnemonic(line.text) is not None
                 for i in decoder.disasm(code[line.address - base:][:line.size], line.address)]
    assert len(mnemonics) > 500
    assert not [m for m in mnemonics if m.startswith("c.")]


# --- kernel routines, run in unicorn against zlib and the cobs library --------------

SCRATCH, RETURN_ADDRESS = 0x90000000, 0x90100000


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    return kernel_build.build(tmp_path_factory.mktemp("rv")).program


def _call(program, routine: str, memory: dict[int, bytes], **arguments: int) -> Uc:
    """Run one kernel routine to its return; `arguments` name registers (a0, a1...)."""
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    base, code = program.bases["kernel"], program.sections["kernel"]
    uc.mem_map(base, 0x400000)
    uc.mem_map(SCRATCH, 0x200000)
    uc.mem_write(base, code)
    for address, data in memory.items():
        uc.mem_write(address, data)
    uc.reg_write(UC_RISCV_REG_SP, RETURN_ADDRESS - 16)
    uc.reg_write(UC_RISCV_REG_RA, RETURN_ADDRESS)
    for name, value in arguments.items():
        uc.reg_write(getattr(riscv_const, f"UC_RISCV_REG_{name.upper()}"), value)
    uc.emu_start(program.symbols[routine].address, RETURN_ADDRESS, count=10_000_000)
    return uc


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=1200), st.integers(0, 7))
def test_kernel_crc32_matches_zlib(kernel, data, misalignment):
    at = SCRATCH + misalignment  # four bytes a step once aligned, bytes before and after
    uc = _call(kernel, "crc32", {at: data}, a0=at, a1=len(data))
    assert uc.reg_read(UC_RISCV_REG_A0) == zlib.crc32(data)


@settings(max_examples=80, deadline=None)
@given(FRAME_LIKE)
def test_kernel_cobs_encode_matches_the_cobs_library(kernel, data):
    out = SCRATCH + 0x10000
    uc = _call(kernel, "cobs_encode", {SCRATCH: data}, a0=SCRATCH, a1=len(data), a2=out)
    length = uc.reg_read(UC_RISCV_REG_A0)
    assert bytes(uc.mem_read(out, length)) == cobs.encode(data)


@settings(max_examples=80, deadline=None)
@given(FRAME_LIKE)
def test_kernel_cobs_decode_inverts_the_cobs_library(kernel, data):
    encoded = cobs.encode(data)
    uc = _call(kernel, "cobs_decode", {SCRATCH: encoded}, a0=SCRATCH, a1=len(encoded))
    length = uc.reg_read(UC_RISCV_REG_A0)
    assert bytes(uc.mem_read(SCRATCH, length)) == data  # decoded in place


@pytest.mark.parametrize("encoded", [b"\x03a", b"\x02a\x00\x01", b"\x00", b"\x05abc"])
def test_kernel_cobs_decode_refuses_what_is_not_cobs(kernel, encoded):
    with pytest.raises(cobs.DecodeError):
        cobs.decode(encoded)
    uc = _call(kernel, "cobs_decode", {SCRATCH: encoded}, a0=SCRATCH, a1=len(encoded))
    assert uc.reg_read(UC_RISCV_REG_A0) == 2**64 - 1


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 7), st.integers(0, 320), st.integers(0, 7))
def test_console_read_run_takes_a_buffer_up_to_its_delimiter(kernel, buffered, misalignment,
                                                             room, to_misalignment):
    """The receive buffer in hand is copied up to its first zero byte, but never its last
    byte (console_getc takes that one and gives the buffer back) and never past the room
    the frame has left; the frame's side need not be aligned."""
    source, to = SCRATCH + misalignment, SCRATCH + 0x10000 + to_misalignment
    next_at, end_at = (kernel.symbols[n].address for n in ("console_rx_next", "console_rx_end"))
    memory = {source: buffered, next_at: struct.pack("<Q", source),
              end_at: struct.pack("<Q", source + len(buffered))}
    uc = _call(kernel, "console_read_run", memory, a0=to, a1=room)
    takeable = buffered[:max(len(buffered) - 1, 0)][:room].split(b"\0")[0]
    copied = uc.reg_read(UC_RISCV_REG_A0)
    assert copied == len(takeable)
    assert bytes(uc.mem_read(to, copied)) == takeable
    assert struct.unpack("<Q", uc.mem_read(next_at, 8))[0] == source + copied


def test_console_read_run_leaves_alone_a_console_with_nothing_in_hand(kernel):
    uc = _call(kernel, "console_read_run", {}, a0=SCRATCH, a1=100)  # next = end = 0: none
    assert uc.reg_read(UC_RISCV_REG_A0) == 0


def test_csr_catalogue_fits_the_bitmap_and_is_probed_in_order():
    assert len(CATALOGUE) <= 64
    assert len({c.number for c in CATALOGUE}) == len(CATALOGUE)
    probes = [line for line in csr_probes_source().splitlines() if "probe_csr " in line]
    assert [int(p.split(",")[1].split("#")[0], 16) for p in probes] == [c.number for c in CATALOGUE]
    assert csr_names(0b101) == [CATALOGUE[0].name, CATALOGUE[2].name]


def test_floor_exits_through_sifive_test(tmp_path):
    elf = kernel_build.build_floor(tmp_path)
    with Path(elf).open("rb") as f:
        text = ELFFile(f).get_section_by_name(".sec.floor").data()
    assert len(text) >= 12
