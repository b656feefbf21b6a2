"""The boards the market trades for: their agents' keys, the features discovery found,
and where their code runs (the board's own guest, or Unicorn when no board is live).

A board's agent is keyed by its full fingerprint: the hardware fingerprint discovery
computes (stores/fingerprint.py: architecture, board profile, identity registers) and
the features discovery found it to have.  The features must be part of the key: a RISC-V
fingerprint is misa and the vendor/arch/impl IDs, which do not change when QEMU turns
Zba/Zbb/Zbs off, so rv64 and rv64 without Zb* would otherwise be one agent.

Features are the engine's names (evolution's Isa.features: bmi1, bmi2, lzcnt, popcnt,
adx; m, zba, zbb, zbs) that the board's own claims confirm: CPUID flags as Linux names
them, the RISC-V misa letters and `riscv,isa` extensions (probes/families/discovery.py).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from dataclasses import dataclass, field

from arch import RISCV64, X86_64, Arch
from discovery.fingerprint import fingerprint_of
from discovery.inventory import Inventory
from evolution.board_features import claimed_features
from evolution.check import probe_vector, unicorn_check
from evolution.isa import Isa
from evolution.registry import ISAS
from evolution.testset import machine_vectors
from evolution.validate import UNICORN_LACKS
from kernel.guest import build_guest
from link.qemu_link import QemuLink
from probes.campaign import Campaign
from probes.routine import Job, probe_form, run_on_link
from probes.run import POLICY
from qemu.boards import Board
from qemu.boards import board as make_board
from sem.ir import Routine
from stores.fingerprint import Fingerprint

# the market's board profiles: (arch's default board, QEMU CPU model)
PROFILES: dict[str, tuple[Arch, str]] = {
    "qemu64": (X86_64, "qemu64"),
    "haswell": (X86_64, "Haswell"),
    "rv64": (RISCV64, "rv64"),
    "rv64-nozb": (RISCV64, "rv64,zba=false,zbb=false,zbc=false,zbs=false"),
}


def isa_of(arch: Arch) -> Isa:
    return next(isa for isa in ISAS.values() if isa.arch == arch)


def agent_key(identity: Fingerprint | str, features: frozenset[str]) -> str:
    """BLAKE2b-256 (hex) of the fingerprint's digest (or, for a board with no hardware
    behind it, its name) and the sorted features."""
    base = identity.digest if isinstance(identity, Fingerprint) else identity.encode()
    text = base + b"|" + ",".join(sorted(features)).encode()
    return hashlib.blake2b(text, digest_size=32).hexdigest()


@dataclass(frozen=True)
class CodeRun:
    """Machine code run on a board's own vectors, checked against the interpreter."""
    vectors: int
    wrong: int
    detail: str  # where it ran and what it found
    cycles: float | None = None  # the guest's median count per run (probe entry to exit)

    @property
    def ok(self) -> bool:
        return self.wrong == 0


@dataclass
class Seat:
    """A board in the market: its agent's key, ISA, discovered features, and where its
    code runs (`run_code`)."""
    name: str
    isa: Isa
    features: frozenset[str]
    key: str

    @property
    def where(self) -> str:
        return "unicorn"

    @property
    def account(self) -> str | None:
        """The hex digest of the board's hardware fingerprint: whom the meta-motherboard
        pays (motherboard/credits.py).  None: no hardware behind this board."""
        return None

    def run_code(self, spec: Routine, code: bytes, count: int, seed: int) -> CodeRun:
        """Run `code` as `spec` on `count` vectors drawn with `seed` (Unicorn here; the
        board's guest in GuestSeat), by the platform ABI."""
        lacking = UNICORN_LACKS.get(self.isa.name, frozenset()) & self.features
        vectors = machine_vectors(self.isa, spec, count, seed)
        wrong = unicorn_check(self.isa, spec, code, vectors)
        detail = f"unicorn {self.isa.name}: {count - len(wrong)}/{count} vectors agree"
        if wrong and lacking:
            detail += (f" (Unicorn lacks {', '.join(sorted(lacking))}: a live board can run "
                       "this code, Unicorn cannot)")
        elif wrong:
            detail += f", e.g. {wrong[0].detail}"
        return CodeRun(count, len(wrong), detail)

    def close(self) -> None:
        pass


def emulated_seat(name: str, arch: Arch, features: frozenset[str]) -> Seat:
    """A board with no hardware behind it: its code runs in Unicorn."""
    isa = isa_of(arch)
    unknown = features - set(isa.features)
    if unknown:
        raise ValueError(f"{arch} has no feature {', '.join(sorted(unknown))}; "
                         f"it knows {', '.join(isa.features)}")
    return Seat(name, isa, features, agent_key(f"{name}:{arch.name}", features))


@dataclass
class GuestSeat(Seat):
    """A live board: QEMU running our guest, which stays after discovery to run probes."""
    link: QemuLink | None = None
    fingerprint: Fingerprint | None = None
    campaign: Campaign | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.name} guest ({self.link.accelerator if self.link else 'closed'})"

    @property
    def account(self) -> str | None:
        return self.fingerprint.digest.hex() if self.fingerprint else None

    def run_code(self, spec: Routine, code: bytes, count: int, seed: int) -> CodeRun:
        # inputs as the platform ABI passes them (evolution's machine vectors: junk above
        # a 32-bit x86-64 argument, sign extension on riscv64), in the probe form's block
        vectors = [probe_vector(self.isa, spec, v)
                   for v in machine_vectors(self.isa, spec, count, seed)]
        form = probe_form(spec, self.isa.arch, code)
        if self.campaign is None:
            self.campaign = Campaign(self.link, POLICY)
        started = time.monotonic()
        (run,) = run_on_link(self.link, [Job(spec, form, vectors)], self.campaign)
        seconds = time.monotonic() - started
        cycles = statistics.median(run.cycles) if run.cycles else None
        detail = f"{self.where}: {run.agreed}/{count} vectors agree in {seconds:.2f} s"
        if run.disagreements:
            v, want, obs = run.disagreements[0]
            detail += (f", e.g. inputs {v.args}: expected {want.result}, the board gave "
                       f"outcome {obs.outcome.name} status {obs.status}")
        return CodeRun(count, count - run.agreed, detail, cycles)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None


def open_seat(profile: str, accel: str = "tcg") -> GuestSeat:
    """Boot a market board profile (PROFILES) and keep it running: discovery gives its
    fingerprint and features."""
    if profile not in PROFILES:
        raise ValueError(f"no board profile {profile!r}; choose from {', '.join(PROFILES)}")
    arch, cpu = PROFILES[profile]
    board = make_board(arch.default_board, cpu=cpu, accel=accel)
    return boot_seat(profile, board)


def boot_seat(name: str, board: Board) -> GuestSeat:
    link = QemuLink(board, build_guest(board.arch))
    try:
        inventory = Inventory.from_boot(link.first_boot)
        fingerprint = fingerprint_of(inventory, board.name)
        isa = isa_of(board.arch)
        features = claimed_features(isa, inventory)
    except Exception:
        link.close()
        raise
    return GuestSeat(name, isa, features, agent_key(fingerprint, features), link, fingerprint)
