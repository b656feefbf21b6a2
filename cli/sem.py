"""The functions behind `./run sem.*`: each returns the text to print.

`db` is the database path (None: $METAOS_DB, else ./metaos.db).  Z3, the
lowerings and the probe layer are loaded by the commands that use them.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

from arch import X86_64, Arch
from cli import arguments
from cli.errors import UsageError
from sem.canon import SHORT
from sem.ir import Routine
from sem.store import Implementation, Name, SemStore, latest
from sem.views import VIEWS, Naming, render
from stores.db import connect, database_path

if TYPE_CHECKING:
    from qemu.boards import Board


def _store(db: str | None, *, existing: bool = True) -> SemStore:
    """The semantic store in `db`; `existing`: one that is there already (a command that
    reads or changes what is stored would otherwise leave an empty database behind a
    mistyped path)."""
    if existing and not database_path(db).exists():
        raise UsageError(f"no database at {database_path(db)}: `sem add FILE.py` makes one;"
                         " or give its path (--db) or set METAOS_DB")
    return SemStore(connect(db))


def _implementation(store: SemStore, rid: str, r: Routine, arch: Arch) -> Implementation:
    """The routine's latest implementation on `arch`; made, vetted and kept on first request."""
    # an implementation whose code needs CPU features (an evolved one, say) is for the
    # boards that have them: this one runs on every board of the arch
    impls = [i for i in store.implementations(rid, arch) if not i.features]
    if not impls:
        from sem.implement import implement

        vetted = implement(r, arch)
        store.add_implementation(rid, arch, vetted.code, vetted.assembly, vetted.established)
        impls = [i for i in store.implementations(rid, arch) if not i.features]
    return impls[-1]


def _signature(store: SemStore, routine_id: str) -> str:
    r = store.routine(routine_id)
    out = [] if r.result is None else [f"bv{r.result.width}"]
    out += ["mem"] if r.uses_memory else []
    return f"({', '.join(t.name for t in r.params)}) -> {', '.join(out)}"


def add(path: str, db: str | None = None) -> str:
    """Store every routine defined in a DSL file; print ID and name of each."""
    from sem.loader import load_file

    found = load_file(path)
    ids = _store(db, existing=False).add_many([(r, (name,)) for r, name in found])
    return "\n".join(f"{rid[:SHORT]}  {name}" for rid, (_, name) in zip(ids, found, strict=True))


def show(ref: str, view: str = "semantic", arch: Arch | str = X86_64, db: str | None = None) -> str:
    """One view of a routine: c, semantic, smtlib or asm (for --arch x86_64|riscv64)."""
    arguments.choice(view, "--view", VIEWS)
    arch = arguments.arch(arch)
    store = _store(db)
    rid = store.resolve(ref)
    r = store.routine(rid)
    name = store.name_for(ref, rid)
    naming = Naming.default(r, rid, name.name if name else None, name.input_names if name else ())
    if view != "asm":
        return render(view, r, naming)
    from sem.views.asm import render as render_asm

    impl = _implementation(store, rid, r, arch)
    header = (f"{naming.function} {rid[:SHORT]} on {arch}: {len(impl.code)} bytes;"
              f" {impl.established}")
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
    before, after = Name.parse(old), Name.parse(new)  # both spelled right, before any lookup
    store = _store(db)
    if ":" not in old:  # a bare name: find its namespace
        ns = [n for n in store.names(store.resolve(old)) if n.name == old]
        before = ns[0] if ns else before
    if ":" not in new:  # a bare new name stays in the old one's namespace
        after = Name(before.namespace, after.name)
    rid = store.rename(before, after)
    return f"{before} -> {after}  ({rid[:SHORT]}, code untouched)"


def equiv(a: str, b: str, db: str | None = None) -> str:
    """Prove two routines equivalent with Z3 (linking B into A's class) or show a counterexample."""
    from sem.z3sem import equivalent

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


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def history(ref: str, db: str | None = None, series: bool = False) -> str:
    """Implementations per architecture and their performance per hardware: the latest
    measurement of each (implementation, hardware fingerprint, accelerator, metric), or
    with `series` every measurement; then how the routine's names and class changed."""
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
        needs = f" (needs {', '.join(sorted(impl.features))})" if impl.features else ""
        lines.append(f"impl #{impl.id} {impl.arch}{needs}: {len(impl.code)} bytes;"
                     f" {impl.established}")
    measured = store.performance(rid)
    shown = [(m, 1) for m in measured] if series else latest(measured)
    for m, count in shown:
        earlier = f" (latest of {count}; --series shows each)" if count > 1 else ""
        lines.append(f"perf {m.arch} on {m.hardware_label} ({m.accelerator}): {m.metric} ="
                     f" {m.value:g} over {m.samples} samples, {_when(m.measured)}{earlier}")
    for change in store.name_history(rid):
        target = change.routine_id[:SHORT] if change.routine_id else "nothing"
        lines.append(f"name {change.name} -> {target}: {change.cause}, {_when(change.changed)}")
    for change in store.class_history(rid):
        lines.append(f"class -> {change.class_id[:SHORT]}: {change.cause},"
                     f" {_when(change.changed)}")
    return "\n".join(lines)


class BoardDisagrees(RuntimeError):
    """The routine's probes gave answers other than the interpreter's on a real board."""


def run(ref: str, board: Board, vectors: int | str = 100, db: str | None = None) -> str:
    """Run a routine as probes on `board` (its latest implementation for the board's
    arch), check every answer against the interpreter, record the median cycles."""
    vectors = arguments.whole(vectors, "--vectors", minimum=1)
    from discovery.fingerprint import fingerprint_of
    from discovery.inventory import Inventory
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from probes.routine import Job, probe_form, run_on_link
    from sem.vectors import generate

    store = _store(db)
    rid = store.resolve(ref)
    r = store.routine(rid)
    impl = _implementation(store, rid, r, board.arch)
    job = Job(r, probe_form(r, board.arch, impl.code), generate(r, vectors))
    started = time.monotonic()
    with QemuLink(board, build_guest(board.arch)) as link:
        fingerprint = fingerprint_of(Inventory.from_boot(link.first_boot), link.board.name)
        accelerator = link.accelerator
        (result,) = run_on_link(link, [job])
    seconds = time.monotonic() - started
    where = f"{board.arch} on {fingerprint.label} ({accelerator})"
    if not result.ok:
        v, want, obs = result.disagreements[0]
        raise BoardDisagrees(
            f"{len(result.disagreements)} of {vectors} probes of {rid[:SHORT]} disagree with the"
            f" interpreter on {where}, e.g. inputs {v.args}: expected {want.result}, the board"
            f" gave outcome {obs.outcome.name} status {obs.status} output {obs.output.hex()};"
            " nothing recorded: report it with this line")
    lines = [f"routine {rid[:SHORT]} impl #{impl.id} on {where}:"
             f" {result.agreed}/{vectors} agree with the interpreter"
             f" ({vectors / seconds:.0f} probes/s with boot)"]
    if result.cycles:
        median = statistics.median(result.cycles)
        store.record_performance(impl.id, fingerprint, "cycles", median, len(result.cycles),
                                 accelerator)
        lines.append(f"cycles  median {median:g}, min {min(result.cycles)},"
                     f" max {max(result.cycles)} over {len(result.cycles)} runs (recorded;"
                     " the guest's count around the whole run, probe entry and exit included)")
    else:
        lines.append("the guest reported no cycle counts: nothing recorded")
    return "\n".join(lines)
