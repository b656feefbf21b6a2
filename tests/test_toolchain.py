"""The x86 toolchain: assembler (keystone + capstone check), ELF writer, disk
images.  Encodings are judged by capstone and struct, ELF files by pyelftools,
the boot sector by QEMU's isa-debug-exit device."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import capstone
import pytest
from elftools.elf.elffile import ELFFile

from toolchain.elf import elf_bytes, write_elf
from toolchain.expr import ExprError, evaluate
from toolchain.image import SECTOR, disk_image, sectors
from toolchain.x86asm import AssemblyError, Program, Section, assemble, assemble_snippet

MODES = {16: capstone.CS_MODE_16, 32: capstone.CS_MODE_32, 64: capstone.CS_MODE_64}


def decode(code: bytes, bits: int, address: int) -> list[capstone.CsInsn]:
    decoder = capstone.Cs(capstone.CS_ARCH_X86, MODES[bits])
    decoder.detail = True
    return list(decoder.disasm(code, address))


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def code_at(program: Program, section: str, address: int, size: int) -> bytes:
    start = address - program.bases[section]
    return program.sections[section][start : start + size]


def instruction_at(program: Program, label: str, bits: int) -> capstone.CsInsn:
    symbol = program.symbols[label]
    return decode(code_at(program, symbol.section, symbol.address, 16), bits, symbol.address)[0]


# --- keystone mis-encodings are caught ------------------------------------


def test_ljmp_misencoding_in_32bit_code_is_an_error_naming_file_and_line(tmp_path):
    source = write(tmp_path, "pm.s", ".code32\nnop\nljmp 0x8:0x100000   ; to the kernel\n")
    with pytest.raises(AssemblyError) as caught:
        assemble([Section("stage2", 0x8000, (source,), bits=16)], {})
    message = str(caught.value)
    assert message.startswith(f"{source}:3: ljmp 0x8:0x100000: ")
    assert "0x100000" in message.split(": ", 2)[2]


def test_far_jump_written_as_bytes_decodes_to_the_intended_target():
    code = assemble_snippet(".byte 0xEA\n.long target\n.word CODE\n.org 0x100000\ntarget:",
                            32, 0xFFFF9, {"CODE": 8})
    far = decode(code[:7], 32, 0xFFFF9)[0]
    assert far.mnemonic == "ljmp" and [op.imm for op in far.operands] == [8, 0x100000]


def test_fs_absolute_operand_turned_rip_relative_is_an_error():
    with pytest.raises(AssemblyError, match="0x10"):
        assemble_snippet("mov byte ptr fs:[0x10], 1", 64, 0x1000)


def test_correct_far_jump_in_16bit_code_passes_the_check():
    code = assemble_snippet("ljmp 0x8:0x7e00", 16, 0x7C00)
    assert [op.imm for op in decode(code, 16, 0x7C00)[0].operands] == [8, 0x7E00]


def test_iret_without_size_in_64bit_code_is_an_error():
    # keystone encodes it 66 CF, a 16-bit iret; iretq is what long mode needs
    with pytest.raises(AssemblyError, match="operand-size prefix"):
        assemble_snippet("iret", 64)
    assert assemble_snippet("iretq", 64) == bytes.fromhex("48cf")


def test_16bit_call_ret_and_push_use_the_16bit_operand_size():
    source = "call routine\npush 0x10\npush 0x1234\njmp done\n.space 200\nroutine: ret\ndone: retf"
    code = assemble_snippet(source, 16, 0x7C00)
    instructions = decode(code, 16, 0x7C00)
    assert all(i.prefix[2] == 0 for i in instructions)
    call, push8, push16, jump = instructions[:4]
    assert (call.size, call.operands[0].imm) == (3, 0x7C00 + 3 + 2 + 3 + 3 + 200)
    assert push8.operands[0].imm == 0x10 and push16.operands[0].imm == 0x1234
    assert jump.operands[0].imm == call.operands[0].imm + 1
    assert code[-2:] == b"\xc3\xcb"


KERNEL_INSTRUCTIONS = {
    16: """cli\nxor ax, ax\nmov ds, ax\nmov ss, ax\nmov sp, 0x7c00\nmov si, 0x7e00\nlodsb
        int 0x10\nmov ah, 0x42\nint 0x13\njc $\nin al, 0x92\nor al, 2\nout 0x92, al
        mov eax, cr0\nor eax, 1\nmov cr0, eax\nlgdt [0x7e00]\nmov word ptr [bx + si + 4], 0x10
        mov eax, dword ptr es:[di]\npush es\npop ds\nrep movsw\nmov ecx, 0xc0000080\nrdmsr""",
    32: """mov eax, cr4\nor eax, 0x20\nmov cr4, eax\nmov ax, 0x10\nmov ds, ax\nmov esp, 0x90000
        mov dword ptr [edi + 4], 0x12345\nrep stosd\nwrmsr\ncpuid\nbt edx, 29\njnc $
        iretd\npushfd\nmovzx eax, byte ptr [esi]\nshl eax, 12\ntest al, 1\nsetz al""",
    64: """mov rax, 0xffffffff80000000\nmov rax, 0x123456789abc\nmov cr3, rax\ninvlpg [rax]
        lidt [0x5000]\nltr ax\niretq\npush rbp\nmov rbp, rsp\nsub rsp, 0x40\nleave\nret
        mov qword ptr [rsp + 8], rdi\nmovzx eax, word ptr [rdi + rcx*2 + 0x10]\nrep stosq
        xchg bx, bx\nin eax, dx\nout dx, al\npause\nhlt\nsyscall\nsti\nint3\nud2
        mov al, byte ptr gs:[rax + 8]\nlock cmpxchg qword ptr [rdi], rsi\ncmovz rax, rbx
        pxor xmm0, xmm0\nmovdqa xmm1, xmm0\nmov ax, 1\nshr rax, 1\nsar ecx, cl\ncall rax
        jmp qword ptr [rax + 8]\nmovsxd rax, dword ptr [rbx]\ncqo\nidiv rcx""",
}


@pytest.mark.parametrize("bits", sorted(KERNEL_INSTRUCTIONS))
def test_common_system_instructions_pass_the_check(bits):
    for line in KERNEL_INSTRUCTIONS[bits].splitlines():
        code = assemble_snippet(line.strip(), bits, 0x8000)
        (decoded,) = decode(code, bits, 0x8000)
        assert decoded.size == len(code), line


# --- symbols, layout and relaxation ---------------------------------------


def test_boot_sector_jumps_to_a_label_in_another_section_and_file(tmp_path):
    boot = write(tmp_path, "boot.s", "boot_entry:\n  jmp stage2_entry\n.org 0x7dfe\n.word 0xaa55\n")
    stage2 = write(tmp_path, "stage2.s",
                   ".space 5\nstage2_entry:\n  mov ax, boot_entry\n  jmp stage2_entry\n")
    program = assemble(
        [Section("boot", 0x7C00, (boot,), 16), Section("stage2", 0x7E00, (stage2,), 16)], {}
    )
    assert program.symbols["stage2_entry"].address == 0x7E05
    assert program.symbols["stage2_entry"].file == str(stage2)
    assert program.symbols["stage2_entry"].section == "stage2"
    jump = instruction_at(program, "boot_entry", 16)
    assert jump.mnemonic == "jmp" and jump.operands[0].imm == 0x7E05
    move = decode(code_at(program, "stage2", 0x7E05, 3), 16, 0x7E05)[0]
    assert move.operands[1].imm == 0x7C00
    assert program.sections["boot"][510:] == b"\x55\xaa" and len(program.sections["boot"]) == 512


def test_sources_of_one_section_share_labels_in_order(tmp_path):
    first = write(tmp_path, "a.s", "call helper\nret\n")
    second = write(tmp_path, "b.s", "helper:\n  ret\n")
    program = assemble([Section("kernel", 0x100000, (first, second))], {})
    assert program.symbols["helper"].address == 0x100006  # call rel32 (5) + ret (1)
    assert instruction_at(program, "helper", 64).mnemonic == "ret"


def test_forward_and_backward_jumps_relax_to_short_or_near():
    source = """
