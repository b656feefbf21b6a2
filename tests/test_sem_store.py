"""The semantic store: names as an overlay, the tasks' functions, and crash safety."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from schema_shape import shape

from arch import RISCV64, X86_64
from cli import sem as cli
from discovery.fingerprint import riscv_fingerprint, x86_fingerprint
from sem.canon import canonicalize, parse
from sem.ir import Node, Routine, bv32
from sem.library import FILES
from sem.store import Name, NameTaken, SemStore, UnknownRoutine
from stores.db import connect

ROOT = Path(__file__).resolve().parents[1]
VIRT = riscv_fingerprint("virt", misa=0x800000000014112D, mvendorid=0, marchid=0, mimpid=0,
                         isa="rv64imafdch_zicsr_zba_zbb")


def test_names_are_an_overlay_and_renaming_touches_no_code(tmp_path):
    db = tmp_path / "m.db"
    cli.add(str(FILES[0]), str(db))
    store = SemStore(connect(db))
    rid = store.resolve("hd:p01")
    code_before = store.conn.execute("SELECT canonical FROM sem_routines").fetchall()
    cli.rename("hd:p01", "bits:clear_lowest_one", str(db))
    assert store.conn.execute("SELECT canonical FROM sem_routines").fetchall() == code_before
    assert store.resolve("bits:clear_lowest_one") == rid == store.resolve(rid[:8])
    with pytest.raises(UnknownRoutine):
        store.resolve("hd:p01")
    assert "bits:clear_lowest_one" in cli.names(rid[:12], str(db))
    # a name that points to another routine is not taken over (it had failed as "the
    # database is unusable": SQLite's UNIQUE constraint), and nothing changes
    with pytest.raises(NameTaken, match="hd:p02 already names routine"):
        cli.rename("bits:clear_lowest_one", "hd:p02", str(db))
    assert store.resolve("bits:clear_lowest_one") == rid != store.resolve("hd:p02")


def test_tasks_show_every_view_equiv_links_classes_and_history_lists_impls(tmp_path):
    db = str(tmp_path / "m.db")
    for f in FILES:
        cli.add(str(f), db)
    assert "(x: bv32) -> bv32" in cli.show("p09", "semantic", db=db)
    assert "define-fun p09" in cli.show("p09", "smtlib", db=db)
    assert "uint32_t p09(uint32_t x)" in cli.show("p09", "c", db=db)
    assert "1000 vectors" in cli.show("sort3", "asm", RISCV64, db=db)
    assert "riscv64" in cli.history("sort3", db)
    assert cli.equiv("p22", "p23", db).startswith("different")
    store = SemStore(connect(db))
    (tmp_path / "alt.py").write_text(
        "from sem.ir import bv32, popcount, routine\n"
        "@routine\ndef parity(x: bv32) -> bv32:\n    return popcount(x) & 1\n")
    cli.add(str(tmp_path / "alt.py"), db)
    assert cli.equiv("hd:p22", "alt:parity", db).startswith("equivalent")
    spec = store.resolve("hd:p22")
    assert store.class_of(store.resolve("alt:parity")) == spec
    impl = store.implementations(store.resolve("sort3"), RISCV64)[0]
    store.record_performance(impl.id, VIRT, "cycles", 41.0, 1000, "tcg")
    assert "cycles = 41 over 1000 samples" in cli.history("sort3", db)


WRITER = """
import random, sys
from discovery.fingerprint import riscv_fingerprint, x86_fingerprint
from stores.db import connect
from sem.ir import Node, Routine, bv32
from sem.store import Name, SemStore
store = SemStore(connect(sys.argv[1]))
rng = random.Random(int(sys.argv[2]))
batch = 0
while True:
    items = []
    for i in range(200):  # big transactions: routine rows, then name rows
        x = Node("param", 32, (), 0)
        k = rng.getrandbits(32)
        name = Name("crash", f"s{sys.argv[2]}_{batch}_{i}")
        items.append((Routine((bv32,), (x ^ k) + (k >> 3), None), (name,)))
    store.add_many(items)
    batch += 1
    print(batch, flush=True)
