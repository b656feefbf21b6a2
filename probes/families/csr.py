"""CSR sweep (riscv64, privileged): csrr of every one of the 4096 CSR numbers.
An illegal-instruction fault means the CSR does not exist (or not in M-mode);
otherwise the output holds its value."""

from __future__ import annotations

from collections.abc import Iterator

from contract.probe_abi import Privilege
from probes.families.riscv_encode import A0, A1, T0, ZERO, addi, csrrs, ret, sd, words
from probes.probe import Probe

CSR_COUNT = 4096


def csr_probe(csr: int) -> Probe:
    code = words(csrrs(T0, csr), sd(T0, A1, 0), addi(A0, ZERO, 0), ret())
    return Probe("riscv64", code, Privilege.PRIVILEGED, family="csr", output_size=8, meta={"csr": csr})


def csr_sweep() -> Iterator[Probe]:
    return (csr_probe(csr) for csr in range(CSR_COUNT))
