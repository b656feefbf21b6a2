"""A synthetic q35-like machine, assembled by hand from the specifications.

Config spaces follow the PCI 3.0 header layouts, ACPI tables carry correct
checksums, CPUID registers are built bit by bit from the Intel SDM.  Nothing
here is produced by the host code under test; tests compare decoders against
these constructions (and against lspci / lstopo reading our dumps).
"""

from __future__ import annotations

import struct

from contract.frames import encode_frame
from contract.protocol import LAYOUTS, ConfigSource, Msg, WireArch

# ---------------------------------------------------------------- PCI config space


def config_space(vendor, device, class_code, revision=0, header_type=0, bars=(),
                 subsystem=(0, 0), caps=(), ext_caps=(), size=256, irq_pin=0, irq_line=0,
                 multi_function=False, secondary_bus=0, subordinate_bus=0):
    """A configuration space: `bars` are the firmware-assigned BAR values (dwords),
    `caps` (id, payload) pairs placed from 0x40, `ext_caps` (id, version, payload)
    placed from 0x100 when size is 4096."""
    c = bytearray(size)
    struct.pack_into("<HH", c, 0x00, vendor, device)
    status = 0x0010 if caps else 0
    struct.pack_into("<HH", c, 0x04, 0x0007, status)
    c[0x08] = revision
    c[0x09], c[0x0A], c[0x0B] = class_code & 0xFF, class_code >> 8 & 0xFF, class_code >> 16
    c[0x0E] = header_type | (0x80 if multi_function else 0)
    for i, value in enumerate(bars):
        struct.pack_into("<I", c, 0x10 + 4 * i, value)
    if header_type == 0:
        struct.pack_into("<HH", c, 0x2C, *subsystem)
    else:
        c[0x18], c[0x19], c[0x1A] = 0, secondary_bus, subordinate_bus
    c[0x3C], c[0x3D] = irq_line, irq_pin
    offset = 0x40
    if caps:
        c[0x34] = offset
    for n, (cap_id, payload) in enumerate(caps):
        length = (2 + len(payload) + 3) & ~3
        nxt = offset + length if n + 1 < len(caps) else 0
        c[offset], c[offset + 1] = cap_id, nxt
        c[offset + 2 : offset + 2 + len(payload)] = payload
        offset = nxt
    offset = 0x100
    for n, (cap_id, version, payload) in enumerate(ext_caps):
        length = (4 + len(payload) + 3) & ~3
        nxt = offset + length if n + 1 < len(ext_caps) else 0
        struct.pack_into("<I", c, offset, cap_id | version << 16 | nxt << 20)
        c[offset + 4 : offset + 4 + len(payload)] = payload
        offset = nxt
    return bytes(c)


def readback_for(kind, size, prefetchable=False):
    """What a BAR reads back after all-ones is written (PCI 3.0 section 6.2.5.1)."""
    if kind == "io":
        return (~(size - 1) & 0xFFFFFFFC) | 0x1
    low = (~(size - 1) & 0xFFFFFFF0) | (0x8 if prefetchable else 0)
    if kind == "mem32":
        return [low & 0xFFFFFFFF]
    mask = ~(size - 1) & 0xFFFFFFFFFFFFFFFF
    return [(mask & 0xFFFFFFF0) | 0x4 | (0x8 if prefetchable else 0), mask >> 32]


def pci_body(bus, device, function, config, readbacks, segment=0):
    readbacks = list(readbacks) + [0] * (6 - len(readbacks))
    source = ConfigSource.ECAM if len(config) == 4096 else ConfigSource.PORT_IO
    fields = {f"bar{i}_readback": readbacks[i] for i in range(6)}
    trimmed = bytes(config)  # as guests send it: the trailing run of equal dwords cut to one
    while len(trimmed) > 4 and trimmed[-4:] == trimmed[-8:-4]:
        trimmed = trimmed[:-4]
    return LAYOUTS[Msg.PCI_FUNCTION].pack(trimmed, segment=segment, bus=bus, device=device,
                                          function=function, config_source=source,
                                          config_size=len(config), **fields)