"""


def test_a_writer_killed_mid_write_leaves_no_partial_routine(tmp_path):
    db = tmp_path / "crash.db"
    for seed in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(seed)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline()  # at least one batch committed
        time.sleep(0.05 * (seed + 1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, canonical FROM sem_routines").fetchall()
        for rid, text in rows:
            assert canonicalize(parse(text)).id == rid
        unnamed = conn.execute(
            "SELECT count(*) FROM sem_routines r WHERE NOT EXISTS"
            " (SELECT 1 FROM sem_names n WHERE n.routine_id = r.id)").fetchone()[0]
        names = conn.execute("SELECT count(*) FROM sem_names").fetchone()[0]
        assert unnamed == 0
        assert names % 200 == 0  # whole batches only
        conn.close()


# -- history: appended, never updated -------------------------------------------------

Q35 = x86_fingerprint("q35", "GenuineIntel", 6, 85, 4, {"1.ecx": 0x7FFAFBFF})


def _routines(n: int) -> list[Routine]:
    x = Node("param", 32, (), 0)
    return [Routine((bv32,), (x ^ k) + (k >> 3), None) for k in range(1, n + 1)]


def test_measurements_of_one_implementation_on_one_fingerprint_are_all_kept(tmp_path):
    db = str(tmp_path / "m.db")
    cli.add(str(FILES[0]), db)
    store = SemStore(connect(db))
    rid = store.resolve("hd:p01")
    impl = store.add_implementation(rid, X86_64, b"\xc3", "ret", "test")
    store.record_performance(impl, Q35, "cycles", 41.0, 100, "tcg")
    store.record_performance(impl, Q35, "cycles", 39.0, 100, "tcg")
    store.record_performance(impl, Q35, "cycles", 12.0, 100, "kvm")
    assert [(m.value, m.fingerprint, m.accelerator) for m in store.performance(rid)] == [
        (41.0, Q35.digest, "tcg"), (39.0, Q35.digest, "tcg"), (12.0, Q35.digest, "kvm")]
    latest = [line for line in cli.history("hd:p01", db).splitlines() if line.startswith("perf")]
    assert len(latest) == 2  # one per accelerator: tcg and kvm cycles do not compare
    assert f"on {Q35.label} (tcg): cycles = 39 over 100 samples" in latest[0]
    assert "(latest of 2; --series shows each)" in latest[0]
    assert "(kvm): cycles = 12" in latest[1] and "latest of" not in latest[1]
    series = [line for line in cli.history("hd:p01", db, series=True).splitlines()
              if line.startswith("perf")]
    assert len(series) == 3
    assert "cycles = 41 " in series[0] and "cycles = 39 " in series[1] and "= 12 " in series[2]
    for change in ("UPDATE sem_performance SET value = 1", "DELETE FROM sem_performance"):
        with pytest.raises(sqlite3.IntegrityError, match="history"), store.conn:
            store.conn.execute(change)


def test_every_change_of_a_name_or_a_class_is_kept(tmp_path):
    store = SemStore(connect(tmp_path / "m.db"))
    a, b, c = _routines(3)
    ida, idb = store.add(a, [Name("user", "f")]), store.add(b, [Name("user", "g")])
    idc = store.add(c)
    store.add(a, [Name("user", "f")])  # the same again: no change, nothing to keep
    store.rename(Name("user", "f"), Name("lib", "f"))
    store.add(b, [Name("user", "f")])  # the freed name, now for another routine
    store.add(c, [Name("user", "f")])  # and moved on again
    changes = [(str(ch.name), ch.routine_id, ch.cause) for ch in store.name_history(ida)]
    assert changes == [("user:f", ida, "added"), ("user:f", None, "renamed to lib:f"),
                       ("lib:f", ida, "renamed from user:f"), ("user:f", idb, "added"),
                       ("user:f", idc, f"moved from {idb[:12]}")]
    assert store.resolve("user:f") == idc and store.resolve("lib:f") == ida

    store.link_equivalent(ida, idb, "proof 1")
    store.link_equivalent(idc, ida, "proof 2")  # a's class (with b) joins c's
    assert store.members(idc) == sorted([ida, idb, idc])
    assert [(ch.class_id, ch.established) for ch in store.class_history(idb)] == [
        (ida, "proof 1"), (idc, "proof 1")]  # moved with its class, its proof unchanged
    assert [(ch.class_id, ch.cause) for ch in store.class_history(ida)] == [
        (ida, "its class's specification"), (idc, f"proven equivalent to {idc[:12]}")]
    assert "joined" in store.class_history(idb)[1].cause
    for table in ("sem_name_history", "sem_equivalence_history"):
        with pytest.raises(sqlite3.IntegrityError, match="history"), store.conn:
            store.conn.execute(f"DELETE FROM {table}")


# sem/store.py as schema version 1 wrote it
V1_DDL = """
CREATE TABLE IF NOT EXISTS sem_routines (
    id TEXT PRIMARY KEY,              -- BLAKE2b-256 of canonical, hex
    canonical TEXT NOT NULL,          -- the canonical form (sem/canon.py)
    inputs TEXT NOT NULL,             -- input types, e.g. 'bv32,bv32'
    result_width INTEGER,             -- NULL when the routine returns nothing
    uses_memory INTEGER NOT NULL,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sem_names (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    routine_id TEXT NOT NULL REFERENCES sem_routines(id),
    input_names TEXT NOT NULL DEFAULT '',   -- comma-separated: the inputs' names in this view
    PRIMARY KEY (namespace, name)
);
CREATE INDEX IF NOT EXISTS sem_names_by_routine ON sem_names(routine_id);
CREATE TABLE IF NOT EXISTS sem_implementations (
    id INTEGER PRIMARY KEY,
    routine_id TEXT NOT NULL REFERENCES sem_routines(id),
    arch TEXT NOT NULL,
    code BLOB NOT NULL,
    assembly TEXT NOT NULL,
    established TEXT NOT NULL,        -- how correctness was established
    added REAL NOT NULL,
    UNIQUE (routine_id, arch, code)
);
CREATE TABLE IF NOT EXISTS sem_performance (
    implementation_id INTEGER NOT NULL REFERENCES sem_implementations(id),
    hardware TEXT NOT NULL,           -- hardware fingerprint
    metric TEXT NOT NULL,             -- e.g. 'cycles', 'ns'
    value REAL NOT NULL,
    samples INTEGER NOT NULL,
    accelerator TEXT NOT NULL,        -- e.g. 'kvm', 'tcg', 'unicorn', 'metal'
    measured REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sem_equivalence (
    routine_id TEXT PRIMARY KEY REFERENCES sem_routines(id),
    class_id TEXT NOT NULL REFERENCES sem_routines(id),   -- the class's specification
    established TEXT NOT NULL
);
"""


def _v1_database(path: Path) -> tuple[str, str, int]:
    """A semantic store as version 1 left it: two routines in one class, names, an
    implementation and two measurements under a label."""
    a, b = (canonicalize(r) for r in _routines(2))
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(V1_DDL)
        conn.execute("CREATE TABLE schema_parts (part TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_parts VALUES ('sem', 1)")
        conn.executemany("INSERT INTO sem_routines VALUES (?, ?, 'bv32', 32, 0, 1.0)",
                         [(a.id, a.text), (b.id, b.text)])
        conn.executemany("INSERT INTO sem_names VALUES (?, ?, ?, ?)",
                         [("user", "f", a.id, "x"), ("user", "g", b.id, "")])
        conn.execute("INSERT INTO sem_implementations VALUES (7, ?, 'x86_64', x'c3', 'ret', 'test',"
                     " 2.0)", (a.id,))
        conn.executemany("INSERT INTO sem_performance VALUES (7, 'q35:0123456789ab', 'cycles', ?,"
                         " 100, 'tcg', ?)", [(41.0, 3.0), (39.0, 4.0)])
        conn.executemany("INSERT INTO sem_equivalence VALUES (?, ?, ?)",
                         [(a.id, a.id, "specification"), (b.id, a.id, "z3: proved")])
    conn.close()
    return a.id, b.id, 7


def test_a_version_1_store_opens_with_its_rows_and_their_history_begun(tmp_path):
    ida, idb, impl = _v1_database(tmp_path / "v1.db")
    store = SemStore(connect(tmp_path / "v1.db"))
    version = "SELECT version FROM schema_parts WHERE part = 'sem'"
    assert store.conn.execute(version).fetchone() == (3,)
    assert store.resolve("user:f") == ida and store.names(ida) == [Name("user", "f", ("x",))]
    assert store.class_of(idb) == ida and store.members(ida) == sorted([ida, idb])
    assert [(i.id, i.code, i.features) for i in store.implementations(ida)] == [
        (impl, b"\xc3", frozenset())]  # code from before features were named needs none
    old = store.performance(ida)
    assert [(m.value, m.measured, m.fingerprint, m.hardware_label) for m in old] == [
        (41.0, 3.0, None, "q35:0123456789ab"), (39.0, 4.0, None, "q35:0123456789ab")]
    assert [ch.cause for ch in store.name_history(ida)] == [
        "held when the store reached version 2 (earlier changes were not kept)"]
    assert [(ch.class_id, ch.established) for ch in store.class_history(idb)] == [
        (ida, "z3: proved")]

    store.record_performance(impl, Q35, "cycles", 40.0, 100, "tcg")
    store.rename(Name("user", "f"), Name("user", "h"))
    assert len(store.performance(ida)) == 3
    perf = [line for line in cli.history(ida, str(tmp_path / "v1.db")).splitlines()
            if line.startswith("perf")]
    assert len(perf) == 2  # the label-only series and the fingerprinted one stay apart
    assert "on q35:0123456789ab (tcg): cycles = 39" in perf[0] and "latest of 2" in perf[0]
    assert f"on {Q35.label} (tcg): cycles = 40" in perf[1]
    assert [ch.cause for ch in store.name_history(ida)][-1] == "renamed from user:f"


def test_a_migrated_semantic_store_has_the_tables_of_a_new_one(tmp_path):
    _v1_database(tmp_path / "v1.db")
    migrated, fresh = SemStore(connect(tmp_path / "v1.db")), SemStore(connect(tmp_path / "new.db"))
    assert shape(migrated.conn, "sem_") == shape(fresh.conn, "sem_")
