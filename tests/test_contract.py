"""The contract package: one layout language, constants defined once, and layouts
checked against truths we did not write (published headers and specifications,
typed here with their source; dtc and lspci reading bytes our records packed)."""

import shutil
import struct
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import acpi, fdt, pci, uart16550, virtio
from contract.constants import ConstantSet, DuplicateConstant, collect
from contract.layout import Bits, Record, Register
from contract.protocol import HEADER, LAYOUTS, Msg
from contract.riscv64 import causes
from contract.x86_64 import exceptions
from kernel.riscv64 import build as riscv_build
from kernel.x86_64 import build as x86_build
from toolchain.program import AssemblyError
from toolchain.riscvasm import assemble_snippet

SIZES = {"B": 1, "H": 2, "I": 4, "Q": 8}


# -- the layout language --------------------------------------------------------

@given(st.data())
def test_every_protocol_record_packs_and_unpacks_any_values(data):
    for layout in LAYOUTS.values():
        values = {name: data.draw(st.integers(0, (1 << 8 * SIZES[code]) - 1))
                  for name, code in layout.fields if not code.endswith("x")}
        tail = data.draw(st.binary(max_size=8))
        packed = layout.pack(tail, **values)
        assert len(packed) == layout.size + len(tail)
        assert layout.unpack(packed) == (values, tail)
        for name, offset in layout.offsets.items():  # each value sits at its emitted offset
            size = SIZES[dict(layout.fields)[name]]
            assert int.from_bytes(packed[offset:offset + size], "little") == values[name]


def test_a_record_emits_offsets_size_and_placed_addresses():
    record = Record("PAIR", (("a", "B"), ("_pad", "3x"), ("b", "I")))
    assert record.asm_constants() == {"PAIR_A": 0, "PAIR_B": 4, "PAIR_SIZE": 8}
    assert record.asm_constants(at=0x1000) == {"PAIR_A": 0x1000, "PAIR_B": 0x1004, "PAIR_SIZE": 8}
    big = Record("BE", (("x", "I"),), byte_order=">")
    assert big.pack(x=0xD00DFEED) == bytes.fromhex("d00dfeed")
    with pytest.raises(ValueError, match="names a field twice"):
        Record("TWICE", (("a", "B"), ("a", "H")))


@given(st.integers(0, 3), st.integers(0, 1), st.integers(0, 7), st.integers(0, 1))
def test_a_register_packs_and_unpacks_its_fields(word_length, stop_bits, parity, dlab):
    lcr = uart16550.LCR
    fields = {"WORD_LENGTH": word_length, "STOP_BITS": stop_bits, "PARITY": parity, "DLAB": dlab}
    value = lcr.pack(**fields)
    assert value == word_length | stop_bits << 2 | parity << 3 | dlab << 7  # PC16550D LCR bits
    assert lcr.unpack(value) == {**fields, "BREAK": 0}


def test_a_register_refuses_what_cannot_be():
    with pytest.raises(ValueError, match="overlaps"):
        Register("R", (Bits("A", 0, 4), Bits("B", 3)))
    with pytest.raises(ValueError, match="outside its 8 bits"):
        Register("R", (Bits("A", 7, 2),), width=8)
    with pytest.raises(ValueError, match="does not fit"):
        uart16550.FCR.pack(TRIGGER=4)
    assert Register("R", (Bits("F", 4, 3),)).asm_constants() == {
        "R_F": 0x70, "R_F_SHIFT": 4, "R_F_MAX": 7}


# -- constants defined once -----------------------------------------------------

KERNEL_CONSTANTS = {"x86_64": lambda: x86_build.constants(load_sectors=1),
                    "riscv64": riscv_build.constants}


@pytest.mark.parametrize("kernel", KERNEL_CONSTANTS)
def test_both_kernels_collect_every_constant_once_with_its_source(kernel):
    consts = KERNEL_CONSTANTS[kernel]()
    assert isinstance(consts, ConstantSet) and len(consts) > 500
    assert consts.source("UART_LSR") == "contract.uart16550"
    assert consts.source("PCI_DEVICE_BARS") == "contract.pci"
    assert consts.source("FRAME_HEADER_SEQ").startswith("contract.protocol")


@pytest.mark.parametrize("kernel", KERNEL_CONSTANTS)
def test_a_name_defined_twice_is_refused_naming_both_places(kernel, monkeypatch):
    original, lsr = virtio.asm_constants, KERNEL_CONSTANTS[kernel]()["UART_LSR"]
    # the same name with the same value: defined once means once
    monkeypatch.setattr(virtio, "asm_constants", lambda: {**original(), "UART_LSR": lsr})
    with pytest.raises(DuplicateConstant,
                       match=r"UART_LSR is defined twice: by contract\.uart16550 and by "
                             r"contract\.virtio"):
        KERNEL_CONSTANTS[kernel]()


