"""What every view needs: the names it prints and the temporaries it introduces."""

from __future__ import annotations

from dataclasses import dataclass

from sem.canon import postorder
from sem.ir import Node, Routine


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
    return {id(n): f"t{i}" for i, n in enumerate(postorder(r))
            if n.op not in ("param", "const", "mem")}


def is_leaf(n: Node) -> bool:
    return n.op in ("param", "const", "mem")
