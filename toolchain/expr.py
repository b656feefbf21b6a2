"""Integer expressions in assembly source: `.equ` values, directive arguments
and instruction operands.

Numbers are written as in Python (`42`, `0x2a`, `0b101010`, `0o52`, `1_000`) or
as a character in single quotes (`'A'`, `'\\n'`).  Names are resolved through a
callback, and the result is evaluated with Python's `ast` restricted to integers
and `+ - * / // % << >> & | ^ ~` and parentheses (`/` is integer division,
like `//`).  Nothing else is evaluated, so source text can never run code.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable

NAME_PATTERN = r"[A-Za-z_.$][\w.$]*"
NAME = re.compile(NAME_PATTERN + r"\Z")
# A character literal, a number, or a name; numbers are matched whole so the
# `x1f` in `0x1f` is never taken for a name.
TOKEN = re.compile(r"('(?:\\.|[^'\\])+')|(\d\w*)|(" + NAME_PATTERN + ")")

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.floordiv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
MAX_SHIFT = 256  # larger shifts are typos, and would build enormous integers


class ExprError(ValueError):
    """An expression that is not a well-formed integer expression."""


Resolver = Callable[[str], int]


def char_value(literal: str) -> int:
    """The code of a quoted character such as `'A'` or `'\\n'`."""
    try:
        text = ast.literal_eval(literal)
    except (SyntaxError, ValueError) as error:
        raise ExprError(f"bad character literal {literal}") from error
    if len(text) != 1 or ord(text) > 0xFF:
        raise ExprError(f"{literal} is not a single 8-bit character")
    return ord(text)


def substitute(text: str, resolve: Resolver, keep: Callable[[str], bool] = lambda _: False) -> str:
    """`text` with every name replaced by its value (except names `keep` accepts,
    such as registers) and every character literal by its code."""

    def replace(match: re.Match[str]) -> str:
        literal, number, name = match.groups()
        if literal:
            return str(char_value(literal))
        if number or keep(name):
            return number or name
        value = resolve(name)
        return f"({value:#x})" if value < 0 else f"{value:#x}"

    return TOKEN.sub(replace, text)


def evaluate(text: str, resolve: Resolver) -> int:
    """The integer value of expression `text`, names looked up with `resolve`."""
    text = text.strip()
    if NAME.match(text):  # the common cases, without a parse
        return resolve(text)
    try:
        return int(text, 0)
    except ValueError:
        pass
    source = substitute(text, resolve)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise ExprError(f"cannot parse expression '{text}'") from error
    return _value(tree.body, text)


def _value(node: ast.AST, text: str) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand, text))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left, text), _value(node.right, text)
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
            raise ExprError(f"division by zero in '{text}'")
        if isinstance(node.op, (ast.LShift, ast.RShift)) and not 0 <= right < MAX_SHIFT:
            raise ExprError(f"shift count {right} out of range in '{text}'")
        return _BINARY[type(node.op)](left, right)
    raise ExprError(f"'{text}' is not an integer expression (only + - * / // % << >> & | ^ ~)")
