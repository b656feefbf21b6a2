"""Options as typed on the command line -> the values the layers below take.

Every option arrives as text (tasks.py declares them without types, so that a
bad value reaches these parsers, which name the option, instead of a bare
int() error).  Each parser raises UsageError saying what was wrong and what to type.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from cli.errors import UsageError

if TYPE_CHECKING:
    from arch import Arch
    from qemu.boards import Board

# What tasks.py shows for the options every board-booting task takes.
BOARD_HELP = {
    "arch": "x86_64 (default) or riscv64",
    "board": "board profile: q35 (default for x86_64), pc, virt (riscv64)",
    "cpu": "QEMU CPU model (e.g. qemu64, Haswell, EPYC; rv64)",
    "smp": "number of CPUs",
    "memory": "RAM in MiB",
    "accel": "auto (kvm when /dev/kvm is usable and the CPU virtualizes in hardware, else tcg), "
             "tcg or kvm",
    "qemu_args": "extra QEMU arguments, appended verbatim (one shell-quoted string)",
}


def whole(text: str | int | None, option: str, minimum: int = 0,
          default: int | None = None) -> int | None:
    """A whole number of at least `minimum` (None: `default`)."""
    if text is None:
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"{option} takes a whole number, not {text!r}; e.g. {option} "
                         f"{max(minimum, 1)}") from None
    if value < minimum:
        raise UsageError(f"{option} must be at least {minimum}, not {value}; e.g. {option} "
                         f"{max(minimum, 1)}")
    return value


def number(text: str | float | None, option: str, minimum: float = 0.0,
           default: float | None = None) -> float | None:
    """A number (e.g. seconds or a rate) of at least `minimum` (None: `default`)."""
    if text is None:
        return default
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"{option} takes a number, not {text!r}; e.g. {option} 0.5") from None
    if not value >= minimum:  # also refuses nan
        raise UsageError(f"{option} must be at least {minimum:g}, not {text}")
    return value


def names(text: str | None, option: str) -> tuple[str, ...]:
    """A comma-separated list of names, at least one."""
    found = tuple(n.strip() for n in (text or "").split(",") if n.strip())
    if not found:
        raise UsageError(f"{option} takes comma-separated names, not {text!r}")
    return found


def choice(text: str, option: str, choices: Iterable[str]) -> str:
    """One of `choices`."""
    known = list(choices)
    if text not in known:
        raise UsageError(f"{option} {text!r} is not known; choose one of {', '.join(known)}")
    return text


def letters(text: str, option: str, choices: str) -> str:
    """Some of the letters `choices` (either case), at least one, each once."""
    chosen = "".join(dict.fromkeys(choice(c, option, choices) for c in text.upper()))
    if not chosen:
        raise UsageError(f"{option} takes letters of {choices}, not {text!r}")
    return chosen


def output(text: str | None, option: str) -> str | None:
    """A file to write when the work is done (None and "-", stdout, pass through),
    refused now if it could not be written then: the work would be lost."""
    if text is None or text == "-":
        return text
    if not text:
        raise UsageError(f"{option} takes a file name, not ''")
    path = Path(text)
    if path.is_dir():
        raise UsageError(f"{option} {text} is a directory; give a file name")
    _writable_folder(path.parent, option, text)
    return text


def output_folder(text: str | None, option: str) -> str | None:
    """A directory to write into when the work is done (made, with its parents, if
    missing)."""
    if text is None:
        return text
    if not text:
        raise UsageError(f"{option} takes a directory, not ''")
    path = Path(text).absolute()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {text} is a file, not a directory; give a directory")
    while not path.exists():  # the nearest folder there is: where the rest will be made
        path = path.parent
    _writable_folder(path, option, text)
    return text


def _writable_folder(folder: Path, option: str, text: str) -> None:
    if not folder.exists():
        raise UsageError(f"{option} {text}: there is no directory {folder}; make it or give "
                         "another path")
    if not folder.is_dir():
        raise UsageError(f"{option} {text}: {folder} is not a directory; give another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {text}: {folder} is not writable; give another path")


def arch(name: str | Arch) -> Arch:
    """The architecture called `name` (an Arch passes through)."""
    from arch import by_name

    return by_name(name)  # UnknownArch says which exist


def board(arch_name: str | Arch = "x86_64", name: str | None = None, cpu: str | None = None,
          smp: str | int | None = None, memory: str | int | None = None, accel: str = "auto",
          qemu_args: str | None = "", **changes: object) -> Board:
    """The board the board options describe (`changes`: Board fields to set, e.g. stay=True)."""
    from qemu.boards import board as make_board

    chosen_arch = arch(arch_name)
    for option, given in (("--board", name), ("--cpu", cpu)):
        if given == "":
            raise UsageError(f"{option} takes a name, not '' (leave it out for the default)")
    profile = name or chosen_arch.default_board
    chosen = make_board(profile, cpu=cpu or None, smp=whole(smp, "--smp", minimum=1),
                        memory=whole(memory, "--memory", minimum=16), accel=accel,
                        qemu_args=qemu_args or None)  # BoardError names what is wrong
    if name and chosen.arch != chosen_arch:
        raise UsageError(f"board {profile!r} is {chosen.arch}, not {chosen_arch}; "
                         f"pass --arch {chosen.arch}")
    return replace(chosen, **changes) if changes else chosen
