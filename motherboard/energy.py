"""Energy per board: a model (joules per cycle), or a meter where the host has one.

Emulated boards have no power of their own, so their joules are a MODEL: cycles the
guest counted times an assumed joules-per-cycle figure per kind of board, stated as
such in every report.  Where the host exposes Intel RAPL (powercap, under
/sys/class/powercap/intel-rapl:N/energy_uj) and it is readable, a KVM board's run
is also metered: the package's energy counter before and after.  That figure is the
whole package's energy over the interval (everything the host did meanwhile
included), so it is reported beside the model, never instead of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from motherboard.messages import EnergySource

POWERCAP = Path("/sys/class/powercap")
# Assumed figures (a model, not a measurement): a desktop x86 core at ~3 GHz and
# ~15 W is ~5 nJ per cycle; a small in-order RISC-V core at ~1 GHz and ~0.5 W ~0.5 nJ.
MODEL_JOULES_PER_CYCLE = {"x86_64": 5e-9, "riscv64": 0.5e-9}
DEFAULT_JOULES_PER_CYCLE = 2e-9


def model_for(arch_name: str) -> EnergySource:
    jpc = MODEL_JOULES_PER_CYCLE.get(arch_name, DEFAULT_JOULES_PER_CYCLE)
    return EnergySource(jpc, "model", f"model: {jpc * 1e9:g} nJ per guest cycle assumed for"
                                      f" {arch_name}; not measured")


@dataclass(frozen=True)
class Rapl:
    """A readable RAPL package counter (microjoules, wrapping at max_energy_range_uj)."""

    counter: Path
    wrap_uj: int

    def read_uj(self) -> int:
        return int(self.counter.read_text())

    def joules_between(self, before_uj: int, after_uj: int) -> float:
        return ((after_uj - before_uj) % self.wrap_uj) / 1e6


def rapl(root: Path = POWERCAP) -> Rapl | None:
    """The first readable package-level RAPL counter, or None (no powercap, not Intel,
    or not readable by this user)."""
    for zone in sorted(root.glob("intel-rapl:[0-9]*")):
        counter, wrap = zone / "energy_uj", zone / "max_energy_range_uj"
        try:
            int(counter.read_text())
            return Rapl(counter, int(wrap.read_text()))
        except (OSError, ValueError):
            continue
    return None