def test_collect_names_the_layout_a_duplicate_came_from():
    with pytest.raises(DuplicateConstant, match=r"UART_LSR_DR .* by m \(UART_LSR\) and by m;"):
        collect("m", uart16550.LSR, {"UART_LSR_DR": 1})


def test_a_riscv_source_cannot_redefine_a_constant():
    assert assemble_snippet("li a0, ANSWER", constants={"ANSWER": 42}, march="rv64i")
    with pytest.raises(AssemblyError, match="already defined"):
        assemble_snippet(".equ ANSWER, 41\nli a0, ANSWER", constants={"ANSWER": 42},
                         march="rv64i")


def test_both_kernels_use_the_protocol_header_offsets():
    offsets = HEADER.offsets  # the frame header both kernels write and read
    for kernel in KERNEL_CONSTANTS.values():
        consts = kernel()
        assert [consts[f"FRAME_HEADER_{f.upper()}"] for f in ("type", "flags", "seq")] == \
            [offsets["type"], offsets["flags"], offsets["seq"]]
    assert struct.calcsize("<BBH") == HEADER.size  # as contract/frames.py's decoder reads it


# -- the 16550: Linux include/uapi/linux/serial_reg.h (PC16550D datasheet table II) --

SERIAL_REG_H = {"RX": 0, "TX": 0, "DLL": 0, "IER": 1, "DLM": 1, "IIR": 2, "FCR": 2, "LCR": 3,
                "MCR": 4, "LSR": 5, "MSR": 6, "SCR": 7}
SERIAL_REG_BITS = {
    ("LCR", "DLAB"): 0x80, ("LSR", "DR"): 0x01, ("LSR", "OE"): 0x02, ("LSR", "THRE"): 0x20,
    ("LSR", "TEMT"): 0x40, ("FCR", "ENABLE"): 0x01, ("FCR", "CLEAR_RX"): 0x02,
    ("FCR", "CLEAR_TX"): 0x04, ("MCR", "DTR"): 0x01, ("MCR", "RTS"): 0x02, ("MCR", "OUT1"): 0x04,
    ("MCR", "OUT2"): 0x08, ("MCR", "LOOP"): 0x10, ("IER", "RX_DATA"): 0x01,
    ("IER", "THR_EMPTY"): 0x02, ("IER", "LINE_STATUS"): 0x04, ("IER", "MODEM_STATUS"): 0x08,
}


def test_16550_registers_and_bits_match_linux_serial_reg_h():
    for name, number in SERIAL_REG_H.items():
        assert uart16550.REGISTERS[{"RX": "RBR", "TX": "THR"}.get(name, name)] == number
    for (register, field), mask in SERIAL_REG_BITS.items():
        assert getattr(uart16550, register).field(field).mask == mask
    assert uart16550.FCR.pack(TRIGGER=uart16550.RX_TRIGGER_14_BYTES) == 0xC0  # UART_FCR_TRIGGER_14
    assert uart16550.LCR_8N1 == 0x03  # UART_LCR_WLEN8, one stop bit, no parity


def test_the_board_places_the_chip():
    x86, riscv = x86_build.constants(1), riscv_build.constants()
    for name, number in SERIAL_REG_H.items():
        reg = {"RX": "RBR", "TX": "THR"}.get(name, name)
        assert x86[f"UART_{reg}"] == 0x3F8 + number  # COM1, the PC's first serial port
        assert riscv[f"UART_{reg}"] == number  # virt: offsets from the DT's base, reg-shift 0
    assert x86["UART_DIVISOR_LOW"] == 1 and x86["UART_DIVISOR_HIGH"] == 0  # 115200 baud on a PC


# -- PCI: Linux include/uapi/linux/pci_regs.h, and lspci reading our bytes ----------

