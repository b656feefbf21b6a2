"""The x86-64 image: build properties, kernel routines run in unicorn against
zlib/COBS, and boots on q35 and pc (with bridges) checked against the QEMU
command line, the ACPI checksum rule and the protocol."""

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from cobs import cobs
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st
from unicorn import UC_ARCH_X86, UC_MODE_64, Uc
from unicorn.x86_const import (
    UC_X86_REG_RAX,
    UC_X86_REG_RCX,
    UC_X86_REG_RDI,
    UC_X86_REG_RDX,
    UC_X86_REG_RSI,
    UC_X86_REG_RSP,
)

from contract.protocol import FRAME_DELIMITER, Msg
from contract.x86_64 import memory_map as layout
from contract.x86_64.exits import (
    DEBUG_EXIT_FAIL,
    DEBUG_EXIT_PASS,
    DEBUG_EXIT_PORT,
    debug_exit_status,
)
from kernel.x86_64.build import REPO_ROOT, build, build_floor
from tests.frame_data import FRAME_LIKE
from toolchain.program import AssemblyError

BOOT_TIMEOUT = 60


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("x86"))


def test_image_boots_by_bios_rules_and_fits_the_memory_map(built):
    image = built.image.read_bytes()
    assert image[510:512] == b"\x55\xaa"
    assert len(image) == 1 << 20  # SeaBIOS on q35 wants a padded disk
    program = built.program
    assert len(program.sections["boot"]) == 512
    assert len(program.sections["stage2"]) <= layout.STAGE2_MAX_SIZE
    assert layout.KERNEL_BASE + len(program.sections["kernel"]) <= layout.KERNEL_LIMIT
    # The kernel sits at the LBA the boot sector's single run puts at KERNEL_BASE.
    kernel_lba = 1 + layout.STAGE2_MAX_SIZE // 512
    kernel = program.sections["kernel"]
    assert image[kernel_lba * 512 : kernel_lba * 512 + len(kernel)] == kernel


def test_rebuild_is_byte_identical(built, tmp_path):
    again = build(tmp_path)
    assert again.image.read_bytes() == built.image.read_bytes()
    assert again.elf.read_bytes() == built.elf.read_bytes()


def test_elf_carries_every_stage_with_its_symbols(built):
    with built.elf.open("rb") as f:
        elf = ELFFile(f)
        symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
        assert elf.header["e_entry"] == symbols["kernel_entry"]
    for name in ("boot_start", "stage2_start", "long_mode_entry", "kernel_entry", "frame_send",
                 "pci_scan_bus", "acpi_rsdp_find", "fault_report", "crc32_tables"):
        assert symbols[name] == built.program.symbols[name].address


def test_broken_source_fails_with_file_and_line(tmp_path):
    for part in ("boot", "kernel"):
        shutil.copytree(REPO_ROOT / part / "x86_64", tmp_path / part / "x86_64",
                        ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    pci = tmp_path / "kernel" / "x86_64" / "pci.s"
    lines = pci.read_text().splitlines()
    broken = next(i for i, line in enumerate(lines) if line.strip() == "in eax, dx")
    lines[broken] = "    in eax, dxx"
    pci.write_text("\n".join(lines) + "\n")
    with pytest.raises(AssemblyError) as error:
        build(tmp_path / "out", root=tmp_path)
    assert str(error.value).startswith(f"{pci}:{broken + 1}:")


# --- kernel routines, run in unicorn ------------------------------------------

STACK_TOP, RETURN_ADDRESS, SCRATCH = 0x200000, 0x1FF000, 0x300000


def _call(program, routine: str, rsi: int, rcx: int, rdi: int = 0, rdx: int = 0,
          memory: dict[int, bytes] | None = None) -> Uc:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x400000)
    uc.mem_write(program.bases["kernel"], program.sections["kernel"])
    uc.mem_write(RETURN_ADDRESS, b"\xf4")  # hlt: where the routine returns to
    for address, data in (memory or {}).items():
        uc.mem_write(address, data)
    uc.reg_write(UC_X86_REG_RSP, STACK_TOP - 8)
    uc.mem_write(STACK_TOP - 8, struct.pack("<Q", RETURN_ADDRESS))
    for reg, value in ((UC_X86_REG_RSI, rsi), (UC_X86_REG_RCX, rcx), (UC_X86_REG_RDI, rdi),
                       (UC_X86_REG_RDX, rdx)):
        uc.reg_write(reg, value)
    uc.emu_start(program.symbols[routine].address, RETURN_ADDRESS, count=10_000_000)
    return uc


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=1200), st.integers(0, 7))
def test_kernel_crc32_matches_zlib(built, data, misalignment):
    at = SCRATCH + misalignment  # eight bytes a step, wherever the data starts
    uc = _call(built.program, "crc32_compute", rsi=at, rcx=len(data), memory={at: data})
    assert uc.reg_read(UC_X86_REG_RAX) & 0xFFFFFFFF == zlib.crc32(data)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=100), st.integers(0, 7), st.integers(0, 7))
