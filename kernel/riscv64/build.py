"""Build the RISC-V kernel: build/riscv64/kernel.elf, and the benchmark floor.

Sources are assembled in the order of SOURCES as one unit; three more are
generated from contract data (kernel/riscv64/generated.py): the CSR probes,
the bootargs words and the CRC-32 table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contract import fdt, pci, protocol, virtio
from contract.constants import ConstantSet, collect
from contract.riscv64 import causes, csrs, exits, memory_map, probe_state, probes, virt
from kernel.riscv64 import generated
from toolchain.program import Program, Section
from toolchain.riscvasm import assemble_elf

HERE = Path(__file__).parent
# No compressed instructions: the kernel must also run on harts without C.
MARCH = "rv64ima_zicsr_zifencei"
SOURCES = ("entry.s", "trap.s", "hart.s", "<csr_probes.s>", "fdtlib.s", "fdt.s", "uart.s",
           "plic.s", "virtio.s", "line.s", "frame.s", "rx.s", "pci.s", "main.s", "commands.s",
           "run.s", "exit.s", "data.s", "probedata.s", "<bootargs.s>", "<crc_tables.s>")


@dataclass(frozen=True)
class RiscvKernel:
    elf: Path
    program: Program
    constants: dict[str, int]


def constants() -> ConstantSet:
    """Every constant the RISC-V assembly sees, each defined once
    (contract/constants.py: a name from two places is an error naming both)."""
    if probes.RISCV64_PROBES.code_fill != 0:
        raise ValueError("run.s fills the code area past a probe with zeros (place_area):"
                         " teach it contract/probe_abi.py's code_fill first")
    modules = (protocol, virt, memory_map, csrs, causes, exits, probe_state, virtio, pci, fdt)
    return collect(
        __name__, *((m.__name__, m.asm_constants()) for m in modules),
        ("contract.riscv64.probes", probes.RISCV64_PROBES.asm_constants()))


def _sources(out_dir: Path) -> tuple[Path, ...]:
    gen_dir = out_dir / "gen"
    gen_dir.mkdir(parents=True, exist_ok=True)
    (gen_dir / "csr_probes.s").write_text(generated.csr_probes_source())
    (gen_dir / "crc_tables.s").write_text(generated.crc_tables_source())
    (gen_dir / "bootargs.s").write_text(generated.bootargs_source())
    return tuple(gen_dir / name[1:-1] if name.startswith("<") else HERE / name
                 for name in SOURCES)


def build(out_dir: Path = Path("build/riscv64")) -> RiscvKernel:
    """Assemble and link the kernel into out_dir/kernel.elf."""
    out_dir = Path(out_dir)
    consts = constants()
    elf = out_dir / "kernel.elf"
    section = Section("kernel", memory_map.KERNEL_BASE, _sources(out_dir))
    program = assemble_elf([section], consts, elf, entry="_start", march=MARCH)
    return RiscvKernel(elf, program, dict(consts))


FLOOR_SOURCE = """\
# The benchmark floor: one byte (a frame delimiter) on the UART, then exit
# through sifive_test at once.
_start:
    li t0, UART0_BASE
    li t1, FRAME_DELIMITER
    sb t1, UART_THR(t0)
    li t0, TEST_BASE
    li t1, SIFIVE_TEST_PASS
    sw t1, 0(t0)
1:  j 1b
"""


def build_floor(out_dir: Path = Path("build/riscv64")) -> Path:
    """An ELF that only exits (pass): QEMU's own boot cost, for benchmarks."""
    out_dir = Path(out_dir)
    source = out_dir / "gen" / "floor.s"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(FLOOR_SOURCE)
    elf = out_dir / "floor.elf"
    section = Section("floor", memory_map.KERNEL_BASE, (source,))
    assemble_elf([section], constants(), elf, entry="_start", march=MARCH)
    return elf