PCI_REGS_H = {  # type 0
    "vendor_id": 0x00, "device_id": 0x02, "command": 0x04, "status": 0x06, "revision": 0x08,
    "prog_if": 0x09, "subclass": 0x0A, "base_class": 0x0B, "cache_line_size": 0x0C,
    "latency_timer": 0x0D, "header_type": 0x0E, "bist": 0x0F, "bar0": 0x10, "bar5": 0x24,
    "cardbus_cis": 0x28, "subsystem_vendor": 0x2C, "subsystem_id": 0x2E,
    "expansion_rom": 0x30, "capabilities_pointer": 0x34, "interrupt_line": 0x3C,
    "interrupt_pin": 0x3D, "min_gnt": 0x3E, "max_lat": 0x3F,
}
PCI_REGS_H_BRIDGE = {
    "bar1": 0x14, "primary_bus": 0x18, "secondary_bus": 0x19, "subordinate_bus": 0x1A,
    "secondary_latency_timer": 0x1B, "io_base": 0x1C, "io_limit": 0x1D,
    "secondary_status": 0x1E, "memory_base": 0x20, "memory_limit": 0x22,
    "prefetchable_base": 0x24, "prefetchable_limit": 0x26, "prefetchable_base_upper": 0x28,
    "prefetchable_limit_upper": 0x2C, "io_base_upper": 0x30, "io_limit_upper": 0x32,
    "capabilities_pointer": 0x34, "expansion_rom": 0x38, "bridge_control": 0x3E,
}
PCI_REGS_H_CARDBUS = {
    "capabilities_pointer": 0x14, "secondary_status": 0x16, "pci_bus": 0x18,
    "cardbus_bus": 0x19, "subordinate_bus": 0x1A, "cardbus_latency_timer": 0x1B,
    "memory_base0": 0x1C, "io_limit1": 0x38, "bridge_control": 0x3E,
    "subsystem_vendor": 0x40, "subsystem_id": 0x42, "legacy_mode_base": 0x44,
}


def test_pci_headers_match_linux_pci_regs_h():
    for record, expected in ((pci.DEVICE, PCI_REGS_H), (pci.BRIDGE, PCI_REGS_H_BRIDGE),
                             (pci.CARDBUS, PCI_REGS_H_CARDBUS)):
        for name, offset in expected.items():
            assert record.offsets[name] == offset, (record.name, name)
    assert pci.DEVICE.size == pci.BRIDGE.size == 64  # PCI_STD_HEADER_SIZEOF
    assert pci.BARS_PER_HEADER == {0: 6, 1: 2, 2: 0}
    # PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER
    assert pci.COMMAND_BITS.pack(IO=1, MEMORY=1, BUS_MASTER=1) == 0x7
    assert pci.STATUS_CAPABILITIES_LIST == 0x10  # PCI_STATUS_CAP_LIST
    assert pci.ECAM.pack(BUS=1, DEVICE=2, FUNCTION=3, OFFSET=4) == 1 << 20 | 2 << 15 | 3 << 12 | 4


def _lspci_dump(functions: dict[str, bytes]) -> str:
    lines = []
    for bdf, config in functions.items():
        lines.append(f"{bdf} Device")
        lines += [f"{i:02x}: " + " ".join(f"{b:02x}" for b in config[i:i + 16])
                  for i in range(0, len(config), 16)]
        lines.append("")
    return "\n".join(lines)


@pytest.mark.skipif(shutil.which("lspci") is None, reason="lspci (pciutils) is not installed")
def test_lspci_reads_the_headers_our_records_pack(tmp_path):
    device = pci.DEVICE.pack(vendor_id=0x1AF4, device_id=0x1003, base_class=0x07, subclass=0x80,
                             subsystem_vendor=0x1AF4, subsystem_id=0x0003, interrupt_line=11,
                             interrupt_pin=1).ljust(256, b"\0")
    bridge = pci.BRIDGE.pack(vendor_id=0x8086, device_id=0x244E, base_class=0x06, subclass=0x04,
                             header_type=pci.HEADER_BRIDGE, primary_bus=0, secondary_bus=5,
                             subordinate_bus=7, secondary_latency_timer=0x20).ljust(256, b"\0")
    dump = tmp_path / "lspci.txt"
    dump.write_text(_lspci_dump({"00:03.0": device, "00:1e.0": bridge}))
    out = subprocess.run(["lspci", "-F", str(dump), "-vnn"], capture_output=True, text=True,
                         check=True).stdout
    assert "[1af4:1003]" in out and "Device [1af4:0003]" in out
    assert "IRQ 11" in out and "[0780]" in out
    assert "Bus: primary=00, secondary=05, subordinate=07, sec-latency=32" in out


# -- the device tree: dtc writes a blob, our records read it ------------------------

