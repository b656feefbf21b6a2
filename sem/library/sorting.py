"""sort3/sort4/sort5: sort 32-bit signed integers in place, ascending, by
optimal-size sorting networks (the AlphaDev benchmark routines)."""

from sem.ir import Mem, ptr, routine, smax, smin

NAMESPACE = "sort"

NETWORKS = {
    3: ((1, 2), (0, 2), (0, 1)),
    4: ((0, 1), (2, 3), (0, 2), (1, 3), (1, 2)),
    5: ((0, 1), (3, 4), (2, 4), (2, 3), (0, 3), (0, 2), (1, 4), (1, 3), (1, 2)),
}


def _sort_in_memory(mem: Mem, p, n: int) -> None:
    v = [mem.load(p, 4 * i, 32) for i in range(n)]
    for i, j in NETWORKS[n]:
        v[i], v[j] = smin(v[i], v[j]), smax(v[i], v[j])
    for i in range(n):
        mem.store(p, 4 * i, v[i])


@routine
def sort3(mem: Mem, p: ptr) -> None:
    _sort_in_memory(mem, p, 3)


@routine
def sort4(mem: Mem, p: ptr) -> None:
    _sort_in_memory(mem, p, 4)


@routine
def sort5(mem: Mem, p: ptr) -> None:
    _sort_in_memory(mem, p, 5)
