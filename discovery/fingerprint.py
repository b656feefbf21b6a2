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
                      mimpid: int) -> Fingerprint:
    ident = {"misa": misa, "mvendorid": mvendorid, "marchid": marchid, "mimpid": mimpid}
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
    return riscv_fingerprint(board, h.misa, h.mvendorid, h.marchid, h.mimpid)


_IDENTITIES = {X86_64: _x86_identity, RISCV64: _riscv_identity}


def fingerprint_of(inventory: Inventory, board: str) -> Fingerprint:
    """The hardware fingerprint a discovery inventory gives (stores/fingerprint.py)."""
    identity = _IDENTITIES.get(inventory.arch)
    if identity is None:
        raise FingerprintError(f"no fingerprint for {inventory.arch_name}")
    return identity(inventory, board)


def _x86_identity_text(ident: Mapping[str, int]) -> str:
    vendor = ident["vendor"].to_bytes(12, "little").rstrip(b"\0").decode("latin-1")
    return (f"{vendor} family {ident['family']:#x} model {ident['model']:#x}"
            f" stepping {ident['stepping']}")


def _riscv_identity_text(ident: Mapping[str, int]) -> str:
    misa = ident["misa"]
    return (f"misa {misa:#x} ({misa_extensions(misa)}) mvendorid {ident['mvendorid']:#x}"
            f" marchid {ident['marchid']:#x} mimpid {ident['mimpid']:#x}")


_IDENTITY_TEXTS = {X86_64: _x86_identity_text, RISCV64: _riscv_identity_text}


def identity_text(arch: Arch | str, identity: Mapping[str, int]) -> str:
    """A fingerprint's identity as a person reads it (vendor, family, model; misa letters)."""
    return _IDENTITY_TEXTS[by_name(arch)](identity)