@pytest.mark.skipif(shutil.which("dtc") is None, reason="dtc is not installed")
def test_fdt_records_read_what_dtc_writes(tmp_path):
    source = tmp_path / "t.dts"
    source.write_text('/dts-v1/;\n/ { model = "metaos"; };\n')
    blob = subprocess.run(["dtc", "-I", "dts", "-O", "dtb", str(source)], capture_output=True,
                          check=True).stdout
    header, _ = fdt.HEADER.unpack(blob)
    assert header["magic"] == fdt.MAGIC and header["totalsize"] == len(blob)
    at = header["off_dt_struct"]
    token = int.from_bytes(blob[at:at + fdt.TOKEN_SIZE], "big")
    assert token == fdt.Token.BEGIN_NODE
    at += fdt.TOKEN_SIZE + fdt.TOKEN_SIZE  # the root's name is "", padded to a token
    assert int.from_bytes(blob[at:at + fdt.TOKEN_SIZE], "big") == fdt.Token.PROP
    prop, rest = fdt.PROPERTY.unpack(blob[at + fdt.TOKEN_SIZE:])
    name_at = header["off_dt_strings"] + prop["nameoff"]
    assert blob[name_at:blob.index(b"\0", name_at)] == b"model"
    assert rest[:prop["len"]] == b"metaos\0"


# -- virtio: the legacy ring layout, Linux include/uapi/linux/virtio_ring.h vring_size ---

def test_virtqueue_layout_matches_linux_vring_size():
    num, align = virtio.QUEUE_SIZE, virtio.QUEUE_ALIGN
    avail_end = 16 * num + 2 * (3 + num)  # sizeof(struct vring_desc) = 16, le16 avail fields
    used_offset = (avail_end + align - 1) & ~(align - 1)
    assert virtio.DESC.size == 16 and virtio.USED.size == 8  # vring_desc, vring_used_elem
    assert virtio.USED_OFFSET == used_offset
    assert virtio.QUEUE_BYTES >= used_offset + 2 * 3 + 8 * num
    assert virtio.DESC.offsets == {"addr": 0, "len": 8, "flags": 12, "next": 14}


# -- ACPI 6.5: tables 5.3 (RSDP), 5.4 (header), 5.9 (FADT), 5.14 (FACS) --------------

def test_acpi_records_match_the_specification():
    assert acpi.RSDP.offsets == {"signature": 0, "checksum": 8, "oem_id": 9, "revision": 15,
                                 "rsdt": 16, "length": 20, "xsdt": 24, "extended_checksum": 32}
    assert (acpi.RSDP_V1_SIZE, acpi.RSDP.size, acpi.HEADER.size) == (20, 36, 36)
    assert acpi.HEADER.offsets["oem_table_id"] == 16 and acpi.HEADER.offsets["creator_id"] == 28
    assert {f: acpi.FADT.offsets[f] for f in ("firmware_ctrl", "dsdt", "x_firmware_ctrl",
                                              "x_dsdt")} == {"firmware_ctrl": 36, "dsdt": 40,
                                                             "x_firmware_ctrl": 132, "x_dsdt": 140}
    assert acpi.FACS.offsets["version"] == 32 and acpi.FACS.size == 64


# -- exception vectors: Intel SDM vol. 3A table 6-1, AMD APM vol. 2 table 8-1;
#    mcause: RISC-V Privileged Architecture table 3.6 -----------------------------

def test_x86_exception_table_matches_the_sdm():
    by_mnemonic = {v.mnemonic: v.number for v in exceptions.EXCEPTIONS}
    assert by_mnemonic["#DB"] == 1 and by_mnemonic["#BP"] == 3 and by_mnemonic["#UD"] == 6
    assert by_mnemonic["#GP"] == 13 and by_mnemonic["#PF"] == 14 and by_mnemonic["#CP"] == 21
    pushes_error_code = {8, 10, 11, 12, 13, 14, 17, 21, 29, 30}
    assert exceptions.asm_constants()["EXCEPTIONS_WITH_ERROR_CODE"] == sum(
        1 << v for v in pushes_error_code)
    assert exceptions.asm_constants()["PAGE_FAULT_VECTOR"] == 14


def test_riscv_cause_table_matches_the_privileged_spec():
    codes = {c.name: c.code for c in causes.EXCEPTIONS}
    assert codes["illegal instruction"] == 2 and codes["breakpoint"] == 3
    assert codes["load access fault"] == 5 and codes["store access fault"] == 7
    assert codes["ecall from U-mode"] == 8 and codes["ecall from M-mode"] == 11
    assert {c.name: c.code for c in causes.INTERRUPTS}["machine timer interrupt"] == 7
    assert causes.MCAUSE.pack(INTERRUPT=1, CODE=7) == 1 << 63 | 7


def test_the_arch_objects_take_their_fault_vectors_from_the_tables():
    from arch import RISCV64, X86_64

    assert X86_64.access_faults["write"] == 14 and X86_64.fault_name(14) == "#PF"
    assert RISCV64.illegal_instruction == 2 and RISCV64.access_faults == {
        "fetch": 1, "read": 5, "write": 7}
    assert LAYOUTS[Msg.FAULT].names == ("vector", "error_code", "ip", "address")
