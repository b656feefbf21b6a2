"""The implementations a board has for each routine.

Every board has the semantic core's lowering for its architecture ("lowered": the
routine lowered, assembled and vetted in Unicorn against the interpreter by
sem.implement, kept in the semantic store when there is one).

It also has every implementation the semantic store holds for the routine on its
architecture that was proven correct (sem.store.PROVEN: the evolution layer's
programs, proven by Z3) and needs only CPU features discovery found on the board;
each is offered as "sem:ID" (its row in the store).

Until evolution fills the store, hand-written code is the fallback: a board whose
CPU has a feature that does a routine's work in one instruction, and whose store
offers nothing proven for that routine, has a hand-written implementation using it,
named after the feature:

    x86-64 POPCNT (CPUID popcnt):  p22 parity, p23 population count
    x86-64 LZCNT (CPUID abm):      p10-p12, the nlz comparisons
    RISC-V Zbb:                    p16 (max), p20 (ctzw), p22/p23 (cpopw), sort3/4/5 (min/max)

They are offered only where discovery saw the feature (the CPUID flags, the
device tree's riscv,isa string); whether they are faster there is for the board's
own history to find out (the agent tries each implementation before it picks).
Their answers are checked like any other, every one while the board calibrates.

Zbb instructions are written as `.insn` directives with their encodings (RISC-V
bitmanip 1.0.0): capstone 5, which re-checks every assembled instruction, does not
decode them yet.  A test holds each encoding to GNU as.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from arch import RISCV64, X86_64, Arch
from discovery.inventory import Inventory
from discovery.riscv_extensions import extension_names
from sem.implement import implement
from sem.ir import Routine
from sem.library.sorting import NETWORKS
from sem.store import SemStore

LOWERED = "lowered"

# Zbb encodings (bitmanip 1.0.0): R-type min/max on OP; unary ops on OP-IMM(-32) with funct12.
ZBB_R = {"min": 4, "minu": 5, "max": 6, "maxu": 7}  # funct3; funct7 = 0b0000101
ZBB_UNARY = {"clz": 0x600, "ctz": 0x601, "cpop": 0x602}  # funct12; funct3 = 1
OP, OP_IMM, OP_IMM_32 = 0x33, 0x13, 0x1B


def zbb(mnemonic: str, rd: str, rs1: str, rs2: str | None = None) -> str:
    """A Zbb instruction as an .insn directive (min/max/minu/maxu rd, rs1, rs2;
    clz/ctz/cpop[w] rd, rs1)."""
    if mnemonic in ZBB_R:
        return f".insn r {OP:#x}, {ZBB_R[mnemonic]}, 0x5, {rd}, {rs1}, {rs2}"
    base, word = mnemonic.removesuffix("w"), mnemonic.endswith("w")
    return f".insn i {OP_IMM_32 if word else OP_IMM:#x}, 1, {rd}, {rs1}, {ZBB_UNARY[base]:#x}"


def _zbb_sort(n: int) -> str:
    regs = [f"t{i}" for i in range(n)]
    out = [f"lw {r}, {4 * i}(a0)" for i, r in enumerate(regs)]
    for i, j in NETWORKS[n]:
        out += [zbb("min", "t6", regs[i], regs[j]), zbb("max", regs[j], regs[i], regs[j]),
                f"mv {regs[i]}, t6"]
    out += [f"sw {r}, {4 * i}(a0)" for i, r in enumerate(regs)]
    return "\n".join([*out, "ret"])


def _nlz_compare(setcc: str) -> str:
    return "\n".join(["lzcnt eax, edi", "lzcnt ecx, esi", "xor edx, edx", "cmp eax, ecx",
                      f"{setcc} dl", "mov eax, edx", "ret"])


@dataclass(frozen=True)
class FeatureCode:
    routine: str  # short name (p23, sort5)
    arch: Arch
    feature: str  # as discovery names it (CPUID flag, RISC-V extension)
    text: str  # assembly, the platform calling convention (sem.lower's)


FEATURE_CODE = (
    FeatureCode("p22", X86_64, "popcnt", "popcnt eax, edi\nand eax, 1\nret"),
    FeatureCode("p23", X86_64, "popcnt", "popcnt eax, edi\nret"),
    FeatureCode("p10", X86_64, "abm", _nlz_compare("sete")),
    FeatureCode("p11", X86_64, "abm", _nlz_compare("setb")),
    FeatureCode("p12", X86_64, "abm", _nlz_compare("setbe")),
    FeatureCode("p16", RISCV64, "zbb", "\n".join(["sext.w a0, a0", "sext.w a1, a1",
                                                  zbb("max", "a0", "a0", "a1"), "ret"])),
    FeatureCode("p20", RISCV64, "zbb", "\n".join([
        "negw t0, a0", "and t0, a0, t0  # the rightmost 1 bit",
        "addw t1, a0, t0  # ripple", "xor t2, a0, t1  # ones",
        "slli t2, t2, 32", "srli t2, t2, 34  # ones >> 2, as 32 bits",
        zbb("ctzw", "t3", "a0"), "srl t2, t2, t3", "or a0, t1, t2", "ret"])),
    FeatureCode("p22", RISCV64, "zbb", "\n".join([zbb("cpopw", "a0", "a0"), "andi a0, a0, 1",
                                                  "ret"])),
    FeatureCode("p23", RISCV64, "zbb", "\n".join([zbb("cpopw", "a0", "a0"), "ret"])),
    *(FeatureCode(f"sort{n}", RISCV64, "zbb", _zbb_sort(n)) for n in NETWORKS),
)


def _x86_features(inventory: Inventory) -> set[str]:
    return set(inventory.cpu.table.flags)


def _riscv_features(inventory: Inventory) -> set[str]:
    cpu = inventory.cpu
    isa = cpu.isa_of(cpu.harts[0].hartid) if cpu.harts else ""
    return {name for name, _ in extension_names(isa)}


FEATURE_READERS: dict[Arch, Callable[[Inventory], set[str]]] = {
    X86_64: _x86_features, RISCV64: _riscv_features}


def features_of(inventory: Inventory) -> tuple[str, ...]:
    """The CPU features discovery saw, as it names them."""
    return tuple(sorted(FEATURE_READERS[inventory.arch](inventory)))


def lowered_code(r: Routine, rid: str, arch: Arch, store: SemStore | None) -> bytes:
    """The routine's lowering on `arch`: the stored one, or lowered and vetted now (and
    kept, with a store)."""
    if store is not None:
        impls = [i for i in store.implementations(rid, arch)
                 if not i.proven and not i.features]  # the lowering's: vetted, base ISA
        if impls:
            return impls[-1].code
    vetted = implement(r, arch)
    if store is not None:
        store.add(r)  # an implementation names its routine, which must be there
        store.add_implementation(rid, arch, vetted.code, vetted.assembly, vetted.established)
    return vetted.code


@dataclass(frozen=True)
class StoredCode:
    """A proven implementation from the semantic store, as a board may offer it."""

    label: str  # "sem:ID", ID its row in the store
    code: bytes
    features: tuple[str, ...]  # the CPU features it needs


def stored_code(store: SemStore | None, rid: str, arch: Arch) -> tuple[StoredCode, ...]:
    """The proven implementations the store holds for routine `rid` on `arch`."""
    if store is None:
        return ()
    return tuple(StoredCode(f"sem:{i.id}", i.code, tuple(sorted(i.features)))
                 for i in store.implementations(rid, arch) if i.proven)


def board_code(short: str, arch: Arch, features: tuple[str, ...], lowered: bytes,
               stored: tuple[StoredCode, ...]) -> dict[str, bytes]:
    """What a board with these CPU features offers for one routine, by label: the
    lowering; the store's proven implementations whose features it has; and, only when
    the store offers it none, the hand-written feature code (the fallback)."""
    usable = {s.label: s.code for s in stored
              if set(s.features) <= set(features) and s.code != lowered}
    return {LOWERED: lowered, **(usable or feature_code(short, arch, features))}


def feature_code(short: str, arch: Arch, features: tuple[str, ...]) -> dict[str, bytes]:
    """The feature implementations of routine `short` this board can run, by feature."""
    return {f.feature: arch.assemble(f.text + "\n") for f in FEATURE_CODE
            if f.routine == short and f.arch == arch and f.feature in features}
