"""Turning source operands into keystone operands: every symbol replaced by its
number and every expression folded, so keystone only ever sees numbers and the
capstone check knows which values the instruction must carry.

    [rbx + table + 8]       -> [rbx + 0x5008]          memory; values: 0x5008
    [rip + gdt_ptr]         -> [rip + 0x1ff0]           disp = target - next ip; values: target
    byte ptr fs:[COUNT]     -> byte ptr fs:[0x10]
    CODE_SEL:entry32        -> 0x8:0x100000             far pointer; values: 0x8, 0x100000
    short done / (1 << 4)   -> short 0x7c20 / 0x10      immediate or branch target
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolchain.expr import TOKEN, ExprError, Resolver, evaluate, substitute
from toolchain.x86source import OPERAND_KEYWORDS, REGISTERS, SEGMENT_REGISTERS, split_top_level

_LEADING_KEYWORDS = re.compile(
    r"\s*((?:(?:short|near|far|byte|word|dword|qword|tbyte|fword|xmmword|ymmword|zmmword|ptr)\s+)*)",
    re.IGNORECASE,
)
_UNARY_CONTEXT = "*/%<>&|^~(+-"  # after these a +/- is a sign, not a term boundary


@dataclass(frozen=True)
class Operands:
    """An instruction's operands as keystone will read them."""

    text: str  # comma-separated, numbers only
    values: tuple[int, ...]  # numbers capstone must find in the encoding
    rip_relative: bool  # some memory operand is [rip + target]: needs the instruction's size
    words: frozenset[str]  # registers and size keywords left in `text`, lowercase


def _names(text: str) -> list[str]:
    return [m.group(3) for m in TOKEN.finditer(text) if m.group(3)]


def _is_register_word(name: str) -> bool:
    return name.lower() in REGISTERS or name.lower() == "st"


def _number(value: int) -> str:
    return f"-{-value:#x}" if value < 0 else f"{value:#x}"


def _signed_terms(inner: str) -> list[tuple[int, str]]:
    """`a + b*4 - c` -> [(+1, "a"), (+1, "b*4"), (-1, "c")], split at depth 0."""
    terms: list[tuple[int, str]] = []
    sign, depth, current = 1, 0, ""
    for char in inner:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        stripped = current.strip()
        if char in "+-" and depth == 0 and stripped and stripped[-1] not in _UNARY_CONTEXT:
            terms.append((sign, stripped))
            sign, current = (1 if char == "+" else -1), ""
        elif char in "+-" and depth == 0 and not stripped:
            sign = -sign if char == "-" else sign
        else:
            current += char
    if current.strip():
        terms.append((sign, current.strip()))
    return terms


def _memory(operand: str, resolve: Resolver, next_ip: int) -> tuple[str, list[int], bool]:
    open_at, close_at = operand.index("["), operand.rindex("]")
    prefix, inner, suffix = (
        operand[:open_at], operand[open_at + 1 : close_at], operand[close_at + 1 :]
    )
    if suffix.strip():
        raise ExprError(f"unexpected '{suffix.strip()}' after ']'")
    for name in _names(prefix):
        if name.lower() not in OPERAND_KEYWORDS | SEGMENT_REGISTERS:
            raise ExprError(f"'{name}' before '[' is not a size keyword or segment register")
    registers, displacement, has_number, rip = [], 0, False, False
    for sign, term in _signed_terms(inner):
        if any(_is_register_word(name) for name in _names(term)):
            if sign < 0:
                raise ExprError(f"cannot subtract register term '{term}'")
            rip = rip or term.lower() == "rip"
            registers.append(substitute(term, resolve, _is_register_word))
        else:
            displacement += sign * evaluate(term, resolve)
            has_number = True
    values = [displacement] if has_number else []
    if rip and has_number:  # source names the target; the encoding holds target - next ip
        displacement -= next_ip
    parts = " + ".join(registers)
    if has_number:
        number = _number(displacement)
        parts = (
            f"{parts} {'-' if displacement < 0 else '+'} {number.lstrip('-')}" if parts else number
        )
    return f"{prefix}[{parts}]", values, rip and has_number


def rewrite_operands(operands: tuple[str, ...], resolve: Resolver, next_ip: int = 0) -> Operands:
    """`operands` with symbols replaced and expressions folded.  `next_ip` is the
    address after this instruction, for `[rip + target]` operands."""
    texts, values, rip_relative = [], [], False
    for operand in operands:
        if "[" in operand:
            text, found, rip = _memory(operand, resolve, next_ip)
            texts.append(text)
            values += found
            rip_relative = rip_relative or rip
            continue
        far = split_top_level(operand, ":")
        if len(far) == 2 and far[0].lower() not in SEGMENT_REGISTERS:
            selector, offset = evaluate(far[0], resolve), evaluate(far[1], resolve)
            texts.append(f"{_number(selector)}:{_number(offset)}")
            values += [selector, offset]
            continue
        keywords = _LEADING_KEYWORDS.match(operand).group(1)
        rest = operand[len(keywords) :].strip() if keywords else operand.strip()
        if any(_is_register_word(name) for name in _names(rest)):
            texts.append(keywords + substitute(rest, resolve, _is_register_word))
            continue
        value = evaluate(rest, resolve)
        texts.append(keywords + _number(value))
        values.append(value)
    text = ", ".join(texts)
    words = frozenset(word.lower() for word in _names(text))
    return Operands(text, tuple(values), rip_relative, words)
