"""Reading x86 assembly source into statements: comments stripped, labels,
directives and instructions split apart, operands split on top-level commas.
Nothing here knows addresses or values; x86asm lays the statements out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import capstone.x86_const as x86_const

from toolchain.expr import NAME_PATTERN
from toolchain.program import AssemblyError

REGISTERS = frozenset(
    n[len("X86_REG_") :].lower()
    for n in dir(x86_const)
    if n.startswith("X86_REG_") and n not in ("X86_REG_INVALID", "X86_REG_ENDING")
)
SEGMENT_REGISTERS = frozenset({"cs", "ds", "es", "fs", "gs", "ss"})
# Words keystone reads in operands that are neither registers nor symbols.
OPERAND_KEYWORDS = frozenset(
    {"byte", "word", "dword", "qword", "tbyte", "fword", "xmmword", "ymmword", "zmmword",
     "ptr", "short", "near", "far", "st"}
)  # fmt: skip
PREFIXES = frozenset({"rep", "repe", "repz", "repne", "repnz", "lock"})
_CONDITION_ALIASES = ("z", "nz", "c", "nc", "nae", "nb", "na", "nbe", "ng", "nle", "nl", "nge",
                      "pe", "po")  # fmt: skip
MNEMONICS = frozenset(
    {
        n[len("X86_INS_") :].lower()
        for n in dir(x86_const)
        if n.startswith("X86_INS_") and n not in ("X86_INS_INVALID", "X86_INS_ENDING")
    }
    | {f"{head}{cc}" for head in ("j", "set", "cmov") for cc in _CONDITION_ALIASES}
    | {"sal", "lret", "int1", "icebp"}
    | PREFIXES
)
DIRECTIVES = frozenset(
    {".code16", ".code32", ".code64", ".byte", ".word", ".long", ".quad", ".ascii", ".asciz",
     ".align", ".space", ".org", ".equ"}
)  # fmt: skip
RESERVED = REGISTERS | OPERAND_KEYWORDS | MNEMONICS | {"$"}

_LABEL = re.compile(r"\s*(" + NAME_PATTERN + r")\s*:(?![:\[])")


class StatementKind(Enum):
    LABEL = "label"
    DIRECTIVE = "directive"
    INSTRUCTION = "instruction"


@dataclass(frozen=True)
class Statement:
    """One label, directive or instruction, with where it was written."""

    file: str
    line: int
    text: str  # the source statement, comment stripped
    kind: StatementKind
    name: str  # label name, directive (".byte") or mnemonic ("mov", "rep stosq")
    args: tuple[str, ...] = ()  # directive arguments or instruction operands

    def error(self, reason: str) -> AssemblyError:
        return AssemblyError(self.file, self.line, self.text, reason)


def _outside_quotes(text: str):
    """(index, char) for every character of `text` outside '...' and "..." (C escapes)."""
    quote, escaped = None, False
    for at, char in enumerate(text):
        if escaped:
            escaped = False
        elif quote and char == "\\":
            escaped = True
        elif quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        else:
            yield at, char


def strip_comment(line: str) -> str:
    """`line` up to its `;` comment (a `;` inside quotes is kept)."""
    return next((line[:at] for at, char in _outside_quotes(line) if char == ";"), line)


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """`text` split at `separator`s outside quotes, brackets and parentheses."""
    parts, depth, start = [], 0, 0
    for at, char in _outside_quotes(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:at].strip())
            start = at + 1
    parts.append(text[start:].strip())
    return parts


def parse_source(source: str, file: str) -> list[Statement]:
    """Every statement of one source file, in order."""
    statements: list[Statement] = []
    for number, raw in enumerate(source.splitlines(), start=1):
        text = strip_comment(raw).strip()
        while match := _LABEL.match(text):
            name = match.group(1)
            statements.append(Statement(file, number, text, StatementKind.LABEL, name))
            if name.lower() in RESERVED:
                raise statements[-1].error(
                    f"'{name}' is a register, keyword or mnemonic; choose another label name"
                )
            text = text[match.end() :].strip()
        if text:
            statements.append(_statement(text, file, number))
    return statements


def _statement(text: str, file: str, number: int) -> Statement:
    head, _, rest = text.partition(" ")
    head = head.lower()
    if head.startswith("."):
        statement = Statement(file, number, text, StatementKind.DIRECTIVE, head)
        if head not in DIRECTIVES:
            raise statement.error(
                f"unknown directive '{head}' (known: {', '.join(sorted(DIRECTIVES))})"
            )
        args = tuple(split_top_level(rest)) if rest.strip() else ()
        return Statement(file, number, text, StatementKind.DIRECTIVE, head, args)
    if head in PREFIXES and rest.strip():
        word, _, rest = rest.strip().partition(" ")
        head = f"{head} {word.lower()}"
    operands = tuple(split_top_level(rest)) if rest.strip() else ()
    statement = Statement(file, number, text, StatementKind.INSTRUCTION, head, operands)
    if any(not operand for operand in operands):
        raise statement.error("empty operand (stray comma?)")
    return statement