def test_move_bytes_copies_as_rep_movsb_does(built, data, from_misalignment, to_misalignment):
    source, to = SCRATCH + from_misalignment, SCRATCH + 0x10000 + to_misalignment
    uc = _call(built.program, "move_bytes", rsi=source, rcx=len(data), rdi=to,
               memory={source: data, to: b"\xaa" * (len(data) + 16)})
    assert bytes(uc.mem_read(to, len(data) + 16)) == data + b"\xaa" * 16  # nothing past them
    assert uc.reg_read(UC_X86_REG_RSI) == source + len(data)
    assert uc.reg_read(UC_X86_REG_RDI) == to + len(data)


@settings(max_examples=80, deadline=None)
@given(FRAME_LIKE)
def test_kernel_cobs_matches_the_cobs_library(built, data):
    out = SCRATCH + 0x10000
    uc = _call(built.program, "cobs_encode", rsi=SCRATCH, rcx=len(data), rdi=out,
               memory={SCRATCH: data})
    length = uc.reg_read(UC_X86_REG_RAX)
    assert bytes(uc.mem_read(out, length)) == cobs.encode(data)


@settings(max_examples=80, deadline=None)
@given(FRAME_LIKE, st.booleans())
def test_kernel_cobs_decode_inverts_the_cobs_library(built, data, in_place):
    encoded = cobs.encode(data)
    out = SCRATCH if in_place else SCRATCH + 0x10000
    uc = _call(built.program, "cobs_decode", rsi=SCRATCH, rcx=len(encoded), rdi=out,
               memory={SCRATCH: encoded})
    length = uc.reg_read(UC_X86_REG_RAX)
    assert bytes(uc.mem_read(out, length)) == data


@pytest.mark.parametrize("encoded", [b"\x03a", b"\x02a\x00\x01", b"\x00", b"\x05abc"])
def test_kernel_cobs_decode_refuses_what_is_not_cobs(built, encoded):
    with pytest.raises(cobs.DecodeError):
        cobs.decode(encoded)
    uc = _call(built.program, "cobs_decode", rsi=SCRATCH, rcx=len(encoded), rdi=SCRATCH + 0x10000,
               memory={SCRATCH: encoded})
    assert uc.reg_read(UC_X86_REG_RAX) == 2**64 - 1


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.integers(0, 7), st.integers(0, 320))
def test_console_read_run_takes_a_buffer_up_to_its_delimiter(built, buffered, misalignment, room):
    """The console's receive buffer is copied up to its first zero byte, but never its
    last byte (console_read_byte takes that one and gives the buffer back) and never
    past the room the frame has left."""
    constants = built.program.constants
    source, to = SCRATCH + misalignment, SCRATCH + 0x10000
    memory = {source: buffered,
              constants["CONSOLE_RX_CURSOR"]: struct.pack("<Q", source),
              constants["CONSOLE_RX_LEFT"]: struct.pack("<I", len(buffered))}
    uc = _call(built.program, "console_read_run", rsi=0, rcx=0, rdi=to, rdx=room, memory=memory)
    takeable = buffered[:max(len(buffered) - 1, 0)][:room].split(b"\0")[0]
    copied = uc.reg_read(UC_X86_REG_RAX)
    assert copied == len(takeable)
    assert bytes(uc.mem_read(to, copied)) == takeable
    cursor, = struct.unpack("<Q", uc.mem_read(constants["CONSOLE_RX_CURSOR"], 8))
    left, = struct.unpack("<I", uc.mem_read(constants["CONSOLE_RX_LEFT"], 4))
    assert (cursor, left) == (source + copied, len(buffered) - copied)


