"""The hardware fingerprint of a discovered board (stores/fingerprint.py)."""

from __future__ import annotations

from collections.abc import Mapping

from arch import RISCV64, X86_64, Arch, by_name
from discovery.harts import misa_extensions
from discovery.inventory import Inventory
from stores.fingerprint import Fingerprint

# CPUID feature words that identify a CPU model (1.ebx is left out: it holds the APIC id).
X86_FEATURE_WORDS = (("1.ecx", 1, 0, "ecx"), ("1.edx", 1, 0, "edx"),
                     ("7.0.ebx", 7, 0, "ebx"), ("7.0.ecx", 7, 0, "ecx"), ("7.0.edx", 7, 0, "edx"),
                     ("80000001.ecx", 0x8000_0001, 0, "ecx"),
                     ("80000001.edx", 0x8000_0001, 0, "edx"))


class FingerprintError(Exception):
    """An inventory that names no CPU to fingerprint."""


def x86_fingerprint(board: str, vendor: str, family: int, model: int, stepping: int,
                    features: dict[str, int]) -> Fingerprint:
    """`features`: CPUID feature words by name, e.g. {"1.ecx": ..., "7.0.ebx": ...}."""
    vendor_word = int.from_bytes(vendor.encode().ljust(12, b"\0")[:12], "little")
    ident = {"vendor": vendor_word, "family": family, "model": model, "stepping": stepping}
    ident.update({f"cpuid.{k}": v for k, v in features.items()})
    return Fingerprint(X86_64, board, tuple(sorted(ident.items())))


def riscv_fingerprint(board: str, misa: int, mvendorid: int, marchid: int,
                      mimpid: int, isa: str) -> Fingerprint:
    """`isa`: the hart's `riscv,isa` string from the device tree ("" when there was none).
    misa has a bit per single-letter extension only: `rv64` and `rv64` with Zba/Zbb/Zbs
    off have the same misa and ids, and only the string tells them apart."""
    ident: dict[str, int | str] = {"misa": misa, "mvendorid": mvendorid, "marchid": marchid,
                                   "mimpid": mimpid, "isa": isa.lower()}
    return Fingerprint(RISCV64, board, tuple(sorted(ident.items())))


def _x86_identity(inventory: Inventory, board: str) -> Fingerprint:
    table = inventory.cpu.table
    words = {}
    for name, leaf, subleaf, register in X86_FEATURE_WORDS:
        result = table.get(leaf, subleaf)
        words[name] = result[register] if result is not None else 0
    return x86_fingerprint(board, table.vendor, table.family, table.model, table.stepping, words)


def _riscv_identity(inventory: Inventory, board: str) -> Fingerprint:
    harts = inventory.cpu.harts
    if not harts:
        raise FingerprintError("the discovery run reported no hart: no fingerprint to store"
                               " results under")
    h = harts[0]
    tree = inventory.cpu.devicetree
    nodes = [n for n in tree.harts if n.hartid == h.hartid] if tree is not None else []
    isa = nodes[0].isa if nodes else ""
    return riscv_fingerprint(board, h.misa, h.mvendorid, h.marchid, h.mimpid, isa)


_IDENTITIES = {X86_64: _x86_identity, RISCV64: _riscv_identity}


def fingerprint_of(inventory: Inventory, board: str) -> Fingerprint:
    """The hardware fingerprint a discovery inventory gives (stores/fingerprint.py)."""
    identity = _IDENTITIES.get(inventory.arch)
    if identity is None:
        raise FingerprintError(f"no fingerprint for {inventory.arch_name}")
    return identity(inventory, board)


def _x86_identity_text(ident: Mapping[str, int | str]) -> str:
    vendor = int(ident["vendor"]).to_bytes(12, "little").rstrip(b"\0").decode("latin-1")
    return (f"{vendor} family {ident['family']:#x} model {ident['model']:#x}"
            f" stepping {ident['stepping']}")


def _riscv_identity_text(ident: Mapping[str, int | str]) -> str:
    misa = int(ident["misa"])
    multi_letter = str(ident.get("isa", "")).split("_")[1:]
    return (f"misa {misa:#x} ({misa_extensions(misa)}{' ' if multi_letter else ''}"
            f"{' '.join(multi_letter)}) mvendorid {int(ident['mvendorid']):#x}"
            f" marchid {int(ident['marchid']):#x} mimpid {int(ident['mimpid']):#x}")


_IDENTITY_TEXTS = {X86_64: _x86_identity_text, RISCV64: _riscv_identity_text}


def identity_text(arch: Arch | str, identity: Mapping[str, int | str]) -> str:
    """A fingerprint's identity as a person reads it (vendor, family, model; misa letters)."""
    return _IDENTITY_TEXTS[by_name(arch)](identity)
