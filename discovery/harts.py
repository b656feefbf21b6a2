"""The riscv64 CPU section of an inventory: HART frames plus the device tree.

Each HART frame is one hart's identity as the guest read it in machine mode
(misa, mvendorid, marchid, mimpid, and a bitmap over the CSR catalogue in
contract/riscv64/csrs.py).  The device tree adds each hart's `riscv,isa` string.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.frames import Frame
from contract.protocol import LAYOUTS, Msg
from contract.riscv64.csrs import csr_names
from discovery.devicetree import DeviceTree, parse_devicetree
from discovery.memory import MemoryRegion
from discovery.riscv_extensions import extension_names

MISA_MXL_BITS = {1: 32, 2: 64, 3: 128}  # misa[XLEN-1:XLEN-2]
E820_USABLE = 1  # device-tree memory nodes are RAM; shown like usable E820 entries


def misa_extensions(misa: int) -> str:
    """misa's extension letters, alphabetical (bit 0 = 'a' ... bit 25 = 'z')."""
    return "".join(chr(ord("a") + bit) for bit in range(26) if misa >> bit & 1)


@dataclass(frozen=True)
class Hart:
    hartid: int
    misa: int
    mvendorid: int
    marchid: int
    mimpid: int
    csrs: int  # bitmap over kernel.riscv64.csrs.CATALOGUE

    @property
    def extensions(self) -> str:
        return misa_extensions(self.misa)

    @property
    def xlen(self) -> int:
        return MISA_MXL_BITS.get(self.misa >> 62 & 3, 0)

    @property
    def csr_names(self) -> list[str]:
        return csr_names(self.csrs)


def decode_hart(body: bytes) -> Hart:
    fields, _ = LAYOUTS[Msg.HART].unpack(body)
    return Hart(**fields)


def isa_string_letters(isa: str) -> str:
    """The single-letter extensions of a `riscv,isa` string ("rv64imafdch_zicsr"
    -> "acdfhim"); "g" stands for "imafd"."""
    base = isa.lower().split("_", 1)[0]
    for prefix in ("rv32", "rv64", "rv128"):
        if base.startswith(prefix):
            base = base[len(prefix):]
            break
    else:
        raise ValueError(f"riscv,isa {isa!r} does not start with rv32/rv64/rv128")
    letters = set(base.replace("g", "imafd"))
    return "".join(sorted(letters))


@dataclass
class RiscvCpu:
    """CPU section for arch "riscv64" (see host.inventory.CpuSection)."""

    harts: list[Hart] = field(default_factory=list)
    devicetree: DeviceTree | None = None
    problems: list[str] = field(default_factory=list)

    def accept(self, frame: Frame) -> bool:
        if frame.type == Msg.HART:
            self.harts.append(decode_hart(frame.body))
            return True
        if frame.type == Msg.DEVICETREE:
            _, blob = frame.fields()
            self.devicetree = parse_devicetree(blob)
            return True
        return False

    def finish(self, inventory) -> None:
        self.harts.sort(key=lambda h: h.hartid)
        if self.devicetree is None:
            inventory.problems.append("no DEVICETREE frame: hart ISA strings and memory unknown")
            return
        if not inventory.memory:
            inventory.memory = [MemoryRegion(m.base, m.size, E820_USABLE)
                                for m in self.devicetree.memory]
        listed = len(self.devicetree.harts)
        if len(self.harts) != listed:
            inventory.problems.append(f"{len(self.harts)} harts reported, the device tree "
                                      f"lists {listed}: some harts did not start or report")

    def isa_of(self, hartid: int) -> str:
        if self.devicetree is None:
            return ""
        return next((h.isa for h in self.devicetree.harts if h.hartid == hartid), "")

    @property
    def count(self) -> int:
        return len(self.harts)

    def to_json(self) -> dict:
        return {
            "harts": [{"hartid": h.hartid, "misa": h.misa, "mvendorid": h.mvendorid,
                       "marchid": h.marchid, "mimpid": h.mimpid, "isa": self.isa_of(h.hartid),
                       "csrs": h.csr_names} for h in self.harts],
            "count": self.count,
        }

    def extra_json(self) -> dict:
        return {"devicetree": self.devicetree.to_json() if self.devicetree else None}

    def summary(self) -> list[tuple[str, str]]:
        """lscpu-like rows."""
        rows = [("Architecture", "riscv64"), ("CPU(s)", str(self.count))]
        if self.harts:
            first = self.harts[0]
            rows += [
                ("Vendor ID", f"{first.mvendorid:#x}"),
                ("Architecture ID", f"{first.marchid:#x}"),
                ("Implementation ID", f"{first.mimpid:#x}"),
                ("ISA", self.isa_of(first.hartid) or "-"),
                ("Extensions (misa)", " ".join(first.extensions.upper())),
            ]
            rows += [("", f"{ext:<12}{name}") for ext, name in
                     extension_names(self.isa_of(first.hartid))]
            rows.append(("CSRs", " ".join(first.csr_names)))
            differing = [h.hartid for h in self.harts[1:] if (h.misa, h.csrs, self.isa_of(h.hartid))
                         != (first.misa, first.csrs, self.isa_of(first.hartid))]
            rows.append(("Harts", " ".join(str(h.hartid) for h in self.harts)
                         + (f" (differ from hart {first.hartid}: {differing})" if differing
                            else " (all alike)")))
        return rows
