"""CSR sweep (riscv64, privileged): csrr of every one of the 4096 CSR numbers.
An illegal-instruction fault means the CSR does not exist (or not in M-mode);
otherwise the output holds its value."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from arch import RISCV64
from contract.probe_abi import Privilege
from probes.probe import Probe

CSR_COUNT = 4096
SOURCE = "csrr t0, 0\nsd t0, 0(a1)\nli a0, 0\nret\n"
CSR_FIELD_SHIFT = 20  # csrrs' CSR number: bits 31:20 of its I-type word


@cache
def _template() -> bytes:
    """The probe for CSR 0, assembled once (without compressed instructions, so the
    csrr is the first 32-bit word).  Each CSR's probe is it with the CSR field written
    in: binutils takes ~8 ms a snippet, 33 s for the sweep."""
    return RISCV64.assemble(SOURCE, extensions="rv64g")


def csr_probe(csr: int) -> Probe:
    template = _template()
    first = int.from_bytes(template[:4], "little") | (csr << CSR_FIELD_SHIFT)
    code = first.to_bytes(4, "little") + template[4:]
    return Probe(RISCV64, code, Privilege.PRIVILEGED, family="csr", output_size=8,
                 meta={"csr": csr})


def csr_sweep() -> Iterator[Probe]:
    return (csr_probe(csr) for csr in range(CSR_COUNT))
