"""An instruction-discovery candidate: an encoding and what capstone says of it."""

from __future__ import annotations

from dataclasses import dataclass

from capstone import (
    CS_GRP_BRANCH_RELATIVE,
    CS_GRP_CALL,
    CS_GRP_INT,
    CS_GRP_IRET,
    CS_GRP_JUMP,
    CS_GRP_RET,
    CsInsn,
)

# Capstone's groups for instructions that may move the pc anywhere but past
# themselves: the length the guest measures (where the pc is after one
# instruction) is then their target, not their end.
CONTROL_TRANSFER_GROUPS = (CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_INT, CS_GRP_IRET,
                           CS_GRP_BRANCH_RELATIVE)


@dataclass(frozen=True)
class Candidate:
    encoding: bytes
    space: str
    capstone_length: int | None  # None: capstone cannot decode it
    capstone_text: str | None
    transfers_control: bool = False  # capstone puts it in a CONTROL_TRANSFER_GROUPS group

    @classmethod
    def decoded(cls, encoding: bytes, space: str, insn: CsInsn) -> Candidate:
        """The candidate capstone decoded as `insn` (the first insn.size bytes of `encoding`)."""
        return cls(encoding[: insn.size], space, insn.size,
                   f"{insn.mnemonic} {insn.op_str}".strip(),
                   any(insn.group(g) for g in CONTROL_TRANSFER_GROUPS))
