"""The functions behind `./run sem.*`: each returns the text to print.

`db` is the database path (None: $METAOS_DB, else ./metaos.db)."""

from __future__ import annotations

import time

from host.db import connect
from host.sem.canon import SHORT
from host.sem.implement import implement
from host.sem.loader import load_file
from host.sem.store import Name, SemStore
from host.sem.views import Naming, render
from host.sem.views.asm import render as render_asm
from host.sem.z3sem import equivalent


def _store(db: str | None) -> SemStore:
    return SemStore(connect(db))


def _signature(store: SemStore, routine_id: str) -> str:
    r = store.routine(routine_id)
    out = [] if r.result is None else [f"bv{r.result.width}"]
    out += ["mem"] if r.uses_memory else []
    return f"({', '.join(t.name for t in r.params)}) -> {', '.join(out)}"


def add(path: str, db: str | None = None) -> str:
    """Store every routine defined in a DSL file; print ID and name of each."""
    found = load_file(path)
    ids = _store(db).add_many([(r, (name,)) for r, name in found])
    return "\n".join(f"{rid[:SHORT]}  {name}" for rid, (_, name) in zip(ids, found))


def show(ref: str, view: str = "semantic", arch: str = "x86_64", db: str | None = None) -> str:
    """One view of a routine: c, semantic, smtlib or asm (for --arch x86_64|riscv64)."""
    store = _store(db)
    rid = store.resolve(ref)
    r = store.routine(rid)
    name = store.name_for(ref, rid)
    naming = Naming.default(r, rid, name.name if name else None, name.input_names if name else ())
    if view != "asm":
        return render(view, r, naming)
    impls = store.implementations(rid, arch)
    if not impls:  # first request on this architecture: make, vet and keep one
        vetted = implement(r, arch)
        store.add_implementation(rid, arch, vetted.code, vetted.assembly, vetted.established)
        impls = store.implementations(rid, arch)
    impl = impls[-1]
    header = f"{naming.function} {rid[:SHORT]} on {arch}: {len(impl.code)} bytes; {impl.established}"
    return render_asm(arch, impl.code, header)


def names(ref: str, db: str | None = None) -> str:
    """Every name of a routine, and its full ID and equivalence class."""
    store = _store(db)
    rid = store.resolve(ref)
    lines = [f"id     {rid}", f"type   {_signature(store, rid)}"]
    class_id = store.class_of(rid)
    if class_id != rid:
        lines.append(f"class  {class_id[:SHORT]} (proven equivalent to its specification)")
    lines += [f"name   {n}" + (f"({', '.join(n.input_names)})" if n.input_names else "")
              for n in store.names(rid)]
    return "\n".join(lines)


def rename(old: str, new: str, db: str | None = None) -> str:
    """Move a name (NAMESPACE:NAME); the routine and its ID do not change."""
    store = _store(db)
    before = Name.parse(old)
    if ":" not in old:  # a bare name: find its namespace
        ns = [n for n in store.names(store.resolve(old)) if n.name == old]
        before = ns[0] if ns else before
    after = Name.parse(new, default_namespace=before.namespace)
    rid = store.rename(before, after)
    return f"{before} -> {after}  ({rid[:SHORT]}, code untouched)"


def equiv(a: str, b: str, db: str | None = None) -> str:
    """Prove two routines equivalent with Z3 (linking B into A's class) or show a counterexample."""
    store = _store(db)
    ida, idb = store.resolve(a), store.resolve(b)
    verdict = equivalent(store.routine(ida), store.routine(idb))
    if verdict.equivalent:
        class_id = store.link_equivalent(ida, idb, verdict.detail)
        return f"equivalent: {verdict.detail}; class {class_id[:SHORT]}"
    inputs = ", ".join(f"{k}={v:#x}" for k, v in verdict.counterexample.items())
    outs = "" if verdict.outputs is None else (
        f": {a} gives {verdict.outputs[0]:#x}, {b} gives {verdict.outputs[1]:#x}")
    return f"different ({verdict.detail}); counterexample {inputs}{outs}"


def history(ref: str, db: str | None = None) -> str:
    """Implementations per architecture and their performance per hardware."""
    store = _store(db)
    rid = store.resolve(ref)
    lines = [f"routine {rid[:SHORT]} {_signature(store, rid)}"]
    members = store.members(store.class_of(rid))
    if len(members) > 1:
        lines.append("class   " + ", ".join(m[:SHORT] for m in members))
    impls = store.implementations(rid)
    if not impls:
        lines.append("no implementations yet (`sem show REF --view asm` makes and vets one)")
    for impl in impls:
        lines.append(f"impl #{impl.id} {impl.arch}: {len(impl.code)} bytes; {impl.established}")
    for m in store.performance(rid):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.measured))
        lines.append(f"perf {m.arch} on {m.hardware} ({m.accelerator}): {m.metric} = {m.value:g}"
                     f" over {m.samples} samples, {when}")
    return "\n".join(lines)
