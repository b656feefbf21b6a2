"""Instruction-set discovery candidates for x86-64 (sandsifter / baresifter style).

Each opcode space is enumerated with a fixed register-form ModRM and zero
immediates; capstone says how long it thinks each candidate is, and the probe
is the candidate followed by `ret`.  The guest's answer (executes / #UD / other
fault, and the length it measured by single-stepping) is then cross-checked
with capstone by `probes.families.discovery.finding`.
"""

from __future__ import annotations

from collections.abc import Iterator

from arch import X86_64
from probes.families.candidate import Candidate

RET = b"\xc3"
MODRM_REG_FORM = 0xC8  # mod=11 reg=1 rm=0: register operands, no memory access
TAIL = bytes(8)  # room for displacement / immediate bytes
LEGACY_PREFIXES = (b"", b"\x66", b"\xf2", b"\xf3")
LEGACY_MAPS = {"legacy": b"", "0f": b"\x0f", "0f38": b"\x0f\x38", "0f3a": b"\x0f\x3a"}
# VEX/EVEX `mmmmm` map numbers: 1 = 0F, 2 = 0F38, 3 = 0F3A; EVEX adds 5 and 6 (AVX512-FP16).
VEX_MAPS = (1, 2, 3)
EVEX_MAPS = (1, 2, 3, 5, 6)


def _candidate(raw: bytes, space: str) -> Candidate:
    insn = next(X86_64.disassembler.disasm(raw, 0, 1), None)
    if insn is None:
        return Candidate(raw[: len(raw) - len(TAIL) + 4], space, None, None)
    return Candidate.decoded(raw, space, insn)


def legacy(space: str = "legacy") -> Iterator[Candidate]:
    escape = LEGACY_MAPS[space]
    for prefix in LEGACY_PREFIXES:
        for opcode in range(256):
            yield _candidate(prefix + escape + bytes([opcode, MODRM_REG_FORM]) + TAIL, space)


def vex() -> Iterator[Candidate]:
    """Three-byte VEX (C4): R̄X̄B̄ = 111, map, W, v̄v̄v̄v̄ = 1111, L, pp."""
    for mmmmm in VEX_MAPS:
        for w in (0, 1):
            for length in (0, 1):
                for pp in range(4):
                    head = bytes([0xC4, 0xE0 | mmmmm, (w << 7) | (0xF << 3) | (length << 2) | pp])
                    for opcode in range(256):
                        yield _candidate(head + bytes([opcode, MODRM_REG_FORM]) + TAIL, "vex")


def evex() -> Iterator[Candidate]:
    """EVEX (62): P0 = R̄X̄B̄R̄' 0 mmm, P1 = W v̄v̄v̄v̄ 1 pp, P2 = z L'L b V̄' aaa."""
    for mmm in EVEX_MAPS:
        for w in (0, 1):
            for pp in range(4):
                for ll in range(3):
                    head = bytes([0x62, 0xF0 | mmm, (w << 7) | (0xF << 3) | 0x4 | pp,
                                  (ll << 5) | 0x08])
                    for opcode in range(256):
                        yield _candidate(head + bytes([opcode, MODRM_REG_FORM]) + TAIL, "evex")


SPACES = {"legacy": lambda: legacy("legacy"), "0f": lambda: legacy("0f"),
          "0f38": lambda: legacy("0f38"), "0f3a": lambda: legacy("0f3a"), "vex": vex, "evex": evex}


def candidates(spaces: tuple[str, ...] = tuple(SPACES)) -> Iterator[Candidate]:
    for space in spaces:
        if space not in SPACES:
            raise ValueError(f"unknown x86 opcode space {space!r}; choose from {sorted(SPACES)}")
        yield from SPACES[space]()


def wrap(candidate: Candidate) -> bytes:
    return candidate.encoding + RET