# The q35 devices as QEMU 7.2 presents them (ids from QEMU's hw/pci-host/q35.c,
# hw/isa/lpc_ich9.c, hw/ide/ich.c, hw/i2c/smbus_ich9.c, hw/pci-bridge/pcie_root_port.c).
MSI = (0x05, bytes(12))
PM = (0x01, bytes(6))
EXPRESS = (0x10, bytes(58))
SATA_CAP = (0x12, bytes(6))
MSIX = (0x11, bytes(10))
VENDOR_CAP = (0x09, bytes([16]) + bytes(13))
AER = (0x0001, 2, bytes(40))

PCI_DEVICES = [
    # (bus, dev, fn, config, readbacks)
    (0, 0x00, 0, config_space(0x8086, 0x29C0, 0x060000, subsystem=(0x1AF4, 0x1100))),
    (0, 0x01, 0, config_space(0x1234, 0x1111, 0x030000, revision=2,
                              bars=[0xFD000008, 0, 0xFEBD4000, 0, 0, 0],
                              subsystem=(0x1AF4, 0x1100)),
     [0xFF000008, 0, 0xFFFFF000]),
    (0, 0x02, 0, config_space(0x1B36, 0x000C, 0x060400, header_type=1,
                              caps=[(0x0D, bytes([0, 0, 0xF4, 0x1A, 0x00, 0x11])), EXPRESS, MSIX,
                                    PM],
                              bars=[0xFEBD5000, 0], secondary_bus=1, subordinate_bus=1,
                              size=4096, ext_caps=[AER]),
     [0xFFFFF000, 0]),
    (1, 0x00, 0, config_space(0x1AF4, 0x1041, 0x020000, revision=1, header_type=0,
                              bars=[0, 0xFE840000, 0, 0, 0xFC00000C, 0],
                              subsystem=(0x1AF4, 0x1100),
                              caps=[MSIX, VENDOR_CAP, VENDOR_CAP, EXPRESS, PM],
                              size=4096, ext_caps=[AER, (0x000E, 1, bytes(4))]),
     [0, 0xFFFFF000, 0, 0] + readback_for("mem64", 0x4000, prefetchable=True)),
    (0, 0x1F, 0, config_space(0x8086, 0x2918, 0x060100, revision=2, multi_function=True,
                              subsystem=(0x1AF4, 0x1100))),
    (0, 0x1F, 2, config_space(0x8086, 0x2922, 0x010601, revision=2,
                              bars=[0, 0, 0, 0, 0xC041, 0xFEBD6000],
                              subsystem=(0x1AF4, 0x1100), caps=[MSI, SATA_CAP],
                              irq_pin=1, irq_line=10),
     [0, 0, 0, 0, readback_for("io", 0x20), 0xFFFFF000]),
    (0, 0x1F, 3, config_space(0x8086, 0x2930, 0x0C0500, revision=2,
                              bars=[0, 0, 0, 0, 0x0701, 0], subsystem=(0x1AF4, 0x1100),
                              irq_pin=1, irq_line=10),
     [0, 0, 0, 0, 0x0000FFC1, 0]),  # a 16-bit I/O decoder reads zeros above bit 15
]


# ---------------------------------------------------------------- CPUID (Intel SDM vol. 2A)


def regs(leaf, subleaf=0, eax=0, ebx=0, ecx=0, edx=0):
    return dict(leaf=leaf, subleaf=subleaf, eax=eax, ebx=ebx, ecx=ecx, edx=edx)


def bits(*positions):
    return sum(1 << p for p in positions)


def ascii_regs(text, count):
    raw = text.encode().ljust(4 * count, b"\0")
    return struct.unpack(f"<{count}I", raw)


def cache_leaf4(subleaf, level, cache_type, ways, line, sets, shared_by, cores=1):
    eax = cache_type | level << 5 | 1 << 8 | (shared_by - 1) << 14 | (cores - 1) << 26
    ebx = (ways - 1) << 22 | (line - 1)
    return regs(4, subleaf, eax, ebx, sets - 1, 0)


