"""Re-decode every assembled RISC-V instruction with capstone (RV64 + C).

For each listed statement that is an instruction (not a directive), capstone
must decode its bytes as whole instructions that end exactly where the
statement's bytes end, none invalid; a statement that should give one machine
instruction must give exactly one, of the same operation (aliases such as `mv`
= `addi` and compressed forms `c.*` count as the same).  Pseudo-instructions
that expand (`li`, `la`, `call`, far branches) and macro invocations only need
the boundaries to match.  A mismatch is an AssemblyError naming file:line.
"""

from __future__ import annotations

import re

import capstone

from toolchain.program import AssemblyError, Program

# alias or compressed name -> the base instruction it stands for
_BASE = {
    "mv": "addi", "li": "addi", "nop": "addi", "addi4spn": "addi", "addi16sp": "addi",
    "ret": "jalr", "jr": "jalr", "j": "jal",
    "csrr": "csrrs", "csrw": "csrrw", "csrs": "csrrs", "csrc": "csrrc",
    "csrwi": "csrrwi", "csrsi": "csrrsi", "csrci": "csrrci",
    "beqz": "beq", "bnez": "bne", "blez": "bge", "bgez": "bge", "bltz": "blt", "bgtz": "blt",
    "bgt": "blt", "ble": "bge", "bgtu": "bltu", "bleu": "bgeu",
    "not": "xori", "neg": "sub", "negw": "subw", "sext.w": "addiw",
    "seqz": "sltiu", "snez": "sltu", "sltz": "slt", "sgtz": "slt",
    "ldsp": "ld", "sdsp": "sd", "lwsp": "lw", "swsp": "sw", "fldsp": "fld", "fsdsp": "fsd",
    "rdcycle": "csrrs", "rdtime": "csrrs", "rdinstret": "csrrs",
}
# compressed forms GNU as also makes of another statement than their base's: C.MV is
# `add rd, x0, rs2` (the unprivileged spec's RVC chapter), and GNU as gives it for `mv`
# (`addi rd, rs, 0`) as well
_COMPRESSED_ALSO = {"c.mv": {"add"}}
# statements GNU as may expand into several machine instructions
_MAY_EXPAND = {
    "li", "la", "lla", "lga", "call", "tail",
    "lb", "lbu", "lh", "lhu", "lw", "lwu", "ld", "sb", "sh", "sw", "sd",  # `lw a0, symbol`
    "beq", "bne", "blt", "bge", "bltu", "bgeu", "beqz", "bnez", "blez", "bgez", "bltz",
    "bgtz", "bgt", "ble", "bgtu", "bleu",  # out-of-range branches become branch + jump
}
_LABELS = re.compile(r"^(?:\s*[A-Za-z_.$0-9][\w.$]*:)*")
_MACRO = re.compile(r"^\s*\.macro\s+([\w.$]+)")


def _base(mnemonic: str) -> str:
    name = mnemonic.removeprefix("c.")
    return _BASE.get(name, name)


def statement_mnemonic(text: str) -> str | None:
    """The operation a source line asks for; None for directives and labels."""
    code = _LABELS.sub("", text.split("#", 1)[0]).strip()
    if not code or code.startswith("."):
        return None
    return code.split(None, 1)[0].lower()


def macro_names(lines: list[str]) -> set[str]:
    """The macros a source defines (their invocations expand freely)."""
    return {m.group(1).lower() for line in lines if (m := _MACRO.match(line))}


def check_instructions(program: Program, macros: set[str]) -> None:
    """Raise AssemblyError at the first statement capstone does not confirm."""
    decoder = capstone.Cs(capstone.CS_ARCH_RISCV,
                          capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
    for line in program.listing:
        mnemonic = statement_mnemonic(line.text)
        if mnemonic is None or line.size == 0:
            continue
        section = next(n for n, b in program.bases.items()
                       if b <= line.address < b + len(program.sections[n]))
        offset = line.address - program.bases[section]
        code = program.sections[section][offset: offset + line.size]
        decoded = list(decoder.disasm(code, line.address))
        used = sum(i.size for i in decoded)
        where = (line.file, line.line, line.text)
        if line.address % 2:
            raise AssemblyError(*where, f"instruction at odd address {line.address:#x} (RISC-V "
                                        "instructions are 2-byte aligned; after data in code "
                                        "use `.balign 4, 0`)")
        if used != len(code):
            raise AssemblyError(*where, f"capstone decodes {used} of its {len(code)} bytes "
                                        f"({code.hex()}): not whole valid instructions")
        if (any(i.mnemonic in ("unimp", "c.unimp") for i in decoded)
                and mnemonic not in ("unimp", "c.unimp")):
            raise AssemblyError(*where, f"assembled to an illegal instruction ({code.hex()})")
        if mnemonic in macros:
            continue
        if len(decoded) > 1 and mnemonic not in _MAY_EXPAND:
            raise AssemblyError(*where, f"one instruction expected, capstone decodes "
                                        f"{[i.mnemonic for i in decoded]}")
        if len(decoded) == 1 and mnemonic not in ("li", "la", "lla") and \
                _base(mnemonic) not in {_base(decoded[0].mnemonic),
                                        *_COMPRESSED_ALSO.get(decoded[0].mnemonic, ())}:
            raise AssemblyError(*where, f"capstone decodes {decoded[0].mnemonic} "
                                        f"{decoded[0].op_str}, not {mnemonic}")