# --- boots ----------------------------------------------------------------------

def _boot(image: Path, tmp_path: Path, machine_args: list[str]) -> tuple[int, bytes]:
    serial = tmp_path / "serial.out"
    command = ["qemu-system-x86_64", *machine_args, "-accel", "tcg", "-m", "128",
               "-display", "none", "-nic", "none", "-no-reboot", "-serial", f"file:{serial}",
               "-device", f"isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04",
               "-drive", f"format=raw,file={image}"]
    result = subprocess.run(command, timeout=BOOT_TIMEOUT, capture_output=True)
    return result.returncode, serial.read_bytes()


def _frames(output: bytes) -> list[tuple[int, int, bytes]]:
    """(type, seq, body) of every frame after the lone delimiter; asserts CRCs."""
    assert b"\0" in output, "no frame delimiter on the serial line"
    frames = []
    for encoded in output.split(b"\0")[1:]:
        if not encoded:
            continue
        raw = cobs.decode(encoded)
        assert zlib.crc32(raw[:-4]) == struct.unpack("<I", raw[-4:])[0]
        msg_type, _flags, seq = struct.unpack_from("<BBH", raw)
        frames.append((msg_type, seq, raw[4:-4]))
    return frames


def _pci_functions(frames):
    """{(bus, device, function): config space} from the PCI_FUNCTION frames."""
    found = {}
    for msg_type, _, body in frames:
        if msg_type == Msg.PCI_FUNCTION:
            _, bus, device, function = struct.unpack_from("<HBBB", body)
            found[(bus, device, function)] = body[32:]
    return found


def _ids(config: bytes) -> tuple[int, int]:
    return struct.unpack_from("<HH", config)


BRIDGED = {
    "q35": ["-machine", "q35",
            "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1",
            "-device", "nvme,bus=rp1,serial=x",
            "-device", "pcie-pci-bridge,id=br1,bus=pcie.0",
            "-device", "e1000,bus=br1,addr=1"],
    "pc": ["-machine", "pc", "-device", "pci-bridge,id=b1,chassis_nr=1",
           "-device", "e1000,bus=b1,addr=2"],
}
BEHIND_BRIDGES = {"q35": {(0x1B36, 0x0010): None, (0x8086, 0x100E): 1}, "pc": {(0x8086, 0x100E): 2}}


@pytest.mark.qemu
@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_boot_streams_a_complete_valid_run(built, tmp_path, machine):
    status, output = _boot(built.image, tmp_path, ["-machine", machine])
    assert status == debug_exit_status(DEBUG_EXIT_PASS), output[-200:]
    frames = _frames(output)
    assert [seq for _, seq, _ in frames] == list(range(len(frames)))
    assert frames[0][0] == Msg.HELLO and struct.unpack("<HH", frames[0][2]) == (1, 1)
    assert frames[-1][0] == Msg.FINAL
    assert struct.unpack_from("<IH", frames[-1][2]) == (len(frames) - 1, 0)
    types = {t for t, _, _ in frames}
    assert {Msg.MEMORY, Msg.CPUID, Msg.PCI_FUNCTION, Msg.ACPI_RSDP, Msg.ACPI_TABLE} <= types
    assert Msg.FAULT not in types and Msg.LOG not in types
    # -m 128: E820 usable RAM is the 128 MiB minus what firmware keeps.
    usable = sum(struct.unpack_from("<QQI", b)[1] for t, _, b in frames
                 if t == Msg.MEMORY and struct.unpack_from("<QQI", b)[2] == 1)
    assert 120 << 20 < usable <= 128 << 20
    # CPUID: every basic leaf 0..max, as leaf 0 states.
    leaves = {struct.unpack_from("<I", b)[0] for t, _, b in frames if t == Msg.CPUID}
    basic_max = next(struct.unpack_from("<6I", b)[2] for t, _, b in frames if t == Msg.CPUID)
    assert set(range(basic_max + 1)) <= leaves
    # ACPI: each table (FACS aside) checksums to zero, as the spec requires.
    tables = [b[8:] for t, _, b in frames if t == Msg.ACPI_TABLE]
    assert any(t[:4] == b"DSDT" for t in tables) and any(t[:4] == b"FACP" for t in tables)
    for table in tables:
        assert len(table) == struct.unpack_from("<I", table, 4)[0]
        if table[:4] != b"FACS":
            assert sum(table) % 256 == 0, table[:4]