BRAND = "Intel Core Processor (Haswell, no TSX)"
# Haswell in QEMU target/i386/cpu.c: family 6, model 60, stepping 4.
SIGNATURE = 0x4 | 0xC << 4 | 0x6 << 8 | 0x3 << 16
# fpu pse tsc msr pae cx8 apic sep pge cmov clflush mmx fxsr sse sse2 ht
LEAF1_EDX = bits(0, 3, 4, 5, 6, 8, 9, 11, 13, 15, 19, 23, 24, 25, 26, 28)
# pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand
# hypervisor
LEAF1_ECX = bits(0, 1, 9, 12, 13, 19, 20, 21, 22, 23, 25, 26, 28, 29, 30, 31)
LEAF7_EBX = bits(0, 3, 5, 7, 8, 9, 10)  # fsgsbase bmi1 avx2 smep bmi2 erms invpcid
EXT_EDX = bits(11, 20, 27, 29)  # syscall nx rdtscp lm
EXT_ECX = bits(0, 5)  # lahf_lm abm
EXPECTED_FLAGS = (
    "fpu pse tsc msr pae cx8 apic sep pge cmov clflush mmx fxsr sse sse2 ht "
    "syscall nx rdtscp lm "
    "pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand "
    "hypervisor "
    "lahf_lm abm "
    "fsgsbase bmi1 avx2 smep bmi2 erms invpcid "
    "xsaveopt"
).split()

vendor_ebx, vendor_edx, vendor_ecx = ascii_regs("GenuineIntel", 3)
brand_regs = ascii_regs(BRAND, 12)
CPUID = [
    regs(0, 0, 0xD, vendor_ebx, vendor_ecx, vendor_edx),
    # -smp 2 on q35-7.2 means 2 cores in one package: 2 logical CPUs, BSP APIC id 0.
    regs(1, 0, SIGNATURE, 0x00020800, LEAF1_ECX, LEAF1_EDX),
    cache_leaf4(0, 1, 1, ways=8, line=64, sets=64, shared_by=1, cores=2),  # L1d 32 KiB
    cache_leaf4(1, 1, 2, ways=8, line=64, sets=64, shared_by=1, cores=2),  # L1i 32 KiB
    cache_leaf4(2, 2, 3, ways=16, line=64, sets=4096, shared_by=1, cores=2),  # L2 4 MiB
    cache_leaf4(3, 3, 3, ways=16, line=64, sets=16384, shared_by=2, cores=2),  # L3 16 MiB
    regs(7, 0, 0, LEAF7_EBX, 0, 0),
    regs(0xD, 1, 1, 0, 0, 0),  # xsaveopt
    regs(0x40000000, 0, 0x40000001, *ascii_regs("TCGTCGTCGTCG", 3)),
    regs(0x80000000, 0, 0x80000008),
    regs(0x80000001, 0, 0, 0, EXT_ECX, EXT_EDX),
    regs(0x80000002, 0, *brand_regs[0:4]),
    regs(0x80000003, 0, *brand_regs[4:8]),
    regs(0x80000004, 0, *brand_regs[8:12]),
    regs(0x80000008, 0, 0x3028),  # 40 bits physical, 48 bits virtual
]
CACHE_SIZES = {"L1d": 32 << 10, "L1i": 32 << 10, "L2": 4 << 20, "L3": 16 << 20}

# ---------------------------------------------------------------- ACPI (ACPI 6.5 chapter 5)


def acpi_table(signature, body, revision=1, oem_id=b"BOCHS ", oem_table_id=b"BXPC    "):
    length = 36 + len(body)
    header = struct.pack("<4sIBB6s8sI4sI", signature.encode(), length, revision, 0, oem_id,
                         oem_table_id, 1, b"BXPC", 1)
    table = bytearray(header + body)
    table[9] = (-sum(table)) & 0xFF
    return bytes(table)