start:  jmp close
        jmp distant
        .space 10
close:  jmp start
        .space 300
distant: jmp start
"""
    program_bytes = assemble_snippet(source, 64, 0x1000)
    instructions = decode(program_bytes[:7], 64, 0x1000)
    assert [i.size for i in instructions] == [2, 5]  # short, then near
    close = 0x1000 + 2 + 5 + 10
    assert instructions[0].operands[0].imm == close
    assert instructions[1].operands[0].imm == close + 2 + 300
    back = decode(program_bytes[close - 0x1000 :][:2], 64, close)[0]
    assert back.size == 2 and back.operands[0].imm == 0x1000
    far_back = decode(program_bytes[-5:], 64, close + 2 + 300)[0]
    assert far_back.size == 5 and far_back.operands[0].imm == 0x1000


def test_symbol_arithmetic_constants_and_equ_including_forward_references():
    source = """
        .equ LENGTH, table_end - table
        mov ecx, LENGTH / 4
        mov eax, [rbx + table + SLOT * 4]
table:  .long 1, 2, 3
table_end:
        .equ SLOT, 2
"""
    code = assemble_snippet(source, 64, 0x2000, {"UNUSED": 1})
    move_count, load = decode(code[:12], 64, 0x2000)[:2]
    assert move_count.operands[1].imm == 3
    assert load.operands[1].mem.disp == 0x2000 + move_count.size + load.size + 8


def test_rip_relative_operand_addresses_the_named_label():
    code = assemble_snippet("lea rax, [rip + data]\nnop\ndata: .quad 0", 64, 0x4000)
    lea = decode(code, 64, 0x4000)[0]
    assert lea.address + lea.size + lea.operands[1].mem.disp == 0x4000 + lea.size + 1


def test_current_address_and_character_literals():
    code = assemble_snippet("nop\nhere: jmp $\ncmp al, 'A'", 64, 0x500)
    jump, compare = decode(code[1:], 64, 0x501)[:2]
    assert jump.operands[0].imm == 0x501
    assert compare.operands[1].imm == ord("A")


def test_mode_switches_inside_one_section():
    code = assemble_snippet(".code16\nmov eax, 1\n.code32\nmov eax, 1\n.code64\nmov rax, 1", 16, 0)
    assert code[:6] == bytes.fromhex("66b801000000")  # 16-bit code needs an operand-size prefix
    assert decode(code[6:11], 32, 6)[0].op_str == "eax, 1"
    assert decode(code[11:], 64, 11)[0].op_str == "rax, 1"


def test_symbolize_names_nearest_label_within_the_section(tmp_path):
    source = write(tmp_path, "k.s", "start: nop\n nop\nnext: ret\n")
    program = assemble([Section("k", 0x1000, (source,))], {})
    assert program.symbolize(0x1001) == "start+0x1"
    assert program.symbolize(0x1002) == "next"
    assert program.symbolize(0x9000) == "0x9000"
    assert [(line.address, line.size, line.line) for line in program.listing] == [
        (0x1000, 1, 1), (0x1001, 1, 2), (0x1002, 1, 3)
    ]  # fmt: skip


# --- data directives --------------------------------------------------------


def test_data_directives():
    source = """
        .byte 1, -1, 'z'
        .word 0x1234
        .long BASE + 4
        .quad -2
        .ascii "ab\\n"
        .asciz "c\\td"
        .align 8, 0xcc
        .space 3, 0x90
