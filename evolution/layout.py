"""Code layout: a proven program's code with no-op padding before its return, so that
the return lies RETURN_AT bytes or more past the entry.

Measured under nested KVM (AMD EPYC family 25), each code timed at all four 16-byte
places of a line (probes/timed_calls.PLACEMENTS): a call of a code whose return lies
fewer than 32 bytes past its entry costs more than the same instructions with the return
at 32-34 bytes, in chained calls about 0.6 ticks of the counter (p20 for qemu64: ours, 22
bytes, 4.91-4.94 latency at every place; gcc's, 33 bytes, 4.16-4.36; ours with an
11-byte NOP before its return 4.13-4.29; for Haswell the same, 4.22 against gcc's
3.58-3.71 and padded 3.51-3.71), while at 28-31 nothing changed and at 40 or 62-63 the
cost was back.  So the shortest code is not always the quickest to call, and only the
board can say: a padded code is one more candidate the guest times (fitness.choose),
under KVM only, where the silicon fetches the code (under TCG padding only adds
instructions).

The program, and so its proof, is unchanged: the padding is the ISA's no-op instructions
(Isa.nops), which read and write nothing; the padded bytes are checked like any code, in
Unicorn and in the guest, and a padded code's instruction count counts its NOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

from evolution.isa import Isa

RETURN_AT = 32  # bytes from the entry to the return (see above)
MOST_NOPS = 2  # no-op instructions a padding may take (each is one more to run)


@dataclass(frozen=True)
class Padded:
    """A code with padding before its return."""

    code: bytes
    instructions: int  # the program's and the padding's, the return included
    padding: tuple[bytes, ...]  # the no-op instructions inserted, in order

    def text(self, isa: Isa, program_text: str) -> str:
        """The program's text with the padding before its return, each no-op as the
        disassembler reads it (the code's bytes say how long)."""
        lines = program_text.rstrip("\n").split("\n")
        nops = [f"{i.mnemonic} {i.op_str}".rstrip()
                for b in self.padding for i in isa.arch.disassembler.disasm(b, 0)]
        return "\n".join([*lines[:-1], *nops, lines[-1]]) + "\n"


def padded(isa: Isa, code: bytes, instructions: int) -> Padded | None:
    """`code` (ending in the ISA's return, `instructions` long) with the fewest no-ops of
    the ISA's that put its return RETURN_AT bytes past the entry; None where it already
    lies that far, or the gap takes more than MOST_NOPS of them."""
    ret = len(isa.assemble(isa.return_text + "\n", frozenset()))
    gap = RETURN_AT - (len(code) - ret)
    if gap <= 0 or not isa.nops or gap % min(isa.nops):
        return None
    padding = []
    while gap:
        size = max(n for n in isa.nops if n <= gap)
        padding.append(isa.nops[size])
        gap -= size
    if len(padding) > MOST_NOPS:
        return None
    return Padded(code[:-ret] + b"".join(padding) + code[-ret:], instructions + len(padding),
                  tuple(padding))


PADDED = ", padded"  # what a padded twin's name adds to its code's (with_padding)


def with_padding(isa: Isa, codes: dict[str, bytes], counts: dict[str, int],
                 most: int | None) -> dict[str, Padded]:
    """Each code named in `counts` (its instructions) with its padded twin beside it, in
    `codes` and `counts` as "NAME, padded", where it has one of no more than `most`
    instructions (None: no bound); returns the twins by name."""
    twins = {}
    for name in list(counts):
        twin = padded(isa, codes[name], counts[name])
        if twin is not None and (most is None or twin.instructions <= most):
            twins[name + PADDED] = twin
            codes[name + PADDED], counts[name + PADDED] = twin.code, twin.instructions
    return twins