def madt(apic_ids_enabled=(0, 1), apic_ids_disabled=(2,)):
    body = struct.pack("<II", 0xFEE00000, 1)
    for uid, apic_id in enumerate(apic_ids_enabled):
        body += struct.pack("<BBBBI", 0, 8, uid, apic_id, 1)
    for uid, apic_id in enumerate(apic_ids_disabled, start=len(apic_ids_enabled)):
        body += struct.pack("<BBBBI", 0, 8, uid, apic_id, 0)
    body += struct.pack("<BBBxII", 1, 12, 0, 0xFEC00000, 0)  # IO APIC
    body += struct.pack("<BBBBIH", 2, 10, 0, 0, 2, 0)  # interrupt source override
    return acpi_table("APIC", body, revision=3)


def mcfg(base=0xB0000000, segment=0, start_bus=0, end_bus=0xFF):
    return acpi_table("MCFG", bytes(8) + struct.pack("<QHBB4x", base, segment, start_bus, end_bus))


def fadt(dsdt=0x07FE0040, x_dsdt=0x07FE0040):
    body = bytearray(244 - 36)
    struct.pack_into("<I", body, 40 - 36, dsdt)
    struct.pack_into("<Q", body, 140 - 36, x_dsdt)
    return acpi_table("FACP", bytes(body), revision=3)


def rsdp(rsdt=0x07FE2000):
    raw = bytearray(struct.pack("<8sB6sBI", b"RSD PTR ", 0, b"BOCHS ", 0, rsdt))
    raw[8] = (-sum(raw)) & 0xFF
    return bytes(raw)


ACPI_TABLES = [(0x07FE1000, fadt()), (0x07FE1100, madt()), (0x07FE1200, mcfg()),
               (0x07FE0040, acpi_table("DSDT", b"\x10" * 64))]

MEMORY = [
    (0x0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2),
    (0x100000, 0x7EE0000, 1), (0x7FE0000, 0x20000, 2), (0xB0000000, 0x10000000, 2),
]


def frames_bytes(extra_frames=(), acpi_tables=None):
    """The serial byte stream of one synthetic discovery run (boot text first)."""
    bodies = [(Msg.HELLO, LAYOUTS[Msg.HELLO].pack(version=1, arch=WireArch.X86_64)),
              (Msg.LOG, LAYOUTS[Msg.LOG].pack(b"long mode reached"))]
    bodies += [(Msg.MEMORY, LAYOUTS[Msg.MEMORY].pack(base=b, length=n, type=t))
               for b, n, t in MEMORY]
    bodies += [(Msg.CPUID, LAYOUTS[Msg.CPUID].pack(**r)) for r in CPUID]
    for entry in PCI_DEVICES:
        bus, dev, fn, config = entry[:4]
        readbacks = entry[4] if len(entry) > 4 else []
        bodies.append((Msg.PCI_FUNCTION, pci_body(bus, dev, fn, config, readbacks)))
    bodies.append((Msg.ACPI_RSDP, LAYOUTS[Msg.ACPI_RSDP].pack(rsdp(), address=0xF5A10)))
    tables = ACPI_TABLES if acpi_tables is None else acpi_tables
    bodies += [(Msg.ACPI_TABLE, LAYOUTS[Msg.ACPI_TABLE].pack(t, address=a)) for a, t in tables]
    bodies += list(extra_frames)
    bodies.append((Msg.FINAL, LAYOUTS[Msg.FINAL].pack(frames=len(bodies), status=0)))
    stream = b"SeaBIOS (version 1.16.0)\r\nMetaOS boot\r\n\x00"
    return stream + b"".join(encode_frame(t, seq, body) for seq, (t, body) in enumerate(bodies))


BOARD = {"machine": "q35", "cpu": "Haswell", "smp": 2, "accel": "tcg", "accel_reason": "asked for",
         "qemu_args": ["-machine", "q35", "-cpu", "Haswell", "-smp", "2", "-accel", "tcg"]}