"""
    code = assemble_snippet(source, 64, 0x100, {"BASE": 0xFEE00000})
    expected = struct.pack("<bbBHIq", 1, -1, ord("z"), 0x1234, 0xFEE00004, -2) + b"ab\nc\td\0"
    expected += b"\xcc" * (-(0x100 + len(expected)) % 8) + b"\x90" * 3
    assert code == expected


def test_org_pads_to_an_absolute_address():
    assert assemble_snippet("nop\n.org 0x7c04\nret", 16, 0x7C00) == b"\x90\0\0\0\xc3"


def test_org_past_the_end_is_an_error(tmp_path):
    source = write(tmp_path, "boot.s", ".space 600\n.org 0x7dfe\n.word 0xaa55\n")
    with pytest.raises(AssemblyError, match=r"boot\.s:2: .*past \.org 0x7dfe"):
        assemble([Section("boot", 0x7C00, (source,), 16)], {})


def test_data_value_that_does_not_fit_is_an_error():
    with pytest.raises(AssemblyError, match="does not fit in .byte"):
        assemble_snippet(".byte 256")


# --- errors -----------------------------------------------------------------


def test_duplicate_label_names_both_places(tmp_path):
    first = write(tmp_path, "a.s", "nop\nentry:\n")
    second = write(tmp_path, "b.s", "entry: ret\n")
    with pytest.raises(AssemblyError) as caught:
        assemble([Section("one", 0x1000, (first,)), Section("two", 0x2000, (second,))], {})
    assert str(caught.value).startswith(f"{second}:1:")
    assert f"{first}:2" in str(caught.value)


def test_label_clashing_with_a_python_constant_is_an_error():
    with pytest.raises(AssemblyError, match="constant"):
        assemble_snippet("PORT: nop", constants={"PORT": 0x3F8})


def test_unknown_symbol_is_an_error(tmp_path):
    source = write(tmp_path, "k.s", "nop\nmov eax, [no_such_thing + 4]\n")
    with pytest.raises(AssemblyError, match=r"k\.s:2: .*unknown symbol 'no_such_thing'"):
        assemble([Section("k", 0x1000, (source,))], {})


def test_label_named_like_a_register_or_mnemonic_is_an_error():
    for name in ("rax", "loop"):
        with pytest.raises(AssemblyError, match="register, keyword or mnemonic"):
            assemble_snippet(f"{name}: nop")


def test_instruction_keystone_rejects_is_an_error():
    with pytest.raises(AssemblyError, match=r"<snippet>:1: mov rax, cr99"):
        assemble_snippet("mov rax, cr99")


def test_unknown_directive_is_an_error():
    with pytest.raises(AssemblyError, match="unknown directive '.globl'"):
        assemble_snippet(".globl start")


def only_x(name: str) -> int:
    if name != "x":
        raise ExprError(f"unknown symbol '{name}'")
    return 1


def test_overlapping_sections_are_an_error(tmp_path):
    source = write(tmp_path, "a.s", ".space 0x20\n")
    with pytest.raises(AssemblyError, match="overlapping 'second'"):
        assemble([Section("first", 0x1000, (source,)), Section("second", 0x1010, (source,))], {})


def test_self_referential_equ_does_not_converge():
    with pytest.raises(AssemblyError, match="does not converge.*'A'"):
        assemble_snippet(".equ A, A + 1")


def test_expressions_are_integers_only():
    assert evaluate("(1 << 4) | 3 ^ ~x & 0xff", only_x) == (1 << 4) | 3 ^ ~1 & 0xFF
    assert evaluate("7 / 2 + 7 // 2 + 7 % 4", only_x) == 9
    for bad in ("__import__('os')", "1.5", "x.y", "[1]", "1 if 1 else 2", "1 << 100000", "x(1)"):
        with pytest.raises(ExprError):
            evaluate(bad, only_x)


# --- reproducibility, ELF and disk images -------------------------------------


def two_section_program(directory: Path) -> Program:
    boot = write(directory, "boot.s", "start: jmp kernel_entry\n.org 0x7dfe\n.word 0xaa55\n")
    kernel = write(directory, "kernel.s", "kernel_entry:\n  hlt\nspin: jmp spin\n")
    return assemble(
        [Section("boot", 0x7C00, (boot,), 32), Section("kernel", 0x100000, (kernel,), 64)], {}
    )


def test_rebuild_is_byte_identical(tmp_path):
    first, second = two_section_program(tmp_path), two_section_program(tmp_path)
    assert first.sections == second.sections
    assert elf_bytes(first, 0x7C00) == elf_bytes(second, 0x7C00)


def test_elf_reads_back_with_symbols_and_load_segments(tmp_path):
    program = two_section_program(tmp_path)
    write_elf(program, tmp_path / "metaos.elf", entry=0x7C00)
    with open(tmp_path / "metaos.elf", "rb") as file:
        elf = ELFFile(io.BytesIO(file.read()))
    assert elf.header.e_machine == "EM_X86_64" and elf.header.e_entry == 0x7C00
    loads = [s for s in elf.iter_segments() if s.header.p_type == "PT_LOAD"]
    assert [(s.header.p_vaddr, s.data()) for s in loads] == [
        (0x7C00, program.sections["boot"]), (0x100000, program.sections["kernel"])
    ]  # fmt: skip
    for segment in loads:
        header = segment.header
        assert header.p_offset % header.p_align == header.p_vaddr % header.p_align
    symbols = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name}
    assert {n: s.entry.st_value for n, s in symbols.items()} == {
        "start": 0x7C00, "kernel_entry": 0x100000, "spin": 0x100001
    }  # fmt: skip
    assert elf.get_section(symbols["spin"].entry.st_shndx).name == ".kernel"


def test_disk_image_aligns_parts_to_sectors_and_pads():
    boot, stage2 = b"\x11" * 512, b"\x22" * 700
    image = disk_image([boot, stage2])
    assert len(image) == 1 << 20
    assert image[:512] == boot and image[512:1212] == stage2
    assert image[1212:1536] == bytes(324)
    big = disk_image([b"x" * 1000], pad_to=0)
    assert len(big) == 2 * SECTOR == sectors(1000) * SECTOR
    assert sectors(512) == 1 and sectors(513) == 2


# --- a boot sector that really boots ---------------------------------------


@pytest.mark.qemu
@pytest.mark.timeout(30)
@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs qemu-system-x86_64")
def test_boot_sector_exits_qemu_through_isa_debug_exit(tmp_path):
    boot = write(
        tmp_path,
        "boot.s",
        """
        .code16
