"""Views: renderings computed from a routine's structure.  Names enter only here."""

from __future__ import annotations

from dataclasses import dataclass

from sem.canon import postorder
from sem.ir import Node, Routine

VIEWS = ("c", "semantic", "smtlib", "asm")


@dataclass(frozen=True)
class Naming:
    """The names a view prints: the routine's and its inputs'."""

    function: str
    inputs: tuple[str, ...]

    @classmethod
    def default(cls, r: Routine, routine_id: str, name: str | None = None,
                inputs: tuple[str, ...] = ()) -> Naming:
        if len(inputs) != len(r.params):
            inputs = tuple(f"a{i}" for i in range(len(r.params)))
        return cls(name or f"r_{routine_id[:12]}", inputs)


def use_counts(r: Routine) -> dict[int, int]:
    uses: dict[int, int] = {}
    for n in postorder(r):
        for a in n.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    return uses


def temporaries(r: Routine) -> dict[int, str]:
    """A name t<i> for every computed node, in canonical order."""
    return {id(n): f"t{i}" for i, n in enumerate(postorder(r)) if n.op not in ("param", "const", "mem")}


def is_leaf(n: Node) -> bool:
    return n.op in ("param", "const", "mem")


def render(view: str, r: Routine, naming: Naming) -> str:
    """A structural view (c, semantic, smtlib) of the hash-consed routine.
    Machine-code views need an implementation: see `sem.implement`."""
    from sem.canon import canonicalize, parse
    from sem.views import c
    from sem.views import semantic
    from sem.views import smtlib

    renderers = {"c": c.render, "semantic": semantic.render, "smtlib": smtlib.render}
    if view not in renderers:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    return renderers[view](parse(canonicalize(r).text), naming)
