"""Views: renderings computed from a routine's structure.  Names enter only here."""

from __future__ import annotations

from sem.canon import canonicalize, parse
from sem.ir import Routine
from sem.views import c, semantic, smtlib
from sem.views.naming import Naming

__all__ = ["VIEWS", "Naming", "render"]

VIEWS = ("c", "semantic", "smtlib", "asm")


def render(view: str, r: Routine, naming: Naming) -> str:
    """A structural view (c, semantic, smtlib) of the hash-consed routine.
    Machine-code views need an implementation: see `sem.implement`."""
    renderers = {"c": c.render, "semantic": semantic.render, "smtlib": smtlib.render}
    if view not in renderers:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    return renderers[view](parse(canonicalize(r).text), naming)