@pytest.mark.qemu
@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_boot_finds_devices_behind_bridges(built, tmp_path, machine):
    status, output = _boot(built.image, tmp_path, BRIDGED[machine])
    assert status == debug_exit_status(DEBUG_EXIT_PASS)
    functions = _pci_functions(_frames(output))
    secondary_buses = {config[0x19] for config in functions.values() if config[0x0E] & 0x7F == 1}
    for ids, device in BEHIND_BRIDGES[machine].items():
        (bus, dev, _), = [bdf for bdf, config in functions.items() if _ids(config) == ids]
        assert bus != 0 and bus in secondary_buses
        if device is not None:
            assert dev == device


@pytest.mark.qemu
def test_floor_image_exits_at_once(tmp_path):
    status, output = _boot(build_floor(tmp_path), tmp_path, ["-machine", "q35"])
    assert status == debug_exit_status(DEBUG_EXIT_PASS)
    assert output == bytes([FRAME_DELIMITER])  # its one byte, then nothing


@pytest.mark.qemu
def test_kernel_fault_sends_fault_frame_and_fails(built, tmp_path):
    """A kernel whose first instruction is ud2 reports #UD (vector 6) at that address."""
    image = bytearray(built.image.read_bytes())
    # Keep idt_install, uart_init and the lone delimiter; fault where HELLO would be sent.
    hello = built.program.symbols["hello_send"].address
    at = 512 + hello - layout.STAGE2_BASE  # the image holds LBA 1.. as loaded from STAGE2_BASE
    assert image[at : at + 2] != b"\x0f\x0b"
    image[at : at + 2] = b"\x0f\x0b"  # ud2
    faulty = tmp_path / "faulty.img"
    faulty.write_bytes(image)
    status, output = _boot(faulty, tmp_path, ["-machine", "q35"])
    assert status == debug_exit_status(DEBUG_EXIT_FAIL)
    frames = _frames(output)
    assert [t for t, _, _ in frames] == [Msg.FAULT]
    vector, error_code, ip, _ = struct.unpack("<4Q", frames[0][2])
    assert (vector, error_code, ip) == (6, 0, hello)


@pytest.mark.qemu
def test_boot_stage_reports_a_cpu_without_long_mode(built, tmp_path):
    status, output = _boot(built.image, tmp_path, ["-machine", "q35", "-cpu", "qemu32"])
    assert status == debug_exit_status(DEBUG_EXIT_FAIL)
    assert output.startswith(b"MetaOS boot: no long mode")


@pytest.mark.qemu
def test_boot_stage_reports_a_disk_read_error(built, tmp_path):
    """-machine pc boots a bare boot sector; stage 2 and the kernel are not on the disk."""
    short = tmp_path / "short.img"
    short.write_bytes(built.image.read_bytes()[:512])
    status, output = _boot(short, tmp_path, ["-machine", "pc"])
    assert status == debug_exit_status(DEBUG_EXIT_FAIL)
    assert output.startswith(b"MetaOS boot: disk read error")