start:  cli
        mov al, EXIT_VALUE
        out DEBUG_EXIT, al      ; isa-debug-exit: QEMU exits with (value << 1) | 1
spin:   hlt
        jmp spin
        .org 0x7c00 + 510
        .word 0xaa55
""",
    )
    program = assemble([Section("boot", 0x7C00, (boot,), 16)],
                       {"EXIT_VALUE": 0x10, "DEBUG_EXIT": 0xF4})
    image = tmp_path / "boot.img"
    image.write_bytes(disk_image([program.sections["boot"]], pad_to=0))
    result = subprocess.run(
        ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-display", "none",
         "-nic", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
         "-drive", f"format=raw,file={image}"],
        capture_output=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == (0x10 << 1) | 1, result.stderr.decode()


def test_absolute_operand_turned_rip_relative_is_caught():
    # keystone 0.9.2 encodes this as [rip + 0x9500], which reads the wrong address
    with pytest.raises(AssemblyError, match=r"rip \+ ADDRESS"):
        assemble_snippet("mov rbx, qword ptr [0x9500]", bits=64, address=0x9000)
    code = assemble_snippet("mov rbx, qword ptr [rip + 0x9500]", bits=64, address=0x9000)
    decoded = next(capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64).disasm(code, 0x9000))
    assert 0x9000 + decoded.size + int.from_bytes(code[-4:], "little", signed=True) == 0x9500
