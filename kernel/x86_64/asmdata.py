"""Tables computed in Python, rendered as assembly data sources.

A generated source says where it came from; build.py writes it next to the
build output and assembles it with the hand-written sources."""

from __future__ import annotations

from collections.abc import Sequence

DIRECTIVES = {1: ".byte", 2: ".word", 4: ".long", 8: ".quad"}


def data_source(
    origin: str, label: str, width: int, values: Sequence[int], per_line: int = 8,
    comments: Sequence[str] | None = None,
) -> str:
    """`label:` followed by `values` as `width`-byte little-endian data.

    With `comments`, one value per line, each with its comment."""
    directive = DIRECTIVES[width]
    lines = [f"; Generated from {origin} by kernel/x86_64/build.py; do not edit.", f"{label}:"]
    if comments is not None:
        for value, comment in zip(values, comments, strict=True):
            lines.append(f"    {directive} {value:#x}  ; {comment}")
    else:
        for start in range(0, len(values), per_line):
            chunk = ", ".join(f"{v:#0{2 + 2 * width}x}" for v in values[start : start + per_line])
            lines.append(f"    {directive} {chunk}")
    return "\n".join(lines) + "\n"


def string_source(origin: str, label: str, text: str) -> str:
    """`label:` followed by `text` as a NUL-terminated ASCII string."""
    escaped = text.encode("ascii").decode().replace("\\", "\\\\").replace('"', '\\"')
    return (f"; Generated from {origin} by kernel/x86_64/build.py; do not edit.\n"
            f"{label}:\n    .asciz \"{escaped}\"\n")
